"""Run the real Pulumi program of a stack under Pulumi's own mock runtime and record what it registers.

No Pulumi CLI, provider plugin or cluster is involved: the program runs in-process, every resource
registration reaches a recording mock monitor, and the result is the list of resources with the
inputs exactly as they would be sent to the provider (camelCase for Kubernetes).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import runpy
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SECRET_SIG = "4dabf18193072939515e22adb298388d"
"""Pulumi's marker of a secret value on the wire: ``{SECRET_SIG: "1b47061264138c4ac30d75fd1eb44270", "value": ...}``."""

REDACTED = "[secret]"
"""What a secret value is replaced with in everything rendered."""

SECRET_ENV_PREFIX = "PULUMI_VLLM_SECRET_"
"""Environment variables that supply secret config values to ``render`` (e.g. ``PULUMI_VLLM_SECRET_HF_TOKEN``)."""


class RenderError(Exception):
    """The stack could not be rendered; the message says why."""


@dataclass
class Registration:
    """One resource the program registered."""

    type: str
    name: str
    urn: str
    parent: str
    custom: bool
    inputs: dict[str, Any]
    protect: bool = False
    retain_on_delete: bool = False
    delete_before_replace: bool = False
    custom_timeouts: dict[str, str] = field(default_factory=dict)
    additional_secret_outputs: list[str] = field(default_factory=list)
    provider: str = ""
    aliases: list[str] = field(default_factory=list)
    """Former names of the resource (``aliases`` option), so a rename is not read as a replacement."""
    dependencies: list[str] = field(default_factory=list)
    """URNs the resource waits for (``depends_on``; a component stands for its children)."""

    def options(self) -> dict[str, Any]:
        """The resource options a reviewer cares about, in Pulumi's spelling, only those that are set."""
        candidates = (
            ("protect", self.protect),
            ("retainOnDelete", self.retain_on_delete),
            ("deleteBeforeReplace", self.delete_before_replace),
            ("customTimeouts", self.custom_timeouts),
            ("additionalSecretOutputs", self.additional_secret_outputs),
            ("aliases", self.aliases),
        )
        return {key: value for key, value in candidates if value}


@dataclass
class ProgramRun:
    """Everything one run of the program produced."""

    project: str
    stack: str
    registrations: list[Registration]
    outputs: dict[str, Any]


def env_name_for_secret(key: str) -> str:
    """``hfToken`` -> ``PULUMI_VLLM_SECRET_HF_TOKEN``."""
    snake = "".join(f"_{char}" if char.isupper() else char for char in key).upper()
    return SECRET_ENV_PREFIX + snake


def _to_config_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        import json

        return json.dumps(value)
    return str(value)


EXAMPLE_STACKS = Path("examples") / "stacks"
"""Where a project keeps example stack files that are not stacks of its own yet (``cp`` one beside
``Pulumi.yaml`` and ``pulumi stack init`` it); ``render`` and ``diff`` read them too."""


def stack_files(project_dir: Path) -> dict[str, Path]:
    """Every ``Pulumi.<stack>.yaml`` of a project: beside ``Pulumi.yaml``, then under ``examples/stacks/``
    (a stack file beside ``Pulumi.yaml`` wins over an example of the same name, as it is what the CLI reads)."""
    found: dict[str, Path] = {}
    for folder in (project_dir, project_dir / EXAMPLE_STACKS):
        for path in sorted(folder.glob("Pulumi.*.yaml")):
            found.setdefault(path.name[len("Pulumi."):-len(".yaml")], path)
    return found


def read_stack_files(
    project_dir: Path, stack: str, env: dict[str, str] | None = None, secrets: Mapping[str, str | None] | None = None
) -> tuple[str, dict[str, str], list[str]]:
    """Read ``Pulumi.yaml`` and ``Pulumi.<stack>.yaml`` into the flat config the runtime expects.

    Returns the project name, ``{"project:key": "string value"}`` and the secret keys. Only the secrets
    the stack declares are filled, so the render is what ``pulumi preview`` of the same stack creates:
    a ``secure:`` value (ciphertext only the CLI can decrypt) in the stack file, or a key of
    ``secrets`` (``render --secret KEY[=VALUE]``, as ``pulumi config set --secret`` adds one). Its value
    is the one given, else its ``PULUMI_VLLM_SECRET_*`` variable, else a redacted placeholder. A
    variable for a secret the stack does not declare is ignored, as the Pulumi CLI never sees it.
    """
    env = dict(os.environ if env is None else env)
    project_file = project_dir / "Pulumi.yaml"
    if not project_file.is_file():
        raise RenderError(f"no Pulumi.yaml in {project_dir}")
    project_doc = yaml.safe_load(project_file.read_text()) or {}
    project = str(project_doc.get("name", ""))
    files = stack_files(project_dir)
    if stack not in files:
        available = sorted(files)
        raise RenderError(
            f"no stack file Pulumi.{stack}.yaml beside Pulumi.yaml or in {EXAMPLE_STACKS}/; "
            f"stacks here: {', '.join(available) or 'none'}"
        )
    stack_file = files[stack]
    try:
        stack_doc = yaml.safe_load(stack_file.read_text()) or {}
    except yaml.YAMLError as error:
        raise RenderError(f"{stack_file.name} is not valid YAML: {error}") from None

    flat: dict[str, str] = {}
    secret_keys: list[str] = []
    # Project-level defaults first (Pulumi.yaml `config:` with `value:`), then the stack file.
    for key, spec in (project_doc.get("config") or {}).items():
        if isinstance(spec, dict) and "value" in spec:
            full = key if ":" in key else f"{project}:{key}"
            flat[full] = _to_config_string(spec["value"])
    for key, value in (stack_doc.get("config") or {}).items():
        full = key if ":" in key else f"{project}:{key}"
        if isinstance(value, dict) and set(value) == {"secure"}:
            short = full.split(":", 1)[1]
            flat[full] = env.get(env_name_for_secret(short), REDACTED)
            secret_keys.append(full)
        else:
            flat[full] = _to_config_string(value)
    for key, given in (secrets or {}).items():
        full = key if ":" in key else f"{project}:{key}"
        short = full.split(":", 1)[1]
        flat[full] = given if given is not None else env.get(env_name_for_secret(short), REDACTED)
        if full not in secret_keys:
            secret_keys.append(full)
    return project, flat, secret_keys


