"""Shared fixtures for the tests that run real vLLM: one tiny model, one environment, one rendered stack."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pulumi_vllm.cli.render import RenderedStack, render_config

from .tiny_model import build_tiny_model

TINY_SERVED_NAME = "tiny"
"""The name the tiny model is served under (``model.servedModelName``)."""

API_KEY = "sk-TINY-7f3a0c5e9b2d"
"""The stack's ``apiKey``; clients send ``Authorization: Bearer <key>``."""

BATCH_CONTENTS = ("Hello!", "Name a colour.")
"""The user messages of the two inline batch requests."""


def tiny_stack_values(model_dir: Path) -> dict[str, Any]:
    """Stack config serving the tiny model on a CPU: the checkpoint's float32, a 512-token context,
    eager mode (skips torch.compile, about 18 s of every start on 2 cores), an API key, and a batch
    Job over two inline chat requests. No ``hfToken``: nothing is downloaded."""
    return {
        "name": "tiny",
        "model": {"id": str(model_dir), "servedModelName": TINY_SERVED_NAME},
        "engine": {"dtype": "float32", "maxModelLen": 512, "extraArgs": ["--enforce-eager"]},
        "apiKey": API_KEY,
        "batch": {
            "enabled": True,
            "inputLines": [
                {
                    "custom_id": f"request-{index}",
                    "method": "POST",
                    "url": "/v1/chat/completions",
                    "body": {
                        "model": TINY_SERVED_NAME,
                        "messages": [{"role": "user", "content": content}],
                        "max_tokens": 8,
                    },
                }
                for index, content in enumerate(BATCH_CONTENTS, start=1)
            ],
        },
    }


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny random-weight Llama model, built once per test session."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_values(tiny_model_dir: Path) -> dict[str, Any]:
    """The tiny stack's config (see :func:`tiny_stack_values`)."""
    return tiny_stack_values(tiny_model_dir)


@pytest.fixture(scope="session")
def rendered_tiny(tiny_values: dict[str, Any]) -> RenderedStack:
    """The tiny stack rendered by the package, as ``pulumi-vllm render`` would."""
    return render_config(tiny_values)


@pytest.fixture(scope="session")
def vllm_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """What this machine adds to every vLLM process: offline, a 1 GiB KV cache, caches inside the session."""
    cache_root = tmp_path_factory.mktemp("vllm-cache")
    return {
        "HF_HUB_OFFLINE": "1",
        "VLLM_CPU_KVCACHE_SPACE": "1",
        # Keep compile and other caches out of the user's home, so runs do not depend on each other.
        "VLLM_CACHE_ROOT": str(cache_root),
        # Usage statistics would try to reach the network.
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
    }
