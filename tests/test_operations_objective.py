"""``autoscaling.objective``: KEDA's targets derived from the performance model in any stack, equal to what
``size --write-stack`` writes, with the stack's own keys winning, and the refusals naming the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from schemas import validate_object

from pulumi_vllm.cli import size_objective
from pulumi_vllm.cli.render import render_stack
from pulumi_vllm.config import ConfigError, parse_stack_config
from pulumi_vllm.models.resolve import resolve_facts
from pulumi_vllm.plan import plan_serving
from pulumi_vllm.render.summary import summary_lines

REPO = Path(__file__).resolve().parents[1]
LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
QWEN = {"id": "Qwen/Qwen2.5-7B-Instruct"}
OBJECTIVE = {"requestsPerSecond": 8, "inputTokens": 1024, "outputTokens": 128, "ttftP90Ms": 800}


def _values(**autoscaling: Any) -> dict[str, Any]:
    return {
        "name": "qwen", "model": QWEN, "resources": {"gpuType": "L40S"}, "cache": {"accessMode": "ReadWriteMany"},
        "autoscaling": {"enabled": True, "objective": OBJECTIVE, **autoscaling},
    }


@pytest.fixture(scope="module")
def written() -> tuple[dict[str, Any], size_objective.Objective]:
    """The stack ``size --rate 20 --ttft-p90 500 --itl-p90 50 --write-stack`` writes for Llama 3.1 8B."""
    facts, _ = resolve_facts(LLAMA)
    assert facts is not None
    objective = size_objective.Objective(20, 1024, 128, 500, 50)
    candidates, chosen = size_objective.search(facts, LLAMA, objective, size_objective.load_prices())
    assert chosen is not None
    config = size_objective.stack_config("planned", LLAMA, candidates[chosen], objective)
    return {key.removeprefix("pulumi-vllm:"): value for key, value in config.items()}, objective


def test_derived_targets_equal_what_write_stack_writes(written: tuple[dict[str, Any], Any]) -> None:
    values, objective = written
    targets = values["autoscaling"]
    stated = {
        **values,
        "replicas": 1,
        "autoscaling": {"enabled": True, "objective": {
            "requestsPerSecond": objective.rate, "inputTokens": objective.input_tokens,
            "outputTokens": objective.output_tokens, "ttftP90Ms": objective.ttft_p90_ms,
            "itlP90Ms": objective.itl_p90_ms,
        }},
    }
    plan = plan_serving(parse_stack_config(stated))
    scaling = plan.config.autoscaling
    assert targets["minReplicas"] >= 1 and "kvCacheUsagePercent" in targets
    assert (scaling.min_replicas, scaling.max_replicas, scaling.waiting_requests_per_replica,
            scaling.kv_cache_usage_percent) == (targets["minReplicas"], targets["maxReplicas"],
                                                targets["waitingRequestsPerReplica"], targets["kvCacheUsagePercent"])
    assert plan.autoscaling is not None and plan.autoscaling.explicit == ()


def test_the_stacks_own_thresholds_win_and_the_summary_says_so() -> None:
    derived = plan_serving(parse_stack_config(_values())).config.autoscaling
    assert derived.waiting_requests_per_replica != 7 and derived.max_replicas != 6
    plan = plan_serving(parse_stack_config(_values(waitingRequestsPerReplica=7, maxReplicas=6)))
    scaling = plan.config.autoscaling
    assert (scaling.waiting_requests_per_replica, scaling.max_replicas) == (7, 6)
    assert scaling.min_replicas == derived.min_replicas
    assert scaling.kv_cache_usage_percent == derived.kv_cache_usage_percent
    assert plan.autoscaling is not None
    line = plan.autoscaling.summary_line(plan.config)
    assert "derived from autoscaling.objective: 8 requests/s of 1024 in / 128 out" in line
    assert line.endswith("the stack's own: maxReplicas, waitingRequestsPerReplica)")


def test_an_objective_no_replica_count_meets_is_refused_with_the_shortfall() -> None:
    with pytest.raises(ConfigError) as refused:
        plan_serving(parse_stack_config(_values(maxReplicas=2, objective={**OBJECTIVE, "requestsPerSecond": 60})))
    message = str(refused.value)
    assert message.startswith("pulumi-vllm:autoscaling.objective: {requestsPerSecond 60, inputTokens 1024")
    assert "no replica count up to autoscaling.maxReplicas (2) meets it" in message
    assert "% short of 60" in message and "pulumi-vllm size --rate 60" in message


def test_an_objective_needs_the_gpu_type_and_a_derived_maximum_is_checked_against_the_quota() -> None:
    values = _values()
    del values["resources"]
    with pytest.raises(ConfigError, match=r"autoscaling.objective: .* needs resources.gpuType"):
        plan_serving(parse_stack_config(values))
    quota = {**_values(objective={**OBJECTIVE, "requestsPerSecond": 30}), "quota": {"enabled": True}}
    with pytest.raises(ConfigError, match=r"autoscaling.maxReplicas: \d+ is not accepted.*derived from "
                                          r"autoscaling.objective"):
        plan_serving(parse_stack_config(quota))


def test_the_example_stack_derives_its_targets_and_its_scaled_object_is_valid() -> None:
    rendered = render_stack(REPO, "ops-autoscaling", env={})
    (scaled,) = [doc for name, doc in rendered.documents
                 if name.endswith(".yaml") and isinstance(doc, dict) and doc.get("kind") == "ScaledObject"]
    validate_object(scaled)
    scaling = rendered.plan.config.autoscaling
    assert scaled["spec"]["maxReplicaCount"] == 4  # the stack's own
    assert scaled["spec"]["minReplicaCount"] == scaling.min_replicas == rendered.plan.autoscaling.targets.min_replicas
    thresholds = {trigger["metadata"]["threshold"] for trigger in scaled["spec"]["triggers"]}
    assert f"{scaling.waiting_requests_per_replica:g}" in thresholds
    assert any(line.startswith("autoscaling: ") and "derived from autoscaling.objective" in line
               for line in summary_lines(rendered))


def test_an_objective_with_autoscaling_off_is_ignored_with_a_warning() -> None:
    values = _values()
    values["autoscaling"]["enabled"] = False
    plan = plan_serving(parse_stack_config(values))
    assert plan.autoscaling is None and plan.config.autoscaling.waiting_requests_per_replica == 4
    assert "autoscaling.objective is ignored while autoscaling.enabled is false" in plan.warnings


def test_an_objective_with_a_prefix_hit_rate_plans_what_size_predicts_and_a_bad_rate_names_its_key() -> None:
    """``prefixHitRate`` is ``size --prefix-hit-rate``: the same targets as the search's, fewer replicas' worth of
    prefill than without it, and the summary says the rate assumed; a share of 1 or more is refused by its key."""
    long = {"requestsPerSecond": 6, "inputTokens": 6000, "outputTokens": 128, "ttftP90Ms": 2000}
    cold = plan_serving(parse_stack_config(_values(objective=long)))
    warm = plan_serving(parse_stack_config(_values(objective={**long, "prefixHitRate": 0.75})))
    assert warm.autoscaling is not None and cold.autoscaling is not None
    assert warm.autoscaling.targets.replica_requests_per_s > cold.autoscaling.targets.replica_requests_per_s
    assert "6000 in / 128 out, 75% of each prompt in the prefix cache" in warm.autoscaling.summary_line(warm.config)
    with pytest.raises(ConfigError) as refused:
        parse_stack_config(_values(objective={**long, "prefixHitRate": 1.2}))
    assert "autoscaling.objective.prefixHitRate" in str(refused.value)
