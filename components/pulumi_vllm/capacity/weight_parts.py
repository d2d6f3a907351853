"""The parts of a model as vLLM loads them, and what one GPU of a pipeline stage holds of them.

The breakdown has one :class:`WeightPart` per piece a pipeline stage holds: the embedding (first
stage), the vision or audio tower (first stage), every decoder layer (layers differ: DeepSeek's
``first_k_dense_replace`` dense layers, Llama 4's interleaved experts), the LM head and final norm
(last stage), and the multi-token-prediction layers (loaded only as a speculative draft).

Tensor parallelism follows vLLM's layers: column and row parallel layers and the vocabulary are
split over the ranks; norms, routers and MLA's ``q_a_proj`` / ``kv_a_proj_with_mqa`` (replicated
linear layers) stay whole on each rank; key/value projections split until each rank holds one head.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pulumi_vllm.capacity.weight_formats import (
    MXFP4_MARLIN_HIDDEN_MULTIPLE,
    MXFP4_MARLIN_INTERMEDIATE_MULTIPLE,
    round_up,
)

GIB = 1 << 30


@dataclass(frozen=True)
class WeightPart:
    """One piece of the model as loaded, whole (before tensor parallelism)."""

    name: str
    """``embedding``, ``lm_head``, ``layer 3``, ``vision tower``, ``mtp``, ``final norm``."""
    sharded_bytes: float = 0.0
    """Bytes split evenly over the tensor-parallel ranks."""
    replicated_bytes: float = 0.0
    """Bytes every rank keeps whole (norms, routers, replicated projections)."""
    kv_bytes: float = 0.0
    """Key/value projection bytes: split over the ranks until each holds one kv head."""
    parameters: float = 0.0
    """Parameters of the part (logical weights, not stored elements)."""
    expert_bytes: float = 0.0
    """Bytes of routed experts within ``sharded_bytes`` (read only for the experts a token picks)."""

    @property
    def total_bytes(self) -> float:
        """Bytes of the whole part (one copy)."""
        return self.sharded_bytes + self.replicated_bytes + self.kv_bytes

    def per_rank(self, tensor_parallel_size: int, kv_heads: int) -> float:
        """Bytes one tensor-parallel rank holds."""
        kv_share = max(1, kv_heads // tensor_parallel_size) / kv_heads if kv_heads else 1 / tensor_parallel_size
        return self.sharded_bytes / tensor_parallel_size + self.replicated_bytes + self.kv_bytes * kv_share

    def plus(self, other: WeightPart) -> WeightPart:
        """This part with ``other``'s bytes and parameters added."""
        return WeightPart(
            self.name, self.sharded_bytes + other.sharded_bytes, self.replicated_bytes + other.replicated_bytes,
            self.kv_bytes + other.kv_bytes, self.parameters + other.parameters, self.expert_bytes + other.expert_bytes,
        )


