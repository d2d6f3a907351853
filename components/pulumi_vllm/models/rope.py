"""A model's context under ``--hf-overrides`` (RoPE scaling), derived as the pinned vLLM release derives it.

vLLM 0.32 (``vllm/config/model.py``, ``_get_and_verify_max_len``, lines 2538-2616 of the installed
release) takes the model's ``max_position_embeddings`` (after the overrides are applied) and multiplies
it by the RoPE ``factor`` unless the RoPE type is one of :data:`PRESCALED_ROPE_TYPES` (lines 2595-2602:
"YaRN variants leave max_position_embeddings already scaled, as Transformers' _compute_yarn_parameters
assumes"). So:

- ``linear`` and ``dynamic`` scaling: the context is ``max_position_embeddings x factor``;
- ``yarn``: the context is ``max_position_embeddings`` as the overrides leave it. A YaRN map with
  ``factor`` and ``original_max_position_embeddings`` but no ``max_position_embeddings`` would leave
  the model's own (Qwen3-32B: 40960) and vLLM would refuse ``--max-model-len 131072``; Transformers'
  YaRN reads the factor as ``max_position_embeddings / original_max_position_embeddings``, so
  :func:`rendered_overrides` adds ``max_position_embeddings = original x factor`` to the overrides the
  command line carries, and vLLM derives the scaled context from it.

How vLLM 0.32 applies the overrides (``ModelConfig.__post_init__``, ``_apply_dict_overrides``): a
dictionary value such as ``rope_scaling`` or ``rope_parameters`` replaces the attribute after the
model's config is loaded and its RoPE parameters are patched (``patch_rope_parameters`` in
``vllm/transformers_utils/config.py`` runs before), and Transformers' ``rope_scaling`` setter replaces
the whole ``rope_parameters``. Two consequences, checked here: the map must say ``rope_type`` (a legacy
``type`` alone makes vLLM fail with ``KeyError: 'rope_type'``), and ``rope_theta`` not in the map is
lost (vLLM's ``get_rope`` then falls back to 10000 unless the model sets its own default), which is
reported as a warning.

Not modelled: a RoPE scaling already in the model's own ``config.json`` (the facts carry no RoPE map),
Gemma 3's exception (vLLM never scales its context), ``model_max_length`` in the tokenizer's config.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_vllm.models.facts import ModelFacts

__all__ = [
    "PRESCALED_ROPE_TYPES",
    "ROPE_KEYS",
    "apply_rope",
    "check_hf_overrides",
    "effective_context",
    "rendered_overrides",
    "rope_warnings",
]

ROPE_KEYS = ("rope_parameters", "rope_scaling")
"""The override keys that carry the RoPE map (``rope_scaling`` is Transformers' older name of ``rope_parameters``)."""

PRESCALED_ROPE_TYPES = frozenset({"su", "longrope", "llama3", "yarn", "deepseek_yarn", "deepseek_llama_scaling"})
"""RoPE types whose ``factor`` vLLM 0.32 does not apply to ``max_position_embeddings`` (``_get_and_verify_max_len``)."""


def _rope_map(hf_overrides: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
    given = [key for key in ROPE_KEYS if hf_overrides.get(key)]
    if not given:
        return None
    return given[0], dict(hf_overrides[given[0]])


def _layers(rope: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """The RoPE parameters, one dict per layer type when nested (``{"full_attention": {...}, ...}``)."""
    if rope and all(isinstance(value, Mapping) or value is None for value in rope.values()):
        for name, value in rope.items():
            if value:
                yield name, value
    else:
        yield "", rope


def check_hf_overrides(hf_overrides: Mapping[str, Any]) -> None:
    """Refuse RoPE overrides vLLM 0.32 fails on or reads otherwise than written.

    Raises:
        ValueError: both ``rope_scaling`` and ``rope_parameters``; a map that is not an object; a map
            without ``rope_type``; a ``factor`` that is not a number of at least 1; a
            ``max_position_embeddings`` that is not a positive whole number.
    """
    if all(hf_overrides.get(key) for key in ROPE_KEYS):
        raise ValueError(
            "rope_scaling and rope_parameters are both set: they are one attribute of the model's config "
            "(rope_scaling is the older name) and the one applied last wins; keep rope_parameters"
        )
    for key in ROPE_KEYS:
        if key in hf_overrides and hf_overrides[key] is not None and not isinstance(hf_overrides[key], Mapping):
            raise ValueError(f"{key}: {hf_overrides[key]!r} is not accepted: a map such as "
                             '{"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768} is')
    positions = hf_overrides.get("max_position_embeddings")
    if positions is not None and (isinstance(positions, bool) or not isinstance(positions, int) or positions < 1):
        raise ValueError(f"max_position_embeddings: {positions!r} is not accepted: a positive whole number is")
    found = _rope_map(hf_overrides)
    if found is None:
        return
    key, rope = found
    for layer, params in _layers(rope):
        where = f"{key}.{layer}" if layer else key
        if "rope_type" not in params:
            legacy = f" (it gives type {params['type']!r}: write rope_type)" if "type" in params else ""
            raise ValueError(
                f"{where} has no rope_type{legacy}: vLLM 0.32 applies this map after it standardizes the model's "
                "RoPE parameters and then fails with KeyError 'rope_type'; give rope_type (yarn, linear, dynamic, ...)"
            )
        factor = params.get("factor")
        if factor is not None and (isinstance(factor, bool) or not isinstance(factor, (int, float)) or factor < 1):
            raise ValueError(f"{where}.factor: {factor!r} is not accepted: a number of at least 1 is")


def rendered_overrides(hf_overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The overrides the command line carries: ``hf_overrides`` with a YaRN map's scaled context made explicit.

    A ``yarn`` map with ``factor`` and ``original_max_position_embeddings`` and no
    ``max_position_embeddings`` gets ``max_position_embeddings = original x factor`` (see the module doc).
    """
    rendered = dict(hf_overrides)
    found = _rope_map(hf_overrides)
    if found is None or "max_position_embeddings" in hf_overrides:
        return rendered
    for _, params in _layers(found[1]):
        factor, original = params.get("factor"), params.get("original_max_position_embeddings")
        if params.get("rope_type") == "yarn" and isinstance(factor, (int, float)) and isinstance(original, int):
            rendered["max_position_embeddings"] = int(original * factor)
            break
    return rendered


def effective_context(facts: ModelFacts | None, hf_overrides: Mapping[str, Any]) -> tuple[int | None, str]:
    """The context vLLM 0.32 derives for the model under ``hf_overrides``, and how it was derived.

    Returns ``(tokens, how)``: ``tokens`` is ``None`` when neither the facts nor the overrides give
    ``max_position_embeddings``. ``how`` is one sentence for messages and ``size``'s output.
    """
    rendered = rendered_overrides(hf_overrides)
    own = facts.max_position_embeddings if facts else None
    base = rendered.get("max_position_embeddings", own)
    if base is None:
        return None, "the model's context is not known (no max_position_embeddings in its facts)"
    if "max_position_embeddings" in hf_overrides:
        source = f"max_position_embeddings={base} in engine.hfOverrides"
    elif "max_position_embeddings" in rendered:
        source = f"max_position_embeddings={base} (YaRN's original_max_position_embeddings x factor, added to --hf-overrides)"
    else:
        source = f"max_position_embeddings={base} in the model's config.json"
    found = _rope_map(hf_overrides)
    if found is None:
        return base, source
    factor: float = 1.0
    rope_type = ""
    for _, params in _layers(found[1]):
        rope_type = str(params.get("rope_type", ""))
        if rope_type not in PRESCALED_ROPE_TYPES:
            factor = params.get("factor", factor) or 1.0
    if factor == 1.0:
        return base, f"{source}; vLLM does not multiply it for rope_type {rope_type!r}"
    tokens = int(base * factor)
    return tokens, f"{source} x {rope_type} RoPE factor {factor:g} = {tokens}"


def apply_rope(facts: ModelFacts | None, hf_overrides: Mapping[str, Any]) -> ModelFacts | None:
    """``facts`` whose ``max_position_embeddings`` is the context vLLM derives under ``hf_overrides``."""
    if facts is None or not hf_overrides:
        return facts
    tokens, _ = effective_context(facts, hf_overrides)
    if tokens is None or tokens == facts.max_position_embeddings:
        return facts
    return facts.model_copy(update={"max_position_embeddings": tokens})


def rope_warnings(hf_overrides: Mapping[str, Any]) -> list[str]:
    """What the overrides lose that the user may not expect (a RoPE map without ``rope_theta``)."""
    found = _rope_map(hf_overrides)
    if found is None:
        return []
    key, rope = found
    missing = [layer or key for layer, params in _layers(rope) if "rope_theta" not in params]
    if not missing:
        return []
    message = (
        f"engine.hfOverrides.{key} has no rope_theta: vLLM replaces the model's whole RoPE map with it, so the "
        "model's own rope_theta is lost (vLLM's get_rope falls back to 10000 unless the model sets a default); "
        "copy rope_theta from the model's config.json into the map"
    )
    return [message]
