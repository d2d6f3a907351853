"""vLLM's Prometheus metrics and everything built on them: PromQL, alert and recording rules, the Grafana
dashboard and the KEDA triggers (plain data, no Pulumi).

:data:`METRICS` is the one list of metric names used anywhere in the project; every expression here is
written from it, so a name that vLLM renames is changed in one place (and a test checks each name against
the ``/metrics`` output of a real server of the pinned release). Names are vLLM 0.32's: the older
``vllm:gpu_cache_usage_perc`` and ``vllm:time_per_output_token_seconds`` are gone, and dashboards written
for them show no data.

Series are selected per stack: vLLM's own series by the pod's ``namespace`` (added at scrape time) and
vLLM's ``model_name`` label (the served model name); the HTTP server's series and ``up``, which carry no
model name, by the ``app_kubernetes_io_instance`` label the monitor copies from the pods.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

MetricKind = Literal["gauge", "counter", "histogram"]


@dataclass(frozen=True)
class Metric:
    """One metric of vLLM's ``/metrics``."""

    name: str
    """The metric family name as vLLM registers it (counters without ``_total``)."""
    kind: MetricKind
    meaning: str
    """What the number says, in an operator's words."""
    unit: str = ""
    """Grafana unit of the dashboard panel (``s``, ``percentunit``, ``short``, ...)."""

    @property
    def series(self) -> str:
        """The sample name PromQL selects: ``<name>_total`` for a counter, ``<name>_bucket`` for a histogram."""
        return {"counter": f"{self.name}_total", "histogram": f"{self.name}_bucket"}.get(self.kind, self.name)

    def exposed_names(self) -> tuple[str, ...]:
        """Every sample name the family appears under in the text exposition format."""
        if self.kind == "counter":
            return (f"{self.name}_total",)
        if self.kind == "histogram":
            return (f"{self.name}_bucket", f"{self.name}_sum", f"{self.name}_count")
        return (self.name,)


WAITING = Metric("vllm:num_requests_waiting", "gauge", "Requests queued in the engine, not yet scheduled.", "short")
RUNNING = Metric("vllm:num_requests_running", "gauge", "Requests in the running batch (prefill or decode).", "short")
KV_CACHE = Metric(
    "vllm:kv_cache_usage_perc", "gauge", "Fraction of the KV-cache blocks in use (1 = full).", "percentunit"
)
TTFT = Metric(
    "vllm:time_to_first_token_seconds", "histogram", "Time from arrival to the first output token.", "s"
)
INTER_TOKEN = Metric(
    "vllm:inter_token_latency_seconds", "histogram", "Time between two output tokens of a request.", "s"
)
E2E = Metric("vllm:e2e_request_latency_seconds", "histogram", "Time from arrival to the last token.", "s")
QUEUE_TIME = Metric(
    "vllm:request_queue_time_seconds", "histogram", "Time a request waited in the queue before running.", "s"
)
PROMPT_TOKENS = Metric("vllm:prompt_tokens", "counter", "Prompt (prefill) tokens processed.", "short")
GENERATION_TOKENS = Metric("vllm:generation_tokens", "counter", "Output (decode) tokens generated.", "short")
PREEMPTIONS = Metric(
    "vllm:num_preemptions", "counter",
    "Running requests evicted to free KV cache (recomputed later): the cache is too small for the load.", "short",
)
REQUEST_SUCCESS = Metric(
    "vllm:request_success", "counter", "Finished requests, by finished_reason (stop, length, abort, ...).", "short"
)
HTTP_REQUESTS = Metric(
    "http_requests", "counter",
    "HTTP responses of the OpenAI server by handler and status class (2xx, 4xx, 5xx).", "short",
)

METRICS: tuple[Metric, ...] = (
    WAITING, RUNNING, KV_CACHE, TTFT, INTER_TOKEN, E2E, QUEUE_TIME, PROMPT_TOKENS, GENERATION_TOKENS, PREEMPTIONS,
    REQUEST_SUCCESS, HTTP_REQUESTS,
)
"""Every metric the project reads, in dashboard order."""

