"""vLLM's OpenAI-compatible server in a container on one Docker GPU host.

The Pulumi shell around :func:`pulumi_vllm.docker.docker_containers`: a provider for the host, the
pinned image, the Hugging Face cache volume and the container. The helpers here also build the
Ray cluster's hosts and containers (:mod:`pulumi_vllm.docker.ray_cluster`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict

import pulumi
import pulumi_docker as docker

from pulumi_vllm.config import StackConfig, parse_stack_config
from pulumi_vllm.docker import ContainerSpec, HostContainers, docker_containers, gpus_flag
from pulumi_vllm.plan import ServingPlan, plan_serving

TOKEN = "pulumi-vllm:index:DockerVllmServer"


class DockerVllmServerArgs(TypedDict):
    """Arguments of :class:`DockerVllmServer` (and :class:`~pulumi_vllm.docker.ray_cluster.DockerRayCluster`)."""

    config: StackConfig | Mapping[str, Any]
    """The stack settings, with ``target: docker`` and the ``docker`` section: a :class:`StackConfig` or the same camelCase keys."""
    hf_token: NotRequired[pulumi.Input[str]]
    """Hugging Face token (overrides ``hfToken`` in the config); kept secret."""
    api_key: NotRequired[pulumi.Input[str]]
    """API key clients must send (overrides ``apiKey`` in the config); kept secret."""


def prepare(
    args: DockerVllmServerArgs,
) -> tuple[StackConfig, ServingPlan, list[HostContainers], dict[str, pulumi.Input[str]]]:
    """Validate the arguments and lay out the containers, before any resource is registered.

    Returns the config, the plan, the containers host by host, and the secret values by config key.
    """
    raw = args["config"]
    config = raw if isinstance(raw, StackConfig) else parse_stack_config(raw)
    plan = plan_serving(config)
    secrets = secret_values(config, args)
    hosts = docker_containers(config, plan.topology, plan.facts_annotations(), secrets=secrets.keys())
    return config, plan, hosts, secrets


def secret_values(config: StackConfig, args: DockerVllmServerArgs) -> dict[str, pulumi.Input[str]]:
    """The secret values by config key (``hfToken``, ``apiKey``), from the arguments or the config."""
    values: dict[str, pulumi.Input[str]] = {}
    token = args.get("hf_token") or (config.hf_token.get_secret_value() if config.hf_token else None)
    key = args.get("api_key") or (config.api_key.get_secret_value() if config.api_key else None)
    if token is not None:
        values["hfToken"] = token
    if key is not None:
        values["apiKey"] = key
    return values


@dataclass
class HostResources:
    """The per-host resources every container on a host uses."""

    provider: docker.Provider
    image: docker.RemoteImage
    volume: docker.Volume | None


def host_resources(
    name: str, host: HostContainers, config: StackConfig, parent: pulumi.Resource
) -> HostResources:
    """A provider for the host's Docker engine, the pinned image pulled there, and the cache volume."""
    provider = docker.Provider(f"{name}-{host.host.name}", host=host.host.docker_host, opts=pulumi.ResourceOptions(parent=parent))
    on_host = pulumi.ResourceOptions(parent=parent, provider=provider)
    # keep_locally: a destroy must not delete a multi-gigabyte image other containers may share.
    image = docker.RemoteImage(f"{name}-{host.host.name}-image", name=config.engine.pinned_image, keep_locally=True, opts=on_host)
    volume = None
    spec = host.containers[0]
    if spec.cache_volume is not None:
        volume = docker.Volume(
            f"{name}-{host.host.name}-cache",
            name=spec.cache_volume,
            # Only labels that never change: a label change would replace the volume and its weights.
            labels=[
                docker.VolumeLabelArgs(label=key, value=value)
                for key, value in {
                    "app.kubernetes.io/name": "vllm",
                    "app.kubernetes.io/instance": config.name,
                    "app.kubernetes.io/component": "model-cache",
                    "app.kubernetes.io/managed-by": "pulumi",
                }.items()
            ],
            # Like the Kubernetes cache claim: the weights outlive a destroy unless the user says otherwise.
            opts=pulumi.ResourceOptions(
                parent=parent,
                provider=provider,
                protect=config.cache.protect,
                retain_on_delete=config.cache.retain_on_delete,
            ),
        )
    return HostResources(provider, image, volume)


def _env(spec: ContainerSpec, secrets: Mapping[str, pulumi.Input[str]]) -> pulumi.Input[list[str]]:
    plain = [f"{name}={value}" for name, value in spec.env]
    wanted = [(item.variable, secrets[item.config_key]) for item in spec.secret_env if item.config_key in secrets]
    if not wanted:
        return plain
    values = pulumi.Output.all(*[value for _, value in wanted])
    # The whole list is one secret: Docker stores env as an unordered set, so no element can be
    # told apart in state; the plain variables are readable in the Compose file instead.
    return pulumi.Output.secret(
        values.apply(lambda resolved: plain + [f"{variable}={value}" for (variable, _), value in zip(wanted, resolved)])
    )


