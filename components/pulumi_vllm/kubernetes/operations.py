"""Operating a serving stack: KEDA autoscaling on vLLM's own metrics, Prometheus scraping, alert and recording
rules, and a Grafana dashboard.

The pure parts come first: :func:`check_operations` (refusals made before anything is created) and the
custom-resource builders (:func:`scaled_object`, :func:`pod_monitor`, :func:`service_monitor`,
:func:`prometheus_rule`, :func:`dashboard_config_map`), written in the APIs' own camelCase from the metric
list and expressions of :mod:`pulumi_vllm.engine.metrics`. :class:`VllmOperations` turns them into resources.

While KEDA scales a workload, its ``spec.replicas`` belongs to KEDA's HorizontalPodAutoscaler:
:func:`operations_options` gives the serving component a transformation that sets ``ignore_changes`` on
``spec.replicas`` of the Deployment or LeaderWorkerSet, so ``pulumi up`` neither reports the autoscaler's
count as drift nor sends the stack's ``replicas`` back with the next change of the pod template. The
stack's ``replicas`` is then only the count the workload is created with.
"""

import json
from typing import Any, TypedDict

import pulumi
import pulumi_kubernetes as k8s

from pulumi_vllm.config import PROJECT, ConfigError, StackConfig
from pulumi_vllm.engine import kv_metrics, metrics
from pulumi_vllm.kubernetes.pod import CONTAINER_PORT_NAME, object_labels, selector_labels
from pulumi_vllm.kubernetes.ray_pods import HEAD_COMPONENT, group_workload_name
from pulumi_vllm.plan import ServingPlan

TOKEN = "pulumi-vllm:index:VllmOperations"

KEDA_API_VERSION = "keda.sh/v1alpha1"
MONITORING_API_VERSION = "monitoring.coreos.com/v1"
METRICS_PATH = "/metrics"

SCALED_TYPES = (
    "kubernetes:apps/v1:Deployment",
    "kubernetes:leaderworkerset.x-k8s.io/v1:LeaderWorkerSet",
)
"""Pulumi types of the workloads KEDA scales, whose ``spec.replicas`` Pulumi then leaves alone."""


def check_operations(plan: ServingPlan) -> None:
    """Refuse autoscaling of a workload KEDA cannot scale (what the config alone decides, the maximum against
    the cache and the GPU quota, is refused when the stack config is read)."""
    config = plan.config
    if config.autoscaling.enabled and plan.topology.multi_node and config.parallelism.backend != "leaderworkerset":
        raise ConfigError(
            f"{PROJECT}:autoscaling.enabled: true is not accepted for a multi-node model with the "
            f"{config.parallelism.backend} backend: KEDA scales a Deployment or whole LeaderWorkerSet groups; "
            "use parallelism.backend leaderworkerset, or autoscaling.enabled false"
        )


def _leave_replicas_to_the_autoscaler(
    args: pulumi.ResourceTransformationArgs,
) -> pulumi.ResourceTransformationResult | None:
    if args.type_ not in SCALED_TYPES:
        return None
    ignored = [*(args.opts.ignore_changes or []), "spec.replicas"]
    return pulumi.ResourceTransformationResult(
        args.props, pulumi.ResourceOptions.merge(args.opts, pulumi.ResourceOptions(ignore_changes=ignored))
    )


def operations_options(plan: ServingPlan, opts: pulumi.ResourceOptions | None = None) -> pulumi.ResourceOptions | None:
    """The serving component's options: checked (:func:`check_operations`) and, when KEDA scales the workload,
    with the transformation that leaves its ``spec.replicas`` to KEDA."""
    check_operations(plan)
    if not plan.config.autoscaling.enabled:
        return opts
    return pulumi.ResourceOptions.merge(
        opts, pulumi.ResourceOptions(transformations=[_leave_replicas_to_the_autoscaler])
    )


def stack_series(plan: ServingPlan) -> metrics.StackSeries:
    """The labels that select this stack's series in Prometheus."""
    return metrics.StackSeries(plan.config.namespace, plan.served_model_name, plan.config.name)


def scale_target(plan: ServingPlan) -> dict[str, str]:
    """The workload KEDA scales: the Deployment, or the LeaderWorkerSet (through its scale subresource)."""
    if plan.topology.multi_node:
        return {"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet", "name": group_workload_name(plan)}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "name": plan.deployment_name}


def _metadata(name: str, config: StackConfig, labels: dict[str, str]) -> dict[str, Any]:
    return {"name": name, "namespace": config.namespace, "labels": labels}