INSTANCE_LABEL = "app.kubernetes.io/instance"
"""The pod label the monitor copies onto every series (as ``app_kubernetes_io_instance``)."""
INSTANCE_SERIES_LABEL = "app_kubernetes_io_instance"

RATE_WINDOW = "5m"


def _quote(value: str) -> str:
    return json.dumps(value)  # PromQL string literals accept JSON's escapes


@dataclass(frozen=True)
class StackSeries:
    """Which series belong to one stack: its namespace, served model name and instance (the stack's name)."""

    namespace: str
    model_name: str
    instance: str

    def model(self, extra: str = "") -> str:
        """Label matchers of vLLM's own series of this stack."""
        matchers = f"namespace={_quote(self.namespace)},model_name={_quote(self.model_name)}"
        return "{" + matchers + (f",{extra}" if extra else "") + "}"

    def pods(self, extra: str = "") -> str:
        """Label matchers of the stack's pods' other series (``up``, ``http_requests_total``)."""
        matchers = f"namespace={_quote(self.namespace)},{INSTANCE_SERIES_LABEL}={_quote(self.instance)}"
        return "{" + matchers + (f",{extra}" if extra else "") + "}"


def waiting_requests(stack: StackSeries) -> str:
    """Requests waiting, all replicas together."""
    return f"sum({WAITING.series}{stack.model()})"


def kv_cache_percent(stack: StackSeries, aggregate: str = "max") -> str:
    """KV-cache usage in percent: of the fullest replica (``max``) or the replicas' mean (``avg``)."""
    return f"{aggregate}({KV_CACHE.series}{stack.model()}) * 100"


def quantile(metric: Metric, stack: StackSeries, q: float = 0.95) -> str:
    """A quantile of a histogram over the replicas, over :data:`RATE_WINDOW`."""
    if metric.kind != "histogram":
        raise ValueError(f"{metric.name} is a {metric.kind}, not a histogram")
    return f"histogram_quantile({q:g}, sum by (le) (rate({metric.series}{stack.model()}[{RATE_WINDOW}])))"


def per_second(metric: Metric, stack: StackSeries) -> str:
    """A counter's rate per second, all replicas together."""
    if metric.kind != "counter":
        raise ValueError(f"{metric.name} is a {metric.kind}, not a counter")
    return f"sum(rate({metric.series}{stack.model()}[{RATE_WINDOW}]))"


def error_percent(stack: StackSeries) -> str:
    """Share of the OpenAI server's HTTP responses that are 5xx, in percent."""
    server_errors = stack.pods('status="5xx"')
    errors = f"sum(rate({HTTP_REQUESTS.series}{server_errors}[{RATE_WINDOW}]))"
    total = f"sum(rate({HTTP_REQUESTS.series}{stack.pods()}[{RATE_WINDOW}]))"
    return f"{errors} / {total} * 100"


def ready_replicas(stack: StackSeries) -> str:
    """Serving pods whose ``/metrics`` answers (0 when none does)."""
    return f"(count(up{stack.pods()} == 1) or vector(0))"


@dataclass(frozen=True)
class Thresholds:
    """The alert thresholds (see ``monitoring.alerts``)."""

    ttft_p95_seconds: float
    kv_cache_usage_percent: float
    queue_length: float
    error_rate_percent: float
    preemptions_per_minute: float


