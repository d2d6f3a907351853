"""The ``cluster`` section: the GPU platform a serving stack needs under it (NVIDIA stack, operators,
monitoring, cluster-wide objects), each part on or off."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from pulumi_vllm.config.base import _DNS_LABEL, _LABEL_KEY, PROJECT, _Section, check_labels, check_taints

Switch = Literal["auto", "on", "off"]
"""``auto``: installed when a serving stack of the same program needs it; ``on`` / ``off``: always / never."""


def _check_dns_label(value: str, what: str) -> str:
    if len(value) > 63 or not _DNS_LABEL.match(value):
        raise ValueError(f"{value!r} is not a DNS label ({what}: lower-case letters, digits and '-', at most 63)")
    return value


_CHART_SCHEMES = ("oci://", "https://", "http://")
_REGISTRY = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?(:[0-9]{1,5})?(/[a-z0-9]+([._-][a-z0-9]+)*)*$")
"""A registry host with an optional port and path, lower case, as image references spell it."""
_DOCKER_HUB = ("docker.io", "index.docker.io", "registry-1.docker.io")


def check_chart_source(value: str) -> str:
    """``cluster.chartSource``: an ``oci://`` registry, an ``https://`` repository or a local folder (no trailing ``/``)."""
    scheme, found, rest = value.partition("://")
    if not value or value.strip() != value or " " in value:
        raise ValueError(f"{value!r} is not a chart source: give oci://<registry>/<path>, https://<repository> or a folder")
    if found and f"{scheme}://" not in _CHART_SCHEMES:
        raise ValueError(
            f"{value!r} is not a chart source: accepted are oci://<registry>/<path>, https://<repository> "
            "(or http://) and a local folder of <chart>-<version>.tgz packages"
        )
    if found and not rest.strip("/"):
        raise ValueError(f"{value!r} names no registry or repository after {scheme}://")
    return value.rstrip("/") or "/"


def check_image_registry(value: str) -> str:
    """``cluster.imageRegistry``: ``host[:port][/path]``, no scheme, tag or digest (no trailing ``/``)."""
    registry = value.rstrip("/")
    if not _REGISTRY.match(registry) or ("." not in registry.split("/")[0] and ":" not in registry.split("/")[0]
                                         and registry.split("/")[0] != "localhost"):
        raise ValueError(
            f"{value!r} is not an image registry: give a host with an optional port and path, without a scheme or "
            "tag, e.g. registry.example.com or registry.example.com:5000/mirror"
        )
    return registry


def mirrored_image(image: str, registry: str | None) -> str:
    """``image`` pulled from ``registry`` instead of its own: the registry host replaced, path and tag kept.

    ``nvcr.io/nvidia/gpu-operator:v26.7.0`` -> ``<registry>/nvidia/gpu-operator:v26.7.0``; Docker Hub's short names
    keep their implicit path (``vllm/vllm-openai:v0.32.0`` -> ``<registry>/vllm/vllm-openai:v0.32.0``, ``nginx`` ->
    ``<registry>/library/nginx``). An image already under ``registry``, or an empty one, is returned as it is.
    """
    if not registry or not image or image == registry or image.startswith(registry + "/"):
        return image
    first, _, rest = image.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        path = rest  # the first part is a registry host
    elif rest:
        path = image  # Docker Hub: <user>/<name>
    else:
        path = f"library/{image}"
    if first in _DOCKER_HUB and "/" not in rest:
        path = f"library/{rest}"
    return f"{registry}/{path}"


class GpuSharingSpec(_Section):
    """How the device plugin shares GPUs (written into the plugin's config file)."""

    time_slicing_replicas: int = Field(default=1, ge=1, le=64)
    """Pods that may share one GPU by time-slicing (1: no sharing). No memory isolation between them."""
    mig_strategy: Literal["none", "single", "mixed"] = "none"
    """How MIG partitions are advertised: ``single`` as ``nvidia.com/gpu``, ``mixed`` as ``nvidia.com/mig-<profile>``."""


