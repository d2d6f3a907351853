"""Pure builders of the vLLM pod template, shared by every Kubernetes workload.

The Deployment, the Ray head and workers, the LeaderWorkerSet, the RayCluster and the batch Job all
run the same container: same image, cache, token, shared memory, GPUs and probes. The template is
written in the API's own camelCase so that it serves typed resources and custom resources alike.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

from pulumi_vllm.config import ProbesSpec, ResourcesSpec, StackConfig
from pulumi_vllm.engine.container import HEALTH_PATH, MODEL_CACHE_PATH, default_shm_size, quantity_bytes
from pulumi_vllm.engine.profiles.base import ENGINE_FILES_PATH
from pulumi_vllm.kubernetes.pod_resources import ModelMemory, cpu_request, gpu_node_affinity, memory_request

CONTAINER_PORT_NAME = "http"
STARTUP_PROBE_PERIOD_SECONDS = 10
TMP_PATH = "/tmp"



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
    cache_path: str = MODEL_CACHE_PATH
    """Where the model cache is mounted (``HF_HOME``); outside /root when the container runs as non-root."""
    security_context: dict[str, Any] | None = None
    """The container's securityContext (camelCase), e.g. from :func:`pulumi_vllm.kubernetes.safety.container_security`."""
    pod_security_context: dict[str, Any] | None = None
    """The pod's securityContext (seccomp profile, user, fsGroup)."""
    tmp_size: str | None = None
    """A writable /tmp of this size limit (an emptyDir), also ``HOME``, for containers that run as non-root."""
    lifecycle: dict[str, Any] | None = None
    """Lifecycle hooks of the serving container (the pre-stop pause)."""
    scheduling: dict[str, Any] = field(default_factory=dict)
    """Pod fields of the serving pods only: priorityClassName, topologySpreadConstraints, the grace period."""
    health_path: str | None = HEALTH_PATH
    """Liveness path of the engine's server; ``None``: a TCP check of the port."""
    ready_path: str = HEALTH_PATH
    """Startup and readiness path (200 once the model is loaded)."""
    ready_command: tuple[str, ...] | None = None
    """A readiness command instead of ``ready_path``, for engines whose HTTP answers before the model is there."""
    api_key_env: str = "VLLM_API_KEY"
    """Environment variable the engine reads its API key from."""
    engine_files: Any = None
    """The ConfigMap (name) of the files the engine reads, mounted read-only at ``engine_files_path``."""
    engine_file_items: tuple[tuple[str, str], ...] = ()
    """(ConfigMap key, path below the mount) of each engine file."""
    engine_files_path: str = ENGINE_FILES_PATH
    model_memory: ModelMemory = field(default_factory=ModelMemory)
    """What the pod loads through host memory (checkpoint share, CPU offload): sizes the default memory request."""
    extra_resources: dict[str, str] = field(default_factory=dict)
    """Further resources requested and limited alike (an RDMA or EFA device, a KV disk tier's ephemeral storage)."""
    extra_volumes: tuple[tuple[dict[str, Any], dict[str, Any]], ...] = ()
    """Further (volume, mount) pairs of the vLLM container (a KV-cache disk tier's ``emptyDir``)."""


def shm_size(resources: ResourcesSpec, gpus: int) -> str:
    """Size of /dev/shm: the configured size, or :func:`default_shm_size`."""
    return resources.shm_size or default_shm_size(gpus)


def requests(resources: ResourcesSpec, gpus: int, memory: ModelMemory | None = None) -> tuple[str, str]:
    """``(cpu, memory)`` requests: ``resources.cpuRequest`` / ``memoryRequest`` when set, else sized for ``gpus``
    GPUs and the model (:mod:`pulumi_vllm.kubernetes.pod_resources`)."""
    return (
        resources.cpu_request or cpu_request(gpus, memory),
        resources.memory_request or memory_request(gpus, memory or ModelMemory()),
    )


def memory_limit(resources: ResourcesSpec, gpus: int, memory: ModelMemory | None = None) -> str:
    """The memory limit: configured, or the request plus /dev/shm (a Memory emptyDir counts against it)."""
    if resources.memory_limit:
        return resources.memory_limit
    total = quantity_bytes(requests(resources, gpus, memory)[1]) + quantity_bytes(shm_size(resources, gpus))
    return f"{math.ceil(total / 2**30)}Gi"


