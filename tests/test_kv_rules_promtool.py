"""The KV-cache tier and P/D transfer rules: their metric names are vLLM 0.32's, Prometheus's own ``promtool``
parses them, and on synthetic series each alert stays quiet, fires and resolves; the example stack
``Pulumi.disaggregated-pd.yaml`` with monitoring on renders them for its pools.

``promtool`` comes with Debian's ``prometheus`` package. Without it the promtool tests are skipped with the
reason, or fail when ``$CI`` is set.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from promtool import require_promtool, run_promtool
from stacks import stack_file

from pulumi_vllm.cli.render import render_stack
from pulumi_vllm.config import parse_stack_config
from pulumi_vllm.engine import kv_metrics
from pulumi_vllm.engine.metrics import PROMPT_TOKENS, metric_names_in
from pulumi_vllm.kubernetes.operations import rule_groups
from pulumi_vllm.plan import ServingPlan, plan_serving

REPO = Path(__file__).resolve().parents[1]
NAMESPACE, MODEL = "vllm", "llama-3.3-70b-instruct"


@pytest.fixture(scope="module")
def promtool() -> str:
    """The promtool executable; skips (fails under $CI) when it is not installed."""
    return require_promtool()


def _one_pool(values: dict[str, Any]) -> dict[str, Any]:
    """The example's values as one pool of servers (no P/D), each of four GPUs."""
    del values["disaggregation"]
    values["parallelism"] = {"gpusPerNode": 8, "tensorParallelSize": 4}
    values["name"] = "llama"
    return values


def _example_values(**changes: Any) -> dict[str, Any]:
    config = yaml.safe_load(stack_file("disaggregated-pd").read_text())["config"]
    values = {key.split(":", 1)[1]: value for key, value in config.items()}
    values["monitoring"] = {"enabled": True, "alerts": {"kvTierNoHitMinutes": 30}}
    values.update(changes)
    return values


def _pool(role: str, **changes: Any) -> ServingPlan:
    return plan_serving(parse_stack_config(_example_values(**changes)).pools[role])


def _tiered(**kv_cache: Any) -> ServingPlan:
    """One pool of servers (no P/D) with a CPU tier, and whatever else ``kv_cache`` adds."""
    return plan_serving(parse_stack_config(_one_pool(_example_values(kvCache={"cpuGib": 64, **kv_cache}))))


