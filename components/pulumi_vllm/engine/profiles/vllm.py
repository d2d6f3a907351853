"""vLLM's OpenAI-compatible server: the default engine; its command line is :func:`pulumi_vllm.engine.argv.vllm_command`."""

from __future__ import annotations

from dataclasses import dataclass

from pulumi_vllm.config.base import DEFAULT_IMAGE, VLLM_VERSION
from pulumi_vllm.engine.argv import VLLM_PORT, EngineArgs, vllm_command
from pulumi_vllm.engine.profiles.base import ContainerCommand, EngineProfile, ServeSpec


@dataclass(frozen=True)
class VllmProfile(EngineProfile):
    """vLLM (``vllm serve``)."""

    def command(self, spec: ServeSpec) -> ContainerCommand:
        """``vllm serve MODEL --host 0.0.0.0 --port PORT`` and the engine flags (the one vLLM builder)."""
        engine = EngineArgs(
            model=spec.model,
            revision=spec.revision,
            served_model_name=spec.served_model_name if spec.served_model_name != spec.model else None,
            trust_remote_code=spec.trust_remote_code,
            dtype=spec.dtype,
            max_model_len=spec.max_model_len,
            gpu_memory_utilization=spec.gpu_memory_utilization,
            kv_cache_dtype=spec.kv_cache_dtype,
            quantization=spec.quantization,
            tensor_parallel_size=spec.tensor_parallel_size,
            pipeline_parallel_size=spec.pipeline_parallel_size,
            extra_args=spec.extra_args,
        )
        return vllm_command(engine, port=spec.port)


PROFILE = VllmProfile(
    kind="vllm",
    title="vLLM",
    image=DEFAULT_IMAGE,
    version=VLLM_VERSION,
    docs="https://docs.vllm.ai/en/stable/cli/serve.html",
    port=VLLM_PORT,
    health_path="/health",
    ready_path="/health",
    metrics_path="/metrics",
    openai_paths=("/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/models"),
    model_source="a Hugging Face model id (downloaded into the cache) or a path inside the container",
    parallelism="--tensor-parallel-size and --pipeline-parallel-size; across nodes with Ray",
    vllm_based=True,
    pipeline=True,
    docker=True,
    multi_node=True,
    api_key_env="VLLM_API_KEY",
    honours=frozenset(
        {"dtype", "max_model_len", "gpu_memory_utilization", "kv_cache_dtype", "quantization", "extra_args"}
    ),
)