def container_resource(
    name: str,
    spec: ContainerSpec,
    resources: HostResources,
    secrets: Mapping[str, pulumi.Input[str]],
    parent: pulumi.Resource,
    depends_on: list[pulumi.Resource] | None = None,
) -> docker.Container:
    """The ``docker.Container`` for ``spec`` on its host."""
    volume_name: Any = resources.volume.name if resources.volume is not None else None
    mount = (
        docker.ContainerVolumeArgs(volume_name=volume_name, container_path=spec.cache_path)
        if spec.cache_volume is not None
        else docker.ContainerVolumeArgs(host_path=spec.cache_host_path, container_path=spec.cache_path)
    )
    healthcheck = None
    if spec.healthcheck is not None:
        check = spec.healthcheck
        healthcheck = docker.ContainerHealthcheckArgs(
            tests=list(check.test),
            interval=f"{check.interval_seconds}s",
            timeout=f"{check.timeout_seconds}s",
            retries=check.retries,
            start_period=f"{check.start_period_seconds}s",
        )
    return docker.Container(
        name,
        name=spec.name,
        # The image id, not the tag: the provider reads the id back and would otherwise replace the container.
        image=resources.image.image_id,
        # Set explicitly: the image's own ENTRYPOINT has changed between vLLM releases.
        entrypoints=list(spec.entrypoint),
        command=list(spec.command),
        envs=_env(spec, secrets),
        gpus=gpus_flag(spec.gpus),
        ipc_mode="host" if spec.ipc_host else None,
        shm_size=spec.shm_size_mib,
        network_mode="host" if spec.host_network else None,
        ports=[
            docker.ContainerPortArgs(internal=port.container_port, external=port.host_port, ip=port.host_ip)
            for port in spec.ports
        ]
        or None,
        volumes=[mount],
        restart=spec.restart,
        healthcheck=healthcheck,
        log_driver="json-file",
        log_opts={"max-size": spec.log_max_size, "max-file": str(spec.log_max_file)},
        labels=[docker.ContainerLabelArgs(label=key, value=value) for key, value in spec.labels],
        opts=pulumi.ResourceOptions(
            parent=parent,
            provider=resources.provider,
            depends_on=depends_on,
            additional_secret_outputs=["envs"],
        ),
    )


def base_url(config: StackConfig) -> str:
    """Base URL of the OpenAI API on the serving host (loopback unless published elsewhere)."""
    assert config.docker is not None
    address = config.docker.publish_address
    if address in {"0.0.0.0", "::"}:
        address = config.docker.hosts[0].address or "127.0.0.1"
    if ":" in address:
        address = f"[{address}]"
    from pulumi_vllm.engine.profiles import profile

    return f"http://{address}:{config.docker.port}{'/v1' if profile(config.engine.kind).openai_paths else ''}"


class DockerVllmServer(pulumi.ComponentResource):
    """``vllm serve`` in a container on one Docker GPU host, with its image and model cache.

    The API port is published on ``docker.publishAddress`` (loopback by default). The Hugging Face
    token and the API key reach the container as environment variables held in a Pulumi secret.
    """

    base_url: pulumi.Output[str]
    """Base URL of the OpenAI API as seen on the host: ``http://127.0.0.1:8000/v1`` by default."""
    served_model_name: pulumi.Output[str]
    """Name clients use in the ``model`` field of requests."""
    container_name: pulumi.Output[str]
    """Name of the container (for ``docker logs``)."""
    plan: ServingPlan
    """The validated plan the resources were built from."""

    def __init__(self, name: str, args: DockerVllmServerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        config, plan, hosts, secrets = prepare(args)
        if plan.topology.multi_node:
            raise ValueError(
                f"{name}: the model needs {plan.topology.pods} hosts; use DockerRayCluster for several hosts"
            )
        super().__init__(TOKEN, name, None, opts)
        self.plan = plan
        (host,) = hosts
        resources = host_resources(name, host, config, self)
        (spec,) = host.containers
        self._container = container_resource(f"{name}-container", spec, resources, secrets, self)
        self.base_url = pulumi.Output.from_input(base_url(config))
        self.served_model_name = pulumi.Output.from_input(plan.served_model_name)
        self.container_name = self._container.name
        self.register_outputs(
            {"base_url": self.base_url, "served_model_name": self.served_model_name, "container_name": self.container_name}
        )