def _alerts(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


# --- the metric names are vLLM 0.32's -------------------------------------------------------------------------

def test_every_name_is_registered_in_vllms_sources() -> None:
    """Each family is registered by name in vLLM's loggers or the NIXL connector's stats, and the ``source``
    values the rules select are vLLM's own."""
    import vllm
    from vllm.v1.metrics.cache_hit_source import CacheHitSource
    from vllm.v1.metrics.stats import PromptTokenStats

    assert vllm.__version__.startswith("0.32")
    root = Path(vllm.__file__).parent
    sources = (root / "v1/metrics/loggers.py").read_text()
    sources += (root / "distributed/kv_transfer/kv_connector/v1/nixl/stats.py").read_text()
    registered = set(re.findall(r'name="(vllm:[a-z_]+)"', sources))
    for metric in (*kv_metrics.KV_METRICS, *kv_metrics.NIXL_METRICS, PROMPT_TOKENS):
        assert metric.name in registered, metric.name
        assert metric.kind == "counter"
    assert set(kv_metrics.TIER_SOURCES) <= {source.value for source in CacheHitSource}
    assert kv_metrics.LOCAL_COMPUTE in PromptTokenStats.ALL_SOURCES


# --- which stacks get which rules -----------------------------------------------------------------------------

def test_the_example_with_monitoring_renders_the_rules_for_its_pools(promtool: str, tmp_path: Path) -> None:
    rendered = render_stack(REPO, "disaggregated-pd", overrides={"monitoring.enabled": "true"})
    rules = {
        doc["metadata"]["name"]: doc["spec"]["groups"]
        for _, doc in rendered.documents
        if isinstance(doc, dict) and doc.get("kind") == "PrometheusRule"
    }
    assert set(rules) == {"llama-pd-prefill", "llama-pd-decode"}
    alerts = {name: {rule["alert"] for rule in _alerts(groups)} for name, groups in rules.items()}
    kv_alerts = {"VllmKvTierNoHits", "VllmDecodeRecomputingPrompts", "VllmKvTransferFailures"}
    assert alerts["llama-pd-prefill"] & kv_alerts == {"VllmKvTierNoHits", "VllmKvTransferFailures"}
    assert alerts["llama-pd-decode"] & kv_alerts == {"VllmDecodeRecomputingPrompts", "VllmKvTransferFailures"}
    (tier,) = [rule for rule in _alerts(rules["llama-pd-prefill"]) if rule["alert"] == "VllmKvTierNoHits"]
    assert tier["labels"]["tier"] == "host" and tier["labels"]["pool"] == "prefill"
    assert '[60m]' in tier["expr"]  # monitoring.alerts.kvTierNoHitMinutes' default
    for name, groups in rules.items():
        # Each pool's rules select its own pods: both pools serve the same model name.
        assert f'app_kubernetes_io_instance="{name}"' in yaml.safe_dump(groups)
        rule_file = tmp_path / f"{name}.yaml"
        rule_file.write_text(yaml.safe_dump({"groups": groups}))
        result = run_promtool(promtool, "check", "rules", str(rule_file), cwd=tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr


def test_only_stacks_with_a_tier_or_pools_get_them() -> None:
    values = _one_pool(_example_values())
    del values["kvCache"]
    plain = rule_groups(plan_serving(parse_stack_config(values)))
    assert not [group for group in plain if ".kv-cache" in group["name"]]
    assert metric_names_in(yaml.safe_dump(plain)).isdisjoint(
        {metric.series for metric in (*kv_metrics.KV_METRICS, *kv_metrics.NIXL_METRICS)}
    )
    # LMCache P/D: no NIXL counters; LMCache as the tier: its hits are counted as external_unspecified.
    lmcache = {"connector": "lmcache", "prefill": {"tensorParallelSize": 2}, "decode": {"tensorParallelSize": 4}}
    for role in ("prefill", "decode"):
        pool_alerts = {rule["alert"] for rule in _alerts(rule_groups(_pool(role, disaggregation=lmcache)))}
        assert "VllmKvTransferFailures" not in pool_alerts
    (lm_tier,) = [rule for rule in _alerts(rule_groups(_tiered(backend="lmcache"))) if rule["alert"] == "VllmKvTierNoHits"]
    assert lm_tier["labels"]["tier"] == "external_unspecified" and "pool" not in lm_tier["labels"]
    disk = {rule["labels"].get("tier") for rule in _alerts(rule_groups(_tiered(disk={"sizeGib": 500})))}
    assert {"host", "disk"} <= disk


def test_thresholds_come_from_the_config() -> None:
    alerts = {"kvTierNoHitMinutes": 120, "decodeRecomputePercent": 25, "kvTransferFailuresPerMinute": 3}
    monitoring = {"enabled": True, "alerts": alerts}
    decode = {rule["alert"]: rule for rule in _alerts(rule_groups(_pool("decode", monitoring=monitoring)))}
    prefill = {rule["alert"]: rule for rule in _alerts(rule_groups(_pool("prefill", monitoring=monitoring)))}
    assert decode["VllmDecodeRecomputingPrompts"]["expr"].endswith("* 100 > 25")
    assert decode["VllmKvTransferFailures"]["expr"].endswith(") * 60 > 3")
    assert "[120m]" in prefill["VllmKvTierNoHits"]["expr"]


# --- promtool unit tests: quiet, firing, resolved -------------------------------------------------------------

def _series(name: str, instance: str, **extra: str) -> str:
    pairs = {"namespace": NAMESPACE, "model_name": MODEL, "app_kubernetes_io_instance": instance,
             "pod": f"{instance}-0", **extra}
    return name + "{" + ",".join(f'{key}="{value}"' for key, value in pairs.items()) + "}"


def _write(tmp_path: Path, groups: list[dict[str, Any]], tests: list[dict[str, Any]]) -> Path:
    stripped = copy.deepcopy(groups)  # annotations are checked by `promtool check rules`
    for group in stripped:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": stripped}))
    test_file = tmp_path / "rules_test.yaml"
    test_file.write_text(
        yaml.safe_dump({"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests}, sort_keys=False)
    )
    return test_file


def _promtool_test(promtool: str, tmp_path: Path, groups: list[dict[str, Any]], test: dict[str, Any]) -> str:
    result = run_promtool(promtool, "test", "rules", str(_write(tmp_path, groups, [test])), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _labels(groups: list[dict[str, Any]], alert: str, **match: str) -> dict[str, str]:
    (rule,) = [rule for rule in _alerts(groups) if rule["alert"] == alert
               and all(rule["labels"].get(key) == value for key, value in match.items())]
    return dict(rule["labels"])


def _quiet_firing_resolved(alert: str, series: list[tuple[str, str]], times: tuple[str, str, str],
                           labels: list[dict[str, str]]) -> dict[str, Any]:
    quiet, firing, resolved = times
    return {
        "interval": "1m",
        "input_series": [{"series": name, "values": values} for name, values in series],
        "alert_rule_test": [
            {"eval_time": quiet, "alertname": alert, "exp_alerts": []},
            {"eval_time": firing, "alertname": alert, "exp_alerts": [{"exp_labels": item} for item in labels]},
            {"eval_time": resolved, "alertname": alert, "exp_alerts": []},
        ],
    }


CACHED = "vllm:prompt_tokens_cached_by_source_total"
QUERIES = "vllm:external_prefix_cache_queries_total"


def test_a_tier_that_stops_hitting_fires_and_resolves_when_it_hits_again(promtool: str, tmp_path: Path) -> None:
    """The prefill pool's CPU tier hits for 40 minutes, then supplies nothing for an hour while the connector is
    still asked (window 30m, for 10m), then hits again."""
    plan = _pool("prefill")
    groups = rule_groups(plan)
    pool = plan.config.name
    series = [
        (_series(QUERIES, pool), "0+100x160"),
        (_series(CACHED, pool, source="host"), "0+50x40 2000+0x60 2000+50x60"),
        # The decode pool's tier never hitting is normal there and is not this pool's.
        (_series(CACHED, "llama-pd-decode", source="host"), "0x160"),
        (_series(QUERIES, "llama-pd-decode"), "0+100x160"),
    ]
    labels = _labels(groups, "VllmKvTierNoHits", tier="host")
    _promtool_test(promtool, tmp_path, groups,
                   _quiet_firing_resolved("VllmKvTierNoHits", series, ("60m", "85m", "115m"), [labels]))


def test_an_idle_tier_is_quiet(promtool: str, tmp_path: Path) -> None:
    """No prompt asked the connector for anything: no hit is expected, and nothing fires."""
    plan = _pool("prefill")
    groups = rule_groups(plan)
    pool = plan.config.name
    test = {
        "interval": "1m",
        "input_series": [{"series": _series(QUERIES, pool), "values": "0x120"},
                         {"series": _series(CACHED, pool, source="host"), "values": "0x120"}],
        "alert_rule_test": [{"eval_time": "110m", "alertname": "VllmKvTierNoHits", "exp_alerts": []}],
    }
    _promtool_test(promtool, tmp_path, groups, test)


def test_each_tier_alerts_on_its_own(promtool: str, tmp_path: Path) -> None:
    """The CPU tier hits all along and the disk tier never does: only the disk tier's alert fires."""
    plan = _tiered(disk={"sizeGib": 500})
    groups = rule_groups(plan)
    name = plan.config.name
    series = [
        (_series(QUERIES, name), "0x20 0+100x100"),
        (_series(CACHED, name, source="host"), "0x20 0+50x100"),
        (_series(CACHED, name, source="disk"), "0x120"),
    ]
    labels = _labels(groups, "VllmKvTierNoHits", tier="disk")
    test = _quiet_firing_resolved("VllmKvTierNoHits", series, ("15m", "70m", "70m"), [labels])
    test["alert_rule_test"].pop()  # the disk tier stays unused
    _promtool_test(promtool, tmp_path, groups, test)


def test_decode_servers_computing_prompts_fire_and_resolve(promtool: str, tmp_path: Path) -> None:
    """The decode pool computes 1% of its prompt tokens, then half (its KV stops arriving), then 1% again; the
    prefill pool, which computes everything, is not counted."""
    plan = _pool("decode")
    groups = rule_groups(plan)
    pool = plan.config.name
    series = [
        (_series("vllm:prompt_tokens_total", pool), "0+1000x60"),
        (_series("vllm:prompt_tokens_by_source_total", pool, source="local_compute"), "0+10x10 100+500x20 10100+10x30"),
        (_series("vllm:prompt_tokens_total", "llama-pd-prefill"), "0+1000x60"),
        (_series("vllm:prompt_tokens_by_source_total", "llama-pd-prefill", source="local_compute"), "0+1000x60"),
    ]
    labels = _labels(groups, "VllmDecodeRecomputingPrompts")
    _promtool_test(promtool, tmp_path, groups,
                   _quiet_firing_resolved("VllmDecodeRecomputingPrompts", series, ("12m", "27m", "50m"), [labels]))


def test_failed_nixl_transfers_fire_and_resolve(promtool: str, tmp_path: Path) -> None:
    plan = _pool("decode")
    groups = rule_groups(plan)
    pool = plan.config.name
    series = [
        (_series("vllm:nixl_num_failed_transfers_total", pool), "0x10 0+3x20 60+0x30"),
        (_series("vllm:nixl_num_kv_expired_reqs_total", pool), "0x60"),
    ]
    labels = _labels(groups, "VllmKvTransferFailures")
    _promtool_test(promtool, tmp_path, groups,
                   _quiet_firing_resolved("VllmKvTransferFailures", series, ("9m", "25m", "50m"), [labels]))


def test_expired_kv_on_the_prefill_pool_fires(promtool: str, tmp_path: Path) -> None:
    plan = _pool("prefill")
    groups = rule_groups(plan)
    pool = plan.config.name
    series = [
        (_series("vllm:nixl_num_failed_transfers_total", pool), "0x60"),
        (_series("vllm:nixl_num_kv_expired_reqs_total", pool), "0x10 0+2x20 40+0x30"),
    ]
    labels = _labels(groups, "VllmKvTransferFailures")
    _promtool_test(promtool, tmp_path, groups,
                   _quiet_firing_resolved("VllmKvTransferFailures", series, ("9m", "25m", "50m"), [labels]))


def test_a_wrong_expectation_fails(promtool: str, tmp_path: Path) -> None:
    """The unit tests can fail: expecting the recompute alert while the decode pool receives its KV."""
    plan = _pool("decode")
    groups = rule_groups(plan)
    pool = plan.config.name
    series = [(_series("vllm:prompt_tokens_total", pool), "0+1000x60"),
              (_series("vllm:prompt_tokens_by_source_total", pool, source="local_compute"), "0+10x60")]
    test = _quiet_firing_resolved("VllmDecodeRecomputingPrompts", series, ("12m", "27m", "50m"),
                                  [_labels(groups, "VllmDecodeRecomputingPrompts")])
    result = run_promtool(promtool, "test", "rules", str(_write(tmp_path, groups, [test])), cwd=tmp_path)
    assert result.returncode != 0
    assert "FAILED" in result.stdout + result.stderr


def test_recording_rules_show_each_tiers_hits_and_the_connectors_hit_ratio(promtool: str, tmp_path: Path) -> None:
    plan = _pool("prefill")
    groups = rule_groups(plan)
    pool = plan.config.name
    records = {rule["record"]: rule for group in groups for rule in group["rules"] if "record" in rule}
    (by_source,) = [name for name in records if "cached_by_source" in name]
    (ratio,) = [name for name in records if "hits:ratio" in name]
    base = f'namespace="{NAMESPACE}",model_name="{MODEL}",app_kubernetes_io_instance="{pool}"'
    series = [
        {"series": _series(CACHED, pool, source="device"), "values": "0+600x30"},
        {"series": _series(CACHED, pool, source="host"), "values": "0+300x30"},
        {"series": _series(CACHED, pool, source="host", pod=f"{pool}-1"), "values": "0+300x30"},
        {"series": _series(QUERIES, pool), "values": "0+2400x30"},
        {"series": _series("vllm:external_prefix_cache_hits_total", pool), "values": "0+600x30"},
        # The other pool's series are not this pool's.
        {"series": _series(CACHED, "llama-pd-decode", source="host"), "values": "0+6000x30"},
    ]
    test = {
        "interval": "1m",
        "input_series": series,
        "promql_expr_test": [
            {"expr": by_source, "eval_time": "20m", "exp_samples": [
                {"labels": f'{by_source}{{{base},source="device"}}', "value": 10},
                {"labels": f'{by_source}{{{base},source="host"}}', "value": 10},
            ]},
            {"expr": ratio, "eval_time": "20m", "exp_samples": [{"labels": f"{ratio}{{{base}}}", "value": 0.25}]},
        ],
    }
    _promtool_test(promtool, tmp_path, groups, test)
