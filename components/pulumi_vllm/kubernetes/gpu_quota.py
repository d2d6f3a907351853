"""A GPU quota for a namespace: a ResourceQuota on the GPUs its pods may request together."""

import re
from typing import NotRequired, TypedDict

import pulumi
import pulumi_kubernetes as k8s

from pulumi_vllm.kubernetes import object_name

TOKEN = "pulumi-vllm:index:GpuQuota"

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_RESOURCE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


class GpuQuotaArgs(TypedDict):
    """Arguments of :class:`GpuQuota`."""

    namespace: str
    """Namespace the quota applies to (it must exist)."""
    gpus: int
    """Most GPUs all pods of the namespace may request together; 0 forbids GPU pods there."""
    gpu_resource_name: NotRequired[str]
    """Extended resource name of the GPUs (default ``nvidia.com/gpu``; ``amd.com/gpu`` for AMD)."""
    limits: NotRequired[bool]
    """Also write ``limits.<gpu resource>`` (default false). Kubernetes counts extended resources only
    against ``requests.`` items (their requests always equal their limits); the ``limits.`` item is
    stored for tools that read it, not enforced by the API server."""
    quota_name: NotRequired[str]
    """Name of the ResourceQuota (default ``gpu-quota``)."""
    labels: NotRequired[dict[str, str]]
    """Labels of the ResourceQuota."""


def gpu_quota_hard(gpus: int, gpu_resource_name: str = "nvidia.com/gpu", limits: bool = False) -> dict[str, str]:
    """The ResourceQuota's ``spec.hard``: ``{"requests.nvidia.com/gpu": "8"}`` (and the ``limits.`` item if asked)."""
    hard = {f"requests.{gpu_resource_name}": str(gpus)}
    if limits:
        hard[f"limits.{gpu_resource_name}"] = str(gpus)
    return hard


def validate_gpu_quota_args(args: GpuQuotaArgs) -> None:
    """Raise ``ValueError`` naming the argument, the value and what is accepted, for the first bad argument."""
    namespace = args.get("namespace")
    if not isinstance(namespace, str) or len(namespace) > 63 or not _DNS_LABEL.match(namespace):
        raise ValueError(f"GpuQuota namespace: {namespace!r} is not accepted: a DNS label such as vllm-prod")
    gpus = args.get("gpus")
    if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 0:
        raise ValueError(f"GpuQuota gpus: {gpus!r} is not accepted: a whole number of GPUs, 0 or more")
    resource = args.get("gpu_resource_name", "nvidia.com/gpu")
    if not isinstance(resource, str) or not _RESOURCE_NAME.match(resource):
        raise ValueError(
            f"GpuQuota gpu_resource_name: {resource!r} is not accepted: an extended resource name such as nvidia.com/gpu"
        )
    name = args.get("quota_name", "gpu-quota")
    if not isinstance(name, str) or len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        raise ValueError(f"GpuQuota quota_name: {name!r} is not accepted: a DNS subdomain such as gpu-quota")


class GpuQuota(pulumi.ComponentResource):
    """A ResourceQuota capping the GPUs the pods of one namespace request, so a stack cannot take more than its share.

    Pods beyond the quota are refused at admission with ``exceeded quota``; ``pulumi preview`` with
    the policy pack (``vllm-gpu-quota``) reports a stack that would not fit before anything is applied.
    """

    quota_name: pulumi.Output[str]
    """Name of the ResourceQuota."""
    gpus: int
    """The GPU limit."""

    def __init__(self, name: str, args: GpuQuotaArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        # Validation comes before registration so bad input creates nothing, not even this component.
        validate_gpu_quota_args(args)
        super().__init__(TOKEN, name, None, opts)
        self.gpus = args["gpus"]
        hard = gpu_quota_hard(args["gpus"], args.get("gpu_resource_name", "nvidia.com/gpu"), args.get("limits", False))
        self._quota = k8s.core.v1.ResourceQuota(
            f"{name}-quota",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=args.get("quota_name", "gpu-quota"), namespace=args["namespace"], labels=args.get("labels", {})
            ),
            spec=k8s.core.v1.ResourceQuotaSpecArgs(hard=hard),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.quota_name = object_name(self._quota)
        self.register_outputs({"quota_name": self.quota_name, "gpus": self.gpus})
