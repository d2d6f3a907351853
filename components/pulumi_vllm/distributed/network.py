"""The network settings of multi-node serving: NCCL and Gloo interfaces and InfiniBand HCAs.

Every Ray node of a stack gets the same values, on Kubernetes and on Docker hosts alike.
"""

from __future__ import annotations

from pulumi_vllm.config import NetworkSpec


def network_env_values(network: NetworkSpec) -> dict[str, str]:
    """NCCL and Gloo settings of the network section, as environment values (every Ray node, any target)."""
    env: dict[str, str] = {}
    if network.nccl_socket_ifname:
        env["NCCL_SOCKET_IFNAME"] = network.nccl_socket_ifname
    gloo = network.gloo_socket_ifname or network.nccl_socket_ifname
    if gloo:
        env["GLOO_SOCKET_IFNAME"] = gloo
    if network.infiniband and network.ib_hca:
        env["NCCL_IB_HCA"] = network.ib_hca
    return env
