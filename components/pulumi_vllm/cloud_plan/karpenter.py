"""Karpenter on EKS without Pulumi: the chart's values, and the ``NodePool`` and ``EC2NodeClass`` custom resources
of each GPU NodePool (``karpenter.sh/v1``, ``karpenter.k8s.aws/v1``, as the CRDs of Karpenter 1.14 define them)."""

from __future__ import annotations

from typing import Any

from pulumi_vllm.config.cloud import KarpenterNodePoolSpec

NODE_POOL_API = "karpenter.sh/v1"
NODE_CLASS_API = "karpenter.k8s.aws/v1"
SERVICE_ACCOUNT = "karpenter"
NAMESPACE = "kube-system"
"""Karpenter's own guidance: run the controller in kube-system, on nodes it does not manage."""
DISCOVERY_TAG = "karpenter.sh/discovery"
"""Tag on the subnets and the cluster security group that the EC2NodeClass selects them by (value: the cluster)."""


def karpenter_values(cluster_name: str) -> dict[str, Any]:
    """The chart's values: the cluster it manages and the service account Pod Identity gives the controller role."""
    return {
        "settings": {"clusterName": cluster_name},
        "serviceAccount": {"name": SERVICE_ACCOUNT},
    }


def _taint(taint: dict[str, Any]) -> dict[str, Any]:
    return {key: taint[key] for key in ("key", "value", "effect") if taint.get(key)}


def node_pool_spec(pool: KarpenterNodePoolSpec) -> dict[str, Any]:
    """The NodePool: the instance types and capacity types it may launch, its labels and taints, its GPU limit."""
    return {
        "template": {
            "metadata": {"labels": dict(pool.labels)} if pool.labels else {},
            "spec": {
                "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": pool.name},
                "requirements": [
                    {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": list(pool.instance_types)},
                    {"key": "karpenter.sh/capacity-type", "operator": "In", "values": list(pool.capacity_types)},
                ],
                "taints": [_taint(taint) for taint in pool.taints],
                "expireAfter": "720h",
            },
        },
        "limits": {"nvidia.com/gpu": str(pool.gpu_limit)},
        # GPU nodes are expensive and slow to start: remove them only when empty, after a while.
        "disruption": {"consolidationPolicy": "WhenEmpty", "consolidateAfter": pool.consolidate_after},
    }


def node_class_spec(pool: KarpenterNodePoolSpec, cluster_name: str, node_role: Any, ami_alias: str) -> dict[str, Any]:
    """The EC2NodeClass: the node role, the AMI alias, the subnets and security group found by the discovery tag."""
    family = ami_alias.split("@", 1)[0].lower()
    ami_family = {"al2023": "AL2023", "bottlerocket": "Bottlerocket"}.get(family)
    spec: dict[str, Any] = {
        "role": node_role,
        "amiSelectorTerms": [{"alias": ami_alias}],
        "subnetSelectorTerms": [{"tags": {DISCOVERY_TAG: cluster_name}}],
        "securityGroupSelectorTerms": [{"tags": {DISCOVERY_TAG: cluster_name}}],
        "blockDeviceMappings": [
            {
                "deviceName": "/dev/xvda",
                "ebs": {"volumeSize": f"{pool.disk_size_gib}Gi", "volumeType": "gp3", "encrypted": True,
                        "deleteOnTermination": True},
            }
        ],
        "metadataOptions": {"httpTokens": "required", "httpPutResponseHopLimit": 1},
        "tags": {DISCOVERY_TAG: cluster_name},
    }
    if ami_family:
        spec["amiFamily"] = ami_family
    return spec
