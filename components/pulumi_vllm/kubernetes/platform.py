"""The GPU platform under the serving: NVIDIA's GPU stack, the operators the backends need, monitoring, and
the cluster-wide objects (RuntimeClass, PriorityClass, serving namespaces, a ReadWriteMany StorageClass)."""

from typing import Any, NotRequired, TypedDict

import pulumi
import pulumi_kubernetes as k8s

from pulumi_vllm.config import ConfigError
from pulumi_vllm.config.cluster import ClusterSpec
from pulumi_vllm.platform_plan.charts import PROMETHEUS_URL, Chart, chart_reference
from pulumi_vllm.platform_plan.values import PlatformNeeds, platform_releases, runtime_class_needed

TOKEN = "pulumi-vllm:index:GpuPlatform"

HELM_TIMEOUT_SECONDS = 900
"""How long a release may take to become ready (the GPU Operator with the driver compiles it on the node)."""


class GpuSharingArgs(TypedDict):
    """How the device plugin shares GPUs."""

    time_slicing_replicas: NotRequired[int]
    """Pods that may share one GPU by time-slicing (default 1: no sharing)."""
    mig_strategy: NotRequired[str]
    """How MIG partitions are advertised (default ``none``). One of ``none``, ``single``, ``mixed``."""


class GpuStackArgs(TypedDict):
    """What makes GPUs schedulable."""

    enablement: NotRequired[str]
    """``gpu-operator``, ``device-plugin`` (default) or ``none`` (the platform brings its own). One of ``gpu-operator``, ``device-plugin``, ``none``."""
    driver: NotRequired[bool]
    """GPU Operator only: install the NVIDIA driver (default false)."""
    toolkit: NotRequired[bool]
    """GPU Operator only: install the NVIDIA container toolkit (default false)."""
    sharing: NotRequired[GpuSharingArgs]
    """GPU sharing (time-slicing, MIG strategy)."""
    dcgm_exporter: NotRequired[bool]
    """GPU metrics from DCGM exporter (default true)."""
    runtime_class: NotRequired[bool]
    """Create the ``nvidia`` RuntimeClass with the device plugin (default true)."""


class GpuNodesArgs(TypedDict):
    """What the GPU nodes carry."""

    taints: NotRequired[list[dict[str, str]]]
    """Taints of the GPU nodes (default ``nvidia.com/gpu=present:NoSchedule``)."""
    labels: NotRequired[dict[str, str]]
    """Labels every GPU node carries."""


class OperatorsArgs(TypedDict):
    """Operators: ``auto`` (installed when a serving stack needs it), ``on`` or ``off``."""

    kuberay: NotRequired[str]
    """KubeRay operator. One of ``auto``, ``on``, ``off``."""
    leaderworkerset: NotRequired[str]
    """LeaderWorkerSet controller. One of ``auto``, ``on``, ``off``."""
    keda: NotRequired[str]
    """KEDA. One of ``auto``, ``on``, ``off``."""


class MonitoringStackArgs(TypedDict):
    """Where metrics go."""

    prometheus: NotRequired[str]
    """Install kube-prometheus-stack, use an existing Prometheus operator, or none (default). One of ``kube-prometheus-stack``, ``external``, ``none``."""


class PriorityClassArgs(TypedDict):
    """The inference PriorityClass."""

    enabled: NotRequired[bool]
    """Create it (default true)."""
    name: NotRequired[str]
    """Its name (default ``vllm-inference``)."""
    value: NotRequired[int]
    """Its priority (default 100000)."""
    preemption_policy: NotRequired[str]
    """Whether its pods preempt lower-priority pods (default ``PreemptLowerPriority``). One of ``PreemptLowerPriority``, ``Never``."""


class NamespaceArgs(TypedDict):
    """A serving namespace."""

    name: str
    """Namespace name."""
    gpus: NotRequired[int]
    """GPU ResourceQuota of the namespace (unset: none)."""
    default_cpu_request: NotRequired[str]
    """LimitRange default CPU request (default 500m)."""
    default_memory_request: NotRequired[str]
    """LimitRange default memory request (default 512Mi)."""
    labels: NotRequired[dict[str, str]]
    """Labels of the namespace."""


