"""What a change to a rendered Helm release (``helm/<release>.yaml``) does, in words: chart upgrades, the values
that matter to GPU workloads (time-slicing, the driver), and releases that move or go."""

from __future__ import annotations

from typing import Any

import yaml

from pulumi_vllm.review.fields import field_changes, format_path, get_path, short_value

HELM_KEYS = frozenset({"chart", "repository", "version", "namespace", "values"})


def is_helm_document(document: Any) -> bool:
    """A render's ``helm/<release>.yaml``."""
    return isinstance(document, dict) and HELM_KEYS <= set(document)


def _title(document: dict[str, Any]) -> str:
    from pulumi_vllm.platform_plan.charts import chart_by_name

    chart = chart_by_name(str(document.get("chart")))
    return chart.title if chart is not None else str(document.get("chart"))


def helm_subject(document: dict[str, Any]) -> str:
    """``Helm release gpu-operator``."""
    return f"Helm release {document.get('release') or document.get('chart')}"


def time_slicing_replicas(values: dict[str, Any]) -> int:
    """Pods per GPU set by a device plugin config in the values (the plugin's chart or the GPU Operator's); 1 if none."""
    configs = [get_path(values, ("config", "map")), get_path(values, ("devicePlugin", "config", "data"))]
    for config in configs:
        if not isinstance(config, dict):
            continue
        for text in config.values():
            document = yaml.safe_load(text) if isinstance(text, str) else None
            resources = get_path(document or {}, ("sharing", "timeSlicing", "resources"))
            if isinstance(resources, list) and resources:
                return int(resources[0].get("replicas", 1))
    return 1


def _sharing_text(before: int, after: int) -> str:
    if after == 1:
        return f"time-slicing replicas {before} -> 1: each GPU serves one pod again"
    return f"time-slicing replicas {before} -> {after}: each GPU is shared by {after} pods (no memory isolation between them)"


def helm_changed(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, str, str]]:
    """``(severity, subject, text)`` for a changed release (severities as in :mod:`.consequences`)."""
    subject = helm_subject(new)
    found: list[tuple[str, str, str]] = []
    for key in ("chart", "namespace", "repository"):
        if old.get(key) != new.get(key):
            text = f"{key} {short_value(old.get(key))} -> {short_value(new.get(key))}: Helm uninstalls the release and installs it again"
            found.append(("replaced", subject, text))
    if old.get("version") != new.get("version"):
        text = f"{_title(new)} {old.get('version')} -> {new.get('version')}: Helm upgrades the release; its pods roll to the new version"
        found.append(("pods restart", subject, text))
    old_values, new_values = old.get("values") or {}, new.get("values") or {}
    before, after = time_slicing_replicas(old_values), time_slicing_replicas(new_values)
    if before != after:
        found.append(("pods restart", subject, _sharing_text(before, after)))
    driver = (get_path(old_values, ("driver", "enabled")), get_path(new_values, ("driver", "enabled")))
    if driver[0] != driver[1]:
        text = ("the GPU Operator installs the NVIDIA driver on every GPU node (nodes must not already run one)"
                if driver[1] is True else "the GPU Operator stops managing the NVIDIA driver (the node image must ship one)")
        found.append(("pods restart", subject, text))
    worded = {("driver", "enabled"), ("config", "map"), ("devicePlugin", "config")}
    others = sorted({
        format_path(change.path) for change in field_changes(old_values, new_values)
        if not any(tuple(change.path[: len(prefix)]) == prefix for prefix in worded)
    })
    if others:
        found.append(("in place", subject, f"values changed: {', '.join(others)} (Helm upgrades the release)"))
    return found


def helm_removed(old: dict[str, Any]) -> list[tuple[str, str, str]]:
    """``(severity, subject, text)`` for a release the change removes."""
    return [("replaced", helm_subject(old), f"Helm uninstalls {_title(old)}; the CRDs it installed stay in the cluster")]
