"""The ``router`` and ``lora`` sections and the ``adapters`` map: one endpoint in front of the models.

``router`` puts vLLM's router (vllm-project/router, the ``vllm-router`` package) in front of every
model of the stack; ``adapters`` are LoRA adapters a model serves beside its base weights, and
``lora`` the engine limits that go with them. The pinned router release lives in
:mod:`pulumi_vllm.engine.router`; this module holds only what the stack file says.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from pulumi_vllm.config.base import _DNS_LABEL, _Section

ROUTER_POLICIES = (
    "random",
    "round_robin",
    "cache_aware",
    "kv_aware",
    "power_of_two",
    "consistent_hash",
    "sticky_least_loaded",
)
"""Routing policies, as ``vllm-router --policy`` lists them (vllm-router 0.1.17)."""

DEFAULT_ROUTER_IMAGE = "vllm/vllm-router:v0.1.17"
"""The router's container image, tagged with the router release the tests run (vllm-router 0.1.17)."""

_ADAPTER_NAME = re.compile(r"^[A-Za-z0-9][-A-Za-z0-9_.]{0,62}$")


class ParentRef(_Section):
    """A Gateway (Gateway API) the router's HTTPRoute attaches to."""

    name: str = Field(min_length=1)
    namespace: str | None = None
    section_name: str | None = None
    """A listener of the Gateway (``sectionName``); unset: every listener that allows the route."""


class GatewaySpec(_Section):
    """Gateway API objects for clusters that run a gateway: an HTTPRoute to the router, InferencePools."""

    http_route: bool = False
    """An ``HTTPRoute`` (gateway.networking.k8s.io/v1) sending the gateway's traffic to the router Service."""
    parent_refs: list[ParentRef] = Field(default_factory=list)
    """The Gateways the HTTPRoute attaches to (required with ``httpRoute``)."""
    hostnames: list[str] = Field(default_factory=list)
    """Host names the HTTPRoute answers for (all when empty)."""
    inference_pools: bool = False
    """One ``InferencePool`` (inference.networking.k8s.io/v1) per model, selecting its serving pods."""
    endpoint_picker: str | None = None
    """Service name of the endpoint picker (the inference extension's EPP) the InferencePools name."""
    endpoint_picker_port: int = Field(default=9002, ge=1, le=65535)
    deploy_endpoint_picker: bool = False
    """Create the inference extension's endpoint picker (EPP v1.6.0) for each InferencePool, named ``<pool>-epp``:
    prefix-cache-aware, load-aware and LoRA-aware scoring of the pool's pods (docs/routing.md)."""

    @model_validator(mode="after")
    def _complete(self) -> GatewaySpec:
        if self.http_route and not self.parent_refs:
            raise ValueError("httpRoute needs parentRefs: the Gateway(s) the route attaches to, e.g. [{name: inference}]")
        if self.deploy_endpoint_picker and not self.inference_pools:
            raise ValueError("deployEndpointPicker picks endpoints of InferencePools: set inferencePools: true as well")
        if self.deploy_endpoint_picker and self.endpoint_picker:
            raise ValueError("set endpointPicker (your own picker's Service) or deployEndpointPicker, not both")
        if self.inference_pools and not self.endpoint_picker and not self.deploy_endpoint_picker:
            raise ValueError(
                "inferencePools needs endpointPicker: the Service of the endpoint picker (EPP) of your inference "
                "gateway; an InferencePool without one is refused by its CRD"
            )
        return self


