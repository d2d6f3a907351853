"""The Service in front of the vLLM pods."""

from typing import NotRequired, TypedDict

import pulumi
import pulumi_kubernetes as k8s

from pulumi_vllm.kubernetes import object_name
from pulumi_vllm.kubernetes.pod import CONTAINER_PORT_NAME

TOKEN = "pulumi-vllm:index:VllmService"


class VllmServiceArgs(TypedDict):
    """Arguments of :class:`VllmService`."""

    namespace: str
    """Namespace of the Service."""
    service_name: str
    """Name of the Service (clients call ``<name>.<namespace>.svc.cluster.local``)."""
    selector: dict[str, str]
    """Labels of the pods to send traffic to."""
    port: NotRequired[int]
    """Service port (default 80), forwarded to the container's ``http`` port (8000)."""
    target_port: NotRequired[str]
    """Name of the container port the Service forwards to (default ``http``; ``serve`` on a Ray Serve head)."""
    type: NotRequired[str]
    """ClusterIP (default), NodePort or LoadBalancer."""
    labels: NotRequired[dict[str, str]]
    """Labels of the Service."""
    headless: NotRequired[bool]
    """A headless Service (clusterIP None), e.g. for stable pod DNS names of a Ray head."""


class VllmService(pulumi.ComponentResource):
    """A Service whose port forwards to vLLM's OpenAI server in the selected pods."""

    service_name: pulumi.Output[str]
    """Name of the Service."""

    def __init__(self, name: str, args: VllmServiceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TOKEN, name, None, opts)
        spec = k8s.core.v1.ServiceSpecArgs(
            type=args.get("type", "ClusterIP"),
            selector=args["selector"],
            ports=[
                k8s.core.v1.ServicePortArgs(
                    name="http", port=args.get("port", 80), target_port=args.get("target_port", CONTAINER_PORT_NAME), protocol="TCP"
                )
            ],
            cluster_ip="None" if args.get("headless") else None,
        )
        self._service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=args["service_name"], namespace=args["namespace"], labels=args.get("labels", {})
            ),
            spec=spec,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.service_name = object_name(self._service)
        self.register_outputs({"service_name": self.service_name})