class GpuStackSpec(_Section):
    """What makes GPUs schedulable: the GPU Operator, the device plugin, or the platform's own."""

    enablement: Literal["gpu-operator", "device-plugin", "none"] = "device-plugin"
    """``gpu-operator``: NVIDIA's GPU Operator (device plugin, GFD, DCGM, validator; driver and toolkit
    optional); ``device-plugin``: NVIDIA's device plugin with GPU feature discovery; ``none``: the platform
    installs its own (GKE, AKS GPU node pools with the managed driver)."""
    driver: bool = False
    """GPU Operator only: install the NVIDIA driver on the nodes (off: managed GPU node images ship one)."""
    toolkit: bool = False
    """GPU Operator only: install the NVIDIA container toolkit on the nodes (off: managed GPU images ship it)."""
    sharing: GpuSharingSpec = Field(default_factory=GpuSharingSpec)
    dcgm_exporter: bool = True
    """GPU metrics from NVIDIA's DCGM exporter (the operator's own, or its chart beside the device plugin)."""
    runtime_class: bool = True
    """Create the ``nvidia`` RuntimeClass (handler ``nvidia``) where the GPU stack does not create it."""

    @model_validator(mode="after")
    def _operator_only(self) -> GpuStackSpec:
        if self.enablement != "gpu-operator":
            for key, value in (("driver", self.driver), ("toolkit", self.toolkit)):
                if value:
                    raise ValueError(
                        f"{PROJECT}:cluster.gpu.{key}: true is not accepted with enablement "
                        f"{self.enablement!r}: only the GPU Operator installs the {key}; set "
                        "cluster.gpu.enablement to gpu-operator or leave it false"
                    )
        if self.enablement == "none" and self.sharing != GpuSharingSpec():
            raise ValueError(
                f"{PROJECT}:cluster.gpu.sharing: is not accepted with enablement 'none': GPU sharing is configured "
                "in the device plugin we install; configure it in your platform's own (e.g. GKE's gpu-sharing-config)"
            )
        return self


