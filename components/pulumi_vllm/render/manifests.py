"""Turn recorded registrations into plain manifests: secrets redacted, integers restored."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from pulumi_vllm.render.engine import REDACTED, SECRET_SIG, ProgramRun, Registration

_KIND_ORDER = {
    "Namespace": 0, "ResourceQuota": 1, "LimitRange": 1, "Secret": 2, "ConfigMap": 3, "PersistentVolumeClaim": 4,
    "Service": 5, "Deployment": 6, "StatefulSet": 7, "LeaderWorkerSet": 8, "RayCluster": 9, "Job": 10,
}


def _redact_leaves(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _redact_leaves(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_redact_leaves(item) for item in value]
    return REDACTED


def plain(value: Any) -> Any:
    """Wire value -> plain value: every secret redacted (structure kept), integral floats back to int."""
    if isinstance(value, dict):
        if SECRET_SIG in value:
            return _redact_leaves(plain(value.get("value")))
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


_FIRST_KEYS = ("apiVersion", "kind", "metadata", "name", "namespace", "type")


def canonical(value: Any) -> Any:
    """Keys in a stable, readable order (identifying keys first, the rest sorted) at every level.

    Wire order is arbitrary; a stable order keeps renders byte-identical and their diffs small.
    """
    if isinstance(value, dict):
        first = [key for key in _FIRST_KEYS if key in value]
        rest = sorted(key for key in value if key not in _FIRST_KEYS)
        return {key: canonical(value[key]) for key in [*first, *rest]}
    if isinstance(value, list):
        return [canonical(item) for item in value]
    return value


def is_kubernetes_object(registration: Registration) -> bool:
    """A Kubernetes object the provider would create (not a component, not a provider)."""
    return (
        registration.custom
        and registration.type.startswith("kubernetes:")
        and not registration.type.startswith("pulumi:providers:")
        # A Helm release is not an object of the API: render writes it to helm/<release>.yaml.
        and not registration.type.startswith("kubernetes:helm.sh/")
    )


def kubernetes_manifest(registration: Registration) -> dict[str, Any]:
    """The object as the API server would receive it: apiVersion, kind, metadata, then the rest."""
    inputs = plain(registration.inputs)
    manifest: dict[str, Any] = {
        "apiVersion": inputs.pop("apiVersion"),
        "kind": inputs.pop("kind"),
        "metadata": inputs.pop("metadata", {}),
    }
    manifest.update(inputs)
    return canonical(manifest)


def kubernetes_manifests(run: ProgramRun) -> list[dict[str, Any]]:
    """Every Kubernetes object of the run, in apply order (secrets and claims before workloads)."""
    manifests = [kubernetes_manifest(reg) for reg in run.registrations if is_kubernetes_object(reg)]
    return sorted(
        manifests,
        key=lambda m: (_KIND_ORDER.get(m["kind"], 50), m["metadata"].get("namespace", ""), m["metadata"]["name"]),
    )


def manifest_filename(manifest: dict[str, Any]) -> str:
    """``<kind>-<name>.yaml`` in lower case (namespace added when not the default)."""
    metadata = manifest["metadata"]
    parts = [manifest["kind"].lower(), metadata["name"]]
    return re.sub(r"[^a-z0-9.-]+", "-", "-".join(parts).lower()) + ".yaml"


def resource_index(run: ProgramRun) -> list[dict[str, Any]]:
    """Every registered resource with its parent and the options a reviewer cares about."""
    index = []
    for reg in sorted(run.registrations, key=lambda item: item.urn):
        entry: dict[str, Any] = {"type": reg.type, "name": reg.name, "parent": reg.parent.rsplit("::", 1)[-1]}
        entry.update(reg.options())
        index.append(entry)
    return index


class _ReadableDumper(yaml.SafeDumper):
    """Safe YAML, with multi-line strings (scripts, JSONL) as literal blocks that diff line by line."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_ReadableDumper.add_representer(str, _represent_str)


def dump_yaml(document: Any) -> str:
    """YAML as people write it: block style, keys in the given order, scripts as literal blocks."""
    return yaml.dump(document, Dumper=_ReadableDumper, sort_keys=False, default_flow_style=False, width=120)


def write_documents(out_dir: Path, documents: Iterable[tuple[str, Any]]) -> list[Path]:
    """Write ``(filename, document)`` pairs into a fresh ``out_dir`` (stale files from a previous render go)."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    written = []
    for filename, document in documents:
        path = out_dir / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        text = document if isinstance(document, str) else dump_yaml(document)
        path.write_text(text)
        written.append(path)
    return written


def rendered_documents(run: ProgramRun) -> list[tuple[str, Any]]:
    """Files of a render: one per Kubernetes object, plus the resource index and the stack outputs."""
    documents: list[tuple[str, Any]] = []
    seen: set[str] = set()
    for manifest in kubernetes_manifests(run):
        filename = manifest_filename(manifest)
        if filename in seen:
            namespace = manifest["metadata"].get("namespace", "default")
            filename = filename.replace(".yaml", f"-{namespace}.yaml")
        seen.add(filename)
        documents.append((filename, manifest))
    from pulumi_vllm.render import extra_documents

    for extra in extra_documents:
        documents.extend(extra(run))
    # Pulumi's metadata is YAML too, but not a Kubernetes object: its ``.txt`` extension keeps it out of
    # ``kubectl apply -R -f DIR``, which reads every .json, .yaml and .yml file under DIR.
    documents.append(("_pulumi/resources.txt", resource_index(run)))
    documents.append(("_pulumi/outputs.txt", plain(run.outputs)))
    return documents
