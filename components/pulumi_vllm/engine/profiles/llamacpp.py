"""llama.cpp's OpenAI-compatible server, ``llama-server``, on the project's CUDA server image.

The model is one GGUF file: ``model.id`` a Hugging Face repository and ``engine.modelFile`` the ``.gguf`` file in it
(``--hf-repo``/``--hf-file``; llama-server downloads it into ``LLAMA_CACHE``, which is set to the Hugging Face hub
folder of the model cache), or ``model.id`` an absolute path of a ``.gguf`` file inside the container (``-m``).
Every layer goes to the GPUs; several GPUs split the model by rows (tensor parallel) or by layers (pipeline
parallel) in equal parts. ``llama-server`` reads the API key from ``LLAMA_API_KEY``; with a key set, every route
but ``/health`` needs it, ``/metrics`` too.

Flags from ``tools/server/README.md`` at the pinned build, the same commit that llama-cpp-python 0.3.36 vendors.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import ClassVar

from pulumi_vllm.engine.profiles.base import ContainerCommand, EngineProfile, ServeSpec

LLAMACPP_BUILD = 11312
"""The llama.cpp release (``b<N>``, commit 0c1e57098) the flags are written for."""
LLAMACPP_COMMIT = "0c1e57098bba43ac29e6e3b677cdceebdd22334f"
LLAMACPP_IMAGE = f"ghcr.io/ggml-org/llama.cpp:server-cuda-b{LLAMACPP_BUILD}"
"""The server image (CUDA 12) of that release; its entrypoint is ``/app/llama-server``."""
LLAMACPP_SERVER = "/app/llama-server"
LLAMACPP_PORT = 8080
"""llama-server's default port."""
LLAMACPP_API_KEY_ENV = "LLAMA_API_KEY"
ALL_LAYERS = "all"
"""``--n-gpu-layers all``: every layer in VRAM (the documented word, rather than a large number)."""
GGUF_SUFFIX = ".gguf"


def hub_cache(spec: ServeSpec) -> str:
    """``LLAMA_CACHE``: the hub folder of the model cache (llama-server keeps the Hugging Face hub layout there)."""
    return posixpath.join(spec.cache_path, "hub")


def _is_path(model: str) -> bool:
    return model.startswith("/")


@dataclass(frozen=True)
class LlamaCppProfile(EngineProfile):
    """llama.cpp (``llama-server``)."""

    model_kinds: ClassVar[str] = (
        "a Hugging Face repository id with engine.modelFile (a .gguf file in it), or a .gguf path inside the container"
    )

    def model_path(self, spec: ServeSpec) -> str | None:
        """The ``-m`` file when the model is a path inside the container (``None``: downloaded from the Hub)."""
        if not _is_path(spec.model):
            return None
        if spec.model.endswith(GGUF_SUFFIX) or spec.model_file is None:
            return spec.model
        return posixpath.join(spec.model, spec.model_file.strip("/"))

    def command(self, spec: ServeSpec) -> ContainerCommand:
        """``llama-server -m FILE`` (or ``--hf-repo ID --hf-file FILE``), host, port, alias, context, GPU split."""
        path = self.model_path(spec)
        args: list[str] = ["-m", path] if path is not None else ["--hf-repo", spec.model]
        if path is None and spec.model_file is not None:
            args += ["--hf-file", spec.model_file]
        args += ["--host", "0.0.0.0", "--port", str(spec.port), "--alias", spec.served_model_name]
        if spec.max_model_len is not None:
            args += ["--ctx-size", str(spec.max_model_len)]
        args += ["--n-gpu-layers", ALL_LAYERS if spec.gpus > 0 else "0"]
        if spec.tensor_parallel_size > 1:
            args += ["--split-mode", "row"]
        elif spec.pipeline_parallel_size > 1:
            args += ["--split-mode", "layer"]
        if spec.gpus > 1:
            args += ["--tensor-split", ",".join(["1"] * spec.gpus)]
        args.append("--metrics")
        args += list(spec.extra_args)
        return ContainerCommand(command=(LLAMACPP_SERVER,), args=tuple(args))

    def env(self, spec: ServeSpec) -> dict[str, str]:
        """``LLAMA_CACHE`` in the model cache, so that downloads persist (llama-server reads ``HF_TOKEN`` itself)."""
        return {"LLAMA_CACHE": hub_cache(spec)}

    def problems(self, spec: ServeSpec) -> list[str]:
        """A GGUF file to load, no revision, and one way of splitting the model over the GPUs."""
        problems = super().problems(spec)
        kind = repr(self.kind)
        model_is_file = _is_path(spec.model) and spec.model.endswith(GGUF_SUFFIX)
        if spec.model_file is None and not model_is_file:
            problems.append(
                f"engine.modelFile: is required with engine.kind {kind} and model.id {spec.model!r}: llama.cpp loads one "
                f"GGUF file; name the .gguf file in the repository, or set model.id to a .gguf path inside the container"
            )
        elif spec.model_file is not None and model_is_file:
            problems.append(
                f"engine.modelFile: {spec.model_file!r} is not accepted with engine.kind {kind} and model.id "
                f"{spec.model!r}: the model is already a .gguf file; remove engine.modelFile"
            )
        elif spec.model_file is not None and not spec.model_file.endswith(GGUF_SUFFIX):
            problems.append(
                f"engine.modelFile: {spec.model_file!r} is not accepted with engine.kind {kind}: llama.cpp loads GGUF "
                f"files; name a file ending in {GGUF_SUFFIX}"
            )
        if spec.revision and not _is_path(spec.model):
            problems.append(
                f"model.revision: {spec.revision!r} is not accepted with engine.kind {kind}: llama-server b{LLAMACPP_BUILD} "
                "downloads the repository's main branch and has no revision flag; remove model.revision"
            )
        if spec.tensor_parallel_size > 1 and spec.pipeline_parallel_size > 1:
            problems.append(
                f"parallelism: tensorParallelSize {spec.tensor_parallel_size} with pipelineParallelSize "
                f"{spec.pipeline_parallel_size} is not accepted with engine.kind {kind}: llama.cpp splits the model one "
                "way (--split-mode row or layer); set one of them to 1"
            )
        return problems


PROFILE = LlamaCppProfile(
    kind="llama.cpp",
    title="llama.cpp",
    image=LLAMACPP_IMAGE,
    version=f"b{LLAMACPP_BUILD}",
    docs=f"https://github.com/ggml-org/llama.cpp/blob/{LLAMACPP_COMMIT}/tools/server/README.md",
    port=LLAMACPP_PORT,
    # /health answers 503 while the model loads and 200 once it serves: liveness and readiness alike.
    health_path="/health",
    ready_path="/health",
    metrics_path="/metrics",
    openai_paths=("/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/models"),
    model_source=(
        "one GGUF file: a Hugging Face repository id with engine.modelFile (downloaded into the cache), or a .gguf "
        "path inside the container"
    ),
    parallelism=(
        "every layer on the GPUs (--n-gpu-layers all), split in equal parts (--tensor-split) by rows for tensor "
        "parallelism (--split-mode row) or by layers for pipeline parallelism (--split-mode layer)"
    ),
    # Rows or whole layers go to each GPU: no attention-head rule.
    splits_heads=False,
    pipeline=True,
    docker=True,
    multi_node=False,
    api_key_env=LLAMACPP_API_KEY_ENV,
    honours=frozenset({"max_model_len", "extra_args"}),
)
