"""Where a model's facts come from: the stack config, the model's ``config.json``, the catalog, or the Hub."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pulumi_vllm.models import catalog
from pulumi_vllm.models.checkpoint import CheckpointTensors, read_safetensors_headers
from pulumi_vllm.models.facts import ModelFacts, facts_from_config_json

_NOT_EXPLICIT = ("checkpoint",)
"""ModelFacts fields read from files only, never given in the stack config."""


@dataclass(frozen=True)
class ResolvedFacts:
    """The facts found for a model, where they came from, and why a source was passed over."""

    facts: ModelFacts | None
    origin: str
    """``config``, ``config.json:<path>``, ``catalog``, ``hub:<repo>@<commit>`` or ``unknown``."""
    notes: tuple[str, ...] = ()
    """One line per source that could not be read (the Hub unreachable, gated, offline...)."""


def resolve_facts(
    model: str,
    explicit: dict[str, Any] | None = None,
    config_json: str | Path | None = None,
    *,
    revision: str | None = None,
    token: str | None = None,
    hub: bool = False,
) -> tuple[ModelFacts | None, str]:
    """Find the facts for ``model`` and say where they came from: ``(facts, origin)``.

    The same as :func:`resolve_model_facts` without its notes.
    """
    resolved = resolve_model_facts(model, explicit, config_json, revision=revision, token=token, hub=hub)
    return resolved.facts, resolved.origin


def _with_checkpoint(facts: ModelFacts, checkpoint: CheckpointTensors | None) -> ModelFacts:
    """``facts`` with the checkpoint's tensors, and its parameter count when nothing is packed.

    An unquantized checkpoint stores one parameter per element; a quantized one may pack several
    (FP4 pairs in U8, GPTQ/AWQ words in I32), so its count is left to the weight accounting.
    """
    if checkpoint is None:
        return facts
    update: dict[str, Any] = {"checkpoint": checkpoint}
    if facts.num_parameters is None and facts.quantization is None and checkpoint.num_elements:
        update["num_parameters"] = float(checkpoint.num_elements)
    return facts.model_copy(update=update)


def _from_hub(model: str, revision: str | None, token: str | None) -> tuple[ModelFacts | None, str, str]:
    """``(facts, origin, note)`` from the Hub; facts ``None`` and a note saying why when it gave nothing."""
    from pulumi_vllm.models import hub

    try:
        found = hub.fetch_model(model, revision, token)
    except hub.HubUnavailable as error:
        return None, "unknown", f"could not read {model} from the Hub: {error}"
    at = found.commit or found.revision
    try:
        facts = facts_from_config_json(found.config, source=f"{hub.endpoint()}/{model}/blob/{at}/config.json")
    except ValueError as error:
        return None, "unknown", f"{model} from the Hub: {error}".replace("(<dict>)", f"({found.source})")
    return _with_checkpoint(facts, found.checkpoint), found.source, found.note


def resolve_model_facts(
    model: str,
    explicit: dict[str, Any] | None = None,
    config_json: str | Path | None = None,
    *,
    revision: str | None = None,
    token: str | None = None,
    hub: bool = False,
) -> ResolvedFacts:
    """Find the facts for ``model``, say where they came from and why a source was passed over.

    Precedence: ``explicit`` values (a partial dict of :class:`ModelFacts` field names from the
    stack config) override everything else; then ``config_json`` (or ``<model>/config.json``
    when ``model`` is a local folder, whose safetensors headers also give ``checkpoint``); then
    the built-in catalog; then, with ``hub``, the model's files on the Hugging Face Hub at
    ``revision`` read with ``token`` (:mod:`pulumi_vllm.models.hub`; not consulted when the
    explicit values are complete). Explicit values alone must be complete when nothing else
    knows the model. A Hub that gives nothing (no network, offline, gated, not found) is a note,
    not an error.

    Raises:
        ValueError: unknown field names in ``explicit``, incomplete explicit values with nothing
            to complete them, or an unreadable ``config_json``.
    """
    explicit = dict(explicit or {})
    accepted = [name for name in ModelFacts.model_fields if name not in _NOT_EXPLICIT]
    unknown = sorted(set(explicit) - set(accepted))
    if unknown:
        raise ValueError(f"unknown model facts {unknown}; accepted: {', '.join(accepted)}")
    required = [n for n, f in ModelFacts.model_fields.items() if f.is_required()]
    missing = [name for name in required if name not in explicit]

    base: ModelFacts | None = None
    origin = "unknown"
    notes: list[str] = []
    path: Path | None = Path(config_json) if config_json is not None else None
    folder = Path(model) if model and Path(model).is_dir() and (Path(model) / "config.json").is_file() else None
    if path is None and folder is not None:
        path = folder / "config.json"
    if path is not None:
        base = facts_from_config_json(path)
        origin = f"config.json:{base.source}"
        if folder is not None:
            base = _with_checkpoint(base, read_safetensors_headers(folder))
    else:
        base = catalog.lookup(model)
        origin = "catalog" if base is not None else "unknown"
        if base is None and hub and missing:
            base, origin, note = _from_hub(model, revision, token)
            if note:
                notes.append(note if base is not None else f"{note}: no facts")

    if not explicit:
        return ResolvedFacts(base, origin, tuple(notes))
    if base is None and missing:
        raise ValueError(
            f"no config.json or catalog entry for model '{model}', so the explicit model "
            f"facts must be complete; missing: {', '.join(missing)}"
            + (f" ({notes[0]})" if notes else "")
        )
    merged = {**(base.model_dump() if base else {}), **explicit}
    merged["source"] = explicit.get("source") or (
        f"stack config over {base.source}" if base else "stack config"
    )
    return ResolvedFacts(ModelFacts(**merged), "config", tuple(notes))
