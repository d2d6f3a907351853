"""The one builder of vLLM command lines.

Every target (the Kubernetes Deployment, the Ray head, the Docker container, the batch Job) calls
:func:`vllm_command`; nothing else in the package writes a vLLM flag.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal

from pulumi_vllm.config import StackConfig
from pulumi_vllm.distributed.wide_ep import ranks_per_pod
from pulumi_vllm.engine.container import VllmCommand
from pulumi_vllm.engine.kv_transfer import kv_transfer_json
from pulumi_vllm.models.rope import rendered_overrides

__all__ = ["BATCH_COMMAND", "SERVE_COMMAND", "VLLM_PORT", "EngineArgs", "VllmCommand", "engine_args_from_config",
           "vllm_command"]

VLLM_PORT = 8000
"""Port vLLM's OpenAI server listens on inside the container."""

SERVE_COMMAND: tuple[str, ...] = ("vllm", "serve")
"""Entrypoint of the OpenAI-compatible server (``vllm serve MODEL [flags]``)."""

BATCH_COMMAND: tuple[str, ...] = ("vllm", "run-batch")
"""Entrypoint of vLLM's offline batch mode (OpenAI batch JSONL in, JSONL out); the older
``python -m vllm.entrypoints.openai.run_batch`` is a deprecated alias of it."""


@dataclass(frozen=True)
class EngineArgs:
    """The engine settings every vLLM entrypoint shares, in vLLM's own terms."""

    model: str
    revision: str | None = None
    served_model_name: str | None = None
    trust_remote_code: bool = False
    dtype: str = "auto"
    max_model_len: int | None = None
    gpu_memory_utilization: float = 0.9
    kv_cache_dtype: str = "auto"
    quantization: str | None = None
    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1
    data_parallel_size: int = 1
    """Copies of the model behind the one server (``--data-parallel-size``, rendered when above 1)."""
    data_parallel_size_local: int | None = None
    """Data-parallel ranks in each pod when the ranks span several pods (``--data-parallel-size-local``, with
    ``--data-parallel-backend ray``: the Ray head places the ranks on the pods' Ray nodes)."""
    enable_expert_parallel: bool = False
    """Shard a mixture-of-experts model's experts over the tensor x data parallel GPUs (``--enable-expert-parallel``)."""
    hf_overrides: str | None = None
    """``--hf-overrides``: the model-config overrides as one JSON object (keys sorted), or ``None``."""
    runner: Literal["generate", "pooling"] = "generate"
    """``--runner`` (rendered for ``pooling`` only; ``generate`` is what vLLM picks for a generative model)."""
    convert: str | None = None
    """``--convert`` (``embed``, ``classify``) for the pooling runner."""
    distributed_executor_backend: Literal["ray", "mp"] | None = None
    shutdown_timeout: int = 0
    """Seconds vLLM lets in-flight requests finish after SIGTERM (``--shutdown-timeout``); 0 aborts them."""
    lora_modules: tuple[tuple[str, str], ...] = ()
    """LoRA adapters served beside the base model, as (name, Hugging Face id or path) (``--lora-modules``)."""
    enable_lora: bool = False
    """LoRA support without adapters at start (for adapters loaded at run time)."""
    max_loras: int | None = None
    max_lora_rank: int | None = None
    kv_transfer_config: str | None = None
    """``--kv-transfer-config``: the KV connector of a prefill/decode pool or a KV-cache tier, as JSON (see
    :mod:`pulumi_vllm.engine.kv_transfer`), or ``None``."""
    extra_args: tuple[str, ...] = field(default_factory=tuple)


def engine_args_from_config(config: StackConfig, *, multi_node: bool = False) -> EngineArgs:
    """The engine settings of a stack; ``multi_node`` selects Ray as the executor backend."""
    return EngineArgs(
        model=config.model.id,
        revision=config.model.revision,
        served_model_name=config.model.served_model_name,
        trust_remote_code=config.model.trust_remote_code,
        dtype=config.engine.dtype,
        max_model_len=config.engine.max_model_len,
        gpu_memory_utilization=config.engine.gpu_memory_utilization,
        kv_cache_dtype=config.engine.kv_cache_dtype,
        quantization=config.engine.quantization,
        tensor_parallel_size=config.parallelism.tensor_parallel_size,
        pipeline_parallel_size=config.parallelism.pipeline_parallel_size,
        data_parallel_size=config.parallelism.data_parallel_size,
        data_parallel_size_local=ranks_per_pod(config) if multi_node else None,
        enable_expert_parallel=config.parallelism.enable_expert_parallel,
        hf_overrides=(
            json.dumps(rendered_overrides(config.engine.hf_overrides), sort_keys=True, separators=(",", ":"))
            if config.engine.hf_overrides else None
        ),
        runner=config.engine.runner,
        convert=config.engine.convert,
        distributed_executor_backend="ray" if multi_node else None,
        lora_modules=tuple(config.adapters.items()),
        enable_lora=config.lora.runtime_loading,
        max_loras=config.lora.max_loras or (len(config.adapters) or None),
        max_lora_rank=config.lora.max_lora_rank if config.adapters or config.lora.runtime_loading else None,
        kv_transfer_config=kv_transfer_json(config),
        extra_args=tuple(config.engine.extra_args),
    )


