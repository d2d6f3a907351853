"""Cluster objects a render refers to by name but does not create: what must exist before it is applied.

A pod that names ``priorityClassName: vllm-inference`` is refused by the API server (``no PriorityClass with
name vllm-inference was found``) unless that PriorityClass exists; a claim naming a StorageClass the cluster
lacks stays Pending; an object in a namespace that does not exist is refused. The render lists every such
reference the stack does not satisfy itself (neither its own objects nor its platform section's, including
the namespaces its Helm releases create), so a reviewer knows what the cluster must already have.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pulumi_vllm.render.engine import ProgramRun
from pulumi_vllm.render.manifests import kubernetes_manifests, plain

REFERENCE_FIELDS = {
    "priorityClassName": "PriorityClass",
    "runtimeClassName": "RuntimeClass",
    "storageClassName": "StorageClass",
}
"""Fields of pod templates and claims (at any depth, custom resources included) that name a cluster object."""

BUILT_IN = {
    "Namespace": {"default", "kube-system", "kube-public", "kube-node-lease"},
    "PriorityClass": {"system-cluster-critical", "system-node-critical"},
}
"""Objects every Kubernetes cluster has (created by the API server itself)."""

GPU_OPERATOR_RUNTIME_CLASS = "nvidia"
"""The RuntimeClass NVIDIA's GPU Operator creates (its chart's ``operator.runtimeClass`` default)."""

DEFAULT_STORAGE_CLASS = "(the cluster's default)"
"""Stands for the StorageClass of a claim that names none: the cluster's default one must exist."""


@dataclass(frozen=True, order=True)
class Reference:
    """A cluster object named by the render, and the first object that names it."""

    kind: str
    name: str
    used_by: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"


def _named(value: Any) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key in REFERENCE_FIELDS and isinstance(item, str) and item:
                yield REFERENCE_FIELDS[key], item
            else:
                yield from _named(item)
    elif isinstance(value, list):
        for item in value:
            yield from _named(item)


def _claims_without_class(manifest: dict[str, Any]) -> bool:
    spec = manifest.get("spec") or {}
    if manifest["kind"] == "PersistentVolumeClaim":
        return "storageClassName" not in spec and not spec.get("volumeName")
    templates = spec.get("volumeClaimTemplates") or []
    return any("storageClassName" not in (template.get("spec") or {}) for template in templates)


def referenced_objects(run: ProgramRun) -> list[Reference]:
    """Every PriorityClass, RuntimeClass, StorageClass and Namespace the render names and does not create."""
    created: set[tuple[str, str]] = set()
    named: dict[tuple[str, str], str] = {}
    manifests = kubernetes_manifests(run)
    for manifest in manifests:
        metadata = manifest.get("metadata") or {}
        created.add((manifest["kind"], str(metadata.get("name", ""))))
    for registration in run.registrations:
        if not registration.type.startswith("kubernetes:helm.sh/"):
            continue
        release = plain(registration.inputs)
        namespace = str(release.get("namespace") or "default")
        if release.get("createNamespace"):
            created.add(("Namespace", namespace))
        else:
            named.setdefault(("Namespace", namespace), f"Helm release {release.get('name', registration.name)}")
        if str(release.get("chart", "")).endswith("gpu-operator"):
            created.add(("RuntimeClass", GPU_OPERATOR_RUNTIME_CLASS))
    for manifest in manifests:
        metadata = manifest.get("metadata") or {}
        owner = f"{manifest['kind']} {metadata.get('name', '')}"
        if metadata.get("namespace"):
            named.setdefault(("Namespace", str(metadata["namespace"])), owner)
        for kind, name in _named({key: value for key, value in manifest.items() if key != "metadata"}):
            named.setdefault((kind, name), owner)
        if _claims_without_class(manifest):
            named.setdefault(("StorageClass", DEFAULT_STORAGE_CLASS), owner)
    missing = [
        Reference(kind, name, owner)
        for (kind, name), owner in named.items()
        if (kind, name) not in created and name not in BUILT_IN.get(kind, set())
    ]
    return sorted(missing)


def must_exist_line(run: ProgramRun) -> str | None:
    """``must exist in the cluster: PriorityClass vllm-inference, Namespace vllm-dev`` (``None``: nothing)."""
    references = referenced_objects(run)
    if not references:
        return None
    return "must exist in the cluster: " + ", ".join(str(reference) for reference in references)
