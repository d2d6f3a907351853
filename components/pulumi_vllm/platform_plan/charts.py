"""Every Helm chart the GPU platform installs, pinned: chart name, repository, version, release name and namespace.

Versions are the projects' current releases (chart version as published; for the GPU Operator and
LeaderWorkerSet the release tag, which their release scripts stamp into the published chart). A chart
upgrade is a one-line change here, and ``pulumi-vllm diff`` reports it in words.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Chart:
    """One pinned Helm chart and where it is installed."""

    key: str
    """Our name for the part (also the render file ``helm/<release>.yaml``)."""
    title: str
    """What reviewers call it ("GPU Operator")."""
    chart: str
    """The chart's name in its repository."""
    repository: str
    """Chart repository URL (``https://``) or OCI registry (``oci://``)."""
    version: str
    release: str
    """Helm release name; fixed, because in-cluster addresses (e.g. Prometheus's Service) derive from it."""
    namespace: str
    source: str
    """Where the version comes from."""

    @property
    def oci(self) -> bool:
        """Whether the chart comes from an OCI registry (``chart`` is then ``<registry>/<name>``, no repo)."""
        return self.repository.startswith("oci://")


GPU_OPERATOR = Chart(
    "gpu-operator", "GPU Operator", "gpu-operator", "https://helm.ngc.nvidia.com/nvidia", "v26.7.0",
    "gpu-operator", "gpu-operator", "NVIDIA/gpu-operator release v26.7.0",
)
DEVICE_PLUGIN = Chart(
    "nvidia-device-plugin", "NVIDIA device plugin", "nvidia-device-plugin", "https://nvidia.github.io/k8s-device-plugin",
    "0.20.0", "nvidia-device-plugin", "nvidia-device-plugin", "NVIDIA/k8s-device-plugin release v0.20.0",
)
DCGM_EXPORTER = Chart(
    "dcgm-exporter", "DCGM exporter", "dcgm-exporter", "https://nvidia.github.io/dcgm-exporter/helm-charts", "4.8.2",
    "dcgm-exporter", "gpu-monitoring", "NVIDIA/dcgm-exporter release 4.5.3-4.8.2 (DCGM 4.5.3, exporter 4.8.2)",
)
KUBERAY = Chart(
    "kuberay-operator", "KubeRay operator", "kuberay-operator", "https://ray-project.github.io/kuberay-helm/", "1.7.0",
    "kuberay-operator", "kuberay-system", "ray-project/kuberay release v1.7.0",
)
LWS = Chart(
    "lws", "LeaderWorkerSet", "lws", "oci://registry.k8s.io/lws/charts", "0.10.0",
    "lws", "lws-system", "kubernetes-sigs/lws release v0.10.0 (chart published as 0.10.0)",
)
KEDA = Chart(
    "keda", "KEDA", "keda", "https://kedacore.github.io/charts", "2.20.2", "keda", "keda", "kedacore/charts release v2.20.2",
)
KUBE_PROMETHEUS_STACK = Chart(
    "kube-prometheus-stack", "kube-prometheus-stack", "kube-prometheus-stack",
    "https://prometheus-community.github.io/helm-charts", "88.5.3", "kube-prometheus-stack", "monitoring",
    "prometheus-community/helm-charts release kube-prometheus-stack-88.5.3 (Prometheus operator v0.93.1)",
)
KARPENTER = Chart(
    "karpenter", "Karpenter", "karpenter", "oci://public.ecr.aws/karpenter", "1.14.1", "karpenter", "kube-system",
    "aws/karpenter-provider-aws release v1.14.1 (chart published as 1.14.1)",
)
EFA_DEVICE_PLUGIN = Chart(
    "aws-efa-k8s-device-plugin", "EFA device plugin", "aws-efa-k8s-device-plugin", "https://aws.github.io/eks-charts",
    "v0.5.8", "aws-efa-k8s-device-plugin", "kube-system",
    "aws/eks-charts stable/aws-efa-k8s-device-plugin chart v0.5.8 (image v0.5.5; image v0.5.8 came with charts "
    "v0.5.13 to v0.5.16); only EKS clusters with EFA node groups install it, so it is kept out of CHARTS",
)

@dataclass(frozen=True)
class ChartReference:
    """How Helm is told to fetch one pinned chart: the release's ``chart``, its ``--repo`` (if any) and version."""

    chart: str
    """A chart name (with ``repository``), ``oci://<registry>/<name>``, or the path of a packaged chart."""
    repository: str | None
    version: str


def chart_reference(chart: Chart, source: str | None = None) -> ChartReference:
    """Where Helm gets ``chart``: its publisher's repository, or ``source`` (``cluster.chartSource``) instead.

    ``source`` is an OCI registry (``oci://...``: chart ``<source>/<name>``), a Helm repository (``https://...``), or a
    local folder holding ``<name>-<version>.tgz`` (the file name ``helm pull`` and ``helm package`` give).
    """
    origin = source or chart.repository
    if origin.startswith("oci://"):
        return ChartReference(f"{origin}/{chart.chart}", None, chart.version)
    if origin.startswith(("https://", "http://")):
        return ChartReference(chart.chart, origin, chart.version)
    return ChartReference(f"{origin}/{chart.chart}-{chart.version}.tgz", None, chart.version)


CHARTS: dict[str, Chart] = {
    chart.key: chart
    for chart in (GPU_OPERATOR, DEVICE_PLUGIN, DCGM_EXPORTER, KUBERAY, LWS, KEDA, KUBE_PROMETHEUS_STACK, KARPENTER)
}
"""Every chart the platform can install, by key."""

PROMETHEUS_URL = (
    f"http://{KUBE_PROMETHEUS_STACK.release}-prometheus.{KUBE_PROMETHEUS_STACK.namespace}.svc:9090"
)
"""In-cluster address of the Prometheus that kube-prometheus-stack installs (its Service is ``<release>-prometheus``)."""


def chart_by_name(chart_name: str) -> Chart | None:
    """The pinned chart whose chart name is ``chart_name`` (as a render's ``helm/*.yaml`` records it)."""
    return next((chart for chart in CHARTS.values() if chart.chart == chart_name), None)
