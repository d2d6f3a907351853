"""The sections about running a stack after its first ``pulumi up``: ``autoscaling`` (KEDA on vLLM's own
metrics) and ``monitoring`` (Prometheus scraping, alerts, a Grafana dashboard)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from pulumi_vllm.config.base import _LABEL_KEY, _LABEL_VALUE, PROJECT, _Section

KUBE_PROMETHEUS_STACK_ADDRESS = "http://kube-prometheus-stack-prometheus.monitoring.svc:9090"
"""The Prometheus that kube-prometheus-stack installs as release ``kube-prometheus-stack`` in namespace
``monitoring`` (its Service is ``<release>-prometheus``, port 9090), as the GPU platform installs it."""

KUBE_PROMETHEUS_STACK_SELECTOR = {"release": "kube-prometheus-stack"}
"""The label kube-prometheus-stack's Prometheus selects monitors and rules by when its selectors are left at the
chart's defaults (``*SelectorNilUsesHelmValues: true`` selects ``release: <release name>``)."""

GRAFANA_DASHBOARD_LABEL = {"grafana_dashboard": "1"}
"""The label Grafana's dashboard sidecar looks for on ConfigMaps in kube-prometheus-stack's defaults
(``grafana.sidecar.dashboards.label`` / ``labelValue``)."""


class PrometheusSource(_Section):
    """The Prometheus KEDA asks for vLLM's metrics."""

    server_address: str = KUBE_PROMETHEUS_STACK_ADDRESS
    """Base URL of the Prometheus HTTP API; the default is kube-prometheus-stack's in-cluster Service
    (release ``kube-prometheus-stack`` in namespace ``monitoring``)."""

    @field_validator("server_address")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")) or len(value) < 10:
            raise ValueError(f"{value!r} is not an http(s) URL such as {KUBE_PROMETHEUS_STACK_ADDRESS}")
        return value


class AutoscalingObjective(_Section):
    """The traffic the replicas must serve and its latency objectives, as ``pulumi-vllm size`` takes them
    (``--rate``, ``--input-tokens``, ``--output-tokens``, ``--ttft-p90``, ``--itl-p90``, ``--prefix-hit-rate``)."""

    requests_per_second: float = Field(gt=0)
    """Requests/s over the whole stack at the target (``size --rate``)."""
    input_tokens: int = Field(ge=1)
    """Prompt tokens per request (``size --input-tokens``)."""
    output_tokens: int = Field(ge=1)
    """Output tokens per request (``size --output-tokens``)."""
    ttft_p90_ms: float | None = Field(default=None, gt=0)
    """Optional: 90th percentile time to first token, in ms, to stay within (``size --ttft-p90``)."""
    itl_p90_ms: float | None = Field(default=None, gt=0)
    """Optional: 90th percentile inter-token latency, in ms, to stay within (``size --itl-p90``)."""
    prefix_hit_rate: float = Field(default=0.0, ge=0, lt=1)
    """Share of each prompt found in vLLM's prefix cache, at least 0 and below 1 (a shared system prompt or a
    conversation's history; ``size --prefix-hit-rate``): only the rest is prefilled. 0 by default."""


OBJECTIVE_DERIVED = ("min_replicas", "max_replicas", "waiting_requests_per_replica", "kv_cache_usage_percent")
"""The ``autoscaling`` keys an objective derives; any the stack sets itself wins."""


