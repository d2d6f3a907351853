"""The Pulumi program behind ``__main__.py``: read the stack config, build the serving, export outputs."""

from __future__ import annotations

from typing import Any

import pulumi

from pulumi_vllm.config import ClusterSpec, StackConfig, load_program_config, load_stack_config
from pulumi_vllm.plan import ServingPlan, plan_serving


def runtime_config() -> dict[str, Any]:
    """Every config value the Pulumi runtime holds for this program (``project:key`` -> value)."""
    from pulumi.runtime import config as runtime

    values: dict[str, Any] = dict(runtime.get_config_env())
    values.update(runtime.CONFIG.get())
    return values


def _secret_keys() -> set[str]:
    from pulumi.runtime import config as runtime

    secret = {key for key in runtime_config() if runtime.is_config_secret(key)}
    return secret | set(runtime.get_config_secret_keys_env())


def read_stack_config() -> StackConfig:
    """The validated stack config; raises :class:`~pulumi_vllm.config.ConfigError` on bad input."""
    return load_stack_config(runtime_config(), secret_keys=_secret_keys())


def read_program_config() -> tuple[StackConfig | None, ClusterSpec | None]:
    """The serving config (``None`` for a platform-only stack) and the ``cluster`` section (``None`` when unset)."""
    return load_program_config(runtime_config(), secret_keys=_secret_keys())


def platform_needs(config: StackConfig | None) -> dict[str, bool]:
    """What the serving stack needs from the platform, for its ``auto`` operators."""
    if config is None:
        return {}
    return {
        "kuberay": config.parallelism.backend == "kuberay",
        "leaderworkerset": config.parallelism.backend == "leaderworkerset",
        "keda": config.autoscaling.enabled,
    }


def plan_notes(plan: ServingPlan) -> list[str]:
    """What the plan reports without failing: capacity warnings and rules it could not verify."""
    unverified = [finding.message for finding in plan.findings if not finding.verifiable]
    return [*plan.warnings, *unverified]


def run() -> None:
    """Create the stack's resources and export its outputs."""
    config, cluster = read_program_config()
    outputs: dict[str, Any] = {}
    after = None
    on_cluster = _cloud_cluster(config, outputs)  # the new cluster's provider, when the stack creates the cluster
    if cluster is not None:
        from pulumi_vllm.kubernetes.platform import GpuPlatform

        if config is not None:
            plan_serving(config)  # the serving is refused (e.g. pods that fit no GPU node) before the platform is created
        name = config.name if config is not None else str(runtime_config().get("pulumi-vllm:name", "vllm"))
        platform = GpuPlatform(f"{name}-platform", {"needs": platform_needs(config)}, on_cluster, spec=cluster)  # type: ignore[typeddict-item]
        # Operators and CRDs first: every serving resource waits for the platform's releases and objects.
        after = waits_for(platform)
        outputs["platformReleases"] = platform.releases
        if platform.prometheus_url:
            outputs["prometheusUrl"] = platform.prometheus_url
    if on_cluster is not None:
        after = pulumi.ResourceOptions.merge(on_cluster, after)
    if config is not None:
        outputs.update(_serving(config, after))
    for key, value in outputs.items():
        pulumi.export(key, value)


def _cloud_cluster(config: StackConfig | None, outputs: dict[str, Any]) -> pulumi.ResourceOptions | None:
    """Create the stack's EKS or GKE cluster (``cloud`` section) and return options that put a component and all
    its children on the new cluster's Kubernetes provider; ``None`` when the stack has no ``cloud`` section.

    Every Kubernetes resource then depends on that provider, and the provider on the cluster and its nodes, so
    ``pulumi destroy`` removes the serving and the platform first and the cluster last.
    """
    from pulumi_vllm.config.stack import load_cloud_config

    cloud = config.cloud if config is not None else load_cloud_config(runtime_config(), secret_keys=_secret_keys())
    if cloud is None:
        return None
    from pulumi_vllm.clouds import cloud_cluster

    if config is not None:
        plan_serving(config)  # a serving that cannot run is refused before the cluster is created
    name = config.name if config is not None else str(runtime_config().get("pulumi-vllm:name", "vllm"))
    created = cloud_cluster(name, cloud)
    outputs.update({"clusterName": created.cluster_name, "clusterEndpoint": created.endpoint, "kubeconfig": created.kubeconfig})
    return pulumi.ResourceOptions(providers=[created.provider])


def waits_for(resource: pulumi.Resource) -> pulumi.ResourceOptions:
    """Options that make a component and every resource under it wait for ``resource``.

    ``depends_on`` on a component is not inherited by its children, so on its own it would order only the
    component; a transformation is inherited, and adds the dependency to each child as it is registered.
    """

    def add_dependency(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult:
        # merge() appends to the child's own depends_on list.
        return pulumi.ResourceTransformationResult(
            args.props, pulumi.ResourceOptions.merge(args.opts, pulumi.ResourceOptions(depends_on=[resource]))
        )

    return pulumi.ResourceOptions(depends_on=[resource], transformations=[add_dependency])


def _serving(config: StackConfig, opts: pulumi.ResourceOptions | None) -> dict[str, Any]:
    # The CLI shows these under the stack in `pulumi preview` / `pulumi up`.
    for note in plan_notes(plan_serving(config)):
        pulumi.log.warn(note)
    if config.models or config.router.enabled:
        # Several model groups and/or vLLM's router in front (docs/routing.md).
        from pulumi_vllm.kubernetes.router import serve_models

        return dict(serve_models(config, opts))
    if config.target == "docker":
        from pulumi_vllm.docker.serving import build_docker_stack

        return dict(build_docker_stack(config))
    from pulumi_vllm.kubernetes.serving import VllmServing

    serving = VllmServing(config.name, {"config": config}, opts)
    return {"baseUrl": serving.base_url, "servedModelName": serving.served_model_name, "gpus": serving.gpus}
