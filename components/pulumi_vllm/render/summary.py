"""The render summary: what a reviewer wants to know about a stack at a glance."""

from __future__ import annotations

from typing import Any


def summary_lines(rendered: Any) -> list[str]:
    """Model, GPUs, image, URL, topology, capacity and warnings of a rendered stack (and its GPU platform), then
    the cluster objects it names and does not create (``must exist in the cluster: PriorityClass ...``)."""
    from pulumi_vllm.render.references import must_exist_line

    lines = _stack_lines(rendered)
    must_exist = must_exist_line(rendered.run)
    return [*lines, must_exist] if must_exist else lines


def _stack_lines(rendered: Any) -> list[str]:
    """Everything of the summary but the objects that must exist."""
    platform = platform_lines(rendered)
    config = rendered.config
    plan = rendered.plan
    if config is None or plan is None:
        return platform
    if config.models:
        return platform + _models_lines(rendered, config)
    if config.pools:
        return platform + _pools_lines(rendered, config)
    topology = plan.topology
    outputs = rendered.run.outputs
    gpu_name = config.resources.gpu_resource_name
    if config.target == "docker":
        unit = "host"
        where = f"Ray across {topology.pods} hosts" if topology.multi_node else "one host"
    else:
        unit = "pod"
        where = f"Ray backend {config.parallelism.backend}" if topology.multi_node else "single node"
    lines = [
        f"model:    {config.model.id} (served as {plan.served_model_name})",
        f"gpus:     {plan.total_gpus} x {gpu_name} ({plan.gpus_per_pod} per {unit}, {config.replicas} replica(s))",
        (
            f"layout:   world size {topology.world_size} = tensor {topology.tensor_parallel_size}"
            f" x pipeline {topology.pipeline_parallel_size}"
            + (f" x data {topology.data_parallel_size}" if topology.data_parallel_size > 1 else "")
            + f"; {topology.pods} {unit}(s) per replica, {where}"
        ),
        f"image:    {config.engine.pinned_image}",
    ]
    engine = plan.engine
    if config.engine.kind != "vllm":
        routes = ", ".join(engine.openai_paths) or f"none (its own API; port {engine.port})"
        lines.append(f"engine:   {engine.kind} ({engine.title} {engine.version}); OpenAI routes: {routes}")
    elif config.engine.runner == "pooling":
        from pulumi_vllm.engine.router import runner_routes

        lines.append(f"runner:   pooling; routes: {', '.join(runner_routes('pooling'))}")
    if "baseUrl" in outputs:
        lines.append(f"url:      {outputs['baseUrl']}")
    if plan.capacity is not None:
        lines.append(plan.capacity.summary_line())
    elif not engine.vllm_based:
        lines.append(f"capacity: not estimated (engine.kind {engine.kind}: the planner's accounting is vLLM's)")
    elif config.resources.gpu_type is None:
        lines.append("capacity: not planned (set resources.gpuType)")
    else:
        lines.append(f"capacity: not planned (no model facts for {config.model.id})")
    if plan.autoscaling is not None:
        lines.append(plan.autoscaling.summary_line(plan.config))
    elif config.autoscaling.enabled and config.target == "kubernetes":
        scaling = config.autoscaling
        kv = "-" if scaling.kv_cache_usage_percent is None else f"{scaling.kv_cache_usage_percent:g}%"
        lines.append(
            f"autoscaling: replicas {scaling.min_replicas}-{scaling.max_replicas}, waiting requests per replica "
            f"{scaling.waiting_requests_per_replica:g}, KV-cache usage {kv} (the stack's keys and the defaults; "
            "autoscaling.objective derives them from a traffic objective)"
        )
    if config.batch.enabled:
        lines.append(f"batch:    Job {config.name}-batch ({plan.gpus_per_pod} GPU(s), runs once)")
    from pulumi_vllm.program import plan_notes

    lines += [f"warning:  {note}" for note in plan_notes(plan)]
    return platform + lines


def platform_lines(rendered: Any) -> list[str]:
    """``platform: nvidia-device-plugin 0.20.0, kuberay-operator 1.7.0`` (empty without a platform)."""
    if getattr(rendered, "cluster", None) is None:
        return []
    from pulumi_vllm.render.helm_files import HELM_DIR

    releases = sorted(
        f"{document['chart']} {document['version']}"
        for filename, document in rendered.documents
        if filename.startswith(f"{HELM_DIR}/") and isinstance(document, dict)
    )
    return [f"platform: {', '.join(releases) or 'no Helm releases'} (files in {HELM_DIR}/)"]


def _models_lines(rendered: Any, config: Any) -> list[str]:
    """A stack of several model groups: the totals, then one line (and its capacity) per group."""
    from pulumi_vllm.plan import plan_serving
    from pulumi_vllm.program import plan_notes

    plans = {key: plan_serving(member) for key, member in config.models.items()}
    total = sum(plan.total_gpus for plan in plans.values())
    gpu_name = config.resources.gpu_resource_name
    lines = [f"models:   {len(plans)} groups, {total} x {gpu_name} in all"]
    for key, plan in plans.items():
        member = plan.config
        lines.append(
            f"  {key}: {member.model.id} (served as {plan.served_model_name}), {plan.total_gpus} GPU(s): "
            f"{plan.gpus_per_pod} per pod, {member.replicas} replica(s)"
        )
        if plan.capacity is not None:
            lines.append(f"  {key} {plan.capacity.summary_line()}")
        lines += [f"warning:  {key}: {note}" for note in plan_notes(plan)]
    lines.append(f"image:    {config.engine.pinned_image}")
    outputs = rendered.run.outputs
    if "baseUrl" in outputs:
        lines.append(f"url:      {outputs['baseUrl']}")
    return lines


def _pools_lines(rendered: Any, config: Any) -> list[str]:
    """A disaggregated stack: the model, then each pool's GPUs, layout and capacity, the connector and the router."""
    from pulumi_vllm.engine.kv_transfer import kv_transfer_config
    from pulumi_vllm.plan import plan_serving
    from pulumi_vllm.program import plan_notes

    spec = config.disaggregation
    gpu_name = config.resources.gpu_resource_name
    lines = [f"model:    {config.model.id} (disaggregated: prefill and decode pools)"]
    total = 0
    for role, pool in config.pools.items():
        plan = plan_serving(pool)
        total += plan.total_gpus
        topology = plan.topology
        capacity = plan.capacity.summary_line().removeprefix("capacity: ") if plan.capacity else "not planned"
        lines.append(
            f"{role + ':':<9} {pool.replicas} x {topology.world_size} {gpu_name} (tensor {topology.tensor_parallel_size}"
            f" x pipeline {topology.pipeline_parallel_size}"
            + (f" x data {topology.data_parallel_size}" if topology.data_parallel_size > 1 else "")
            + f"); {capacity}"
        )
    connector = (kv_transfer_config(config.pools["decode"]) or {}).get("kv_connector", "none")
    lines += [
        f"gpus:     {total} x {gpu_name} in both pools",
        f"kv:       {connector} ({spec.connector} over {spec.transport}"
        + (f"; CPU tier {config.kv_cache.cpu_gib:g} GiB per server" if config.kv_cache.cpu_gib else "") + ")",
        f"image:    {config.engine.pinned_image}",
    ]
    outputs = rendered.run.outputs
    if "baseUrl" in outputs:
        lines.append(f"url:      {outputs['baseUrl']} (vLLM's router in P/D mode: {spec.prefill_policy} / {spec.decode_policy})")
    for role, pool in config.pools.items():
        lines += [f"warning:  {role} pool: {note}" for note in plan_notes(plan_serving(pool))]
    return lines

