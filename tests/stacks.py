"""The example stacks of the repository, as the tests parametrize over them."""

from __future__ import annotations

from pathlib import Path

import yaml

from pulumi_vllm.render.engine import stack_files

REPO = Path(__file__).resolve().parents[1]

STACK_FILES = stack_files(REPO)
"""Every stack file of the repository: ``Pulumi.dev.yaml`` beside ``Pulumi.yaml`` and the examples in
``examples/stacks/``, by stack name."""
STACKS = sorted(STACK_FILES)
"""Every example stack (``Pulumi.<stack>.yaml``)."""


def stack_file(stack: str) -> Path:
    """The ``Pulumi.<stack>.yaml`` of one stack of the repository."""
    return STACK_FILES[stack]


def _config(stack: str) -> dict:
    return (yaml.safe_load(stack_file(stack).read_text()) or {}).get("config") or {}


SERVING_STACKS = [stack for stack in STACKS if {"pulumi-vllm:model", "pulumi-vllm:models"} & set(_config(stack))]
"""Stacks that serve a model or several (the others only provision the GPU platform)."""

PLATFORM_STACKS = [stack for stack in STACKS if "pulumi-vllm:cluster" in _config(stack)]
"""Stacks that install the GPU platform (alone or under their serving)."""


def engine_kind(stack: str) -> str:
    """The ``engine.kind`` of a stack (``vllm`` unless its file says otherwise)."""
    return str((_config(stack).get("pulumi-vllm:engine") or {}).get("kind", "vllm"))


VLLM_STACKS = [stack for stack in SERVING_STACKS if engine_kind(stack) == "vllm"]
"""Serving stacks that run vLLM's own server (the other engines' stacks are checked by tests/test_engines_stack.py)."""