class StorageClassArgs(TypedDict):
    """A StorageClass for a ReadWriteMany model cache."""

    name: str
    """StorageClass name."""
    provisioner: str
    """CSI driver name (``efs.csi.aws.com``, ``filestore.csi.storage.gke.io``, ``nfs.csi.k8s.io``, ...)."""
    parameters: NotRequired[dict[str, str]]
    """Provisioner parameters."""
    reclaim_policy: NotRequired[str]
    """Default ``Retain``: the weights survive a deleted claim. One of ``Retain``, ``Delete``."""
    volume_binding_mode: NotRequired[str]
    """Default ``Immediate``. One of ``Immediate``, ``WaitForFirstConsumer``."""
    mount_options: NotRequired[list[str]]
    """Mount options."""
    allow_volume_expansion: NotRequired[bool]
    """Default true."""


class PlatformNeedsArgs(TypedDict):
    """What serving stacks of the same program need (``auto`` operators follow it)."""

    kuberay: NotRequired[bool]
    """A stack uses the KubeRay backend."""
    leaderworkerset: NotRequired[bool]
    """A stack uses the LeaderWorkerSet backend."""
    keda: NotRequired[bool]
    """A stack autoscales with KEDA."""


class GpuPlatformArgs(TypedDict):
    """Arguments of :class:`GpuPlatform`: the ``cluster`` stack section in snake_case."""

    gpu: NotRequired[GpuStackArgs]
    """The GPU stack (default: NVIDIA's device plugin with GPU feature discovery and DCGM exporter)."""
    gpu_nodes: NotRequired[GpuNodesArgs]
    """What the GPU nodes carry."""
    operators: NotRequired[OperatorsArgs]
    """KubeRay, LeaderWorkerSet, KEDA."""
    monitoring: NotRequired[MonitoringStackArgs]
    """Prometheus."""
    priority_class: NotRequired[PriorityClassArgs]
    """The inference PriorityClass."""
    namespaces: NotRequired[list[NamespaceArgs]]
    """Serving namespaces to create."""
    storage_class: NotRequired[StorageClassArgs]
    """A ReadWriteMany StorageClass."""
    chart_source: NotRequired[str]
    """Every chart from here instead of its publisher's repository: ``oci://<registry>/<path>``, an ``https://`` Helm
    repository, or a local folder of ``<chart>-<version>.tgz`` packages."""
    image_registry: NotRequired[str]
    """Every chart's images from this registry (``host[:port][/path]``), each keeping its path and tag."""
    needs: NotRequired[PlatformNeedsArgs]
    """What the serving stacks need."""


def cluster_spec(args: GpuPlatformArgs | ClusterSpec) -> ClusterSpec:
    """The validated section; raises :class:`ConfigError` naming the key as the stack file writes it."""
    if isinstance(args, ClusterSpec):
        return args
    from pydantic import ValidationError

    from pulumi_vllm.config import format_validation_error

    raw = {key: value for key, value in dict(args).items() if key != "needs"}
    try:
        return ClusterSpec.model_validate(raw)
    except ValidationError as error:
        message = format_validation_error(error, raw)
        raise ConfigError(message.replace("pulumi-vllm:", "pulumi-vllm:cluster.")) from None


