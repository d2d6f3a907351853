"""Ray Serve LLM on Kubernetes: one KubeRay RayService whose Serve app runs vLLM on the GPU worker pods.

KubeRay creates the Ray cluster (a head without GPUs and one group of GPU workers), starts Ray in
every pod, waits for the head to be ready and submits ``spec.serveConfigV2`` (from
:func:`pulumi_vllm.engine.profiles.ray_serve_llm.serve_config`) to its dashboard. Ray Serve then places
each model replica's ``tensor x pipeline`` GPUs over the workers and serves the OpenAI API on port 8000
of every node; KubeRay labels a pod ``ray.io/serve=true`` while its Serve proxy is healthy.

The workers are the same pods as every other workload's (:func:`~pulumi_vllm.kubernetes.pod.vllm_pod_spec`:
image, cache, token, shared memory, GPUs, tolerations, node selector, hardening), with the network
settings of the other Ray backends. The probes are KubeRay's own: the Serve proxy answers ``/-/healthz``
only once the app is deployed, and KubeRay deploys it only once the head is ready, so an HTTP probe on
the head would wait for itself. The client Service (created by the caller) selects
:attr:`RayServeLlm.serve_selector`: the head, while its proxy is healthy.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NotRequired, TypedDict

import pulumi
import pulumi_kubernetes as k8s
import yaml

from pulumi_vllm.distributed import ray
from pulumi_vllm.distributed.network import network_env_values
from pulumi_vllm.engine.profiles import ray_serve_llm
from pulumi_vllm.engine.profiles.stack import serve_spec
from pulumi_vllm.kubernetes.pod import ContainerSettings, vllm_pod_spec
from pulumi_vllm.kubernetes.ray_pods import (
    KUBERAY_WORKER_GROUP,
    WAIT_FOR_ANNOTATION,
    _apply_network,
    head_selector,
    worker_selector,
)
from pulumi_vllm.kubernetes.server import ROLLOUT_MARGIN_SECONDS
from pulumi_vllm.plan import ServingPlan

TOKEN = "pulumi-vllm:index:RayServeLlm"

SERVE_LABEL = "ray.io/serve"
"""Set by KubeRay on a RayService's pods: ``"true"`` while the pod's Serve proxy is healthy."""

KUBERAY_PORTS = {"gcs-server": ray.RAY_PORT, "dashboard": 8265, "client": ray.RAY_CLIENT_SERVER_PORT}
"""The head's ports under the names KubeRay looks them up by (its head Service lists exactly the ports named)."""
SERVE_PORT_NAME = "serve"
"""KubeRay's name of the Ray Serve port (its serve Service and proxy health checks use it)."""
METRICS_PORT_NAME = "metrics"
_CACHE_VOLUME = "model-cache"


class RayServeLlmArgs(TypedDict):
    """Arguments of :class:`RayServeLlm`."""

    plan: ServingPlan
    """The validated plan: topology (pods and GPUs of one replica), replicas, names and network settings."""
    container: ContainerSettings
    """The engine container every pod starts from (image, cache, token, shared memory, resources, hardening)."""
    labels: dict[str, str]
    """Labels of the RayService and its pods; the component label is set per role."""
    pod_annotations: NotRequired[dict[str, pulumi.Input[str]]]
    """Pod-template annotations; a change restarts the pods (used for secret rotation)."""


def _ports(names: dict[str, int]) -> list[dict[str, Any]]:
    return [{"name": name, "containerPort": port, "protocol": "TCP"} for name, port in names.items()]


