"""The flags of the pinned vLLM release's ``vllm serve``, as data: extra flags checked without vLLM installed.

``serve_flags.json`` beside this module is read from vLLM's own serve parser by
``tools/vllm_flags.py`` (``make vllm-flags``; that file's doc describes the data), and a test checks it
equals what the installed vLLM's parser gives. :func:`check_extra_args` reads arguments appended to
``vllm serve MODEL ...`` as that parser reads them, and refuses what it refuses, in its own words:

- a flag the release does not have: ``unrecognized arguments: --foo`` (every token argparse could
  not place, in order, like ``unrecognized arguments: --tensor-paralel-size 2``);
- a word where none is expected: ``unrecognized arguments: TOKEN``;
- a value outside a flag's choices: ``argument --dtype: invalid choice: 'fp9' (choose from 'auto',
  'bfloat16', ...)`` (a flag with aliases is named by all of them, ``argument --tensor-parallel-size/-tp:``);
- a missing value: ``argument --max-model-len: expected one argument`` (``expected at least one
  argument`` for a flag taking several);
- a value given to a switch: ``argument --enforce-eager/--no-enforce-eager: ignored explicit argument 'x'``;
- an abbreviation that could mean several flags: ``ambiguous option: --enable-p could match ...``.

One thing vLLM's parser accepts is refused on purpose: an abbreviation of one flag
(``--enable-prefix-cachin``, which argparse reads as ``--enable-prefix-caching``), because a later
release may add a flag that makes it ambiguous, or mean another one. It is refused as an unknown
flag with the flag it stands for: ``unrecognized arguments: --enable-prefix-cachin (did you mean
--enable-prefix-caching?)``.

Like vLLM's ``FlexibleArgumentParser``, the arguments are first rewritten as that parser rewrites
them: ``_`` in a flag's name reads as ``-`` (``--max_model_len`` is ``--max-model-len``; messages
show the rewritten name, as vLLM's do), ``-O3``, ``-O=3`` and ``-O 3`` are
``--optimization-level 3``, ``--help=WORD`` is ``--help``, and ``--flag.key value`` (``--flag.key=value``,
``--flag.key+ a,b``) sets one key of a dictionary-valued flag, given as one JSON value after the
other arguments.

Values are checked against choices only: a word that is not a number for a numeric flag, or JSON
vLLM's own types refuse, passes here (vLLM's ``render --check-vllm`` tells those). ``--help``
(and ``-h``) are refused: vLLM would print its help and exit instead of serving. ``--model`` is
refused: after the positional model, vLLM would serve the ``--model`` one and report the positional
as unrecognized. ``--config FILE`` is accepted without reading the file (it is in the container).

Standard library only; the data file is read once, at import.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

__all__ = [
    "VLLM_FLAGS_DEVICE_TYPE",
    "VLLM_FLAGS_VERSION",
    "check_extra_args",
    "flag_name",
    "known_flags",
    "vllm_flags_version",
]

DATA_FILE = "serve_flags.json"
"""The generated data, a package data file of :mod:`pulumi_vllm.engine`."""


@dataclass(frozen=True)
class _Flag:
    """One option string of the serve parser (a line of the data file)."""

    option: str
    action: str
    argument: str
    choices: tuple[str, ...] | None
    convert: str | None
    nargs: int | str | None
    order: int


def _load() -> tuple[dict[str, _Flag], dict[str, Any]]:
    text = resources.files(__package__ or "pulumi_vllm.engine").joinpath(DATA_FILE).read_text(encoding="utf-8")
    document = json.loads(text)
    flags = {
        option: _Flag(
            option=option,
            action=record["action"],
            argument=record["argument"],
            choices=None if record["choices"] is None else tuple(record["choices"]),
            convert=record["convert"],
            nargs=record["nargs"],
            order=record["order"],
        )
        for option, record in document.pop("flags").items()
    }
    return flags, document


_FLAGS, _SOURCE = _load()
_IN_ORDER: tuple[str, ...] = tuple(sorted(_FLAGS, key=lambda option: _FLAGS[option].order))
_ALLOW_ABBREV: bool = bool(_SOURCE["allow_abbrev"])
_KNOWN = frozenset(_FLAGS)

VLLM_FLAGS_VERSION: str = _SOURCE["vllm_version"]
"""The vLLM release whose serve parser the data was read from (e.g. ``0.32.0``)."""

VLLM_FLAGS_DEVICE_TYPE: str = _SOURCE["device_type"]
"""The platform the parser was built for (``cuda``): it decides ``--mm-processor-device``'s choices."""


