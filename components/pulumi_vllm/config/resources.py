"""The sections about where and on what the model runs: ``parallelism``, ``resources``, ``cache``,
``hfTokenSecret``, ``probes``, ``service``, ``capacity`` and ``quota``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from pulumi_vllm.config.base import (
    _LABEL_KEY,
    PROJECT,
    _check_quantity,
    _Section,
)
from pulumi_vllm.config.kubernetes_enums import check_value


class ParallelismSpec(_Section):
    """How the model is split across GPUs."""

    tensor_parallel_size: int = Field(default=1, ge=1)
    """GPUs one copy of the model is split across inside a node (``--tensor-parallel-size``)."""
    pipeline_parallel_size: int = Field(default=1, ge=1)
    """Pipeline stages across nodes (``--pipeline-parallel-size``)."""
    data_parallel_size: int = Field(default=1, ge=1)
    """Copies of the model in one pod, each on tensor x pipeline GPUs, behind one server (``--data-parallel-size``);
    the pod requests tensor x pipeline x data GPUs. One node only."""
    enable_expert_parallel: bool = False
    """Shard the experts of a mixture-of-experts model across the tensor x data parallel GPUs instead of splitting
    each expert (``--enable-expert-parallel``); MoE models only."""
    gpus_per_node: int | None = Field(default=None, ge=1)
    """GPUs on each GPU node of the cluster; bounds the GPUs of one pod."""
    gpus_per_pod: int | None = Field(default=None, ge=1)
    """GPUs each pod requests; defaults to the whole world size when it fits in a node."""
    backend: Literal["plain", "leaderworkerset", "kuberay"] = "plain"
    """Multi-node backend: plain StatefulSet, LeaderWorkerSet, or a KubeRay RayCluster."""
    ray_wait_timeout_seconds: int = Field(default=600, ge=30)
    """Multi-node: how long the Ray head waits for every pod to join (and a worker for the head) before
    its container fails with a message naming what is missing; counts against probes.startupTimeoutSeconds."""


class ResourcesSpec(_Section):
    """Compute resources and scheduling of the vLLM pods."""

    gpu_count: int | None = Field(default=None, ge=1)
    """GPUs per pod (same as parallelism.gpusPerPod); defaults to tensor x pipeline parallel size on one node."""
    gpu_resource_name: str = "nvidia.com/gpu"
    """Extended resource name of the GPUs (``amd.com/gpu`` for AMD)."""
    gpu_type: str | None = None
    """GPU model (e.g. H100-80GB, A100-40GB, L4) for the capacity planner; optional."""
    pin_gpu_type: bool = True
    """With ``gpuType`` set, pin the GPU pods to nodes of that GPU (required node affinity on GPU feature
    discovery's ``nvidia.com/gpu.product`` and the clouds' GPU labels); ``false`` for none."""
    cpu_request: str | None = None
    """CPU request; unset: 2 x (2 + GPUs per pod), vLLM's guidance of 2 + N cores for N GPUs, in vCPUs."""
    memory_request: str | None = None
    """Memory request; unset: 2Gi per vLLM process (2 + GPUs per pod) plus the pod's share of the checkpoint and
    its CPU offload buffers, at least 16Gi."""
    cpu_limit: str | None = None
    """CPU limit; unset by default so tokenization and scheduling are not throttled."""
    memory_limit: str | None = None
    """Memory limit; defaults to the request plus the shared-memory size."""
    shm_size: str | None = None
    """Size of the memory-backed /dev/shm; defaults to 2Gi per GPU (at least 2Gi)."""
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[dict[str, Any]] | None = None
    """Pod tolerations in Kubernetes form (``key``, ``operator``, ``value``, ``effect``). Unset: every GPU pod
    tolerates the GPU resource's taint (``<gpuResourceName>`` Exists NoSchedule), as GPU node pools are commonly
    tainted; ``[]``: no tolerations."""
    runtime_class_name: str | None = None
    """RuntimeClass of the pods (e.g. ``nvidia`` when the GPU runtime is not the default)."""

    def gpu_selector_conflict(self) -> str:
        """Why ``nodeSelector`` contradicts ``gpuType`` (a GPU label naming another GPU), or empty.

        The capacity plan and the GPU pinning are for ``gpuType``; a selector on another GPU's nodes would run
        the pods on hardware the plan was not made for (or leave them Pending).
        """
        from pulumi_vllm.capacity.gpus import gpu_from_node_label, lookup_gpu

        if not self.gpu_type:
            return ""
        try:
            wanted = lookup_gpu(self.gpu_type).name
        except ValueError:
            return ""  # an unknown GPU type is refused by the capacity check in its own words
        for key, value in self.node_selector.items():
            found = gpu_from_node_label(key, value)
            if found is not None and found.name != wanted:
                return (
                    f"{PROJECT}:resources.nodeSelector.{key}: {value!r} is not accepted: it selects {found.name} nodes, "
                    f"but resources.gpuType is {self.gpu_type!r}, the GPU the capacity plan and the pinning are for; "
                    f"select {wanted} nodes, or set resources.gpuType to {found.name}"
                )
        return ""

    def pod_tolerations(self, gpus: int) -> list[dict[str, Any]]:
        """The pod's tolerations: the configured ones, or, for a GPU pod, the GPU resource's taint.

        GPU node pools are commonly tainted ``nvidia.com/gpu=present:NoSchedule`` (EKS, GKE and AKS GPU pools,
        the GPU operator's guidance) so that only GPU pods land there; without the toleration such a pod stays
        Pending ("had untolerated taint"). ``resources.tolerations: []`` asks for none.
        """
        if self.tolerations is not None:
            return [dict(item) for item in self.tolerations]
        if not gpus:
            return []
        return [{"key": self.gpu_resource_name, "operator": "Exists", "effect": "NoSchedule"}]

    @field_validator("cpu_request", "memory_request", "cpu_limit", "memory_limit", "shm_size")
    @classmethod
    def _quantities(cls, value: str | None) -> str | None:
        return _check_quantity(value, "a resource")

    @field_validator("gpu_resource_name")
    @classmethod
    def _resource_name(cls, value: str) -> str:
        if not _LABEL_KEY.match(value) or "/" not in value:
            raise ValueError(f"{value!r} is not an extended resource name such as nvidia.com/gpu")
        return value

    @field_validator("tolerations")
    @classmethod
    def _tolerations(cls, value: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        allowed = {"key", "operator", "value", "effect", "tolerationSeconds"}
        for index, item in enumerate(value or ()):
            unknown = set(item) - allowed
            if unknown:
                raise ValueError(
                    f"toleration {index} has unknown field(s) {sorted(unknown)}; accepted: {sorted(allowed)}"
                )
            # The API server refuses these with "Unsupported value"; the lists are the API's own.
            for field in ("operator", "effect"):
                if item.get(field) not in (None, ""):
                    check_value(
                        f"io.k8s.api.core.v1.Toleration.{field}", item[field],
                        f"{PROJECT}:resources.tolerations[{index}].{field}",
                    )
        return value


class CacheSpec(_Section):
    """The model cache: a PersistentVolumeClaim holding the Hugging Face cache."""

    size: str = "100Gi"
    """Requested capacity; room for the weights of every model this stack will serve."""
    storage_class: str | None = None
    """StorageClass; the cluster default when unset."""
    access_mode: Literal["ReadWriteOnce", "ReadWriteMany", "ReadWriteOncePod"] = "ReadWriteOnce"
    """ReadWriteMany lets replicas on several nodes share one cache."""
    existing_claim: str | None = None
    """Use this existing claim instead of creating one (nothing is created or deleted)."""
    protect: bool = False
    """Pulumi ``protect``: refuse to delete the claim at all until unset."""
    retain_on_delete: bool = True
    """Keep the claim (and its data) in the cluster when the stack is destroyed."""

    @field_validator("size")
    @classmethod
    def _size(cls, value: str) -> str:
        return _check_quantity(value, "the cache size") or value


class SecretRef(_Section):
    """A key of an existing Kubernetes Secret."""

    name: str
    key: str = "token"


class ProbesSpec(_Section):
    """Health checking of the vLLM server (all on ``/health``)."""

    startup_timeout_seconds: int = Field(default=1800, ge=60)
    """Time allowed for the first download and load of the model before the pod is restarted."""
    readiness_period_seconds: int = Field(default=5, ge=1)
    liveness_period_seconds: int = Field(default=10, ge=1)
    liveness_failure_threshold: int = Field(default=3, ge=1)


class ServiceSpec(_Section):
    """The Service in front of the vLLM pods."""

    port: int = Field(default=80, ge=1, le=65535)
    type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = "ClusterIP"


class CapacitySpec(_Section):
    """The capacity check at validation (needs ``resources.gpuType`` and known model facts)."""

    check: Literal["error", "warning", "off"] = "error"
    """``error``: a config that cannot fit fails validation; ``warning``: it is reported only."""
    min_concurrency: float = Field(default=1.0, ge=0)
    """Minimum predicted concurrency at maxModelLen below which the check reports."""


class QuotaSpec(_Section):
    """A ResourceQuota on GPUs for the namespace, so the cluster enforces the ceiling outside Pulumi too."""

    enabled: bool = False
    gpus: int | None = Field(default=None, ge=0)
    """GPUs the namespace may request in total; defaults to what this stack requests."""
