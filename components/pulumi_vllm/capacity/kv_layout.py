"""How vLLM lays out one pipeline stage's KV cache: block size, KV-cache groups, blocks per request.

Models whose layers all keep every token's keys and values (most dense and MoE models, MLA) have
one group: a block holds 16 tokens of every layer and a request of ``max_model_len`` tokens takes
``cdiv(max_model_len, 16)`` blocks. Hybrid models mix layer kinds, and vLLM's hybrid KV-cache
manager (on unless ``--disable-hybrid-kv-cache-manager``) gives each kind its own block tables
drawn from one shared pool:

- sliding-window layers (Gemma 2 and 3, gpt-oss, Mistral 7B v0.1) keep only the window plus the
  tokens in flight: ``SlidingWindowSpec.max_admission_blocks_per_request`` in
  vllm/v1/kv_cache_interface.py, ``cdiv(min(sliding_window - 1 + max_in_flight_tokens,
  max_model_len), block_size) + 1`` blocks, where ``VllmConfig.max_in_flight_tokens``
  (vllm/config/vllm.py) is ``max_concurrent_batches x max_num_batched_tokens`` (2 batches with
  async scheduling, the default, or the pipeline depth);
- linear-attention layers (Qwen3-Next's Gated DeltaNet) keep a fixed state per request, not per
  token: ``MambaSpec.max_memory_usage_bytes`` (same file) is 2 pages in the ``align`` cache mode
  that prefix caching selects (``MambaModelConfig.verify_and_update_config``,
  vllm/model_executor/models/config.py), one page otherwise; the state is the conv and temporal
  shapes of ``MambaStateShapeCalculator.gated_delta_net_state_shape``
  (vllm/model_executor/layers/mamba/mamba_utils.py), and the attention block size grows until an
  attention page holds one state (``Platform._align_hybrid_block_size``, vllm/platforms/interface.py).

Layers are grouped as ``_get_kv_cache_groups_uniform_page_size`` (vllm/v1/core/kv_cache_utils.py)
does: the group size is the smallest kind's layer count (the largest when it is under 1.5 times
the smallest), each kind split into ``cdiv(layers, group size)`` groups, padding included. A block
is one page for every layer of a group (``_get_kv_cache_bytes_per_block``), the pool holds
``available // bytes_per_block`` blocks (``get_kv_cache_config_from_groups``), a request takes the
sum of its blocks over the groups, and the logged concurrency is blocks / that sum
(``get_max_concurrency_for_kv_cache_config``) with ``concurrency x max_model_len`` tokens
(``get_kv_cache_capacity``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pulumi_vllm.models.facts import ModelFacts

BLOCK_SIZE = 16
"""vLLM's default KV-cache block size in tokens (CacheConfig.block_size on CUDA)."""
LINEAR_STATE_PAGES_PER_REQUEST = 2
"""Pages a linear-attention group takes per request in the ``align`` mode prefix caching selects."""
SINGLE_GROUP_SIZE_RATIO = 1.5
"""Under this ratio of largest to smallest kind, vLLM pads to the largest kind's layer count."""


@dataclass(frozen=True)
class KvCacheLayout:
    """One stage's KV-cache layout: the groups, the bytes of one block, and one request's blocks."""

    block_size: int
    """Tokens per block (grown for linear-attention models so that a page holds one state)."""
    bytes_per_block: int
    """Bytes of one block of the shared pool: a page for every layer of one group."""
    full_groups: int
    """Groups of full-attention layers."""
    window_groups: int
    """Groups of sliding-window layers."""
    linear_groups: int
    """Groups of linear-attention layers."""
    group_size: int
    """Layers per group."""
    window_blocks: int
    """Blocks one request takes in each sliding-window group."""
    max_model_len: int

    @property
    def hybrid(self) -> bool:
        """Whether any layers hold less than the whole context."""
        return bool(self.window_groups or self.linear_groups)

    def blocks_for(self, length: int) -> int:
        """Blocks one request of ``length`` tokens takes over all groups."""
        window = self.window_blocks if length == self.max_model_len else min(
            self.window_blocks, math.ceil(length / self.block_size) + 1
        )
        return (
            self.full_groups * math.ceil(length / self.block_size)
            + self.window_groups * window
            + self.linear_groups * LINEAR_STATE_PAGES_PER_REQUEST
        )

    @property
    def blocks_per_request(self) -> int:
        """Blocks one request of ``max_model_len`` tokens takes."""
        return self.blocks_for(self.max_model_len)

    def longest_request(self, blocks: int, max_len: int) -> int:
        """Longest request ``blocks`` blocks hold (vLLM's estimate searches up to ``max_model_len``)."""
        if not self.hybrid:
            return blocks * self.block_size
        low, high = 0, max_len
        while low < high:
            middle = (low + high + 1) // 2
            if self.blocks_for(middle) <= blocks:
                low = middle
            else:
                high = middle - 1
        return low

    def describe(self) -> str:
        """A note on the groups, for the plan's notes."""
        kinds = []
        if self.full_groups:
            kinds.append(f"{self.full_groups} full-attention")
        if self.window_groups:
            kinds.append(f"{self.window_groups} sliding-window ({self.window_blocks} blocks per request)")
        if self.linear_groups:
            kinds.append(f"{self.linear_groups} linear-attention (state only)")
        return (
            f"hybrid KV cache: {', '.join(kinds)} group(s) of {self.group_size} layers, blocks of "
            f"{self.block_size} tokens, {self.blocks_per_request} blocks per request"
        )


