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
from pulumi_vllm.cloud.instances import INSTANCE_TYPE_LABEL, InstanceType, node_labels
from pulumi_vllm.cluster.agreement import tolerates
from pulumi_vllm.config.base import PROJECT
from pulumi_vllm.config.cloud import CloudSpec
from pulumi_vllm.distributed.parallelism import TopologyError, plan_topology

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
