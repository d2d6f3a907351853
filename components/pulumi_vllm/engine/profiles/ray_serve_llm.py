"""Ray Serve LLM (formerly RayLLM): vLLM behind Ray Serve's OpenAI-compatible app, run by a KubeRay RayService.

There is no command line to build: KubeRay starts Ray in every pod and submits the Serve config
(``spec.serveConfigV2``) to the head, whose ``ray.serve.llm:build_openai_app`` starts one vLLM
engine per model replica, placed over the worker pods' GPUs by Ray. This module writes that Serve
config (:func:`serve_config`) from the stack's engine-neutral :class:`ServeSpec`; the component
:mod:`pulumi_vllm.kubernetes.ray_service` puts it into the RayService.

The field names are those of Ray's own pydantic models (``ray.serve.llm.LLMConfig`` and
``LLMServingArgs``, which forbid unknown fields); the engine keyword arguments are vLLM's
``AsyncEngineArgs`` fields, which Ray hands to vLLM unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pulumi_vllm.engine.profiles.base import ContainerCommand, EngineProfile, ServeSpec

RAY_VERSION = "2.60.0"
"""The Ray release the Serve config is written for (the ``ray`` the test environment pins too)."""
IMAGE = f"rayproject/ray-llm:{RAY_VERSION}-py312-cu130"
"""Ray's own Ray Serve LLM image (Ray, vLLM and CUDA together); since Ray 2.56 built for Python 3.12 and CUDA 13.0."""
DOCS = "https://docs.ray.io/en/latest/serve/llm/index.html"

SERVE_PORT = 8000
"""Ray Serve's HTTP proxy port (Ray's and KubeRay's default; the port named ``serve``)."""
METRICS_PORT = 8080
"""Ray's Prometheus metrics port in a KubeRay pod (KubeRay passes ``--metrics-export-port=8080``)."""
HEALTH_PATH = "/-/healthz"
"""Ray Serve's proxy health route: 200 once the proxy has its route table (503 before, and while draining)."""

APPLICATION_NAME = "llm"
"""Name of the one Serve application."""
IMPORT_PATH = "ray.serve.llm:build_openai_app"
"""Ray Serve LLM's builder of the OpenAI-compatible app (its ``args`` are ``LLMServingArgs``)."""

_TAG_VERSION = re.compile(r":(\d+\.\d+\.\d+)(?:[-@]|$)")

# Engine settings with vLLM's own defaults: a value equal to the default is left out of engine_kwargs.
_VLLM_DEFAULTS: dict[str, Any] = {
    "revision": None,
    "trust_remote_code": False,
    "dtype": "auto",
    "max_model_len": None,
    "gpu_memory_utilization": 0.9,
    "kv_cache_dtype": "auto",
    "quantization": None,
}


def engine_kwargs(spec: ServeSpec) -> dict[str, Any]:
    """vLLM's ``AsyncEngineArgs`` of ``spec``: the parallel sizes always, the rest where they differ from vLLM's defaults."""
    kwargs: dict[str, Any] = {
        # Always written: Ray sizes each replica's placement group (one GPU bundle per rank) from them.
        "tensor_parallel_size": spec.tensor_parallel_size,
        "pipeline_parallel_size": spec.pipeline_parallel_size,
    }
    for name, default in _VLLM_DEFAULTS.items():
        value = getattr(spec, name)
        if value != default:
            kwargs[name] = value
    return kwargs


def llm_config(spec: ServeSpec, *, min_replicas: int, max_replicas: int) -> dict[str, Any]:
    """One ``LLMConfig`` (as a dict): the model, vLLM's engine arguments and the replica bounds."""
    return {
        "model_loading_config": {"model_id": spec.served_model_name, "model_source": spec.model},
        "engine_kwargs": engine_kwargs(spec),
        "deployment_config": {"autoscaling_config": {"min_replicas": min_replicas, "max_replicas": max_replicas}},
    }


def serve_config(spec: ServeSpec, *, min_replicas: int, max_replicas: int) -> dict[str, Any]:
    """The RayService's ``serveConfigV2`` document (a dict; the caller writes it as YAML).

    One application at ``/`` built by ``ray.serve.llm:build_openai_app`` with one ``LLMConfig``:
    the model served under ``spec.served_model_name``, between ``min_replicas`` and ``max_replicas``
    replicas of ``tensor_parallel_size * pipeline_parallel_size`` GPUs each.
    """
    if not 0 <= min_replicas <= max_replicas or max_replicas < 1:
        raise ValueError(
            f"min_replicas ({min_replicas}) and max_replicas ({max_replicas}) must satisfy 0 <= min <= max, max >= 1"
        )
    return {
        "applications": [
            {
                "name": APPLICATION_NAME,
                "route_prefix": "/",
                "import_path": IMPORT_PATH,
                "args": {"llm_configs": [llm_config(spec, min_replicas=min_replicas, max_replicas=max_replicas)]},
            }
        ]
    }


def ray_version(image: str) -> str:
    """The Ray release of a Ray image (``rayproject/ray-llm:2.60.0-py312-cu130`` -> ``2.60.0``), else :data:`RAY_VERSION`."""
    match = _TAG_VERSION.search(image.rsplit("/", 1)[-1])
    return match.group(1) if match else RAY_VERSION


@dataclass(frozen=True)
class RayServeLlmProfile(EngineProfile):
    """Ray Serve LLM: a RayService whose Serve config is :func:`serve_config`; no container command of its own."""

    def command(self, spec: ServeSpec) -> ContainerCommand:
        """Not used: KubeRay writes every pod's ``ray start`` and submits :func:`serve_config` to the head.

        Raises:
            NotImplementedError: always; build the RayService with
                :class:`pulumi_vllm.kubernetes.ray_service.RayServeLlm` instead.
        """
        raise NotImplementedError(
            "Ray Serve LLM has no container command: KubeRay starts Ray in the pods and deploys the Serve config "
            "(ray_serve_llm.serve_config) on the head; use pulumi_vllm.kubernetes.ray_service.RayServeLlm"
        )


PROFILE = RayServeLlmProfile(
    kind="ray-serve-llm",
    title="Ray Serve LLM",
    image=IMAGE,
    version=RAY_VERSION,
    docs=DOCS,
    port=SERVE_PORT,
    health_path=HEALTH_PATH,
    ready_path=HEALTH_PATH,
    metrics_path="/metrics",
    openai_paths=("/v1/chat/completions", "/v1/completions", "/v1/models"),
    model_source="a Hugging Face model id (downloaded into the cache by the worker pods) or a path inside the container",
    parallelism=(
        "engine_kwargs tensor_parallel_size and pipeline_parallel_size; Ray places each replica's "
        "tensor x pipeline GPUs over the worker pods"
    ),
    vllm_based=True,
    pipeline=True,
    docker=False,
    multi_node=True,
    api_key_env=None,  # Ray Serve LLM authenticates nobody: put a gateway in front
    honours=frozenset({"dtype", "max_model_len", "gpu_memory_utilization", "kv_cache_dtype", "quantization"}),
)