def _stage_share(total: int, model_layers: int, stage_layers: int) -> int:
    """Layers of one kind in a stage of ``stage_layers``: the model's proportion, rounded."""
    if stage_layers == model_layers:
        return total
    return round(total * stage_layers / model_layers)


def linear_state_bytes(facts: ModelFacts, tensor_parallel_size: int, dtype_bytes: int) -> int:
    """Bytes of one request's Gated DeltaNet state in one layer on one GPU (conv plus temporal state)."""
    key_heads, value_heads = facts.linear_num_key_heads or 0, facts.linear_num_value_heads or 0
    key_dim, value_dim = facts.linear_key_head_dim or 0, facts.linear_value_head_dim or 0
    conv_dim = key_dim * key_heads * 2 + value_dim * value_heads
    conv = conv_dim // tensor_parallel_size * ((facts.linear_conv_kernel_dim or 4) - 1)
    temporal = value_heads // tensor_parallel_size * value_dim * key_dim
    return (conv + temporal) * dtype_bytes


def kv_cache_layout(
    facts: ModelFacts, stage_layers: int, tensor_parallel_size: int, token_bytes_per_layer: int,
    state_dtype_bytes: int, max_model_len: int, max_in_flight_tokens: int, hybrid_manager: bool = True,
) -> KvCacheLayout:
    """The KV-cache layout of a stage of ``stage_layers`` layers.

    ``token_bytes_per_layer`` is one token's keys and values in one attention layer on one GPU;
    ``state_dtype_bytes`` the model dtype's size (linear-attention state is kept in it);
    ``hybrid_manager`` false is ``--disable-hybrid-kv-cache-manager``: every attention layer is
    then sized as full attention (``unify_hybrid_kv_cache_specs``).
    """
    layers = facts.num_hidden_layers
    window = _stage_share(facts.window_layers, layers, stage_layers) if hybrid_manager else 0
    linear = _stage_share(facts.linear_layers, layers, stage_layers)
    full = stage_layers - window - linear
    block_size = BLOCK_SIZE
    if linear:
        state = linear_state_bytes(facts, tensor_parallel_size, state_dtype_bytes)
        block_size = BLOCK_SIZE * math.ceil(state / (BLOCK_SIZE * token_bytes_per_layer))
    page = block_size * token_bytes_per_layer
    counts = [n for n in (full, window, linear) if n]
    group_size = min(counts)
    if max(counts) < group_size * SINGLE_GROUP_SIZE_RATIO:
        group_size = max(counts)
    window_blocks = 0
    if window and facts.sliding_window:
        held = min(facts.sliding_window - 1 + max_in_flight_tokens, max_model_len)
        window_blocks = math.ceil(held / block_size) + 1
    if not window and not linear:  # one uniform group of every layer
        group_size = stage_layers
    return KvCacheLayout(
        block_size=block_size,
        bytes_per_block=group_size * page,
        full_groups=math.ceil(full / group_size),
        window_groups=math.ceil(window / group_size),
        linear_groups=math.ceil(linear / group_size),
        group_size=group_size,
        window_blocks=window_blocks,
        max_model_len=max_model_len,
    )
