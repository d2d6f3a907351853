"""Rules that map the Ray nodes of a model onto Docker GPU hosts (one host per node).

Pure functions of the stack config and its topology, called by the plan before any container exists.
"""

from __future__ import annotations

from pulumi_vllm.config import PROJECT, ConfigError, DockerSpec, StackConfig
from pulumi_vllm.distributed.parallelism import Topology


def docker_spec(config: StackConfig) -> DockerSpec:
    """The stack's ``docker`` section; raises :class:`ConfigError` when the Docker target has none."""
    if config.docker is None:
        raise ConfigError(f"{PROJECT}:docker: required but not set (target is {config.target!r})")
    return config.docker


def docker_gpus_per_host(config: StackConfig) -> int:
    """GPUs each Docker host runs: the world size split evenly over the hosts.

    Raises :class:`ConfigError` when the hosts cannot share the GPUs evenly.
    """
    hosts = len(docker_spec(config).hosts)
    tensor = config.parallelism.tensor_parallel_size
    pipeline = config.parallelism.pipeline_parallel_size
    data = config.parallelism.data_parallel_size
    if data > 1:
        if hosts > 1:
            raise ConfigError(
                f"{PROJECT}:parallelism.dataParallelSize: {data} is not accepted with {hosts} Docker hosts: the "
                "data-parallel ranks run in one container on one host (across hosts is not supported yet); use one "
                "host, or one stack per host"
            )
        return tensor * pipeline * data
    world = tensor * pipeline
    if world % hosts:
        raise ConfigError(
            f"{PROJECT}:docker.hosts: {hosts} hosts cannot share {world} GPUs (tensor parallel {tensor} x "
            f"pipeline parallel {pipeline}) evenly; use a number of hosts that divides {world}"
        )
    return world // hosts


def check_docker_hosts(config: StackConfig, topology: Topology) -> None:
    """Check that the hosts match the layout: one host per node, and each GPU list as long as a node."""
    hosts = docker_spec(config).hosts
    if config.network.infiniband:
        raise ConfigError(
            f"{PROJECT}:network.infiniband: true is not accepted on target 'docker' (the RDMA devices are not "
            "passed into the containers); use false, with ncclSocketIfname naming the hosts' interface"
        )
    if topology.pods != len(hosts):
        raise ConfigError(
            f"{PROJECT}:docker.hosts: {len(hosts)} host(s) given, but the model is laid out on "
            f"{topology.pods} node(s) of {topology.gpus_per_pod} GPUs; list one host per node"
        )
    for index, host in enumerate(hosts):
        if host.gpus != "all" and len(host.gpus) != topology.gpus_per_pod:
            raise ConfigError(
                f"{PROJECT}:docker.hosts[{index}].gpus: {list(host.gpus)!r} is not accepted: each host runs "
                f"{topology.gpus_per_pod} GPU(s) (tensor parallel {topology.tensor_parallel_size} x pipeline "
                f"parallel {topology.pipeline_parallel_size} over {topology.pods} host(s)); list that many "
                "device ids, or use 'all'"
            )
