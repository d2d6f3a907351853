"""The Pulumi program behind ``__main__.py``: read the stack config, build the serving, export outputs."""

from __future__ import annotations

from typing import Any

import pulumi

from pulumi_vllm.config import StackConfig, load_stack_config
from pulumi_vllm.config.models import check_model_groups
from pulumi_vllm.config.stack import ProgramConfig, load_program_parts
from pulumi_vllm.kubernetes.platform import PlatformNeedsArgs
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


def read_program_config() -> ProgramConfig:
    """The stack's serving, ``cluster`` and ``cloud`` sections, validated; raises :class:`ConfigError` on bad input."""
    return load_program_parts(runtime_config(), secret_keys=_secret_keys())


def platform_needs(config: StackConfig | None) -> PlatformNeedsArgs:
    """What the serving stack needs from the platform, for its ``auto`` operators."""
    if config is None:
        return {}
    return {
        # Ray Serve LLM runs as a KubeRay RayService.
        "kuberay": config.parallelism.backend == "kuberay" or config.engine.kind == "ray-serve-llm",
        "leaderworkerset": config.parallelism.backend == "leaderworkerset",
        "keda": config.autoscaling.enabled,
    }


def plan_notes(plan: ServingPlan) -> list[str]:
    """What the plan reports without failing: capacity warnings, rules it could not verify, and default requests
    the node type's share lowered."""
    from pulumi_vllm.kubernetes.pod_resources import node_fit_notes

    unverified = [finding.message for finding in plan.findings if not finding.verifiable]
    return [*plan.warnings, *unverified, *node_fit_notes(plan)]


def run() -> None:
    """Create the stack's resources and export its outputs."""
    parts = read_program_config()
    config = parts.serving
    # A serving that cannot run is refused (e.g. pods that fit no GPU node) before the cluster or platform exist.
    if config is not None:
        check_model_groups(config, plan_serving)  # each group's problem named where the file sets it
    plan = plan_serving(config) if config is not None else None
    outputs: dict[str, Any] = {}
    after = on_cluster = _cloud_cluster(parts, outputs)
    if parts.cluster is not None:
        from pulumi_vllm.kubernetes.platform import GpuPlatform

        platform = GpuPlatform(f"{parts.name}-platform", {"needs": platform_needs(config)}, on_cluster, spec=parts.cluster)
        # Operators and CRDs first: every serving resource waits for the platform's releases and objects.
        after = waits_for(platform) if on_cluster is None else pulumi.ResourceOptions.merge(on_cluster, waits_for(platform))
        outputs["platformReleases"] = platform.releases
        if platform.prometheus_url:
            outputs["prometheusUrl"] = platform.prometheus_url
    if config is not None and plan is not None:
        outputs.update(_serving(config, plan, after))
    for key, value in outputs.items():
        pulumi.export(key, value)


def _cloud_cluster(parts: ProgramConfig, outputs: dict[str, Any]) -> pulumi.ResourceOptions | None:
    """Create the stack's EKS or GKE cluster (``cloud`` section) and return options that put a component and all
    its children on the new cluster's Kubernetes provider; ``None`` when the stack has no ``cloud`` section.

    Every Kubernetes resource then depends on that provider, and the provider on the cluster and its nodes, so
    ``pulumi destroy`` removes the serving and the platform first and the cluster last.
    """
    if parts.cloud is None:
        return None
    from pulumi_vllm.cloud_clusters import cloud_cluster

    created = cloud_cluster(parts.name, parts.cloud, platform=parts.cluster)
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


def _serving(config: StackConfig, plan: ServingPlan, opts: pulumi.ResourceOptions | None) -> dict[str, Any]:
    # The CLI shows these under the stack in `pulumi preview` / `pulumi up`.
    for note in plan_notes(plan):
        pulumi.log.warn(note)
    if config.pools:
        from pulumi_vllm.capacity.disaggregation import disaggregation_notes, size_pools
        from pulumi_vllm.kubernetes.disaggregation import serve_disaggregated

        for note in plan_notes(plan_serving(config.pools["prefill"])):
            pulumi.log.warn(f"prefill pool: {note}")
        for note in disaggregation_notes(config, size_pools(config, plan_serving), plan.facts):
            pulumi.log.info(f"disaggregation: {note}")
        return serve_disaggregated(config, opts)
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
