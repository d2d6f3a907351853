"""The pods of a multi-node model and the objects that hold them, as plain data (no Pulumi).

One vLLM container becomes a Ray head and Ray workers: the head runs
:func:`~pulumi_vllm.distributed.ray.head_script` with the one vLLM command line of
:func:`~pulumi_vllm.engine.argv.vllm_command` and keeps vLLM's ``/health`` probes; the workers run
:func:`~pulumi_vllm.distributed.ray.worker_script`. Both keep everything else of
:func:`~pulumi_vllm.kubernetes.pod.vllm_pod_spec` (image, cache, token, shared memory, GPUs) and
get their own IP (``VLLM_HOST_IP``), the Ray settings and the network settings. The specs of the
LeaderWorkerSet and the RayCluster are written here too; :mod:`pulumi_vllm.kubernetes.multinode`
turns all of it into resources.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from pulumi_vllm.config import NetworkSpec, StackConfig
from pulumi_vllm.distributed import ray
from pulumi_vllm.distributed.network import network_env_values
from pulumi_vllm.engine.argv import EngineArgs, vllm_command
from pulumi_vllm.kubernetes.pod import ContainerSettings, selector_labels, vllm_pod_spec
from pulumi_vllm.plan import ServingPlan

HEAD_COMPONENT = "ray-head"
WORKER_COMPONENT = "ray-worker"

KUBERAY_OVERWRITE_COMMAND_ANNOTATION = "ray.io/overwrite-container-cmd"
"""Tells KubeRay (1.1+) to run the containers' own commands; it then passes ``ray start`` in an env var."""
KUBERAY_WORKER_GROUP = "gpu-workers"
KUBERAY_NODE_MANAGER_PORT = 6380
"""Port of each KubeRay worker's raylet, fixed so that the workers' probes can check it."""

WAIT_FOR_ANNOTATION = "pulumi.com/waitFor"
"""Tells Pulumi when a custom resource is ready (``pulumi up`` waits for it, as for a StatefulSet)."""

def head_selector(config: StackConfig) -> dict[str, str]:
    """Labels that select the Ray head pods, the only pods that serve the OpenAI API."""
    return selector_labels(config.name, HEAD_COMPONENT)


def worker_selector(config: StackConfig) -> dict[str, str]:
    """Labels that select the Ray worker pods."""
    return selector_labels(config.name, WORKER_COMPONENT)


def head_service_name(plan: ServingPlan) -> str:
    """Name of the plain backend's headless Service in front of the Ray head (also the head StatefulSet's)."""
    return f"{plan.deployment_name}-ray-head"


def worker_workload_name(plan: ServingPlan) -> str:
    """Name of the plain backend's worker StatefulSet."""
    return f"{plan.deployment_name}-ray-worker"


def group_workload_name(plan: ServingPlan) -> str:
    """Name of the LeaderWorkerSet or RayCluster (``<name>-ray``: the client Service keeps ``<name>``)."""
    return f"{plan.deployment_name}-ray"


