"""Pure builders of the serving's safety settings (no Pulumi): hardening, graceful stop, spread, and the
rules between the safety sections and the rest of the stack.

:func:`check_safety` runs before anything is created; :func:`harden` turns the serving container into
the hardened one every serving pod (Deployment, Ray head and workers, batch Job) starts from;
:func:`graceful_engine` gives vLLM the time to finish in-flight requests that the grace period allows.
The objects built from these (PodDisruptionBudget, NetworkPolicies, the Jobs) are in
:mod:`pulumi_vllm.kubernetes.safety`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from pulumi_vllm.config import PROJECT, ConfigError, SecuritySpec, StackConfig
from pulumi_vllm.engine.argv import EngineArgs
from pulumi_vllm.engine.container import NON_ROOT_CACHE_PATH, cache_path
from pulumi_vllm.kubernetes.pod import ContainerSettings, selector_labels
from pulumi_vllm.kubernetes.ray_pods import HEAD_COMPONENT, WORKER_COMPONENT
from pulumi_vllm.plan import ServingPlan

HOSTNAME_KEY = "kubernetes.io/hostname"
ZONE_KEY = "topology.kubernetes.io/zone"

PodSecurityLevel = Literal["privileged", "baseline", "restricted"]
POD_SECURITY_ORDER: tuple[PodSecurityLevel, ...] = ("privileged", "baseline", "restricted")
POD_SECURITY_ENFORCE = "pod-security.kubernetes.io/enforce"


def serving_selector(plan: ServingPlan) -> dict[str, Any]:
    """A label selector (``matchLabels`` / ``matchExpressions``) of every pod that serves the model."""
    config = plan.config
    if not plan.ray_pods:
        return {"matchLabels": selector_labels(config.name)}
    labels = selector_labels(config.name)
    labels.pop("app.kubernetes.io/component")
    return {
        "matchLabels": labels,
        "matchExpressions": [
            {"key": "app.kubernetes.io/component", "operator": "In", "values": [HEAD_COMPONENT, WORKER_COMPONENT]}
        ],
    }


def api_selector(plan: ServingPlan) -> dict[str, Any]:
    """The pods that answer the OpenAI API: the server's, or the Ray heads."""
    component = HEAD_COMPONENT if plan.ray_pods else "server"
    return {"matchLabels": selector_labels(plan.config.name, component)}


def container_security(security: SecuritySpec) -> dict[str, Any] | None:
    """The container's securityContext: hardened, and the user when it runs as non-root."""
    context: dict[str, Any] = {}
    if security.hardened:
        context.update(
            {
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"]},
                "seccompProfile": {"type": "RuntimeDefault"},
            }
        )
    if security.run_as_non_root:
        context.update({"runAsNonRoot": True, "runAsUser": security.run_as_user, "runAsGroup": security.run_as_group})
    return context or None


def pod_security(security: SecuritySpec) -> dict[str, Any] | None:
    """The pod's securityContext: the seccomp profile, and for non-root the user and the cache's group."""
    context: dict[str, Any] = {}
    if security.hardened:
        context["seccompProfile"] = {"type": "RuntimeDefault"}
    if security.run_as_non_root:
        context.update(
            {
                "runAsNonRoot": True,
                "runAsUser": security.run_as_user,
                "runAsGroup": security.run_as_group,
                # The claim becomes group-writable; OnRootMismatch skips the recursive walk over
                # hundreds of GB of weights on every start once the ownership is right.
                "fsGroup": security.run_as_group,
                "fsGroupChangePolicy": "OnRootMismatch",
            }
        )
    return context or None


def pod_security_level(plan: ServingPlan) -> PodSecurityLevel:
    """The strictest Pod Security Standard every pod of the stack meets.

    ``restricted`` needs non-root, no privilege escalation, seccomp and every capability dropped;
    ``baseline`` allows the default capabilities but not IPC_LOCK, which InfiniBand pods add.
    """
    config = plan.config
    if config.network.infiniband and plan.topology.multi_node:
        return "privileged"
    if config.disaggregation is not None and config.disaggregation.transport != "tcp":
        return "privileged"  # NIXL over RDMA or EFA: IPC_LOCK as well (docs/disaggregation.md)
    if config.security.hardened and config.security.run_as_non_root:
        return "restricted"
    return "baseline"


def pod_security_labels(level: PodSecurityLevel) -> dict[str, str]:
    """Namespace labels that make Pod Security admission enforce ``level`` (and warn and audit at it)."""
    return {f"pod-security.kubernetes.io/{mode}": level for mode in ("enforce", "warn", "audit")}


def spreads(plan: ServingPlan) -> list[dict[str, Any]]:
    """Topology spread constraints of the serving pods (none for a single replica unless asked)."""
    availability = plan.config.availability
    keys = []
    if availability.spread_across_nodes:
        keys.append(HOSTNAME_KEY)
    if availability.spread_across_zones:
        keys.append(ZONE_KEY)
    return [
        {
            "maxSkew": 1,
            "topologyKey": key,
            "whenUnsatisfiable": availability.when_unsatisfiable,
            "labelSelector": serving_selector(plan),
        }
        for key in keys
    ]


def wants_disruption_budget(plan: ServingPlan) -> bool:
    """A PodDisruptionBudget: as configured, else whenever more than one replica may serve."""
    configured = plan.config.availability.pod_disruption_budget
    return configured if configured is not None else most_replicas(plan.config) > 1