def scaled_object(plan: ServingPlan) -> dict[str, Any]:
    """The KEDA ScaledObject (``keda.sh/v1alpha1``) of the serving workload."""
    config = plan.config
    scaling = config.autoscaling
    return {
        "apiVersion": KEDA_API_VERSION,
        "kind": "ScaledObject",
        "metadata": _metadata(config.name, config, object_labels(config, "autoscaler")),
        "spec": {
            "scaleTargetRef": scale_target(plan),
            "pollingInterval": scaling.polling_interval,
            "cooldownPeriod": scaling.cooldown_period,
            "minReplicaCount": scaling.min_replicas,
            "maxReplicaCount": scaling.max_replicas,
            "advanced": {
                "horizontalPodAutoscalerConfig": {
                    # A replica costs GPUs and minutes of cold start: remove one at a time, after a quiet window.
                    "behavior": {
                        "scaleDown": {
                            "stabilizationWindowSeconds": scaling.cooldown_period,
                            "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}],
                        }
                    }
                }
            },
            "triggers": metrics.keda_triggers(
                stack_series(plan),
                scaling.prometheus.server_address,
                scaling.waiting_requests_per_replica,
                scaling.kv_cache_usage_percent,
                scaling.wake_up_query if scaling.min_replicas == 0 else None,
            ),
        },
    }


def _monitored_pods(config: StackConfig) -> dict[str, Any]:
    # The single-node server pods and the Ray heads: the pods that run vLLM's API server and its /metrics.
    base = selector_labels(config.name)
    return {
        "matchLabels": {key: base[key] for key in ("app.kubernetes.io/name", "app.kubernetes.io/instance")},
        "matchExpressions": [
            {"key": "app.kubernetes.io/component", "operator": "In", "values": ["server", HEAD_COMPONENT]}
        ],
    }


def pod_monitor(plan: ServingPlan) -> dict[str, Any]:
    """A PodMonitor scraping ``/metrics`` of every serving pod (Ray heads of a multi-node model too)."""
    config = plan.config
    monitoring = config.monitoring
    return {
        "apiVersion": MONITORING_API_VERSION,
        "kind": "PodMonitor",
        "metadata": _metadata(config.name, config, {**object_labels(config, "monitoring"), **monitoring.labels}),
        "spec": {
            "selector": _monitored_pods(config),
            "namespaceSelector": {"matchNames": [config.namespace]},
            "podTargetLabels": [metrics.INSTANCE_LABEL],
            "podMetricsEndpoints": [
                {"port": CONTAINER_PORT_NAME, "path": METRICS_PATH, "interval": monitoring.scrape_interval}
            ],
        },
    }


def service_monitor(plan: ServingPlan) -> dict[str, Any]:
    """A ServiceMonitor scraping ``/metrics`` through the client Service's endpoints."""
    config = plan.config
    monitoring = config.monitoring
    return {
        "apiVersion": MONITORING_API_VERSION,
        "kind": "ServiceMonitor",
        "metadata": _metadata(config.name, config, {**object_labels(config, "monitoring"), **monitoring.labels}),
        "spec": {
            # The client Service carries the server component's labels (the Ray head Service does not).
            "selector": {"matchLabels": selector_labels(config.name)},
            "namespaceSelector": {"matchNames": [config.namespace]},
            "podTargetLabels": [metrics.INSTANCE_LABEL],
            "endpoints": [{"port": "http", "path": METRICS_PATH, "interval": monitoring.scrape_interval}],
        },
    }


def _thresholds(config: StackConfig) -> metrics.Thresholds:
    alerts = config.monitoring.alerts
    return metrics.Thresholds(
        ttft_p95_seconds=alerts.ttft_p95_seconds,
        kv_cache_usage_percent=alerts.kv_cache_usage_percent,
        queue_length=alerts.queue_length,
        error_rate_percent=alerts.error_rate_percent,
        preemptions_per_minute=alerts.preemptions_per_minute,
    )


def tier_sources(config: StackConfig) -> tuple[str, ...]:
    """The ``source`` values vLLM counts the stack's KV-cache tiers' hits under (none without ``kvCache``)."""
    tiers = config.kv_cache
    if tiers.cpu_gib is None:
        return ()
    if tiers.backend == "lmcache":
        return ("external_unspecified",)  # LMCacheConnectorV1 does not name its tier to vLLM
    return ("host", "disk") if tiers.disk is not None else ("host",)


