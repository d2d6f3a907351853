"""The serving plan: capacity at validation, facts annotations, topology on the plan."""

from __future__ import annotations

import pytest

from pulumi_vllm.config import ConfigError, parse_stack_config
from pulumi_vllm.plan import plan_serving

BIG_ON_SMALL = {"model": {"id": "meta-llama/Llama-3.1-70B-Instruct"}, "resources": {"gpuType": "L4"}}


def test_a_model_that_cannot_fit_fails_validation_with_vllms_message() -> None:
    with pytest.raises(ConfigError) as caught:
        plan_serving(parse_stack_config(BIG_ON_SMALL))
    message = str(caught.value)
    assert message.startswith("pulumi-vllm:resources.gpuType: 'L4' is not accepted for this layout")
    assert "does not fit" in message


def test_capacity_check_can_be_a_warning() -> None:
    plan = plan_serving(parse_stack_config({**BIG_ON_SMALL, "capacity": {"check": "warning"}}))
    assert plan.capacity is not None and not plan.capacity.fits
    assert len(plan.warnings) == 1 and "does not fit" in plan.warnings[0]


def test_min_concurrency_is_enforced() -> None:
    config = {"model": {"id": "meta-llama/Llama-3.1-8B-Instruct"}, "resources": {"gpuType": "H100"},
              "engine": {"maxModelLen": 8192}}
    plan = plan_serving(parse_stack_config(config))
    assert plan.capacity is not None and plan.capacity.max_concurrency > 10
    with pytest.raises(ConfigError, match=r"below capacity.minConcurrency \(1000\)"):
        plan_serving(parse_stack_config({**config, "capacity": {"minConcurrency": 1000}}))


def test_unknown_model_is_allowed_and_reported_as_unverifiable() -> None:
    plan = plan_serving(parse_stack_config({"model": {"id": "acme/secret-model"}, "parallelism": {"tensorParallelSize": 3}}))
    assert plan.facts is None and plan.capacity is None
    assert [finding.verifiable for finding in plan.findings] == [False] * len(plan.findings)
    assert plan.facts_annotations()["vllm.pulumi.com/tensor-parallel-size"] == "3"
    assert "vllm.pulumi.com/num-attention-heads" not in plan.facts_annotations()


def test_explicit_facts_override_the_catalog() -> None:
    plan = plan_serving(parse_stack_config({
        "model": {"id": "meta-llama/Llama-3.1-8B-Instruct", "facts": {"num_attention_heads": 48, "num_key_value_heads": 12}},
        "parallelism": {"tensorParallelSize": 3},
    }))
    assert plan.facts is not None and plan.facts.num_attention_heads == 48
    assert plan.facts_annotations()["vllm.pulumi.com/num-attention-heads"] == "48"


def test_multi_node_problems_fail_before_any_resource(mocks) -> None:
    from pulumi_vllm.kubernetes.serving import VllmServing

    config = {
        "name": "big",
        "model": {"id": "meta-llama/Llama-3.1-405B-Instruct-FP8"},
        "parallelism": {"tensorParallelSize": 8, "pipelineParallelSize": 2, "gpusPerNode": 8},
    }
    with pytest.raises(ConfigError, match=r"pulumi-vllm:cache.accessMode: 'ReadWriteOnce' is not accepted"):
        VllmServing("big", {"config": config})
    assert mocks.resources == []


def test_unverifiable_rules_and_capacity_warnings_are_reported() -> None:
    from pulumi_vllm.cli.render import render_config
    from pulumi_vllm.program import plan_notes

    rendered = render_config({"model": {"id": "acme/secret-model"}})
    notes = plan_notes(rendered.plan)
    # First why no facts were found (the Hub is off in the tests), then each rule that could not be checked.
    assert notes[0].startswith("pulumi-vllm:model.id: could not read acme/secret-model from the Hub: offline")
    assert notes[1:] and all(note.startswith("cannot verify ") for note in notes[1:])
    assert [line for line in rendered.summary() if line.startswith("warning:  cannot verify")] != []
    known = render_config({**BIG_ON_SMALL, "capacity": {"check": "warning"}})
    assert any("does not fit" in note for note in plan_notes(known.plan))
