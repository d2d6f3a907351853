"""Outputs a cloud provider computes and a program reads back (a cluster's endpoint and certificate authority,
an IAM role's ARN), as stand-ins for offline runs under Pulumi's mock runtime, which invents nothing.

The values are recognisably fake (``.example`` hosts, account 000000000000); only their shape matters, so that the
kubeconfig, the Karpenter objects and the IAM policies can be built and rendered.
"""

from __future__ import annotations

import base64
from typing import Any

FAKE_ACCOUNT = "000000000000"
_FAKE_CA = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nplaceholder\n-----END CERTIFICATE-----\n").decode()


def placeholder_outputs(resource_type: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """``inputs`` plus the outputs the provider would add for ``resource_type`` (``aws:eks/cluster:Cluster``, ...)."""
    state = dict(inputs)
    if not resource_type.startswith(("aws:", "gcp:")):
        return state
    resource_name = str(state.get("name") or name)
    if resource_type.startswith("aws:"):
        service = resource_type.split(":")[1].split("/")[0]
        state.setdefault("arn", f"arn:aws:{service}::{FAKE_ACCOUNT}:{resource_name}")
    if resource_type == "aws:eks/cluster:Cluster":
        vpc = dict(state.get("vpcConfig") or {})
        vpc.setdefault("clusterSecurityGroupId", f"sg-{name}")
        state.update({
            "endpoint": f"https://{resource_name}.eks.example",
            "certificateAuthority": {"data": _FAKE_CA},
            "vpcConfig": vpc,
            "name": resource_name,
        })
    elif resource_type == "gcp:container/cluster:Cluster":
        state.update({
            "endpoint": f"{resource_name}.gke.example",
            "masterAuth": {"clusterCaCertificate": _FAKE_CA},
            "name": resource_name,
        })
    elif resource_type in ("aws:iam/role:Role", "aws:eks/nodeGroup:NodeGroup", "aws:ec2/placementGroup:PlacementGroup"):
        state.setdefault("name", resource_name)  # auto-named by the provider; the program reads the name back
    return state
