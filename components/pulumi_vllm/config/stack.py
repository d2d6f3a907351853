"""The root of the stack schema (:class:`StackConfig`) and the readers that turn Pulumi's config into it."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field, PrivateAttr, SecretStr, ValidationError, field_validator, model_validator

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
from pulumi_vllm.config.cloud import CloudSpec
from pulumi_vllm.config.cluster import ClusterSpec, mirrored_image
from pulumi_vllm.config.disaggregation import DISAGGREGATION_KEY, DisaggregationSpec, KvCacheSpec, parse_pools
from pulumi_vllm.config.docker import DockerSpec
from pulumi_vllm.config.model import EngineSpec, ModelSpec
from pulumi_vllm.config.models import MODELS_KEY, is_multi_model, parse_models, root_values, shared_defaults
from pulumi_vllm.config.network import NetworkSpec
from pulumi_vllm.config.operations import AutoscalingSpec, MonitoringSpec, check_scaling_bounds
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
from pulumi_vllm.config.routing import LoraSpec, RouterSpec, check_adapters, with_runtime_lora_env
from pulumi_vllm.config.safety import (
    AvailabilitySpec,
    LoadTestSpec,
    NetworkPolicySpec,
    SecuritySpec,
    WarmupSpec,
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
    autoscaling: AutoscalingSpec = Field(default_factory=AutoscalingSpec)
    """KEDA autoscaling of the replicas on vLLM's queue and KV-cache metrics (off by default; docs/operations.md)."""
    monitoring: MonitoringSpec = Field(default_factory=MonitoringSpec)
    """Prometheus scraping, alerts and a Grafana dashboard (off by default; docs/operations.md)."""
    availability: AvailabilitySpec = Field(default_factory=AvailabilitySpec)
    """Disruption budget, topology spread, priority and graceful stop of the serving pods (docs/safety.md)."""
    network_policy: NetworkPolicySpec = Field(default_factory=NetworkPolicySpec)
    """NetworkPolicies: who may call the API, Ray ports within the group, optional egress (off by default)."""
    warmup: WarmupSpec = Field(default_factory=WarmupSpec)
    """A Job that downloads the model once before the servers start; servers then run offline (off by default)."""
    security: SecuritySpec = Field(default_factory=SecuritySpec)
    """Container hardening (on by default) and running as non-root (docs/safety.md)."""
    load_test: LoadTestSpec = Field(default_factory=LoadTestSpec)
    """A Job running ``vllm bench serve`` against the Service (off by default)."""
    adapters: dict[str, str] = Field(default_factory=dict)
    """LoRA adapters served beside the base model: name clients send -> Hugging Face id or absolute path (docs/routing.md)."""
    lora: LoraSpec = Field(default_factory=LoraSpec)
    """LoRA engine limits and runtime loading of adapters."""
    router: RouterSpec = Field(default_factory=RouterSpec)
    """vLLM's router in front of the models: one endpoint, routing by model and prefix (docs/routing.md)."""
    disaggregation: DisaggregationSpec | None = None
    """Prefill and decode pools joined by a KV connector, vLLM's router in P/D mode in front (docs/disaggregation.md)."""
    kv_cache: KvCacheSpec = Field(default_factory=KvCacheSpec)
    """KV-cache tiers under the GPU's prefix cache: host memory and local disk (docs/disaggregation.md)."""
    # Set by parse_stack_config for a `models` stack; private, so walkers of the schema never recurse into it.
    _models: dict[str, StackConfig] = PrivateAttr(default_factory=dict)
    # The entries and shared defaults as the file writes them, so later checks name the key where it is set.
    _model_sources: tuple[dict[str, Any], dict[str, Any]] = PrivateAttr(default_factory=lambda: ({}, {}))
    # Set by parse_stack_config for a `disaggregation` stack: the prefill and decode pools, and each pool's role.
    _pools: dict[str, StackConfig] = PrivateAttr(default_factory=dict)
    _pool_role: str | None = PrivateAttr(default=None)

    @property
    def models(self) -> dict[str, StackConfig]:
        """The model groups of a multi-model stack (``pulumi-vllm:models``), each a whole stack config; empty otherwise."""
        return self._models

    @property
    def pools(self) -> dict[str, StackConfig]:
        """The prefill and decode pools of a disaggregated stack (``pulumi-vllm:disaggregation``); empty otherwise."""
        return self._pools

    @property
    def pool_role(self) -> str | None:
        """``prefill`` or ``decode`` for a pool of a disaggregated stack; ``None`` otherwise."""
        return self._pool_role
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
    cluster: ClusterSpec | None = None
    """The GPU platform to install under the serving (see docs/platform.md); unset: the cluster is prepared."""
    cloud: CloudSpec | None = None
    """The EKS or GKE cluster to create first (see docs/clouds.md); unset: the cluster exists."""

    @field_validator("name", "namespace")
    @classmethod
    def _dns_label(cls, value: str) -> str:
        if len(value) > 63 or not _DNS_LABEL.match(value):
            raise ValueError(
                f"{value!r} is not a DNS label (lower-case letters, digits and '-', at most 63 characters)"
            )
        return value

    @model_validator(mode="before")
    @classmethod
    def _runtime_lora(cls, data: Any) -> Any:
        return with_runtime_lora_env(data)  # lora.runtimeLoading is vLLM's environment switch

    @field_validator("adapters")
    @classmethod
    def _adapters(cls, value: dict[str, str]) -> dict[str, str]:
        return check_adapters(value)

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
    def _mig_profile(self) -> StackConfig:
        from pulumi_vllm.config.mig import check_mig

        try:
            check_mig(self.resources.gpu_resource_name, self.resources.gpu_type)
        except ValueError as error:
            raise ValueError(
                f"{PROJECT}:resources.gpuResourceName: {self.resources.gpu_resource_name!r} is not accepted: it "
                + str(error).removeprefix(f"{self.resources.gpu_resource_name!r} ")
            ) from None
        return self

    @model_validator(mode="after")
    def _scaling_bounds(self) -> StackConfig:
        check_scaling_bounds(self)  # autoscaling.maxReplicas against the cache's access mode and the GPU quota
        return self

    @model_validator(mode="after")
    def _cloud_node_type(self) -> StackConfig:
        if self.cloud is not None:
            from pulumi_vllm.cloud_plan.agreement import apply_node_type

            apply_node_type(self)  # gpusPerNode, gpuType and the node selector from the node type; the fit
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


