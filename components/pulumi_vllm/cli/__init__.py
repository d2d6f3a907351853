"""The ``pulumi-vllm`` command: every sub-command in one place, each module adding its own parser.

``render`` (:mod:`.render`), ``size`` (:mod:`.size`), ``diff`` (:mod:`.diff`) and ``bench`` (:mod:`.bench`). The top of the
package: it may import everything below it, and nothing imports it but the console script.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from pulumi_vllm.errors import UserError

__all__ = ["UserError", "build_parser", "console_main", "main"]

# Each module exposes ``add_parser(subparsers)``, which registers its sub-command and sets
# ``func(args) -> int`` as the parser default. Modules are imported lazily so that a fast
# command never pays for a slow import (vLLM, gRPC) of another.
SUBCOMMANDS = {
    "render": "pulumi_vllm.cli.render",
    "size": "pulumi_vllm.cli.size",
    "diff": "pulumi_vllm.cli.diff",
    "bench": "pulumi_vllm.cli.bench",
}


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every available sub-command."""
    parser = argparse.ArgumentParser(
        prog="pulumi-vllm",
        description="Render, size and review vLLM serving stacks built with Pulumi.",
    )
    from pulumi_vllm import __version__
    from pulumi_vllm.config import VLLM_VERSION

    parser.add_argument(
        "--version", action="version", version=f"pulumi-vllm {__version__} (vLLM {VLLM_VERSION})"
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in SUBCOMMANDS.values():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name and module_name.startswith(error.name):
                continue
            raise
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def console_main() -> None:
    """Console-script entry: run, flush, and leave without interpreter-exit noise from gRPC/asyncio. A reader that
    closes the pipe early (``pulumi-vllm size ... | head``) ends the output quietly, as other command-line tools do."""
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 141  # 128 + SIGPIPE, what a shell reports for a command stopped by a closed pipe
    sys.stderr.flush()
    # The Pulumi runtime leaves an event loop whose finaliser prints a spurious error at exit.
    os._exit(code)

