"""The serving plan: everything about a stack that is decided before any resource is created.

:func:`plan_serving` validates the rules that span several keys (GPUs versus parallelism, model facts
versus tensor/pipeline parallel sizes, the pod topology) and derives names and sizes. Components, the
render summary and the Docker target all read the same plan.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from pulumi_vllm.capacity.autoscaling import DerivedAutoscaling, derive_autoscaling
from pulumi_vllm.capacity.planner import (
    CapacityPlan,
    plan_capacity,
    resolve_weight_dtype,
    speculative_config_from_args,
)
from pulumi_vllm.config import PROJECT, ClusterSpec, ConfigError, StackConfig
from pulumi_vllm.distributed.hosts import check_docker_hosts, docker_gpus_per_host
from pulumi_vllm.distributed.multinode import check_multinode
from pulumi_vllm.distributed.parallelism import (
    TENSOR_PARALLEL_RULE,
    Finding,
    Topology,
    TopologyError,
    check_expert_parallel,
    check_parallelism,
    plan_topology,
)
from pulumi_vllm.distributed.wide_ep import check_wide_ep
from pulumi_vllm.engine.container import cache_path
from pulumi_vllm.engine.plan_flags import folded_value
from pulumi_vllm.engine.profiles import EngineProfile, profile
from pulumi_vllm.models.facts import ModelFacts
from pulumi_vllm.models.resolve import resolve_model_facts
from pulumi_vllm.models.rope import apply_rope, effective_context, rope_warnings

FACTS_ANNOTATION_PREFIX = "vllm.pulumi.com/"
"""Annotations that stamp the model facts the rules used onto the rendered workloads."""


@dataclass(frozen=True)
class ServingPlan:
    """Derived facts of one stack."""

    config: StackConfig
    topology: Topology
    facts: ModelFacts | None
    facts_origin: str
    findings: tuple[Finding, ...]
    capacity: CapacityPlan | None
    """Predicted memory and KV cache per GPU (when the GPU type and model facts are known)."""
    warnings: tuple[str, ...]
    """Problems reported without failing validation."""
    deployment_name: str
    service_name: str
    cache_claim_name: str
    hf_token_secret_name: str
    api_key_secret_name: str
    autoscaling: DerivedAutoscaling | None = None
    """The KEDA targets ``autoscaling.objective`` derived (already in ``config.autoscaling``), and from what."""

    @property
    def gpus_per_pod(self) -> int:
        """GPUs each pod requests."""
        return self.topology.gpus_per_pod

    @property
    def pods_per_replica(self) -> int:
        """Pods of one model replica (1 on a single node; the Ray group size otherwise)."""
        return self.topology.pods

    @property
    def total_gpus(self) -> int:
        """GPUs the whole stack requests (every pod of every replica)."""
        return self.topology.world_size * self.config.replicas

    @property
    def gpus_at_once(self) -> int:
        """GPUs the stack's pods hold at the same time: the serving pods, plus the batch Job's pod when enabled."""
        batch = self.topology.world_size if self.config.batch.enabled else 0
        return self.total_gpus + batch

    @property
    def quota_gpus(self) -> int | None:
        """The GPU quota the stack creates (``None`` when it creates none)."""
        if not self.config.quota.enabled:
            return None
        return self.config.quota.gpus if self.config.quota.gpus is not None else self.gpus_at_once

    @property
    def engine(self) -> EngineProfile:
        """The engine's profile (``engine.kind``)."""
        return profile(self.config.engine.kind)

    @property
    def ray_pods(self) -> bool:
        """The serving runs in Ray head and worker pods: a multi-node vLLM topology, or Ray Serve LLM's RayService."""
        return self.topology.multi_node or self.config.engine.kind == "ray-serve-llm"

    @property
    def port(self) -> int:
        """Port the engine's server listens on inside the container."""
        return self.engine.port

    @property
    def served_model_name(self) -> str:
        """The name clients put in the ``model`` field."""
        return self.config.model.served_model_name or self.config.model.id

    @property
    def api_root(self) -> str:
        """``/v1`` for an engine with OpenAI routes; empty for one with its own API only (Megatron-LM)."""
        return "/v1" if self.engine.openai_paths else ""

    @property
    def base_url(self) -> str:
        """In-cluster base URL of the OpenAI API (the server's root for an engine without OpenAI routes)."""
        port = "" if self.config.service.port == 80 else f":{self.config.service.port}"
        return f"http://{self.service_name}.{self.config.namespace}.svc.cluster.local{port}{self.api_root}"

    def facts_annotations(self) -> dict[str, str]:
        """The model facts the rules used, as workload annotations (empty when the model is unknown)."""
        annotations = {
            f"{FACTS_ANNOTATION_PREFIX}model": self.config.model.id,
            f"{FACTS_ANNOTATION_PREFIX}tensor-parallel-size": str(self.topology.tensor_parallel_size),
            f"{FACTS_ANNOTATION_PREFIX}pipeline-parallel-size": str(self.topology.pipeline_parallel_size),
        }
        if self.config.resources.gpu_type:
            annotations[f"{FACTS_ANNOTATION_PREFIX}gpu-type"] = self.config.resources.gpu_type
        if self.facts is None:
            return annotations
        facts = self.facts
        annotations.update(
            {
                f"{FACTS_ANNOTATION_PREFIX}facts-source": facts.source or self.facts_origin,
                f"{FACTS_ANNOTATION_PREFIX}num-hidden-layers": str(facts.num_hidden_layers),
                f"{FACTS_ANNOTATION_PREFIX}num-attention-heads": str(facts.num_attention_heads),
                f"{FACTS_ANNOTATION_PREFIX}num-key-value-heads": str(facts.num_key_value_heads),
                f"{FACTS_ANNOTATION_PREFIX}head-dim": str(facts.head_dim),
                f"{FACTS_ANNOTATION_PREFIX}hidden-size": str(facts.hidden_size),
                f"{FACTS_ANNOTATION_PREFIX}vocab-size": str(facts.vocab_size),
                f"{FACTS_ANNOTATION_PREFIX}use-mla": "true" if facts.use_mla else "false",
            }
        )
        return annotations