class GpuPlatform(pulumi.ComponentResource):
    """The GPU platform of a Kubernetes cluster, as Helm releases and cluster objects (see docs/platform.md)."""

    releases: list[str]
    """Helm release names, in install order."""
    prometheus_url: str | None
    """In-cluster Prometheus URL when kube-prometheus-stack is installed."""
    priority_class_name: str | None
    """The inference PriorityClass, when created."""

    def __init__(
        self, name: str, args: GpuPlatformArgs, opts: pulumi.ResourceOptions | None = None, spec: ClusterSpec | None = None
    ) -> None:
        # Validation comes before registration so bad input creates nothing, not even this component.
        cluster = spec or cluster_spec(args)
        wanted = args.get("needs") or {}
        needs = PlatformNeeds(
            kuberay=bool(wanted.get("kuberay")),
            leaderworkerset=bool(wanted.get("leaderworkerset")),
            keda=bool(wanted.get("keda")),
        )
        releases = platform_releases(cluster, needs)
        super().__init__(TOKEN, name, None, opts)
        self.spec = cluster
        child = pulumi.ResourceOptions(parent=self)
        installed: dict[str, k8s.helm.v3.Release] = {}
        for release in releases:
            after = [installed[key] for key in release.after if key in installed]
            installed[release.chart.key] = _helm_release(
                f"{name}-{release.chart.key}", release.chart, release.values,
                pulumi.ResourceOptions(parent=self, depends_on=after), cluster.chart_source,
            )
        self._releases = installed
        self.releases = [release.chart.release for release in releases]
        self.prometheus_url = PROMETHEUS_URL if "kube-prometheus-stack" in installed else None
        if runtime_class_needed(cluster):
            self._runtime_class = k8s.node.v1.RuntimeClass(
                f"{name}-runtime-class", metadata={"name": "nvidia"}, handler="nvidia", opts=child
            )
        self.priority_class_name = None
        if cluster.priority_class.enabled:
            priority = cluster.priority_class
            self._priority_class = k8s.scheduling.v1.PriorityClass(
                f"{name}-priority-class",
                metadata={"name": priority.name},
                value=priority.value,
                preemption_policy=priority.preemption_policy,
                global_default=False,
                description="vLLM inference servers: scheduled ahead of batch work, evicted after it",
                opts=child,
            )
            self.priority_class_name = priority.name
        for namespace in cluster.namespaces:
            self._namespace(name, namespace, child)
        if cluster.storage_class is not None:
            storage = cluster.storage_class
            self._storage_class = k8s.storage.v1.StorageClass(
                f"{name}-storage-class",
                metadata={"name": storage.name},
                provisioner=storage.provisioner,
                parameters=dict(storage.parameters) or None,
                reclaim_policy=storage.reclaim_policy,
                volume_binding_mode=storage.volume_binding_mode,
                mount_options=list(storage.mount_options) or None,
                allow_volume_expansion=storage.allow_volume_expansion,
                opts=child,
            )
        self.register_outputs(
            {"releases": self.releases, "prometheus_url": self.prometheus_url, "priority_class_name": self.priority_class_name}
        )

    def _namespace(self, name: str, namespace: Any, child: pulumi.ResourceOptions) -> None:
        from pulumi_vllm.kubernetes.gpu_quota import GpuQuota

        created = k8s.core.v1.Namespace(
            f"{name}-ns-{namespace.name}", metadata={"name": namespace.name, "labels": dict(namespace.labels)}, opts=child
        )
        inside = pulumi.ResourceOptions(parent=self, depends_on=[created])
        if namespace.gpus is not None:
            GpuQuota(f"{name}-ns-{namespace.name}-gpu-quota", {"namespace": namespace.name, "gpus": namespace.gpus}, inside)
        default_request = {"cpu": namespace.default_cpu_request, "memory": namespace.default_memory_request}
        k8s.core.v1.LimitRange(
            f"{name}-ns-{namespace.name}-limits",
            metadata={"name": "default-requests", "namespace": namespace.name},
            spec=k8s.core.v1.LimitRangeSpecArgs(
                limits=[k8s.core.v1.LimitRangeItemArgs(type="Container", default_request=default_request)]
            ),
            opts=inside,
        )


def _helm_release(
    name: str, chart: Chart, values: dict[str, Any], opts: pulumi.ResourceOptions, source: str | None = None
) -> k8s.helm.v3.Release:
    """One pinned chart as a Helm release that Pulumi tracks (its CRDs installed by Helm, readiness awaited); from
    ``source`` (``cluster.chartSource``: a mirror or a folder of packages) instead of its publisher's repository."""
    reference = chart_reference(chart, source)
    repository = None if reference.repository is None else k8s.helm.v3.RepositoryOptsArgs(repo=reference.repository)
    return k8s.helm.v3.Release(
        name,
        k8s.helm.v3.ReleaseArgs(
            name=chart.release,
            chart=reference.chart,
            repository_opts=repository,
            version=reference.version,
            namespace=chart.namespace,
            create_namespace=True,
            values=values,
            timeout=HELM_TIMEOUT_SECONDS,
        ),
        opts=opts,
    )
