"""NVIDIA TensorRT-LLM's OpenAI-compatible server, ``trtllm-serve``, on the NGC release image.

The model is a Hugging Face id served by the PyTorch backend (the default of the 1.x releases), or, with
``engine.modelFile``, a TensorRT engine directory (built by ``trtllm-build``) inside the model cache, served by
the TensorRT backend with the id's tokenizer. trtllm-serve names the model in the API after its ``MODEL``
argument (an id as given, a local directory by its last component), and the pinned release has no flag to
rename it, so ``model.servedModelName`` must be that name.

Settings that trtllm-serve has no flag for (dtype, KV-cache dtype) go into the YAML file it reads with
``--config``; written as JSON, which YAML reads as it is.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass

from pulumi_vllm.engine.profiles.base import ContainerCommand, EngineProfile, ServeSpec

TRTLLM_VERSION = "1.2.1"
"""The TensorRT-LLM release (NGC tag and PyPI version) the flags are written for."""
TRTLLM_IMAGE = f"nvcr.io/nvidia/tensorrt-llm/release:{TRTLLM_VERSION}"
TRTLLM_PORT = 8000
CONFIG_FILE = "config.yaml"
"""The ``--config`` file (LLM API options), relative to :attr:`ServeSpec.files_path`."""

# engine.dtype values (vLLM's words) and LlmArgs.dtype's.
_DTYPES = {"half": "float16", "float16": "float16", "bfloat16": "bfloat16", "float": "float32", "float32": "float32"}
# KvCacheConfig.dtype takes "auto" or "fp8" (no e4m3/e5m2 variants).
_KV_CACHE_DTYPES = ("auto", "fp8")


def _options(spec: ServeSpec) -> dict[str, object]:
    """The LLM API options trtllm-serve has no flag for (empty: no ``--config`` file)."""
    options: dict[str, object] = {}
    if spec.dtype in _DTYPES:
        options["dtype"] = _DTYPES[spec.dtype]
    if spec.kv_cache_dtype != "auto":
        # The file's kv_cache_config replaces the one trtllm-serve built from its flags: restate the fraction.
        options["kv_cache_config"] = {
            "dtype": spec.kv_cache_dtype,
            "free_gpu_memory_fraction": spec.gpu_memory_utilization,
        }
    return options


@dataclass(frozen=True)
class TensorRtLlmProfile(EngineProfile):
    """TensorRT-LLM (``trtllm-serve``)."""

    def engine_dir(self, spec: ServeSpec) -> str | None:
        """The TensorRT engine directory inside the cache (``engine.modelFile``), or ``None``."""
        if spec.model_file is None:
            return None
        return posixpath.join(spec.cache_path, spec.model_file.strip("/"))

    def api_model_name(self, spec: ServeSpec) -> str:
        """The name trtllm-serve gives the model in ``/v1/models`` (the ``model`` field clients send)."""
        engine = self.engine_dir(spec)
        return spec.model if engine is None else posixpath.basename(engine)

    def command(self, spec: ServeSpec) -> ContainerCommand:
        """``trtllm-serve MODEL --host 0.0.0.0 --port PORT --backend B --tp_size T --pp_size P`` and the rest."""
        engine = self.engine_dir(spec)
        args: list[str] = [engine or spec.model, "--host", "0.0.0.0", "--port", str(spec.port)]
        if engine is None:
            args += ["--backend", "pytorch"]
            if spec.revision:
                args += ["--revision", spec.revision]
        else:
            # An engine directory holds no tokenizer: take the id's.
            args += ["--backend", "tensorrt", "--tokenizer", spec.model]
        args += ["--tp_size", str(spec.tensor_parallel_size), "--pp_size", str(spec.pipeline_parallel_size)]
        if spec.max_model_len is not None:
            args += ["--max_seq_len", str(spec.max_model_len)]
        args += ["--kv_cache_free_gpu_memory_fraction", str(spec.gpu_memory_utilization)]
        if spec.trust_remote_code:
            args.append("--trust_remote_code")
        if _options(spec):
            args += ["--config", posixpath.join(spec.files_path, CONFIG_FILE)]
        args += list(spec.extra_args)
        return ContainerCommand(command=("trtllm-serve",), args=tuple(args))

    def files(self, spec: ServeSpec) -> dict[str, str]:
        """``config.yaml`` with the dtype and KV-cache options, when any differs from the default."""
        options = _options(spec)
        return {CONFIG_FILE: json.dumps(options, indent=2, sort_keys=True) + "\n"} if options else {}

    def problems(self, spec: ServeSpec) -> list[str]:
        """The KV-cache dtypes TensorRT-LLM has, the served name it gives, and revisions of an engine directory."""
        problems = super().problems(spec)
        if spec.kv_cache_dtype not in _KV_CACHE_DTYPES:
            problems.append(
                f"engine.kvCacheDtype: {spec.kv_cache_dtype!r} is not accepted with engine.kind {self.kind!r}: "
                f"TensorRT-LLM's kv_cache_config.dtype takes {' or '.join(map(repr, _KV_CACHE_DTYPES))}; use 'fp8'"
            )
        name = self.api_model_name(spec)
        if spec.served_model_name != name:
            problems.append(
                f"model.servedModelName: {spec.served_model_name!r} is not accepted with engine.kind {self.kind!r}: "
                f"trtllm-serve {TRTLLM_VERSION} names the model {name!r} (its MODEL argument) and cannot rename it; "
                f"set model.servedModelName to {name!r} or remove it"
            )
        if spec.model_file is not None and spec.revision:
            problems.append(
                f"model.revision: {spec.revision!r} is not accepted with engine.kind {self.kind!r} and engine.modelFile: "
                "a TensorRT engine directory has no revisions; remove model.revision"
            )
        return problems


PROFILE = TensorRtLlmProfile(
    kind="tensorrt-llm",
    title="TensorRT-LLM",
    image=TRTLLM_IMAGE,
    version=TRTLLM_VERSION,
    docs=f"https://nvidia.github.io/TensorRT-LLM/{TRTLLM_VERSION}/commands/trtllm-serve/trtllm-serve.html",
    port=TRTLLM_PORT,
    # The HTTP server starts only once the LLM is built and loaded, so /health is readiness too.
    health_path="/health",
    ready_path="/health",
    metrics_path="/metrics",
    openai_paths=("/v1/chat/completions", "/v1/completions", "/v1/models"),
    model_source=(
        "a Hugging Face model id (downloaded into the cache, PyTorch backend), or engine.modelFile: a TensorRT "
        "engine directory inside the cache (TensorRT backend, tokenizer from model.id)"
    ),
    parallelism=(
        "--tp_size and --pp_size (one process per GPU, MPI within the pod); an engine directory must have been "
        "built for the same sizes"
    ),
    splits_heads=True,
    pipeline=True,
    docker=False,
    multi_node=False,
    # trtllm-serve has no API key option.
    api_key_env=None,
    # gpu_memory_utilization -> --kv_cache_free_gpu_memory_fraction: not vLLM's meaning (a fraction of all GPU
    # memory for everything) but TensorRT-LLM's share of the memory left after the weights for the KV cache;
    # the same default (0.9) and the same direction.
    honours=frozenset({"dtype", "max_model_len", "gpu_memory_utilization", "kv_cache_dtype", "extra_args"}),
)
