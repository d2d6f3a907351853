"""The ``disaggregation`` and ``kvCache`` sections: prefill and decode pools, and the KV-cache tiers.

``disaggregation`` serves one model as two pools of vLLM servers, one that runs the prompts (prefill)
and one that generates the tokens (decode), joined by a KV connector (vLLM's ``NixlConnector`` by default,
LMCache's as an option) and fronted by vLLM's router in its prefill/decode mode. Each pool has its own
replicas, parallel sizes and GPU type; every other serving key is shared. ``kvCache`` adds a host-memory
(and optionally a local-disk) tier under the GPU's prefix cache, through vLLM's native offloading connector.

Each pool is validated as a whole stack of its own: its keys are written over the stack's, the result goes
through the same schema, and an error names the pool's key (``disaggregation.prefill.tensorParallelSize``).
This module does not import the root schema; :mod:`pulumi_vllm.config.stack` hands it the parser to use.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar

from pydantic import Field, field_validator, model_validator

from pulumi_vllm.config.base import PROJECT, ConfigError, _Section
from pulumi_vllm.config.models import deep_merge

DISAGGREGATION_KEY = "disaggregation"
POOL_ROLES = ("prefill", "decode")
"""The two pools, in the order they are created."""

_UCX_LIST = re.compile(r"^[A-Za-z0-9_.:,^-]+$")

Config = TypeVar("Config")


class PoolSpec(_Section):
    """One pool of a disaggregated model: what differs from the stack's shared serving keys."""

    replicas: int = Field(default=1, ge=1)
    """Servers in the pool (each a vLLM instance with its own KV cache)."""
    tensor_parallel_size: int | None = Field(default=None, ge=1)
    """GPUs one copy of the model spans in this pool (``parallelism.tensorParallelSize`` for the pool)."""
    pipeline_parallel_size: int | None = Field(default=None, ge=1)
    """Pipeline stages (``parallelism.pipelineParallelSize`` for the pool)."""
    data_parallel_size: int | None = Field(default=None, ge=1)
    """Data-parallel ranks behind one server (``parallelism.dataParallelSize`` for the pool)."""
    enable_expert_parallel: bool | None = None
    """Shard a mixture-of-experts model's experts over the pool's ranks (``parallelism.enableExpertParallel``)."""
    gpu_type: str | None = None
    """GPU model of the pool's nodes (``resources.gpuType`` for the pool), for the capacity planner."""
    node_selector: dict[str, str] | None = None
    """Node selector of the pool's pods (``resources.nodeSelector`` for the pool)."""
    gpu_memory_utilization: float | None = Field(default=None, gt=0, le=1)
    """Fraction of each GPU vLLM may use in this pool (``engine.gpuMemoryUtilization`` for the pool)."""
    extra_args: list[str] = Field(default_factory=list)
    """Further ``vllm serve`` flags for this pool, after the stack's ``engine.extraArgs``."""
    env: dict[str, str] = Field(default_factory=dict)
    """Further environment variables for this pool, over the stack's ``engine.env``."""


POOL_KEYS: dict[str, tuple[str, ...]] = {
    "replicas": ("replicas",),
    "tensorParallelSize": ("parallelism", "tensorParallelSize"),
    "pipelineParallelSize": ("parallelism", "pipelineParallelSize"),
    "dataParallelSize": ("parallelism", "dataParallelSize"),
    "enableExpertParallel": ("parallelism", "enableExpertParallel"),
    "gpuType": ("resources", "gpuType"),
    "nodeSelector": ("resources", "nodeSelector"),
    "gpuMemoryUtilization": ("engine", "gpuMemoryUtilization"),
}
"""A pool key -> the stack key it sets for that pool (``extraArgs`` and ``env`` add to the stack's)."""


