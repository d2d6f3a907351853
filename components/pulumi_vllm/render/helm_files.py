"""Render files of the GPU platform's Helm releases: ``helm/<release>.yaml`` with the chart, its repository,
the pinned version, the namespace and the values, beside the Kubernetes objects.

Imported for its side effect: it registers :func:`helm_documents` in :data:`pulumi_vllm.render.extra_documents`.
"""

from __future__ import annotations

from typing import Any

from pulumi_vllm.render import extra_documents
from pulumi_vllm.render.engine import ProgramRun, Registration
from pulumi_vllm.render.manifests import canonical, plain

HELM_RELEASE_TYPE = "kubernetes:helm.sh/v3:Release"
HELM_DIR = "helm"


def is_helm_release(registration: Registration) -> bool:
    """A Helm release (Pulumi tracks it as one resource; Helm creates the chart's objects)."""
    return registration.custom and registration.type == HELM_RELEASE_TYPE


def helm_release_document(registration: Registration) -> dict[str, Any]:
    """``chart`` (the chart's name), ``repository``, ``version``, ``namespace``, ``values``, then the rest."""
    inputs = plain(registration.inputs)
    chart = str(inputs.pop("chart"))
    repository = (inputs.pop("repositoryOpts", None) or {}).get("repo")
    if repository is None and chart.startswith("oci://"):
        repository, chart = chart.rsplit("/", 1)
    document: dict[str, Any] = {
        "release": inputs.pop("name", registration.name),
        "chart": chart,
        "repository": repository,
        "version": inputs.pop("version", None),
        "namespace": inputs.pop("namespace", "default"),
        "values": canonical(inputs.pop("values", {}) or {}),
    }
    # The provider's own bookkeeping, not a setting: the SDK marks every release it registers.
    inputs.pop("metadata", None)
    inputs.pop("compat", None)
    document["options"] = canonical(inputs)
    return document


def helm_documents(run: ProgramRun) -> list[tuple[str, Any]]:
    """``helm/<release>.yaml`` for every Helm release of the run."""
    documents = [helm_release_document(reg) for reg in run.registrations if is_helm_release(reg)]
    return [(f"{HELM_DIR}/{document['release']}.yaml", document) for document in documents]


if helm_documents not in extra_documents:
    extra_documents.append(helm_documents)