class RouterSpec(_Section):
    """vLLM's router in front of the stack's models: one ``baseUrl`` for all of them."""

    enabled: bool = False
    policy: Literal[
        "random", "round_robin", "cache_aware", "kv_aware", "power_of_two", "consistent_hash", "sticky_least_loaded"
    ] = "cache_aware"
    """How the router picks a replica of the requested model (``--policy``); ``cache_aware`` keeps a prompt
    prefix on the replica that already holds it in its prefix cache."""
    replicas: int = Field(default=2, ge=1)
    """Router pods (each keeps its own routing state); a disruption budget keeps one while nodes drain."""
    image: str = DEFAULT_ROUTER_IMAGE
    """Router image: must carry a tag or digest, never ``latest``."""
    service_port: int = Field(default=80, ge=1, le=65535)
    """Port of the router's Service (to the router's 8000)."""
    service_type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = "ClusterIP"
    cpu_request: str = "500m"
    memory_request: str = "512Mi"
    memory_limit: str = "2Gi"
    refresh_seconds: int = Field(default=10, ge=1, le=300)
    """How often each router pod re-resolves the models' pods and registers new ones (and drops gone ones)."""
    extra_args: list[str] = Field(default_factory=list)
    """Escape hatch: further ``vllm-router`` flags, appended verbatim (checked by the router's own parser in tests)."""
    gateway: GatewaySpec = Field(default_factory=GatewaySpec)

    @field_validator("image")
    @classmethod
    def _pinned(cls, value: str) -> str:
        if "@sha256:" in value:
            return value
        name, _, tag = value.rpartition(":")
        if not name or "/" in tag or not tag or tag == "latest":
            raise ValueError(f"{value!r} is not pinned; give a tag or digest, e.g. {DEFAULT_ROUTER_IMAGE}")
        return value

    @field_validator("extra_args")
    @classmethod
    def _managed(cls, value: list[str]) -> list[str]:
        managed = {"--host", "--port", "--policy", "--worker-urls", "--enable-igw", "--prometheus-port",
                   "--prometheus-host", "--api-key"}
        for arg in value:
            if arg.split("=", 1)[0] in managed:
                raise ValueError(f"{arg!r} is set by pulumi-vllm itself; use the matching router.* key instead")
        return value


class LoraSpec(_Section):
    """Engine limits for LoRA adapters (used when ``adapters`` is set or runtime loading is on)."""

    max_loras: int | None = Field(default=None, ge=1)
    """Adapters in one batch (``--max-loras``); default: the number of adapters."""
    max_lora_rank: int = Field(default=16, ge=1)
    """Largest adapter rank accepted (``--max-lora-rank``); vLLM refuses an adapter of a higher rank."""
    runtime_loading: bool = False
    """Allow loading adapters into running servers through ``/v1/load_lora_adapter``
    (``VLLM_ALLOW_RUNTIME_LORA_UPDATING``); vLLM warns it is meant for development."""


def check_adapters(value: dict[str, str]) -> dict[str, str]:
    """Adapter names are model names clients send; sources are Hugging Face ids or absolute paths."""
    for name, source in value.items():
        if not _ADAPTER_NAME.match(name) or "=" in name:
            raise ValueError(f"adapter name {name!r}: use letters, digits, '-', '_' and '.' (it is a model name)")
        if not source or " " in source or "=" in source or "@" in source:
            raise ValueError(f"adapter {name}: {source!r} is not a Hugging Face id (org/name) or an absolute path")
        if not source.startswith("/") and source.count("/") != 1:
            raise ValueError(f"adapter {name}: {source!r} is not a Hugging Face id (org/name) or an absolute path")
    return value


def check_model_key(key: str) -> str:
    """A key of ``models`` becomes part of object names (``<name>-<key>``): a DNS label."""
    if len(key) > 40 or not _DNS_LABEL.match(key):
        raise ValueError(f"{key!r} is not a DNS label of at most 40 characters (lower-case letters, digits, '-')")
    return key


RUNTIME_LORA_ENV = "VLLM_ALLOW_RUNTIME_LORA_UPDATING"
"""vLLM's switch for ``/v1/load_lora_adapter`` and ``/v1/unload_lora_adapter``."""


def with_runtime_lora_env(data: object) -> object:
    """Raw stack values completed for LoRA: the pre-download fetches the adapters too, and ``lora.runtimeLoading``
    sets ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`` in ``engine.env``."""
    if not isinstance(data, dict):
        return data
    data = _warmup_adapters(data)
    lora = data.get("lora")
    if not isinstance(lora, dict) or lora.get("runtimeLoading", lora.get("runtime_loading")) not in (True, "true"):
        return data
    engine = data.get("engine")
    engine = engine if isinstance(engine, dict) else {}
    env = engine.get("env")
    env = env if isinstance(env, dict) else {}
    return {**data, "engine": {**engine, "env": {**env, RUNTIME_LORA_ENV: "True"}}}


def _warmup_adapters(data: dict[str, object]) -> dict[str, object]:
    """With the pre-download Job on, adapters given as Hugging Face ids join ``warmup.adapters`` (once each)."""
    warmup, adapters = data.get("warmup"), data.get("adapters")
    if not isinstance(warmup, dict) or warmup.get("enabled") not in (True, "true") or not isinstance(adapters, dict):
        return data
    listed = warmup.get("adapters")
    listed = list(listed) if isinstance(listed, list) else []
    repos = [str(source) for source in adapters.values() if isinstance(source, str) and not source.startswith("/")]
    return {**data, "warmup": {**warmup, "adapters": [*listed, *(repo for repo in repos if repo not in listed)]}}
