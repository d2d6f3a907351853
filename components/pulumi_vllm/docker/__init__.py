"""Docker target: the containers of a stack as plain data.

The Pulumi components (:mod:`~pulumi_vllm.docker.server`, :mod:`~pulumi_vllm.docker.ray_cluster`)
and the Compose writer (:mod:`~pulumi_vllm.docker.compose`) read the same :class:`ContainerSpec`
values, so ``pulumi up`` and ``docker compose up`` run the same containers. Everything here is a
pure function of the stack config; secret values never enter a spec, only the names of the
variables that carry them. The package may import the pure core (the stack schema, the engine,
distributed serving, the plan), never the Kubernetes components, render, review or the CLI.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from pulumi_vllm.config import DockerHostSpec, DockerSpec, StackConfig
from pulumi_vllm.distributed import ray
from pulumi_vllm.distributed.hosts import check_docker_hosts, docker_gpus_per_host, docker_spec
from pulumi_vllm.distributed.parallelism import Topology
from pulumi_vllm.engine.argv import engine_args_from_config, vllm_command
from pulumi_vllm.engine.container import HEALTH_PATH, MODEL_CACHE_PATH, default_shm_size, quantity_bytes
from pulumi_vllm.engine.profiles import profile
from pulumi_vllm.engine.profiles.stack import serve_spec

__all__ = [
    "ContainerSpec",
    "HealthCheck",
    "HostContainers",
    "PortBinding",
    "SecretEnv",
    "cache_volume_name",
    "check_docker_hosts",
    "configured_secrets",
    "docker_containers",
    "docker_gpus_per_host",
    "gpus_flag",
    "health_url",
]

Role = Literal["server", "ray-head", "ray-worker"]

RAY_SHELL: tuple[str, ...] = ("bash", "-c")
"""Entrypoint of the Ray containers; their command is the one script from :mod:`pulumi_vllm.distributed.ray`."""

SECRET_VARIABLES: dict[str, str] = {"hfToken": "HF_TOKEN", "apiKey": "VLLM_API_KEY"}
"""Secret config key -> the environment variable that carries it into the container."""


@dataclass(frozen=True)
class SecretEnv:
    """An environment variable whose value is a secret of the stack (never held in a spec)."""

    variable: str
    """Name inside the container, e.g. ``HF_TOKEN``."""
    config_key: str
    """Stack config key holding the value, e.g. ``hfToken``."""


@dataclass(frozen=True)
class PortBinding:
    """One published port: ``host_ip:host_port`` on the host to ``container_port`` inside."""

    host_ip: str
    host_port: int
    container_port: int


@dataclass(frozen=True)
class HealthCheck:
    """A Docker healthcheck (exec form) and its timings in seconds."""

    test: tuple[str, ...]
    interval_seconds: int
    timeout_seconds: int
    retries: int
    start_period_seconds: int


@dataclass(frozen=True)
class ContainerSpec:
    """Everything one vLLM or Ray container needs, independent of Pulumi and Compose."""

    host: str
    """Name of the Docker host (``docker.hosts[].name``) that runs the container."""
    role: Role
    name: str
    """Container name, unique on its host."""
    image: str
    entrypoint: tuple[str, ...]
    command: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    """Plain environment variables, sorted by name."""
    secret_env: tuple[SecretEnv, ...]
    gpus: Literal["all"] | tuple[str, ...]
    """``all`` or device ids / UUIDs."""
    ipc_host: bool
    shm_size_mib: int | None
    """Size of /dev/shm when the IPC namespace is private."""
    host_network: bool
    ports: tuple[PortBinding, ...]
    cache_volume: str | None
    """Named volume holding the Hugging Face cache (``None`` with a host path)."""
    cache_host_path: str | None
    cache_path: str
    """Where the cache is mounted inside the container (``HF_HOME``)."""
    restart: str
    log_max_size: str
    log_max_file: int
    healthcheck: HealthCheck | None
    labels: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class HostContainers:
    """One Docker host and the containers it runs."""

    host: DockerHostSpec
    containers: tuple[ContainerSpec, ...]


def cache_volume_name(config: StackConfig) -> str | None:
    """Name of the cache volume on every host (``None`` when the cache is a host path)."""
    docker = docker_spec(config)
    if docker.cache_host_path is not None:
        return None
    return docker.cache_volume or f"{config.name}-hf-cache"


def gpus_flag(gpus: Literal["all"] | tuple[str, ...]) -> str:
    """The value of ``docker run --gpus``: ``all`` or ``device=0,1``."""
    return "all" if gpus == "all" else "device=" + ",".join(gpus)


def health_url(publish_address: str, port: int, path: str = HEALTH_PATH) -> str:
    """URL of ``/health`` (or ``path``) as seen from inside the container (loopback when bound to every interface)."""
    address = "127.0.0.1" if publish_address in {"0.0.0.0", "::"} else publish_address
    if ":" in address:
        address = f"[{address}]"
    return f"http://{address}:{port}{path}"


def _healthcheck(config: StackConfig, url: str, test: tuple[str, ...] | None = None) -> HealthCheck:
    # python3 is in every vLLM image (another engine's profile says what its image has).
    return HealthCheck(
        test=("CMD", *(test or profile("vllm").http_check(url))),
        interval_seconds=config.probes.liveness_period_seconds,
        timeout_seconds=10,
        retries=config.probes.liveness_failure_threshold,
        # Failures while the weights download and load do not count, like the Kubernetes startup probe.
        start_period_seconds=config.probes.startup_timeout_seconds,
    )


def _shm_size_mib(docker: DockerSpec, gpus_per_host: int) -> int | None:
    if docker.ipc_host:
        return None
    size = docker.shm_size or default_shm_size(gpus_per_host)
    return math.ceil(quantity_bytes(size) / 2**20)


def _labels(config: StackConfig, role: Role, plan_labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    labels = {
        "app.kubernetes.io/name": "vllm",
        "app.kubernetes.io/instance": config.name,
        "app.kubernetes.io/component": role,
        "app.kubernetes.io/managed-by": "pulumi",
        **config.labels,
        **plan_labels,
        # The container runs the image by id; the label keeps the pinned reference readable.
        "vllm.pulumi.com/image": config.engine.pinned_image,
    }
    return tuple(sorted(labels.items()))


def _plain_env(config: StackConfig, extra: dict[str, str]) -> tuple[tuple[str, str], ...]:
    env = {"HF_HOME": MODEL_CACHE_PATH, **config.engine.env, **extra}
    return tuple(sorted(env.items()))


def configured_secrets(config: StackConfig) -> frozenset[str]:
    """The secret config keys (``hfToken``, ``apiKey``) the stack config sets."""
    given = {"hfToken": config.hf_token is not None, "apiKey": config.api_key is not None}
    return frozenset(key for key, present in given.items() if present)


def docker_containers(
    config: StackConfig,
    topology: Topology,
    plan_labels: dict[str, str],
    secrets: Iterable[str] | None = None,
) -> list[HostContainers]:
    """The containers of a Docker stack, host by host (the Ray head's host first).

    One host runs ``vllm serve`` in a container on the bridge network with the API port published.
    Several hosts run a Ray cluster on the host network: the first host's container starts the Ray
    head, waits for every node, then serves; the others start Ray workers that join it.
    ``plan_labels`` are stamped on every container (e.g. the model facts the rules used);
    ``secrets`` names the secret config keys that have a value (default: those the config sets).
    """
    docker = docker_spec(config)
    present = configured_secrets(config) if secrets is None else frozenset(secrets)
    secret_env = tuple(SecretEnv(variable, key) for key, variable in SECRET_VARIABLES.items() if key in present)
    # Workers download their own share of the weights (the token) but never serve the API (no key).
    worker_secret_env = tuple(item for item in secret_env if item.config_key != "apiKey")
    common = {
        "image": config.engine.pinned_image,
        "ipc_host": docker.ipc_host,
        "shm_size_mib": _shm_size_mib(docker, topology.gpus_per_pod),
        "cache_volume": cache_volume_name(config),
        "cache_host_path": docker.cache_host_path,
        "cache_path": MODEL_CACHE_PATH,
        "restart": docker.restart,
        "log_max_size": docker.log_max_size,
        "log_max_file": docker.log_max_file,
    }

    def gpus(host: DockerHostSpec) -> Literal["all"] | tuple[str, ...]:
        return "all" if host.gpus == "all" else tuple(host.gpus)

    if not topology.multi_node:
        host = docker.hosts[0]
        engine = profile(config.engine.kind)
        env: dict[str, str] = {}
        check: tuple[str, ...] | None = None
        if config.engine.kind == "vllm":
            command = vllm_command(engine_args_from_config(config, multi_node=False))
        else:
            # Another single-host engine: its profile's command, port, environment and health check.
            spec = serve_spec(config, gpus=topology.gpus_per_pod, cache_path=MODEL_CACHE_PATH)
            command = engine.command(spec)
            env = engine.env(spec)
            ready = engine.ready_command(spec)
            check = ready or engine.http_check(health_url("127.0.0.1", engine.port, engine.ready_path))
            secret_env = tuple(
                SecretEnv(engine.api_key_env or variable, key) if key == "apiKey" else SecretEnv(variable, key)
                for key, variable in SECRET_VARIABLES.items() if key in present
            )
        server = ContainerSpec(
            host=host.name,
            role="server",
            name=config.name,
            entrypoint=command.command,
            command=command.args,
            env=_plain_env(config, env),
            secret_env=secret_env,
            gpus=gpus(host),
            host_network=False,
            ports=(PortBinding(docker.publish_address, docker.port, engine.port),),
            healthcheck=_healthcheck(config, health_url("127.0.0.1", engine.port, engine.ready_path), check),
            labels=_labels(config, "server", plan_labels),
            **common,  # type: ignore[arg-type]
        )
        return [HostContainers(host, (server,))]

    head = docker.hosts[0]
    # On the host network the API binds the publish address itself (loopback by default).
    serve = vllm_command(
        engine_args_from_config(config, multi_node=True), host=docker.publish_address, port=docker.port
    )
    # The Ray scripts shared with the Kubernetes backends; every per-host value comes from the env.
    gpus_per_node = topology.gpus_per_pod
    head_script = ray.head_script(ray.head_start_command(gpus_per_node), serve.argv)
    worker_script = ray.worker_script(ray.worker_start_command(gpus_per_node), f"${{{ray.HEAD_HOST_ENV}}}")
    ray_env = ray.ray_environment(
        expected_nodes=topology.pods,
        # Past it the container exits with a message, and its restart policy tries again.
        wait_timeout_seconds=config.parallelism.ray_wait_timeout_seconds,
        port=docker.ray_port,
        head_host=str(head.address),
    )
    # The same NCCL/Gloo settings the Kubernetes Ray pods get (a pure function of the network section).
    from pulumi_vllm.distributed.network import network_env_values

    network_env = network_env_values(config.network)
    result = []
    for host in docker.hosts:
        is_head = host is head
        role: Role = "ray-head" if is_head else "ray-worker"
        container = ContainerSpec(
            host=host.name,
            role=role,
            name=f"{config.name}-{role}",
            entrypoint=RAY_SHELL,
            # The head's script runs the vLLM command once every host joined; a worker's joins the head.
            command=(head_script if is_head else worker_script,),
            # vLLM, Ray and NCCL advertise this address to the other nodes.
            env=_plain_env(config, {**ray_env, **network_env, ray.HOST_IP_ENV: str(host.address)}),
            secret_env=secret_env if is_head else worker_secret_env,
            gpus=gpus(host),
            # Ray and NCCL open many ports between the nodes: the host network, as vLLM's run_cluster.sh does.
            host_network=True,
            ports=(),
            healthcheck=_healthcheck(config, health_url(docker.publish_address, docker.port)) if is_head else None,
            labels=_labels(config, role, plan_labels),
            **common,  # type: ignore[arg-type]
        )
        result.append(HostContainers(host, (container,)))
    return result
