"""Write the flags of ``vllm serve`` of the installed vLLM release, read from vLLM's own argument parser.

Usage: .venv/bin/python tools/vllm_flags.py [--out FILE] [--device-type TYPE] [--check]

The parser is the one ``vllm serve`` parses its arguments with, built as vLLM builds it
(``make_arg_parser(FlexibleArgumentParser())``) without starting anything. Every option string of
it is written to ``components/pulumi_vllm/engine/serve_flags.json`` (the ``--no-...`` forms
``BooleanOptionalAction`` adds and short aliases such as ``-tp`` included), one flag a line::

    "--dtype": {"action": "store", "aliases": [], "argument": "--dtype", "choices": ["auto", ...],
                "convert": "str", "dest": "dtype", "nargs": null, "order": 57, "takes_value": true}

- ``action``: argparse's registered name of the action (``store``, ``store_true``, ``help``, ...),
  else its class name (``BooleanOptionalAction``);
- ``aliases``: the other option strings of the same action, in the parser's order;
- ``argument``: how argparse names the action in its messages (its option strings joined by ``/``);
- ``nargs``: argparse's ``nargs`` (``null``: one value; ``0``: none; ``"?"``, ``"*"``, ``"+"``);
  ``takes_value`` is ``nargs != 0``;
- ``choices``: the accepted values, spelt as on a command line (``None`` for Python's None), in the
  parser's order (argparse lists them in that order when it refuses a value), or null;
- ``convert``: for a flag with choices, how the parser turns the word given into the value it
  compares with the choices: ``str`` (as given), ``none_or_str`` (``""`` and ``"None"`` are None),
  ``lower_underscore`` (lower-cased, ``-`` read as ``_``) or ``int``; null without choices;
- ``order``: the position of the option string in the parser (argparse lists the flags an
  ambiguous abbreviation could mean in that order).

The top level names the vLLM release (``vllm_version``), the platform the parser was built for
(``device_type``, see below) and whether the parser accepts abbreviations (``allow_abbrev``).

One choice list depends on the platform vLLM detects: ``--mm-processor-device`` offers the
accelerator's device type besides ``auto`` and ``cpu``. The parser is built with vLLM's platform
reporting ``--device-type`` (default ``cuda``, the GPUs this project deploys to), so that list is
the one ``vllm serve`` has in the project's images even when the vLLM installed here is a CPU build.

The generator refuses (exit 2) a parser using what :mod:`pulumi_vllm.engine.flags` does not
reproduce (another prefix character, options that look like negative numbers, mutually exclusive
or required options, ``nargs`` of ``argparse.REMAINDER`` or ``PARSER``, choices converted in a way
none of the forms above matches), so a new release that needs more is noticed here.

``--check`` writes nothing and exits 1 when FILE differs from what would be written (for CI).
Needs vLLM installed (``make install-test``); importing it takes several seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared helper beside this script, however it is loaded
from generated import write_or_check

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "components" / "pulumi_vllm" / "engine" / "serve_flags.json"
DEFAULT_DEVICE_TYPE = "cuda"

_MISSING = object()


class UnsupportedParser(SystemExit):
    """The parser uses an argparse feature the pure checker does not reproduce."""

    def __init__(self, message: str) -> None:
        print(f"{Path(__file__).name}: {message}", file=sys.stderr)
        super().__init__(2)
        self.message = message


def installed_vllm_version() -> str:
    """The version of the installed distribution that provides the ``vllm`` package."""
    for dist_name in importlib.metadata.packages_distributions().get("vllm", []):
        try:
            return importlib.metadata.version(dist_name)
        except importlib.metadata.PackageNotFoundError:
            continue
    raise SystemExit("vLLM is not installed (make install-test)")


@contextlib.contextmanager
def platform_device_type(device_type: str) -> Iterator[None]:
    """Let vLLM's detected platform report ``device_type`` while a parser is built."""
    from vllm.platforms import current_platform

    with mock.patch.object(current_platform, "device_type", device_type):
        yield


def serve_parser(device_type: str = DEFAULT_DEVICE_TYPE) -> argparse.ArgumentParser:
    """The argument parser of ``vllm serve``, as vLLM builds it, for a platform of ``device_type``."""
    from vllm.entrypoints.launchers.cli_args import make_arg_parser
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    with platform_device_type(device_type):
        parser: argparse.ArgumentParser = make_arg_parser(FlexibleArgumentParser(prog="vllm serve"))
    return parser


# --- how a word given on the command line becomes the value compared with the choices --------


def _none_or_str(word: str) -> str | None:
    return None if word in ("", "None") else word


def _lower_underscore(word: str) -> str:
    return word.lower().replace("-", "_")


CONVERSIONS: dict[str, Callable[[str], Any]] = {
    "str": lambda word: word,
    "none_or_str": _none_or_str,
    "lower_underscore": _lower_underscore,
    "int": int,
}
"""The forms ``convert`` names; :mod:`pulumi_vllm.engine.flags` implements the same ones."""

_PROBES = ("", "None", "none", "auto", "AUTO", "Auto-Mode", "a_b-c", "1", "01", " 7 ", "-3", "x y", "fp9")


