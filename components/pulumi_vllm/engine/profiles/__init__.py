"""One profile per inference engine (``engine.kind``): pinned image, command builder, port, paths, parallelism.

vLLM stays the default and the engine the rest of the package knows best; the others run on the same
model cache, token Secret, GPU Deployment, Service, probes and policies.
"""

from __future__ import annotations

import importlib

from pulumi_vllm.engine.profiles.base import ENGINE_FILES_PATH, ContainerCommand, EngineProfile, ServeSpec

ENGINE_MODULES: dict[str, str] = {
    "vllm": "vllm",
    "llama.cpp": "llamacpp",
    "ollama": "ollama",
    "tgi": "tgi",
    "tensorrt-llm": "tensorrt_llm",
    "triton": "triton",
    "ray-serve-llm": "ray_serve_llm",
    "deepspeed-mii": "deepspeed_mii",
    "megatron": "megatron",
}
"""``engine.kind`` values and the module of each profile."""

ENGINE_KINDS: tuple[str, ...] = tuple(ENGINE_MODULES)

__all__ = ["ENGINE_FILES_PATH", "ENGINE_KINDS", "ENGINE_MODULES", "ContainerCommand", "EngineProfile", "ServeSpec", "profile"]


def profile(kind: str) -> EngineProfile:
    """The profile of ``kind`` (one of :data:`ENGINE_KINDS`)."""
    try:
        module = ENGINE_MODULES[kind]
    except KeyError:
        raise ValueError(f"{kind!r} is not an engine kind; use one of {', '.join(ENGINE_KINDS)}") from None
    found: EngineProfile = importlib.import_module(f"pulumi_vllm.engine.profiles.{module}").PROFILE
    return found