def most_replicas(config: StackConfig) -> int:
    """The most replicas that may serve at once: ``replicas``, or the autoscaler's maximum."""
    autoscaling = config.autoscaling
    return max(config.replicas, autoscaling.max_replicas if autoscaling.enabled else 0)


def serving_scheduling(plan: ServingPlan) -> dict[str, Any]:
    """Pod fields of the serving pods: grace period, priority, topology spread."""
    availability = plan.config.availability
    fields: dict[str, Any] = {"terminationGracePeriodSeconds": availability.grace_period_seconds()}
    if availability.priority_class_name:
        fields["priorityClassName"] = availability.priority_class_name
    constraints = spreads(plan)
    if constraints:
        fields["topologySpreadConstraints"] = constraints
    return fields


def pre_stop(plan: ServingPlan) -> dict[str, Any] | None:
    """The pre-stop pause: the pod leaves the Service's endpoints before vLLM stops accepting requests."""
    seconds = plan.config.availability.pre_stop_sleep_seconds
    if not seconds:
        return None
    return {"preStop": {"exec": {"command": ["sleep", str(seconds)]}}}


def graceful_engine(engine: EngineArgs, config: StackConfig) -> EngineArgs:
    """The engine settings with vLLM's drain on SIGTERM (``--shutdown-timeout``) that the grace period covers."""
    return dataclasses.replace(engine, shutdown_timeout=config.availability.drain_seconds)


def harden(container: ContainerSettings, plan: ServingPlan) -> ContainerSettings:
    """The serving container with the security, stop, scheduling and offline settings of the stack."""
    config = plan.config
    security = config.security
    env = dict(container.env)
    if config.warmup.enabled:
        # The cache was filled by the pre-download: the servers never ask the Hub.
        env["HF_HUB_OFFLINE"] = "1"
    return dataclasses.replace(
        container,
        env=env,
        cache_path=cache_path(security.run_as_non_root),
        security_context=container_security(security),
        pod_security_context=pod_security(security),
        tmp_size=security.tmp_size if security.run_as_non_root else None,
        lifecycle=pre_stop(plan),
        scheduling=serving_scheduling(plan),
    )


def safety_problems(plan: ServingPlan) -> list[str]:
    """What the safety sections cannot do with the rest of the stack, one message per problem."""
    config = plan.config
    problems: list[str] = []
    model = config.model.id
    if config.warmup.enabled and model.startswith("/"):
        problems.append(
            f"{PROJECT}:warmup.enabled: true is not accepted: model.id {model!r} is a path inside the container, "
            "not a Hugging Face repository; there is nothing to download (set warmup.enabled to false)"
        )
    if config.warmup.enabled and "HF_HUB_OFFLINE" in config.engine.env:
        problems.append(
            f"{PROJECT}:engine.env.HF_HUB_OFFLINE: is set by warmup itself (the servers run offline once the "
            "pre-download filled the cache); remove it"
        )
    if config.availability.spread_across_zones and plan.topology.multi_node:
        problems.append(
            f"{PROJECT}:availability.spreadAcrossZones: true is not accepted for a multi-node model: it would "
            "spread one Ray group's pods over zones, with NCCL traffic between zones; place groups with "
            "resources.nodeSelector instead"
        )
    if config.security.run_as_non_root and model.startswith("/root/"):
        problems.append(
            f"{PROJECT}:security.runAsNonRoot: true is not accepted with model.id {model!r}: a non-root user cannot "
            f"read /root; the cache is mounted at {NON_ROOT_CACHE_PATH} for non-root pods"
        )
    if config.load_test.enabled and model.startswith("/") and config.cache.access_mode != "ReadWriteMany":
        problems.append(
            f"{PROJECT}:loadTest.enabled: true is not accepted with model.id {model!r} and a "
            f"{config.cache.access_mode} cache: the benchmark reads the model's tokenizer and can mount the cache "
            "beside the servers only when it is ReadWriteMany"
        )
    problems += _namespace_level_problems(plan)
    return problems


def _namespace_level_problems(plan: ServingPlan) -> list[str]:
    """A namespace this stack's platform creates must not enforce more than the pods meet."""
    config = plan.config
    if config.cluster is None:
        return []
    level = pod_security_level(plan)
    problems = []
    for index, namespace in enumerate(config.cluster.namespaces):
        enforced = namespace.labels.get(POD_SECURITY_ENFORCE)
        if namespace.name != config.namespace or enforced not in POD_SECURITY_ORDER:
            continue
        if POD_SECURITY_ORDER.index(enforced) > POD_SECURITY_ORDER.index(level):
            problems.append(
                f"{PROJECT}:cluster.namespaces[{index}].labels.{POD_SECURITY_ENFORCE}: {enforced!r} is not accepted: "
                f"the serving pods meet {level!r} (Pod Security admission would refuse them); "
                f"use {level!r}{_how_to_meet(plan, enforced)}"
            )
    return problems


def _how_to_meet(plan: ServingPlan, enforced: str) -> str:
    config = plan.config
    if config.network.infiniband and plan.topology.multi_node:
        return " (InfiniBand adds the IPC_LOCK capability)"
    if enforced == "restricted":
        return ", or set security.runAsNonRoot: true and security.hardened: true"
    return ""


def check_safety(plan: ServingPlan) -> None:
    """Raise :class:`ConfigError` naming every problem of :func:`safety_problems`."""
    problems = safety_problems(plan)
    if problems:
        raise ConfigError("\n".join(problems))