def _outcome(function: Callable[[str], Any], word: str) -> tuple[str, Any]:
    try:
        return "value", function(word)
    except (argparse.ArgumentTypeError, TypeError, ValueError):
        return "refused", None


def _spelling(choice: Any) -> str:
    return str(choice)


def conversion_of(action: argparse.Action, registry_type: Callable[[str], Any]) -> str:
    """The name of the form in :data:`CONVERSIONS` that converts words as ``action``'s type does."""
    flag = action.option_strings[0]
    choices = list(action.choices or ())
    if registry_type is int:
        # argparse names the type in its message ("invalid int value: 'x'"): only int itself says "int".
        return "int"
    probes = [*_PROBES, *(_spelling(choice) for choice in choices)]
    for name, function in CONVERSIONS.items():
        if name == "int":
            continue
        if all(_outcome(function, word) == _outcome(registry_type, word) for word in probes):
            unreachable = [choice for choice in choices if function(_spelling(choice)) != choice]
            if unreachable:
                raise UnsupportedParser(f"{flag}: no word selects the choices {unreachable!r}")
            return name
    raise UnsupportedParser(f"{flag}: its type {registry_type!r} converts words in a way no known form matches")


# --- the flags ------------------------------------------------------------------------------


def _action_name(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    registered = {value: key for key, value in parser._registries["action"].items() if key is not None}
    cls = type(action)
    return str(registered.get(cls, cls.__name__))


def _check_parser(parser: argparse.ArgumentParser) -> None:
    if parser.prefix_chars != "-":
        raise UnsupportedParser(f"prefix characters {parser.prefix_chars!r}")
    if parser.fromfile_prefix_chars:
        raise UnsupportedParser(f"argument files ({parser.fromfile_prefix_chars!r})")
    if parser._has_negative_number_optionals:
        raise UnsupportedParser("options that look like negative numbers")
    if parser._mutually_exclusive_groups:
        raise UnsupportedParser("mutually exclusive options")
    positionals = [action for action in parser._actions if not action.option_strings]
    if [(action.dest, action.nargs) for action in positionals] != [("model_tag", "?")]:
        raise UnsupportedParser(f"positionals other than the model: {[action.dest for action in positionals]}")
    for action in parser._actions:
        if action.option_strings and action.required:
            raise UnsupportedParser(f"a required option: {action.option_strings}")
        if action.nargs in (argparse.REMAINDER, argparse.PARSER, argparse.SUPPRESS):
            raise UnsupportedParser(f"{action.option_strings}: nargs {action.nargs!r}")
        if action.nargs == argparse.OPTIONAL and action.choices is not None and isinstance(action.const, str):
            raise UnsupportedParser(f"{action.option_strings}: a checked str const")


def flag_records(parser: argparse.ArgumentParser) -> dict[str, dict[str, Any]]:
    """One record per option string of ``parser`` (see the module doc)."""
    _check_parser(parser)
    order = {option: index for index, option in enumerate(parser._option_string_actions)}
    records: dict[str, dict[str, Any]] = {}
    for option, action in parser._option_string_actions.items():
        registry_type = parser._registry_get("type", action.type, action.type)
        choices = None if action.choices is None else [_spelling(choice) for choice in action.choices]
        records[option] = {
            "action": _action_name(parser, action),
            "aliases": [other for other in action.option_strings if other != option],
            "argument": "/".join(action.option_strings),
            "choices": choices,
            "convert": None if choices is None else conversion_of(action, registry_type),
            "dest": action.dest,
            "nargs": action.nargs,
            "order": order[option],
            "takes_value": action.nargs != 0,
        }
    return records


def build(device_type: str = DEFAULT_DEVICE_TYPE) -> dict[str, Any]:
    """The whole document for the installed vLLM."""
    parser = serve_parser(device_type)
    return {
        "allow_abbrev": parser.allow_abbrev,
        "device_type": device_type,
        "flags": flag_records(parser),
        "vllm_version": installed_vllm_version(),
    }


def render(document: Mapping[str, Any]) -> str:
    """The JSON text: one flag a line, keys sorted, so a change of release reads as a short diff."""
    lines = []
    for key in sorted(document):
        if key == "flags":
            flags = document[key]
            body = ",\n".join(f"  {json.dumps(flag)}: {json.dumps(flags[flag], sort_keys=True)}" for flag in sorted(flags))
            lines.append(f' "flags": {{\n{body}\n }}')
        else:
            lines.append(f" {json.dumps(key)}: {json.dumps(document[key], sort_keys=True)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default: {DEFAULT_OUT.relative_to(ROOT)}")
    parser.add_argument(
        "--device-type",
        default=DEFAULT_DEVICE_TYPE,
        help=f"the platform's device type the parser is built for (default: {DEFAULT_DEVICE_TYPE})",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if --out differs, writing nothing")
    args = parser.parse_args(argv)
    document = build(args.device_type)
    text = render(document)
    code = write_or_check(args.out, text, Path(__file__).name, "vllm-flags", args.check)
    if args.check or code:
        return code
    flags = document["flags"]
    with_choices = sum(1 for record in flags.values() if record["choices"] is not None)
    print(
        f"wrote {len(flags)} flags of vllm serve {document['vllm_version']} "
        f"({with_choices} with choices) to {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
