"""Offline inference with vLLM's ``LLM`` class, configured from the same engine settings as the server.

:func:`llm_kwargs` turns the :class:`~pulumi_vllm.engine.argv.EngineArgs` of a stack (the ones
:func:`~pulumi_vllm.engine.argv.vllm_command` turns into ``vllm serve`` flags) into keyword arguments of
``vllm.LLM``, so a notebook or a script loads the model exactly as the deployed server does::

    from pulumi_vllm.engine.argv import engine_args_from_config
    from pulumi_vllm.engine.offline import generate

    texts = generate(engine_args_from_config(config), ["Hello, my name is"])

The structured settings map one to one onto fields of vLLM's ``EngineArgs`` (which ``LLM`` passes
its keyword arguments to). ``extra_args`` are read with vLLM's own engine-argument parser, so each
flag becomes the same value the server would get; flags that only the server knows (``--api-key``,
``--chat-template``, tool-calling flags, ...) mean nothing offline and are refused by name.

vLLM is imported only when ``extra_args`` are translated and in :func:`generate`, so the module
imports without vLLM. vLLM starts its engine workers with ``spawn``, which re-imports the main
module: call :func:`generate` from under ``if __name__ == "__main__":`` in a script.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pulumi_vllm.engine.argv import EngineArgs

__all__ = ["OfflineArgsError", "extra_engine_kwargs", "generate", "llm_kwargs"]


class OfflineArgsError(ValueError):
    """Extra arguments that vLLM's engine does not take (server flags, or flags vLLM does not know)."""


def extra_engine_kwargs(extra_args: Sequence[str]) -> dict[str, Any]:
    """``["--enforce-eager", "--max-num-seqs", "8"]`` -> ``{"enforce_eager": True, "max_num_seqs": 8}``.

    The flags are parsed by vLLM's engine-argument parser, so values get vLLM's own types and
    conversions; only the settings the flags change are returned.

    Raises:
        OfflineArgsError: some arguments are not engine arguments; the message is vLLM's.
        ImportError: vLLM is not installed.
    """
    if not extra_args:
        return {}
    from pulumi_vllm.engine.check import VllmArgsError, check_engine_args

    try:
        parsed = vars(check_engine_args(extra_args))
    except VllmArgsError as error:
        hint = " (server flags have no meaning offline)" if error.message.startswith("unrecognized") else ""
        raise OfflineArgsError(f"vllm.LLM does not take these extra arguments: {error.message}{hint}") from None
    defaults = vars(check_engine_args([]))
    return {name: value for name, value in parsed.items() if defaults.get(name) != value}


def llm_kwargs(engine: EngineArgs) -> dict[str, Any]:
    """Keyword arguments of ``vllm.LLM(...)`` that load the model as ``vllm serve`` would for ``engine``.

    Settings left unset (``None``) are omitted so vLLM's own defaults apply, as they do when the
    server is started without the flag. The tokenizer is the model's own, as for the server.

    Raises:
        OfflineArgsError: ``engine.extra_args`` holds arguments that are not engine arguments.
        ImportError: ``engine.extra_args`` is not empty and vLLM is not installed.
    """
    kwargs: dict[str, Any] = {
        "model": engine.model,
        "tokenizer": engine.model,
        "revision": engine.revision,
        # vLLM's parser reads --served-model-name as a list (it takes several names).
        "served_model_name": [engine.served_model_name] if engine.served_model_name else None,
        "trust_remote_code": engine.trust_remote_code,
        "dtype": engine.dtype,
        "max_model_len": engine.max_model_len,
        "gpu_memory_utilization": engine.gpu_memory_utilization,
        "kv_cache_dtype": engine.kv_cache_dtype,
        "quantization": engine.quantization,
        "tensor_parallel_size": engine.tensor_parallel_size,
        "pipeline_parallel_size": engine.pipeline_parallel_size,
        "distributed_executor_backend": engine.distributed_executor_backend,
        "hf_overrides": json.loads(engine.hf_overrides) if engine.hf_overrides else None,
        "runner": engine.runner if engine.runner != "generate" else None,
        "convert": engine.convert,
        "enable_expert_parallel": engine.enable_expert_parallel or None,
    }
    kwargs = {name: value for name, value in kwargs.items() if value is not None}
    # Later flags win on a command line; extra arguments come last there, so they win here too.
    kwargs.update(extra_engine_kwargs(engine.extra_args))
    return kwargs


def generate(
    engine: EngineArgs,
    prompts: Sequence[str],
    temperature: float = 0.8,
    top_p: float = 0.95,
    max_tokens: int = 16,
) -> list[str]:
    """Generate one completion per prompt with ``vllm.LLM`` built from :func:`llm_kwargs`.

    Returns:
        The generated text of each prompt, in the order of ``prompts``.
    """
    from vllm import LLM, SamplingParams

    llm = LLM(**llm_kwargs(engine))
    sampling = SamplingParams(temperature=temperature, top_p=top_p, max_tokens=max_tokens)
    outputs = llm.generate(list(prompts), sampling)
    return [output.outputs[0].text for output in outputs]
