"""vLLM's ``--kv-transfer-config`` for prefill/decode pools and KV-cache tiers, and the network settings it needs.

Which connector vLLM 0.32 loads is decided by ``kv_connector``, looked up in
``vllm/distributed/kv_transfer/kv_connector/factory.py`` (``KVConnectorFactory.register_connector``):

- prefill/decode over NIXL: ``NixlConnector`` with ``kv_role`` ``kv_both`` on both pools; the router marks a
  request ``do_remote_decode`` for the prefill server and hands the ``kv_transfer_params`` it answers with to the
  decode server, which pulls the blocks (``nixl/base_worker.py``; backends ``["UCX"]`` by default, ``LIBFABRIC``
  for AWS EFA through ``kv_connector_extra_config.backends``).
- prefill/decode over LMCache: ``LMCacheConnectorV1``, ``kv_producer`` on prefill and ``kv_consumer`` on decode.
- a host-memory tier: ``OffloadingConnector`` with ``kv_connector_extra_config.cpu_bytes_to_use`` (the total over
  the server's ranks: ``vllm/v1/kv_offload/cpu/spec.py`` divides it into chunks that hold every worker's block),
  which is what vLLM's own ``--kv-offloading-size`` writes (``VllmConfig._post_init_kv_transfer_config``). That
  flag would replace a NIXL connector, so the tier is written here instead, as a second connector of a
  ``MultiConnector`` when the pool also transfers KV.
- a local-disk tier below it: ``spec_name`` ``TieringOffloadingSpec`` with a ``secondary_tiers`` entry of type
  ``fs`` and its ``root_dir`` (``vllm/v1/kv_offload/tiering/spec.py`` and ``tiering/factory.py``).

Everything here is pure: the tests hand the rendered JSON to vLLM's own ``KVTransferConfig``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pulumi_vllm.config import StackConfig

GIB = 1 << 30

NIXL_SIDE_CHANNEL_HOST_ENV = "VLLM_NIXL_SIDE_CHANNEL_HOST"
"""Where a prefill server tells decode servers to fetch its NIXL metadata (vLLM's ``envs.py``; default ``localhost``,
which only works inside one machine, so each pod sets its own address)."""
NIXL_SIDE_CHANNEL_PORT_ENV = "VLLM_NIXL_SIDE_CHANNEL_PORT"

EFA_RESOURCE = "vpc.amazonaws.com/efa"
"""The extended resource AWS's EFA device plugin gives each EFA interface."""

DEFAULT_UCX_TLS = {"tcp": "tcp", "rdma": "rc,cuda_copy,cuda_ipc"}
"""``UCX_TLS`` per transport: TCP only, or reliable-connected verbs plus CUDA copies (NIXL's GPU-to-GPU path)."""


@dataclass(frozen=True)
class KvTransfer:
    """What one server's KV transfer needs: vLLM's config, its environment, its extra pod resources."""

    config: dict[str, Any]
    """The ``--kv-transfer-config`` object, as vLLM's ``KVTransferConfig`` takes it."""
    env: dict[str, str]
    """Plain environment variables (UCX settings, the side-channel port, LMCache's buffer)."""
    pod_ip_env: tuple[str, ...]
    """Variables set from the pod's own address (``status.podIP``)."""
    resources: dict[str, int]
    """Extended resources per pod (an RDMA or EFA device)."""
    host_gib: float
    """Host memory the tiers take in one pod (GiB), for its memory request."""
    disk_gib: float
    """Local disk the disk tier takes in one pod (GiB), for its ephemeral storage."""


def _offloading(config: StackConfig) -> dict[str, Any] | None:
    tiers = config.kv_cache
    if tiers.cpu_gib is None or tiers.backend != "native":
        return None
    extra: dict[str, Any] = {"cpu_bytes_to_use": int(tiers.cpu_gib * GIB)}
    if tiers.disk is not None:
        extra["spec_name"] = "TieringOffloadingSpec"
        extra["secondary_tiers"] = [{"type": "fs", "root_dir": tiers.disk.path}]
    return {"kv_connector": "OffloadingConnector", "kv_role": "kv_both", "kv_connector_extra_config": extra}