def vllm_flags_version() -> str:
    """The vLLM release whose serve parser the data was read from (:data:`VLLM_FLAGS_VERSION`)."""
    return VLLM_FLAGS_VERSION


def known_flags() -> frozenset[str]:
    """Every option string of ``vllm serve``: long and short forms, the ``--no-`` forms of switches."""
    return _KNOWN


# --- vLLM's rewriting of the command line (FlexibleArgumentParser.parse_args) ------------------

_OPTIMIZATION_FLAG = "--optimization-level"
_OPTIMIZATION_LEVELS = frozenset({"0", "1", "2", "3"})
_MODEL = re.compile(r"^--model(=.+|$)")


def _dashes(token: str) -> str:
    """``--a_b.c_d=e_f`` -> ``--a-b.c_d=e_f``: ``_`` reads as ``-`` up to the first ``.`` of the name."""
    name, equals, value = token.partition("=")
    head, dot, tail = name[2:].partition(".")
    return "--" + head.replace("_", "-") + dot + tail + equals + value


def _spellings(tokens: Sequence[str]) -> list[str]:
    """Underscores in flag names, ``-O``, ``--help=WORD``: rewritten as vLLM's parser rewrites them."""
    rewritten: list[str] = []
    for index, token in enumerate(tokens):
        if token.startswith("--help="):
            rewritten.append("--help")
        elif token.startswith("--"):
            rewritten.append(_dashes(token))
        elif token.startswith("-O") and token != "-O":
            level = token[3:] if token[2] == "=" else token[2:]
            rewritten += [_OPTIMIZATION_FLAG, level]
        elif token == "-O" and index + 1 < len(tokens) and tokens[index + 1] in _OPTIMIZATION_LEVELS:
            rewritten.append(_OPTIMIZATION_FLAG)
        else:
            rewritten.append(token)
    return rewritten


def _json_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _merge(into: dict[str, Any], update: Mapping[str, Any]) -> None:
    """Merge ``update`` into ``into``: dictionaries key by key, lists appended, anything else replaced."""
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        elif isinstance(value, list) and isinstance(into.get(key), list):
            into[key] += value
        else:
            into[key] = value


def _dotted(tokens: list[str]) -> list[str]:
    """``--flag.a.b value`` -> ``--flag '{"a": {"b": value}}'``, after the other arguments, as vLLM does.

    Every token that starts with ``-`` and has a ``.`` before any ``=`` is such a key (vLLM reads a
    negative decimal like ``-0.5`` so too); its value is the part after ``=`` or the next token.
    """
    kept: list[str] = []
    merged: dict[str, dict[str, Any]] = {}
    index = 0
    while index < len(tokens):
        token = tokens[index]
        index += 1
        if not token.startswith("-") or "." not in token:
            kept.append(token)
            continue
        name, equals, value = token.partition("=")
        if equals and "." not in name:
            kept.append(token)  # the "." is in the value
            continue
        if not equals:
            if index >= len(tokens):
                _missing_dotted_value(name)
            value = tokens[index]
            index += 1
        parsed: Any
        if name.endswith("+"):
            name = name[:-1]
            parsed = value.split(",")
        else:
            parsed = _json_value(value)
        flag, *keys = name.split(".")
        for key in reversed(keys):
            parsed = {key: parsed}
        _merge(merged.setdefault(flag, {}), parsed)
    for flag, keyed in merged.items():
        kept += [flag, json.dumps(keyed)]
    return kept


def _missing_dotted_value(name: str) -> None:
    # vLLM's own parser fails here with an IndexError; say what is missing instead.
    flag = name.split(".", 1)[0]
    if flag in _FLAGS:
        raise ValueError(f"argument {_FLAGS[flag].argument}: expected one argument")
    raise ValueError(f"unrecognized arguments: {name}")


# --- argparse's reading of the rewritten arguments -------------------------------------------

_NEGATIVE_NUMBER = re.compile(r"^-\d+$|^-\d*\.\d+$")