class AutoscalingSpec(_Section):
    """A KEDA ScaledObject that scales the serving replicas on vLLM's own queue and KV-cache signals."""

    enabled: bool = False
    """Off by default: it needs KEDA and a Prometheus that scrapes the servers (``monitoring``)."""
    min_replicas: int = Field(default=1, ge=0)
    """Fewest replicas (``minReplicaCount``); 0 scales to zero when idle (then ``wakeUpQuery`` is required)."""
    max_replicas: int = Field(default=2, ge=1)
    """Most replicas (``maxReplicaCount``); bounded by the GPU quota and, above 1, needs a ReadWriteMany cache."""
    waiting_requests_per_replica: float = Field(default=4, gt=0)
    """Target of ``vllm:num_requests_waiting`` summed over the replicas, per replica: more waiting requests
    than this per replica adds replicas."""
    kv_cache_usage_percent: float | None = Field(default=None, gt=0, le=100)
    """Optional second trigger: the replicas' mean ``vllm:kv_cache_usage_perc`` (as a percentage) to hold."""
    cooldown_period: int = Field(default=600, ge=0)
    """Seconds without demand before the last replica goes (scale to zero), and the scale-down stabilization
    window between other replica counts: a new replica costs a cold start of minutes."""
    polling_interval: int = Field(default=15, ge=1)
    """Seconds between KEDA's queries."""
    prometheus: PrometheusSource = Field(default_factory=PrometheusSource)
    """Where KEDA queries the metrics (default: kube-prometheus-stack's in-cluster address)."""
    wake_up_query: str | None = None
    """With ``minReplicas: 0``: a PromQL expression, above 0 while clients want this model, on a metric that
    does not come from the vLLM pods (a router's, gateway's or ingress controller's request counter). At zero
    replicas there is no vLLM pod to report waiting requests, so vLLM's own metrics cannot wake the stack."""
    objective: AutoscalingObjective | None = None
    """A traffic objective: the plan predicts the per-replica capacity at it (``capacity/performance.py``, with
    ``resources.gpuType``) and derives ``minReplicas``, ``maxReplicas``, ``waitingRequestsPerReplica`` and
    ``kvCacheUsagePercent`` as ``size --write-stack`` does; those the stack sets itself win."""

    def explicit(self) -> frozenset[str]:
        """The derivable keys (snake_case) the stack sets itself."""
        return frozenset(self.model_fields_set & set(OBJECTIVE_DERIVED))

    @model_validator(mode="after")
    def _bounds(self) -> AutoscalingSpec:
        # With an objective and no maxReplicas of its own, the plan derives the maximum (and checks it then).
        derived_max = self.objective is not None and "max_replicas" not in self.model_fields_set
        if self.min_replicas > self.max_replicas and not derived_max:
            raise ValueError(
                f"{PROJECT}:autoscaling.minReplicas: {self.min_replicas} is not accepted: it is above "
                f"autoscaling.maxReplicas ({self.max_replicas}); use at most {self.max_replicas}"
            )
        if self.enabled and self.min_replicas == 0 and not (self.wake_up_query or "").strip():
            raise ValueError(
                f"{PROJECT}:autoscaling.minReplicas: 0 is not accepted without autoscaling.wakeUpQuery: at zero "
                "replicas no vLLM pod reports waiting requests, so nothing would scale the stack up again. Set "
                "wakeUpQuery to a PromQL expression on your router's, gateway's or ingress's requests for this "
                "model (above 0 while clients call it), or use minReplicas 1"
            )
        return self


class AlertThresholds(_Section):
    """When the PrometheusRule's alerts fire."""

    ttft_p95_seconds: float = Field(default=5.0, gt=0)
    """Time to first token, 95th percentile over 5 minutes, above which ``VllmTimeToFirstTokenHigh`` fires."""
    kv_cache_usage_percent: float = Field(default=90, gt=0, le=100)
    """KV-cache usage of any replica above which ``VllmKvCacheNearlyFull`` fires."""
    queue_length: float = Field(default=20, gt=0)
    """Requests waiting (all replicas together) above which ``VllmQueueBackingUp`` fires."""
    error_rate_percent: float = Field(default=5, gt=0, le=100)
    """Share of HTTP responses that are 5xx above which ``VllmRequestErrors`` fires."""
    preemptions_per_minute: float = Field(default=1, gt=0)
    """Preemptions per minute (all replicas) above which ``VllmPreemptionsRising`` fires."""
    kv_tier_no_hit_minutes: int = Field(default=60, ge=5)
    """Minutes during which a KV-cache tier (``kvCache``) was asked for tokens and supplied none before
    ``VllmKvTierNoHits`` fires."""
    decode_recompute_percent: float = Field(default=10, gt=0, le=100)
    """Share of a decode pool's prompt tokens computed locally instead of received from the prefill pool above
    which ``VllmDecodeRecomputingPrompts`` fires (``disaggregation``)."""
    kv_transfer_failures_per_minute: float = Field(default=0, ge=0)
    """Failed NIXL transfers and expired KV leases per minute (one pool's replicas together) above which
    ``VllmKvTransferFailures`` fires (``disaggregation.connector: nixl``); 0 fires on any."""