def format_validation_error(error: ValidationError, raw: Mapping[str, Any], schema: type[BaseModel] | None = None) -> str:
    """One message per problem, each naming the key path, the value given and what is accepted (and why).

    ``schema`` is the model that was validated (default :class:`StackConfig`), whose field docstrings give
    the reason for a bound when :data:`~pulumi_vllm.config.messages.REASONS` has none.
    """
    from pulumi_vllm.config.messages import explain

    schema = schema or StackConfig
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
            lines.append(f"{key}: {given!r} is not accepted: {explain(item, schema)}")
    return "invalid stack configuration:\n  " + "\n  ".join(lines)


def parse_stack_config(raw: Mapping[str, Any]) -> StackConfig:
    """Validate already-decoded config (top-level keys without the project prefix)."""
    if is_multi_model(raw):
        # One config per model (docs/routing.md); the root is the first model's, carrying all of them.
        members = parse_models(raw, parse_stack_config)
        root = _parse_single(root_values(raw, next(iter(members))))
        root._models = members
        root._model_sources = (dict(raw[MODELS_KEY]), shared_defaults(raw))
        return root
    if raw.get(DISAGGREGATION_KEY) is not None:
        # Two pools, each validated as a stack of its own (docs/disaggregation.md); the root keeps the shared keys.
        root = _parse_single(raw)
        root._pools = parse_pools(raw, _parse_single)
        for role, pool in root._pools.items():
            pool._pool_role = role
        return root
    return _parse_single(raw)


def _parse_single(raw: Mapping[str, Any]) -> StackConfig:
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
    return parse_stack_config(_decoded(flat, secret_values, secret_keys))