def alert_rules(
    stack: StackSeries, thresholds: Thresholds, wake_up_query: str | None = None, startup_minutes: int = 30
) -> list[dict[str, Any]]:
    """The alerts operators act on, as Prometheus rule entries (``alert``, ``expr``, ``for``, ...).

    With scale to zero (``wake_up_query`` given) no replica is the normal idle state: ``VllmNoReadyReplica``
    then fires only while clients ask for the model and none has become ready within the startup budget.
    """
    labels = {"namespace": stack.namespace, "model_name": stack.model_name}
    no_ready = f"{ready_replicas(stack)} == 0"
    no_ready_for = "5m"
    if wake_up_query:
        no_ready = f"{no_ready} and on() (({wake_up_query}) > 0)"
        no_ready_for = f"{startup_minutes}m"
    target = f"{stack.model_name} in {stack.namespace}"

    def rule(name: str, expr: str, duration: str, severity: str, summary: str, description: str) -> dict[str, Any]:
        return {
            "alert": name,
            "expr": expr,
            "for": duration,
            "labels": {"severity": severity, **labels},
            "annotations": {"summary": f"{summary} ({target})", "description": description},
        }

    return [
        rule(
            "VllmQueueBackingUp", f"{waiting_requests(stack)} > {thresholds.queue_length:g}", "5m", "warning",
            "Requests are queueing in vLLM",
            f"{{{{ $value }}}} requests wait for a slot (threshold {thresholds.queue_length:g}): add replicas or "
            "raise the autoscaling maximum.",
        ),
        rule(
            "VllmKvCacheNearlyFull", f"{kv_cache_percent(stack)} > {thresholds.kv_cache_usage_percent:g}", "10m",
            "warning", "vLLM's KV cache is nearly full",
            f"The fullest replica uses {{{{ $value | humanize }}}}% of its KV cache (threshold "
            f"{thresholds.kv_cache_usage_percent:g}%): requests will be preempted or wait.",
        ),
        rule(
            "VllmTimeToFirstTokenHigh", f"{quantile(TTFT, stack)} > {thresholds.ttft_p95_seconds:g}", "10m",
            "warning", "Time to first token is high",
            f"p95 time to first token is {{{{ $value | humanizeDuration }}}} (threshold "
            f"{thresholds.ttft_p95_seconds:g}s).",
        ),
        rule(
            "VllmNoReadyReplica", no_ready, no_ready_for, "critical", "No vLLM replica is serving",
            "No serving pod of this stack answers /metrics: the endpoint is down.",
        ),
        rule(
            "VllmPreemptionsRising", f"{per_second(PREEMPTIONS, stack)} * 60 > {thresholds.preemptions_per_minute:g}",
            "15m", "warning", "vLLM is preempting requests",
            "{{ $value | humanize }} preemptions per minute: the KV cache is too small for the load "
            "(raise gpuMemoryUtilization, lower maxModelLen, or add replicas).",
        ),
        rule(
            "VllmRequestErrors", f"{error_percent(stack)} > {thresholds.error_rate_percent:g}", "5m", "critical",
            "vLLM answers with server errors",
            f"{{{{ $value | humanize }}}}% of responses are 5xx (threshold {thresholds.error_rate_percent:g}%).",
        ),
    ]


def recording_rules(stack: StackSeries) -> list[dict[str, Any]]:
    """Tokens per second of the stack (prompt and generation), recorded with its namespace and model labels."""
    return [
        {
            "record": f"namespace_model_name:{metric.series.replace(':', '_')}:rate{RATE_WINDOW}",
            "expr": f"sum by (namespace, model_name) (rate({metric.series}{stack.model()}[{RATE_WINDOW}]))",
        }
        for metric in (PROMPT_TOKENS, GENERATION_TOKENS)
    ]


def rule_groups(
    stack: StackSeries, thresholds: Thresholds, wake_up_query: str | None = None, startup_minutes: int = 30
) -> list[dict[str, Any]]:
    """The ``groups`` of the PrometheusRule (also a rule file ``promtool`` reads)."""
    return [
        {"name": f"vllm-{stack.instance}.alerts", "rules": alert_rules(stack, thresholds, wake_up_query, startup_minutes)},
        {"name": f"vllm-{stack.instance}.tokens", "interval": "30s", "rules": recording_rules(stack)},
    ]


