"""NVIDIA Triton Inference Server with its vLLM backend, behind Triton's OpenAI-compatible frontend.

The model repository is generated: one model, ``NAME/config.pbtxt`` (``backend: "vllm"``, one instance of
kind ``KIND_MODEL`` so that vLLM places its own tensor- and pipeline-parallel workers) and
``NAME/1/model.json`` (vLLM's engine arguments, which the backend passes to ``AsyncEngineArgs``). ``NAME`` is
``model.servedModelName`` as written: Triton names a model after its directory and clients send that name in
the ``model`` field, so it has to be one path segment of letters, digits, ``.``, ``_`` and ``-`` (no ``/``,
hence not a Hugging Face id); :meth:`TritonProfile.problems` says so otherwise and proposes one.

The frontend (``/opt/tritonserver/python/openai/openai_frontend/main.py``, shipped in the vLLM image since
25.02) starts Triton in-process on the repository and serves ``/v1`` on ``--openai-port``. The repository is
copied out of its ConfigMap mount first: Kubernetes projects ConfigMap files as symlinks beside hidden
``..data`` and timestamped directories, which Triton would scan as models.
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
from dataclasses import dataclass

from pulumi_vllm.engine.profiles.base import ContainerCommand, EngineProfile, ServeSpec

TRITON_RELEASE = "26.09"
"""The NGC container release (YY.MM); Triton Inference Server 2.73.0, whose ``tritonclient`` is on PyPI."""
TRITON_VERSION = "2.73.0"
TRITON_IMAGE = f"nvcr.io/nvidia/tritonserver:{TRITON_RELEASE}-vllm-python-py3"
TRITON_PORT = 9000
"""The OpenAI frontend's default ``--openai-port``."""
OPENAI_FRONTEND = "/opt/tritonserver/python/openai/openai_frontend/main.py"
MODEL_REPOSITORY = "/tmp/triton-model-repository"
"""Where the command copies the model repository to (outside the ConfigMap mount)."""

_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")


def model_name(spec: ServeSpec) -> str:
    """The Triton model name: ``model.servedModelName`` itself (legal when :func:`name_problem` is ``None``)."""
    return spec.served_model_name


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a Triton model directory (and a ConfigMap path), or ``None``."""
    if not _NAME.fullmatch(name):
        return "one path segment of letters, digits, '.', '_' and '-', not starting with '.'"
    return None


def suggested_name(name: str) -> str:
    """A legal model name close to ``name``: its last path segment, other characters replaced by ``-``."""
    tail = name.rstrip("/").rsplit("/", 1)[-1]
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", tail).lstrip(".") or "model"
    return cleaned.lower()


def config_pbtxt(name: str) -> str:
    """The model's ``config.pbtxt``: the vLLM backend, one instance that owns every GPU of the pod."""
    return f'name: "{name}"\nbackend: "vllm"\ninstance_group [\n  {{\n    count: 1\n    kind: KIND_MODEL\n  }}\n]\n'


def engine_arguments(spec: ServeSpec) -> dict[str, object]:
    """``model.json``: vLLM's engine arguments (``AsyncEngineArgs`` field names)."""
    arguments: dict[str, object] = {
        "model": spec.model,
        "tensor_parallel_size": spec.tensor_parallel_size,
        "pipeline_parallel_size": spec.pipeline_parallel_size,
        "gpu_memory_utilization": spec.gpu_memory_utilization,
        "dtype": spec.dtype,
        "kv_cache_dtype": spec.kv_cache_dtype,
        "trust_remote_code": spec.trust_remote_code,
    }
    if spec.revision:
        arguments["revision"] = spec.revision
    if spec.max_model_len is not None:
        arguments["max_model_len"] = spec.max_model_len
    if spec.quantization:
        arguments["quantization"] = spec.quantization
    return arguments


@dataclass(frozen=True)
class TritonProfile(EngineProfile):
    """Triton Inference Server, vLLM backend, OpenAI-compatible frontend."""

    def command(self, spec: ServeSpec) -> ContainerCommand:
        """Copy the model repository out of the mount, then ``python3 main.py --model-repository ... --openai-port``."""
        name = model_name(spec)
        source = posixpath.join(spec.files_path, name)
        frontend = [
            "python3", OPENAI_FRONTEND,
            "--model-repository", MODEL_REPOSITORY,
            "--tokenizer", spec.model,
            "--backend", "vllm",
            "--host", "0.0.0.0",
            "--openai-port", str(spec.port),
            *spec.extra_args,
        ]
        # cp -L: the mounted files are symlinks into ..data.
        script = (
            f"mkdir -p {MODEL_REPOSITORY} && cp -rL {shlex.quote(source)} {MODEL_REPOSITORY}/ && "
            f"exec {shlex.join(frontend)}"
        )
        return ContainerCommand(command=("/bin/sh", "-c"), args=(script,))

    def files(self, spec: ServeSpec) -> dict[str, str]:
        """The model repository: ``NAME/config.pbtxt`` and ``NAME/1/model.json``."""
        name = model_name(spec)
        return {
            f"{name}/config.pbtxt": config_pbtxt(name),
            f"{name}/1/model.json": json.dumps(engine_arguments(spec), indent=2, sort_keys=True) + "\n",
        }

    def problems(self, spec: ServeSpec) -> list[str]:
        """The served name must be a legal Triton model name; a model file has no place in the repository."""
        problems = super().problems(spec)
        why = name_problem(spec.served_model_name)
        if why is not None:
            problems.append(
                f"model.servedModelName: {spec.served_model_name!r} is not accepted with engine.kind {self.kind!r}: "
                f"Triton names the model after its directory in the model repository, which must be {why}; set "
                f"model.servedModelName, e.g. {suggested_name(spec.served_model_name)!r}"
            )
        if spec.model_file is not None:
            problems.append(
                f"engine.modelFile: {spec.model_file!r} is not accepted with engine.kind {self.kind!r}: the vLLM "
                "backend loads the whole model.id; remove engine.modelFile"
            )
        return problems


PROFILE = TritonProfile(
    kind="triton",
    title="Triton Inference Server",
    image=TRITON_IMAGE,
    version=f"{TRITON_RELEASE} (Triton {TRITON_VERSION})",
    docs="https://github.com/triton-inference-server/server/blob/r26.09/python/openai/README.md",
    port=TRITON_PORT,
    # The frontend opens its port after Triton has loaded the model (start(wait_until_ready=True)).
    health_path="/health/ready",
    ready_path="/health/ready",
    metrics_path="/metrics",
    openai_paths=("/v1/chat/completions", "/v1/completions", "/v1/models"),
    model_source="a Hugging Face model id, loaded by vLLM inside Triton (downloaded into the cache)",
    parallelism=(
        "tensor_parallel_size and pipeline_parallel_size in the model's model.json (vLLM's engine arguments), one "
        "KIND_MODEL instance over all GPUs of the pod"
    ),
    vllm_based=True,
    splits_heads=True,
    pipeline=True,
    docker=False,
    multi_node=False,
    # The frontend's --openai-restricted-api guards endpoint groups with a header, not an OpenAI API key.
    api_key_env=None,
    honours=frozenset({"dtype", "max_model_len", "gpu_memory_utilization", "kv_cache_dtype", "quantization", "extra_args"}),
)
