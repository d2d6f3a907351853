"""The rendered rules are real PromQL: Prometheus's own ``promtool`` parses them and, on synthetic series, shows
each alert staying quiet, firing and resolving, and the recording rules computing tokens per second.

``promtool`` comes with Debian's ``prometheus`` package. Without it these tests are skipped with the reason,
or fail when ``$CI`` is set, so a CI run never passes without checking the rules.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from promtool import require_promtool, run_promtool

from pulumi_vllm.config import parse_stack_config
from pulumi_vllm.kubernetes.operations import prometheus_rule, rule_groups
from pulumi_vllm.plan import ServingPlan, plan_serving

NAMESPACE, NAME, MODEL = "vllm-prod", "qwen", "qwen-served"
THRESHOLDS = {"ttftP95Seconds": 5, "kvCacheUsagePercent": 90, "queueLength": 20, "errorRatePercent": 5,
              "preemptionsPerMinute": 1}
WAKE_UP = f'sum(rate(router_requests_total{{model="{MODEL}"}}[2m]))'


@pytest.fixture(scope="module")
def promtool() -> str:
    """The promtool executable; skips (fails under $CI) when it is not installed."""
    return require_promtool()


def _plan(**autoscaling: Any) -> ServingPlan:
    values: dict[str, Any] = {
        "name": NAME,
        "namespace": NAMESPACE,
        "model": {"id": "Qwen/Qwen2.5-7B-Instruct", "servedModelName": MODEL},
        "cache": {"accessMode": "ReadWriteMany"},
        "monitoring": {"enabled": True, "alerts": THRESHOLDS},
        "probes": {"startupTimeoutSeconds": 600},
    }
    if autoscaling:
        values["autoscaling"] = {"enabled": True, **autoscaling}
    return plan_serving(parse_stack_config(values))


def _rule(groups: list[dict[str, Any]], alert: str) -> dict[str, Any]:
    (found,) = [rule for group in groups for rule in group["rules"] if rule.get("alert") == alert]
    return found


def _without_annotations(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # promtool test compares annotations too; the templates are checked by `promtool check rules`, the unit
    # tests check expressions, durations and labels.
    stripped = copy.deepcopy(groups)
    for group in stripped:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    return stripped


def test_the_rendered_rule_file_passes_promtool_check(promtool: str, tmp_path: Path) -> None:
    for plan in (_plan(), _plan(minReplicas=0, maxReplicas=3, wakeUpQuery=WAKE_UP)):
        rule_file = tmp_path / "rules.yaml"
        rule_file.write_text(yaml.safe_dump({"groups": prometheus_rule(plan)["spec"]["groups"]}))
        result = run_promtool(promtool, "check", "rules", str(rule_file), cwd=tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "SUCCESS: 8 rules found" in result.stdout


def test_promtool_check_refuses_a_broken_expression(promtool: str, tmp_path: Path) -> None:
    """The check can fail: a rule whose PromQL does not parse is refused."""
    groups = rule_groups(_plan())
    groups[0]["rules"][0]["expr"] = "sum(vllm:num_requests_waiting{namespace=} > 1"
    rule_file = tmp_path / "rules.yaml"
    rule_file.write_text(yaml.safe_dump({"groups": groups}))
    assert run_promtool(promtool, "check", "rules", str(rule_file), cwd=tmp_path).returncode != 0


def _labels(**extra: str) -> str:
    pairs = {"namespace": NAMESPACE, "model_name": MODEL, "pod": f"{NAME}-0", **extra}
    return "{" + ",".join(f'{key}="{value}"' for key, value in pairs.items()) + "}"


def _pod_labels(**extra: str) -> str:
    pairs = {"namespace": NAMESPACE, "app_kubernetes_io_instance": NAME, "pod": f"{NAME}-0", **extra}
    return "{" + ",".join(f'{key}="{value}"' for key, value in pairs.items()) + "}"


# Per alert: the synthetic series (one sample a minute), and when it must be quiet, firing, and resolved again.
SCENARIOS: dict[str, tuple[list[tuple[str, str]], tuple[str, str, str]]] = {
    "VllmQueueBackingUp": (
        [(f"vllm:num_requests_waiting{_labels()}", "0x10 30x20 0x20")],
        ("8m", "25m", "45m"),
    ),
    "VllmKvCacheNearlyFull": (
        [(f"vllm:kv_cache_usage_perc{_labels()}", "0.5x10 0.95x30 0.3x20")],
        ("15m", "35m", "55m"),
    ),
    "VllmTimeToFirstTokenHigh": (
        [
            # Requests first finish their first token within 1 s, then between 1 s and 10 s, then fast again.
            (f"vllm:time_to_first_token_seconds_bucket{_labels(le='1')}", "0+10x10 100+0x30 100+10x30"),
            (f"vllm:time_to_first_token_seconds_bucket{_labels(le='10')}", "0+10x70"),
            (f"vllm:time_to_first_token_seconds_bucket{_labels(le='+Inf')}", "0+10x70"),
        ],
        ("12m", "35m", "60m"),
    ),
    "VllmNoReadyReplica": (
        [(f"up{_pod_labels()}", "1x10 0x20 1x20")],
        ("9m", "25m", "40m"),
    ),
    "VllmPreemptionsRising": (
        [(f"vllm:num_preemptions_total{_labels()}", "0+0x10 0+5x30 150+0x30")],
        ("10m", "35m", "60m"),
    ),
    "VllmRequestErrors": (
        [
            (f"http_requests_total{_pod_labels(status='2xx', handler='/v1/chat/completions')}", "0+100x60"),
            (f"http_requests_total{_pod_labels(status='5xx', handler='/v1/chat/completions')}",
             "0+0x10 0+20x20 400+0x30"),
        ],
        ("9m", "25m", "50m"),
    ),
}


def _alert_test(groups: list[dict[str, Any]], alert: str, series: list[tuple[str, str]],
                times: tuple[str, str, str]) -> dict[str, Any]:
    quiet, firing, resolved = times
    labels = _rule(groups, alert)["labels"]
    return {
        "interval": "1m",
        "input_series": [{"series": name, "values": values} for name, values in series],
        "alert_rule_test": [
            {"eval_time": quiet, "alertname": alert, "exp_alerts": []},
            {"eval_time": firing, "alertname": alert, "exp_alerts": [{"exp_labels": dict(labels)}]},
            {"eval_time": resolved, "alertname": alert, "exp_alerts": []},
        ],
    }


def _write_unit_tests(tmp_path: Path, groups: list[dict[str, Any]], tests: list[dict[str, Any]]) -> Path:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": _without_annotations(groups)}))
    test_file = tmp_path / "rules_test.yaml"
    test_file.write_text(
        yaml.safe_dump({"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests}, sort_keys=False)
    )
    return test_file


def test_every_alert_has_a_firing_and_resolving_scenario() -> None:
    alerts = {rule["alert"] for group in rule_groups(_plan()) for rule in group["rules"] if "alert" in rule}
    assert alerts == set(SCENARIOS)


@pytest.mark.parametrize("alert", sorted(SCENARIOS))
def test_promtool_shows_the_alert_firing_and_resolving(promtool: str, tmp_path: Path, alert: str) -> None:
    groups = rule_groups(_plan())
    series, times = SCENARIOS[alert]
    test_file = _write_unit_tests(tmp_path, groups, [_alert_test(groups, alert, series, times)])
    result = run_promtool(promtool, "test", "rules", str(test_file), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_unit_tests_can_fail(promtool: str, tmp_path: Path) -> None:
    """A scenario that expects the queue alert while nothing waits is reported as a failure."""
    groups = rule_groups(_plan())
    test = _alert_test(groups, "VllmQueueBackingUp", [(f"vllm:num_requests_waiting{_labels()}", "0x60")],
                       ("8m", "25m", "45m"))
    result = run_promtool(promtool, "test", "rules", str(_write_unit_tests(tmp_path, groups, [test])), cwd=tmp_path)
    assert result.returncode != 0
    assert "FAILED" in result.stdout + result.stderr


def test_scaled_to_zero_no_ready_replica_fires_only_while_clients_wait(promtool: str, tmp_path: Path) -> None:
    """At zero replicas there is no ``up`` series at all: idle is quiet; demand without a replica fires after
    the startup budget; a replica that becomes ready resolves it."""
    plan = _plan(minReplicas=0, maxReplicas=3, wakeUpQuery=WAKE_UP)
    groups = rule_groups(plan)
    rule = _rule(groups, "VllmNoReadyReplica")
    budget = int(rule["for"].removesuffix("m"))
    assert budget == 600 // 60 + 5
    router = f'router_requests_total{{model="{MODEL}"}}'
    test = {
        "interval": "1m",
        "input_series": [
            # Idle for 20 minutes, then 60 requests a minute arrive and keep arriving.
            {"series": router, "values": "0x20 0+60x60"},
            # The replica answers only late, after the alert fired.
            {"series": f"up{_pod_labels()}", "values": "_x50 1x30"},
        ],
        "alert_rule_test": [
            {"eval_time": "19m", "alertname": "VllmNoReadyReplica", "exp_alerts": []},
            {"eval_time": f"{20 + budget - 3}m", "alertname": "VllmNoReadyReplica", "exp_alerts": []},
            {"eval_time": f"{20 + budget + 3}m", "alertname": "VllmNoReadyReplica",
             "exp_alerts": [{"exp_labels": dict(rule["labels"])}]},
            {"eval_time": "60m", "alertname": "VllmNoReadyReplica", "exp_alerts": []},
        ],
    }
    result = run_promtool(promtool, "test", "rules", str(_write_unit_tests(tmp_path, groups, [test])), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_recording_rules_compute_tokens_per_second(promtool: str, tmp_path: Path) -> None:
    groups = rule_groups(_plan())
    records = [rule["record"] for group in groups for rule in group["rules"] if "record" in rule]
    per_minute = {"vllm:prompt_tokens_total": 600, "vllm:generation_tokens_total": 120}
    series = []
    expected = []
    for counter, increase in per_minute.items():
        (record,) = [name for name in records if counter.replace(":", "_") in name]
        series.append({"series": f"{counter}{_labels()}", "values": f"0+{increase}x30"})
        # Two pods of the stack add up; a series of another model is left out.
        series.append({"series": f"{counter}{_labels(pod=f'{NAME}-1')}", "values": f"0+{increase}x30"})
        series.append({"series": f"{counter}{_labels(model_name='other')}", "values": "0+6000x30"})
        expected.append({
            "expr": record,
            "eval_time": "20m",
            "exp_samples": [{"labels": f'{record}{{namespace="{NAMESPACE}",model_name="{MODEL}"}}',
                             "value": 2 * increase / 60}],
        })
    test = {"interval": "1m", "input_series": series, "promql_expr_test": expected}
    result = run_promtool(promtool, "test", "rules", str(_write_unit_tests(tmp_path, groups, [test])), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