def _facts(config: StackConfig) -> tuple[ModelFacts | None, str, tuple[str, ...]]:
    """The model's facts, where they came from, and notes; a model the catalog lacks is read from the Hub at
    ``model.revision`` with the token.

    The token is the stack's ``hfToken`` when the config holds its value, else ``HF_TOKEN`` (a token given
    to a component only as an Output is not known here). Why the Hub gave nothing is a note, which the plan
    keeps among its warnings (the render summary and ``pulumi up`` show them).
    """
    secret = config.hf_token.get_secret_value() if config.hf_token is not None else ""
    # render stands "[secret]" in for a secret it cannot decrypt: not a token.
    token = secret if secret and secret != "[secret]" else os.environ.get("HF_TOKEN") or None
    try:
        resolved = resolve_model_facts(
            config.model.id, config.model.facts, config.model.config_json,
            revision=config.model.revision, token=token,
            # llama.cpp and Ollama load GGUF files: their repositories have no config.json to read.
            hub=config.engine.kind not in ("llama.cpp", "ollama"),
        )
    except ValueError as error:
        key = "model.facts" if config.model.facts else "model.configJson"
        raise ConfigError(f"{PROJECT}:{key}: {error}") from None
    return resolved.facts, resolved.origin, tuple(f"{PROJECT}:model.id: {note}" for note in resolved.notes)


VLLM_TO_STACK_KEYS = {
    "gpu_memory_utilization": "engine.gpuMemoryUtilization",
    "max_model_len": "engine.maxModelLen",
    "kv_cache_dtype": "engine.kvCacheDtype",
    "tensor_parallel_size": "parallelism.tensorParallelSize",
    "pipeline_parallel_size": "parallelism.pipelineParallelSize",
    "data_parallel_size": "parallelism.dataParallelSize",
    "gpus_per_pod": "parallelism.gpusPerPod",
    "gpus_per_node": "parallelism.gpusPerNode",
}
"""Engine argument names (vLLM's and the rules') and the stack keys that set them."""


