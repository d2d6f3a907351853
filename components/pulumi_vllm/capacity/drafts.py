"""The weights a speculative-decoding draft adds beside the target (``--speculative-config``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pulumi_vllm.capacity.weight_parts import GIB, WeightPart
from pulumi_vllm.capacity.weights import unquantized_bytes, weight_breakdown
from pulumi_vllm.models.facts import ModelFacts


@dataclass(frozen=True)
class DraftWeights:
    """The weights a speculative-decoding draft adds (``--speculative-config``)."""

    method: str
    part: WeightPart
    kv_heads: int
    note: str

    def bytes_per_rank(self, tensor_parallel_size: int) -> float:
        """Bytes one rank holds (the draft runs with the target's tensor-parallel size by default)."""
        return self.part.per_rank(tensor_parallel_size, self.kv_heads)


_NO_WEIGHTS = ("ngram", "ngram_gpu", "suffix")
_MTP = ("mtp", "deepseek_mtp", "qwen3_next_mtp", "glm4_moe_mtp", "ernie_mtp", "longcat_flash_mtp", "mimo_mtp")


def draft_weights(
    facts: ModelFacts, weight_dtype: str, speculative_config: Mapping[str, Any], draft_facts: ModelFacts | None = None,
) -> DraftWeights | None:
    """What the draft of ``speculative_config`` (vLLM's ``SpeculativeConfig`` fields) loads beside the
    target, or ``None`` when it loads nothing (n-gram and suffix lookups).

    - MTP (``method`` ``mtp`` or a model's own ``*_mtp``, or no model given for a checkpoint with
      ``num_nextn_predict_layers``): the checkpoint's MTP layers, sharing the target's embedding
      and LM head (vLLM's ``SpecDecodeBaseProposer.load_model`` shares them when they are alike).
    - EAGLE / EAGLE-3 heads without their own facts: one decoder layer of the target plus the
      input projection (2 x hidden x hidden; 3 x for EAGLE-3).
    - A draft model (``draft_facts``): its whole weights, in its own precision.
    """
    method = str(speculative_config.get("method") or "").lower()
    if method in _NO_WEIGHTS:
        return None
    model = speculative_config.get("model")
    target = weight_breakdown(facts, weight_dtype)
    if method in _MTP or (not model and facts.mtp_layers):
        if not facts.mtp_layers:
            return DraftWeights(method or "mtp", WeightPart("mtp"), facts.num_key_value_heads,
                                "speculative MTP named but the model has no num_nextn_predict_layers: nothing counted")
        part = target.mtp
        return DraftWeights(method or "mtp", part, facts.num_key_value_heads,
                            f"speculative draft (MTP, {facts.mtp_layers} layer(s)): {part.total_bytes / GIB:.2f} GiB")
    if draft_facts is not None:
        from pulumi_vllm.capacity.accounting import resolve_weight_dtype

        draft = weight_breakdown(draft_facts, resolve_weight_dtype(draft_facts, None, str(model or "")))
        part = WeightPart("draft")
        for piece in (draft.embedding, draft.lm_head, draft.towers, draft.final, *draft.layers):
            part = part.plus(piece)
        return DraftWeights(method or "draft_model", part, draft_facts.num_key_value_heads,
                            f"speculative draft {model}: {part.total_bytes / GIB:.2f} GiB")
    if method.startswith("eagle") or model:
        layer = target.layers[-1]
        inputs = (3 if method == "eagle3" else 2) * facts.hidden_size * facts.hidden_size * unquantized_bytes(weight_dtype)
        part = layer.plus(WeightPart("", inputs))
        return DraftWeights(method or "draft_model", part, facts.num_key_value_heads,
                            f"speculative draft {model or method}: not in the catalog, taken as one decoder layer "
                            f"of the target plus its input projection ({part.total_bytes / GIB:.2f} GiB, estimated)")
    return None