def _transfer(config: StackConfig) -> dict[str, Any] | None:
    spec = config.disaggregation
    if spec is None:
        if config.kv_cache.cpu_gib is not None and config.kv_cache.backend == "lmcache":
            return {"kv_connector": "LMCacheConnectorV1", "kv_role": "kv_both"}
        return None
    if spec.connector == "lmcache":
        role = "kv_consumer" if config.pool_role == "decode" else "kv_producer"
        return {"kv_connector": "LMCacheConnectorV1", "kv_role": role}
    extra: dict[str, Any] = {}
    if spec.transport == "efa":
        extra["backends"] = ["LIBFABRIC"]
    connector: dict[str, Any] = {"kv_connector": "NixlConnector", "kv_role": "kv_both"}
    if extra:
        connector["kv_connector_extra_config"] = extra
    return connector


def kv_transfer_config(config: StackConfig) -> dict[str, Any] | None:
    """The ``--kv-transfer-config`` of a server of ``config`` (a pool's or a one-pool stack's); ``None`` without one.

    P/D and a CPU tier together become a ``MultiConnector``: vLLM asks its connectors in order, so the pool
    transfers KV through NIXL (or LMCache) and keeps evicted blocks in host memory.
    """
    transfer, offload = _transfer(config), _offloading(config)
    if transfer and offload:
        return {
            "kv_connector": "MultiConnector",
            "kv_role": "kv_both",
            "kv_connector_extra_config": {"connectors": [transfer, offload]},
        }
    return transfer or offload


def kv_transfer_json(config: StackConfig) -> str | None:
    """:func:`kv_transfer_config` as the flag's JSON value (keys sorted, no spaces), or ``None``."""
    found = kv_transfer_config(config)
    return None if found is None else json.dumps(found, sort_keys=True, separators=(",", ":"))


def kv_transfer(config: StackConfig) -> KvTransfer | None:
    """Everything a server of ``config`` needs for its KV transfer and tiers; ``None`` when it has neither."""
    found = kv_transfer_config(config)
    if found is None:
        return None
    env: dict[str, str] = {}
    pod_ip: tuple[str, ...] = ()
    resources: dict[str, int] = {}
    spec = config.disaggregation
    if spec is not None and spec.connector == "nixl":
        pod_ip = (NIXL_SIDE_CHANNEL_HOST_ENV,)
        env[NIXL_SIDE_CHANNEL_PORT_ENV] = str(spec.side_channel_port)
        if spec.transport != "efa":
            env["UCX_TLS"] = spec.ucx_tls or DEFAULT_UCX_TLS[spec.transport]
        if spec.ucx_net_devices:
            env["UCX_NET_DEVICES"] = spec.ucx_net_devices
        if spec.transport == "efa":
            resources[EFA_RESOURCE] = spec.efa_resource_count
        elif spec.transport == "rdma":
            resources[config.network.rdma_resource_name] = config.network.rdma_resource_count
    tiers = config.kv_cache
    if tiers.cpu_gib is not None and tiers.backend == "lmcache":
        # LMCache's buffer is per process (one per GPU); the stack's figure is the server's total.
        gpus = max(config.parallelism.tensor_parallel_size * config.parallelism.pipeline_parallel_size, 1)
        env["LMCACHE_MAX_LOCAL_CPU_SIZE"] = f"{tiers.cpu_gib / gpus:g}"
        env.setdefault("LMCACHE_LOCAL_CPU", "True")
    host_gib = tiers.cpu_gib or 0.0
    disk_gib = tiers.disk.size_gib if tiers.disk is not None and tiers.cpu_gib is not None else 0.0
    return KvTransfer(found, env, pod_ip, resources, host_gib, disk_gib)


def tier_tokens(tier_gib: float, kv_bytes_per_token_per_rank: float, ranks: int) -> int:
    """Tokens of KV cache a tier of ``tier_gib`` holds for a server of ``ranks`` GPUs, each storing
    ``kv_bytes_per_token_per_rank`` per token (the capacity planner's ``kv_cache_bytes_per_token`` for its
    tensor-parallel size): the tier stores every rank's share of each block."""
    per_token = kv_bytes_per_token_per_rank * max(ranks, 1)
    return int(tier_gib * GIB // per_token) if per_token > 0 else 0
