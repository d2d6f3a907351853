"""Multi-model stacks: ``pulumi-vllm:models`` expanded into one validated stack config per model.

A stack file with a ``models`` map serves each entry as its own model group (workloads, cache,
Service), named ``<name>-<key>``. Top-level serving keys are the shared defaults: each entry is
deep-merged over them (maps merge key by key; lists and scalars in the entry replace the default).
Keys that belong to the whole stack (its name and namespace, the router, the one GPU quota of the
namespace, the platform, the secrets) stay at the top and may not appear in an entry.

Each merged entry is validated exactly as a single-model stack is, and an error names the key as it
is written in the file: ``pulumi-vllm:models.<key>.<path>`` when the entry set it, the top-level key
(with the entry named) when it came from the shared defaults. This module does not import the root
schema: :mod:`pulumi_vllm.config.stack` hands it the parser to use, so imports point one way.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from pulumi_vllm.config.base import PROJECT, ConfigError
from pulumi_vllm.config.routing import check_model_key

MODELS_KEY = "models"

STACK_WIDE_KEYS = frozenset(
    {"name", "namespace", "target", "router", "quota", "cluster", "hfToken", "hfTokenSecret", "apiKey", "labels"}
)
"""Keys that describe the whole stack: set once at the top, never inside a ``models`` entry."""

_KEY_LINE = re.compile(rf"^{re.escape(PROJECT)}:([A-Za-z0-9_]+)((?:[.\[][^:\s]*)?): (.*)$", re.DOTALL)

DERIVED_KEYS = {
    "name": "the entry's objects are named <name>-<key> (the stack's name, '-', the entry's key)",
}
"""Keys a ``models`` entry gets from the stack rather than from the file, and how they are derived."""

Config = TypeVar("Config")


def is_multi_model(raw: Mapping[str, Any]) -> bool:
    """Whether a stack's decoded config uses the ``models`` map."""
    return MODELS_KEY in raw


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` over ``base``: nested maps merge key by key, anything else in ``override`` wins."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _path_in(entry: Mapping[str, Any], top: str, rest: str) -> bool:
    """Whether the entry itself sets ``top`` (and the first map key below it, when there is one)."""
    if top not in entry:
        return False
    child = rest[1:].split(".", 1)[0].split("[", 1)[0] if rest.startswith(".") else ""
    value = entry[top]
    return not child or not isinstance(value, Mapping) or child in value


def relabel(message: str, key: str, entry: Mapping[str, Any], defaults: Mapping[str, Any] | None = None) -> list[str]:
    """The problem lines of one entry's error, each naming the key where the file sets it.

    A key the entry sets is named inside it (``models.<key>.engine.maxModelLen``); a key the file sets only
    at the top is blamed on the shared default; a key the file sets nowhere (a value derived for the entry,
    such as its name, or a required key) is named inside the entry, where it would be written.
    """
    lines = []
    stack_name = str((defaults or {}).get("name", "vllm"))
    body = _problems(message)
    for line in body:
        line = line.strip()
        match = _KEY_LINE.match(line)
        if match is None:
            lines.append(f"{PROJECT}:{MODELS_KEY}.{key}: {line}")
            continue
        top, rest, text = match.groups()
        if _path_in(entry, top, rest):
            lines.append(f"{PROJECT}:{MODELS_KEY}.{key}.{top}{rest}: {text}")
        elif top in DERIVED_KEYS and not rest:
            derived = f"{stack_name}-{key}"
            lines.append(
                f"{PROJECT}:{MODELS_KEY}.{key}: the derived name {derived!r} is not accepted: {text.split(': ', 1)[-1]}; "
                f"{DERIVED_KEYS[top]}: shorten the entry's key or {PROJECT}:name"
            )
        elif defaults is not None and _path_in(defaults, top, rest):
            lines.append(f"{PROJECT}:{top}{rest}: {text} (the shared default, for {MODELS_KEY}.{key})")
        else:
            lines.append(f"{PROJECT}:{MODELS_KEY}.{key}.{top}{rest}: {text}")
    return lines


def _problems(message: str) -> list[str]:
    """The problems of one error: each ``  pulumi-vllm:...`` line of a multi-problem error with its detail lines."""
    if not message.startswith("invalid stack configuration:"):
        return [message]
    problems: list[str] = []
    for line in message.splitlines()[1:]:
        if line.startswith(f"  {PROJECT}:") or not problems:
            problems.append(line.strip())
        else:
            problems[-1] += "\n  " + line.strip()
    return problems


def check_model_groups(root: Any, check: Callable[[Any], object]) -> None:
    """Run ``check`` (the serving plan) on every model group of a ``models`` stack; name each problem's key
    where the file sets it (``models.<key>.engine.maxModelLen``).

    Raises:
        ConfigError: one line per problem of every group, as a one-model stack's error reads.
    """
    entries, defaults = getattr(root, "_model_sources", ({}, {}))
    problems: list[str] = []
    requested: dict[str, int] = {}
    for key, member in getattr(root, "models", {}).items():
        try:
            plan = check(member)
        except ConfigError as error:
            problems.extend(relabel(str(error), key, entries.get(key, {}), defaults))
        else:
            requested[key] = int(getattr(plan, "gpus_at_once", 0) or 0)
    if problems:
        raise ConfigError("invalid stack configuration:\n  " + "\n  ".join(problems))
    quota = getattr(root, "quota", None)
    needed = sum(requested.values())
    if quota is not None and quota.enabled and quota.gpus is not None and quota.gpus < needed:
        # The one quota of the namespace covers every group; the first group's plan alone would undercount.
        parts = ", ".join(f"{key} {gpus}" for key, gpus in requested.items())
        raise ConfigError(
            f"{PROJECT}:quota.gpus: {quota.gpus} is not accepted: the stack's models request {needed} GPU(s) together "
            f"({parts}); their pods would be refused with 'exceeded quota'. Use at least {needed}, or leave quota.gpus "
            "unset to cap the namespace at what the models request"
        )


def model_entries(raw: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Each entry of ``models`` merged over the shared defaults, named ``<name>-<key>``, without the quota.

    Raises:
        ConfigError: ``models`` is not a non-empty map of maps, a key is not a DNS label, or an entry sets a
            stack-wide key.
    """
    entries = raw[MODELS_KEY]
    if not isinstance(entries, Mapping) or not entries:
        raise ConfigError(
            f"invalid stack configuration:\n  {PROJECT}:{MODELS_KEY}: a map of model groups is required, e.g. "
            "{llama: {model: {id: meta-llama/Llama-3.1-8B-Instruct}}, qwen: {model: {id: Qwen/Qwen2.5-7B-Instruct}}}"
        )
    if "model" in raw:
        raise ConfigError(
            f"invalid stack configuration:\n  {PROJECT}:model: set either model (one model) or models (several), "
            "not both; move it into an entry of models"
        )
    defaults = {name: value for name, value in raw.items() if name not in (MODELS_KEY, "router", "quota", "cluster")}
    stack_name = str(raw.get("name", "vllm"))
    problems: list[str] = []
    merged: dict[str, dict[str, Any]] = {}
    for key, entry in entries.items():
        try:
            check_model_key(str(key))
        except ValueError as error:
            problems.append(f"{PROJECT}:{MODELS_KEY}.{key}: {error}")
            continue
        if not isinstance(entry, Mapping):
            problems.append(f"{PROJECT}:{MODELS_KEY}.{key}: a map of the model's keys is required (model, engine, ...)")
            continue
        for name in sorted(STACK_WIDE_KEYS & set(entry)):
            problems.append(
                f"{PROJECT}:{MODELS_KEY}.{key}.{name}: belongs to the whole stack; set it at the top of the stack file"
            )
        values = deep_merge(defaults, {name: value for name, value in entry.items() if name not in STACK_WIDE_KEYS})
        values["name"] = f"{stack_name}-{key}"
        # One GPU quota for the namespace, created by the stack: never one per model.
        values["quota"] = {"enabled": False}
        merged[str(key)] = values
    if problems:
        raise ConfigError("invalid stack configuration:\n  " + "\n  ".join(problems))
    return merged


def shared_defaults(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The top-level keys of a ``models`` stack that each entry is merged over, as the file writes them."""
    return {name: value for name, value in raw.items() if name not in (MODELS_KEY, "router", "quota", "cluster")}


def parse_models(raw: Mapping[str, Any], parse: Callable[[Mapping[str, Any]], Config]) -> dict[str, Config]:
    """Validate every entry of a multi-model stack with ``parse`` (the single-model parser).

    Every entry is checked before the error is raised, so one run shows every bad key of the file.
    """
    merged = model_entries(raw)
    entries = raw[MODELS_KEY]
    parsed: dict[str, Config] = {}
    problems: list[str] = []
    for key, values in merged.items():
        try:
            parsed[key] = parse(values)
        except ConfigError as error:
            problems.extend(relabel(str(error), key, entries[key], shared_defaults(raw)))
    if problems:
        raise ConfigError("invalid stack configuration:\n  " + "\n  ".join(problems))
    return parsed


def root_values(raw: Mapping[str, Any], first_key: str) -> dict[str, Any]:
    """The stack-level view of a multi-model stack: the first model's values with the stack's own quota and router.

    Readers that know one model per stack (the render summary, the capacity planner) see the first model;
    the models themselves are in the root's ``models``.
    """
    values = model_entries(raw)[first_key]
    values["name"] = str(raw.get("name", "vllm"))
    for name in ("quota", "router", "cluster"):
        if name in raw:
            values[name] = raw[name]
        else:
            values.pop(name, None)
    return values
