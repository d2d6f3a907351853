"""``pulumi-vllm diff``: render every stack at a base revision and in the working tree, and compare.

The program at the base revision is that revision's own ``__main__.py``, ``Pulumi.yaml`` and stack
files; the rendering engine and components are the installed package, as for ``render``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from pathlib import Path
from typing import Any

import yaml

from pulumi_vllm.cli.size_objective import predicted_lines
from pulumi_vllm.render.engine import stack_files
from pulumi_vllm.review.report import (
    EXIT_CHANGES,
    EXIT_MANDATORY_VIOLATION,
    EXIT_NO_CHANGES,
    DiffReport,
    StackSide,
    Verdict,
    compare_stack,
    format_markdown,
    format_text,
)

CAPACITY_LABELS = ("kv cache", "kv-cache", "capacity", "concurrency")
"""Summary lines whose label starts with one of these are the capacity line(s)."""


def add_parser(subparsers: Any) -> None:
    """Register ``diff``."""
    parser = subparsers.add_parser(
        "diff",
        help="render stacks at a git revision and in the working tree, and report what the change does",
        description=(
            "Render each stack offline at --base and in the working tree, and report objects added, removed "
            "and changed (with manifest diffs), what that does on the cluster (pods restarted, objects "
            "replaced, data lost), GPUs, capacity and policy verdicts before and after. Exit codes: 0 no "
            "changes, 3 changes, 4 a mandatory policy violation after the change, 2 an error."
        ),
    )
    parser.add_argument("--base", required=True, help="git revision to compare against (e.g. origin/main)")
    parser.add_argument(
        "--stack",
        action="append",
        default=None,
        metavar="NAME",
        help="stack to compare (repeatable; default: every Pulumi.<stack>.yaml at either revision)",
    )
    parser.add_argument("--format", choices=("text", "markdown"), default="text", help="report format (default text)")
    parser.add_argument("--out", type=Path, default=None, help="write the report to this file instead of stdout")
    parser.add_argument("--project", type=Path, default=None, help="project folder (default: nearest Pulumi.yaml)")
    parser.add_argument(
        "--policy-pack",
        type=Path,
        default=None,
        help="policy pack to judge both sides with (default: policies/ when it holds a pack)",
    )
    parser.add_argument("--policy-pack-config", type=Path, default=None, help="policy pack config (JSON)")
    parser.add_argument("--no-policy", action="store_true", help="do not run the policy pack")
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a config value over the stack files' on both sides (repeatable; KEY without 'project:' is the program's own)",
    )
    parser.set_defaults(func=run_diff)


def stack_names(folder: Path | None) -> set[str]:
    """Stacks with a ``Pulumi.<stack>.yaml`` in ``folder`` or its ``examples/stacks/``."""
    if folder is None:
        return set()
    return set(stack_files(folder))


def secure_digests(folder: Path, stack: str) -> dict[str, str]:
    """Secret config key -> digest of its ciphertext in ``Pulumi.<stack>.yaml`` (so a re-set secret shows)."""
    try:
        document = yaml.safe_load(stack_files(folder)[stack].read_text()) or {}
    except (KeyError, OSError, yaml.YAMLError):
        return {}
    digests = {}
    for key, value in (document.get("config") or {}).items():
        if isinstance(value, dict) and set(value) == {"secure"}:
            digests[str(key).split(":", 1)[-1]] = hashlib.sha256(str(value["secure"]).encode()).hexdigest()[:16]
    return digests


def owners(rendered: Any) -> dict[str, str]:
    """Rendered file name -> the Pulumi name of the resource behind it (Kubernetes objects)."""
    from pulumi_vllm.render.manifests import is_kubernetes_object, kubernetes_manifest

    by_identity = {}
    for registration in rendered.run.registrations:
        if is_kubernetes_object(registration):
            manifest = kubernetes_manifest(registration)
            metadata = manifest.get("metadata") or {}
            by_identity[(manifest["kind"], metadata.get("namespace", ""), metadata.get("name"))] = registration.name
    found = {}
    for filename, document in rendered.documents:
        if isinstance(document, dict) and "kind" in document and isinstance(document.get("metadata"), dict):
            key = (document["kind"], document["metadata"].get("namespace", ""), document["metadata"].get("name"))
            if key in by_identity:
                found[filename] = by_identity[key]
    return found


def capacity_lines(rendered: Any) -> tuple[str, ...]:
    """The capacity line(s) of the render summary (KV-cache tokens, concurrency), where the planner runs."""
    try:
        lines = rendered.summary()
    except Exception:  # noqa: BLE001 - a summary that cannot be built must not stop the review
        return ()
    found = []
    for line in lines:
        text = " ".join(line.split())
        if text.lower().startswith(CAPACITY_LABELS):
            # "capacity: 123 KV-cache tokens..." -> "123 KV-cache tokens..." (the report names it already).
            found.append(text.split(":", 1)[1].strip() if text.lower().startswith("capacity:") else text)
    return tuple(found)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def topology_line(rendered: Any) -> str:
    """``tensor parallel 8 × pipeline parallel 2; 1 replica × 2 pods × 8 GPUs (backend leaderworkerset)``."""
    plan = rendered.plan
    if plan is None:
        return "no serving (GPU platform only)"
    topology = plan.topology
    config = plan.config
    line = (
        f"tensor parallel {topology.tensor_parallel_size} × pipeline parallel {topology.pipeline_parallel_size}; "
        f"{_count(config.replicas, 'replica')} × {_count(topology.pods, 'pod')} × {_count(topology.gpus_per_pod, 'GPU')}"
    )
    if topology.pods > 1:
        line += f", backend {config.parallelism.backend}"
    return line


def _forget_modules_under(folder: Path) -> None:
    # A program may import its own modules from its folder; the next render (other revision) must
    # import its own copies, not reuse these. Never this package, the running script, or anything
    # installed in a virtualenv that happens to live inside the project (.venv).
    root = str(folder.resolve())
    installed = os.path.abspath(sys.prefix) + os.sep
    for name, module in list(sys.modules.items()):
        if name == "__main__" or name.split(".")[0] == "pulumi_vllm":
            continue
        path = os.path.abspath(getattr(module, "__file__", None) or "")
        if path.startswith(root + os.sep) and not path.startswith(installed):
            del sys.modules[name]


def _requested_gpus(rendered: Any) -> int:
    # Counted from the objects themselves (batch Jobs and Ray groups included); the plan's figure
    # where the render has no Kubernetes workload (the Docker target).
    from pulumi_vllm.review.mermaid import requested_gpus

    counted = requested_gpus(rendered.documents)
    if counted is not None:
        return counted
    return int(rendered.plan.total_gpus) if rendered.plan is not None else 0


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def render_side(
    folder: Path, stack: str, policy: PolicyRunner | None, base: bool, overrides: dict[str, str] | None = None
) -> StackSide:
    """Render ``stack`` from ``folder`` into a :class:`StackSide`; at the base a failed render is kept as a note.

    ``overrides`` are ``--config key=value`` pairs, applied over the stack file as ``render --config`` does."""
    from pulumi_vllm.cli.render import render_stack
    from pulumi_vllm.config import ConfigError
    from pulumi_vllm.errors import UserError
    from pulumi_vllm.render.engine import RenderError

    digests = secure_digests(folder, stack)
    try:
        rendered = render_stack(folder, stack, overrides=overrides)
    except (ConfigError, RenderError) as error:
        if base:
            return StackSide(documents={}, secure_config=digests, error=_one_line(str(error)))
        raise UserError(f"stack {stack}: {error}") from None
    except SystemExit as error:
        message = f"the program exited with status {error.code}"
        if base:
            return StackSide(documents={}, secure_config=digests, error=message)
        raise UserError(f"stack {stack}: {message}") from None
    except Exception as error:
        if base:
            return StackSide(documents={}, secure_config=digests, error=_one_line(f"{type(error).__name__}: {error}"))
        raise
    finally:
        _forget_modules_under(folder)
    return StackSide(
        documents=dict(rendered.documents),
        owners=owners(rendered),
        total_gpus=_requested_gpus(rendered),
        capacity=capacity_lines(rendered) + predicted_lines(rendered),
        verdicts=policy.verdicts(rendered) if policy else None,
        topology=topology_line(rendered),
        secure_config=digests,
    )


def policy_support() -> str:
    """Empty when the package has a policy client to run a pack with; otherwise why it has none."""
    import importlib

    try:
        importlib.import_module("pulumi_vllm.policy.client")
    except ModuleNotFoundError as error:
        if error.name and "pulumi_vllm.policy.client".startswith(error.name):
            return "pulumi_vllm.policy.client is not installed"
        raise
    return ""


def run_policy_pack(rendered: Any, pack: Path, config: Path | None) -> tuple[Verdict, ...]:
    """Run the pack over ``rendered`` as ``pulumi preview`` would (gRPC Analyzer) and return its violations."""
    from pulumi_vllm.errors import UserError
    from pulumi_vllm.policy.client import PolicyPackError, resources_from_registrations
    from pulumi_vllm.policy.client import run_policy_pack as analyze
    from pulumi_vllm.render.manifests import is_kubernetes_object, kubernetes_manifest
    from pulumi_vllm.review.consequences import describe

    resources = resources_from_registrations(rendered.run.registrations)
    names = {"": "the stack"}
    for registration in rendered.run.registrations:
        kubernetes = is_kubernetes_object(registration)
        names[registration.urn] = (
            describe(kubernetes_manifest(registration)) if kubernetes else f"{registration.type} {registration.name}"
        )
    try:
        violations = analyze(pack, resources, config, project=rendered.run.project, stack=rendered.stack)
    except PolicyPackError as error:
        raise UserError(f"policy pack {pack}: {error} (--no-policy skips it)") from None
    return tuple(
        Verdict(
            policy=violation.policy_name,
            level=violation.enforcement_level,
            resource=names.get(violation.urn, violation.urn),
            message=" ".join(violation.detail.split()),
        )
        for violation in violations
    )


class PolicyRunner:
    """Runs the project's policy pack over a render, through whichever client the package provides."""

    def __init__(self, pack: Path, config: Path | None) -> None:
        self.pack, self.config = pack, config

    def verdicts(self, rendered: Any) -> tuple[Verdict, ...] | None:
        """The violations the pack reports for ``rendered`` (``None`` when it could not run)."""
        return run_policy_pack(rendered, self.pack, self.config)


