"""Parallelism rules: which tensor/pipeline parallel sizes a model and a cluster can take.

Pure functions shared by config validation, the policy pack and the capacity planner, so each
rule lives in one place. The rules mirror what vLLM checks (or trips over) at start-up:

* tensor parallelism splits attention heads, key/value heads and the vocabulary across GPUs;
* pipeline parallelism splits the decoder layers into stages;
* with Ray, every pod is one Ray node, and a tensor-parallel group must not cross pods;
* data parallelism runs several copies of the model (each on tensor x pipeline GPUs) behind one
  server, in one pod; expert parallelism shards a mixture-of-experts model's experts over them.
"""

from __future__ import annotations

from dataclasses import dataclass

from pulumi_vllm.models.facts import ModelFacts

TENSOR_PARALLEL_RULE = "tensor-parallel-divides-heads"
PIPELINE_PARALLEL_RULE = "pipeline-parallel-fits-layers"
EXPERT_PARALLEL_RULE = "expert-parallel-needs-experts"

VOCAB_PADDING = 64
"""vLLM pads the vocabulary to a multiple of this before sharding it (DEFAULT_VOCAB_PADDING_SIZE)."""

_SUGGEST_UP_TO = 8
"""Suggestions list sizes up to at least one full node of 8 GPUs."""


@dataclass(frozen=True)
class Finding:
    """One broken (or unverifiable) parallelism rule."""

    rule: str
    """Rule name, e.g. ``tensor-parallel-divides-heads``."""
    message: str
    """What is wrong and what would be accepted."""
    verifiable: bool = True
    """``False`` when the rule could not be checked because the model's facts are unknown."""


class TopologyError(ValueError):
    """Tensor/pipeline parallel sizes that cannot be laid out on the given pods and nodes."""


@dataclass(frozen=True)
class Topology:
    """How the ``tensor_parallel_size * pipeline_parallel_size * data_parallel_size`` GPUs are spread over pods."""

    tensor_parallel_size: int
    pipeline_parallel_size: int
    gpus_per_pod: int
    pods: int
    data_parallel_size: int = 1
    """Copies of the model (data-parallel ranks), each on tensor x pipeline GPUs; all in one pod."""

    @property
    def gpus_per_rank(self) -> int:
        """GPUs of one copy of the model: tensor parallel size times pipeline parallel size."""
        return self.tensor_parallel_size * self.pipeline_parallel_size

    @property
    def world_size(self) -> int:
        """GPUs in total: tensor x pipeline x data parallel size."""
        return self.gpus_per_rank * self.data_parallel_size

    @property
    def multi_node(self) -> bool:
        """Whether the deployment needs more than one pod (hence Ray across pods)."""
        return self.pods > 1


