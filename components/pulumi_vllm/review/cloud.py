"""What a change to a rendered cloud resource (``cloud/<provider>/*.yaml``) does, in words: the fields whose change
makes the provider replace a cluster or a node group (its nodes drained and recreated), and upgrades in place.

The replacing fields are the ones the providers mark as forcing a new resource (pulumi-aws ``aws.eks.Cluster``,
``aws.eks.NodeGroup``; pulumi-gcp ``gcp.container.Cluster``, ``gcp.container.NodePool``).
"""

from __future__ import annotations

from typing import Any

from pulumi_vllm.review.fields import get_path, short_value

CLOUD_KEYS = frozenset({"type", "name", "inputs"})

_CLUSTERS = ("aws:eks/cluster:Cluster", "gcp:container/cluster:Cluster")
_NODE_GROUPS = ("aws:eks/nodeGroup:NodeGroup", "gcp:container/nodePool:NodePool")

_REPLACING: dict[str, dict[tuple[str, ...], str]] = {
    "aws:eks/cluster:Cluster": {("name",): "cluster name", ("roleArn",): "cluster role"},
    "gcp:container/cluster:Cluster": {
        ("name",): "cluster name", ("location",): "location", ("project",): "project", ("network",): "network",
        ("subnetwork",): "subnetwork",
    },
    "aws:eks/nodeGroup:NodeGroup": {
        ("instanceTypes",): "instance type", ("amiType",): "AMI type", ("capacityType",): "capacity type",
        ("nodeGroupName",): "node group name", ("subnetIds",): "subnets", ("nodeRoleArn",): "node role",
        ("clusterName",): "cluster",
    },
    "gcp:container/nodePool:NodePool": {
        ("nodeConfig", "machineType"): "machine type", ("nodeConfig", "guestAccelerators"): "accelerators",
        ("nodeConfig", "spot"): "spot setting", ("placementPolicy",): "placement policy", ("name",): "node pool name",
        ("nodeLocations",): "zones", ("nodeConfig", "diskSizeGb"): "disk size",
    },
}
"""Per resource type: input paths whose change replaces the resource, and what reviewers call them."""


def is_cloud_document(document: Any) -> bool:
    """A render's ``cloud/<provider>/<kind>-<name>.yaml``."""
    return (
        isinstance(document, dict) and CLOUD_KEYS <= set(document)
        and str(document.get("type", "")).startswith(("aws:", "gcp:"))
    )


def cloud_subject(document: dict[str, Any]) -> str:
    """``EKS node group llama-70b-cluster-h100`` (the kind in words, then the Pulumi name)."""
    kinds = {
        "aws:eks/cluster:Cluster": "EKS cluster", "aws:eks/nodeGroup:NodeGroup": "EKS node group",
        "gcp:container/cluster:Cluster": "GKE cluster", "gcp:container/nodePool:NodePool": "GKE node pool",
    }
    kind = kinds.get(str(document["type"]), str(document["type"]).rsplit(":", 1)[-1])
    return f"{kind} {document['name']}"


def _value(value: Any) -> str:
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return ", ".join(value) or "[]"
    return short_value(value)


def _replaced_text(resource_type: str, what: str, before: Any, after: Any) -> str:
    change = f"{_value(before)} -> {_value(after)}"
    if resource_type in _NODE_GROUPS:
        return f"{what} change replaces the node group: its nodes are drained and recreated ({change})"
    return f"{what} {change}: the cluster is deleted and created again, with every object, node and volume on it"


def cloud_changed(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, str, str]]:
    """``(severity, subject, text)`` for a changed cloud resource (severities as in :mod:`.consequences`)."""
    subject = cloud_subject(new)
    resource_type = str(new["type"])
    before, after = old.get("inputs") or {}, new.get("inputs") or {}
    found: list[tuple[str, str, str]] = []
    for path, what in _REPLACING.get(resource_type, {}).items():
        if get_path(before, path) != get_path(after, path):
            severity = "data loss" if resource_type in _CLUSTERS else "replaced"
            found.append((severity, subject, _replaced_text(resource_type, what, get_path(before, path), get_path(after, path))))
    version = ("version",) if resource_type.startswith("aws:") else ("minMasterVersion",)
    if resource_type in _CLUSTERS and get_path(before, version) != get_path(after, version):
        found.append(("in place", subject, (
            f"Kubernetes {get_path(before, version)} -> {get_path(after, version)}: the control plane upgrades in place "
            "(one minor version at a time); node groups follow on their next update"
        )))
    scaling = ("scalingConfig",) if resource_type.startswith("aws:") else ("nodeCount",)
    if resource_type in _NODE_GROUPS and get_path(before, scaling) != get_path(after, scaling):
        counts = f"{short_value(get_path(before, scaling))} -> {short_value(get_path(after, scaling))}"
        found.append(("in place", subject, f"node count {counts}: nodes are added or drained and removed"))
    if not found and before != after:
        changed = sorted(key for key in set(before) | set(after) if before.get(key) != after.get(key))
        found.append(("in place", subject, f"inputs changed: {', '.join(changed)} (the provider updates it)"))
    return found


def cloud_removed(old: dict[str, Any]) -> list[tuple[str, str, str]]:
    """``(severity, subject, text)`` for a cloud resource the change removes."""
    resource_type = str(old["type"])
    if resource_type in _CLUSTERS:
        return [("data loss", cloud_subject(old), "the cluster is deleted, with every object, node and volume on it")]
    if resource_type in _NODE_GROUPS:
        return [("replaced", cloud_subject(old), "the node group is deleted: its nodes are drained and terminated")]
    return [("replaced", cloud_subject(old), "deleted from the cloud account")]
