"""Autoscaling and monitoring resources: schema-valid custom resources, created only when enabled, the
ScaledObject on the right workload, replicas left to KEDA, and the refusals made before anything exists."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from conftest import RecordingMocks
from schemas import validate_object

from pulumi_vllm.cli.render import render_config, render_stack
from pulumi_vllm.config import ConfigError, parse_stack_config
from pulumi_vllm.engine import metrics
from pulumi_vllm.kubernetes.operations import (
    dashboard_config_map,
    pod_monitor,
    prometheus_rule,
    scaled_object,
    service_monitor,
)
from pulumi_vllm.kubernetes.serving import VllmServing
from pulumi_vllm.plan import ServingPlan, plan_serving

REPO = Path(__file__).resolve().parents[1]
QWEN = {"id": "Qwen/Qwen2.5-7B-Instruct", "servedModelName": "qwen"}
ON = {"autoscaling": {"enabled": True, "maxReplicas": 3}, "monitoring": {"enabled": True},
      "cache": {"accessMode": "ReadWriteMany"}}
LWS = {
    "name": "big",
    "model": {"id": "meta-llama/Llama-3.1-405B-Instruct-FP8"},
    "parallelism": {"tensorParallelSize": 8, "pipelineParallelSize": 2, "gpusPerNode": 8,
                    "backend": "leaderworkerset"},
    **ON,
}


def _values(**extra: Any) -> dict[str, Any]:
    return {"name": "qwen", "namespace": "llm", "model": QWEN, **extra}


def _plan(values: dict[str, Any]) -> ServingPlan:
    return plan_serving(parse_stack_config(values))


def _manifests(values: dict[str, Any]) -> list[dict[str, Any]]:
    rendered = render_config(values)
    return [doc for name, doc in rendered.documents if name.endswith(".yaml") and isinstance(doc, dict) and "kind" in doc]


# --- schemas -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [
        _values(**ON),
        _values(**{**ON, "monitoring": {"enabled": True, "monitor": "serviceMonitor"}}),
        _values(**{**ON, "autoscaling": {"enabled": True, "minReplicas": 0, "maxReplicas": 2,
                                         "kvCacheUsagePercent": 80, "wakeUpQuery": "sum(rate(x_total[2m]))"}}),
        LWS,
    ],
    ids=["podmonitor", "servicemonitor", "scale-to-zero", "leaderworkerset"],
)
def test_every_rendered_object_is_valid_against_its_crd_or_kubernetes(values: dict[str, Any]) -> None:
    manifests = _manifests(values)
    kinds = {doc["kind"] for doc in manifests}
    assert {"ScaledObject", "PrometheusRule", "ConfigMap"} <= kinds
    assert kinds & {"PodMonitor", "ServiceMonitor"}
    for manifest in manifests:
        validate_object(manifest)


def test_the_crd_check_can_fail() -> None:
    broken = scaled_object(_plan(_values(**ON)))
    broken["spec"]["minReplicas"] = 1  # KEDA's field is minReplicaCount
    with pytest.raises(Exception, match="minReplicas"):
        validate_object(broken)
    monitor = pod_monitor(_plan(_values(**ON)))
    monitor["spec"]["podMetricsEndpoints"][0]["targetPort"] = {"bad": 1}
    with pytest.raises(Exception):  # noqa: B017 - any schema error
        validate_object(monitor)


# --- what the builders say ----------------------------------------------------------------------


def test_scaled_object_targets_the_deployment_or_the_leaderworkerset() -> None:
    single = scaled_object(_plan(_values(**ON)))["spec"]
    assert single["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "qwen"}
    assert (single["minReplicaCount"], single["maxReplicaCount"]) == (1, 3)
    group = scaled_object(_plan(LWS))["spec"]
    assert group["scaleTargetRef"]["kind"] == "LeaderWorkerSet"
    # The name of the LeaderWorkerSet the multi-node component renders.
    lws = [doc for doc in _manifests(LWS) if doc["kind"] == "LeaderWorkerSet"]
    assert [doc["metadata"]["name"] for doc in lws] == [group["scaleTargetRef"]["name"]]


def test_triggers_query_vllms_queue_and_kv_cache_of_this_model() -> None:
    plan = _plan(_values(**{**ON, "autoscaling": {"enabled": True, "maxReplicas": 3, "kvCacheUsagePercent": 75,
                                                  "waitingRequestsPerReplica": 6}}))
    triggers = scaled_object(plan)["spec"]["triggers"]
    assert [trigger["name"] for trigger in triggers] == ["waiting-requests", "kv-cache-usage"]
    waiting, kv = triggers
    assert metrics.WAITING.name in waiting["metadata"]["query"] and waiting["metadata"]["threshold"] == "6"
    assert metrics.KV_CACHE.name in kv["metadata"]["query"] and kv["metadata"]["threshold"] == "75"
    for trigger in triggers:
        assert 'namespace="llm"' in trigger["metadata"]["query"] and 'model_name="qwen"' in trigger["metadata"]["query"]
        assert trigger["metadata"]["serverAddress"] == "http://kube-prometheus-stack-prometheus.monitoring.svc:9090"


def test_monitors_select_the_serving_pods_and_ray_heads_not_workers_or_the_batch_job() -> None:
    plan = _plan(LWS)
    selector = pod_monitor(plan)["spec"]["selector"]
    rendered = _manifests(LWS)
    (group,) = [doc for doc in rendered if doc["kind"] == "LeaderWorkerSet"]
    templates = group["spec"]["leaderWorkerTemplate"]

    def selected(labels: dict[str, str], selector: dict[str, Any] = selector) -> bool:
        (expression,) = selector["matchExpressions"]
        return all(labels.get(k) == v for k, v in selector["matchLabels"].items()) and labels.get(
            expression["key"]
        ) in expression["values"]

    assert selected(templates["leaderTemplate"]["metadata"]["labels"])
    assert not selected(templates["workerTemplate"]["metadata"]["labels"])
    single = _manifests(_values(**ON))
    (deployment,) = [doc for doc in single if doc["kind"] == "Deployment"]
    single_selector = pod_monitor(_plan(_values(**ON)))["spec"]["selector"]
    assert selected(deployment["spec"]["template"]["metadata"]["labels"], single_selector)
    assert not selected(deployment["spec"]["template"]["metadata"]["labels"])  # another stack's monitor
    # The ServiceMonitor selects the client Service by its labels and scrapes its named port.
    (service,) = [doc for doc in single if doc["kind"] == "Service"]
    monitor = service_monitor(_plan(_values(**ON)))["spec"]
    assert monitor["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["endpoints"][0]["port"] in {port["name"] for port in service["spec"]["ports"]}
    assert pod_monitor(plan)["spec"]["podMetricsEndpoints"][0]["port"] in {
        port["name"] for port in templates["leaderTemplate"]["spec"]["containers"][0]["ports"]
    }


def test_rules_and_monitor_carry_the_labels_prometheus_selects() -> None:
    plan = _plan(_values(**ON))
    assert pod_monitor(plan)["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert prometheus_rule(plan)["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    custom = _plan(_values(**{**ON, "monitoring": {"enabled": True, "labels": {"prometheus": "team-a"}}}))
    assert prometheus_rule(custom)["metadata"]["labels"]["prometheus"] == "team-a"
    assert "release" not in prometheus_rule(custom)["metadata"]["labels"]


def test_the_dashboard_is_built_from_the_metric_list_and_labelled_for_the_sidecar() -> None:
    config_map = dashboard_config_map(_plan(_values(**ON)))
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    (board_text,) = config_map["data"].values()
    board = json.loads(board_text)
    assert [panel["title"] for panel in board["panels"]] == [metric.name for metric in metrics.METRICS]
    for panel, metric in zip(board["panels"], metrics.METRICS, strict=True):
        assert all(metric.series in target["expr"] for target in panel["targets"])


def test_every_name_in_every_expression_is_in_the_metric_list() -> None:
    known = {metric.name for metric in metrics.METRICS}
    series = {metric.series for metric in metrics.METRICS}
    plan = _plan(_values(**{**ON, "autoscaling": {"enabled": True, "maxReplicas": 3, "kvCacheUsagePercent": 70}}))
    text = json.dumps([scaled_object(plan), prometheus_rule(plan), dashboard_config_map(plan)])
    used = metrics.metric_names_in(text)
    assert used, "no vllm: names found"
    assert used <= known | series
    # Queries select samples: counters by their _total, histograms by their _bucket series.
    queries = metrics.metric_names_in(json.dumps([scaled_object(plan)["spec"]["triggers"], prometheus_rule(plan)]))
    assert queries <= {metric.series for metric in metrics.METRICS}
    # The removed names of older releases appear nowhere.
    assert not used & {"vllm:gpu_cache_usage_perc", "vllm:time_per_output_token_seconds"}


# --- Pulumi mocks: what is created ----------------------------------------------------------------


def _types(mocks: RecordingMocks) -> list[str]:
    return sorted(item.typ for item in mocks.resources)


def _register(values: dict[str, Any]) -> None:
    """Run the serving component to the end under the mocks installed by the ``mocks`` fixture."""

    @pulumi.runtime.test
    def run() -> Any:
        return VllmServing(values["name"], {"config": values}).base_url

    run()  # returns once every registration has been answered


def test_nothing_is_created_when_both_are_off(mocks: RecordingMocks) -> None:
    _register(_values())
    assert mocks.of_type("kubernetes:apps/v1:Deployment")
    assert not [t for t in _types(mocks) if "keda" in t or "monitoring" in t or t.endswith("ConfigMap")]
    assert "pulumi-vllm:index:VllmOperations" not in _types(mocks)


def test_autoscaling_alone_creates_only_the_scaled_object(mocks: RecordingMocks) -> None:
    _register(_values(**{**ON, "monitoring": {"enabled": False}}))
    scaled = mocks.one("kubernetes:keda.sh/v1alpha1:ScaledObject")
    assert scaled.inputs["spec"]["scaleTargetRef"]["kind"] == "Deployment"
    deployment = mocks.one("kubernetes:apps/v1:Deployment")
    assert scaled.inputs["spec"]["scaleTargetRef"]["name"] == deployment.inputs["metadata"]["name"]
    assert scaled.inputs["metadata"]["namespace"] == deployment.inputs["metadata"]["namespace"]
    assert not [t for t in _types(mocks) if "monitoring.coreos.com" in t or t.endswith("ConfigMap")]


def test_monitoring_alone_creates_monitor_rules_and_dashboard(mocks: RecordingMocks) -> None:
    _register(_values(monitoring={"enabled": True, "grafanaDashboard": True}))
    mocks.one("kubernetes:monitoring.coreos.com/v1:PodMonitor")
    rule = mocks.one("kubernetes:monitoring.coreos.com/v1:PrometheusRule")
    assert {r.get("alert") for g in rule.inputs["spec"]["groups"] for r in g["rules"]} >= {"VllmNoReadyReplica"}
    assert mocks.one("kubernetes:core/v1:ConfigMap").inputs["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert not mocks.of_type("kubernetes:keda.sh/v1alpha1:ScaledObject")


def test_the_dashboard_can_be_left_out(mocks: RecordingMocks) -> None:
    _register(_values(monitoring={"enabled": True, "grafanaDashboard": False, "monitor": "serviceMonitor"}))
    mocks.one("kubernetes:monitoring.coreos.com/v1:ServiceMonitor")
    assert not mocks.of_type("kubernetes:core/v1:ConfigMap")


def test_the_lws_group_is_scaled_through_its_scale_subresource(mocks: RecordingMocks) -> None:
    _register(LWS)
    scaled = mocks.one("kubernetes:keda.sh/v1alpha1:ScaledObject")
    group = mocks.one("kubernetes:leaderworkerset.x-k8s.io/v1:LeaderWorkerSet")
    target = scaled.inputs["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("LeaderWorkerSet", group.inputs["metadata"]["name"])


def _ignored_changes(values: dict[str, Any]) -> dict[str, list[str]]:
    """Each registered resource's ``ignoreChanges``, as the engine would receive them."""
    from pulumi.runtime import mocks as pulumi_mocks

    seen: dict[str, list[str]] = {}

    class Monitor(pulumi_mocks.MockMonitor):
        def RegisterResource(self, request: Any) -> Any:
            seen[request.type] = list(request.ignoreChanges)
            return super().RegisterResource(request)

    recorder = RecordingMocks()
    pulumi.runtime.set_mocks(recorder, project="pulumi-vllm", stack="test", preview=False, monitor=Monitor(recorder))

    _register(values)
    return seen