@dataclass(frozen=True)
class _Optional:
    """A token argparse reads as a flag: the flag (None if unknown), as written, an ``=`` value."""

    flag: _Flag | None
    option: str
    explicit: str | None


def _candidates(token: str) -> list[tuple[str, str | None, bool]]:
    """argparse's readings of a token that is no flag as written: (flag, attached value, abbreviated)."""
    found: list[tuple[str, str | None, bool]] = []
    if token[1] == "-":
        if _ALLOW_ABBREV:
            prefix, equals, value = token.partition("=")
            found += [(option, value if equals else None, True) for option in _IN_ORDER if option.startswith(prefix)]
    else:
        # A one-letter flag takes its value attached (-n2); longer single-dash flags can be abbreviated.
        for option in _IN_ORDER:
            if option == token[:2]:
                found.append((option, token[2:], False))
            elif option.startswith(token):
                found.append((option, None, True))
    return found


def _read_token(token: str, abbreviations: dict[str, str]) -> _Optional | None:
    """The flag a token is, or None for a value (argparse's ``_parse_optional``, abbreviations refused)."""
    if not token or token[0] != "-":
        return None
    if token in _FLAGS:
        return _Optional(_FLAGS[token], token, None)
    if len(token) == 1:
        return None
    name, equals, value = token.partition("=")
    if equals and name in _FLAGS:
        return _Optional(_FLAGS[name], name, value)
    found = _candidates(token)
    if len(found) > 1:
        matches = ", ".join(option for option, _, _ in found)
        raise ValueError(f"ambiguous option: {token} could match {matches}")
    if len(found) == 1:
        option, attached, abbreviated = found[0]
        if not abbreviated:
            return _Optional(_FLAGS[option], option, attached)
        # argparse would read it as `option`; refused like a flag the release does not have.
        abbreviations[token] = option
        return _Optional(None, token, None)
    if _NEGATIVE_NUMBER.match(token) or " " in token:
        return None
    return _Optional(None, token, None)


def _count(flag: _Flag, pattern: str) -> int:
    """How many of the following values (``pattern``: ``A`` a value, ``O`` a flag, ``-`` ``--``) it takes."""
    values = len(pattern) - len(pattern.lstrip("A"))
    nargs = flag.nargs
    if nargs is None:
        needed, most = 1, 1
    elif nargs == "?":
        needed, most = 0, 1
    elif nargs == "*":
        needed, most = 0, values
    elif nargs == "+":
        needed, most = 1, values
    elif isinstance(nargs, int):
        needed, most = nargs, nargs
    else:  # the generator refuses a parser with other nargs
        raise AssertionError(f"{flag.option}: nargs {nargs!r}")
    if values < needed:
        if nargs is None:
            message = "expected one argument"
        elif nargs == "+":
            message = "expected at least one argument"
        else:
            message = f"expected {needed} argument" + ("" if needed == 1 else "s")
        raise _error(flag, message)
    return min(values, most)


def _error(flag: _Flag, message: str) -> ValueError:
    return ValueError(f"argument {flag.argument}: {message}")


_CONVERSIONS: dict[str, Callable[[str], Any]] = {
    "str": lambda word: word,
    "none_or_str": lambda word: None if word in ("", "None") else word,
    "lower_underscore": lambda word: word.lower().replace("-", "_"),
    "int": int,
}


def _convert(flag: _Flag, word: str) -> Any:
    assert flag.convert is not None
    try:
        return _CONVERSIONS[flag.convert](word)
    except ValueError:
        raise _error(flag, f"invalid {flag.convert} value: {word!r}") from None


def _check_choice(flag: _Flag, word: str) -> None:
    if flag.choices is None:
        return
    value = _convert(flag, word)
    choices = [_convert(flag, choice) for choice in flag.choices]
    if value not in choices:
        listed = ", ".join(repr(choice) for choice in choices)
        raise _error(flag, f"invalid choice: {value!r} (choose from {listed})")


def _take(flag: _Flag, values: list[str]) -> None:
    """What argparse does with a flag and its values: check the choices, run help."""
    if "--" in values:
        values.remove("--")
    # One value of a one-value flag, or every value of a flag taking several (argparse's _get_values).
    single = flag.nargs in (None, "?")
    if not single or len(values) == 1:
        for value in values:
            _check_choice(flag, value)
    if flag.action in ("help", "version"):
        raise ValueError("the arguments ask vLLM to print help or its version and exit, not to run")


