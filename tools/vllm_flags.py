"""Write components/pulumi_vllm/engine/serve_flags.json: the flags of the installed vLLM's ``vllm serve``.

For every option string of the serve parser (long and short forms, ``--no-`` forms of boolean
flags): how many values it takes and, where the parser restricts them, the accepted choices. Run with
the project's virtualenv (``make vllm-flags``); ``--check`` exits 1 when the committed file differs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[1] / "components" / "pulumi_vllm" / "engine" / "serve_flags.json"


def _arity(action: argparse.Action) -> str:
    """``"0"`` (a switch), ``"1"`` (one value), ``"?"`` (an optional value), ``"+"`` / ``"*"`` (several)."""
    if action.nargs == 0 or isinstance(action, (argparse._StoreConstAction, argparse._CountAction)):
        return "0"
    if isinstance(action, argparse.BooleanOptionalAction):
        return "0"
    if action.nargs is None:
        return "1"
    return str(action.nargs)


def serve_flags() -> dict[str, Any]:
    """The serve parser's options, read from vLLM itself."""
    import vllm
    from vllm.entrypoints.cli.serve import ServeSubcommand
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    top = FlexibleArgumentParser(prog="vllm")
    subparsers = top.add_subparsers(dest="subparser")
    parser = ServeSubcommand().subparser_init(subparsers)
    flags: dict[str, Any] = {}
    for action in parser._actions:
        if not action.option_strings or isinstance(action, argparse._HelpAction):
            continue
        choices = [str(choice) for choice in action.choices] if action.choices else None
        for option in action.option_strings:
            flags[option] = {"dest": action.dest, "nargs": _arity(action), "choices": choices}
    return {"vllm_version": vllm.__version__.split("+")[0], "flags": dict(sorted(flags.items()))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--check", action="store_true", help="compare with --out instead of writing it")
    args = parser.parse_args(argv)
    text = json.dumps(serve_flags(), indent=1, sort_keys=True) + "\n"
    if args.check:
        if not args.out.is_file() or args.out.read_text() != text:
            print(f"{args.out} is not what the installed vLLM's parser gives; run: make vllm-flags", file=sys.stderr)
            return 1
        return 0
    args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
