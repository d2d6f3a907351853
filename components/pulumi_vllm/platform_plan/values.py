"""Which charts the platform installs and the values each one gets, from the ``cluster`` section.

Only keys that exist in each chart's own ``values.yaml`` are written (Helm silently ignores a misspelt
key); the tests check every path against the charts' published defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from pulumi_vllm.config.cluster import ClusterSpec, GpuSharingSpec, mirrored_image
from pulumi_vllm.config.models import deep_merge
from pulumi_vllm.platform_plan.charts import (
    DCGM_EXPORTER,
    DEVICE_PLUGIN,
    EFA_DEVICE_PLUGIN,
    GPU_OPERATOR,
    KARPENTER,
    KEDA,
    KUBE_PROMETHEUS_STACK,
    KUBERAY,
    LWS,
    Chart,
)

TIME_SLICING_CONFIG = "vllm-gpu-sharing"
"""Name of the device plugin's config (ConfigMap with the GPU Operator; the named config with the plugin's chart)."""


@dataclass(frozen=True)
class PlatformNeeds:
    """What the serving stacks of the same program need from the platform (``auto`` switches follow it)."""

    kuberay: bool = False
    leaderworkerset: bool = False
    keda: bool = False


@dataclass(frozen=True)
class Release:
    """One Helm release the platform installs: the pinned chart, its values, and what it waits for."""

    chart: Chart
    values: dict[str, Any]
    after: tuple[str, ...] = ()
    """Keys of the releases that must be installed first (their CRDs are used by this one)."""


def _switch(value: str, needed: bool) -> bool:
    return value == "on" or (value == "auto" and needed)


def monitoring_on(spec: ClusterSpec) -> bool:
    """Whether a Prometheus operator is there (installed or brought), so ServiceMonitors may be created."""
    return spec.monitoring.prometheus != "none"


def device_plugin_config(sharing: GpuSharingSpec, resource_name: str = "nvidia.com/gpu") -> str:
    """The device plugin's config file (``version: v1``) with the MIG strategy and time-slicing replicas."""
    document: dict[str, Any] = {"version": "v1", "flags": {"migStrategy": sharing.mig_strategy}}
    if sharing.time_slicing_replicas > 1:
        document["sharing"] = {
            "timeSlicing": {"resources": [{"name": resource_name, "replicas": sharing.time_slicing_replicas}]}
        }
    return yaml.safe_dump(document, sort_keys=False)


def _gpu_tolerations(spec: ClusterSpec, defaults: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The chart's default tolerations plus one for every taint of the GPU nodes, so the DaemonSets run there."""
    tolerations = list(defaults)
    for taint in spec.gpu_nodes.taints:
        wanted = {"key": taint["key"], "operator": "Exists", "effect": taint["effect"]}
        if not any(item.get("key") == taint["key"] and item.get("effect") in (None, taint["effect"]) for item in tolerations):
            tolerations.append(wanted)
    return tolerations


def _gpu_operator_values(spec: ClusterSpec) -> dict[str, Any]:
    gpu = spec.gpu
    values: dict[str, Any] = {
        "driver": {"enabled": gpu.driver},
        "toolkit": {"enabled": gpu.toolkit},
        "dcgmExporter": {"enabled": gpu.dcgm_exporter, "serviceMonitor": {"enabled": gpu.dcgm_exporter and monitoring_on(spec)}},
        "mig": {"strategy": gpu.sharing.mig_strategy},
        "daemonsets": {
            "tolerations": _gpu_tolerations(spec, [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}])
        },
    }
    if gpu.sharing.time_slicing_replicas > 1:
        values["devicePlugin"] = {
            "config": {
                "create": True,
                "name": TIME_SLICING_CONFIG,
                "default": "any",
                "data": {"any": device_plugin_config(gpu.sharing)},
            }
        }
    return values


_DEVICE_PLUGIN_TOLERATIONS = [
    {"key": "CriticalAddonsOnly", "operator": "Exists"},
    {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
]
"""The device plugin chart's default tolerations (its values.yaml), kept when ours are added."""


def _device_plugin_values(spec: ClusterSpec) -> dict[str, Any]:
    gpu = spec.gpu
    values: dict[str, Any] = {
        # GPU feature discovery labels the nodes (nvidia.com/gpu.product, .count, .memory, .present); the
        # chart then brings node-feature-discovery, whose labels its affinity selects GPU nodes by.
        "gfd": {"enabled": True},
        "migStrategy": gpu.sharing.mig_strategy,
        "tolerations": _gpu_tolerations(spec, _DEVICE_PLUGIN_TOLERATIONS),
    }
    if gpu.sharing != GpuSharingSpec():
        values["config"] = {"map": {"default": device_plugin_config(gpu.sharing)}, "default": "default"}
    return values


def _dcgm_exporter_values(spec: ClusterSpec) -> dict[str, Any]:
    return {
        "serviceMonitor": {"enabled": monitoring_on(spec)},
        # GFD's label: the exporter runs only where there are GPUs to read.
        "nodeSelector": {"nvidia.com/gpu.present": "true"},
        "tolerations": _gpu_tolerations(
            spec, [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}]
        ),
    }


def _kube_prometheus_stack_values() -> dict[str, Any]:
    # Select every PodMonitor, ServiceMonitor and PrometheusRule, not only the chart's own (the default
    # selects those labelled with this release), so the serving stacks' monitors need no special label.
    nil_uses_helm = {
        "podMonitorSelectorNilUsesHelmValues": False,
        "serviceMonitorSelectorNilUsesHelmValues": False,
        "ruleSelectorNilUsesHelmValues": False,
    }
    return {
        "prometheus": {"prometheusSpec": nil_uses_helm},
        "grafana": {"sidecar": {"dashboards": {"enabled": True, "label": "grafana_dashboard", "searchNamespace": "ALL"}}},
    }


