"""Rules a stack must meet to run one model on several Kubernetes pods joined into a Ray cluster.

Pure functions of the stack config; :func:`pulumi_vllm.plan.plan_serving` calls them before any
resource exists, and the Kubernetes pod builders rely on them having passed.
"""

from __future__ import annotations

from pulumi_vllm.config import PROJECT, ConfigError, NetworkSpec, StackConfig
from pulumi_vllm.distributed import ray
from pulumi_vllm.distributed.network import network_env_values

MAX_NAME_LENGTH = 41
"""Longest stack name whose derived names fit (a worker StatefulSet's revision label must stay within 63)."""

_RESERVED_ENV = (
    ray.HOST_IP_ENV, ray.HEAD_HOST_ENV, ray.HEAD_PORT_ENV, ray.EXPECTED_NODES_ENV, ray.WAIT_SECONDS_ENV,
)


_RESERVED_ENV = (
    ray.HOST_IP_ENV, ray.HEAD_HOST_ENV, ray.HEAD_PORT_ENV, ray.EXPECTED_NODES_ENV, ray.WAIT_SECONDS_ENV,
)


def multinode_problems(config: StackConfig) -> list[str]:
    """What keeps ``config`` from running on several pods, one message per problem (empty: fine)."""
    problems: list[str] = []
    if config.cache.existing_claim is None and config.cache.access_mode != "ReadWriteMany":
        problems.append(
            f"{PROJECT}:cache.accessMode: {config.cache.access_mode!r} is not accepted for a multi-node model: "
            "every pod mounts the model cache, on different nodes; use ReadWriteMany (an NFS or Filestore class) "
            "or cache.existingClaim"
        )
    wait, startup = config.parallelism.ray_wait_timeout_seconds, config.probes.startup_timeout_seconds
    if wait >= startup:
        problems.append(
            f"{PROJECT}:parallelism.rayWaitTimeoutSeconds: {wait} is not accepted: the head's startup probe "
            f"(probes.startupTimeoutSeconds {startup}) would restart it first; use less than {startup}"
        )
    clashes = sorted(set(config.engine.env) & {*_RESERVED_ENV, *network_env_names(config.network)})
    if clashes:
        problems.append(
            f"{PROJECT}:engine.env: {clashes} are set by the multi-node pods themselves; "
            "use the network section for NCCL/Gloo interfaces"
        )
    if len(config.name) > MAX_NAME_LENGTH:
        problems.append(
            f"{PROJECT}:name: {config.name!r} is too long for a multi-node model's object names; "
            f"use at most {MAX_NAME_LENGTH} characters"
        )
    return problems


def check_multinode(config: StackConfig) -> None:
    """Raise :class:`ConfigError` naming every problem of :func:`multinode_problems`."""
    problems = multinode_problems(config)
    if problems:
        raise ConfigError("\n".join(problems))


def network_env_names(network: NetworkSpec) -> set[str]:
    """Names of the variables :func:`~pulumi_vllm.distributed.network.network_env_values` sets."""
    return set(network_env_values(network))