class DisaggregationSpec(_Section):
    """Prefill/decode disaggregation: two pools joined by a KV connector, vLLM's router in front."""

    connector: Literal["nixl", "lmcache"] = "nixl"
    """KV connector between the pools: ``nixl`` (vLLM's ``NixlConnector``, kv_role ``kv_both``) or ``lmcache``
    (``LMCacheConnectorV1``, needs an image with LMCache installed)."""
    transport: Literal["tcp", "rdma", "efa"] = "tcp"
    """How NIXL moves KV blocks between pods: ``tcp`` (UCX over the pod network; works anywhere, slowly),
    ``rdma`` (UCX over InfiniBand/RoCE; needs ``network.infiniband``) or ``efa`` (libfabric over AWS EFA)."""
    efa_resource_count: int = Field(default=1, ge=1)
    """``vpc.amazonaws.com/efa`` devices each pod requests with ``transport: efa``."""
    ucx_tls: str | None = None
    """``UCX_TLS`` of the pods (default per transport: ``tcp`` for tcp, ``rc,cuda_copy,cuda_ipc`` for rdma)."""
    ucx_net_devices: str | None = None
    """``UCX_NET_DEVICES`` (e.g. ``mlx5_0:1``); UCX picks every device when unset."""
    side_channel_port: int = Field(default=5600, ge=1024, le=65535)
    """``VLLM_NIXL_SIDE_CHANNEL_PORT``: where each prefill pod publishes its NIXL metadata to decode pods."""
    prefill_policy: Literal[
        "random", "round_robin", "cache_aware", "kv_aware", "power_of_two", "consistent_hash", "sticky_least_loaded"
    ] = "cache_aware"
    """How the router picks a prefill server (``--prefill-policy``): ``cache_aware`` sends a shared prefix to the
    server whose prefix cache holds it."""
    decode_policy: Literal[
        "random", "round_robin", "cache_aware", "kv_aware", "power_of_two", "consistent_hash", "sticky_least_loaded"
    ] = "round_robin"
    """How the router picks a decode server (``--decode-policy``); ``power_of_two`` (least loaded of two) needs at
    least two decode replicas."""
    input_tokens: int | None = Field(default=None, ge=1)
    """Typical prompt length of the workload, for the pools' sizing and the advice whether disaggregation pays."""
    output_tokens: int | None = Field(default=None, ge=1)
    """Typical output length of the workload (with ``inputTokens``)."""
    prefill: PoolSpec = Field(default_factory=PoolSpec)
    """The prefill pool (compute-bound: it runs the prompts)."""
    decode: PoolSpec = Field(default_factory=PoolSpec)
    """The decode pool (memory-bound: it holds every running sequence's KV cache and generates tokens)."""

    @field_validator("ucx_tls", "ucx_net_devices")
    @classmethod
    def _ucx_list(cls, value: str | None) -> str | None:
        if value is not None and not _UCX_LIST.match(value):
            raise ValueError(f"{value!r} is not a UCX list (names separated by commas, e.g. rc,cuda_copy or mlx5_0:1)")
        return value

    @model_validator(mode="after")
    def _policies(self) -> DisaggregationSpec:
        if (self.input_tokens is None) != (self.output_tokens is None):
            raise ValueError("inputTokens and outputTokens describe the workload together: set both or neither")
        if self.decode_policy == "power_of_two" and self.decode.replicas < 2:
            raise ValueError(
                "decodePolicy 'power_of_two' needs at least 2 decode replicas (the router refuses it with "
                "'Power-of-two policy for decode requires at least 2 decode workers'); raise decode.replicas or "
                "use round_robin"
            )
        if self.prefill_policy == "power_of_two" and self.prefill.replicas < 2:
            raise ValueError(
                "prefillPolicy 'power_of_two' needs at least 2 prefill replicas (the router refuses it with "
                "'Power-of-two policy for prefill requires at least 2 prefill workers'); raise prefill.replicas"
            )
        return self


class KvDiskTier(_Section):
    """A local-disk tier under the host-memory tier (vLLM's tiering offload, file-system secondary tier)."""

    size_gib: float = Field(gt=0)
    """GiB of the pod's ephemeral storage the tier may fill (an ``emptyDir`` with this size limit)."""
    path: str = "/var/cache/vllm-kv"
    """Where the tier's files live inside the container."""

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/") or " " in value or value.rstrip("/") in ("", "/tmp", "/dev/shm"):
            raise ValueError(f"{value!r} is not accepted: give an absolute directory of its own, e.g. /var/cache/vllm-kv")
        return value


class KvCacheSpec(_Section):
    """KV-cache tiers under the GPU's prefix cache: blocks evicted from the GPU are kept in host memory (and
    on local disk) and loaded back when a later prompt shares the prefix."""

    cpu_gib: float | None = Field(default=None, gt=0)
    """GiB of host memory for the CPU tier per server (summed over its tensor-parallel ranks, as vLLM's
    ``--kv-offloading-size``); the pod's memory request grows by it."""
    disk: KvDiskTier | None = None
    """A local-disk tier below the CPU tier (needs ``cpuGib``)."""
    backend: Literal["native", "lmcache"] = "native"
    """``native``: vLLM's ``OffloadingConnector``; ``lmcache``: ``LMCacheConnectorV1`` with LMCache's CPU
    buffer (``LMCACHE_MAX_LOCAL_CPU_SIZE``), needs an image with LMCache installed."""

    @model_validator(mode="after")
    def _disk_below_cpu(self) -> KvCacheSpec:
        if self.disk is not None and self.cpu_gib is None:
            raise ValueError("disk is a tier below the CPU tier: set cpuGib as well (e.g. cpuGib: 64)")
        if self.disk is not None and self.backend == "lmcache":
            raise ValueError("disk: the local-disk tier is vLLM's native tiering; with backend lmcache configure "
                             "LMCache's own disk backend through engine.env (LMCACHE_LOCAL_DISK)")
        return self

    @property
    def enabled(self) -> bool:
        """Whether any tier is configured."""
        return self.cpu_gib is not None


