"""What a vLLM server's KV connector and KV-cache tiers need in its pod (docs/disaggregation.md).

:func:`kv_container` adds, for the connector :mod:`pulumi_vllm.engine.kv_transfer` writes: the NIXL side-channel
address (the pod's own IP) and port, the UCX settings, the RDMA or EFA devices with the IPC_LOCK capability that
pinning RDMA memory needs, the CPU tier's host memory (on top of the pod's memory request) and the disk tier's
``emptyDir`` with its ephemeral storage. The serving component calls it for every vLLM container.
"""

import dataclasses

from pulumi_vllm.config import ConfigError, StackConfig
from pulumi_vllm.config.base import PROJECT
from pulumi_vllm.engine.kv_transfer import kv_transfer
from pulumi_vllm.kubernetes.pod import ContainerSettings

KV_DISK_VOLUME = "kv-disk"

KV_FLAGS = ("--kv-transfer-config", "--kv-offloading-size", "--kv-offloading-backend")
"""Flags the stack writes itself for ``disaggregation`` and ``kvCache`` (refused in ``engine.extraArgs`` then)."""


def kv_container(container: ContainerSettings, config: StackConfig) -> ContainerSettings:
    """``container`` with what the server's KV connector and tiers need; unchanged when it has neither."""
    found = kv_transfer(config)
    if found is None:
        return container
    extra_env = tuple(
        {"name": name, "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}} for name in found.pod_ip_env
    )
    resources = {name: str(count) for name, count in found.resources.items()}
    volumes = container.extra_volumes
    if found.disk_gib:
        disk = f"{found.disk_gib:g}Gi"
        resources["ephemeral-storage"] = disk
        path = config.kv_cache.disk.path if config.kv_cache.disk is not None else ""
        volumes = (*volumes, ({"name": KV_DISK_VOLUME, "emptyDir": {"sizeLimit": disk}},
                              {"name": KV_DISK_VOLUME, "mountPath": path}))
    security = dict(container.security_context or {})
    if found.resources:
        # Registering RDMA memory pins pages: the container needs IPC_LOCK beside the hardened settings.
        capabilities = dict(security.get("capabilities") or {})
        capabilities["add"] = sorted({*capabilities.get("add", []), "IPC_LOCK"})
        security["capabilities"] = capabilities
    memory = container.model_memory
    return dataclasses.replace(
        container,
        env={**found.env, **container.env},
        extra_env=(*extra_env, *container.extra_env),
        extra_resources={**container.extra_resources, **resources},
        extra_volumes=volumes,
        security_context=security or container.security_context,
        model_memory=dataclasses.replace(memory, offload_gib=memory.offload_gib + found.host_gib),
    )


def check_kv_flags(config: StackConfig) -> None:
    """Refuse the KV flags in ``engine.extraArgs`` when the stack writes them from its sections."""
    if config.disaggregation is None and not config.kv_cache.enabled:
        return
    for arg in config.engine.extra_args:
        flag = arg.split("=", 1)[0]
        if flag in KV_FLAGS:
            section = "disaggregation" if config.disaggregation is not None else "kvCache"
            raise ConfigError(
                f"{PROJECT}:engine.extraArgs: {arg!r} is not accepted: the stack writes the KV connector from "
                f"its {section} section (one --kv-transfer-config for the pools and the tiers); remove it"
            )