def ray_env(plan: ServingPlan, head_host: str | None) -> tuple[dict[str, Any], ...]:
    """The pod's own IP (downward API), the Ray settings the scripts read, and the network settings."""
    config = plan.config
    values = {
        **ray.ray_environment(
            expected_nodes=plan.topology.pods,
            wait_timeout_seconds=config.parallelism.ray_wait_timeout_seconds,
            head_host=head_host,
        ),
        **network_env_values(config.network),
    }
    own_ip = {"name": ray.HOST_IP_ENV, "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}
    return (own_ip, *({"name": key, "value": value} for key, value in values.items()))


def _apply_network(spec: dict[str, Any], network: NetworkSpec) -> dict[str, Any]:
    if network.infiniband:
        container = spec["containers"][0]
        # Registering RDMA memory pins pages: the container needs IPC_LOCK (and the RDMA devices).
        # Kept beside the hardened settings (which drop every other capability).
        capabilities = container.setdefault("securityContext", {}).setdefault("capabilities", {})
        capabilities["add"] = [*capabilities.get("add", []), "IPC_LOCK"]
        for section in ("requests", "limits"):
            container["resources"][section][network.rdma_resource_name] = str(network.rdma_resource_count)
    return spec


def _kuberay_worker_probes(spec: dict[str, Any]) -> dict[str, Any]:
    # Without probes of its own, a worker gets KubeRay's, which ask the Ray dashboard agent over HTTP
    # and answer only where Ray's dashboard packages (ray[default]) are installed; the raylet's port
    # answers with any Ray install.
    raylet = {"tcpSocket": {"port": KUBERAY_NODE_MANAGER_PORT}, "periodSeconds": 10, "timeoutSeconds": 5}
    container = spec["containers"][0]
    container["readinessProbe"] = {**raylet, "failureThreshold": 3}
    container["livenessProbe"] = {**raylet, "failureThreshold": 6}
    return spec


@dataclass(frozen=True)
class RayPodTemplates:
    """The head's and the workers' pod templates (camelCase ``metadata`` and ``spec``)."""

    head: dict[str, Any]
    worker: dict[str, Any]


def ray_pod_templates(
    plan: ServingPlan,
    engine: EngineArgs,
    container: ContainerSettings,
    labels: dict[str, str] | None = None,
    pod_annotations: dict[str, Any] | None = None,
) -> RayPodTemplates:
    """The head and worker pod templates of ``plan``'s backend, from one vLLM container."""
    config = plan.config
    backend = config.parallelism.backend
    gpus = plan.topology.gpus_per_pod
    # One command builder: the head serves exactly what vllm_command makes of the engine settings.
    serve = vllm_command(dataclasses.replace(engine, distributed_executor_backend="ray")).argv
    if backend == "kuberay":
        head_start, worker_start, head_host = ray.KUBERAY_RAY_START, ray.KUBERAY_RAY_START, None
        worker_wait: str | None = None  # KubeRay's init container waits for the head
    else:
        head_start, worker_start = ray.head_start_command(gpus), ray.worker_start_command(gpus)
        if backend == "leaderworkerset":
            head_host, worker_wait = None, f"${{{ray.LWS_LEADER_ADDRESS_ENV}}}"
        else:
            head_host = f"{head_service_name(plan)}.{config.namespace}.svc"
            worker_wait = f"${{{ray.HEAD_HOST_ENV}}}"
    base = dataclasses.replace(container, gpus=gpus, extra_env=(*ray_env(plan, head_host), *container.extra_env))
    head = dataclasses.replace(base, command=("/bin/bash", "-c", ray.head_script(head_start, serve)), args=())
    worker = dataclasses.replace(
        base, command=("/bin/bash", "-c", ray.worker_script(worker_start, worker_wait)), args=(), probes=None
    )
    head_spec = _apply_network(vllm_pod_spec(head), config.network)
    worker_spec = _apply_network(vllm_pod_spec(worker), config.network)
    if backend == "kuberay":
        worker_spec = _kuberay_worker_probes(worker_spec)
    labels = labels or {}
    annotations = dict(pod_annotations or {})
    return RayPodTemplates(
        head={"metadata": {"labels": {**labels, **head_selector(config)}, "annotations": annotations}, "spec": head_spec},
        worker={
            "metadata": {"labels": {**labels, **worker_selector(config)}, "annotations": annotations},
            "spec": worker_spec,
        },
    )


def leaderworkerset_spec(plan: ServingPlan, templates: RayPodTemplates) -> dict[str, Any]:
    """The LeaderWorkerSet spec: groups of ``pods`` (leader = Ray head), recreated whole when a pod restarts."""
    return {
        "replicas": plan.config.replicas,
        # LeaderReady would deadlock: the leader is ready only once the workers have joined.
        "startupPolicy": "LeaderCreated",
        # No surge: a new group needs GPUs that only the old group frees.
        "rolloutStrategy": {
            "type": "RollingUpdate",
            "rollingUpdateConfiguration": {"maxUnavailable": 1, "maxSurge": 0},
        },
        "leaderWorkerTemplate": {
            "size": plan.topology.pods,
            "restartPolicy": "RecreateGroupOnPodRestart",
            "leaderTemplate": templates.head,
            "workerTemplate": templates.worker,
        },
    }


def raycluster_spec(plan: ServingPlan, templates: RayPodTemplates) -> dict[str, Any]:
    """The RayCluster spec: a head group and one fixed-size worker group of ``pods - 1``."""
    gpus = str(plan.topology.gpus_per_pod)
    common = {"num-gpus": gpus, "disable-usage-stats": "true"}
    workers = plan.topology.pods - 1
    return {
        "headGroupSpec": {
            # The dashboard stays off, as on the other backends (vLLM does not need its job API).
            "rayStartParams": {**common, "port": str(ray.RAY_PORT), "include-dashboard": "false"},
            "template": templates.head,
        },
        "workerGroupSpecs": [
            {
                "groupName": KUBERAY_WORKER_GROUP,
                "replicas": workers,
                "minReplicas": workers,
                "maxReplicas": workers,
                "rayStartParams": {**common, "node-manager-port": str(KUBERAY_NODE_MANAGER_PORT)},
                "template": templates.worker,
            }
        ],
    }


@dataclass(frozen=True)
class GroupWorkload:
    """The one custom resource of the leaderworkerset and kuberay backends."""

    api_version: str
    kind: str
    annotations: dict[str, str]
    """Annotations besides the model facts: Pulumi's readiness rule, and KubeRay's command switch."""
    spec: dict[str, Any]


def group_workload(plan: ServingPlan, templates: RayPodTemplates) -> GroupWorkload:
    """The LeaderWorkerSet or RayCluster of ``plan``'s backend."""
    if plan.config.parallelism.backend == "leaderworkerset":
        return GroupWorkload(
            "leaderworkerset.x-k8s.io/v1",
            "LeaderWorkerSet",
            {WAIT_FOR_ANNOTATION: "condition=Available"},
            leaderworkerset_spec(plan, templates),
        )
    return GroupWorkload(
        "ray.io/v1",
        "RayCluster",
        {WAIT_FOR_ANNOTATION: "jsonpath={.status.state}=ready", KUBERAY_OVERWRITE_COMMAND_ANNOTATION: "true"},
        raycluster_spec(plan, templates),
    )