_NVCR = "nvcr.io/nvidia"
_NFD = "registry.k8s.io/nfd/node-feature-discovery"
REGISTRY = None
"""In :data:`IMAGE_VALUES`: the value is the mirror itself (a chart key holding only the registry host)."""

IMAGE_VALUES: dict[str, dict[str, str | None]] = {
    GPU_OPERATOR.key: {
        # The operator's own image, then each operand's (written into its ClusterPolicy), then NFD's (subchart).
        "operator.repository": _NVCR, "validator.repository": _NVCR, "driver.repository": _NVCR,
        "driver.manager.repository": f"{_NVCR}/cloud-native", "toolkit.repository": f"{_NVCR}/k8s",
        "devicePlugin.repository": _NVCR, "dcgm.repository": f"{_NVCR}/cloud-native",
        "dcgmExporter.repository": f"{_NVCR}/k8s", "gfd.repository": _NVCR,
        "migManager.repository": f"{_NVCR}/cloud-native", "nodeStatusExporter.repository": _NVCR,
        "gds.repository": f"{_NVCR}/cloud-native", "gdrcopy.repository": f"{_NVCR}/cloud-native",
        "vgpuManager.driverManager.repository": f"{_NVCR}/cloud-native",
        "vgpuDeviceManager.repository": f"{_NVCR}/cloud-native", "vfioManager.repository": f"{_NVCR}/cloud-native",
        "vfioManager.driverManager.repository": f"{_NVCR}/cloud-native", "sandboxDevicePlugin.repository": _NVCR,
        "kataSandboxDevicePlugin.repository": f"{_NVCR}/cloud-native", "ccManager.repository": f"{_NVCR}/cloud-native",
        "draDriver.repository": _NVCR, "node-feature-discovery.image.repository": _NFD,
    },
    DEVICE_PLUGIN.key: {"image.repository": f"{_NVCR}/k8s-device-plugin", "nfd.image.repository": _NFD},
    DCGM_EXPORTER.key: {"image.repository": "nvcr.io/nvidia/k8s/dcgm-exporter"},
    KUBERAY.key: {"image.repository": "quay.io/kuberay/operator"},
    LWS.key: {"image.manager.repository": "registry.k8s.io/lws/lws"},
    KEDA.key: {"global.image.registry": REGISTRY},
    # The chart passes it to every subchart and to the Prometheus, Alertmanager and config-reloader images.
    KUBE_PROMETHEUS_STACK.key: {"global.imageRegistry": REGISTRY},
    KARPENTER.key: {"controller.image.repository": "public.ecr.aws/karpenter/controller"},
    EFA_DEVICE_PLUGIN.key: {
        "image.repository": "602401143452.dkr.ecr.us-west-2.amazonaws.com/eks/aws-efa-k8s-device-plugin"
    },
}
"""Each chart's values that say where its images come from, with the chart's default (the tests compare them with
its ``values.yaml`` and check that, with a mirror, no rendered image names another registry)."""


def image_values(chart: Chart, registry: str | None) -> dict[str, Any]:
    """The values that pull every image of ``chart`` from ``registry`` (``cluster.imageRegistry``); ``{}`` without one."""
    values: dict[str, Any] = {}
    if not registry:
        return values
    for path, default in IMAGE_VALUES.get(chart.key, {}).items():
        *parents, leaf = path.split(".")
        target = values
        for key in parents:
            target = target.setdefault(key, {})
        target[leaf] = registry if default is REGISTRY else mirrored_image(default, registry)
    return values


def platform_releases(spec: ClusterSpec, needs: PlatformNeeds | None = None) -> list[Release]:
    """Every Helm release of the platform, in install order, with its values."""
    needs = needs or PlatformNeeds()
    releases: list[Release] = []
    monitoring_release = (KUBE_PROMETHEUS_STACK.key,) if spec.monitoring.prometheus == "kube-prometheus-stack" else ()
    if monitoring_release:
        releases.append(Release(KUBE_PROMETHEUS_STACK, _kube_prometheus_stack_values()))
    gpu_after = monitoring_release if monitoring_on(spec) else ()
    if spec.gpu.enablement == "gpu-operator":
        releases.append(Release(GPU_OPERATOR, _gpu_operator_values(spec), gpu_after))
    elif spec.gpu.enablement == "device-plugin":
        releases.append(Release(DEVICE_PLUGIN, _device_plugin_values(spec)))
        if spec.gpu.dcgm_exporter:
            releases.append(Release(DCGM_EXPORTER, _dcgm_exporter_values(spec), gpu_after))
    if _switch(spec.operators.kuberay, needs.kuberay):
        values = {"metrics": {"serviceMonitor": {"enabled": True}}} if monitoring_on(spec) else {}
        releases.append(Release(KUBERAY, values, gpu_after))
    if _switch(spec.operators.leaderworkerset, needs.leaderworkerset):
        releases.append(Release(LWS, {}))
    if _switch(spec.operators.keda, needs.keda):
        releases.append(Release(KEDA, {}))
    if spec.image_registry:
        return [
            Release(release.chart, deep_merge(release.values, image_values(release.chart, spec.image_registry)), release.after)
            for release in releases
        ]
    return releases


def runtime_class_needed(spec: ClusterSpec) -> bool:
    """Whether the platform creates the ``nvidia`` RuntimeClass: with the device plugin (the GPU Operator creates its
    own; platforms that bring their GPU stack use their own runtime setup)."""
    return spec.gpu.runtime_class and spec.gpu.enablement == "device-plugin"
