"""The root of the stack schema (:class:`StackConfig`) and the readers that turn Pulumi's config into it."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator

from pulumi_vllm.config.base import (
    _DNS_LABEL,
    _LABEL_KEY,
    _LABEL_VALUE,
    PROJECT,
    SECRET_KEYS,
    ConfigError,
    _Section,
)
from pulumi_vllm.config.batch import BatchSpec
from pulumi_vllm.config.docker import DockerSpec
from pulumi_vllm.config.model import EngineSpec, ModelSpec
from pulumi_vllm.config.network import NetworkSpec
from pulumi_vllm.config.resources import (
    CacheSpec,
    CapacitySpec,
    ParallelismSpec,
    ProbesSpec,
    QuotaSpec,
    ResourcesSpec,
    SecretRef,
    ServiceSpec,
)


class StackConfig(_Section):
    """Every ``pulumi-vllm:*`` stack config key."""

    name: str = "vllm"
    """Base name of every object (Deployment, Service, claim); a DNS label."""
    target: Literal["kubernetes", "docker"] = "kubernetes"
    namespace: str = "default"
    model: ModelSpec
    engine: EngineSpec = Field(default_factory=EngineSpec)
    parallelism: ParallelismSpec = Field(default_factory=ParallelismSpec)
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    cache: CacheSpec = Field(default_factory=CacheSpec)
    probes: ProbesSpec = Field(default_factory=ProbesSpec)
    service: ServiceSpec = Field(default_factory=ServiceSpec)
    network: NetworkSpec = Field(default_factory=NetworkSpec)
    """Pod-to-pod networking of a multi-node model (NCCL/Gloo interfaces, InfiniBand opt-in)."""
    replicas: int = Field(default=1, ge=0)
    quota: QuotaSpec = Field(default_factory=QuotaSpec)
    """GPU ResourceQuota of the namespace (off by default: namespaces are often shared)."""
    capacity: CapacitySpec = Field(default_factory=CapacitySpec)
    """Capacity planning of the stack's layout (see ``pulumi-vllm size``)."""
    batch: BatchSpec = Field(default_factory=BatchSpec)
    """Offline batch inference Job (off by default)."""
    labels: dict[str, str] = Field(default_factory=lambda: {"app": "vllm", "tier": "backend"})
    """Extra labels on every object and pod: the usual ``app`` / ``tier`` labels of vLLM manifests."""
    hf_token: SecretStr | None = None
    """Hugging Face token (a Pulumi secret) for gated models; the value never reaches the state in plaintext."""
    hf_token_secret: SecretRef | None = None
    """Use this existing Secret for the Hugging Face token instead of ``hfToken``."""
    api_key: SecretStr | None = None
    """API key (a Pulumi secret); clients must send ``Authorization: Bearer <key>``."""
    docker: DockerSpec | None = None
    """Docker GPU hosts to run on when ``target`` is ``docker`` (see docs/docker.md)."""

    @field_validator("name", "namespace")
    @classmethod
    def _dns_label(cls, value: str) -> str:
        if len(value) > 63 or not _DNS_LABEL.match(value):
            raise ValueError(
                f"{value!r} is not a DNS label (lower-case letters, digits and '-', at most 63 characters)"
            )
        return value

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        for key, item in value.items():
            if not _LABEL_KEY.match(key):
                raise ValueError(f"label key {key!r} is not a valid Kubernetes label key")
            if not isinstance(item, str) or not _LABEL_VALUE.match(item) or len(item) > 63:
                raise ValueError(f"label {key}={item!r}: the value is not a valid Kubernetes label value")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> StackConfig:
        if self.hf_token is not None and self.hf_token_secret is not None:
            raise ValueError("set either hfToken or hfTokenSecret, not both")
        if (
            self.replicas > 1
            and self.cache.existing_claim is None
            and self.cache.access_mode != "ReadWriteMany"
        ):
            raise ValueError(
                f"replicas {self.replicas} cannot share a {self.cache.access_mode} model cache across "
                "nodes; set cache.accessMode to ReadWriteMany (or replicas to 1)"
            )
        return self

    @model_validator(mode="after")
    def _docker_target(self) -> StackConfig:
        if self.target != "docker":
            return self
        if self.docker is None:
            raise ValueError(
                "target 'docker' needs the docker section with at least one host, e.g. "
                "docker: {hosts: [{name: gpu-1, dockerHost: unix:///var/run/docker.sock}]}"
            )
        if self.hf_token_secret is not None:
            raise ValueError("hfTokenSecret names a Kubernetes Secret; on target 'docker' set the hfToken secret")
        if self.replicas != 1:
            raise ValueError(f"replicas {self.replicas}: target 'docker' runs one server per stack; use 1")
        return self


