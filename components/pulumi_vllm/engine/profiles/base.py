"""What every engine profile says about its engine, and the engine-neutral settings its command is built from.

A profile is pure: it turns a :class:`ServeSpec` (the stack's model, engine and parallelism settings in
neutral terms) into the container's command line, the files the engine reads (mounted from a ConfigMap),
and its environment; and it states the facts the targets, the planner and the policy pack need: pinned
image, port, health, readiness and metrics paths, OpenAI routes, and how GPUs map to its flags.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from pulumi_vllm.engine.container import VllmCommand

ContainerCommand = VllmCommand
"""A container's ``command`` and ``args`` (the same shape for every engine)."""

ENGINE_FILES_PATH = "/etc/pulumi-vllm/engine"
"""Where the files an engine reads (model repository, serve config) are mounted, read-only."""


@dataclass(frozen=True)
class ServeSpec:
    """The stack's serving settings in engine-neutral terms (what every profile's command is built from)."""

    model: str
    """``model.id``: a Hugging Face id, an Ollama model name, or a path inside the container."""
    served_model_name: str
    """The name clients put in the ``model`` field (``model.servedModelName`` or the id)."""
    revision: str | None = None
    model_file: str | None = None
    """``engine.modelFile``: a file or folder inside the model (a GGUF file, a checkpoint folder)."""
    trust_remote_code: bool = False
    dtype: str = "auto"
    max_model_len: int | None = None
    gpu_memory_utilization: float = 0.9
    kv_cache_dtype: str = "auto"
    quantization: str | None = None
    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1
    gpus: int = 1
    """GPUs of the pod (or Docker container) that runs the engine."""
    port: int = 8000
    cache_path: str = "/root/.cache/huggingface"
    """Where the model cache is mounted (``HF_HOME``)."""
    files_path: str = ENGINE_FILES_PATH
    extra_args: tuple[str, ...] = ()
    api_key: bool = False
    """Whether an API key is configured (the engine reads it from :attr:`EngineProfile.api_key_env`)."""
    replicas: int = 1


@dataclass(frozen=True)
class EngineProfile:
    """One engine: its facts and its builders. Subclasses override :meth:`command` (and files, env)."""

    kind: str
    """The ``engine.kind`` value."""
    title: str
    """The engine's name as its project writes it."""
    image: str
    """Pinned default image (``engine.image`` overrides it); empty when the project publishes none."""
    version: str
    """The engine release the flags are written for."""
    docs: str
    """Where the flags come from (the engine's documentation for :attr:`version`)."""
    port: int
    """Port the server listens on inside the container."""
    health_path: str | None
    """Liveness: 200 while the process is up; ``None``: the port accepting connections (a TCP check)."""
    ready_path: str
    """Startup and readiness: 200 once the model is loaded and requests are served."""
    metrics_path: str | None
    """Prometheus metrics, or ``None``."""
    openai_paths: tuple[str, ...]
    """OpenAI-compatible routes; empty when the engine speaks its own API only."""
    model_source: str
    """Where the model comes from, in a sentence."""
    parallelism: str
    """How tensor and pipeline parallel sizes map to the engine's flags, in a sentence."""
    vllm_based: bool = False
    """Runs vLLM's engine: the capacity planner's accounting applies."""
    splits_heads: bool = True
    """Tensor parallelism splits attention heads (the tensor-parallel rule applies)."""
    max_tensor_parallel: int | None = None
    """Largest tensor-parallel size the engine has (``None``: no limit of its own)."""
    pipeline: bool = False
    """Pipeline parallel sizes above 1 are supported."""
    docker: bool = False
    """Runs on the Docker target (single-host engines)."""
    multi_node: bool = False
    """Spans several pods (only vLLM's Ray topologies and Ray Serve LLM)."""
    api_key_env: str | None = None
    """Environment variable the engine reads its API key from; ``None``: it has no API key of its own."""
    honours: frozenset[str] = field(default_factory=frozenset)
    """``engine`` fields (snake_case) it maps to flags; a non-default value of any other is refused."""
    model_kinds: ClassVar[str] = "a Hugging Face model id"

    def command(self, spec: ServeSpec) -> ContainerCommand:
        """The container's command line serving ``spec``."""
        raise NotImplementedError

    def files(self, spec: ServeSpec) -> dict[str, str]:
        """Files the engine reads, by path relative to :attr:`ServeSpec.files_path` (empty: none)."""
        return {}

    def env(self, spec: ServeSpec) -> dict[str, str]:
        """Environment the engine needs beyond ``HF_HOME``, the token and the API key."""
        return {}

    def ready_command(self, spec: ServeSpec) -> tuple[str, ...] | None:
        """A command whose success means ready, when HTTP readiness says too little (``None``: use the path)."""
        return None

    def http_check(self, url: str) -> tuple[str, ...]:
        """A command in the engine's image that fails unless ``url`` answers (Docker's healthcheck)."""
        # urlopen raises (exit 1) on a refused connection or an error status.
        return ("python3", "-c", f"import urllib.request; urllib.request.urlopen('{url}', timeout=5)")

    def problems(self, spec: ServeSpec) -> list[str]:
        """What this engine cannot do with ``spec`` (messages in the stack's terms; empty: fine)."""
        problems: list[str] = []
        if spec.pipeline_parallel_size > 1 and not self.pipeline:
            problems.append(
                f"parallelism.pipelineParallelSize: {spec.pipeline_parallel_size} is not accepted with engine.kind "
                f"{self.kind!r}: {self.title} has no pipeline parallelism here; use 1"
            )
        if self.max_tensor_parallel is not None and spec.tensor_parallel_size > self.max_tensor_parallel:
            problems.append(
                f"parallelism.tensorParallelSize: {spec.tensor_parallel_size} is not accepted with engine.kind "
                f"{self.kind!r}: {self.title} has no tensor parallelism; use at most {self.max_tensor_parallel}"
            )
        return problems