_PATH_PART = re.compile(r'\.([^.\[\]]+)|\[(\d+)\]|\["((?:[^"\\]|\\.)*)"\]')


def parse_config_path(key: str) -> tuple[str, list[str | int]]:
    """``pulumi-vllm:engine.quantization`` -> (``pulumi-vllm:engine``, ``["quantization"]``), as ``--path`` reads it.

    The path syntax is ``pulumi config set --path``'s: ``.name`` for a map key, ``[0]`` for a list index,
    ``["a.b"]`` for a map key holding dots. Raises :class:`RenderError` for a path it cannot read.
    """
    namespace, colon, rest = key.rpartition(":")
    head = re.match(r"[^.\[\]]+", rest)
    if head is None:
        raise RenderError(f"--config {key}: the key must start with a config key name (e.g. engine.quantization)")
    parts: list[str | int] = []
    position = head.end()
    while position < len(rest):
        match = _PATH_PART.match(rest, position)
        if match is None:
            raise RenderError(
                f"--config {key}: cannot read the path at {rest[position:]!r}; write it as pulumi config set --path "
                "does: a.b for a map key, a[0] for a list index, a[\"b.c\"] for a key with dots"
            )
        name, index, quoted = match.groups()
        parts.append(int(index) if index is not None else (name if name is not None else quoted))
        position = match.end()
    return f"{namespace}{colon}{head.group()}", parts


def path_value(value: str) -> Any:
    """A ``--path`` value as the Pulumi CLI stores it: ``true`` / ``false`` as booleans, an integer as a number."""
    if value in ("true", "false"):
        return value == "true"
    if re.fullmatch(r"-?(0|[1-9][0-9]*)", value):
        return int(value)
    return value


def apply_config_override(flat: dict[str, str], project: str, key: str, value: str) -> None:
    """Set ``key=value`` in the flat config as ``pulumi config set [--path]`` writes it into the stack file.

    A key without ``project:`` is the program's own. A dotted key (``engine.quantization``,
    ``models.llama.replicas``, ``resources.tolerations[0].key``) sets that value inside the
    top-level key's object, keeping its other values; a plain key replaces the whole value.
    """
    full = key if ":" in key else f"{project}:{key}"
    top, parts = parse_config_path(full)
    if not parts:
        flat[top] = value
        return
    import json

    current = flat.get(top)
    if current is None:
        document: Any = [] if isinstance(parts[0], int) else {}
    else:
        try:
            document = json.loads(current)
        except json.JSONDecodeError:
            document = current
    if not isinstance(document, (dict, list)):
        raise RenderError(f"--config {key}: {top} is {current!r}, not a map or a list, so it has no {parts[0]!r} inside")
    node = document
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        child: Any = path_value(value) if last else ([] if isinstance(parts[depth + 1], int) else {})
        where = top + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts[:depth])
        if isinstance(part, int):
            if not isinstance(node, list):
                raise RenderError(f"--config {key}: {where} is not a list, so [{part}] cannot be set")
            if part > len(node):
                raise RenderError(f"--config {key}: {where} has {len(node)} item(s); [{part}] is out of range")
            if part == len(node):
                node.append(child)
            elif last or not isinstance(node[part], (dict, list)):
                node[part] = child
        else:
            if not isinstance(node, dict):
                raise RenderError(f"--config {key}: {where} is not a map, so .{part} cannot be set")
            if last or not isinstance(node.get(part), (dict, list)):
                node[part] = child
        node = node[part]  # type: ignore[index]  # a list index for a list, a key for a map: checked above
    flat[top] = json.dumps(document)