def _format_location(loc: tuple[Any, ...]) -> str:
    parts = [str(part) for part in loc]
    if not parts:
        return PROJECT
    top = parts[0]
    rest = "".join(f"[{part}]" if part.isdigit() else f".{part}" for part in parts[1:])
    return f"{PROJECT}:{top}{rest}"


def _lookup(data: Any, loc: tuple[Any, ...]) -> Any:
    for part in loc:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def format_validation_error(error: ValidationError, raw: Mapping[str, Any]) -> str:
    """One message per problem, each naming the key path, the value given and what is accepted."""
    lines = []
    for item in error.errors():
        loc = tuple(item["loc"])
        key = _format_location(loc)
        given = _lookup(raw, loc)
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            lines.append(f"{key}: unknown key (check the spelling; see the config table in docs/kubernetes.md)")
        elif item["type"] == "missing":
            lines.append(f"{key}: required but not set")
        elif message.startswith(f"{PROJECT}:"):
            # The check named a key deeper than pydantic's location (e.g. one toleration's effect).
            lines.append(message)
        elif not loc or loc[-1] in SECRET_KEYS or isinstance(given, dict):
            # Whole-config rules and secrets: never echo values back (they may hold a token).
            lines.append(f"{key}: {message}")
        else:
            lines.append(f"{key}: {given!r} is not accepted: {message}")
    return "invalid stack configuration:\n  " + "\n  ".join(lines)


def parse_stack_config(raw: Mapping[str, Any]) -> StackConfig:
    """Validate already-decoded config (top-level keys without the project prefix)."""
    try:
        return StackConfig.model_validate(dict(raw))
    except ValidationError as error:
        raise ConfigError(format_validation_error(error, raw)) from None


def _decode(value: Any) -> Any:
    # The Pulumi runtime hands every value over as a string; objects and lists arrive as JSON.
    # Scalars stay strings: pydantic converts "2" or "true" where the field wants a number or bool.
    if isinstance(value, str) and value.strip()[:1] in "{[":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def plaintext_secret_message(key: str) -> str:
    """The error for a secret key stored as plain text, with the command that stores it encrypted."""
    return (
        f"{PROJECT}:{key}: a plaintext value is not accepted: it would sit readable in Pulumi.<stack>.yaml and "
        f"in git; store it encrypted with: pulumi config set --secret {key} <value> (it replaces the plain one)"
    )


def load_stack_config(
    flat: Mapping[str, Any],
    secret_values: Mapping[str, str] | None = None,
    secret_keys: Collection[str] | None = None,
) -> StackConfig:
    """Build a :class:`StackConfig` from ``{"pulumi-vllm:key": value}`` (other namespaces ignored).

    Secret keys keep their string value (a token that looks like a number stays a string).
    ``secret_keys`` is what Pulumi says is secret (``project:key`` names, as in
    ``PULUMI_CONFIG_SECRET_KEYS``); when given, a secret key set as plain text is refused.
    """
    prefix = f"{PROJECT}:"
    if secret_keys is not None:
        for key in SECRET_KEYS:
            if f"{prefix}{key}" in flat and f"{prefix}{key}" not in secret_keys:
                raise ConfigError(plaintext_secret_message(key))
    raw: dict[str, Any] = {}
    for full_key, value in flat.items():
        if not full_key.startswith(prefix):
            continue
        key = full_key[len(prefix):]
        raw[key] = value if key in SECRET_KEYS else _decode(value)
    for key, value in (secret_values or {}).items():
        raw[key] = value
    return parse_stack_config(raw)