def policy_runner(args: argparse.Namespace, project_dir: Path) -> tuple[PolicyRunner | None, str]:
    """The policy runner to use, or ``None`` and the reason verdicts are not available."""
    from pulumi_vllm.errors import UserError

    if args.no_policy:
        return None, "not run (--no-policy)"
    pack = args.policy_pack or project_dir / "policies"
    if args.policy_pack is not None and not (pack / "PulumiPolicy.yaml").is_file():
        raise UserError(f"--policy-pack {pack}: no PulumiPolicy.yaml there")
    if not (pack / "PulumiPolicy.yaml").is_file():
        return None, "not available (no policy pack in policies/)"
    missing = policy_support()
    if missing:
        return None, f"not available ({missing})"
    if args.policy_pack_config is not None and not args.policy_pack_config.is_file():
        raise UserError(f"--policy-pack-config {args.policy_pack_config}: no such file")
    return PolicyRunner(pack.resolve(), args.policy_pack_config), ""


def scrub(text: str, environ: dict[str, str] | None = None) -> str:
    """``text`` with the value of every ``PULUMI_VLLM_SECRET_*`` variable replaced by ``[secret]``.

    The renderer already redacts secrets; this keeps a value that leaked into a non-secret field
    (a program bug) out of a pull-request comment too.
    """
    from pulumi_vllm.render.engine import REDACTED, SECRET_ENV_PREFIX

    for name, value in (os.environ if environ is None else environ).items():
        if name.startswith(SECRET_ENV_PREFIX) and len(value) >= 4:
            text = text.replace(value, REDACTED)
    return text