class GpuNodesSpec(_Section):
    """What the cluster's GPU nodes carry, so serving pods can be checked against them before they are created."""

    taints: list[dict[str, Any]] = Field(
        default_factory=lambda: [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]
    )
    """Taints of the GPU nodes (``key``, ``value``, ``effect``); default ``nvidia.com/gpu=present:NoSchedule``,
    the common taint of GPU node groups (GKE adds ``nvidia.com/gpu=present:NoSchedule`` to GPU pools itself)."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Labels every GPU node carries (e.g. ``cloud.google.com/gke-accelerator: nvidia-l4``)."""

    @field_validator("taints")
    @classmethod
    def _taints(cls, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return check_taints(value, "cluster.gpuNodes.taints")

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        return check_labels(value)


class OperatorsSpec(_Section):
    """Operators the serving backends and the operations features need."""

    kuberay: Switch = "auto"
    """KubeRay operator (RayCluster, RayService); ``auto``: when a serving stack uses ``parallelism.backend: kuberay``."""
    leaderworkerset: Switch = "auto"
    """LeaderWorkerSet controller; ``auto``: when a serving stack uses ``parallelism.backend: leaderworkerset``."""
    keda: Switch = "auto"
    """KEDA (ScaledObject); ``auto``: when a serving stack turns autoscaling on."""


class MonitoringStackSpec(_Section):
    """Where metrics go."""

    prometheus: Literal["kube-prometheus-stack", "external", "none"] = "none"
    """``kube-prometheus-stack``: install Prometheus, Alertmanager, Grafana and the operator's CRDs;
    ``external``: a Prometheus operator is already there (only PodMonitors and rules are created); ``none``."""


class NamespaceSpec(_Section):
    """A serving namespace the platform creates, with its GPU ceiling."""

    name: str
    gpus: int | None = Field(default=None, ge=0)
    """GPU ResourceQuota of the namespace (unset: no quota)."""
    default_cpu_request: str = "500m"
    """LimitRange default CPU request of containers that set none (sidecars, init containers)."""
    default_memory_request: str = "512Mi"
    """LimitRange default memory request of containers that set none."""
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _check_dns_label(value, "a namespace name")


class PriorityClassSpec(_Section):
    """A PriorityClass for inference pods, so they are not the first evicted."""

    enabled: bool = True
    name: str = "vllm-inference"
    value: int = Field(default=100000, ge=-2147483648, le=1000000000)
    """Priority (user classes may go up to 1000000000; system classes are above)."""
    preemption_policy: Literal["PreemptLowerPriority", "Never"] = "PreemptLowerPriority"


class StorageClassSpec(_Section):
    """A StorageClass for a ReadWriteMany model cache (NFS, EFS, Filestore, ...): parameters as the provisioner wants them."""

    name: str
    provisioner: str
    """CSI driver name, e.g. ``efs.csi.aws.com``, ``filestore.csi.storage.gke.io``, ``nfs.csi.k8s.io``."""
    parameters: dict[str, str] = Field(default_factory=dict)
    reclaim_policy: Literal["Retain", "Delete"] = "Retain"
    """``Retain`` (default): deleting a claim keeps the volume and the weights on it."""
    volume_binding_mode: Literal["Immediate", "WaitForFirstConsumer"] = "Immediate"
    mount_options: list[str] = Field(default_factory=list)
    allow_volume_expansion: bool = True

    @field_validator("provisioner")
    @classmethod
    def _provisioner(cls, value: str) -> str:
        if not _LABEL_KEY.match(value.split("/")[-1]) or len(value) > 63:
            raise ValueError(f"{value!r} is not a provisioner name such as efs.csi.aws.com")
        return value


class ClusterSpec(_Section):
    """Every ``pulumi-vllm:cluster`` key: the GPU platform (see docs/platform.md)."""

    gpu: GpuStackSpec = Field(default_factory=GpuStackSpec)
    gpu_nodes: GpuNodesSpec = Field(default_factory=GpuNodesSpec)
    operators: OperatorsSpec = Field(default_factory=OperatorsSpec)
    monitoring: MonitoringStackSpec = Field(default_factory=MonitoringStackSpec)
    priority_class: PriorityClassSpec = Field(default_factory=PriorityClassSpec)
    namespaces: list[NamespaceSpec] = Field(default_factory=list)
    """Serving namespaces to create, each with its GPU quota and a LimitRange."""
    storage_class: StorageClassSpec | None = None
    """A StorageClass for a ReadWriteMany model cache (optional)."""
    chart_source: str | None = None
    """Where every chart comes from instead of its publisher's repository (air-gapped clusters): an OCI registry
    (``oci://registry.example.com/charts``, chart ``<source>/<name>``), one Helm repository holding them all
    (``https://charts.example.com``), or a local folder of packaged charts (``<folder>/<name>-<version>.tgz``, as
    ``helm pull`` names them). The pinned versions stay."""
    image_registry: str | None = None
    """The registry every image comes from instead of its own (air-gapped clusters): ``registry.example.com`` or
    ``registry.example.com/mirror``. Each image keeps its path and tag (``nvcr.io/nvidia/k8s-device-plugin:v0.20.0``
    -> ``registry.example.com/mirror/nvidia/k8s-device-plugin:v0.20.0``): the charts' images and the serving image."""

    @field_validator("chart_source")
    @classmethod
    def _chart_source(cls, value: str | None) -> str | None:
        return None if value is None else check_chart_source(value)

    @field_validator("image_registry")
    @classmethod
    def _image_registry(cls, value: str | None) -> str | None:
        return None if value is None else check_image_registry(value)

    @field_validator("namespaces")
    @classmethod
    def _unique(cls, value: list[NamespaceSpec]) -> list[NamespaceSpec]:
        names = [item.name for item in value]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"namespace(s) {', '.join(repeated)} listed more than once")
        return value
