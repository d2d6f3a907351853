"""Whether a serving stack's GPU pods can land on the platform's GPU nodes: taints tolerated, labels carried,
the GPU resource advertised, the namespace's GPU quota large enough. Checked before anything is created."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pulumi_vllm.config.base import PROJECT
from pulumi_vllm.config.cluster import ClusterSpec

_AUTOMATIC_LABEL_PREFIXES = (
    "kubernetes.io/", "node.kubernetes.io/", "topology.kubernetes.io/", "beta.kubernetes.io/",
    "nvidia.com/", "feature.node.kubernetes.io/", "cloud.google.com/", "eks.amazonaws.com/",
    "karpenter.sh/", "karpenter.k8s.aws/", "kubernetes.azure.com/",
)
"""Labels that the kubelet, node-feature-discovery, GPU feature discovery or a cloud puts on nodes without being
listed in ``cluster.gpuNodes.labels``; a selector on them cannot be judged from the config alone."""


@dataclass(frozen=True)
class ServingPods:
    """What the check needs to know about a serving stack's GPU pods."""

    namespace: str
    tolerations: Sequence[Mapping[str, Any]]
    node_selector: Mapping[str, str]
    gpu_resource_name: str
    gpus_per_pod: int
    gpus_at_once: int
    """GPUs the stack's pods hold together (for the namespace's quota)."""
    monitoring: bool = False
    """The stack creates PodMonitors / PrometheusRules (needs a Prometheus operator's CRDs)."""
    autoscaling: bool = False
    """The stack creates a KEDA ScaledObject (needs KEDA and a Prometheus to query)."""


def tolerates(toleration: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    """Kubernetes' rule: effects match (an empty effect matches all), keys match (an empty key with
    ``Exists`` matches all), and ``Exists`` matches any value while ``Equal`` (the default) needs the same value."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    operator = toleration.get("operator") or "Equal"
    key = toleration.get("key") or ""
    if not key:
        return operator == "Exists"
    if key != taint.get("key"):
        return False
    return operator == "Exists" or (toleration.get("value") or "") == (taint.get("value") or "")


def _taint_text(taint: Mapping[str, Any]) -> str:
    value = f"={taint['value']}" if taint.get("value") else ""
    return f"{taint['key']}{value}:{taint['effect']}"


def serving_problems(cluster: ClusterSpec, pods: ServingPods) -> list[str]:
    """Why the platform's GPU nodes could not take the serving pods (empty when they can)."""
    problems: list[str] = []
    if not pods.gpus_per_pod:
        return problems
    for taint in cluster.gpu_nodes.taints:
        if taint["effect"] == "PreferNoSchedule":
            continue
        if not any(tolerates(item, taint) for item in pods.tolerations):
            problems.append(
                f"{PROJECT}:resources.tolerations: the GPU nodes' taint {_taint_text(taint)} "
                f"(cluster.gpuNodes.taints) is not tolerated, so the GPU pods would stay Pending; add "
                f"{{key: {taint['key']}, operator: Exists, effect: {taint['effect']}}} or leave resources.tolerations unset"
            )
    listed = cluster.gpu_nodes.labels
    for key, value in pods.node_selector.items():
        if key in listed and listed[key] != value:
            problems.append(
                f"{PROJECT}:resources.nodeSelector.{key}: {value!r} is not accepted: the GPU nodes carry "
                f"{key}={listed[key]} (cluster.gpuNodes.labels), so no GPU node could take the pods"
            )
        elif key not in listed and listed and not key.startswith(_AUTOMATIC_LABEL_PREFIXES):
            problems.append(
                f"{PROJECT}:resources.nodeSelector.{key}: no GPU node carries the label {key} "
                f"(cluster.gpuNodes.labels lists {', '.join(sorted(listed))}), so no GPU node could take the pods"
            )
    enablement = cluster.gpu.enablement
    if enablement != "none" and not pods.gpu_resource_name.startswith("nvidia.com/"):
        problems.append(
            f"{PROJECT}:resources.gpuResourceName: {pods.gpu_resource_name!r} is not advertised by the platform: "
            f"cluster.gpu.enablement {enablement!r} advertises nvidia.com/gpu"
        )
    sharing = cluster.gpu.sharing.time_slicing_replicas
    if sharing > 1 and pods.gpus_per_pod > 1:
        problems.append(
            f"{PROJECT}:cluster.gpu.sharing.timeSlicingReplicas: {sharing} is not accepted with {pods.gpus_per_pod} "
            "GPUs per pod: time-sliced GPUs are advertised as replicas, so the ranks of one model may land on the "
            "same physical GPU; use 1 (no sharing) for multi-GPU pods"
        )
    prometheus = cluster.monitoring.prometheus
    for wanted, key in ((pods.monitoring, "monitoring.enabled"), (pods.autoscaling, "autoscaling.enabled")):
        if wanted and prometheus == "none":
            problems.append(
                f"{PROJECT}:{key}: true is not accepted with cluster.monitoring.prometheus 'none': its "
                "resources need a Prometheus (and the operator's CRDs); set cluster.monitoring.prometheus to "
                "kube-prometheus-stack, or external when one is already there"
            )
    if pods.autoscaling and cluster.operators.keda == "off":
        problems.append(
            f"{PROJECT}:autoscaling.enabled: true is not accepted with cluster.operators.keda 'off': the "
            "ScaledObject needs KEDA; set it to auto or on"
        )
    for namespace in cluster.namespaces:
        if namespace.name == pods.namespace and namespace.gpus is not None and namespace.gpus < pods.gpus_at_once:
            problems.append(
                f"{PROJECT}:cluster.namespaces.{namespace.name}.gpus: {namespace.gpus} is not accepted: the serving "
                f"stack in that namespace requests {pods.gpus_at_once} GPU(s) at once; its pods would be refused with "
                "'exceeded quota'"
            )
    return problems