_ENGINE_NAME = re.compile(r"(`?)\b(" + "|".join(VLLM_TO_STACK_KEYS) + r")\b(`?)")


def in_stack_terms(message: str) -> str:
    """A message in the user's terms: an engine argument quoted in backticks (vLLM's own wording) is kept and
    followed by the stack key that sets it; a bare one becomes the stack key.

    Applied where the plan turns the rules' messages into config errors: the same rules speak of vLLM flags
    when the policy pack judges other people's manifests, so they keep their own names.
    """

    def replace(match: re.Match[str]) -> str:
        key = VLLM_TO_STACK_KEYS[match.group(2)]
        if match.group(1) and match.group(3):
            return f"`{match.group(2)}` ({key})"
        return f"{match.group(1)}{key}{match.group(3)}"

    return _ENGINE_NAME.sub(replace, message)


def _check_context_length(config: StackConfig, facts: ModelFacts | None) -> None:
    """A context longer than the model's own is refused as vLLM refuses it (vllm/config/model.py,
    ``_get_and_verify_max_len``), before the capacity check would blame the GPU."""
    wanted = config.engine.max_model_len
    longest, how = effective_context(facts, config.engine.hf_overrides)
    if wanted is None or longest is None or wanted <= longest:
        return
    if config.engine.env.get("VLLM_ALLOW_LONG_MAX_MODEL_LEN", "").lower() in ("1", "true"):
        return  # the user asked vLLM to accept it (vLLM then only warns)
    raise ConfigError(
        f"{PROJECT}:engine.maxModelLen: {wanted} is not accepted for {config.model.id}: User-specified "
        f"max_model_len ({wanted}) is greater than the derived max_model_len ({longest}: {how}). Use at most "
        f"{longest}; or extend the context by RoPE scaling in engine.hfOverrides (e.g. rope_parameters "
        '{"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": <the trained context>}, with '
        "rope_theta from the model's config.json), for a model trained for it; or, knowing the risk, set "
        "engine.env.VLLM_ALLOW_LONG_MAX_MODEL_LEN to 1"
    )


def _capacity(
    config: StackConfig, facts: ModelFacts | None, topology: Topology
) -> tuple[CapacityPlan | None, tuple[str, ...]]:
    gpu_type = config.resources.gpu_type
    conflict = config.resources.gpu_selector_conflict()
    if conflict:
        raise ConfigError(conflict)
    if gpu_type is None or facts is None or config.capacity.check == "off":
        return None, ()
    if not profile(config.engine.kind).vllm_based:
        # The KV-cache accounting is vLLM's: another engine's memory use is not estimated.
        return None, ()
    try:
        weight_dtype = resolve_weight_dtype(facts, config.engine.quantization, config.model.id)
    except ValueError as error:
        raise ConfigError(
            f"{PROJECT}:engine.quantization: {config.engine.quantization!r} is not accepted: {error}"
        ) from None
    from pulumi_vllm.config.mig import planned_gpu

    gpu = planned_gpu(config.resources.gpu_resource_name, gpu_type)  # a MIG partition: its slice, not the card
    try:
        capacity = plan_capacity(
            facts,
            gpu,
            tensor_parallel_size=topology.tensor_parallel_size,
            pipeline_parallel_size=topology.pipeline_parallel_size,
            max_model_len=config.engine.max_model_len,
            gpu_memory_utilization=config.engine.gpu_memory_utilization,
            kv_cache_dtype=config.engine.kv_cache_dtype,
            weight_dtype=weight_dtype,
            model_id=config.model.id,
            speculative_config=speculative_config_from_args(config.engine.extra_args),
            # One data-parallel rank; its MoE layers split over every TP x DP rank (whole experts with EP).
            data_parallel_size=topology.data_parallel_size,
            enable_expert_parallel=config.parallelism.enable_expert_parallel,
            # Folded flags of engine.extraArgs.
            max_num_seqs=folded_value(config.engine.extra_args, "max_num_seqs"),
            max_num_batched_tokens=folded_value(config.engine.extra_args, "max_num_batched_tokens"),
        )
    except ValueError as error:
        raise ConfigError(f"{PROJECT}:resources.gpuType: {gpu_type!r} is not accepted: {error}") from None
    problem = ""
    if not capacity.fits or capacity.max_concurrency < config.capacity.min_concurrency:
        from pulumi_vllm.capacity.remedies import explain

        # The real reason and the remedies that fit, before vLLM's own message (the same text as size and the pack).
        refusal = explain(
            capacity, facts, gpu, gpus_per_node=config.parallelism.gpus_per_node,
            min_concurrency=config.capacity.min_concurrency,
        )
        if not capacity.fits:
            problem = f"{config.model.id} does not fit: {refusal.text()}"
        else:
            problem = (
                f"predicted concurrency {capacity.max_concurrency:.2f}x at {capacity.max_model_len} tokens is below "
                f"capacity.minConcurrency ({config.capacity.min_concurrency:g}): {refusal.text()}"
            )
    problem = in_stack_terms(problem)
    if problem and config.capacity.check == "error":
        raise ConfigError(
            f"{PROJECT}:resources.gpuType: {gpu_type!r} is not accepted for this layout: {problem} "
            "(set capacity.check to 'warning' to deploy anyway)"
        )
    return capacity, ((problem,) if problem else ())


