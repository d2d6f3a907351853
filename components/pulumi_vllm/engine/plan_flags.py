"""Flags in ``engine.extraArgs`` that the serving plan depends on: each is refused or folded into the plan.

The plan decides the GPUs of a pod, the capacity verdict and what the policy pack compares from the
stack's keys. A flag in ``engine.extraArgs`` that sets one of those values would be appended after the
flag the plan renders, and vLLM's parser (argparse) keeps the last one: the pod would request the GPUs
of one layout while vLLM starts another. So every flag of :data:`OWNED_FLAGS` is refused, naming the key
that owns it; the flags of :data:`FOLDED_FLAGS` stay on the command line once and the plan reads their
value (:func:`folded_value`); ``--hf-overrides`` is moved into ``engine.hfOverrides`` by the config.

Flags are recognised in every spelling vLLM's parser reads (``--tensor-parallel-size 2``,
``--tensor_parallel_size=2``, ``-tp 2``, ``-tp=2``, ``-q fp8``, ``-qfp8``, the ``--no-`` form of a
switch), by the destination vLLM's parser stores them in (``dest`` in ``serve_flags.json``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

from pulumi_vllm.engine.flags import flag_name

__all__ = ["FOLDED_FLAGS", "OWNED_FLAGS", "FlagSetting", "check_plan_flags", "find_settings", "folded_value"]


def _dests() -> dict[str, tuple[str, bool]]:
    text = resources.files("pulumi_vllm.engine").joinpath("serve_flags.json").read_text(encoding="utf-8")
    flags = json.loads(text)["flags"]
    return {option: (record["dest"], bool(record["takes_value"])) for option, record in flags.items()}


_DESTS = _dests()

OWNED_FLAGS: dict[str, tuple[str, str]] = {
    "tensor_parallel_size": ("--tensor-parallel-size", "parallelism.tensorParallelSize"),
    "pipeline_parallel_size": ("--pipeline-parallel-size", "parallelism.pipelineParallelSize"),
    "data_parallel_size": ("--data-parallel-size", "parallelism.dataParallelSize"),
    "data_parallel_size_local": ("--data-parallel-size-local", "parallelism.dataParallelSize"),
    "enable_expert_parallel": ("--enable-expert-parallel", "parallelism.enableExpertParallel"),
    "max_model_len": ("--max-model-len", "engine.maxModelLen"),
    "kv_cache_dtype": ("--kv-cache-dtype", "engine.kvCacheDtype"),
    "gpu_memory_utilization": ("--gpu-memory-utilization", "engine.gpuMemoryUtilization"),
    "quantization": ("--quantization", "engine.quantization"),
    "dtype": ("--dtype", "engine.dtype"),
    "runner": ("--runner", "engine.runner"),
    "convert": ("--convert", "engine.convert"),
}
"""vLLM's ``dest`` -> (the flag's long name, the stack key that sets it): refused in ``engine.extraArgs``."""

FOLDED_FLAGS: dict[str, str] = {
    "max_num_seqs": "--max-num-seqs",
    "max_num_batched_tokens": "--max-num-batched-tokens",
}
"""vLLM's ``dest`` -> long name of the flags kept in ``engine.extraArgs`` whose value the capacity planner reads."""

HF_OVERRIDES = "hf_overrides"
"""The ``dest`` of ``--hf-overrides``, folded into ``engine.hfOverrides``."""


@dataclass(frozen=True)
class FlagSetting:
    """One flag of the plan's found in the extra arguments."""

    dest: str
    """Where vLLM's parser stores it (``tensor_parallel_size``)."""
    written: str
    """The tokens as the user wrote them (``-tp 2``)."""
    value: str | None
    """The value given (``2``); ``None`` for a switch; ``"false"`` for the ``--no-`` form of a switch."""
    start: int
    """Index of the flag's first token in the arguments."""
    stop: int
    """Index after its last token."""
    dotted: bool = False
    """Given as ``--flag.key value`` (one key of a dictionary-valued flag)."""


def _setting(args: Sequence[str], index: int, option: str) -> FlagSetting:
    token = args[index]
    dest, takes_value = _DESTS[option]
    name, equals, attached = token.partition("=")
    dotted = token.startswith("--") and "." in name
    if not takes_value:
        value = "false" if name.lstrip("-").startswith("no-") else None
        return FlagSetting(dest, token, value, index, index + 1)
    if equals and not dotted:
        return FlagSetting(dest, token, attached, index, index + 1)
    if not token.startswith("--") and option == token[:2] and len(token) > 2:
        return FlagSetting(dest, token, token[2:], index, index + 1)  # -qfp8
    if dotted and equals:
        return FlagSetting(dest, token, attached, index, index + 1, dotted=True)
    value = args[index + 1] if index + 1 < len(args) else None
    return FlagSetting(dest, f"{token} {value}" if value is not None else token, value, index, index + 2, dotted)


def find_settings(args: Sequence[str]) -> list[FlagSetting]:
    """The flags of :data:`OWNED_FLAGS`, :data:`FOLDED_FLAGS` and ``--hf-overrides`` in ``args``, in order.

    ``args`` are flags vLLM's parser accepts (checked before by :func:`pulumi_vllm.engine.flags.check_extra_args`).
    """
    found: list[FlagSetting] = []
    index = 0
    wanted = {*OWNED_FLAGS, *FOLDED_FLAGS, HF_OVERRIDES}
    while index < len(args):
        option = flag_name(str(args[index]))
        if option is None or option not in _DESTS:
            index += 1
            continue
        setting = _setting([str(arg) for arg in args], index, option)
        if setting.dest in wanted:
            found.append(setting)
        index = setting.stop if _DESTS[option][1] else index + 1
    return found


def check_plan_flags(args: Sequence[str]) -> None:
    """Refuse a flag the plan owns, or a folded flag given twice (vLLM would keep the last).

    Raises:
        ValueError: naming the flag as written, its value and the key to set instead.
    """
    seen: dict[str, FlagSetting] = {}
    for setting in find_settings(args):
        if setting.dest in OWNED_FLAGS:
            flag, key = OWNED_FLAGS[setting.dest]
            if setting.value in (None, "false"):  # a switch: --enable-expert-parallel, -ep, --no-...
                value, shown = ("true", flag) if setting.value is None else ("false", f"--no-{flag[2:]}")
            else:
                value, shown = setting.value, f"{flag} {setting.value}"
            alias = "" if setting.written.replace("=", " ") == shown else f" (as {setting.written})"
            raise ValueError(
                f"sets {shown}{alias}, which the plan takes from {key}; set {key}: {value} instead and remove "
                "the flag, so that the command line carries it once"
            )
        if setting.dest in seen:
            first = seen[setting.dest]
            raise ValueError(
                f"gives {first.written!r} and {setting.written!r}: vLLM keeps the last one; give the flag once"
            )
        seen[setting.dest] = setting


def folded_value(args: Sequence[str], dest: str) -> int | None:
    """The whole-number value of a folded flag (``max_num_seqs``) in ``args``, or ``None`` when absent or not a number."""
    for setting in find_settings(args):
        if setting.dest == dest and setting.value is not None:
            try:
                return int(setting.value)
            except ValueError:
                return None
    return None
