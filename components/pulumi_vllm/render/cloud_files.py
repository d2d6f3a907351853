"""Render files of the cloud resources (EKS, GKE, IAM, VPC): ``cloud/<provider>/<kind>-<name>.yaml`` with the
resource's type, its name and its inputs (secrets redacted), beside the Kubernetes objects and Helm releases.

Imported for its side effect: it registers :func:`cloud_documents` in :data:`pulumi_vllm.render.extra_documents`.
The folder keeps them out of ``kubectl apply -f DIR`` (top-level files only): they are not Kubernetes objects.
"""

from __future__ import annotations

import re
from typing import Any

from pulumi_vllm.render import extra_documents
from pulumi_vllm.render.engine import ProgramRun, Registration
from pulumi_vllm.render.manifests import canonical, plain

CLOUD_DIR = "cloud"
PROVIDERS = ("aws", "gcp")


def is_cloud_resource(registration: Registration) -> bool:
    """A resource of a cloud provider (``aws:``, ``gcp:``), not a provider or a component."""
    return registration.custom and registration.type.split(":", 1)[0] in PROVIDERS


def cloud_kind(resource_type: str) -> str:
    """``aws:eks/nodeGroup:NodeGroup`` -> ``eks-nodegroup``."""
    module = resource_type.split(":")[1].split("/")[0]
    kind = resource_type.rsplit(":", 1)[1]
    return f"{module}-{kind}".lower()


def cloud_document(registration: Registration) -> dict[str, Any]:
    """``type``, ``name`` (the Pulumi resource name) and ``inputs``, then the options a reviewer cares about."""
    document: dict[str, Any] = {
        "type": registration.type,
        "name": registration.name,
        "inputs": canonical(plain(registration.inputs)),
    }
    if registration.options():
        document["options"] = registration.options()
    return document


def cloud_filename(registration: Registration) -> str:
    """``cloud/aws/eks-nodegroup-llama-cluster-gpu.yaml``."""
    provider = registration.type.split(":", 1)[0]
    stem = re.sub(r"[^a-z0-9.-]+", "-", f"{cloud_kind(registration.type)}-{registration.name}".lower())
    return f"{CLOUD_DIR}/{provider}/{stem}.yaml"


def cloud_documents(run: ProgramRun) -> list[tuple[str, Any]]:
    """One file per cloud resource of the run."""
    return [(cloud_filename(reg), cloud_document(reg)) for reg in run.registrations if is_cloud_resource(reg)]


if cloud_documents not in extra_documents:
    extra_documents.append(cloud_documents)