def plan_serving(config: StackConfig) -> ServingPlan:
    """Check the rules that span several keys and derive the plan; raises :class:`ConfigError`."""
    if config.pools:
        # A disaggregated stack is served by its pools, each planned (problems named in its pool); the decode
        # pool's plan stands for the stack (docs/disaggregation.md).
        from pulumi_vllm.config.disaggregation import check_pools

        check_pools(config, plan_serving)
        return plan_serving(config.pools["decode"])
    parallel = config.parallelism
    tensor, pipeline = parallel.tensor_parallel_size, parallel.pipeline_parallel_size
    facts, origin, facts_notes = _facts(config)
    # The context vLLM derives under engine.hfOverrides (RoPE scaling) is the one the plan sizes.
    facts = apply_rope(facts, config.engine.hf_overrides)
    _check_data_parallel(config, facts)
    _check_runner(config)
    findings = tuple(check_parallelism(facts, tensor, pipeline, model=config.model.id))
    if not profile(config.engine.kind).splits_heads:
        # Layer and row splits (llama.cpp, Ollama) do not divide attention heads.
        findings = tuple(finding for finding in findings if finding.rule != TENSOR_PARALLEL_RULE)
    errors = [finding for finding in findings if finding.verifiable]
    if errors:
        key = (
            "parallelism.pipelineParallelSize"
            if all(finding.rule.startswith("pipeline") for finding in errors)
            else "parallelism.tensorParallelSize"
        )
        given = pipeline if key.endswith("pipelineParallelSize") else tensor
        details = "\n  ".join(in_stack_terms(finding.message) for finding in errors)
        raise ConfigError(f"{PROJECT}:{key}: {given} is not accepted for {config.model.id}:\n  {details}")

    gpus_per_pod = parallel.gpus_per_pod
    if config.resources.gpu_count is not None:
        if gpus_per_pod is not None and gpus_per_pod != config.resources.gpu_count:
            raise ConfigError(
                f"{PROJECT}:resources.gpuCount: {config.resources.gpu_count} is not accepted: it differs from "
                f"parallelism.gpusPerPod ({gpus_per_pod}); set one of them"
            )
        gpus_per_pod = config.resources.gpu_count
    if config.target == "docker" and gpus_per_pod is None:
        # Docker hosts are the Ray nodes: their number, not a node size, decides the layout.
        gpus_per_pod = docker_gpus_per_host(config)
    try:
        topology = plan_topology(
            tensor, pipeline, gpus_per_pod, parallel.gpus_per_node, data_parallel_size=parallel.data_parallel_size,
            # Wide expert parallelism: data-parallel ranks over a LeaderWorkerSet's Ray cluster (docs/disaggregation.md).
            data_parallel_across_nodes=parallel.backend == "leaderworkerset" and config.target == "kubernetes",
        )
    except TopologyError as error:
        key = "resources.gpuCount" if config.resources.gpu_count is not None else "parallelism"
        raise ConfigError(f"{PROJECT}:{key}: {in_stack_terms(str(error))}") from None
    _check_engine(config, topology)
    check_wide_ep(config, topology)
    _check_one_value_per_flag(config, topology)
    if config.target == "docker":
        check_docker_hosts(config, topology)
    if (
        topology.multi_node
        and config.target == "kubernetes"
        and config.engine.kind == "vllm"  # Ray Serve LLM replicates inside its RayService
        and config.replicas > 1
        and config.parallelism.backend != "leaderworkerset"  # LWS replicates whole groups natively
    ):
        raise ConfigError(
            f"{PROJECT}:replicas: {config.replicas} is not accepted for a multi-node model "
            f"({topology.pods} pods per replica) with the {config.parallelism.backend} backend: use 1, "
            "one stack per replica, or parallelism.backend leaderworkerset"
        )

    if topology.multi_node and config.target == "kubernetes" and config.engine.kind == "vllm":
        check_multinode(config)

    _check_context_length(config, facts)
    capacity, warnings = _capacity(config, facts, topology)
    config, derived = derive_autoscaling(
        config, facts, capacity, topology.data_parallel_size,
        max_num_seqs=folded_value(config.engine.extra_args, "max_num_seqs"),
        max_num_batched_tokens=folded_value(config.engine.extra_args, "max_num_batched_tokens"),
        vllm_based=profile(config.engine.kind).vllm_based,
    )
    if config.autoscaling.objective is not None and not config.autoscaling.enabled:
        warnings = (*warnings, "autoscaling.objective is ignored while autoscaling.enabled is false")
    # Why the facts came from where they did (the Hub unreachable, a stale cached copy) shows in the render.
    warnings = (*facts_notes, *warnings, *rope_warnings(config.engine.hf_overrides))
    if config.batch.enabled and topology.multi_node:
        raise ConfigError(
            f"{PROJECT}:batch.enabled: true is not accepted for a multi-node model ({topology.pods} pods): "
            "the batch Job runs in one pod; use a model that fits one node, or run batches against the server"
        )
    name = config.name
    plan = ServingPlan(
        config=config,
        topology=topology,
        facts=facts,
        facts_origin=origin,
        findings=findings,
        capacity=capacity,
        warnings=warnings,
        deployment_name=name,
        service_name=name,
        cache_claim_name=config.cache.existing_claim or f"{name}-model-cache",
        hf_token_secret_name=config.hf_token_secret.name if config.hf_token_secret else f"{name}-hf-token",
        api_key_secret_name=f"{name}-api-key",
        autoscaling=derived,
    )
    _check_quota(plan)
    if config.cluster is not None:
        check_platform(plan, config.cluster)
    return plan


