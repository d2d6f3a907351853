"""A stack's engine: its :class:`ServeSpec`, and what the other sections cannot do with an engine other than vLLM."""

from __future__ import annotations

from pulumi_vllm.config import PROJECT, StackConfig
from pulumi_vllm.distributed.parallelism import Topology
from pulumi_vllm.engine.profiles import EngineProfile, ServeSpec, profile

# engine fields a profile may map, with their defaults and the key as the user writes it.
_ENGINE_FIELDS: dict[str, tuple[object, str]] = {
    "dtype": ("auto", "engine.dtype"),
    "max_model_len": (None, "engine.maxModelLen"),
    "gpu_memory_utilization": (0.9, "engine.gpuMemoryUtilization"),
    "kv_cache_dtype": ("auto", "engine.kvCacheDtype"),
    "quantization": (None, "engine.quantization"),
    "extra_args": ([], "engine.extraArgs"),
}
# Engines whose weights come from the Hugging Face Hub into HF_HOME, so that the pre-download fills their cache.
_HUB_ENGINES = frozenset({"vllm", "tgi", "tensorrt-llm", "triton", "ray-serve-llm", "deepspeed-mii"})


def serve_spec(config: StackConfig, *, gpus: int, cache_path: str) -> ServeSpec:
    """The stack's serving settings in engine-neutral terms, for ``gpus`` GPUs per pod and the cache at ``cache_path``."""
    engine = config.engine
    return ServeSpec(
        model=config.model.id,
        served_model_name=config.model.served_model_name or config.model.id,
        revision=config.model.revision,
        model_file=engine.model_file,
        trust_remote_code=config.model.trust_remote_code,
        dtype=engine.dtype,
        max_model_len=engine.max_model_len,
        gpu_memory_utilization=engine.gpu_memory_utilization,
        kv_cache_dtype=engine.kv_cache_dtype,
        quantization=engine.quantization,
        tensor_parallel_size=config.parallelism.tensor_parallel_size,
        pipeline_parallel_size=config.parallelism.pipeline_parallel_size,
        gpus=gpus,
        port=profile(engine.kind).port,
        cache_path=cache_path,
        extra_args=tuple(engine.extra_args),
        api_key=config.api_key is not None,
        replicas=config.replicas,
    )


def engine_problems(config: StackConfig, topology: Topology, *, cache_path: str) -> list[str]:
    """What the stack asks of its engine that the engine (or this package with it) cannot do; empty for vLLM."""
    kind = config.engine.kind
    if kind == "vllm":
        return []
    engine = profile(kind)
    spec = serve_spec(config, gpus=topology.gpus_per_pod, cache_path=cache_path)
    problems = [f"{PROJECT}:{message}" for message in engine.problems(spec)]
    problems += _unmapped(config, engine)
    problems += _sections(config, engine, topology)
    return problems


def _unmapped(config: StackConfig, engine: EngineProfile) -> list[str]:
    problems = []
    for field, (default, key) in _ENGINE_FIELDS.items():
        value = getattr(config.engine, field)
        if value != default and field not in engine.honours:
            problems.append(
                f"{PROJECT}:{key}: {value!r} is not accepted with engine.kind {engine.kind!r}: {engine.title} has no such "
                f"setting here; remove it{' (or pass its own flags in engine.extraArgs)' if 'extra_args' in engine.honours else ''}"
            )
    if config.engine.model_file is not None and engine.kind in {"ollama", "tgi", "ray-serve-llm", "vllm"}:
        problems.append(
            f"{PROJECT}:engine.modelFile: {config.engine.model_file!r} is not accepted with engine.kind {engine.kind!r}: "
            "it loads the whole model.id; remove engine.modelFile"
        )
    if not engine.image and not config.engine.image:
        problems.append(
            f"{PROJECT}:engine.image: is required with engine.kind {engine.kind!r}: {engine.title} publishes no serving "
            "image; set an image you built with it, pinned to a tag or digest"
        )
    return problems


def _sections(config: StackConfig, engine: EngineProfile, topology: Topology) -> list[str]:
    kind, title = engine.kind, engine.title
    problems: list[str] = []

    def refuse(key: str, value: object, why: str) -> None:
        problems.append(f"{PROJECT}:{key}: {value} is not accepted with engine.kind {kind!r}: {why}")

    if config.target == "docker" and not engine.docker:
        refuse("target", "'docker'", f"{title} runs on Kubernetes here; the Docker target serves vllm, llama.cpp, ollama and tgi")
    if topology.multi_node and not engine.multi_node:
        refuse(
            "parallelism", f"{topology.world_size} GPUs over {topology.pods} pods",
            f"{title} runs in one pod here; use at most parallelism.gpusPerNode GPUs (tensor x pipeline), or engine.kind "
            "vllm or ray-serve-llm across nodes",
        )
    if config.api_key is not None and engine.api_key_env is None:
        refuse("apiKey", "[secret]", f"{title} has no API key of its own; remove apiKey and put an authenticating gateway in front")
    if config.batch.enabled:
        refuse("batch.enabled", "true", "the batch Job runs vLLM's batch runner; use engine.kind vllm for batches")
    if config.adapters or config.lora.runtime_loading:
        refuse("adapters", sorted(config.adapters) or "runtime loading", "LoRA adapters are served by vLLM here; use engine.kind vllm")
    if config.autoscaling.enabled:
        refuse("autoscaling.enabled", "true", "the KEDA triggers read vLLM's metrics; use engine.kind vllm")
    if config.monitoring.enabled:
        refuse("monitoring.enabled", "true", "the alerts and dashboard read vLLM's metrics; use engine.kind vllm")
    if config.warmup.enabled and kind not in _HUB_ENGINES:
        refuse("warmup.enabled", "true", f"the pre-download fills the Hugging Face cache, which {title} does not read")
    if config.load_test.enabled and not engine.openai_paths:
        refuse("loadTest.enabled", "true", f"the load test speaks the OpenAI API, which {title} does not serve")
    return problems
