"""Where a model's facts come from: the stack config, the model's ``config.json``, or the catalog."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pulumi_vllm.models import catalog
from pulumi_vllm.models.facts import ModelFacts, facts_from_config_json


def resolve_facts(
    model: str,
    explicit: dict[str, Any] | None = None,
    config_json: str | Path | None = None,
) -> tuple[ModelFacts | None, str]:
    """Find the facts for ``model`` and say where they came from.

    Precedence: ``explicit`` values (a partial dict of :class:`ModelFacts` field names from the
    stack config) override everything else; then ``config_json`` (or ``<model>/config.json``
    when ``model`` is a local folder); then the built-in catalog. Explicit values alone must be
    complete when neither of the others knows the model.

    Returns:
        ``(facts, origin)`` with origin ``"config"`` (explicit values were used),
        ``"config.json:<path>"``, ``"catalog"`` or ``"unknown"`` (facts ``None``).

    Raises:
        ValueError: unknown field names in ``explicit``, incomplete explicit values with nothing
            to complete them, or an unreadable ``config_json``.
    """
    explicit = dict(explicit or {})
    unknown = sorted(set(explicit) - set(ModelFacts.model_fields))
    if unknown:
        raise ValueError(
            f"unknown model facts {unknown}; accepted: {', '.join(ModelFacts.model_fields)}"
        )

    base: ModelFacts | None = None
    origin = "unknown"
    path: Path | None = Path(config_json) if config_json is not None else None
    if (
        path is None
        and model
        and Path(model).is_dir()
        and (Path(model) / "config.json").is_file()
    ):
        path = Path(model) / "config.json"
    if path is not None:
        base = facts_from_config_json(path)
        origin = f"config.json:{base.source}"
    else:
        base = catalog.lookup(model)
        origin = "catalog" if base is not None else "unknown"

    if not explicit:
        return base, origin
    if base is None:
        required = [n for n, f in ModelFacts.model_fields.items() if f.is_required()]
        missing = [name for name in required if name not in explicit]
        if missing:
            raise ValueError(
                f"no config.json or catalog entry for model '{model}', so the explicit model "
                f"facts must be complete; missing: {', '.join(missing)}"
            )
    merged = {**(base.model_dump() if base else {}), **explicit}
    merged["source"] = explicit.get("source") or (
        f"stack config over {base.source}" if base else "stack config"
    )
    return ModelFacts(**merged), "config"
