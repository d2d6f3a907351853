"""The objects that keep the serving safe to run: the model pre-download Job, the PodDisruptionBudget,
the NetworkPolicies (:class:`ServingSafety`), and the load-test Job (:class:`LoadTest`).

The pre-download is a Job that Pulumi waits for (pulumi-kubernetes awaits a Job until it completes),
and every serving workload depends on it: the servers start only once the cache holds the model, and
then run with ``HF_HUB_OFFLINE=1``. One Job per stack, so a multi-node group (and every replica) shares
one download instead of one per pod. The pure settings are in :mod:`pulumi_vllm.kubernetes.safety_pods`.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict, cast

import pulumi
import pulumi_kubernetes as k8s

from pulumi_vllm.config import DEFAULT_IMAGE
from pulumi_vllm.engine.jobs import (
    BENCH_API_KEY_ENV,
    bench_job_command,
    bench_serve_argv,
    download_command,
    warmup_repositories,
)
from pulumi_vllm.kubernetes import object_name
from pulumi_vllm.kubernetes.pod import TMP_PATH, ContainerSettings, object_labels, selector_labels
from pulumi_vllm.kubernetes.safety_pods import api_selector, serving_selector, wants_disruption_budget
from pulumi_vllm.plan import ServingPlan

TOKEN = "pulumi-vllm:index:ServingSafety"
LOAD_TEST_TOKEN = "pulumi-vllm:index:LoadTest"

WARMUP_COMPONENT = "warmup"
LOAD_TEST_COMPONENT = "load-test"
RESULTS_PATH = "/results"
RESULT_FILENAME = "bench-serve.json"
AWAIT_MARGIN_SECONDS = 300
"""Added to a Job's deadline for Pulumi's wait on it (scheduling, image pull)."""
DNS_PORTS = [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]


class ServingSafetyArgs(TypedDict):
    """Arguments of :class:`ServingSafety`."""

    plan: ServingPlan
    """The validated plan: names, replicas, topology and the safety sections."""
    container: ContainerSettings
    """The hardened serving container (image, cache, token, security): the Jobs start from it."""


class LoadTestArgs(TypedDict):
    """Arguments of :class:`LoadTest`."""

    plan: ServingPlan
    container: ContainerSettings
    """The hardened serving container: image, cache, token, API key and security of the Job."""
    labels: NotRequired[dict[str, str]]


def _secret_env(name: str, ref: Any) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}}


def _helper_pod(
    container: ContainerSettings, command: list[str], env: list[dict[str, Any]], plan: ServingPlan,
    *, cpu: str, memory: str, mounts: list[dict[str, Any]], volumes: list[dict[str, Any]],
) -> dict[str, Any]:
    """A CPU pod with the serving container's image and security settings, on the serving pods' nodes."""
    resources = plan.config.resources
    main: dict[str, Any] = {
        "name": "main",
        # The download and the benchmark are vLLM's tools: another engine's image may lack them.
        "image": container.image if plan.config.engine.kind == "vllm" else DEFAULT_IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "command": command,
        "env": env,
        "resources": {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": memory}},
        "volumeMounts": [*mounts, {"name": "tmp", "mountPath": TMP_PATH}],
    }
    if container.security_context is not None:
        main["securityContext"] = dict(container.security_context)
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "enableServiceLinks": False,
        "containers": [main],
        "volumes": [*volumes, {"name": "tmp", "emptyDir": {"sizeLimit": container.tmp_size or "8Gi"}}],
    }
    if container.pod_security_context is not None:
        spec["securityContext"] = dict(container.pod_security_context)
    # The serving pods' nodes: with WaitForFirstConsumer the claim is created in the zone of the first pod.
    if resources.node_selector:
        spec["nodeSelector"] = dict(resources.node_selector)
    tolerations = resources.pod_tolerations(plan.gpus_per_pod)
    if tolerations:
        spec["tolerations"] = tolerations
    return spec


def warmup_pod(plan: ServingPlan, container: ContainerSettings) -> dict[str, Any]:
    """The pre-download's pod: ``hf download`` of the model and adapters into the cache, with the token."""
    config = plan.config
    env: list[dict[str, Any]] = [{"name": "HF_HOME", "value": container.cache_path}, {"name": "HOME", "value": TMP_PATH}]
    if container.hf_token is not None:
        env.append(_secret_env("HF_TOKEN", container.hf_token))
    repos = warmup_repositories(config.model.id, config.model.revision, config.warmup.adapters)
    return _helper_pod(
        container, download_command(repos), env, plan,
        cpu=config.warmup.cpu_request, memory=config.warmup.memory_request,
        mounts=[{"name": "model-cache", "mountPath": container.cache_path}],
        volumes=[{"name": "model-cache", "persistentVolumeClaim": {"claimName": container.cache_claim}}],
    )