def rule_groups(plan: ServingPlan) -> list[dict[str, Any]]:
    """The stack's alert and recording rule groups (the PrometheusRule's ``spec.groups``, a promtool rule file);
    with KV-cache tiers or as a P/D pool, also the tier and transfer groups (:mod:`pulumi_vllm.engine.kv_metrics`)."""
    config = plan.config
    scaling = config.autoscaling
    to_zero = scaling.enabled and scaling.min_replicas == 0
    startup_minutes = -(-config.probes.startup_timeout_seconds // 60) + 5
    alerts = config.monitoring.alerts
    kv_thresholds = kv_metrics.KvThresholds(
        alerts.kv_tier_no_hit_minutes, alerts.decode_recompute_percent, alerts.kv_transfer_failures_per_minute
    )
    nixl = config.disaggregation is not None and config.disaggregation.connector == "nixl"
    return [
        *metrics.rule_groups(
            stack_series(plan), _thresholds(config), scaling.wake_up_query if to_zero else None, startup_minutes
        ),
        *kv_metrics.rule_groups(stack_series(plan), tier_sources(config), config.pool_role, kv_thresholds, nixl),
    ]


def prometheus_rule(plan: ServingPlan) -> dict[str, Any]:
    """The PrometheusRule with the stack's alerts and its recording rules (:func:`rule_groups`)."""
    config = plan.config
    return {
        "apiVersion": MONITORING_API_VERSION,
        "kind": "PrometheusRule",
        "metadata": _metadata(config.name, config, {**object_labels(config, "monitoring"), **config.monitoring.labels}),
        "spec": {"groups": rule_groups(plan)},
    }


def dashboard_file_name(plan: ServingPlan) -> str:
    """The dashboard's key in the ConfigMap (Grafana's sidecar writes it under this file name)."""
    return f"vllm-{plan.config.namespace}-{plan.config.name}.json"


def dashboard_config_map(plan: ServingPlan) -> dict[str, Any]:
    """The Grafana dashboard as a ConfigMap labelled for Grafana's dashboard sidecar."""
    config = plan.config
    board = metrics.dashboard(stack_series(plan), f"vLLM: {plan.served_model_name} ({config.namespace})")
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(
            f"{config.name}-dashboard", config,
            {**object_labels(config, "monitoring"), **config.monitoring.dashboard_labels},
        ),
        "data": {dashboard_file_name(plan): json.dumps(board, indent=1, sort_keys=True)},
    }


class VllmOperationsArgs(TypedDict):
    """Arguments of :class:`VllmOperations`."""

    plan: ServingPlan
    """The validated plan: the ``autoscaling`` and ``monitoring`` sections, the workload's names and topology."""


class VllmOperations(pulumi.ComponentResource):
    """KEDA autoscaling and Prometheus monitoring of one serving stack (each created only when enabled)."""

    scaled_object_name: pulumi.Output[str] | None
    """Name of the ScaledObject (``None`` when autoscaling is off)."""
    monitor_kind: str | None
    """``PodMonitor`` or ``ServiceMonitor`` (``None`` when monitoring is off)."""

    def __init__(self, name: str, args: VllmOperationsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        plan = args["plan"]
        check_operations(plan)
        super().__init__(TOKEN, name, None, opts)
        config = plan.config
        child = pulumi.ResourceOptions(parent=self)
        self.scaled_object_name = None
        self.monitor_kind = None
        if config.autoscaling.enabled:
            self._scaled_object = self._custom(f"{name}-scaledobject", scaled_object(plan), child)
            self.scaled_object_name = pulumi.Output.from_input(config.name)
        if config.monitoring.enabled:
            monitor = pod_monitor(plan) if config.monitoring.monitor == "podMonitor" else service_monitor(plan)
            self.monitor_kind = monitor["kind"]
            self._monitor = self._custom(f"{name}-{monitor['kind'].lower()}", monitor, child)
            self._rules = self._custom(f"{name}-prometheusrule", prometheus_rule(plan), child)
            if config.monitoring.grafana_dashboard:
                board = dashboard_config_map(plan)
                self._dashboard = k8s.core.v1.ConfigMap(
                    f"{name}-dashboard",
                    metadata=k8s.meta.v1.ObjectMetaArgs(**board["metadata"]),
                    data=board["data"],
                    opts=child,
                )
        self.register_outputs({"scaled_object_name": self.scaled_object_name, "monitor_kind": self.monitor_kind})

    @staticmethod
    def _custom(name: str, manifest: dict[str, Any], opts: pulumi.ResourceOptions) -> k8s.apiextensions.CustomResource:
        return k8s.apiextensions.CustomResource(
            name,
            api_version=manifest["apiVersion"],
            kind=manifest["kind"],
            metadata=k8s.meta.v1.ObjectMetaArgs(**manifest["metadata"]),
            spec=manifest["spec"],
            opts=opts,
        )
