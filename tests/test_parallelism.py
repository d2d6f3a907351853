"""Parallelism rules against catalog models, and the pod topology planner."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pulumi_vllm.distributed.parallelism import (
    PIPELINE_PARALLEL_RULE,
    TENSOR_PARALLEL_RULE,
    Finding,
    Topology,
    TopologyError,
    check_parallelism,
    check_pipeline_parallel,
    check_tensor_parallel,
    padded_vocab_size,
    plan_topology,
    valid_tensor_parallel_sizes,
)
from pulumi_vllm.models import catalog
from pulumi_vllm.models.facts import ModelFacts


def facts_of(model_id: str) -> ModelFacts:
    facts = catalog.lookup(model_id)
    assert facts is not None, model_id
    return facts


LLAMA_8B = "meta-llama/Llama-3.1-8B-Instruct"
LLAMA_70B = "meta-llama/Llama-3.1-70B-Instruct"
LLAMA_405B = "meta-llama/Llama-3.1-405B-Instruct"
QWEN3_14B = "Qwen/Qwen3-14B"
POWERS_OF_TWO = "Valid tensor parallel sizes up to 8: 1, 2, 4, 8."


def test_rule_names() -> None:
    assert TENSOR_PARALLEL_RULE == "tensor-parallel-divides-heads"
    assert PIPELINE_PARALLEL_RULE == "pipeline-parallel-fits-layers"


def test_padded_vocab_size() -> None:
    assert padded_vocab_size(128256) == 128256  # already a multiple of 64
    assert padded_vocab_size(50257) == 50304
    assert padded_vocab_size(1) == 64
    assert padded_vocab_size(100, pad_to=8) == 104


@pytest.mark.parametrize(
    ("model_id", "tensor_parallel_size", "messages"),
    [
        (
            LLAMA_8B,
            3,
            [
                "Total number of attention heads (32) must be divisible by tensor parallel size (3). "
                + POWERS_OF_TWO,
                "Total number of key/value heads (8) must be divisible by tensor parallel size (3). "
                + POWERS_OF_TWO,
            ],
        ),
        (
            LLAMA_70B,
            3,
            [
                "Total number of attention heads (64) must be divisible by tensor parallel size (3). "
                + POWERS_OF_TWO,
                "Total number of key/value heads (8) must be divisible by tensor parallel size (3). "
                + POWERS_OF_TWO,
            ],
        ),
        (
            # 40 heads split five ways, but 8 kv heads and 151936 vocabulary entries do not.
            QWEN3_14B,
            5,
            [
                "Total number of key/value heads (8) must be divisible by tensor parallel size (5). "
                + POWERS_OF_TWO,
                "Padded vocabulary size (151936, vocab_size 151936 rounded up to a multiple of 64) "
                "must be divisible by tensor parallel size (5). " + POWERS_OF_TWO,
            ],
        ),
        (
            # 4 kv heads: six GPUs can neither split them nor hold whole replicas.
            "Qwen/Qwen2.5-7B-Instruct",
            6,
            [
                (
                    "Total number of attention heads (28) must be divisible by tensor parallel size (6). "
                    "Valid tensor parallel sizes up to 8: 1, 2, 4."
                ),
                (
                    "Tensor parallel size (6) must be a multiple of the total number of key/value heads "
                    "(4) when it exceeds them. Valid tensor parallel sizes up to 8: 1, 2, 4."
                ),
            ],
        ),
        (
            QWEN3_14B,
            16,
            [
                (
                    "Total number of attention heads (40) must be divisible by tensor parallel size (16). "
                    "Valid tensor parallel sizes up to 16: 1, 2, 4, 8."
                )
            ],
        ),
    ],
)
def test_invalid_tensor_parallel_sizes(
    model_id: str, tensor_parallel_size: int, messages: list[str]
) -> None:
    findings = check_tensor_parallel(facts_of(model_id), tensor_parallel_size, model_id)
    assert [f.message for f in findings] == messages
    assert all(f.rule == TENSOR_PARALLEL_RULE and f.verifiable for f in findings)


@pytest.mark.parametrize(
    ("model_id", "tensor_parallel_size", "pipeline_parallel_size"),
    [
        (LLAMA_8B, 1, 1),
        (LLAMA_8B, 2, 1),
        (LLAMA_8B, 4, 1),
        (LLAMA_8B, 8, 1),
        (LLAMA_8B, 16, 1),  # 8 kv heads each replicated on two GPUs
        (LLAMA_70B, 8, 1),
        (LLAMA_405B, 8, 2),
        ("meta-llama/Llama-3.1-405B-Instruct-FP8", 8, 1),
        ("deepseek-ai/DeepSeek-V3", 8, 2),
        ("google/gemma-2-27b-it", 8, 1),
        ("facebook/opt-125m", 1, 12),
    ],
)
def test_valid_parallelism(
    model_id: str, tensor_parallel_size: int, pipeline_parallel_size: int
) -> None:
    assert (
        check_parallelism(
            facts_of(model_id), tensor_parallel_size, pipeline_parallel_size
        )
        == []
    )


def test_mla_models_skip_the_kv_head_rule() -> None:
    # One latent per token: a kv-head count that T does not divide is not an error with MLA.
    mla = facts_of("deepseek-ai/DeepSeek-V3").model_copy(
        update={"num_key_value_heads": 12}
    )
    assert check_tensor_parallel(mla, 8) == []
    not_mla = mla.model_copy(update={"use_mla": False})
    assert [f.message.split(".")[0] for f in check_tensor_parallel(not_mla, 8)] == [
        "Total number of key/value heads (12) must be divisible by tensor parallel size (8)"
    ]


def test_pipeline_parallel_larger_than_layers() -> None:
    findings = check_pipeline_parallel(
        facts_of("facebook/opt-125m"), 13, "facebook/opt-125m"
    )
    assert findings == [
        Finding(
            PIPELINE_PARALLEL_RULE,
            "Pipeline parallel size (13) must not exceed the number of hidden layers (12). "
            "Valid pipeline parallel sizes: 1 to 12.",
        )
    ]
    assert check_pipeline_parallel(facts_of(LLAMA_405B), 126) == []


def test_unknown_model_cannot_be_verified() -> None:
    findings = check_parallelism(None, 3, 2, "acme/mystery")
    assert findings == [
        Finding(
            TENSOR_PARALLEL_RULE,
            "cannot verify tensor parallel size 3: no model facts for 'acme/mystery'",
            False,
        ),
        Finding(
            PIPELINE_PARALLEL_RULE,
            "cannot verify pipeline parallel size 2: no model facts for 'acme/mystery'",
            False,
        ),
    ]


def test_sizes_below_one() -> None:
    assert [f.message for f in check_parallelism(facts_of(LLAMA_8B), 0, -1)] == [
        "tensor parallel size must be at least 1, got 0.",
        "pipeline parallel size must be at least 1, got -1.",
    ]


def test_valid_tensor_parallel_sizes() -> None:
    assert valid_tensor_parallel_sizes(facts_of(LLAMA_8B), 32) == [1, 2, 4, 8, 16, 32]
    assert valid_tensor_parallel_sizes(facts_of(QWEN3_14B), 8) == [1, 2, 4, 8]
    assert valid_tensor_parallel_sizes(facts_of("facebook/opt-125m"), 12) == [
        1,
        2,
        3,
        4,
        6,
        12,
    ]


# --- properties ------------------------------------------------------------------------------

facts_strategy = st.builds(
    ModelFacts,
    num_hidden_layers=st.integers(1, 128),
    num_attention_heads=st.integers(1, 256),
    num_key_value_heads=st.integers(1, 256),
    head_dim=st.just(128),
    hidden_size=st.just(4096),
    vocab_size=st.integers(1, 300_000),
    use_mla=st.booleans(),
)


@given(
    size=st.integers(1, 64),
    kv_heads_per_gpu=st.integers(1, 16),
    group=st.integers(1, 8),
    vocab_blocks=st.integers(1, 200),
    vocab_short=st.integers(0, 63),
)
def test_dividing_sizes_pass(
    size: int, kv_heads_per_gpu: int, group: int, vocab_blocks: int, vocab_short: int
) -> None:
    kv_heads = size * kv_heads_per_gpu
    facts = ModelFacts(
        num_hidden_layers=32,
        num_attention_heads=kv_heads * group,
        num_key_value_heads=kv_heads,
        head_dim=128,
        hidden_size=4096,
        vocab_size=size * 64 * vocab_blocks
        - vocab_short,  # pads back up to a multiple of size
    )
    assert check_tensor_parallel(facts, size) == []
    assert size in valid_tensor_parallel_sizes(facts, size)


@given(size=st.integers(2, 64), data=st.data())
def test_kv_heads_fewer_than_gpus_are_replicated(
    size: int, data: st.DataObject
) -> None:
    kv_heads = data.draw(st.sampled_from([d for d in range(1, size) if size % d == 0]))
    facts = ModelFacts(
        num_hidden_layers=8,
        num_attention_heads=size * 4,
        num_key_value_heads=kv_heads,
        head_dim=128,
        hidden_size=4096,
        vocab_size=size * 64,
    )
    assert check_tensor_parallel(facts, size) == []
    # One kv head more and the GPUs no longer hold whole replicas (unless it divides again).
    other = facts.model_copy(update={"num_key_value_heads": kv_heads + 1})
    assert (check_tensor_parallel(other, size) == []) == (size % (kv_heads + 1) == 0)


@given(
    facts=st.one_of(st.none(), facts_strategy),
    tensor=st.integers(-4, 70),
    pipeline=st.integers(-4, 200),
    model=st.text(max_size=20),
)
def test_findings_never_raise_and_are_consistent(
    facts: ModelFacts | None, tensor: int, pipeline: int, model: str
) -> None:
    findings = check_parallelism(facts, tensor, pipeline, model)
    assert all(isinstance(f, Finding) and f.message for f in findings)
    assert {f.rule for f in findings} <= {TENSOR_PARALLEL_RULE, PIPELINE_PARALLEL_RULE}
    if facts is None and tensor >= 1 and pipeline >= 1:
        assert [f.verifiable for f in findings] == [False, False]
    if facts is not None and tensor >= 1:
        tensor_findings = check_tensor_parallel(facts, tensor)
        valid = valid_tensor_parallel_sizes(facts, max(8, tensor))
        assert (tensor_findings == []) == (tensor in valid)
        for finding in tensor_findings:
            assert finding.message.endswith(", ".join(map(str, valid)) + ".")


@given(
    tensor=st.integers(-1, 16),
    pipeline=st.integers(-1, 8),
    gpus_per_pod=st.one_of(st.none(), st.integers(-1, 32)),
    gpus_per_node=st.one_of(st.none(), st.integers(-1, 16)),
)
def test_plan_topology_is_whole_or_refuses(
    tensor: int, pipeline: int, gpus_per_pod: int | None, gpus_per_node: int | None
) -> None:
    try:
        topology = plan_topology(tensor, pipeline, gpus_per_pod, gpus_per_node)
    except TopologyError as error:
        assert str(error)
        return
    assert (
        topology.pods * topology.gpus_per_pod
        == topology.world_size
        == tensor * pipeline
    )
    assert topology.gpus_per_pod % tensor == 0
    assert gpus_per_node is None or topology.gpus_per_pod <= gpus_per_node
    assert gpus_per_pod is None or topology.gpus_per_pod == gpus_per_pod


# --- topology --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((8, 2, None, 8), Topology(8, 2, 8, 2)),  # 405B in bf16: two 8-GPU nodes
        ((8, 1, None, 8), Topology(8, 1, 8, 1)),
        ((2, 2, None, None), Topology(2, 2, 4, 1)),  # no node limit: one pod
        (
            (4, 3, None, 8),
            Topology(4, 3, 4, 3),
        ),  # 8 does not divide 12: one stage per pod
        ((2, 4, None, 8), Topology(2, 4, 8, 1)),
        ((1, 4, 2, None), Topology(1, 4, 2, 2)),
    ],
)
def test_plan_topology(
    args: tuple[int, int, int | None, int | None], expected: Topology
) -> None:
    topology = plan_topology(*args)
    assert topology == expected
    assert topology.multi_node == (expected.pods > 1)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            (16, 1, None, 8),
            (
                "tensor_parallel_size (16) exceeds the GPUs per node (8): tensor parallel traffic must "
                "stay inside one node; split across nodes with pipeline parallelism instead. For 16 GPUs "
                "use tensor_parallel_size=8 with pipeline_parallel_size=2."
            ),
        ),
        (
            (4, 2, 2, 8),
            (
                "gpus_per_pod (2) must be a multiple of tensor_parallel_size (4): a tensor-parallel group "
                "must not span pods. Valid gpus_per_pod: 4, 8."
            ),
        ),
        (
            (4, 3, 8, 8),
            (
                "world size (12 = tensor_parallel_size 4 x pipeline_parallel_size 3) is not divisible by "
                "gpus_per_pod (8): every pod must be full. Valid gpus_per_pod: 4."
            ),
        ),
        (
            (2, 2, 16, 8),
            (
                "gpus_per_pod (16) exceeds the GPUs per node (8): a pod runs on one node. "
                "Valid gpus_per_pod: 2, 4."
            ),
        ),
        ((0, 1, None, None), "tensor_parallel_size must be at least 1, got 0."),
        ((1, 0, None, None), "pipeline_parallel_size must be at least 1, got 0."),
        ((1, 1, 0, None), "gpus_per_pod must be at least 1, got 0."),
        ((1, 1, None, 0), "gpus_per_node must be at least 1, got 0."),
    ],
)
def test_topology_errors(
    args: tuple[int, int, int | None, int | None], message: str
) -> None:
    with pytest.raises(TopologyError) as error:
        plan_topology(*args)
    assert str(error.value) == message
    assert isinstance(error.value, ValueError)
