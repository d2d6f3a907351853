"""``pulumi-vllm bench URL``: the load test of the ``loadTest`` Job, run from this machine.

It builds the same ``vllm bench serve`` command line as the Job (:func:`pulumi_vllm.engine.jobs.bench_serve_argv`)
and runs it, so a result taken through ``kubectl port-forward`` compares with the in-cluster one. Needs vLLM
installed locally (``vllm bench serve`` is part of vLLM); ``--print`` only shows the command.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from typing import Any

from pydantic import ValidationError

from pulumi_vllm.config import LoadTestSpec
from pulumi_vllm.engine.jobs import BENCH_API_KEY_ENV, BENCH_COMMAND, bench_serve_argv
from pulumi_vllm.errors import UserError


def bench_argv(args: argparse.Namespace) -> list[str]:
    """The ``vllm bench serve`` command line for the parsed arguments (``--vllm`` replaces ``vllm``)."""
    try:
        spec = LoadTestSpec(
            request_rate=args.request_rate if args.request_rate == "inf" else float(args.request_rate),
            max_concurrency=args.max_concurrency,
            input_len=args.input_len,
            output_len=args.output_len,
            num_prompts=args.num_prompts,
            seed=args.seed,
        )
    except (ValidationError, ValueError) as error:
        raise UserError(f"invalid load test: {error}") from None
    argv = bench_serve_argv(
        spec,
        base_url=args.url.rstrip("/").removesuffix("/v1"),
        model=args.model,
        served_model_name=args.served_model_name,
        result_dir=args.result_dir,
        result_filename=args.result_filename,
        ready_check_timeout_seconds=args.ready_check_timeout,
    )
    return [*shlex.split(args.vllm), *argv[1:]] if args.vllm != BENCH_COMMAND[0] else argv


def run(args: argparse.Namespace) -> int:
    """Run (or with ``--print`` show) the benchmark; its exit code is the command's."""
    argv = bench_argv(args)
    if args.print:
        print(shlex.join(argv))
        return 0
    env = dict(os.environ)
    if args.api_key_env and args.api_key_env in os.environ:
        env[BENCH_API_KEY_ENV] = os.environ[args.api_key_env]
    try:
        completed = subprocess.run(argv, env=env, check=False)
    except FileNotFoundError:
        raise UserError(f"{argv[0]!r} was not found: install vLLM (pip install vllm) or pass --vllm") from None
    if completed.returncode == 0:
        print(f"result: {os.path.join(args.result_dir, args.result_filename)}", file=sys.stderr)
        if args.gpu is not None:
            from pathlib import Path

            from pulumi_vllm.cli.bench_predicted import report

            return report(args, Path(args.result_dir) / args.result_filename)
    return completed.returncode


def add_parser(subparsers: Any) -> None:
    """Register ``bench``."""
    defaults = LoadTestSpec()
    parser = subparsers.add_parser(
        "bench",
        help="run vLLM's own load test (vllm bench serve) against a served endpoint",
        description=(
            "Run 'vllm bench serve' against URL (the server root or its /v1 base URL) with the same command line "
            "as the stack's loadTest Job: random prompts of --input-len tokens, --output-len tokens out, "
            "--num-prompts requests at --request-rate per second. The result JSON is written to "
            "--result-dir/--result-filename. The API key is read from $OPENAI_API_KEY (or the variable "
            "--api-key-env names)."
        ),
    )
    parser.add_argument("url", help="e.g. http://localhost:8080 after kubectl port-forward svc/<name> 8080:80")
    parser.add_argument("--model", required=True, help="model id or path: the client loads its tokenizer")
    parser.add_argument("--served-model-name", default=None, help="the name requests use (default: --model)")
    parser.add_argument("--request-rate", default=str(defaults.request_rate), help="requests per second, or inf")
    parser.add_argument("--max-concurrency", type=int, default=None)
    parser.add_argument("--input-len", type=int, default=defaults.input_len)
    parser.add_argument("--output-len", type=int, default=defaults.output_len)
    parser.add_argument("--num-prompts", type=int, default=defaults.num_prompts)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--ready-check-timeout", type=int, default=60, help="seconds to wait for the endpoint")
    parser.add_argument("--result-dir", default=".")
    parser.add_argument("--result-filename", default="bench-serve.json")
    parser.add_argument("--api-key-env", default=None, help="environment variable holding the API key")
    parser.add_argument("--vllm", default=BENCH_COMMAND[0], help="the vllm command to run (default: vllm)")
    parser.add_argument("--print", action="store_true", help="print the command instead of running it")
    from pulumi_vllm.cli.bench_predicted import add_arguments

    add_arguments(parser)
    parser.set_defaults(func=run)