def _groups(tokens: list[str], read: dict[int, _Optional], pattern: str) -> Iterator[int]:
    """Consume the flags in order (argparse's ``consume_optional``); yield the indexes of the tokens left."""
    index = 0
    while index < len(tokens):
        optional = read.get(index)
        if optional is None:
            yield index
            index += 1
            continue
        taken: list[tuple[_Flag, list[str]]] = []
        flag, option, explicit = optional.flag, optional.option, optional.explicit
        while True:
            if flag is None:
                yield index
                stop = index + 1
                break
            if explicit is None:
                count = _count(flag, pattern[index + 1 :])
                stop = index + 1 + count
                taken.append((flag, tokens[index + 1 : stop]))
                break
            count = _count(flag, "A")
            if count == 0 and option[1] != "-" and explicit != "":
                # -hx: a one-letter switch followed by more one-letter flags.
                taken.append((flag, []))
                option = option[0] + explicit[0]
                if option not in _FLAGS:
                    raise _error(flag, f"ignored explicit argument {explicit!r}")
                flag, explicit = _FLAGS[option], explicit[1:] or None
            elif count == 1:
                stop = index + 1
                taken.append((flag, [explicit]))
                break
            else:
                raise _error(flag, f"ignored explicit argument {explicit!r}")
        for taken_flag, values in taken:
            _take(taken_flag, values)
        index = stop


def _unrecognized(left: list[str], abbreviations: Mapping[str, str]) -> str:
    message = "unrecognized arguments: " + " ".join(left)
    meant = [(token, abbreviations[token]) for token in left if token in abbreviations]
    if len(meant) == 1:
        message += f" (did you mean {meant[0][1]}?)"
    elif meant:
        message += " (did you mean " + ", ".join(f"{flag} for {token}" for token, flag in meant) + "?)"
    return message


def check_extra_args(args: Sequence[str]) -> None:
    """Check flags appended to ``vllm serve MODEL ...`` against the pinned release's serve parser.

    Args:
        args: the flags and their values, e.g. ``["--enable-prefix-caching", "--max-num-seqs", "64"]``.

    Raises:
        ValueError: vLLM's parser would refuse them (or, for an abbreviated flag, this project
            does); the message is argparse's, as in the module doc.
    """
    if isinstance(args, str):
        raise TypeError("check_extra_args takes a sequence of arguments, not one string")
    tokens = [str(arg) for arg in args]
    for token in tokens:
        if _MODEL.match(token):
            raise ValueError(
                f"{token}: the model is vllm serve's positional argument; vLLM would serve this one "
                "and report the positional model as unrecognized"
            )
    tokens = _dotted(_spellings(tokens))
    abbreviations: dict[str, str] = {}
    read: dict[int, _Optional] = {}
    pattern = ""
    for index, token in enumerate(tokens):
        if token == "--":
            # Everything after a lone "--" is a value (argparse).
            pattern += "-" + "A" * (len(tokens) - index - 1)
            break
        optional = _read_token(token, abbreviations)
        if optional is None:
            pattern += "A"
        else:
            read[index] = optional
            pattern += "O"
    left = [tokens[index] for index in _groups(tokens, read, pattern)]
    if left:
        raise ValueError(_unrecognized(left, abbreviations))


def flag_name(token: str) -> str | None:
    """The option string a token names as vLLM reads it, or None (a value, an unknown or abbreviated flag).

    ``--max_model_len=8`` and ``--max-model-len`` name ``--max-model-len``, ``-tp=2`` names ``-tp``,
    ``-n2`` names ``-n``, ``-O3`` names ``--optimization-level``, ``--compilation-config.mode`` names
    ``--compilation-config``.
    """
    if token.startswith("--help="):
        token = "--help"
    elif token.startswith("--"):
        name, equals, value = _dashes(token).partition("=")
        token = name.partition(".")[0] + equals + value
    elif token.startswith("-O"):
        return _OPTIMIZATION_FLAG
    elif token.startswith("-"):
        name, equals, value = token.partition("=")
        token = name.partition(".")[0] + equals + value
    try:
        optional = _read_token(token, {})
    except ValueError:  # ambiguous
        return None
    return optional.flag.option if optional is not None and optional.flag is not None else None