@pytest.mark.parametrize("values", [_values(**ON), LWS], ids=["deployment", "leaderworkerset"])
def test_replicas_are_left_to_keda_when_autoscaling(values: dict[str, Any]) -> None:
    ignored = _ignored_changes(values)
    workload = [typ for typ in ignored if typ.endswith((":Deployment", ":LeaderWorkerSet"))]
    assert workload and all(ignored[typ] == ["spec.replicas"] for typ in workload)
    assert not any(ignored[typ] for typ in ignored if typ not in workload)


def test_replicas_stay_pulumis_without_autoscaling() -> None:
    ignored = _ignored_changes(_values(cache={"accessMode": "ReadWriteMany"}, replicas=2))
    assert ignored["kubernetes:apps/v1:Deployment"] == []


# --- refusals ----------------------------------------------------------------------------------


def _refused(values: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as error:
        VllmServing(values.get("name", "qwen"), {"config": values})
    return str(error.value)


def test_more_replicas_than_the_gpu_quota_is_refused_before_anything_is_created(mocks: RecordingMocks) -> None:
    message = _refused(_values(**{**ON, "autoscaling": {"enabled": True, "maxReplicas": 5},
                                  "quota": {"enabled": True, "gpus": 4}}))
    assert message.startswith("invalid stack configuration:\n  pulumi-vllm:autoscaling.maxReplicas: 5 is not accepted")
    assert "5 GPU(s)" in message and "quota of 4" in message and "exceeded quota" in message
    assert mocks.resources == []
    # At the quota it is accepted.
    parse_stack_config(_values(**{**ON, "autoscaling": {"enabled": True, "maxReplicas": 4},
                                  "quota": {"enabled": True, "gpus": 4}}))


def test_the_default_quota_counts_what_the_stack_requests_at_its_replicas() -> None:
    with pytest.raises(ConfigError, match="quota of 1 "):
        parse_stack_config(_values(**{**ON, "quota": {"enabled": True}}))
    # Tensor parallel 2 with the batch Job: 3 x 2 + 2 GPUs at the maximum.
    with pytest.raises(ConfigError, match=r"8 GPU\(s\) \(3 replica\(s\) x 2 GPU\(s\) \+ the batch Job's 2\)"):
        parse_stack_config(_values(**{**ON, "parallelism": {"tensorParallelSize": 2}, "batch": {"enabled": True, "inputPath": "/data/in.jsonl"},
                                      "quota": {"enabled": True, "gpus": 7}}))


def test_several_replicas_on_a_readwriteonce_cache_are_refused(mocks: RecordingMocks) -> None:
    message = _refused(_values(autoscaling={"enabled": True, "maxReplicas": 2}))
    assert "pulumi-vllm:autoscaling.maxReplicas: 2 is not accepted" in message
    assert "ReadWriteOnce" in message and "ReadWriteMany" in message
    assert mocks.resources == []
    # One replica at most (scale to zero and back) is fine on a ReadWriteOnce cache, and so is an existing claim.
    plan = _plan(_values(autoscaling={"enabled": True, "minReplicas": 0, "maxReplicas": 1, "wakeUpQuery": "vector(1)"}))
    assert scaled_object(plan)["spec"]["maxReplicaCount"] == 1
    parse_stack_config(_values(autoscaling={"enabled": True, "maxReplicas": 3}, cache={"existingClaim": "shared"}))


def test_min_above_max_and_zero_without_a_wake_up_signal_are_refused_in_config() -> None:
    with pytest.raises(ConfigError, match=r"pulumi-vllm:autoscaling\.minReplicas: 3 is not accepted: it is above "
                                          r"autoscaling\.maxReplicas \(2\)"):
        parse_stack_config(_values(autoscaling={"enabled": True, "minReplicas": 3, "maxReplicas": 2}))
    with pytest.raises(ConfigError, match=r"minReplicas: 0 is not accepted without autoscaling\.wakeUpQuery"):
        parse_stack_config(_values(autoscaling={"enabled": True, "minReplicas": 0}))
    with pytest.raises(ConfigError, match=r"pulumi-vllm:monitoring\.monitor: 'probe' is not accepted"):
        parse_stack_config(_values(monitoring={"monitor": "probe"}))
    with pytest.raises(ConfigError, match=r"pulumi-vllm:autoscaling\.kvCacheUsagePercent: 150"):
        parse_stack_config(_values(autoscaling={"kvCacheUsagePercent": 150}))


@pulumi.runtime.test
def test_a_plain_multi_node_model_is_not_autoscaled(mocks: RecordingMocks) -> None:
    message = _refused({**LWS, "parallelism": {**LWS["parallelism"], "backend": "plain"},
                        "autoscaling": {"enabled": True, "maxReplicas": 1}})
    assert message.startswith("pulumi-vllm:autoscaling.enabled: true is not accepted for a multi-node model")
    assert mocks.resources == []


def test_the_render_refuses_with_exit_code_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pulumi_vllm.cli import main

    (tmp_path / "Pulumi.yaml").write_text((REPO / "Pulumi.yaml").read_text())
    (tmp_path / "__main__.py").write_text((REPO / "__main__.py").read_text())
    config = {f"pulumi-vllm:{key}": value for key, value in _values(autoscaling={"enabled": True, "maxReplicas": 2}).items()}
    (tmp_path / "Pulumi.t.yaml").write_text(yaml.safe_dump({"config": config}))
    code = main(["render", "--project", str(tmp_path), "--stack", "t", "--out", str(tmp_path / "out")])
    assert code == 2
    assert "pulumi-vllm:autoscaling.maxReplicas: 2 is not accepted" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_example_stack_renders_autoscaling_and_monitoring() -> None:
    rendered = render_stack(REPO, "ops-autoscaling", env={})
    kinds = sorted(doc["kind"] for name, doc in rendered.documents if name.endswith(".yaml") and "kind" in doc)
    assert {"ScaledObject", "PodMonitor", "PrometheusRule", "ConfigMap", "Deployment"} <= set(kinds)
