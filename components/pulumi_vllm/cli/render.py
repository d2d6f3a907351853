"""``pulumi-vllm render``: the stack's real program under the mock runtime, written out as files."""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pulumi_vllm.config import PROJECT, ClusterSpec, ConfigError, StackConfig, load_program_config
from pulumi_vllm.config.models import check_model_groups
from pulumi_vllm.plan import ServingPlan, plan_serving
from pulumi_vllm.render import (
    cloud_files,  # noqa: F401 - registers the cloud resources' files
    docker_files,  # noqa: F401 - registers the Docker target's files
    helm_files,  # noqa: F401 - registers the Helm releases' files
)
from pulumi_vllm.render.engine import (
    ProgramRun,
    RenderError,
    apply_config_override,
    read_stack_files,
    run_program,
)
from pulumi_vllm.render.manifests import rendered_documents, write_documents


@dataclass
class RenderedStack:
    """A stack rendered in memory: the program run, its files, and the plan behind them."""

    stack: str
    config: StackConfig | None
    """The serving config; ``None`` for a stack that only provisions the GPU platform."""
    plan: ServingPlan | None
    run: ProgramRun
    documents: list[tuple[str, Any]]
    cluster: ClusterSpec | None = None
    """The GPU platform section, when the stack has one."""

    def summary(self) -> list[str]:
        """The short terminal summary: model, GPUs, image, URL (and more where known)."""
        from pulumi_vllm.render.summary import summary_lines

        return summary_lines(self)


def render_stack(
    project_dir: Path,
    stack: str,
    env: dict[str, str] | None = None,
    overrides: dict[str, str] | None = None,
    secrets: Mapping[str, str | None] | None = None,
) -> RenderedStack:
    """Validate the stack's config, run its program under mocks and build its files (nothing written).

    Any Pulumi Python program renders, with its own project name and config; ``overrides`` are
    ``--config key=value`` pairs (a key without ``project:`` is the program's own; a dotted key sets a
    value inside an object, as ``pulumi config set --path`` does); ``secrets`` are secret keys the stack
    declares beyond its file (``--secret KEY[=VALUE]``; ``None``: from ``PULUMI_VLLM_SECRET_<KEY>``). The config is
    validated against this project's stack schema only when the program is this project's
    (``name: pulumi-vllm``); another program's components validate their own Args as they run.
    Raises :class:`ConfigError` for invalid config and :class:`RenderError` for missing files.
    """
    project, flat, secret_keys = read_stack_files(project_dir, stack, env, secrets)
    for key, value in (overrides or {}).items():
        apply_config_override(flat, project, key, value)
    return _render(project_dir, stack, flat, secret_keys, project)


def _render(project_dir: Path, stack: str, flat: dict[str, str], secret_keys: list[str], project: str) -> RenderedStack:
    config: StackConfig | None = None
    cluster: ClusterSpec | None = None
    if project == PROJECT:
        config, cluster = load_program_config(flat, secret_keys=secret_keys)
    if config is not None:
        check_model_groups(config, plan_serving)
    plan = plan_serving(config) if config is not None else None
    # The program's own progress chatter (Pulumi's mock engine logs) is not the user's concern.
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(stderr):
            run = run_program(project_dir, stack, flat, secret_keys, project)
    except SystemExit as exit_:
        # The program refused its config (its __main__ prints the message and exits 1, which `pulumi up` shows):
        # the same message as every other refusal of bad input, `error:` and exit code 2 included.
        message = stderr.getvalue().strip()
        if exit_.code in (0, None) or not message:
            sys.stderr.write(stderr.getvalue())
            raise
        raise ConfigError(message) from None
    except BaseException:
        sys.stderr.write(stderr.getvalue())
        raise
    sys.stderr.write(stderr.getvalue())
    return RenderedStack(
        stack=stack, config=config, plan=plan, run=run, documents=rendered_documents(run), cluster=cluster
    )


def find_project(start: Path) -> Path:
    """The nearest folder at or above ``start`` holding a Pulumi.yaml."""
    for folder in [start, *start.parents]:
        if (folder / "Pulumi.yaml").is_file():
            return folder
    raise RenderError(f"no Pulumi.yaml in {start} or above it")