def load_test_pod(plan: ServingPlan, container: ContainerSettings) -> dict[str, Any]:
    """The load test's pod: ``vllm bench serve`` against the Service, its JSON result printed to the log."""
    config = plan.config
    spec = config.load_test
    base_url = f"http://{plan.service_name}.{config.namespace}.svc.cluster.local:{config.service.port}"
    argv = bench_serve_argv(
        spec, base_url=base_url, model=config.model.id, served_model_name=config.model.served_model_name,
        result_dir=RESULTS_PATH, result_filename=RESULT_FILENAME,
    )
    # The benchmark loads the model's tokenizer: from the shared cache when a second pod may mount it.
    shared_cache = config.cache.access_mode == "ReadWriteMany"
    env: list[dict[str, Any]] = [
        {"name": "HF_HOME", "value": container.cache_path if shared_cache else f"{TMP_PATH}/huggingface"},
        {"name": "HOME", "value": TMP_PATH},
    ]
    if shared_cache and config.warmup.enabled:
        env.append({"name": "HF_HUB_OFFLINE", "value": "1"})
    if container.hf_token is not None:
        env.append(_secret_env("HF_TOKEN", container.hf_token))
    if container.api_key is not None:
        env.append(_secret_env(BENCH_API_KEY_ENV, container.api_key))
    mounts: list[dict[str, Any]] = [{"name": "results", "mountPath": RESULTS_PATH}]
    results: dict[str, Any] = (
        {"persistentVolumeClaim": {"claimName": spec.result_claim}} if spec.result_claim else {"emptyDir": {}}
    )
    volumes = [{"name": "results", **results}]
    if shared_cache:
        mounts.append({"name": "model-cache", "mountPath": container.cache_path, "readOnly": True})
        claim = {"claimName": container.cache_claim, "readOnly": True}
        volumes.append({"name": "model-cache", "persistentVolumeClaim": claim})
    return _helper_pod(
        container, bench_job_command(argv, f"{RESULTS_PATH}/{RESULT_FILENAME}"), env, plan,
        cpu="2", memory="4Gi", mounts=mounts, volumes=volumes,
    )


def disruption_budget_spec(plan: ServingPlan) -> dict[str, Any]:
    """At most ``maxUnavailable`` serving pods down through voluntary disruptions (drains, upgrades)."""
    return {
        "maxUnavailable": plan.config.availability.max_unavailable,
        "selector": serving_selector(plan),
        # A pod that is not ready (crash-looping, still loading) may always be evicted: it serves nothing,
        # and a drain must not wait on it.
        "unhealthyPodEvictionPolicy": "AlwaysAllow",
    }


def network_policy_specs(plan: ServingPlan) -> dict[str, dict[str, Any]]:
    """The NetworkPolicies by name suffix: ``api`` (who may call the API port), ``ray`` (the group's own
    pods, multi-node), ``egress`` (when egress is restricted)."""
    config = plan.config
    policy = config.network_policy
    sources: list[dict[str, Any]] = [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}
        for name in [*policy.allow_from_namespaces, *([policy.monitoring_namespace] if policy.monitoring_namespace else [])]
    ]
    sources += [{"podSelector": {"matchLabels": dict(pods.match_labels)}} for pods in policy.allow_from_pods]
    if config.load_test.enabled:
        sources.append({"podSelector": {"matchLabels": selector_labels(config.name, LOAD_TEST_COMPONENT)}})
    # An ingress rule without sources would admit everyone: no source listed means no rule at all.
    api_rules = [{"from": sources, "ports": [{"port": plan.port, "protocol": "TCP"}]}] if sources else []
    specs: dict[str, dict[str, Any]] = {
        "api": {"podSelector": api_selector(plan), "policyTypes": ["Ingress"], "ingress": api_rules},
    }
    group = serving_selector(plan) if plan.ray_pods else None
    if group is not None:
        specs["ray"] = {"podSelector": group, "policyTypes": ["Ingress"], "ingress": [{"from": [{"podSelector": group}]}]}
    if policy.egress is not None:
        egress: list[dict[str, Any]] = [{"ports": DNS_PORTS}]
        if group is not None:
            egress.append({"to": [{"podSelector": group}]})
        for rule in policy.egress:
            item: dict[str, Any] = {"to": [{"ipBlock": {"cidr": rule.cidr}}]}
            if rule.ports:
                item["ports"] = [{"port": port, "protocol": "TCP"} for port in rule.ports]
            egress.append(item)
        specs["egress"] = {"podSelector": serving_selector(plan), "policyTypes": ["Egress"], "egress": egress}
    return specs


