"""Pure builders of the vLLM pod template, shared by every Kubernetes workload.

The Deployment, the Ray head and workers, the LeaderWorkerSet, the RayCluster and the batch Job all
run the same container: same image, cache, token, shared memory, GPUs and probes. The template is
written in the API's own camelCase so that it serves typed resources and custom resources alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from pulumi_vllm.config import ProbesSpec, ResourcesSpec, StackConfig
from pulumi_vllm.engine.container import HEALTH_PATH, MODEL_CACHE_PATH, default_shm_size, quantity_bytes

CONTAINER_PORT_NAME = "http"
STARTUP_PROBE_PERIOD_SECONDS = 10



@dataclass(frozen=True)
class SecretKeyRef:
    """One key of a Kubernetes Secret (the name may be a Pulumi Output)."""

    name: Any
    key: str


@dataclass(frozen=True)
class ContainerSettings:
    """What a vLLM container needs, independent of the workload kind that runs it."""

    image: str
    command: tuple[str, ...]
    args: tuple[str, ...]
    gpus: int
    resources: ResourcesSpec
    cache_claim: Any
    hf_token: SecretKeyRef | None = None
    api_key: SecretKeyRef | None = None
    env: dict[str, str] = field(default_factory=dict)
    extra_env: tuple[dict[str, Any], ...] = ()
    probes: ProbesSpec | None = None
    container_port: int = 8000
    name: str = "vllm"


def shm_size(resources: ResourcesSpec, gpus: int) -> str:
    """Size of /dev/shm: the configured size, or :func:`default_shm_size`."""
    return resources.shm_size or default_shm_size(gpus)


def memory_limit(resources: ResourcesSpec, gpus: int) -> str:
    """The memory limit: configured, or the request plus /dev/shm (a Memory emptyDir counts against it)."""
    if resources.memory_limit:
        return resources.memory_limit
    total = quantity_bytes(resources.memory_request) + quantity_bytes(shm_size(resources, gpus))
    return f"{math.ceil(total / 2**30)}Gi"


def _probes(probes: ProbesSpec) -> dict[str, Any]:
    get = {"path": HEALTH_PATH, "port": CONTAINER_PORT_NAME}
    return {
        # Generous: the first start downloads and loads the weights; the other probes wait for it.
        "startupProbe": {
            "httpGet": get,
            "periodSeconds": STARTUP_PROBE_PERIOD_SECONDS,
            "failureThreshold": math.ceil(probes.startup_timeout_seconds / STARTUP_PROBE_PERIOD_SECONDS),
            "timeoutSeconds": 5,
        },
        "readinessProbe": {
            "httpGet": get,
            "periodSeconds": probes.readiness_period_seconds,
            "failureThreshold": 3,
            "timeoutSeconds": 5,
        },
        "livenessProbe": {
            "httpGet": get,
            "periodSeconds": probes.liveness_period_seconds,
            "failureThreshold": probes.liveness_failure_threshold,
            "timeoutSeconds": 10,
        },
    }


def _secret_env(name: str, ref: SecretKeyRef) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}}


def vllm_container(settings: ContainerSettings) -> dict[str, Any]:
    """The vLLM container, camelCase."""
    env: list[dict[str, Any]] = [{"name": "HF_HOME", "value": MODEL_CACHE_PATH}]
    if settings.hf_token is not None:
        env.append(_secret_env("HF_TOKEN", settings.hf_token))
    if settings.api_key is not None:
        env.append(_secret_env("VLLM_API_KEY", settings.api_key))
    env += [{"name": key, "value": value} for key, value in sorted(settings.env.items())]
    env += list(settings.extra_env)
    resources = settings.resources
    gpu = {resources.gpu_resource_name: str(settings.gpus)} if settings.gpus else {}
    limits: dict[str, Any] = {"memory": memory_limit(resources, settings.gpus), **gpu}
    if resources.cpu_limit:
        limits["cpu"] = resources.cpu_limit
    container: dict[str, Any] = {
        "name": settings.name,
        "image": settings.image,
        "imagePullPolicy": "IfNotPresent",
        "command": list(settings.command),
        "args": list(settings.args),
        "env": env,
        "ports": [{"name": CONTAINER_PORT_NAME, "containerPort": settings.container_port, "protocol": "TCP"}],
        "resources": {
            "requests": {"cpu": resources.cpu_request, "memory": resources.memory_request, **gpu},
            "limits": limits,
        },
        "volumeMounts": [
            {"name": "model-cache", "mountPath": MODEL_CACHE_PATH},
            {"name": "dshm", "mountPath": "/dev/shm"},
        ],
    }
    if settings.probes is not None:
        container.update(_probes(settings.probes))
    return container


def gpu_tolerations(resources: ResourcesSpec, gpus: int) -> list[dict[str, Any]]:
    """The pod's tolerations: the configured ones, or, for a GPU pod, the GPU resource's taint.

    GPU node pools are commonly tainted ``nvidia.com/gpu=present:NoSchedule`` (EKS, GKE and AKS GPU pools,
    the GPU operator's guidance) so that only GPU pods land there; without the toleration such a pod stays
    Pending ("had untolerated taint"). ``resources.tolerations: []`` asks for none.
    """
    if resources.tolerations is not None:
        return [dict(item) for item in resources.tolerations]
    if not gpus:
        return []
    return [{"key": resources.gpu_resource_name, "operator": "Exists", "effect": "NoSchedule"}]


def vllm_pod_spec(settings: ContainerSettings, **extra: Any) -> dict[str, Any]:
    """A pod spec running the vLLM container; ``extra`` adds pod-level fields (restartPolicy, ...)."""
    resources = settings.resources
    spec: dict[str, Any] = {
        # A Service named like a vLLM env var prefix (e.g. "vllm") would inject VLLM_PORT=tcp://...
        # into the pod and break vLLM's own VLLM_PORT setting.
        "enableServiceLinks": False,
        "containers": [vllm_container(settings)],
        "volumes": [
            {"name": "model-cache", "persistentVolumeClaim": {"claimName": settings.cache_claim}},
            # Tensor parallelism (NCCL) needs far more shared memory than the container default 64Mi.
            {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": shm_size(resources, settings.gpus)}},
        ],
        "terminationGracePeriodSeconds": 60,
    }
    if resources.node_selector:
        spec["nodeSelector"] = dict(resources.node_selector)
    tolerations = gpu_tolerations(resources, settings.gpus)
    if tolerations:
        spec["tolerations"] = tolerations
    if resources.runtime_class_name:
        spec["runtimeClassName"] = resources.runtime_class_name
    spec.update(extra)
    return spec


def selector_labels(name: str, component: str = "server") -> dict[str, str]:
    """Labels that select one workload's pods; never changed after creation (selectors are immutable)."""
    return {
        "app.kubernetes.io/name": "vllm",
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/component": component,
    }


def object_labels(config: StackConfig, component: str = "server") -> dict[str, str]:
    """Labels of every object and pod: the selector labels, Pulumi's marker, and the user's labels."""
    return {
        **selector_labels(config.name, component),
        "app.kubernetes.io/managed-by": "pulumi",
        **config.labels,
    }