def _panel_queries(metric: Metric, stack: StackSeries) -> list[tuple[str, str]]:
    if metric is HTTP_REQUESTS:
        return [(f"sum by (status) (rate({metric.series}{stack.pods()}[{RATE_WINDOW}]))", "{{status}}")]
    if metric is REQUEST_SUCCESS:
        return [
            (f"sum by (finished_reason) (rate({metric.series}{stack.model()}[{RATE_WINDOW}]))", "{{finished_reason}}")
        ]
    if metric.kind == "histogram":
        return [(quantile(metric, stack, q), f"p{round(q * 100)}") for q in (0.5, 0.95, 0.99)]
    if metric.kind == "counter":
        return [(per_second(metric, stack), "per second")]
    return [(f"{metric.series}{stack.model()}", "{{pod}}")]


def dashboard(stack: StackSeries, title: str) -> dict[str, Any]:
    """A Grafana dashboard with one time-series panel per metric of :data:`METRICS`."""
    panels = []
    for index, metric in enumerate(METRICS):
        panels.append(
            {
                "id": index + 1,
                "type": "timeseries",
                "title": metric.name,
                "description": metric.meaning,
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
                "gridPos": {"h": 8, "w": 12, "x": 12 * (index % 2), "y": 8 * (index // 2)},
                "fieldConfig": {"defaults": {"unit": metric.unit or "short"}, "overrides": []},
                "targets": [
                    {"refId": chr(ord("A") + number), "expr": expr, "legendFormat": legend}
                    for number, (expr, legend) in enumerate(_panel_queries(metric, stack))
                ],
            }
        )
    return {
        "title": title,
        "uid": f"vllm-{stack.namespace}-{stack.instance}"[:40],
        "tags": ["vllm"],
        "timezone": "browser",
        "schemaVersion": 39,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [{"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Prometheus"}]
        },
        "panels": panels,
    }


def dashboard_expressions(board: dict[str, Any]) -> list[str]:
    """Every PromQL expression of a dashboard's panels."""
    return [target["expr"] for panel in board["panels"] for target in panel["targets"]]


def keda_triggers(
    stack: StackSeries,
    server_address: str,
    waiting_per_replica: float,
    kv_cache_percent_target: float | None = None,
    wake_up_query: str | None = None,
) -> list[dict[str, Any]]:
    """KEDA ``prometheus`` triggers: waiting requests per replica, optionally KV-cache use, and a wake-up signal.

    The queue trigger is an ``AverageValue`` (replicas = total waiting / target); KV cache is a ``Value`` of
    the replicas' mean (replicas grow in proportion to mean / target). The wake-up trigger is clamped to 0 or 1,
    so it only activates a scaled-to-zero stack and never asks for more than one replica itself.
    """

    def trigger(name: str, query: str, threshold: float, metric_type: str) -> dict[str, Any]:
        return {
            "type": "prometheus",
            "name": name,
            "metricType": metric_type,
            "metadata": {
                "serverAddress": server_address,
                "query": query,
                "threshold": f"{threshold:g}",
                # No series (no pod yet, or idle) counts as 0 instead of an error.
                "ignoreNullValues": "true",
            },
        }

    triggers = [trigger("waiting-requests", waiting_requests(stack), waiting_per_replica, "AverageValue")]
    if kv_cache_percent_target is not None:
        triggers.append(trigger("kv-cache-usage", kv_cache_percent(stack, "avg"), kv_cache_percent_target, "Value"))
    if wake_up_query:
        triggers.append(trigger("wake-up", f"max(({wake_up_query}) > bool 0)", 1, "AverageValue"))
    return triggers


def metric_names_in(text: str) -> set[str]:
    """The ``vllm:`` metric names that occur in a text (PromQL, a rule file, a dashboard)."""
    return set(re.findall(r"vllm:[a-zA-Z_][a-zA-Z0-9_]*", text))
