"""Megatron-LM's text generation server, ``tools/run_text_generation_server.py`` under ``torchrun``.

The checkpoint is ``engine.modelFile``, a Megatron checkpoint folder inside the model cache, loaded with
``--use-checkpoint-args`` (the architecture comes from the checkpoint); the tokenizer is ``model.id``, a Hugging
Face tokenizer (``--tokenizer-type HuggingFaceTokenizer``). One process per GPU: ``--nproc-per-node`` is the
tensor-parallel size times the pipeline-parallel size.

The server speaks Megatron's own API (``PUT /api`` with ``prompts`` and ``tokens_to_generate``, and ``POST
/completions``), not OpenAI's ``/v1`` routes, and has no route that answers ``GET``: readiness is a connection
to its port (it listens only once the checkpoint is loaded).

No image ships Megatron-LM's ``tools/`` (the NGC PyTorch image has neither it nor megatron-core): the stack
requires ``engine.image``, an image whose working directory is a Megatron-LM checkout (e.g. ``FROM
nvcr.io/nvidia/pytorch:25.10-py3``, ``git clone --branch core_v0.16.1 https://github.com/NVIDIA/Megatron-LM``,
``pip install flask-restful``, ``WORKDIR`` the clone).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import ClassVar

from pulumi_vllm.engine.profiles.base import ContainerCommand, EngineProfile, ServeSpec

MEGATRON_VERSION = "core_v0.16.1"
"""The Megatron-LM release tag (megatron-core 0.16.1) the flags are written for."""
MEGATRON_PORT = 5000
"""The server's default ``--port``."""
SERVER_SCRIPT = "tools/run_text_generation_server.py"
"""The server, relative to the image's working directory (a Megatron-LM checkout)."""

# engine.dtype values and Megatron's precision flags; "auto" and float32 keep its default (fp32).
_PRECISION = {"half": "--fp16", "float16": "--fp16", "bfloat16": "--bf16"}


@dataclass(frozen=True)
class MegatronProfile(EngineProfile):
    """Megatron-LM (its Flask text generation server)."""

    model_kinds: ClassVar[str] = "a Megatron checkpoint folder in the cache (engine.modelFile) and a Hugging Face tokenizer id"

    def checkpoint(self, spec: ServeSpec) -> str:
        """The checkpoint folder inside the container (``engine.modelFile`` under the cache)."""
        return posixpath.join(spec.cache_path, (spec.model_file or "").strip("/"))

    def command(self, spec: ServeSpec) -> ContainerCommand:
        """``torchrun --nproc-per-node N tools/run_text_generation_server.py --tensor-model-parallel-size T ...``."""
        processes = spec.tensor_parallel_size * spec.pipeline_parallel_size
        args: list[str] = [
            "--nproc-per-node", str(processes),
            SERVER_SCRIPT,
            "--tensor-model-parallel-size", str(spec.tensor_parallel_size),
            "--pipeline-model-parallel-size", str(spec.pipeline_parallel_size),
            "--load", self.checkpoint(spec),
            "--use-checkpoint-args",
            "--tokenizer-type", "HuggingFaceTokenizer",
            "--tokenizer-model", spec.model,
            "--micro-batch-size", "1",
            "--port", str(spec.port),
        ]
        if spec.dtype in _PRECISION:
            args.append(_PRECISION[spec.dtype])
        args += list(spec.extra_args)
        return ContainerCommand(command=("torchrun",), args=tuple(args))

    def env(self, spec: ServeSpec) -> dict[str, str]:
        """``CUDA_DEVICE_MAX_CONNECTIONS=1``, which Megatron's tensor-parallel overlap expects (its examples set it)."""
        return {"CUDA_DEVICE_MAX_CONNECTIONS": "1"}

    def ready_command(self, spec: ServeSpec) -> tuple[str, ...]:
        """A connection to the port: no route answers ``GET``, and the port opens once the checkpoint is loaded."""
        return (
            "python3", "-c",
            f"import socket; socket.create_connection(('127.0.0.1', {spec.port}), timeout=3).close()",
        )

    def problems(self, spec: ServeSpec) -> list[str]:
        """The checkpoint folder is required; the GPUs of the pod must be the parallel sizes' product."""
        problems = super().problems(spec)
        if not spec.model_file or not spec.model_file.strip("/"):
            problems.append(
                f"engine.modelFile: is required with engine.kind {self.kind!r}: Megatron-LM loads a Megatron "
                "checkpoint folder inside the model cache (model.id names its Hugging Face tokenizer); set "
                "engine.modelFile to that folder"
            )
        processes = spec.tensor_parallel_size * spec.pipeline_parallel_size
        if spec.gpus != processes:
            problems.append(
                f"parallelism.tensorParallelSize: {spec.tensor_parallel_size} x pipeline {spec.pipeline_parallel_size} "
                f"is not accepted with engine.kind {self.kind!r} on {spec.gpus} GPUs per pod: Megatron-LM runs one "
                f"process per GPU over exactly tensor x pipeline GPUs; use sizes whose product is {spec.gpus}"
            )
        return problems


PROFILE = MegatronProfile(
    kind="megatron",
    title="Megatron-LM",
    image="",
    version=MEGATRON_VERSION,
    docs=f"https://github.com/NVIDIA/Megatron-LM/blob/{MEGATRON_VERSION}/tools/run_text_generation_server.py",
    port=MEGATRON_PORT,
    # No GET route: liveness needs a TCP check (see ready_command); /api answers PUT only.
    health_path=None,  # no route answers GET: liveness is the port accepting connections
    ready_path="/api",
    metrics_path=None,
    openai_paths=(),
    model_source=(
        "engine.modelFile: a Megatron checkpoint folder inside the cache (architecture from the checkpoint), with "
        "model.id as its Hugging Face tokenizer"
    ),
    parallelism=(
        "--tensor-model-parallel-size and --pipeline-model-parallel-size, torchrun --nproc-per-node = tensor x "
        "pipeline in one pod"
    ),
    splits_heads=True,
    pipeline=True,
    docker=False,
    multi_node=False,
    api_key_env=None,
    honours=frozenset({"dtype", "extra_args"}),
)