def _job(
    resource_name: str, job_name: str, plan: ServingPlan, labels: dict[str, str], pod: dict[str, Any],
    *, deadline: int | None, backoff_limit: int, wait: bool, opts: pulumi.ResourceOptions,
) -> k8s.batch.v1.Job:
    timeout = f"{(deadline or 3600) + AWAIT_MARGIN_SECONDS}s"
    return k8s.batch.v1.Job(
        resource_name,
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=job_name, namespace=plan.config.namespace, labels=labels,
            annotations={} if wait else {"pulumi.com/skipAwait": "true"},
        ),
        spec=k8s.batch.v1.JobSpecArgs(
            backoff_limit=backoff_limit,
            active_deadline_seconds=deadline,
            template=cast(Any, {"metadata": {"labels": labels}, "spec": pod}),
        ),
        opts=pulumi.ResourceOptions.merge(
            opts,
            pulumi.ResourceOptions(
                # A Job's pod template is immutable: a changed Job (a new model or revision) is replaced and runs again.
                replace_on_changes=["spec"],
                delete_before_replace=True,
                custom_timeouts=pulumi.CustomTimeouts(create=timeout, update=timeout),
            ),
        ),
    )


class ServingSafety(pulumi.ComponentResource):
    """The model pre-download Job, the PodDisruptionBudget and the NetworkPolicies of one serving stack.

    Created before the servers, which depend on it: the policies are in place before the first pod
    starts, and the pods start once the download has completed.
    """

    job_names: pulumi.Output[list[str]]
    """Names of the Jobs (the pre-download when enabled)."""

    def __init__(self, name: str, args: ServingSafetyArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TOKEN, name, None, opts)
        plan, container = args["plan"], args["container"]
        config = plan.config
        child = pulumi.ResourceOptions(parent=self)
        jobs: list[pulumi.Output[str]] = []
        if config.warmup.enabled:
            labels = object_labels(config, WARMUP_COMPONENT)
            self._warmup = _job(
                f"{name}-warmup", f"{config.name}-warmup", plan, labels, warmup_pod(plan, container),
                deadline=config.warmup.timeout_seconds, backoff_limit=config.warmup.backoff_limit, wait=True,
                opts=child,
            )
            jobs.append(object_name(self._warmup))
        if wants_disruption_budget(plan):
            self._budget = k8s.policy.v1.PodDisruptionBudget(
                f"{name}-pdb",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=plan.deployment_name, namespace=config.namespace, labels=object_labels(config)
                ),
                spec=cast(Any, disruption_budget_spec(plan)),
                opts=child,
            )
        if config.network_policy.enabled:
            self._policies = [
                k8s.networking.v1.NetworkPolicy(
                    f"{name}-netpol-{suffix}",
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        name=f"{config.name}-{suffix}", namespace=config.namespace, labels=object_labels(config)
                    ),
                    spec=cast(Any, spec),
                    opts=child,
                )
                for suffix, spec in network_policy_specs(plan).items()
            ]
        self.job_names = pulumi.Output.all(*jobs)
        self.register_outputs({"job_names": self.job_names})


class LoadTest(pulumi.ComponentResource):
    """A Job running ``vllm bench serve`` against the Service once the servers are ready."""

    job_name: pulumi.Output[str]
    """Name of the Job; its log ends with the result JSON."""

    def __init__(self, name: str, args: LoadTestArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(LOAD_TEST_TOKEN, name, None, opts)
        plan = args["plan"]
        config = plan.config
        labels = {**args.get("labels", {}), **object_labels(config, LOAD_TEST_COMPONENT)}
        self._job = _job(
            f"{name}-job", f"{config.name}-loadtest", plan, labels, load_test_pod(plan, args["container"]),
            deadline=None, backoff_limit=0, wait=config.load_test.wait_for_completion,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.job_name = object_name(self._job)
        self.register_outputs({"job_name": self.job_name})
