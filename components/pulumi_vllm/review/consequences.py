"""What a change to a rendered object will do on the cluster, in the words of the people who run it.

The rules follow what the Kubernetes API server accepts and what Pulumi's Kubernetes provider does:
the provider replaces (deletes and creates again) an object when a field it treats as immutable
changes (:mod:`pulumi_vllm.review.field_rules` lists those fields, and names a changed pod-template
field). Any change to a pod template rolls the pods of a Deployment, StatefulSet or LeaderWorkerSet;
KubeRay leaves running Ray pods alone unless the RayCluster asks for ``upgradeStrategy: Recreate``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pulumi_vllm.review.cloud import cloud_changed, cloud_removed, is_cloud_document
from pulumi_vllm.review.field_rules import IMMUTABLE, PVC_REPLACING, pod_templates, template_changes
from pulumi_vllm.review.fields import (
    ABSENT,
    field_changes,
    format_path,
    get_path,
    parse_quantity,
    short_value,
    startswith,
)
from pulumi_vllm.review.helm import helm_changed, helm_removed, is_helm_document

DATA_LOSS = "data loss"
REPLACE = "replaced"
FAILS = "update fails"
RESTART = "pods restart"
IN_PLACE = "in place"
SEVERITIES = (DATA_LOSS, REPLACE, FAILS, RESTART, IN_PLACE)
"""Consequence severities, worst first."""


@dataclass(frozen=True)
class Consequence:
    """One effect of the change on the cluster."""

    severity: str
    """One of :data:`SEVERITIES`."""
    subject: str
    """What it happens to, e.g. ``Deployment llama-8b``."""
    text: str
    """What happens, in a sentence."""


@dataclass(frozen=True)
class ResourceEntry:
    """One row of ``_pulumi/resources.txt``: a Pulumi resource and the options a reviewer cares about."""

    type: str
    name: str
    protect: bool = False
    retain_on_delete: bool = False
    aliases: tuple[str, ...] = ()
    custom_timeouts: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_index(cls, entry: dict[str, Any]) -> ResourceEntry:
        """Read one index row (unknown keys ignored; ``aliases`` honoured when the index carries them)."""
        aliases = entry.get("aliases") or ()
        return cls(
            type=str(entry.get("type", "")),
            name=str(entry.get("name", "")),
            protect=bool(entry.get("protect", False)),
            retain_on_delete=bool(entry.get("retainOnDelete", False)),
            aliases=tuple(str(alias).rsplit("::", 1)[-1] for alias in aliases),
            custom_timeouts=tuple(sorted((entry.get("customTimeouts") or {}).items())),
        )


def describe(manifest: dict[str, Any]) -> str:
    """``Deployment llama-8b`` (``the model cache PVC llama-8b-model-cache`` for the cache claim)."""
    kind = manifest.get("kind", "object")
    name = (manifest.get("metadata") or {}).get("name", "?")
    labels = (manifest.get("metadata") or {}).get("labels") or {}
    if kind == "PersistentVolumeClaim":
        prefix = "model cache PVC" if labels.get("app.kubernetes.io/component") == "model-cache" else "PVC"
        return f"{prefix} {name}"
    return f"{kind} {name}"



def _rollout_note(manifest: dict[str, Any]) -> str:
    kind = manifest.get("kind")
    if kind == "Deployment":
        strategy = get_path(manifest, ("spec", "strategy", "type"))
        if strategy == "Recreate":
            return "strategy Recreate: the old pods stop before the new ones start, so the endpoint is down until they are ready"
        return "rolling update: each new pod needs free GPUs before an old one stops"
    if kind == "StatefulSet":
        if get_path(manifest, ("spec", "updateStrategy", "type")) == "OnDelete":
            return "updateStrategy OnDelete: running pods keep the old template until they are deleted"
        return "one pod at a time, highest ordinal first"
    return ""




def _pvc_consequences(
    subject: str, old: dict[str, Any], new: dict[str, Any], entry: ResourceEntry | None
) -> list[Consequence]:
    found: list[Consequence] = []
    changes = field_changes(old, new)
    replacing = [c for c in changes if any(startswith(c.path, prefix) for prefix in PVC_REPLACING)]
    if replacing:
        fields = ", ".join(f"{format_path(c.path[1:])} {short_value(c.old)} -> {short_value(c.new)}" for c in replacing)
        what = "model cache PVC" if subject.startswith("model cache") else "PVC"
        text = f"the {what} would be replaced: its data is lost ({fields}: immutable on a claim)"
        if subject.startswith("model cache"):
            text += "; the weights are downloaded again on the next start"
        if entry is not None and entry.retain_on_delete:
            text += (
                "; retainOnDelete is set, so Pulumi leaves the old claim in the cluster and creating the new one "
                "under the same name fails until the old claim is deleted by hand"
            )
        found.append(Consequence(DATA_LOSS, subject, text))
    storage = ("spec", "resources", "requests", "storage")
    before, after = get_path(old, storage), get_path(new, storage)
    if before != after and before is not ABSENT and after is not ABSENT and not replacing:
        old_size, new_size = parse_quantity(before), parse_quantity(after)
        if old_size is not None and new_size is not None and new_size < old_size:
            found.append(
                Consequence(
                    FAILS,
                    subject,
                    f"storage {before} -> {after}: Kubernetes rejects shrinking a claim, the update fails",
                )
            )
        else:
            found.append(
                Consequence(
                    IN_PLACE,
                    subject,
                    f"storage {before} -> {after}: expanded in place (the StorageClass must allow volume expansion)",
                )
            )
    return found


def changed_object(old: dict[str, Any], new: dict[str, Any], entry: ResourceEntry | None = None) -> list[Consequence]:
    """Consequences of changing one object from ``old`` to ``new`` (both rendered manifests)."""
    if is_helm_document(old) and is_helm_document(new):
        return [Consequence(*item) for item in helm_changed(old, new)]
    if is_cloud_document(old) and is_cloud_document(new):
        return [Consequence(*item) for item in cloud_changed(old, new)]
    if isinstance(old, dict) and isinstance(new, dict) and _is_docker(new):
        return _docker_changed(old, new)
    if not (isinstance(old, dict) and isinstance(new, dict) and "kind" in new):
        return []
    subject = describe(new)
    kind = new.get("kind", "")
    found: list[Consequence] = []
    for key in ("name", "namespace"):
        before, after = get_path(old, ("metadata", key)), get_path(new, ("metadata", key))
        if before != after:
            loss = " and its data is lost" if kind == "PersistentVolumeClaim" else ""
            found.append(
                Consequence(
                    DATA_LOSS if loss else REPLACE,
                    subject,
                    f"metadata.{key} {short_value(before)} -> {short_value(after)}: replaced{loss}",
                )
            )
    if kind == "PersistentVolumeClaim":
        return found + _pvc_consequences(subject, old, new, entry)
    replacing = [
        change
        for change in field_changes(old, new)
        if any(startswith(change.path, prefix) for prefix in IMMUTABLE.get(kind, ()))
    ]
    if replacing:
        fields = ", ".join(
            sorted({format_path(change.path[:2] if kind != "Pod" else change.path) for change in replacing})
        )
        text = f"the {kind} would be replaced: Pulumi deletes it and creates it again ({fields} cannot be updated)"
        if kind == "StatefulSet" and any(startswith(c.path, ("spec", "volumeClaimTemplates")) for c in replacing):
            text += (
                "; the claims it already made are kept and reused, so the new claim template applies only to new claims"
            )
        if kind == "Job":
            text += "; its pods run again"
        if kind == "Service":
            text = "the Service would be replaced: it gets a new cluster IP, and clients that cached the old one break"
        if kind == "Secret":
            text = "the Secret would be replaced with the new data (values are not shown)"
        if kind == "ConfigMap":
            text = "the ConfigMap would be replaced with the new data (Pulumi replaces ConfigMaps rather than editing them)"
        found.append(Consequence(REPLACE, subject, text))
        if kind in ("Job", "Pod"):
            return found
    for label, path in pod_templates(new).items():
        changed_fields = template_changes(old, new, path)
        if not changed_fields:
            continue
        owner = f"the {kind}'s {label + ' ' if label else ''}pods"
        if kind == "RayCluster":
            if get_path(new, ("spec", "upgradeStrategy", "type")) == "Recreate":
                text = f"KubeRay recreates every Ray pod ({label}: {'; '.join(changed_fields)}; upgradeStrategy Recreate)"
            else:
                text = (
                    f"{label} pod template changed ({'; '.join(changed_fields)}), but KubeRay does not recreate running Ray pods: "
                    "the change applies only to pods created later (delete the pods, or set upgradeStrategy Recreate)"
                )
            found.append(Consequence(RESTART, subject, text))
            continue
        text = f"{owner} will be replaced ({'; '.join(changed_fields)})"
        if kind == "LeaderWorkerSet":
            text += "; whole groups are recreated by the rolling update"
        note = _rollout_note(new)
        found.append(Consequence(RESTART, subject, text + (f"; {note}" if note else "")))
    for path, word in ((("spec", "replicas"), "replicas"), (("spec", "leaderWorkerTemplate", "size"), "group size")):
        before, after = get_path(old, path), get_path(new, path)
        if before != after and not (before is ABSENT and after is ABSENT):
            found.append(Consequence(IN_PLACE, subject, f"{word} {short_value(before)} -> {short_value(after)}"))
    if kind == "Service":
        found += _service_notes(subject, old, new)
    return found


def _service_notes(subject: str, old: dict[str, Any], new: dict[str, Any]) -> list[Consequence]:
    notes = []
    selector = ("spec", "selector")
    if get_path(old, selector) != get_path(new, selector):
        notes.append(
            Consequence(IN_PLACE, subject, "selector changed: traffic goes to the pods the new selector matches")
        )
    service_type = ("spec", "type")
    if get_path(old, service_type) != get_path(new, service_type):
        notes.append(
            Consequence(
                IN_PLACE,
                subject,
                f"type {short_value(get_path(old, service_type))} -> {short_value(get_path(new, service_type))}",
            )
        )
    if get_path(old, ("spec", "ports")) != get_path(new, ("spec", "ports")):
        notes.append(Consequence(IN_PLACE, subject, "ports changed: clients must use the new port"))
    return notes


def removed_object(old: dict[str, Any], entry: ResourceEntry | None = None) -> list[Consequence]:
    """Consequences of an object that the change removes."""
    if is_helm_document(old):
        return [Consequence(*item) for item in helm_removed(old)]
    if is_cloud_document(old):
        return [Consequence(*item) for item in cloud_removed(old)]
    if isinstance(old, dict) and _is_docker(old):
        return _docker_removed(old)
    if not (isinstance(old, dict) and "kind" in old):
        return []
    subject = describe(old)
    kind = old["kind"]
    if entry is not None and entry.protect:
        return [Consequence(FAILS, subject, "removed, but it is protected: Pulumi refuses to delete it")]
    if entry is not None and entry.retain_on_delete:
        return [Consequence(IN_PLACE, subject, "dropped from the stack but left in the cluster (retainOnDelete)")]
    if kind == "PersistentVolumeClaim":
        return [Consequence(DATA_LOSS, subject, "deleted: its data is lost")]
    if kind in ("Deployment", "StatefulSet", "LeaderWorkerSet", "RayCluster"):
        return [Consequence(REPLACE, subject, "deleted: its pods stop and their GPUs are released")]
    return [Consequence(REPLACE, subject, "deleted")]


def index_consequences(
    old_index: list[ResourceEntry], new_index: list[ResourceEntry], subjects: dict[str, str]
) -> list[Consequence]:
    """Consequences read from the resource index: renamed resources, protect and retainOnDelete changes.

    ``subjects`` maps a Pulumi resource name to the object it manages (``Deployment llama-8b``).
    """
    found: list[Consequence] = []
    old_by_key = {(entry.type, entry.name): entry for entry in old_index}
    new_by_key = {(entry.type, entry.name): entry for entry in new_index}
    gone = [entry for key, entry in old_by_key.items() if key not in new_by_key and _is_custom(entry.type)]
    came = [entry for key, entry in new_by_key.items() if key not in old_by_key and _is_custom(entry.type)]
    for new_entry in came:
        old_entry = next((entry for entry in gone if entry.type == new_entry.type), None)
        if old_entry is None:
            continue
        gone.remove(old_entry)
        subject = subjects.get(new_entry.name, f"{new_entry.type} {new_entry.name}")
        if old_entry.name in new_entry.aliases:
            found.append(
                Consequence(
                    IN_PLACE, subject, f"Pulumi name {old_entry.name} -> {new_entry.name}, aliased: no replacement"
                )
            )
            continue
        loss = new_entry.type.endswith(":PersistentVolumeClaim")
        found.append(
            Consequence(
                DATA_LOSS if loss else REPLACE,
                subject,
                f"Pulumi name {old_entry.name} -> {new_entry.name}: Pulumi deletes the old resource and creates a new one"
                f"{' (its data is lost)' if loss else ''} unless the new one has aliases=[the old name]",
            )
        )
    for key, new_entry in new_by_key.items():
        old_entry = old_by_key.get(key)
        if old_entry is None:
            continue
        subject = subjects.get(new_entry.name, f"{new_entry.type} {new_entry.name}")
        if old_entry.protect != new_entry.protect:
            text = (
                "now protected: Pulumi refuses to delete it"
                if new_entry.protect
                else "no longer protected: Pulumi may delete it"
            )
            found.append(Consequence(IN_PLACE, subject, text))
        if old_entry.retain_on_delete != new_entry.retain_on_delete:
            if new_entry.retain_on_delete:
                text = "retainOnDelete set: deleting it from the stack leaves it in the cluster"
            else:
                text = "retainOnDelete removed: deleting it from the stack (or the stack) now deletes it in the cluster"
                if new_entry.type.endswith(":PersistentVolumeClaim"):
                    text += ", with its data"
            found.append(Consequence(IN_PLACE, subject, text))
        if old_entry.custom_timeouts != new_entry.custom_timeouts:
            found.append(
                Consequence(
                    IN_PLACE,
                    subject,
                    f"custom timeouts {dict(old_entry.custom_timeouts) or 'default'} -> {dict(new_entry.custom_timeouts) or 'default'}",
                )
            )
    return found


def _is_custom(resource_type: str) -> bool:
    # Components (``<package>:index:<Class>``) own nothing on the cluster; their children carry the rename.
    return ":index:" not in resource_type and not resource_type.startswith("pulumi:")


# Docker target: rendered as ``{type, name, provider, options, inputs}`` per resource.
_CONTAINER_IN_PLACE = {"restart", "memory", "memorySwap", "cpuShares"}
"""Container inputs the Docker provider updates without recreating the container (``docker update``)."""


def _is_docker(document: dict[str, Any]) -> bool:
    kind = str(document.get("type", ""))
    return "inputs" in document and (kind.startswith("docker:") or kind == "pulumi:providers:docker")


def docker_subject(document: dict[str, Any]) -> str:
    """``Docker container llama-8b on gpu-1``."""
    kind = str(document.get("type", "")).rsplit(":", 1)[-1]
    kind = "host connection" if kind == "docker" else kind.lower()
    inputs = document.get("inputs") or {}
    name = inputs.get("name") if isinstance(inputs.get("name"), str) else document.get("name", "?")
    where = f" on {document['provider']}" if document.get("provider") else ""
    return f"Docker {kind} {name}{where}"


def _docker_changed(old: dict[str, Any], new: dict[str, Any]) -> list[Consequence]:
    subject = docker_subject(new)
    changes = field_changes(old.get("inputs") or {}, new.get("inputs") or {})
    fields = sorted({str(change.path[0]) for change in changes if change.path})
    if not fields:
        return []
    kind = str(new.get("type", ""))
    if kind == "pulumi:providers:docker":
        return [
            Consequence(REPLACE, subject, f"host connection changed ({', '.join(fields)}): what runs there is replaced")
        ]
    if kind.endswith(":Volume"):
        return [
            Consequence(
                DATA_LOSS, subject, f"the volume would be replaced: its data is lost ({', '.join(fields)} changed)"
            )
        ]
    if kind.endswith(":Container"):
        if set(fields) <= _CONTAINER_IN_PLACE:
            return [Consequence(IN_PLACE, subject, f"{', '.join(fields)} changed, updated in place")]
        image = [change for change in changes if change.path == ("image",)]
        detail = f"image changed: {short_value(image[0].old)} -> {short_value(image[0].new)}; " if image else ""
        return [
            Consequence(
                RESTART,
                subject,
                f"the container will be replaced ({detail}{', '.join(fields)} changed): "
                "it stops, and the endpoint is down until the new one is healthy",
            )
        ]
    return [Consequence(IN_PLACE, subject, f"{', '.join(fields)} changed")]


def _docker_removed(old: dict[str, Any]) -> list[Consequence]:
    subject = docker_subject(old)
    options = old.get("options") or {}
    if options.get("retainOnDelete"):
        return [Consequence(IN_PLACE, subject, "dropped from the stack but left on the host (retainOnDelete)")]
    if str(old.get("type", "")).endswith(":Volume"):
        return [Consequence(DATA_LOSS, subject, "deleted: its data is lost")]
    return [Consequence(REPLACE, subject, "deleted")]