def _check_data_parallel(config: StackConfig, facts: ModelFacts | None) -> None:
    """Data and expert parallelism are vLLM's: refuse them for another engine, and expert parallel for a dense model."""
    parallel = config.parallelism
    vllm_serves = config.engine.kind == "vllm"
    for key, given in (
        ("parallelism.dataParallelSize", parallel.data_parallel_size if parallel.data_parallel_size > 1 else None),
        ("parallelism.enableExpertParallel", "true" if parallel.enable_expert_parallel else None),
    ):
        if given is not None and not vllm_serves:
            raise ConfigError(
                f"{PROJECT}:{key}: {given} is not accepted with engine.kind {config.engine.kind!r}: it is vLLM's "
                f"{'--data-parallel-size' if 'data' in key else '--enable-expert-parallel'}; use engine.kind vllm, "
                "or replicas for more copies"
            )
    for finding in check_expert_parallel(facts, parallel.enable_expert_parallel, config.model.id):
        if finding.verifiable:
            raise ConfigError(
                f"{PROJECT}:parallelism.enableExpertParallel: true is not accepted for {config.model.id}: "
                f"{finding.message} Remove it (tensor and data parallelism work for dense models)"
            )


def _check_one_value_per_flag(config: StackConfig, topology: Topology) -> None:
    """No flag twice with two values on the rendered vLLM command line (vLLM's parser would keep the last).

    The flags the plan depends on are refused by name already (``engine.plan_flags``); this catches every
    other flag the stack renders itself (``--served-model-name``, ``--revision``, the LoRA flags, ...).
    """
    if config.engine.kind != "vllm" or not config.engine.extra_args:
        return
    from pulumi_vllm.engine.argv import engine_args_from_config, vllm_command
    from pulumi_vllm.engine.commandline import VllmCommand as CommandRead

    rendered = vllm_command(engine_args_from_config(config, multi_node=topology.multi_node))
    conflicts = CommandRead("serve", rendered.command, rendered.args).conflicting_flags
    if conflicts:
        flag, values = next(iter(conflicts.items()))
        raise ConfigError(
            f"{PROJECT}:engine.extraArgs: {config.engine.extra_args!r} is not accepted: it gives {flag} "
            f"{values[-1]!r}, and the stack's own keys already give {flag} {values[0]!r}; vLLM keeps the last "
            "one. Remove the flag from engine.extraArgs and set the stack key for it"
        )