def padded_vocab_size(vocab_size: int, pad_to: int = VOCAB_PADDING) -> int:
    """``vocab_size`` rounded up to a multiple of ``pad_to``, as vLLM's VocabParallelEmbedding does."""
    return -(-vocab_size // pad_to) * pad_to


def _tensor_parallel_problems(facts: ModelFacts, size: int) -> list[str]:
    """The first sentence of each tensor-parallel message that ``size`` breaks (empty: fine)."""
    problems: list[str] = []
    heads = facts.num_attention_heads
    if heads % size:
        # vLLM's own wording (ModelConfig.verify_with_parallel_config), so users can search it.
        problems.append(
            f"Total number of attention heads ({heads}) must be divisible by "
            f"tensor parallel size ({size})."
        )
    # MLA models cache one shared latent per token instead of per-head keys and values, so
    # vLLM never shards key/value heads for them and this rule does not apply.
    kv_heads = facts.num_key_value_heads
    if not facts.use_mla:
        if kv_heads >= size and kv_heads % size:
            problems.append(
                f"Total number of key/value heads ({kv_heads}) must be divisible by "
                f"tensor parallel size ({size})."
            )
        elif kv_heads < size and size % kv_heads:
            # Fewer kv heads than GPUs: vLLM replicates each kv head on size / kv_heads GPUs.
            problems.append(
                f"Tensor parallel size ({size}) must be a multiple of the total number of "
                f"key/value heads ({kv_heads}) when it exceeds them."
            )
    padded = padded_vocab_size(facts.vocab_size)
    if padded % size:
        # vLLM shards the padded vocabulary evenly and fails with "<padded> is not divisible by <T>".
        problems.append(
            f"Padded vocabulary size ({padded}, vocab_size {facts.vocab_size} rounded up to a "
            f"multiple of {VOCAB_PADDING}) must be divisible by tensor parallel size ({size})."
        )
    return problems


def valid_tensor_parallel_sizes(facts: ModelFacts, up_to: int) -> list[int]:
    """Every tensor parallel size from 1 to ``up_to`` that ``facts`` allows."""
    return [
        size
        for size in range(1, up_to + 1)
        if not _tensor_parallel_problems(facts, size)
    ]


def _suggestion(facts: ModelFacts, size: int) -> str:
    up_to = max(_SUGGEST_UP_TO, size)
    valid = ", ".join(str(s) for s in valid_tensor_parallel_sizes(facts, up_to))
    return f"Valid tensor parallel sizes up to {up_to}: {valid}."


def _unverifiable(rule: str, what: str, model: str) -> Finding:
    return Finding(
        rule, f"cannot verify {what}: no model facts for '{model}'", verifiable=False
    )


def check_tensor_parallel(
    facts: ModelFacts | None, tensor_parallel_size: int, model: str = ""
) -> list[Finding]:
    """Findings for ``tensor_parallel_size`` against the model's heads, kv heads and vocabulary.

    Returns an empty list when vLLM can shard the model that way, one finding per broken
    condition otherwise (each ending with the valid sizes), or one unverifiable finding when
    ``facts`` is ``None``. Never raises.
    """
    rule = TENSOR_PARALLEL_RULE
    if tensor_parallel_size < 1:
        return [
            Finding(
                rule,
                f"tensor parallel size must be at least 1, got {tensor_parallel_size}.",
            )
        ]
    if facts is None:
        return [
            _unverifiable(rule, f"tensor parallel size {tensor_parallel_size}", model)
        ]
    suggestion = _suggestion(facts, tensor_parallel_size)
    return [
        Finding(rule, f"{problem} {suggestion}")
        for problem in _tensor_parallel_problems(facts, tensor_parallel_size)
    ]


def check_pipeline_parallel(
    facts: ModelFacts | None, pipeline_parallel_size: int, model: str = ""
) -> list[Finding]:
    """Findings for ``pipeline_parallel_size`` against the model's layer count.

    vLLM spreads layers over stages as evenly as it can (uneven splits are fine) but does not
    check that every stage gets one; a stage without layers only fails once the workers start.
    Never raises.
    """
    rule = PIPELINE_PARALLEL_RULE
    if pipeline_parallel_size < 1:
        return [
            Finding(
                rule,
                f"pipeline parallel size must be at least 1, got {pipeline_parallel_size}.",
            )
        ]
    if facts is None:
        return [
            _unverifiable(
                rule, f"pipeline parallel size {pipeline_parallel_size}", model
            )
        ]
    layers = facts.num_hidden_layers
    if pipeline_parallel_size <= layers:
        return []
    return [
        Finding(
            rule,
            f"Pipeline parallel size ({pipeline_parallel_size}) must not exceed the number of "
            f"hidden layers ({layers}). Valid pipeline parallel sizes: 1 to {layers}.",
        )
    ]


def check_parallelism(
    facts: ModelFacts | None,
    tensor_parallel_size: int,
    pipeline_parallel_size: int,
    model: str = "",
) -> list[Finding]:
    """Tensor and pipeline parallel findings together (see the two checks)."""
    return check_tensor_parallel(
        facts, tensor_parallel_size, model
    ) + check_pipeline_parallel(facts, pipeline_parallel_size, model)


def check_expert_parallel(facts: ModelFacts | None, enabled: bool, model: str = "") -> list[Finding]:
    """Expert parallelism shards the experts of a mixture-of-experts model; a dense model has none to shard.

    vLLM itself starts a dense model with ``--enable-expert-parallel`` and ignores it, so the layout the
    user asked for is not the one that runs. Never raises.
    """
    if not enabled:
        return []
    if facts is None:
        return [_unverifiable(EXPERT_PARALLEL_RULE, "expert parallelism", model)]
    if (facts.num_experts or 0) > 1:
        return []
    return [
        Finding(
            EXPERT_PARALLEL_RULE,
            f"Expert parallelism shards the experts of a mixture-of-experts model; {model or 'the model'} is a "
            "dense model (no num_experts in its facts), so there is nothing to shard.",
        )
    ]


def _pod_sizes(
    tensor_parallel_size: int, world_size: int, gpus_per_node: int | None
) -> list[int]:
    """GPU counts per pod that hold whole tensor-parallel groups and split the world evenly."""
    limit = min(world_size, gpus_per_node or world_size)
    return [
        size
        for size in range(tensor_parallel_size, limit + 1, tensor_parallel_size)
        if world_size % size == 0
    ]


def plan_topology(
    tensor_parallel_size: int,
    pipeline_parallel_size: int,
    gpus_per_pod: int | None = None,
    gpus_per_node: int | None = None,
    data_parallel_size: int = 1,
    data_parallel_across_nodes: bool = False,
) -> Topology:
    """Lay out ``tensor_parallel_size * pipeline_parallel_size`` GPUs over identical pods.

    ``data_parallel_across_nodes`` lets data-parallel ranks that do not fit one node spread over pods of whole
    ranks (a Ray cluster: vLLM's ``--data-parallel-backend ray``; see :mod:`pulumi_vllm.distributed.wide_ep`).

    With ``data_parallel_size`` above 1, the ranks (each ``tensor_parallel_size * pipeline_parallel_size``
    GPUs) all run in one pod behind one server: the pod holds the whole world and must fit a node
    (data parallelism across nodes is not laid out here).

    The rule: every pod holds whole tensor-parallel groups (``gpus_per_pod`` is a multiple of
    ``tensor_parallel_size``) and fits on one node. With Ray each pod is one Ray node; vLLM
    places a tensor-parallel group's ranks side by side and warns when they land on several
    Ray nodes, and NCCL then talks between pods over the network instead of NVLink even when
    they share a machine. Pipeline stages, which exchange only activations, may cross pods.

    ``gpus_per_pod`` defaults to the largest such size up to ``gpus_per_node`` (one pod for the
    whole model when it fits on a node).

    Raises:
        TopologyError: a size below 1, a tensor-parallel group larger than a node, or a
            ``gpus_per_pod`` that breaks the rule above; the message lists what would work.
    """
    sizes = {
        "tensor_parallel_size": tensor_parallel_size,
        "pipeline_parallel_size": pipeline_parallel_size,
        "data_parallel_size": data_parallel_size,
        "gpus_per_pod": gpus_per_pod,
        "gpus_per_node": gpus_per_node,
    }
    for name, value in sizes.items():
        if value is not None and value < 1:
            raise TopologyError(f"{name} must be at least 1, got {value}.")
    if data_parallel_size > 1:
        if data_parallel_across_nodes:
            spread = data_parallel_pods(
                tensor_parallel_size, pipeline_parallel_size, data_parallel_size, gpus_per_pod, gpus_per_node
            )
            if spread is not None:
                pods, per_pod = spread
                return Topology(tensor_parallel_size, pipeline_parallel_size, per_pod, pods, data_parallel_size)
        return _data_parallel_topology(
            tensor_parallel_size, pipeline_parallel_size, data_parallel_size, gpus_per_pod, gpus_per_node
        )

    world = tensor_parallel_size * pipeline_parallel_size
    if gpus_per_node is not None and tensor_parallel_size > gpus_per_node:
        hint = ""
        if world % gpus_per_node == 0:
            hint = (
                f" For {world} GPUs use tensor_parallel_size={gpus_per_node} with "
                f"pipeline_parallel_size={world // gpus_per_node}."
            )
        raise TopologyError(
            f"tensor_parallel_size ({tensor_parallel_size}) exceeds the GPUs per node "
            f"({gpus_per_node}): tensor parallel traffic must stay inside one node; "
            f"split across nodes with pipeline parallelism instead.{hint}"
        )
    if (
        gpus_per_node is not None
        and gpus_per_pod is not None
        and gpus_per_pod > gpus_per_node
    ):
        raise TopologyError(
            f"gpus_per_pod ({gpus_per_pod}) exceeds the GPUs per node ({gpus_per_node}): "
            f"a pod runs on one node. {_pod_hint(tensor_parallel_size, world, gpus_per_node)}"
        )

    if gpus_per_pod is None:
        gpus_per_pod = max(_pod_sizes(tensor_parallel_size, world, gpus_per_node))
    elif gpus_per_pod % tensor_parallel_size:
        raise TopologyError(
            f"gpus_per_pod ({gpus_per_pod}) must be a multiple of tensor_parallel_size "
            f"({tensor_parallel_size}): a tensor-parallel group must not span pods. "
            f"{_pod_hint(tensor_parallel_size, world, gpus_per_node)}"
        )
    elif world % gpus_per_pod:
        raise TopologyError(
            f"world size ({world} = tensor_parallel_size {tensor_parallel_size} x "
            f"pipeline_parallel_size {pipeline_parallel_size}) is not divisible by gpus_per_pod "
            f"({gpus_per_pod}): every pod must be full. "
            f"{_pod_hint(tensor_parallel_size, world, gpus_per_node)}"
        )
    return Topology(
        tensor_parallel_size=tensor_parallel_size,
        pipeline_parallel_size=pipeline_parallel_size,
        gpus_per_pod=gpus_per_pod,
        pods=world // gpus_per_pod,
    )


def data_parallel_pods(
    tensor_parallel_size: int, pipeline_parallel_size: int, data_parallel_size: int,
    gpus_per_pod: int | None, gpus_per_node: int | None,
) -> tuple[int, int] | None:
    """``(pods, GPUs per pod)`` for data-parallel ranks spread over pods of whole ranks; ``None`` when every rank
    fits the one pod of one node (the single-pod layout applies).

    Raises:
        TopologyError: the ranks cannot be split into equal pods of whole ranks that fit a node.
    """
    rank = tensor_parallel_size * pipeline_parallel_size
    world = rank * data_parallel_size
    node = gpus_per_node or world
    if world <= node and gpus_per_pod in (None, world):
        return None
    per_pod = gpus_per_pod or (node // rank) * rank
    if pipeline_parallel_size > 1:
        raise TopologyError(
            f"pipeline_parallel_size {pipeline_parallel_size} with data_parallel_size {data_parallel_size} across "
            "nodes is not laid out here: each data-parallel rank must sit in one pod; use tensor parallelism inside "
            "the node and data parallelism across nodes"
        )
    if per_pod < rank or per_pod % rank or per_pod > node or world % per_pod:
        fits = [str(size) for size in range(rank, node + 1, rank) if world % size == 0]
        raise TopologyError(
            f"data_parallel_size {data_parallel_size} x tensor_parallel_size {tensor_parallel_size} = {world} GPUs "
            f"cannot be split into equal pods of whole ranks of {gpus_per_pod or per_pod} GPUs on nodes of {node}; "
            f"valid gpus_per_pod: {', '.join(fits) or 'none (change data_parallel_size)'}."
        )
    return world // per_pod, per_pod


def _data_parallel_topology(
    tensor_parallel_size: int,
    pipeline_parallel_size: int,
    data_parallel_size: int,
    gpus_per_pod: int | None,
    gpus_per_node: int | None,
) -> Topology:
    """One pod with every data-parallel rank: ``tensor x pipeline x data`` GPUs on one node."""
    world = tensor_parallel_size * pipeline_parallel_size * data_parallel_size
    layout = (
        f"data_parallel_size {data_parallel_size} x tensor_parallel_size {tensor_parallel_size} x "
        f"pipeline_parallel_size {pipeline_parallel_size} = {world} GPUs"
    )
    if gpus_per_node is not None and world > gpus_per_node:
        raise TopologyError(
            f"{layout} exceed the GPUs per node ({gpus_per_node}): data parallel ranks run in one pod on one node "
            "here (data parallelism across nodes is not supported yet with this backend); lower data_parallel_size "
            f"to {max(gpus_per_node // (tensor_parallel_size * pipeline_parallel_size), 1)} or less, use replicas "
            "for more copies, or backend leaderworkerset to spread the ranks over nodes"
        )
    if gpus_per_pod is not None and gpus_per_pod != world:
        raise TopologyError(
            f"gpus_per_pod ({gpus_per_pod}) must be {world} with data parallelism ({layout}): every rank runs in "
            "the one pod (data parallelism across pods is not supported yet)."
        )
    return Topology(
        tensor_parallel_size=tensor_parallel_size,
        pipeline_parallel_size=pipeline_parallel_size,
        gpus_per_pod=world,
        pods=1,
        data_parallel_size=data_parallel_size,
    )


def _pod_hint(tensor_parallel_size: int, world: int, gpus_per_node: int | None) -> str:
    valid = ", ".join(
        str(s) for s in _pod_sizes(tensor_parallel_size, world, gpus_per_node)
    )
    return f"Valid gpus_per_pod: {valid}."