def add_parser(subparsers: Any) -> None:
    """Register ``render``."""
    parser = subparsers.add_parser(
        "render",
        help="run a stack's program offline (Pulumi mock runtime) and write the objects it would create",
        description=(
            "Run the stack's real Pulumi program under Pulumi's mock runtime and write one YAML file per "
            "object into --out. Secret values are redacted; the secrets the stack declares (secure values in its "
            "file, --secret KEY) are read from PULUMI_VLLM_SECRET_<KEY> (e.g. PULUMI_VLLM_SECRET_HF_TOKEN) or "
            "replaced by a placeholder."
        ),
    )
    parser.add_argument("--stack", required=True, help="stack name (reads Pulumi.<stack>.yaml)")
    parser.add_argument("--out", required=True, type=Path, help="output folder (replaced)")
    parser.add_argument("--project", type=Path, default=None, help="project folder (default: nearest Pulumi.yaml)")
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=(
            "set a config value over the stack file's, as pulumi config set --path writes it (repeatable; KEY "
            "without 'project:' is the program's own; engine.quantization=fp8 and a[0]=x set values inside objects)"
        ),
    )
    parser.add_argument(
        "--secret",
        action="append",
        default=[],
        metavar="KEY[=VALUE]",
        help=(
            "declare a secret config key as pulumi config set --secret does (repeatable); its value is VALUE, "
            "else PULUMI_VLLM_SECRET_<KEY>, else a placeholder"
        ),
    )
    parser.add_argument(
        "--check-vllm",
        action="store_true",
        help="parse every rendered vLLM command with the installed vLLM (needs the 'vllm' extra; slow to import)",
    )
    parser.add_argument("--policy-pack", type=Path, default=None, help="run this Pulumi policy pack over the result")
    parser.add_argument("--policy-pack-config", type=Path, default=None, help="policy pack config (JSON)")
    parser.set_defaults(func=run_render)


def run_render(args: argparse.Namespace) -> int:
    """Render one stack; exit 0, or 2 on invalid config, 1 on a failed check."""
    from pulumi_vllm.errors import UserError

    try:
        project_dir = args.project or find_project(Path.cwd())
        rendered = render_stack(
            project_dir, args.stack, overrides=config_overrides(args.config), secrets=secret_declarations(args.secret)
        )
    except (ConfigError, RenderError) as error:
        raise UserError(str(error)) from None
    written = write_documents(args.out, rendered.documents)
    print(f"rendered stack '{args.stack}': {len(written)} files in {os.path.relpath(args.out)}")
    if rendered.run.project != PROJECT:
        print(f"  program:  project '{rendered.run.project}', {len(rendered.run.registrations)} resources")
    for line in rendered.summary():
        print(f"  {line}")
    status = 0
    if args.check_vllm:
        from pulumi_vllm.render.checks import check_vllm_commands

        status = max(status, check_vllm_commands(rendered))
    if args.policy_pack is not None:
        from pulumi_vllm.render.checks import check_policies

        status = max(status, check_policies(rendered, args.policy_pack, args.policy_pack_config))
    return status


def config_overrides(pairs: list[str]) -> dict[str, str]:
    """``["replicas=2", "other:key=x"]`` -> ``{"replicas": "2", "other:key": "x"}``; a pair without ``=`` is refused."""
    from pulumi_vllm.errors import UserError

    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UserError(f"--config {pair!r}: expected KEY=VALUE")
        overrides[key] = value
    return overrides


def secret_declarations(pairs: list[str]) -> dict[str, str | None]:
    """``["hfToken", "apiKey=k"]`` -> ``{"hfToken": None, "apiKey": "k"}`` (``None``: the value comes from the environment)."""
    from pulumi_vllm.errors import UserError

    declared: dict[str, str | None] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not key or "." in key or "[" in key:
            raise UserError(f"--secret {pair.partition('=')[0]!r}: expected a top-level config key, e.g. --secret hfToken")
        declared[key] = value if sep else None
    return declared


def flat_config(values: dict[str, Any], project: str = "pulumi-vllm") -> dict[str, str]:
    """``{"model": {...}, "replicas": 2}`` -> the runtime's flat ``{"pulumi-vllm:model": "<json>"}`` form."""
    from pulumi_vllm.render.engine import _to_config_string

    return {f"{project}:{key}": _to_config_string(value) for key, value in values.items()}


def render_config(values: dict[str, Any], project_dir: Path | None = None, stack: str = "test") -> RenderedStack:
    """Render a stack given as a dict of top-level config keys (secrets included as plain values)."""
    from pulumi_vllm.config import SECRET_KEYS

    project_dir = project_dir or Path(__file__).resolve().parents[3]
    flat = flat_config(values)
    secret_keys = [f"pulumi-vllm:{key}" for key in SECRET_KEYS if key in values]
    return _render(project_dir, stack, flat, secret_keys, "pulumi-vllm")