def _check_runner(config: StackConfig) -> None:
    """A pooling model (``engine.runner: pooling``) serves no completions: the load test would only measure 404s."""
    if config.engine.runner == "pooling" and config.load_test.enabled:
        raise ConfigError(
            f"{PROJECT}:loadTest.enabled: true is not accepted with engine.runner 'pooling': the load test runs "
            "vllm bench serve against /v1/completions, which a pooling model does not serve (it answers "
            "/v1/embeddings, /pooling, /score, /rerank); remove loadTest or set loadTest.enabled: false"
        )


def _check_engine(config: StackConfig, topology: Topology) -> None:
    """Refuse what the chosen engine cannot do with the rest of the stack, every problem in one message."""
    from pulumi_vllm.engine.profiles.stack import engine_problems

    problems = engine_problems(config, topology, cache_path=cache_path(config.security.run_as_non_root))
    if len(problems) == 1:
        raise ConfigError(problems[0])
    if problems:
        raise ConfigError("invalid stack configuration:\n  " + "\n  ".join(problems))


def check_platform(plan: ServingPlan, cluster: ClusterSpec) -> None:
    """Refuse a serving stack whose GPU pods no GPU node of the platform could take (taint, label, quota)."""
    from pulumi_vllm.platform_plan.agreement import ServingPods, serving_problems

    config = plan.config
    if config.target != "kubernetes":
        raise ConfigError(
            f"{PROJECT}:cluster: is not accepted with target {config.target!r}: the GPU platform is installed on a "
            "Kubernetes cluster; remove the cluster section or use target kubernetes"
        )
    pods = ServingPods(
        namespace=config.namespace,
        tolerations=config.resources.pod_tolerations(plan.gpus_per_pod),
        node_selector=config.resources.node_selector,
        gpu_resource_name=config.resources.gpu_resource_name,
        gpus_per_pod=plan.gpus_per_pod,
        gpus_at_once=plan.gpus_at_once,
        monitoring=config.monitoring.enabled,
        autoscaling=config.autoscaling.enabled,
    )
    problems = serving_problems(cluster, pods)
    if problems:
        raise ConfigError("the serving pods do not fit the GPU platform's nodes:\n  " + "\n  ".join(problems))


def _check_quota(plan: ServingPlan) -> None:
    """A quota below the stack's own GPUs would leave its pods refused at admission (``exceeded quota``)."""
    quota = plan.config.quota
    needed = plan.gpus_at_once
    if quota.enabled and quota.gpus is not None and quota.gpus < needed:
        parts = f"{plan.config.replicas} replica(s) x {plan.topology.world_size} GPU(s)"
        if plan.config.batch.enabled:
            parts += f" + the batch Job's {plan.topology.world_size}"
        raise ConfigError(
            f"{PROJECT}:quota.gpus: {quota.gpus} is not accepted: the stack itself requests {needed} GPU(s) "
            f"({parts}); its pods would be refused with 'exceeded quota'. Use at least {needed}, or leave "
            "quota.gpus unset to cap the namespace at what the stack requests"
        )
