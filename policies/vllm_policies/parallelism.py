"""Tensor and pipeline parallel sizes against the served model, with the package's own rules.

Every engine whose command the pack reads is checked (:class:`EngineCommand`): vLLM and Ray Serve
LLM with vLLM's rules and words; TGI, TensorRT-LLM, Megatron-LM and DeepSpeed-MII with the same
head and layer rules, named by the engine's own flag. Those engines pad the vocabulary to a multiple
of the shard count themselves, so vLLM's padded-vocabulary rule is left out for them. llama.cpp,
Ollama and Triton split layers (or hide the model in a repository): no rule applies.
"""

from __future__ import annotations

from collections.abc import Callable
from math import lcm
from typing import Literal

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from pulumi_vllm.distributed.parallelism import (
    PIPELINE_PARALLEL_RULE,
    TENSOR_PARALLEL_RULE,
    VOCAB_PADDING,
    Finding,
    check_pipeline_parallel,
    check_tensor_parallel,
    valid_tensor_parallel_sizes,
)
from pulumi_vllm.engine.workload import EngineCommand
from pulumi_vllm.models.facts import ModelFacts
from vllm_policies.common import UNKNOWN_MODEL_SCHEMA, engine_targets, facts_for, report_unverifiable

TENSOR_PARALLEL_POLICY = f"vllm-{TENSOR_PARALLEL_RULE}"
PIPELINE_PARALLEL_POLICY = f"vllm-{PIPELINE_PARALLEL_RULE}"

Check = Callable[[ModelFacts | None, int, str], list[Finding]]
_SUGGEST_UP_TO = 8


def _facts_hint(origin: str) -> str:
    return f" (model facts from the {origin})" if origin else ""


def _without_vocabulary_rule(facts: ModelFacts, up_to: int) -> ModelFacts:
    """``facts`` with a vocabulary every size up to ``up_to`` divides: for engines that pad it per shard."""
    return facts.model_copy(update={"vocab_size": lcm(*range(1, up_to + 1)) * VOCAB_PADDING})


def _kv_heads_split(facts: ModelFacts, size: int) -> bool:
    kv = facts.num_key_value_heads
    return facts.use_mla or (kv % size == 0 if kv >= size else size % kv == 0)


def _other_engine_tensor(command: EngineCommand, facts: ModelFacts, size: int, model: str) -> str | None:
    """The message for another engine's tensor-parallel size that does not split the model, else ``None``."""
    up_to = max(_SUGGEST_UP_TO, size)
    facts = _without_vocabulary_rule(facts, up_to)
    if not check_tensor_parallel(facts, size, model):
        return None
    broken = []
    if facts.num_attention_heads % size:
        broken.append(f"the {facts.num_attention_heads} attention heads")
    if not _kv_heads_split(facts, size):
        broken.append(f"the {facts.num_key_value_heads} key/value heads")
    valid = ", ".join(str(s) for s in valid_tensor_parallel_sizes(facts, up_to))
    return (
        f"{command.setting(command.tensor_flag, size)} does not divide {' and '.join(broken) or 'the heads'} of "
        f"{model}: {command.title} splits them evenly across its tensor-parallel GPUs. "
        f"Valid {command.tensor_flag} values up to {up_to}: {valid}."
    )


def _other_engine_pipeline(command: EngineCommand, facts: ModelFacts, size: int, model: str) -> str | None:
    if not check_pipeline_parallel(facts, size, model):
        return None
    layers = facts.num_hidden_layers
    return (
        f"{command.setting(command.pipeline_flag, size)} exceeds the {layers} hidden layers of {model}: every "
        f"pipeline stage needs at least one layer. Valid {command.pipeline_flag} values: 1 to {layers}."
    )


def _validate(which: Literal["tensor", "pipeline"]) -> Callable[[ResourceValidationArgs, ReportViolation], None]:
    check: Check = check_tensor_parallel if which == "tensor" else check_pipeline_parallel

    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        unverifiable: list[str] = []
        for target in engine_targets(args):
            for command in target.engines:
                if which == "tensor":
                    flag, size, value = command.tensor_flag, command.tensor_parallel_size, command.tensor_value
                else:
                    flag, size, value = command.pipeline_flag, command.pipeline_parallel_size, command.pipeline_value
                if flag is None:
                    continue  # the engine has no such split
                if size is None:
                    unverifiable.append(f"{target.label}: {flag} {value!r} is not a number")
                    continue
                facts, origin, model = facts_for(target, command.model)
                model = model or "(no model given)"
                findings = check(facts, size, model)
                if facts is not None and findings and not command.vllm_based:
                    other = _other_engine_tensor if which == "tensor" else _other_engine_pipeline
                    message = other(command, facts, size, model)
                    if message:
                        report(f"{target.label}: {message}{_facts_hint(origin)}")
                    continue
                for finding in findings:
                    message = f"{target.label}: {finding.message}"
                    if not finding.verifiable:
                        setting = "" if command.vllm_based else f" ({command.title} {command.setting(flag, size)})"
                        unverifiable.append(
                            f"{message}{setting}; add vllm.pulumi.com/num-attention-heads, num-key-value-heads, "
                            "num-hidden-layers, vocab-size, head-dim and hidden-size annotations to the workload"
                        )
                    else:
                        report(message + _facts_hint(origin))
        report_unverifiable(args, report, unverifiable)

    return validate


tensor_parallel_divides_heads = ResourceValidationPolicy(
    name=TENSOR_PARALLEL_POLICY,
    description=(
        "vLLM splits attention heads, key/value heads and the padded vocabulary evenly across the "
        "--tensor-parallel-size GPUs: choose a size that divides them (the message lists the valid ones). "
        "TGI's --num-shard, TensorRT-LLM's --tp_size, Megatron-LM's --tensor-model-parallel-size, MII's "
        "--tensor-parallel and Ray Serve LLM's engine_kwargs are checked against the heads too."
    ),
    validate=_validate("tensor"),
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=PolicyConfigSchema(properties={"unknownModel": UNKNOWN_MODEL_SCHEMA}),
)

pipeline_parallel_fits_layers = ResourceValidationPolicy(
    name=PIPELINE_PARALLEL_POLICY,
    description=(
        "Every pipeline stage needs at least one decoder layer: --pipeline-parallel-size (TensorRT-LLM's "
        "--pp_size, Megatron-LM's --pipeline-model-parallel-size) must not exceed the model's number of hidden layers."
    ),
    validate=_validate("pipeline"),
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=PolicyConfigSchema(properties={"unknownModel": UNKNOWN_MODEL_SCHEMA}),
)