def _probes(probes: ProbesSpec, settings: ContainerSettings) -> dict[str, Any]:
    alive: dict[str, Any] = {"tcpSocket": {"port": CONTAINER_PORT_NAME}}
    if settings.health_path is not None:
        alive = {"httpGet": {"path": settings.health_path, "port": CONTAINER_PORT_NAME}}
    ready: dict[str, Any] = {"httpGet": {"path": settings.ready_path, "port": CONTAINER_PORT_NAME}}
    if settings.ready_command is not None:
        ready = {"exec": {"command": list(settings.ready_command)}}
    return {
        # Generous: the first start downloads and loads the weights; the other probes wait for it.
        "startupProbe": {
            **ready,
            "periodSeconds": STARTUP_PROBE_PERIOD_SECONDS,
            "failureThreshold": math.ceil(probes.startup_timeout_seconds / STARTUP_PROBE_PERIOD_SECONDS),
            "timeoutSeconds": 5,
        },
        "readinessProbe": {
            **ready,
            "periodSeconds": probes.readiness_period_seconds,
            "failureThreshold": 3,
            "timeoutSeconds": 5,
        },
        "livenessProbe": {
            **alive,
            "periodSeconds": probes.liveness_period_seconds,
            "failureThreshold": probes.liveness_failure_threshold,
            "timeoutSeconds": 10,
        },
    }


def _secret_env(name: str, ref: SecretKeyRef) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}}


def vllm_container(settings: ContainerSettings) -> dict[str, Any]:
    """The vLLM container, camelCase."""
    env: list[dict[str, Any]] = [{"name": "HF_HOME", "value": settings.cache_path}]
    if settings.tmp_size is not None:
        # An arbitrary uid has no home directory in the image: caches (vLLM, Triton) go under /tmp.
        env.append({"name": "HOME", "value": TMP_PATH})
    if settings.hf_token is not None:
        env.append(_secret_env("HF_TOKEN", settings.hf_token))
    if settings.api_key is not None:
        env.append(_secret_env(settings.api_key_env, settings.api_key))
    env += [{"name": key, "value": value} for key, value in sorted(settings.env.items())]
    env += list(settings.extra_env)
    resources = settings.resources
    gpu = {resources.gpu_resource_name: str(settings.gpus)} if settings.gpus else {}
    cpu, memory = requests(resources, settings.gpus, settings.model_memory)
    limits: dict[str, Any] = {"memory": memory_limit(resources, settings.gpus, settings.model_memory), **gpu}
    if resources.cpu_limit:
        limits["cpu"] = resources.cpu_limit
    limits.update(settings.extra_resources)
    container: dict[str, Any] = {
        "name": settings.name,
        "image": settings.image,
        "imagePullPolicy": "IfNotPresent",
        "command": list(settings.command),
        "args": list(settings.args),
        "env": env,
        "ports": [{"name": CONTAINER_PORT_NAME, "containerPort": settings.container_port, "protocol": "TCP"}],
        "resources": {
            "requests": {"cpu": cpu, "memory": memory, **gpu, **settings.extra_resources},
            "limits": limits,
        },
        "volumeMounts": [
            {"name": "model-cache", "mountPath": settings.cache_path},
            {"name": "dshm", "mountPath": "/dev/shm"},
        ],
    }
    if settings.tmp_size is not None:
        container["volumeMounts"].append({"name": "tmp", "mountPath": TMP_PATH})
    container["volumeMounts"] += [dict(mount) for _, mount in settings.extra_volumes]
    if settings.engine_files is not None:
        container["volumeMounts"].append(
            {"name": "engine-files", "mountPath": settings.engine_files_path, "readOnly": True}
        )
    if settings.probes is not None:
        container.update(_probes(settings.probes, settings))
    if settings.lifecycle is not None:
        container["lifecycle"] = copy.deepcopy(settings.lifecycle)
    if settings.security_context is not None:
        container["securityContext"] = copy.deepcopy(settings.security_context)
    return container


def gpu_tolerations(resources: ResourcesSpec, gpus: int) -> list[dict[str, Any]]:
    """The pod's tolerations (see :meth:`ResourcesSpec.pod_tolerations`)."""
    return resources.pod_tolerations(gpus)


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
    # Required node affinity on the GPU type, so that a plan sized for one GPU never lands on another.
    affinity = gpu_node_affinity(resources.gpu_type, resources.node_selector, settings.gpus, resources.pin_gpu_type)
    if affinity is not None:
        spec["affinity"] = affinity
    tolerations = gpu_tolerations(resources, settings.gpus)
    if tolerations:
        spec["tolerations"] = tolerations
    if resources.runtime_class_name:
        spec["runtimeClassName"] = resources.runtime_class_name
    if settings.tmp_size is not None:
        spec["volumes"].append({"name": "tmp", "emptyDir": {"sizeLimit": settings.tmp_size}})
    spec["volumes"] += [copy.deepcopy(volume) for volume, _ in settings.extra_volumes]
    if settings.engine_files is not None:
        items = [{"key": key, "path": path} for key, path in settings.engine_file_items]
        spec["volumes"].append({"name": "engine-files", "configMap": {"name": settings.engine_files, "items": items}})
    if settings.pod_security_context is not None:
        spec["securityContext"] = copy.deepcopy(settings.pod_security_context)
    spec.update(copy.deepcopy(settings.scheduling))
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