class MonitoringSpec(_Section):
    """Prometheus scraping of every serving pod's ``/metrics``, alert and recording rules, a Grafana dashboard."""

    enabled: bool = False
    """Off by default: it needs the Prometheus operator's CRDs (kube-prometheus-stack)."""
    monitor: Literal["podMonitor", "serviceMonitor"] = "podMonitor"
    """``podMonitor`` scrapes every serving pod (Ray heads too) directly; ``serviceMonitor`` scrapes through
    the client Service's endpoints (the pods behind it, ready ones only)."""
    scrape_interval: str = "15s"
    """How often Prometheus scrapes each pod."""
    labels: dict[str, str] = Field(default_factory=lambda: dict(KUBE_PROMETHEUS_STACK_SELECTOR))
    """Labels on the monitor and the rules so that Prometheus selects them; the default is what
    kube-prometheus-stack selects at its chart defaults (``release: kube-prometheus-stack``)."""
    alerts: AlertThresholds = Field(default_factory=AlertThresholds)
    """Alert thresholds."""
    grafana_dashboard: bool = True
    """A dashboard ConfigMap labelled ``grafana_dashboard: "1"`` for Grafana's sidecar."""
    dashboard_labels: dict[str, str] = Field(default_factory=lambda: dict(GRAFANA_DASHBOARD_LABEL))
    """Labels of the dashboard ConfigMap (the sidecar's ``label: labelValue``)."""

    @field_validator("labels", "dashboard_labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        for key, item in value.items():
            if not _LABEL_KEY.match(key):
                raise ValueError(f"label key {key!r} is not a valid Kubernetes label key")
            if not isinstance(item, str) or not _LABEL_VALUE.match(item) or len(item) > 63:
                raise ValueError(f"label {key}={item!r}: the value is not a valid Kubernetes label value")
        return value

    @field_validator("scrape_interval")
    @classmethod
    def _duration(cls, value: str) -> str:
        if not re.fullmatch(r"[0-9]+(ms|s|m|h)", value):
            raise ValueError(f"{value!r} is not a Prometheus duration such as 15s or 1m")
        return value


def check_scaling_bounds(config: Any) -> None:
    """Refuse an autoscaling maximum the cache or the GPU quota cannot hold (``config`` is the ``StackConfig``).

    Raises ``ValueError`` with a message that names the key (the stack's validator reports it as it is).
    """
    scaling: AutoscalingSpec = config.autoscaling
    if not scaling.enabled:
        return
    if scaling.objective is not None and "max_replicas" not in scaling.model_fields_set:
        return  # the plan derives the maximum from the objective, then checks it here
    key = f"{PROJECT}:autoscaling.maxReplicas"
    cache = config.cache
    if scaling.max_replicas > 1 and cache.existing_claim is None and cache.access_mode != "ReadWriteMany":
        raise ValueError(
            f"{key}: {scaling.max_replicas} is not accepted: replicas cannot share a {cache.access_mode} model "
            "cache across nodes (the second pod would wait for the volume); set cache.accessMode to "
            "ReadWriteMany, or autoscaling.maxReplicas to 1"
        )
    quota = config.quota
    if not quota.enabled:
        return
    parallel = config.parallelism
    world = parallel.tensor_parallel_size * parallel.pipeline_parallel_size * parallel.data_parallel_size
    batch = world if config.batch.enabled else 0
    # The quota the stack creates: quota.gpus, or (unset) what the stack requests at its own replicas.
    limit = quota.gpus if quota.gpus is not None else world * config.replicas + batch
    needed = scaling.max_replicas * world + batch
    if needed > limit:
        parts = f"{scaling.max_replicas} replica(s) x {world} GPU(s)" + (f" + the batch Job's {batch}" if batch else "")
        raise ValueError(
            f"{key}: {scaling.max_replicas} is not accepted: at its maximum the stack requests {needed} GPU(s) "
            f"({parts}), beyond the namespace's GPU quota of {limit} (quota.gpus); the extra pods would be "
            f"refused with 'exceeded quota'. Set quota.gpus to at least {needed}, or lower autoscaling.maxReplicas"
        )