def _decoded(
    flat: Mapping[str, Any],
    secret_values: Mapping[str, str] | None = None,
    secret_keys: Collection[str] | None = None,
) -> dict[str, Any]:
    """This project's keys of the runtime's flat config, decoded (plaintext secrets refused)."""
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
    return raw


class PlatformStackConfig(_Section):
    """A stack that only provisions the GPU platform: ``cluster`` (and ``name``), no ``model``; or the cloud
    cluster under it (``cloud``), with or without the platform."""

    name: str = "vllm"
    cluster: ClusterSpec | None = None
    cloud: CloudSpec | None = None


def is_platform_only(raw: Mapping[str, Any]) -> bool:
    """A stack with a ``cluster`` section and no serving keys (``model`` and the rest) provisions only the platform."""
    return bool({"cluster", "cloud"} & set(raw)) and set(raw) <= {"cluster", "cloud", "name"}


@dataclass(frozen=True)
class ProgramConfig:
    """Everything a stack's program reads from its config, validated once."""

    name: str
    serving: StackConfig | None
    """The serving config; ``None`` for a stack that provisions only the platform or the cloud cluster."""
    cluster: ClusterSpec | None
    cloud: CloudSpec | None


def load_program_parts(
    flat: Mapping[str, Any],
    secret_values: Mapping[str, str] | None = None,
    secret_keys: Collection[str] | None = None,
) -> ProgramConfig:
    """The stack's serving, ``cluster`` and ``cloud`` sections from the runtime's flat config; raises :class:`ConfigError`."""
    raw = _decoded(flat, secret_values, secret_keys)
    if is_platform_only(raw):
        try:
            platform = PlatformStackConfig.model_validate(raw)
        except ValidationError as error:
            raise ConfigError(format_validation_error(error, raw, PlatformStackConfig)) from None
        return ProgramConfig(platform.name, None, platform.cluster, platform.cloud)
    config = _with_platform_defaults(parse_stack_config(raw))
    return ProgramConfig(config.name, config, config.cluster, config.cloud)


def load_program_config(
    flat: Mapping[str, Any],
    secret_values: Mapping[str, str] | None = None,
    secret_keys: Collection[str] | None = None,
) -> tuple[StackConfig | None, ClusterSpec | None]:
    """The serving config (``None`` for a platform-only stack) and the platform section (``None`` when unset)."""
    parts = load_program_parts(flat, secret_values, secret_keys)
    return parts.serving, parts.cluster


def _with_platform_defaults(config: StackConfig) -> StackConfig:
    """A stack that installs the platform runs its pods at the platform's PriorityClass unless it names one, and
    pulls its engine image from the platform's ``imageRegistry`` when it sets one."""
    cluster = config.cluster
    if cluster is not None and cluster.image_registry:
        config = _mirrored(config, cluster.image_registry)
    if cluster is None or not cluster.priority_class.enabled or config.availability.priority_class_name is not None:
        return config
    availability = config.availability.model_copy(update={"priority_class_name": cluster.priority_class.name})
    return config.model_copy(update={"availability": availability})


def _mirrored(config: StackConfig, registry: str) -> StackConfig:
    """The engine and router images (each model's, too) pulled from ``registry`` (``cluster.imageRegistry``)."""
    engine = config.engine.model_copy(update={"image": mirrored_image(config.engine.image or "", registry) or None})
    router = config.router.model_copy(update={"image": mirrored_image(config.router.image, registry)})
    mirrored = config.model_copy(update={"engine": engine, "router": router})
    mirrored._models = {name: _mirrored(member, registry) for name, member in config._models.items()}
    return mirrored


def load_cloud_config(
    flat: Mapping[str, Any],
    secret_values: Mapping[str, str] | None = None,
    secret_keys: Collection[str] | None = None,
) -> CloudSpec | None:
    """The ``cloud`` section of a serving or platform-only stack (``None`` when unset)."""
    return load_program_parts(flat, secret_values, secret_keys).cloud
