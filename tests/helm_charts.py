"""Real Helm over the platform's releases: the pinned binaries, the packaged charts, and what the charts render.

Helm and kubectl come from ``make helm`` (``tools/install_helm.py``, pinned in ``tools/helm.lock``); the packaged
charts from ``charts/packages/`` of the schema folders (``../shared`` beside the checkout, see ``tests/schemas.py``).
Either missing skips the test with the reason, and fails it when ``$CI`` is set.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from schemas import KUBERNETES_VERSION, REPO, _in_ci, _strict, require_schema, schema_path

PACKAGES = "charts/packages"
"""Where the packaged charts are, inside a schema folder."""
HELM_MISSING = "helm missing:"
_HOME = Path(tempfile.gettempdir()) / f"pulumi-vllm-helm-{os.getuid()}"
"""Helm's throwaway home (config and cache) and the values files."""
"""How every skip (or, under CI, failure) for missing Helm binaries begins."""


@cache
def _installer() -> Any:
    spec = importlib.util.spec_from_file_location("install_helm", REPO / "tools" / "install_helm.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up
    spec.loader.exec_module(module)
    return module


@cache
def helm_binaries() -> tuple[Path, Path] | None:
    """``(helm, kubectl)`` from the cache ``make helm`` fills, when both are there with their pinned sha256."""
    installer = _installer()
    lock = installer.read_lock()
    if not installer.installed(lock):
        return None
    folder = installer.bin_dir(lock)
    return folder / "helm", folder / "kubectl"


def require_helm() -> tuple[Path, Path]:
    """``(helm, kubectl)``; skips the test when ``make helm`` has not run (fails it when ``$CI`` is set)."""
    found = helm_binaries()
    if found is not None:
        return found
    installer = _installer()
    reason = f"{HELM_MISSING} helm and kubectl are not in {installer.bin_dir(installer.read_lock())}; run `make helm`"
    if _in_ci():
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def package_name(chart: str, version: str) -> str:
    """The file ``helm package`` and ``helm pull`` write for a chart version."""
    return f"{chart}-{version}.tgz"


def require_package(chart: str, version: str) -> Path:
    """The packaged chart from ``charts/packages/`` of the schema folders (skip, or fail under CI, when missing)."""
    return require_schema(f"{PACKAGES}/{package_name(chart, version)}")


def packages_dir() -> Path:
    """The folder of packaged charts (the one holding their README), for ``cluster.chartSource``."""
    return require_schema(f"{PACKAGES}/README.md").parent


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the pinned Helm, offline: its config and cache in a throwaway home, no repository configured."""
    binary, _ = require_helm()
    home = _HOME
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }
    done = subprocess.run([str(binary), *args], check=False, capture_output=True, text=True, env=env, timeout=300)
    if check and done.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return done


def values_file(values: dict[str, Any]) -> str:
    """A values file holding ``values`` (JSON, which is YAML), for ``-f``."""
    text = json.dumps(values, sort_keys=True)  # JSON is YAML
    path = _HOME / f"values-{hashlib.sha256(text.encode()).hexdigest()[:16]}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def template_args(
    release: str, chart: Path, namespace: str, values: dict[str, Any], api_versions: tuple[str, ...] = ()
) -> list[str]:
    """``helm template`` as Helm installs the release: its CRDs, our values, Kubernetes 1.37, the given APIs."""
    args = ["template", release, str(chart), "--namespace", namespace, "--include-crds",
            "--kube-version", KUBERNETES_VERSION, "-f", values_file(values)]
    for api in api_versions:
        args += ["--api-versions", api]
    return args


@cache
def _render(release: str, chart: str, namespace: str, values_json: str, api_versions: tuple[str, ...]) -> str:
    done = helm(*template_args(release, Path(chart), namespace, json.loads(values_json), api_versions), check=False)
    return done.stdout if done.returncode == 0 else f"ERROR: {done.stderr.strip()}"


def render(
    release: str, chart: Path, namespace: str, values: dict[str, Any], api_versions: tuple[str, ...] = ()
) -> str:
    """The text ``helm template`` prints, or ``ERROR: <stderr>`` (cached: equal releases render once)."""
    return _render(release, str(chart), namespace, json.dumps(values, sort_keys=True), tuple(sorted(api_versions)))


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """YAML as the API server reads it: a bare ``=`` (YAML 1.1's value key, in Grafana's dashboards) is a string."""


_Loader.add_constructor("tag:yaml.org,2002:value", yaml.SafeLoader.construct_yaml_str)


def objects(text: str) -> list[dict[str, Any]]:
    """The Kubernetes objects of a ``helm template`` output (empty documents left out; parsed once per text,
    so callers must not change them)."""
    assert not text.startswith("ERROR:"), text
    return _parsed(text)


@cache
def _parsed(text: str) -> list[dict[str, Any]]:
    return [document for document in yaml.load_all(text, Loader=_Loader) if isinstance(document, dict)]


@cache
def _shared_crd(path: Path) -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=_Loader)


def leaf_paths(values: Any, defaults: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Each key path we set down to a scalar, a list, or a map the chart leaves free-form (default ``{}`` or null)."""
    if isinstance(values, dict) and values and isinstance(defaults, dict) and defaults:
        for key, value in values.items():
            yield from leaf_paths(value, defaults.get(key), (*path, key))
    elif path:
        yield path, values


def perturbed(value: Any) -> Any:
    """A value different from ``value`` that a template reading it would render differently."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    if isinstance(value, str):
        return f"{value}-perturbed"
    if isinstance(value, list):
        return [*value, value[-1]] if value else [{"key": "perturbed.example.com/key", "operator": "Exists"}]
    if isinstance(value, dict):
        return {**value, "perturbed.example.com/key": "perturbed"}
    return "perturbed"


def with_value(values: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    """``values`` with the key at ``path`` set to ``value`` (copies along the path)."""
    head, *rest = path
    copy = dict(values)
    copy[head] = value if not rest else with_value(copy[head], tuple(rest), value)
    return copy


def merged_defaults(package: Path) -> dict[str, Any]:
    """The chart's ``values.yaml`` with each subchart's under its alias (or name), as Helm merges them."""
    text = helm("show", "values", str(package)).stdout
    values = yaml.safe_load(text) or {}
    chart = yaml.safe_load(helm("show", "chart", str(package)).stdout)
    with tarfile.open(package) as archive:
        members = {member.name: member for member in archive.getmembers()}
        for dependency in chart.get("dependencies") or []:
            key = dependency.get("alias") or dependency["name"]
            inside = f"{chart['name']}/charts/{dependency['name']}/values.yaml"
            if inside in members:
                handle = archive.extractfile(members[inside])
                assert handle is not None
                sub = yaml.safe_load(handle.read()) or {}
                values[key] = {**sub, **(values.get(key) or {})}
    return values


def _python_patterns(schema: Any) -> Any:
    # Go's regexp takes flags anywhere (``^(?i)warn$``); Python only at the start of the pattern.
    if isinstance(schema, dict):
        schema = {key: _python_patterns(value) for key, value in schema.items()}
        pattern = schema.get("pattern")
        if isinstance(pattern, str) and pattern.startswith("^(?i)"):
            schema["pattern"] = "(?i)^" + pattern[len("^(?i)"):]
        return schema
    if isinstance(schema, list):
        return [_python_patterns(item) for item in schema]
    return schema


def crd_validators(documents: list[dict[str, Any]]) -> dict[tuple[str, str], Any]:
    """``(apiVersion, kind) -> validator`` (strict: unknown fields fail) of every CRD among ``documents``, from
    ``../shared/crds/`` when that folder has the same CRD (``<group>_<plural>.yaml``), else as the chart ships it."""
    return {
        key: jsonschema.validators.validator_for(schema)(schema) for key, schema in crd_schemas(documents).items()
    }


def crd_schemas(documents: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """``(apiVersion, kind) -> strict JSON schema`` of every CRD among ``documents`` (see :func:`crd_validators`)."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for document in documents:
        if document.get("kind") != "CustomResourceDefinition":
            continue
        spec = document["spec"]
        shared = schema_path(f"crds/{spec['group']}_{spec['names']['plural']}.yaml")
        source = _shared_crd(shared) if shared is not None else document
        for version in source["spec"]["versions"]:
            schema = _python_patterns(_strict(version["schema"]["openAPIV3Schema"]))
            schema.setdefault("properties", {})["metadata"] = {"type": "object"}
            found[(f"{spec['group']}/{version['name']}", spec["names"]["kind"])] = schema
    return found


def images(document: Any) -> Iterator[str]:
    """Every string value of an ``image`` key, and every ``repository`` with its ``image`` (the GPU Operator's
    ClusterPolicy names operand images so), anywhere in ``document`` (a repository left empty is skipped)."""
    if isinstance(document, dict):
        split = isinstance(document.get("image"), str) and (
            isinstance(document.get("repository"), str)
            or "name" not in document and "imagePullPolicy" in document and "/" not in document["image"]
        )  # a ClusterPolicy operand (no name, unlike a container), whose repository may be left out
        if split and document.get("repository"):
            yield f"{document['repository']}/{document['image']}"
        # Else an operand without a repository is one the user supplies (the GPU Operator's vGPU manager, built from
        # NVIDIA's licensed driver; off by default): no published image to mirror.
        for key, value in document.items():
            if key == "image" and isinstance(value, str):
                if not split:
                    yield value
            elif key != "repository" or not split:
                yield from images(value)
    elif isinstance(document, list):
        for item in document:
            yield from images(item)