@dataclass(frozen=True)
class WeightBreakdown:
    """Every part of a model as vLLM loads it, and how sure the figures are."""

    embedding: WeightPart
    lm_head: WeightPart
    """Zero bytes when tied to the embedding (a separate copy only on a last pipeline stage of several)."""
    layers: tuple[WeightPart, ...]
    towers: WeightPart
    """Vision and audio encoders with their projectors (first pipeline stage)."""
    final: WeightPart
    """Final norm and anything else outside the layers (last stage)."""
    mtp: WeightPart
    """Multi-token-prediction layers of the checkpoint, not loaded unless they are the draft."""
    weight_format: str
    """The precision of the quantized parts (``bfloat16``, ``fp8``, ``fp8 block 128x128``, ``mxfp4``...)."""
    source: str
    """``checkpoint`` (tensor headers), ``config`` (architecture), ``num_parameters`` (published count
    spread over the layers) or ``estimate`` (hidden size alone)."""
    tied_embeddings: bool = False
    kv_heads: int = 1
    notes: tuple[str, ...] = field(default=())
    expert_padding: tuple[int, int] | None = None
    """``(hidden_size, intermediate_size)`` of experts whose dimensions vLLM pads on each rank (MXFP4 on
    Marlin); the parts hold the unpadded bytes."""

    def expert_pad(self, tensor_parallel_size: int) -> float:
        """How much larger the experts are on one rank than their unpadded share (1 without padding):
        ``Mxfp4MoEMethod.create_weights`` rounds the rank's intermediate size up to a multiple of 128 and
        the hidden size to 256."""
        if self.expert_padding is None:
            return 1.0
        hidden, width = self.expert_padding
        share = width / tensor_parallel_size
        return (round_up(hidden, MXFP4_MARLIN_HIDDEN_MULTIPLE) * round_up(
            -(-width // tensor_parallel_size), MXFP4_MARLIN_INTERMEDIATE_MULTIPLE)) / (hidden * share)

    def layer_bytes(
        self, index: int, tensor_parallel_size: int, expert_shards: int | None = None,
        expert_fraction: float | None = None,
    ) -> float:
        """Bytes one rank holds of decoder layer ``index``, padding included.

        The routed experts are split over ``expert_shards`` ranks (default: the tensor-parallel ones; vLLM's
        ``FusedMoEParallelConfig.make`` flattens tensor x data parallel ranks for the MoE layers), or, with
        expert parallelism, kept whole: ``expert_fraction`` of them on this rank (``determine_expert_map``).
        """
        layer = self.layers[index]
        tp = tensor_parallel_size
        rest = layer.per_rank(tp, self.kv_heads) - layer.expert_bytes / tp
        if expert_fraction is not None:
            return rest + layer.expert_bytes * expert_fraction * self.expert_pad(1)
        shards = expert_shards or tp
        return rest + layer.expert_bytes / shards * self.expert_pad(shards)

    @property
    def estimated(self) -> bool:
        """Whether the figures rest on assumptions beyond the config (no tensors, no published count)."""
        return self.source == "estimate"

    @property
    def num_parameters(self) -> float:
        """Parameters loaded (MTP layers excluded, tied embeddings counted once)."""
        parts = (self.embedding, self.lm_head, self.towers, self.final, *self.layers)
        return sum(part.parameters for part in parts)

    @property
    def total_bytes(self) -> float:
        """Bytes of one whole copy of the model as loaded on one GPU (MTP excluded, padding included)."""
        parts = (self.embedding, self.lm_head, self.towers, self.final, *self.layers)
        padding = sum(layer.expert_bytes for layer in self.layers) * (self.expert_pad(1) - 1)
        return sum(part.total_bytes for part in parts) + padding

    def stage_bytes(
        self, first_layer: int, num_layers: int, pipeline_index: int, pipeline_parallel_size: int,
        tensor_parallel_size: int, expert_shards: int | None = None, expert_fraction: float | None = None,
    ) -> float:
        """Bytes one GPU of a pipeline stage holds: its layers, the embedding and towers on the first
        stage, the LM head and final norm on the last (a tied head is a separate copy there when the
        stages are several, as vLLM's ``ParallelLMHead`` on the last rank). ``expert_shards`` and
        ``expert_fraction``: how the routed experts are spread (:meth:`layer_bytes`)."""
        tp, kv = tensor_parallel_size, self.kv_heads
        total = sum(
            self.layer_bytes(index, tp, expert_shards, expert_fraction)
            for index in range(first_layer, first_layer + num_layers)
        )
        if pipeline_index == 0:
            total += self.embedding.per_rank(tp, kv) + self.towers.per_rank(tp, kv)
        if pipeline_index == pipeline_parallel_size - 1:
            total += self.final.per_rank(tp, kv) + self.lm_head.per_rank(tp, kv)
            if self.tied_embeddings and pipeline_parallel_size > 1:
                total += self.embedding.per_rank(tp, kv)
        return total

    def describe(self) -> str:
        """One line: total, format and where the figures come from."""
        return (
            f"weights {self.total_bytes / GIB:.2f} GiB ({self.num_parameters / 1e9:.2f}B parameters, "
            f"{self.weight_format}, from the {self.source})"
        )
