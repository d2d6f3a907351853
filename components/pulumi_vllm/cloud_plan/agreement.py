"""Whether a serving stack fits the cluster's GPU node group, node pool or Karpenter NodePool, and what it derives
from the node type: ``parallelism.gpusPerNode``, ``resources.gpuType`` and the node selector.

Checked when the stack config is validated, before anything is created. Messages name the key as the stack file
writes it (``pulumi-vllm:cloud.nodeGroups[gpu].maxSize``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pulumi_vllm.capacity.gpus import lookup_gpu
from pulumi_vllm.cloud_plan.instances import INSTANCE_TYPE_LABEL, INSTANCES, InstanceType, allocatable, node_labels
from pulumi_vllm.config.base import PROJECT
from pulumi_vllm.config.cloud import CloudSpec
from pulumi_vllm.distributed.parallelism import TopologyError, plan_topology
from pulumi_vllm.platform_plan.agreement import tolerates

_AUTOMATIC_PREFIXES = (
    "kubernetes.io/", "node.kubernetes.io/", "topology.kubernetes.io/", "nvidia.com/", "feature.node.kubernetes.io/",
    "vpc.amazonaws.com/",
)
"""Labels put on nodes by the kubelet, node-feature-discovery, GPU feature discovery or the VPC CNI: a selector on
them cannot be judged from the config alone."""


@dataclass(frozen=True)
class GpuGroup:
    """One GPU node group, node pool or Karpenter NodePool as the checks see it."""

    key: str
    """Where it is in the stack file: ``cloud.nodeGroups[gpu]``."""
    name: str
    instances: tuple[InstanceType, ...]
    labels: Mapping[str, str]
    """Labels every node of the group carries (the cloud's own and the configured ones)."""
    taints: Sequence[Mapping[str, Any]]
    max_nodes: int | None = None
    """Largest node count (``maxSize``, ``maxNodes``); ``None``: not bounded by a count."""
    max_nodes_key: str = ""
    gpu_limit: int | None = None
    """Karpenter: most GPUs the NodePool may hold."""
    selector: dict[str, str] = field(default_factory=dict)
    """The node selector a serving stack on this group gets when it sets none."""

    @property
    def instance(self) -> InstanceType | None:
        """The node type, when the group has one (a Karpenter NodePool may allow several)."""
        return self.instances[0] if len(self.instances) == 1 else None

    @property
    def gpus_per_node(self) -> int | None:
        """GPUs per node, when every node type of the group has the same count."""
        counts = {row.gpus for row in self.instances}
        return counts.pop() if len(counts) == 1 else None

    @property
    def types_text(self) -> str:
        """``p5.48xlarge`` or ``g6e.xlarge, g6e.2xlarge``."""
        return ", ".join(row.name for row in self.instances)


def gpu_groups(cloud: CloudSpec) -> list[GpuGroup]:
    """Every GPU group of the ``cloud`` section."""
    groups: list[GpuGroup] = []
    for group in cloud.node_groups:
        labels = {**node_labels("aws", group.instance, group.name, capacity_type=group.capacity_type), **group.labels}
        groups.append(GpuGroup(
            f"cloud.nodeGroups[{group.name}]", group.name, (group.instance,), labels, group.taints,
            group.max_size, f"cloud.nodeGroups[{group.name}].maxSize",
            selector={INSTANCE_TYPE_LABEL: group.instance.name},
        ))
    for pool in cloud.karpenter.node_pools if cloud.karpenter else ():
        instances = tuple(pool.instances)
        labels = {"karpenter.sh/nodepool": pool.name, **pool.labels}
        if len(instances) == 1:
            labels = {**node_labels("aws", instances[0], pool.name, karpenter=True, spot=pool.capacity_types == ["spot"]), **labels}
        groups.append(GpuGroup(
            f"cloud.karpenter.nodePools[{pool.name}]", pool.name, instances, labels, pool.taints,
            gpu_limit=pool.gpu_limit, selector={"karpenter.sh/nodepool": pool.name},
        ))
    for node_pool in cloud.node_pools:
        labels = {**node_labels("gcp", node_pool.instance, node_pool.name, spot=node_pool.spot), **node_pool.labels}
        count = node_pool.max_nodes if node_pool.max_nodes is not None else node_pool.node_count
        where = "maxNodes" if node_pool.max_nodes is not None else "nodeCount"
        groups.append(GpuGroup(
            f"cloud.nodePools[{node_pool.name}]", node_pool.name, (node_pool.instance,), labels, node_pool.gke_taints,
            count * max(1, len(cloud.zones)), f"cloud.nodePools[{node_pool.name}].{where}",
            selector={INSTANCE_TYPE_LABEL: node_pool.instance.name},
        ))
    return groups


def serving_group(cloud: CloudSpec) -> GpuGroup | None:
    """The group the serving runs on: ``servingNodeGroup``, or the only GPU group (``None`` when there are several)."""
    groups = gpu_groups(cloud)
    if cloud.serving_node_group is not None:
        return next(group for group in groups if group.name == cloud.serving_node_group)
    return groups[0] if len(groups) == 1 else None


def _key(name: str) -> str:
    return f"{PROJECT}:{name}"


def derived_node_settings(config: Any, group: GpuGroup) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(parallelism, resources)`` updates a stack on ``group`` gets from its node type; raises :class:`ValueError`
    naming the key when the stack sets a value the node type contradicts."""
    parallelism: dict[str, Any] = {}
    resources: dict[str, Any] = {}
    per_node = group.gpus_per_node
    if per_node is not None:
        given = config.parallelism.gpus_per_node
        if given is None:
            parallelism["gpus_per_node"] = per_node
        elif given != per_node:
            raise ValueError(
                f"{_key('parallelism.gpusPerNode')}: {given} is not accepted: {group.key} runs {group.types_text} with "
                f"{per_node} GPU(s) per node; leave parallelism.gpusPerNode unset to take it from the node type"
            )
    gpus = {row.gpu for row in group.instances}
    if len(gpus) == 1:
        (gpu,) = gpus
        given_type = config.resources.gpu_type
        if given_type is None:
            resources["gpu_type"] = gpu
        else:
            try:
                named = lookup_gpu(given_type).name
            except ValueError:
                named = given_type  # the plan names an unknown GPU type in its own words
            if named != gpu:
                raise ValueError(
                    f"{_key('resources.gpuType')}: {given_type!r} is not accepted: {group.key} runs "
                    f"{group.types_text} with {gpu} GPUs; leave resources.gpuType unset"
                )
    if not config.resources.node_selector:
        resources["node_selector"] = dict(group.selector)
    return parallelism, resources


DAEMONSET_CPU_MILLI = 500
"""CPU kept on every GPU node for the DaemonSets beside the serving pod (VPC CNI, kube-proxy, CSI node drivers, the
GPU device plugin, monitoring agents): an allowance, not a measured figure."""
DAEMONSET_MEMORY_MIB = 1024
"""Memory kept on every GPU node for those DaemonSets (an allowance, like :data:`DAEMONSET_CPU_MILLI`)."""


@dataclass(frozen=True)
class NodeShare:
    """The CPU and memory one serving pod may request on its node type: its GPUs' share of what the node allocates."""

    node_type: str
    """The instance or machine type (``g6e.xlarge``)."""
    where: str
    """Where the stack names it (``cloud.karpenter.nodePools[l40s]``, ``resources.nodeSelector``)."""
    cpu_milli: int
    """CPU of the pod's share (millicores)."""
    memory_mib: int
    """Memory of the pod's share (MiB)."""
    node_cpu_milli: int
    """CPU the whole node allocates to pods, the DaemonSet allowance kept (millicores): the bound of a limit."""
    node_memory_mib: int
    """Memory the whole node allocates to pods, the DaemonSet allowance kept (MiB): the bound of a limit."""

    @property
    def text(self) -> str:
        """``3.4 CPUs and 27.0Gi``, the share in the stack file's units."""
        return f"{self.cpu_milli / 1000:g} CPUs and {self.memory_mib / 1024:.1f}Gi"


def share_on(row: InstanceType, gpus_per_pod: int, where: str) -> NodeShare:
    """The share of a pod of ``gpus_per_pod`` GPUs on a node of ``row``: the node's allocatable less the DaemonSet
    allowance, times GPUs per pod / GPUs per node, rounded down to 100m and 1 MiB."""
    node = allocatable(row)
    cpu = max(node.cpu_milli - DAEMONSET_CPU_MILLI, 0)
    memory = max(node.memory_mib - DAEMONSET_MEMORY_MIB, 0)
    fraction = min(gpus_per_pod / row.gpus, 1.0) if row.gpus else 1.0
    return NodeShare(row.name, where, int(cpu * fraction) // 100 * 100, int(memory * fraction), cpu, memory)


def serving_node_types(config: Any) -> tuple[str, tuple[InstanceType, ...]]:
    """``(where, node types)`` the serving pods run on, as far as the config says: the serving group's types (only
    those a ``resources.nodeSelector`` on the instance type admits), or the known type such a selector names; empty
    when neither says."""
    selected = (config.resources.node_selector or {}).get(INSTANCE_TYPE_LABEL)
    cloud = getattr(config, "cloud", None)
    group = serving_group(cloud) if cloud is not None else None
    if group is not None:
        rows = tuple(row for row in group.instances if selected is None or row.name == selected)
        return group.key, rows
    row = INSTANCES.get(str(selected).strip().lower()) if selected else None
    return ("resources.nodeSelector", (row,)) if row is not None else ("", ())


def pod_share(config: Any, gpus_per_pod: int) -> NodeShare | None:
    """The largest share a GPU pod of ``config`` may request on the node types it runs on (a Karpenter NodePool of
    several types launches one that fits); ``None`` for a pod without GPUs or when no node type is known."""
    where, rows = serving_node_types(config)
    if not gpus_per_pod or not rows:
        return None
    shares = [share_on(row, gpus_per_pod, where) for row in rows if row.vcpus and row.memory_gib]
    return max(shares, key=lambda share: (share.memory_mib, share.cpu_milli), default=None)


_UNITS = {
    "m": 1e-3, "": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
}


def quantity_value(quantity: str) -> float:
    """The number a Kubernetes quantity stands for (``3500m`` is 3.5, ``16Gi`` is 17179869184)."""
    text = str(quantity).strip()
    for suffix in sorted(_UNITS, key=len, reverse=True):
        if suffix and text.endswith(suffix):
            return float(text[: -len(suffix)]) * _UNITS[suffix]
    return float(text)


def resource_problems(config: Any, share: NodeShare) -> list[str]:
    """Explicit ``resources`` requests above the pod's share of its node type, and limits above the whole node's.

    A request above the share leaves the pod Pending (or, with several pods per node, leaves GPUs idle); a limit is
    a ceiling, not a reservation, so it may exceed the request, but not what the node can give at all.
    """
    resources = config.resources
    rule = "what the kubelet leaves for pods, less room for the node's DaemonSets"
    checks = (
        ("cpuRequest", resources.cpu_request, share.cpu_milli / 1000, f"{share.cpu_milli}m",
         f"the pod's share of {share.node_type} ({rule}, times its GPUs / the node's GPUs)"),
        ("memoryRequest", resources.memory_request, share.memory_mib * 2**20, f"{share.memory_mib}Mi",
         f"the pod's share of {share.node_type} ({rule}, times its GPUs / the node's GPUs)"),
        ("cpuLimit", resources.cpu_limit, share.node_cpu_milli / 1000, f"{share.node_cpu_milli}m",
         f"what a {share.node_type} node gives pods ({rule})"),
        ("memoryLimit", resources.memory_limit, share.node_memory_mib * 2**20, f"{share.node_memory_mib}Mi",
         f"what a {share.node_type} node gives pods ({rule})"),
    )
    problems: list[str] = []
    for key, value, bound, most, what in checks:
        if value is None or quantity_value(value) <= bound:
            continue
        problems.append(
            f"{_key(f'resources.{key}')}: {value!r} is not accepted on {share.node_type} ({share.where}): "
            f"at most {most} fits, {what}; set at most that, leave it unset, or run on a larger node type"
        )
    return problems


def fit_problems(config: Any, group: GpuGroup) -> list[str]:
    """Why the serving pods could not run on ``group`` (empty when they can)."""
    problems: list[str] = []
    resources = config.resources
    parallel = config.parallelism
    gpus_per_pod = parallel.gpus_per_pod or resources.gpu_count
    instance = group.instance
    per_node = group.gpus_per_node or parallel.gpus_per_node
    try:
        topology = plan_topology(
            parallel.tensor_parallel_size, parallel.pipeline_parallel_size, gpus_per_pod, per_node,
            data_parallel_size=parallel.data_parallel_size,
        )
    except TopologyError as error:
        where = f"{group.key} ({group.types_text}, {per_node} GPU(s) per node)" if per_node else group.key
        return [f"{_key('parallelism.tensorParallelSize')}: {parallel.tensor_parallel_size} does not fit {where}: {error}"]
    tolerations = resources.pod_tolerations(topology.gpus_per_pod)
    for taint in group.taints:
        if taint.get("effect") == "PreferNoSchedule":
            continue
        if not any(tolerates(item, taint) for item in tolerations):
            text = f"{taint['key']}{'=' + taint['value'] if taint.get('value') else ''}:{taint['effect']}"
            problems.append(
                f"{_key('resources.tolerations')}: the taint {text} of {group.key} is not tolerated, so the GPU pods "
                f"would stay Pending; add {{key: {taint['key']}, operator: Exists, effect: {taint['effect']}}}"
            )
    for key, value in resources.node_selector.items():
        if key in group.labels and group.labels[key] != value:
            problems.append(
                f"{_key(f'resources.nodeSelector.{key}')}: {value!r} is not accepted: the nodes of {group.key} carry "
                f"{key}={group.labels[key]}, so no node of it could take the pods"
            )
        elif key not in group.labels and not key.startswith(_AUTOMATIC_PREFIXES):
            problems.append(
                f"{_key(f'resources.nodeSelector.{key}')}: no node of {group.key} carries the label {key} "
                f"(its nodes carry {', '.join(sorted(group.labels))}); add it to the group's labels or drop the selector"
            )
    pods = topology.pods * max(config.replicas, 1)
    if instance is not None and group.max_nodes is not None:
        per_node = instance.gpus // topology.gpus_per_pod
        nodes = math.ceil(pods / per_node)
        if nodes > group.max_nodes:
            problems.append(
                f"{_key(group.max_nodes_key)}: {group.max_nodes} is not accepted: the serving needs {nodes} node(s) of "
                f"{instance.name} ({pods} pod(s) of {topology.gpus_per_pod} GPU(s), {per_node} per node)"
            )
    if group.gpu_limit is not None and pods * topology.gpus_per_pod > group.gpu_limit:
        problems.append(
            f"{_key(f'{group.key}.gpuLimit')}: {group.gpu_limit} is not accepted: the serving holds "
            f"{pods * topology.gpus_per_pod} GPUs at once ({pods} pod(s) of {topology.gpus_per_pod})"
        )
    share = pod_share(config, topology.gpus_per_pod)
    if share is not None:
        problems.extend(resource_problems(config, share))
    return problems


def apply_node_type(config: Any) -> None:
    """Fill what a stack on a cloud group takes from its node type, and refuse a serving that cannot fit it.

    Called by the stack config's validator: the derived values become the config's own, so the plan, the
    capacity planner, the pod builders and the render summary all read one set of values. Raises
    :class:`ValueError` with one line per problem, each naming its key.
    """
    cloud: CloudSpec = config.cloud
    if config.target != "kubernetes":
        raise ValueError(f"{_key('cloud')}: is not accepted with target {config.target!r}: it creates a Kubernetes cluster")
    group = serving_group(cloud)
    if group is None:
        return
    parallelism, resources = derived_node_settings(config, group)
    # The sections are frozen models; the validator owns the instance it is validating, so replacing its
    # sections with updated copies is safe and keeps every reader on the derived values.
    if parallelism:
        object.__setattr__(config, "parallelism", config.parallelism.model_copy(update=parallelism))
    if resources:
        object.__setattr__(config, "resources", config.resources.model_copy(update=resources))
    problems = fit_problems(config, group)
    if config.cluster is not None and cloud.provider == "gcp":
        drivers = {pool.driver_version for pool in cloud.node_pools}
        if config.cluster.gpu.enablement != "none" and drivers != {"INSTALLATION_DISABLED"}:
            problems.append(
                f"{_key('cluster.gpu.enablement')}: {config.cluster.gpu.enablement!r} is not accepted on GKE GPU node "
                "pools that install the driver: GKE runs its own device plugin there; use none, or set the pools' "
                "driverVersion to INSTALLATION_DISABLED for the GPU Operator"
            )
    if problems:
        raise ValueError("\n  ".join(problems))
