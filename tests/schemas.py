"""Validation of rendered objects against the real schemas: Kubernetes OpenAPI (strict) and the CRDs.

The upstream schema files (CRDs, the Compose spec) are not part of the repository. They are read
from the first folder that has them, each laid out as ``crds/<name>.yaml`` and
``schemas/compose-spec.json``:

1. the folder named by ``$PULUMI_VLLM_SCHEMAS``;
2. ``../shared`` beside the checkout;
3. ``.cache/schemas`` in the checkout, which ``make schemas`` fills from the upstream releases
   pinned (URL and sha256) in ``tools/schemas.lock``.

A test whose schema is in none of them is skipped with a reason naming the file, or fails when
``$CI`` is set, so a CI run never passes without the schemas.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

KUBERNETES_VERSION = "1.37.0"
"""The Kubernetes release whose official schemas rendered objects must satisfy."""

REPO = Path(__file__).resolve().parents[1]
SCHEMAS_ENV = "PULUMI_VLLM_SCHEMAS"
"""Environment variable naming a schema folder, searched first."""
SHARED_DIR = REPO.parent / "shared"
"""The shared folder beside the checkout, searched second."""
CACHE_DIR = REPO / ".cache" / "schemas"
"""The folder ``make schemas`` fills, searched last."""
MANIFEST = REPO / "tools" / "schemas.lock"
"""Every schema file with its upstream URL and sha256: ``<relative path> <sha256> <url>`` per line."""
MISSING_PREFIX = "schema missing:"
"""How every skip (or, under CI, failure) for a missing schema begins; conftest counts them."""

CRD_FILES = {
    ("leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet"): "leaderworkerset.x-k8s.io_leaderworkersets.yaml",
    ("ray.io/v1", "RayCluster"): "ray.io_rayclusters.yaml",
    ("ray.io/v1", "RayService"): "ray.io_rayservices.yaml",
    ("keda.sh/v1alpha1", "ScaledObject"): "keda.sh_scaledobjects.yaml",
    ("monitoring.coreos.com/v1", "PodMonitor"): "monitoring.coreos.com_podmonitors.yaml",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "monitoring.coreos.com_servicemonitors.yaml",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "monitoring.coreos.com_prometheusrules.yaml",
    ("karpenter.sh/v1", "NodePool"): "karpenter.sh_nodepools.yaml",
    ("karpenter.k8s.aws/v1", "EC2NodeClass"): "karpenter.k8s.aws_ec2nodeclasses.yaml",
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): "gateway.networking.k8s.io_httproutes.yaml",
    ("inference.networking.k8s.io/v1", "InferencePool"): "inference.networking.k8s.io_inferencepools.yaml",
}


def schema_dirs(
    environ: Mapping[str, str] | None = None, shared: Path | None = None, cache_dir: Path | None = None
) -> list[Path]:
    """The folders searched, in order: ``$PULUMI_VLLM_SCHEMAS`` (when set), ../shared, the cache."""
    environ = os.environ if environ is None else environ
    dirs = [Path(environ[SCHEMAS_ENV])] if environ.get(SCHEMAS_ENV) else []
    return [*dirs, SHARED_DIR if shared is None else shared, CACHE_DIR if cache_dir is None else cache_dir]


def schema_path(relative: str, dirs: list[Path] | None = None) -> Path | None:
    """The first existing ``<folder>/<relative>`` of :func:`schema_dirs` (or ``dirs``), else None."""
    for folder in schema_dirs() if dirs is None else dirs:
        candidate = folder / relative
        if candidate.is_file():
            return candidate
    return None


def missing_reason(relative: str) -> str:
    """Why ``relative`` cannot be read: the file, the three places searched, and how to get it."""
    override = os.environ.get(SCHEMAS_ENV)
    places = [f"${SCHEMAS_ENV}={override}" if override else f"${SCHEMAS_ENV} (not set)", str(SHARED_DIR), str(CACHE_DIR)]
    return (
        f"{MISSING_PREFIX} {relative} is in none of: {', '.join(places)}; "
        f"run `make schemas` to download it, or set {SCHEMAS_ENV} to a folder holding it"
    )


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_schema(relative: str) -> Path:
    """The schema file ``relative``; skips the test when it is missing (fails it when ``$CI`` is set)."""
    path = schema_path(relative)
    if path is not None:
        return path
    reason = missing_reason(relative)
    if _in_ci():
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def _strict(schema: Any) -> Any:
    # CRD schemas allow unknown fields only where x-kubernetes-preserve-unknown-fields says so;
    # elsewhere an unknown field must fail, as it does on the API server.
    if isinstance(schema, dict):
        schema = {key: _strict(value) for key, value in schema.items()}
        if schema.get("type") == "object" and "properties" in schema and not schema.get(
            "x-kubernetes-preserve-unknown-fields"
        ):
            schema.setdefault("additionalProperties", False)
        return schema
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    return schema


def crd_text(filename: str) -> str:
    """A CRD file's text (``crds/<filename>`` of the first schema folder that has it; see :func:`require_schema`)."""
    return require_schema(f"crds/{filename}").read_text()


@cache
def _crd_validator(api_version: str, kind: str) -> Any:
    schema = crd_schema(api_version, kind)
    return jsonschema.validators.validator_for(schema)(schema)


@cache
def crd_schema(api_version: str, kind: str) -> dict[str, Any]:
    """The strict JSON schema of a custom resource, from its CRD file (see :func:`crd_text`)."""
    document = yaml.safe_load(crd_text(CRD_FILES[(api_version, kind)]))
    version = api_version.split("/")[1]
    for entry in document["spec"]["versions"]:
        if entry["name"] == version:
            schema = _strict(entry["schema"]["openAPIV3Schema"])
            # metadata is validated by the API server's ObjectMeta, not the CRD schema.
            schema["properties"]["metadata"] = {"type": "object"}
            return schema
    raise KeyError(f"{kind} {api_version} not in {CRD_FILES[(api_version, kind)]}")


def validate_object(manifest: dict[str, Any]) -> None:
    """Raise if ``manifest`` is not valid for its kind (strict: unknown fields fail)."""
    key = (manifest.get("apiVersion"), manifest.get("kind"))
    if key in CRD_FILES:
        # One validator per CRD: checking the large CRD schema itself on every call is slow.
        _crd_validator(*key).validate(manifest)  # type: ignore[arg-type]
        return
    kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