def build_report(
    project_dir: Path,
    base: str,
    stacks: list[str] | None,
    policy: PolicyRunner | None,
    policy_note: str = "",
    overrides: dict[str, str] | None = None,
) -> DiffReport:
    """Render the selected stacks at ``base`` and in ``project_dir`` and compare them."""
    from pulumi_vllm.errors import UserError
    from pulumi_vllm.review.gitrev import RevisionError, project_at_revision

    try:
        with project_at_revision(project_dir, base) as (commit, base_dir):
            at_base, at_head = stack_names(base_dir), stack_names(project_dir)
            selected = stacks or sorted(at_base | at_head)
            unknown = [name for name in selected if name not in at_base | at_head]
            if unknown:
                known = ", ".join(sorted(at_base | at_head)) or "none"
                raise UserError(f"no stack {', '.join(unknown)} at {base} or in the working tree; stacks: {known}")
            api = schema_changes(base_dir, project_dir)
            reports = []
            for stack in selected:
                before = (
                    render_side(base_dir, stack, policy, base=True, overrides=overrides)
                    if base_dir and stack in at_base
                    else None
                )
                after = render_side(project_dir, stack, policy, base=False, overrides=overrides) if stack in at_head else None
                reports.append(compare_stack(stack, before, after))
    except RevisionError as error:
        raise UserError(str(error)) from None
    return DiffReport(
        base=base, base_commit=commit, stacks=tuple(reports), policy_note=policy_note, api_changes=tuple(api)
    )


