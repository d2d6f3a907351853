"""The flags of the pinned vLLM release's ``vllm serve``, as data: extra flags checked without vLLM installed.

``serve_flags.json`` beside this module is generated from vLLM's own serve parser by
``tools/vllm_flags.py`` (``make vllm-flags``); a test checks it equals what the installed vLLM's parser
accepts. :func:`check_extra_args` refuses what that parser refuses (an unknown flag, a value outside a
flag's choices, a missing value) in argparse's own words, and one thing it accepts on purpose: an
abbreviated flag (argparse's ``allow_abbrev``), which a later vLLM release can make ambiguous or
change the meaning of. Like vLLM's ``FlexibleArgumentParser``, ``--max_model_len`` is read as
``--max-model-len``, and ``--flag.key value`` sets one key of a dictionary-valued flag.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import Any

DATA_FILE = "serve_flags.json"


@cache
def _data() -> dict[str, Any]:
    return dict(json.loads(resources.files(__package__).joinpath(DATA_FILE).read_text()))


def vllm_flags_version() -> str:
    """The vLLM release whose parser the data was read from."""
    return str(_data()["vllm_version"])


def known_flags() -> frozenset[str]:
    """Every option string ``vllm serve`` accepts (long and short forms)."""
    return frozenset(_data()["flags"])


def _normalise(flag: str) -> str:
    if flag.startswith("--"):
        name, dot, rest = flag[2:].partition(".")
        return "--" + name.replace("_", "-") + dot + rest
    return flag


def _expected(nargs: str) -> str:
    return {"1": "expected one argument", "+": "expected at least one argument"}.get(nargs, "expected an argument")


def _choice(flag: str, value: str, choices: list[str] | None) -> None:
    if choices is not None and value not in choices:
        listed = ", ".join(repr(choice) for choice in choices)
        raise ValueError(f"argument {flag}: invalid choice: {value!r} (choose from {listed})")


def check_extra_args(args: Sequence[str]) -> None:
    """Raise ``ValueError`` with argparse's wording for the first token ``vllm serve`` would refuse."""
    flags: dict[str, Any] = _data()["flags"]
    tokens = [str(arg) for arg in args]
    index = 0
    while index < len(tokens):
        token = tokens[index]
        index += 1
        if not token.startswith("-") or token == "-":
            raise ValueError(f"unrecognized arguments: {token}")
        written, has_value, attached = token.partition("=")
        flag = _normalise(written)
        base = flag.split(".", 1)[0] if flag.startswith("--") else flag
        spec = flags.get(base)
        if spec is None and not flag.startswith("--") and len(flag) > 2 and flag[:2] in flags:
            # A short flag with its value attached (-O3).
            spec, base, has_value, attached = flags[flag[:2]], flag[:2], "=", flag[2:]
        if spec is None:
            matches = sorted(name for name in flags if name.startswith(base) and name.startswith("--"))
            if base.startswith("--") and matches:
                hint = matches[0] if len(matches) == 1 else ", ".join(matches[:5])
                raise ValueError(
                    f"unrecognized arguments: {written} (an abbreviation of {hint}: pulumi-vllm needs the whole "
                    "flag, which a later vLLM release cannot make ambiguous)"
                )
            raise ValueError(f"unrecognized arguments: {written}")
        nargs = spec["nargs"]
        if nargs == "0":
            if has_value and base == flag:
                raise ValueError(f"argument {base}: ignored explicit argument {attached!r}")
            continue
        if has_value:
            _choice(base, attached, spec["choices"])
            continue
        values = []
        while index < len(tokens) and not (tokens[index].startswith("-") and len(tokens[index]) > 1
                                          and not _is_number(tokens[index])):
            values.append(tokens[index])
            index += 1
            if nargs in ("1", "?"):
                break
        if not values and nargs in ("1", "+"):
            raise ValueError(f"argument {base}: {_expected(nargs)}")
        for value in values:
            _choice(base, value, spec["choices"])


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True