def _ray_env(plan: ServingPlan) -> tuple[dict[str, Any], ...]:
    # The pod's own address, as vLLM's Ray workers advertise it, and the stack's NCCL and network settings.
    own_ip = {"name": ray.HOST_IP_ENV, "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}
    network = network_env_values(plan.config.network)
    return (own_ip, *({"name": key, "value": value} for key, value in network.items()))


def _ray_pod_spec(settings: ContainerSettings, plan: ServingPlan, ports: dict[str, int]) -> dict[str, Any]:
    """:func:`vllm_pod_spec` of ``settings`` for a KubeRay pod: KubeRay's port names, and KubeRay's ``ray start``."""
    spec = _apply_network(vllm_pod_spec(settings), plan.config.network)
    container = spec["containers"][0]  # KubeRay's Ray container is the first
    # No command: KubeRay runs `ray start ... --block` in the image's shell.
    del container["command"], container["args"]
    container["ports"] = _ports(ports)
    return spec


def rayservice_spec(
    plan: ServingPlan,
    container: ContainerSettings,
    labels: dict[str, str] | None = None,
    pod_annotations: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The RayService spec (camelCase): the Serve config, and a head group and one GPU worker group."""
    config = plan.config
    gpus = plan.gpus_per_pod
    spec = serve_spec(config, gpus=gpus, cache_path=container.cache_path)
    replicas = config.replicas
    document = ray_serve_llm.serve_config(spec, min_replicas=replicas, max_replicas=replicas)
    base = dataclasses.replace(
        container, command=(), args=(), probes=None, extra_env=(*_ray_env(plan), *container.extra_env)
    )
    serve_ports = {SERVE_PORT_NAME: ray_serve_llm.SERVE_PORT, METRICS_PORT_NAME: ray_serve_llm.METRICS_PORT}

    head = _ray_pod_spec(dataclasses.replace(base, gpus=0), plan, {**KUBERAY_PORTS, **serve_ports})
    # The head runs GCS, the dashboard, the Serve controller and a proxy, never vLLM: it needs no model
    # cache (a ReadWriteOnce claim could not follow it to another node anyway) ...
    head["volumes"] = [volume for volume in head["volumes"] if volume["name"] != _CACHE_VOLUME]
    head_container = head["containers"][0]
    head_container["volumeMounts"] = [m for m in head_container["volumeMounts"] if m["name"] != _CACHE_VOLUME]
    # ... but may share the workers' nodes: a node selector that picks a tainted GPU pool must not strand it.
    tolerations = config.resources.pod_tolerations(gpus)
    if tolerations:
        head["tolerations"] = tolerations
    worker = _ray_pod_spec(dataclasses.replace(base, gpus=gpus), plan, serve_ports)

    labels = labels or {}
    workers = plan.topology.pods * replicas
    common = {"disable-usage-stats": "true"}
    return {
        "serveConfigV2": yaml.safe_dump(document, sort_keys=False),
        # No second cluster beside the running one for an upgrade (KubeRay's default): its GPUs are not there.
        # Serve config changes apply in place; cluster changes replace the RayService (see RayServeLlm).
        "upgradeStrategy": {"type": "None"},
        "rayClusterConfig": {
            "rayVersion": ray_serve_llm.ray_version(container.image),
            "headGroupSpec": {
                # No CPUs or GPUs for Ray on the head: every Serve replica lands on a worker.
                "rayStartParams": {**common, "dashboard-host": "0.0.0.0", "num-cpus": "0", "num-gpus": "0"},
                "template": {
                    "metadata": {
                        "labels": {**labels, **head_selector(config)},
                        "annotations": dict(pod_annotations or {}),
                    },
                    "spec": head,
                },
            },
            "workerGroupSpecs": [
                {
                    "groupName": KUBERAY_WORKER_GROUP,
                    # Every replica's pods at once: no autoscaler, the GPUs are reserved for the replicas.
                    "replicas": workers,
                    "minReplicas": workers,
                    "maxReplicas": workers,
                    "rayStartParams": {**common, "num-gpus": str(gpus)},
                    "template": {
                        "metadata": {
                            "labels": {**labels, **worker_selector(config)},
                            "annotations": dict(pod_annotations or {}),
                        },
                        "spec": worker,
                    },
                }
            ],
        },
    }


class RayServeLlm(pulumi.ComponentResource):
    """Ray Serve LLM: a KubeRay RayService serving the model through Ray Serve's OpenAI app on GPU workers."""

    serve_selector: dict[str, str]
    """Labels of the Ray head pod while its Serve proxy is healthy (for the client Service, port 8000)."""
    gpus: int
    """GPUs requested by every worker pod together."""
    pods_per_replica: int
    """Worker pods of one model replica."""
    worker_pods: int
    """Worker pods of all replicas (the head has no GPUs and is not counted)."""
    port_name: str
    """Name of the pods' OpenAI API port (8000): ``serve``, as KubeRay requires, where other workloads say ``http``."""
    workload_names: pulumi.Output[list[str]]
    """Name of the RayService."""

    def __init__(self, name: str, args: RayServeLlmArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        plan = args["plan"]
        config = plan.config
        labels = dict(args.get("labels") or {})
        # Built first: a mistake fails before anything is registered.
        spec = rayservice_spec(plan, args["container"], labels, args.get("pod_annotations"))
        super().__init__(TOKEN, name, None, opts)
        self.serve_selector = {**head_selector(config), SERVE_LABEL: "true"}
        self.pods_per_replica = plan.topology.pods
        self.worker_pods = plan.topology.pods * config.replicas
        self.gpus = plan.total_gpus
        self.port_name = SERVE_PORT_NAME
        timeout = f"{config.probes.startup_timeout_seconds + ROLLOUT_MARGIN_SECONDS}s"
        self._service = k8s.apiextensions.CustomResource(
            f"{name}-rayservice",
            api_version="ray.io/v1",
            kind="RayService",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=plan.deployment_name,
                namespace=config.namespace,
                labels=labels,
                # Ready once the Serve app runs (KubeRay's RayServiceReady condition).
                annotations={**plan.facts_annotations(), WAIT_FOR_ANNOTATION: "condition=Ready"},
            ),
            spec=spec,
            opts=pulumi.ResourceOptions(
                parent=self,
                custom_timeouts=pulumi.CustomTimeouts(create=timeout, update=timeout),
                # As for the kuberay backend's RayCluster: a changed cluster replaces the RayService, the old one
                # first (same name, and its GPUs are needed); KubeRay alone would leave the running pods as they are.
                replace_on_changes=["spec.rayClusterConfig"],
                delete_before_replace=True,
            ),
        )
        metadata: pulumi.Output[Any] = self._service.metadata  # type: ignore[attr-defined] # set at runtime
        self.workload_names = pulumi.Output.all(metadata.apply(_name))
        self.register_outputs(
            {
                "serve_selector": self.serve_selector,
                "gpus": self.gpus,
                "pods_per_replica": self.pods_per_replica,
                "worker_pods": self.worker_pods,
                "port_name": self.port_name,
                "workload_names": self.workload_names,
            }
        )


def _name(metadata: Any) -> str:
    return str(metadata["name"] if isinstance(metadata, dict) else metadata.name)