def _kubernetes_defaults(inputs: dict[str, Any], name: str) -> dict[str, Any]:
    # Mocks invent nothing; the program reads metadata.name back, so give it what the provider
    # would: the explicit name, or Pulumi's auto-name (logical name plus a random suffix).
    state = dict(inputs)
    metadata = dict(state.get("metadata") or {})
    if "name" not in metadata:
        suffix = hashlib.sha256(name.encode()).hexdigest()[:8]
        metadata["name"] = f"{name}-{suffix}"
    state["metadata"] = metadata
    return state


def run_program(
    project_dir: Path,
    stack: str,
    config: dict[str, str],
    secret_keys: list[str],
    project: str,
    program: Path | None = None,
) -> ProgramRun:
    """Run the project's ``__main__.py`` under the mock runtime with ``config``; record every registration."""
    import pulumi
    from pulumi.runtime import config as runtime_config
    from pulumi.runtime import mocks, settings

    registrations: list[Registration] = []

    class Recorder(pulumi.runtime.Mocks):
        def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict]:
            state = dict(args.inputs)
            if args.typ.startswith("kubernetes:"):
                state = _kubernetes_defaults(state, args.name)
                resource_id = f"{state['metadata'].get('namespace', 'default')}/{state['metadata']['name']}"
            else:
                resource_id = f"{args.name}-id"
                if args.typ.startswith(("aws:", "gcp:")):
                    from pulumi_vllm.cloud_plan.placeholders import placeholder_outputs

                    # What the program reads back of a cloud resource (a cluster's endpoint, a role's ARN).
                    state = placeholder_outputs(args.typ, args.name, state)
                if args.typ == "docker:index/remoteImage:RemoteImage":
                    # The provider answers with the pulled image's id; the pinned reference stands in
                    # for it, so rendered containers show which image they run.
                    state.setdefault("imageId", state.get("name"))
            return resource_id, state

        def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list[tuple[str, str]] | None]:
            return {}, None

    class RecordingMonitor(mocks.MockMonitor):
        def RegisterResource(self, request: Any) -> Any:
            response = super().RegisterResource(request)
            if request.type != "pulumi:pulumi:Stack":
                timeouts = request.customTimeouts
                registrations.append(
                    Registration(
                        type=request.type,
                        name=request.name,
                        urn=response.urn,
                        parent=request.parent,
                        custom=bool(request.custom),
                        inputs=_wire_struct(request.object),
                        protect=bool(request.protect),
                        retain_on_delete=bool(request.retainOnDelete),
                        delete_before_replace=bool(request.deleteBeforeReplace),
                        custom_timeouts={
                            key: value
                            for key, value in (
                                ("create", timeouts.create),
                                ("update", timeouts.update),
                                ("delete", timeouts.delete),
                            )
                            if value
                        },
                        additional_secret_outputs=list(request.additionalSecretOutputs),
                        provider=request.provider,
                        aliases=_alias_names(request),
                        dependencies=sorted(request.dependencies),
                    )
                )
            return response

    runtime_config.set_all_config(dict(config), list(secret_keys))
    settings.reset_options(project=project, stack=stack)
    # The program's pulumi.log messages go to the CLI's diagnostics; offline, the render summary shows them.
    quiet = logging.getLogger("pulumi_vllm.render.program")
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    mocks.set_mocks(
        Recorder(), project=project, stack=stack, preview=False, monitor=RecordingMonitor(Recorder()), logger=quiet
    )

    main = program or project_dir / "__main__.py"
    outputs: dict[str, Any] = {}

    @mocks.test
    def _run() -> Any:
        added = str(project_dir) not in sys.path
        if added:
            sys.path.insert(0, str(project_dir))
        try:
            runpy.run_path(str(main), run_name="__main__")
        finally:
            if added:
                sys.path.remove(str(project_dir))
        root = settings.get_root_resource()
        exported = dict(getattr(root, "outputs", {}) or {})
        return asyncio.ensure_future(_collect_outputs(exported, outputs))

    _run()
    return ProgramRun(project=project, stack=stack, registrations=registrations, outputs=outputs)


async def _collect_outputs(exported: dict[str, Any], into: dict[str, Any]) -> None:
    """Resolve the stack outputs, replacing every secret one by :data:`REDACTED`."""
    import pulumi

    for key, value in exported.items():
        output = pulumi.Output.from_input(value)
        resolved = await output.future()
        secret = await output.is_secret()
        into[key] = REDACTED if secret else resolved


def _alias_names(request: Any) -> list[str]:
    """Former names from a registration's aliases (alias specs, or old URNs)."""
    names = []
    for alias in request.aliases:
        if alias.HasField("spec"):
            names.append(alias.spec.name or request.name)
        elif alias.urn:
            names.append(alias.urn.rsplit("::", 1)[-1])
    names += [urn.rsplit("::", 1)[-1] for urn in request.aliasURNs]
    # The Kubernetes SDK aliases some kinds to their older API versions under the same name (a type
    # alias, not a rename); only former names matter to a reviewer.
    return [alias for alias in names if alias != request.name]


def _wire_struct(struct: Any) -> dict[str, Any]:
    # The inputs exactly as sent on the wire: secrets stay in their envelope (so every one can be
    # found and redacted) and numbers are floats (undone by the writers).
    from google.protobuf import json_format

    return dict(json_format.MessageToDict(struct))
