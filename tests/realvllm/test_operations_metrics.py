"""The metric names behind autoscaling, alerts and the dashboard are real: a real vLLM server of the pinned
release, started from the rendered Deployment of the tiny stack, exposes every one of them on ``/metrics``
after one request. The names it exposed are recorded (printed under "observed timings")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pulumi_vllm.cli.render import RenderedStack, render_config
from pulumi_vllm.engine import metrics
from pulumi_vllm.kubernetes.operations import dashboard_config_map, prometheus_rule, scaled_object
from pulumi_vllm.plan import plan_serving

from .conftest import API_KEY, TINY_SERVED_NAME
from .kubelet import local_container
from .server import free_port, start_vllm_server

pytestmark = pytest.mark.realvllm


def _exposed_names(text: str) -> set[str]:
    return {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}


def test_every_metric_name_used_is_on_the_real_servers_metrics(
    rendered_tiny: RenderedStack,
    tiny_values: dict[str, Any],
    vllm_env: dict[str, str],
    tmp_path: Path,
    observe: Any,
) -> None:
    container = local_container(rendered_tiny, "Deployment", tmp_path / "volumes", port=free_port())
    with start_vllm_server(
        container.argv, {**vllm_env, **container.env}, int(container.option("--port")),
        probe_path=container.probe_paths["startupProbe"],
    ) as server:
        body = {"model": TINY_SERVED_NAME, "messages": [{"role": "user", "content": "Hello!"}], "max_tokens": 8}
        answer = server.request(
            "/v1/chat/completions", method="POST", body=body, headers={"Authorization": f"Bearer {API_KEY}"}
        )
        assert answer.status == 200, answer.text
        # /metrics is outside vLLM's API-key guard (/v1...), so Prometheus scrapes it without the key.
        scraped = server.request("/metrics")
    assert scraped.status == 200
    exposed = _exposed_names(scraped.text)
    vllm_names = sorted(name for name in exposed if name.startswith("vllm:"))
    observe(f"real vLLM /metrics exposed {len(vllm_names)} vllm: sample names: {', '.join(vllm_names)}")

    missing = {name for metric in metrics.METRICS for name in metric.exposed_names() if name not in exposed}
    assert missing == set(), f"not exposed by the real server: {sorted(missing)}"

    # Everything rendered for an operated tiny stack selects only names the server exposed.
    operated = {
        **tiny_values,
        "batch": {"enabled": False},
        "cache": {"accessMode": "ReadWriteMany"},
        "autoscaling": {"enabled": True, "maxReplicas": 2, "kvCacheUsagePercent": 80},
        "monitoring": {"enabled": True},
    }
    plan = plan_serving(render_config(operated).config)  # type: ignore[arg-type]
    text = json.dumps([scaled_object(plan), prometheus_rule(plan), dashboard_config_map(plan)])
    used = metrics.metric_names_in(text)
    assert used and used <= {name for name in exposed} | {metric.name for metric in metrics.METRICS}
    assert {metric.series for metric in metrics.METRICS} <= exposed
    # vLLM labels its series with the served model name, which the stack's selectors use.
    families = {family.name: family for family in text_string_to_metric_families(scraped.text)}
    (waiting,) = families[metrics.WAITING.name].samples
    assert waiting.labels["model_name"] == TINY_SERVED_NAME