def _format_number(value: float) -> str:
    # repr keeps every digit the user wrote (":g" would round to six significant digits).
    return repr(float(value))


def _engine_flags(engine: EngineArgs) -> list[str]:
    flags: list[str] = []
    if engine.runner != "generate":
        flags += ["--runner", engine.runner]
    if engine.convert:
        flags += ["--convert", engine.convert]
    if engine.revision:
        flags += ["--revision", engine.revision]
    if engine.served_model_name:
        flags += ["--served-model-name", engine.served_model_name]
    if engine.trust_remote_code:
        flags.append("--trust-remote-code")
    if engine.dtype != "auto":
        flags += ["--dtype", engine.dtype]
    if engine.hf_overrides:
        flags += ["--hf-overrides", engine.hf_overrides]
    if engine.max_model_len is not None:
        flags += ["--max-model-len", str(engine.max_model_len)]
    flags += ["--gpu-memory-utilization", _format_number(engine.gpu_memory_utilization)]
    if engine.kv_cache_dtype != "auto":
        flags += ["--kv-cache-dtype", engine.kv_cache_dtype]
    if engine.quantization:
        flags += ["--quantization", engine.quantization]
    flags += ["--tensor-parallel-size", str(engine.tensor_parallel_size)]
    flags += ["--pipeline-parallel-size", str(engine.pipeline_parallel_size)]
    if engine.data_parallel_size > 1:
        flags += ["--data-parallel-size", str(engine.data_parallel_size)]
        if engine.data_parallel_size_local is not None:
            flags += ["--data-parallel-size-local", str(engine.data_parallel_size_local),
                      "--data-parallel-backend", "ray"]
    if engine.enable_expert_parallel:
        flags.append("--enable-expert-parallel")
    if engine.distributed_executor_backend:
        flags += ["--distributed-executor-backend", engine.distributed_executor_backend]
    if engine.shutdown_timeout:
        flags += ["--shutdown-timeout", str(engine.shutdown_timeout)]
    flags += _lora_flags(engine)
    if engine.kv_transfer_config:
        flags += ["--kv-transfer-config", engine.kv_transfer_config]
    flags += list(engine.extra_args)
    return flags


def _lora_flags(engine: EngineArgs) -> list[str]:
    if not engine.lora_modules and not engine.enable_lora:
        return []
    flags = ["--enable-lora"]
    if engine.lora_modules:
        flags += ["--lora-modules", *(f"{name}={source}" for name, source in engine.lora_modules)]
    if engine.max_loras is not None:
        flags += ["--max-loras", str(engine.max_loras)]
    if engine.max_lora_rank is not None:
        flags += ["--max-lora-rank", str(engine.max_lora_rank)]
    return flags


def vllm_command(
    engine: EngineArgs,
    *,
    mode: Literal["serve", "batch"] = "serve",
    host: str = "0.0.0.0",
    port: int = VLLM_PORT,
    batch_input: str | None = None,
    batch_output: str | None = None,
) -> VllmCommand:
    """The vLLM command line for ``engine``.

    ``serve`` runs the OpenAI-compatible server on ``host:port``; ``batch`` runs offline batch
    inference from ``batch_input`` to ``batch_output`` (both OpenAI batch JSONL files).
    The API key is never a flag: vLLM reads it from the ``VLLM_API_KEY`` environment variable,
    which the targets fill from a secret.
    """
    if mode == "serve":
        args = [engine.model, "--host", host, "--port", str(port), *_engine_flags(engine)]
        return VllmCommand(command=SERVE_COMMAND, args=tuple(args))
    if not batch_input or not batch_output:
        raise ValueError("batch mode needs batch_input and batch_output")
    args = ["-i", batch_input, "-o", batch_output, "--model", engine.model, *_engine_flags(engine)]
    return VllmCommand(command=BATCH_COMMAND, args=tuple(args))
