"""Offline inference through the package's own code path: the stack's EngineArgs -> ``vllm.LLM``."""

from __future__ import annotations

import time
from typing import Any

import pytest

from pulumi_vllm.config import parse_stack_config
from pulumi_vllm.engine.argv import engine_args_from_config

from .offline_generate import run_offline_generate

pytestmark = pytest.mark.realvllm

PROMPTS = ["Hello, my name is", "The capital of France is", "The future of AI is"]


def test_offline_generate_one_output_per_prompt(
    tiny_values: dict[str, Any], vllm_env: dict[str, str], observe: Any
) -> None:
    """``LLM(**llm_kwargs(engine)).generate(prompts, SamplingParams(temperature=0.8, top_p=0.95))``."""
    engine = engine_args_from_config(parse_stack_config(tiny_values))
    started = time.monotonic()
    texts = run_offline_generate(
        engine, PROMPTS, sampling={"temperature": 0.8, "top_p": 0.95, "max_tokens": 8}, env=vllm_env
    )
    observe(f"offline generation (3 prompts) took {time.monotonic() - started:.1f} s")
    assert len(texts) == len(PROMPTS)
    assert all(isinstance(text, str) for text in texts)
    # Eight sampled tokens from a 512-token vocabulary: every text has some content.
    assert all(text for text in texts), texts
