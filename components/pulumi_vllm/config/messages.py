"""pydantic's words for a refused value, rewritten as what is accepted and why.

pydantic says ``Input should be greater than or equal to 1``; a user needs to read what the key accepts
and the reason for the bound (``runAsUser 0 is root``). :func:`explain` turns one pydantic error into
that: the accepted values in the user's terms, then the reason: the table :data:`REASONS` for bounds
whose reason is not obvious, else the first sentence of the field's own docstring.
"""

from __future__ import annotations

import ast
import inspect
import itertools
import textwrap
import types
import typing
from collections.abc import Mapping
from functools import cache
from typing import Any

from pydantic import BaseModel

REASONS = {
    "security.runAsUser": (
        "0 is root, and the serving containers run as a non-root user (security.runAsNonRoot); use the image's "
        "unprivileged user id, e.g. 1000"
    ),
    "security.runAsGroup": "the group id the container's processes run as (0 is the root group)",
    "replicas": "the number of serving pods (0 stops serving and keeps the model cache)",
    "availability.maxUnavailable": "0 would block every node drain for good; 1 lets one pod go at a time",
    "engine.gpuMemoryUtilization": "the fraction of each GPU's memory vLLM may use (vLLM's --gpu-memory-utilization)",
    "availability.preStopSleepSeconds": "time for the Service to stop sending requests before the server stops",
    "availability.drainSeconds": "time for requests in flight to finish before the pod is killed",
    "warmup.timeoutSeconds": "a download shorter than a minute cannot fetch a model's weights",
    "warmup.backoffLimit": "how many times the download Job retries before it fails",
}
"""Why a key has its bounds, by the key's path without list indices (``security.runAsUser``)."""


def _bound(item: Mapping[str, Any]) -> str | None:
    context = {
        key: int(value) if isinstance(value, float) and value.is_integer() else value
        for key, value in (item.get("ctx") or {}).items()
    }
    kind = item["type"]
    if kind == "greater_than_equal":
        return f"{context['ge']} or more"
    if kind == "greater_than":
        return f"more than {context['gt']}"
    if kind == "less_than_equal":
        return f"at most {context['le']}"
    if kind == "less_than":
        return f"less than {context['lt']}"
    if kind == "literal_error":
        return "one of " + str(context.get("expected", "")).replace(" or ", ", ")
    if kind in ("int_parsing", "int_from_float", "int_type"):
        return "a whole number"
    if kind in ("float_parsing", "float_type"):
        return "a number"
    if kind in ("bool_parsing", "bool_type"):
        return "true or false"
    if kind in ("string_type", "string_too_short"):
        return "a non-empty string" if kind == "string_too_short" else "a string"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return "a map of keys"
    if kind in ("list_type", "tuple_type"):
        return "a list"
    return None


def key_path(loc: tuple[Any, ...]) -> str:
    """``("security", "runAsUser")`` -> ``security.runAsUser``; list indices and map keys of a dict field left out."""
    return ".".join(str(part) for part in loc if not isinstance(part, int))


def explain(item: Mapping[str, Any], root: type[BaseModel]) -> str:
    """What the key accepts and why, for one pydantic error of a value (``use 1 or more; 0 is root, ...``).

    Falls back on pydantic's own message when the error is not a bound or a type.
    """
    accepted = _bound(item)
    if accepted is None:
        return str(item["msg"]).removeprefix("Value error, ")
    loc = tuple(part for part in item["loc"] if not str(part).startswith(("function-", "literal[")))
    reason = REASONS.get(key_path(loc)) or field_doc(root, loc)
    return f"use {accepted}" + (f"; {reason}" if reason else "")


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    origin = typing.get_origin(annotation)
    if origin is not None or isinstance(annotation, types.UnionType):
        for argument in typing.get_args(annotation):
            found += _models_in(argument)
    return found


def field_doc(root: type[BaseModel], loc: tuple[Any, ...]) -> str | None:
    """The first sentence of the docstring under the field at ``loc`` (camelCase keys), if it has one."""
    model: type[BaseModel] | None = root
    name = None
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        field = next(
            (field_name for field_name, info in model.model_fields.items() if part in (field_name, info.alias)),
            None,
        )
        if field is None:
            return None
        name = field
        owner = model
        nested = _models_in(model.model_fields[field].annotation)
        model = nested[0] if nested else None
    if name is None:
        return None
    doc = field_docstrings(owner).get(name)
    if not doc:
        return None
    return doc.split(". ")[0].split("\n")[0].rstrip(".")


@cache
def field_docstrings(model: type[BaseModel]) -> dict[str, str]:
    """Field name -> the docstring written under it in the class body (walking the bases too, so a
    subclass's docstring for the same field wins). The generated component Args read the same docstrings."""
    docs: dict[str, str] = {}
    for klass in reversed(model.__mro__):
        if not (inspect.isclass(klass) and issubclass(klass, BaseModel)) or klass is BaseModel:
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for first, second in itertools.pairwise(body):
            if (
                isinstance(first, ast.AnnAssign)
                and isinstance(first.target, ast.Name)
                and isinstance(second, ast.Expr)
                and isinstance(second.value, ast.Constant)
                and isinstance(second.value.value, str)
            ):
                docs[first.target.id] = inspect.cleandoc(second.value.value)
    return docs