def _set(target: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for part in path[:-1]:
        child = target.get(part)
        target[part] = child = dict(child) if isinstance(child, Mapping) else {}
        target = child
    target[path[-1]] = value


def pool_values(raw: Mapping[str, Any], role: str) -> dict[str, Any]:
    """The stack values of one pool: the stack's, with the pool's keys written over them, named ``<name>-<role>``."""
    section = raw.get(DISAGGREGATION_KEY)
    pool = section.get(role) if isinstance(section, Mapping) else None
    pool = pool if isinstance(pool, Mapping) else {}
    values = {key: value for key, value in raw.items() if key != "router"}
    values = deep_merge(values, {})
    values["name"] = f"{raw.get('name', 'vllm')}-{role}"
    for key, path in POOL_KEYS.items():
        if key in pool:
            _set(values, path, pool[key])
    engine = dict(values.get("engine") or {})
    if pool.get("extraArgs"):
        engine["extraArgs"] = [*(engine.get("extraArgs") or []), *pool["extraArgs"]]
    if pool.get("env"):
        engine["env"] = {**(engine.get("env") or {}), **pool["env"]}
    if engine:
        values["engine"] = engine
    return values


_LINE = re.compile(rf"^{re.escape(PROJECT)}:([A-Za-z0-9_.\[\]]+): (.*)$", re.DOTALL)


def _relabel(message: str, role: str, pool: Mapping[str, Any]) -> list[str]:
    """Each problem line of a pool's error, naming the pool's key where the pool sets it."""
    reverse = {".".join(path): key for key, path in POOL_KEYS.items()}
    lines = []
    body = message.splitlines()[1:] if message.startswith("invalid stack configuration:") else [message]
    for line in body:
        line = line.strip()
        match = _LINE.match(line)
        if match is None:
            # A rule over the whole pool (pydantic names no key): say which pool.
            lines.append(f"{PROJECT}:{DISAGGREGATION_KEY}.{role}: {line.removeprefix(f'{PROJECT}: ')}")
            continue
        key, text = match.groups()
        pool_key = reverse.get(key)
        if key.startswith("engine.extraArgs") and pool.get("extraArgs"):
            pool_key = "extraArgs"
        if pool_key is not None and pool_key in pool:
            lines.append(f"{PROJECT}:{DISAGGREGATION_KEY}.{role}.{pool_key}: {text}")
        elif key == "name":
            lines.append(f"{PROJECT}:name: the {role} pool's name <name>-{role} is not accepted: {text}")
        else:
            lines.append(f"{PROJECT}:{key}: {text} (for the {role} pool, {DISAGGREGATION_KEY}.{role})")
    return lines


def parse_pools(raw: Mapping[str, Any], parse: Callable[[Mapping[str, Any]], Config]) -> dict[str, Config]:
    """Both pools of a disaggregated stack, each validated with ``parse``; every problem of both named at once.

    Raises:
        ConfigError: a pool's values are refused (each line names the key where the file sets it).
    """
    section = raw.get(DISAGGREGATION_KEY)
    problems: list[str] = []
    pools: dict[str, Config] = {}
    for role in POOL_ROLES:
        pool = section.get(role) if isinstance(section, Mapping) else None
        try:
            pools[role] = parse(pool_values(raw, role))
        except ConfigError as error:
            problems.extend(_relabel(str(error), role, pool if isinstance(pool, Mapping) else {}))
    if problems:
        raise ConfigError("invalid stack configuration:\n  " + "\n  ".join(dict.fromkeys(problems)))
    return pools


def check_pools(root: Any, check: Callable[[Any], object]) -> None:
    """Run ``check`` (the serving plan) on both pools of a disaggregated stack, naming each problem in its pool.

    Raises:
        ConfigError: one line per problem of either pool.
    """
    section = getattr(root, "disaggregation", None)
    problems: list[str] = []
    for role, pool in getattr(root, "pools", {}).items():
        try:
            check(pool)
        except ConfigError as error:
            written = getattr(section, role, None)
            keys = written.model_dump(by_alias=True, exclude_unset=True) if written is not None else {}
            problems.extend(_relabel(str(error), role, keys))
    if problems:
        raise ConfigError("invalid stack configuration:\n  " + "\n  ".join(dict.fromkeys(problems)))
