"""Tensor and pipeline parallel sizes against the served model, with the package's own rules."""

from __future__ import annotations

from collections.abc import Callable

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
    Finding,
    check_pipeline_parallel,
    check_tensor_parallel,
)
from pulumi_vllm.engine.workload import VllmCommand
from pulumi_vllm.models.facts import ModelFacts
from vllm_policies.common import UNKNOWN_MODEL_SCHEMA, model_facts, report_unverifiable, vllm_targets

TENSOR_PARALLEL_POLICY = f"vllm-{TENSOR_PARALLEL_RULE}"
PIPELINE_PARALLEL_POLICY = f"vllm-{PIPELINE_PARALLEL_RULE}"

Check = Callable[[ModelFacts | None, int, str], list[Finding]]


def _facts_hint(origin: str) -> str:
    return f" (model facts from the {origin})" if origin else ""


def _validate(
    check: Check, size_of: Callable[[VllmCommand], int | None], flag: str
) -> Callable[[ResourceValidationArgs, ReportViolation], None]:
    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        unverifiable: list[str] = []
        for target in vllm_targets(args):
            for index, command in enumerate(target.commands.vllm):
                size = size_of(command)
                if size is None:
                    unverifiable.append(f"{target.label}: {flag} {command.value(flag)!r} is not a number")
                    continue
                facts, origin, model = model_facts(target, index)
                for finding in check(facts, size, model or "(no model given)"):
                    message = f"{target.label}: {finding.message}"
                    if not finding.verifiable:
                        unverifiable.append(
                            f"{message}; add vllm.pulumi.com/num-attention-heads, num-key-value-heads, "
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
        "--tensor-parallel-size GPUs: choose a size that divides them (the message lists the valid ones)."
    ),
    validate=_validate(check_tensor_parallel, lambda command: command.tensor_parallel_size, "--tensor-parallel-size"),
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=PolicyConfigSchema(properties={"unknownModel": UNKNOWN_MODEL_SCHEMA}),
)

pipeline_parallel_fits_layers = ResourceValidationPolicy(
    name=PIPELINE_PARALLEL_POLICY,
    description=(
        "Every pipeline stage needs at least one decoder layer: --pipeline-parallel-size must not "
        "exceed the model's number of hidden layers."
    ),
    validate=_validate(
        check_pipeline_parallel, lambda command: command.pipeline_parallel_size, "--pipeline-parallel-size"
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=PolicyConfigSchema(properties={"unknownModel": UNKNOWN_MODEL_SCHEMA}),
)
