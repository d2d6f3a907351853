"""Built-in catalog of architecture facts for widely deployed open models.

The facts are data, in ``catalog.json`` beside this module: every entry copies its numbers from
the model's Hugging Face ``config.json`` (linked in ``source``); ``num_parameters`` is the count
published on the model card / safetensors index. Adding a model is one line there.
The catalog is only the last resort: explicit stack config and a local ``config.json`` win (see
:func:`pulumi_vllm.models.resolve.resolve_facts`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pulumi_vllm.models.facts import ModelFacts

_DATA = Path(__file__).with_name("catalog.json")
"""The catalog as data: ``shapes`` (architectures shared by several checkpoints) and ``models``
(one entry per Hugging Face id: its shape, and any field that differs from it)."""


def _config_url(model_id: str) -> str:
    return f"https://huggingface.co/{model_id}/blob/main/config.json"


def _entry_facts(entry: dict[str, Any], shapes: dict[str, dict[str, Any]]) -> ModelFacts:
    """One model's facts: its shape, its own fields over it, ``head_dim`` derived as config.json does."""
    fields = {**shapes[entry["shape"]], **{k: v for k, v in entry.items() if k not in ("id", "shape")}}
    fields.setdefault("head_dim", fields["hidden_size"] // fields["num_attention_heads"])
    return ModelFacts(**{"torch_dtype": "bfloat16", **fields, "source": _config_url(entry["id"])})


def load_catalog(path: Path = _DATA) -> dict[str, ModelFacts]:
    """Hugging Face id -> facts for every model of the catalog file at ``path``.

    Raises:
        ValueError: an entry names an unknown shape, repeats an id, or has facts
            :class:`ModelFacts` refuses (the message names the id).
    """
    data = json.loads(path.read_text(encoding="utf-8"))
    shapes: dict[str, dict[str, Any]] = data["shapes"]
    found: dict[str, ModelFacts] = {}
    for entry in data["models"]:
        model_id = entry["id"]
        if entry.get("shape") not in shapes:
            raise ValueError(f"{path}: {model_id} names unknown shape {entry.get('shape')!r}")
        if model_id in found:
            raise ValueError(f"{path}: {model_id} is listed twice")
        try:
            found[model_id] = _entry_facts(entry, shapes)
        except ValueError as error:
            raise ValueError(f"{path}: {model_id}: {error}") from None
    return found


def shape_fields(model_id: str, path: Path = _DATA) -> dict[str, Any]:
    """The fields the catalog file itself gives for ``model_id`` (shape and overrides, before defaults)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    entry = next(e for e in data["models"] if e["id"] == model_id)
    return {**data["shapes"][entry["shape"]], **{k: v for k, v in entry.items() if k not in ("id", "shape")}}


_CATALOG: dict[str, ModelFacts] = load_catalog()

# Lower-cased full id and bare name (after the org) -> canonical id.
_INDEX: dict[str, str] = {}
for _model_id in _CATALOG:
    _INDEX[_model_id.lower()] = _model_id
    _INDEX.setdefault(_model_id.rsplit("/", 1)[-1].lower(), _model_id)

# Suffixes that name a re-packaging of the same architecture, with the quantization they imply
# (None: no change). Stripped longest first, repeatedly: "-Instruct-AWQ" loses both parts.
_SUFFIX_QUANTIZATION: dict[str, str | None] = {
    "-fp8-dynamic": "fp8",
    "-fp8-block": "fp8",
    "-fp8": "fp8",
    "-awq-int4": "awq",
    "-awq": "awq",
    "-gptq-int4": "gptq",
    "-gptq-int8": "gptq",
    "-gptq": "gptq",
    # llm-compressor's names (RedHatAI, neuralmagic): compressed-tensors checkpoints.
    "-quantized.w4a16": "compressed-tensors",
    "-quantized.w8a8": "compressed-tensors",
    "-quantized.w8a16": "compressed-tensors",
    "-w4a16": "compressed-tensors",
    "-w8a8": "compressed-tensors",
    "-nvfp4": "modelopt_fp4",
    "-fp4": "modelopt_fp4",
    "-bnb-4bit": "bitsandbytes",
    "-instruct": None,
    "-it": None,
}


def known_models() -> list[str]:
    """Hugging Face ids of every model in the built-in catalog, sorted."""
    return sorted(_CATALOG)


def _exact(name: str) -> ModelFacts | None:
    key = name.strip().lower()
    canonical = _INDEX.get(key) or _INDEX.get(key.rsplit("/", 1)[-1])
    return _CATALOG[canonical] if canonical else None


def lookup(model_id: str) -> ModelFacts | None:
    """Facts for ``model_id`` from the catalog, or ``None`` if the model is unknown.

    Matches the Hugging Face id case-insensitively, or the bare name after the org
    (``Llama-3.1-8B-Instruct``). A re-packaged checkpoint of a catalog model (suffix ``-FP8``,
    ``-AWQ``, ``-GPTQ-Int4``, ``-Instruct``, ``-it``...) shares its architecture, so it gets the
    same numbers with ``quantization`` taken from the suffix; its ``source`` still names the
    catalog entry the numbers come from.
    """
    found = _exact(model_id)
    if found is not None:
        return found
    name = model_id.strip().rsplit("/", 1)[-1].lower()
    # "Meta-Llama-3.1-8B-Instruct" was the repository's first name and lives on in re-uploads.
    name = name.removeprefix("meta-")
    quantization: str | None = None
    suffixes = sorted(_SUFFIX_QUANTIZATION, key=len, reverse=True)
    while True:
        # A base checkpoint matches its chat variant and vice versa: same architecture.
        for candidate in (name, f"{name}-instruct", f"{name}-it"):
            base = _exact(candidate)
            if base is not None:
                return _derived(base, quantization)
        suffix = next(
            (s for s in suffixes if name.endswith(s) and len(name) > len(s)), None
        )
        if suffix is None:
            return None
        name = name[: -len(suffix)]
        quantization = quantization or _SUFFIX_QUANTIZATION[suffix]


def _derived(base: ModelFacts, quantization: str | None) -> ModelFacts:
    """``base`` with the quantization implied by a name suffix (if any)."""
    if quantization is None:
        return base
    return base.model_copy(update={"quantization": quantization})
