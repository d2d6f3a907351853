"""The serving component's typed Args read as the stack config: snake_case keys to the stack file's, one validation.

``VllmServing`` takes the stack config's sections as typed Args (``model``, ``engine``, ``parallelism``,
... in snake_case: ``{"engine": {"max_model_len": 16384}}``), the older ``{"config": {...}}`` mapping of
camelCase keys (or a :class:`StackConfig`), or both, the typed keys merged over ``config``. Either way
the result is validated by the same pydantic model as a stack file, and an error names the key as a
stack file spells it (``pulumi-vllm:engine.maxModelLen``).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from pulumi_vllm.config.base import ConfigError
from pulumi_vllm.config.stack import StackConfig, parse_stack_config

SKIPPED_KEYS = ("target", "docker")
"""Stack keys the Kubernetes serving component does not take as typed Args (the Docker target's)."""
COMPONENT_ONLY_KEYS = ("hf_token", "api_key")
"""Secret keys that are inputs of the component of their own (``pulumi.Input[str]``), not config."""
PASSTHROUGH_KEYS = ("config",) + COMPONENT_ONLY_KEYS


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation holds directly, in a list, or as an optional value."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if typing.get_origin(annotation) in (list, dict, typing.Union, types.UnionType):
        return [model for arg in typing.get_args(annotation) for model in _models_in(arg)]
    return []


def _is_map(annotation: Any) -> bool:
    """Whether the field is a map of names to sections (``models``), optional or not."""
    if typing.get_origin(annotation) is dict:
        return True
    return any(_is_map(arg) for arg in typing.get_args(annotation) if typing.get_origin(annotation) is not list)


def _camel(value: Any, model: type[BaseModel]) -> Any:
    """``value`` (a mapping of snake_case field names of ``model``) with the stack file's keys."""
    if not isinstance(value, Mapping):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        info = model.model_fields.get(key)
        if info is None:  # not a field: left as given, so that validation names it as unknown
            out[key] = item
            continue
        nested = _models_in(info.annotation)
        if nested and isinstance(item, Mapping) and _is_map(info.annotation):
            item = {name: _camel(element, nested[0]) for name, element in item.items()}
        elif nested and isinstance(item, list):
            item = [_camel(element, nested[0]) for element in item]
        elif nested:
            item = _camel(item, nested[0])
        out[info.alias or key] = item
    return out


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def typed_settings(args: Mapping[str, Any]) -> dict[str, Any]:
    """The typed keys of ``args`` (everything but ``config``, ``hf_token``, ``api_key``) with stack-file keys."""
    typed = {key: value for key, value in args.items() if key not in PASSTHROUGH_KEYS and value is not None}
    return _camel(typed, StackConfig)


def stack_config_from_args(args: Mapping[str, Any]) -> StackConfig:
    """The validated :class:`StackConfig` of the serving component's Args.

    Raises :class:`ConfigError` naming each bad key, before anything is registered.
    """
    raw = args.get("config")
    typed = typed_settings(args)
    if isinstance(raw, StackConfig):
        if typed:
            raise ConfigError(
                f"pass the settings either as a StackConfig in 'config' or as typed keys, not both "
                f"(typed keys given: {', '.join(sorted(typed))})"
            )
        return raw
    if raw is not None and not isinstance(raw, Mapping):
        raise ConfigError(f"'config' must be a mapping of stack config keys, not {type(raw).__name__}")
    return parse_stack_config(_merge(raw or {}, typed))