def schema_changes(base_dir: Path | None, project_dir: Path) -> list[str]:
    """API changes between the component schema snapshots (``plugin/schema.json``) at the base and now."""
    import json

    from pulumi_vllm.review.api import api_changes

    def load(folder: Path | None) -> dict[str, Any] | None:
        path = folder / "plugin" / "schema.json" if folder is not None else None
        if path is None or not path.is_file():
            return None
        try:
            document: dict[str, Any] = json.loads(path.read_text())
        except ValueError as error:
            return {"resources": {}, "types": {}, "error": str(error)}
        return document

    return api_changes(load(base_dir), load(project_dir))


def run_diff(args: argparse.Namespace) -> int:
    """Compare, write the report; exit 0 (no changes), 3 (changes), 4 (mandatory violation after)."""
    from pulumi_vllm.cli.render import find_project
    from pulumi_vllm.errors import UserError
    from pulumi_vllm.render.engine import RenderError

    try:
        project_dir = (args.project or find_project(Path.cwd())).resolve()
    except RenderError as error:
        raise UserError(str(error)) from None
    policy, note = policy_runner(args, project_dir)
    from pulumi_vllm.cli.render import config_overrides

    report = build_report(project_dir, args.base, args.stack, policy, note, config_overrides(args.config))
    text = scrub(format_markdown(report) if args.format == "markdown" else format_text(report))
    code = report.exit_code
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        changed = [stack.stack for stack in report.stacks if stack.changed]
        print(f"wrote {args.out}: " + (f"changes in {', '.join(changed)}" if changed else "no changes"))
    if code == EXIT_MANDATORY_VIOLATION:
        print("mandatory policy violation after the change (exit 4)", file=sys.stderr)
    assert code in (EXIT_NO_CHANGES, EXIT_CHANGES, EXIT_MANDATORY_VIOLATION)
    return code
