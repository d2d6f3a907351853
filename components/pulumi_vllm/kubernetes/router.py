"""One endpoint for many models: vLLM's router in front of a stack's model groups (docs/routing.md).

:class:`VllmRouter` creates, for the stack's models (one or several): a headless Service per model
group and per LoRA adapter (their DNS names resolve to the ready serving pods), the router Deployment
(two replicas by default: the router in Inference-Gateway mode and its registration loop, which
registers each ready pod under the model's served name), a PodDisruptionBudget, the router's Service
(API and metrics ports), and, when asked, a Gateway API ``HTTPRoute`` to it and an ``InferencePool``
per model. No Kubernetes API access is needed (no ServiceAccount token, no RBAC): the pods are found
through DNS. :func:`serve_models` composes the models' servings, the one GPU quota of the namespace,
and the router.
"""

from collections.abc import Mapping
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s

from pulumi_vllm.config import ConfigError, StackConfig
from pulumi_vllm.config.base import PROJECT
from pulumi_vllm.config.component_args import stack_config_from_args
from pulumi_vllm.config.routing import RouterSpec
from pulumi_vllm.engine.argv import VLLM_PORT
from pulumi_vllm.engine.router import (
    ROUTER_METRICS_PORT,
    ROUTER_PORT,
    WorkerGroup,
    registrar_command,
    registrar_env,
    router_args,
)
from pulumi_vllm.kubernetes.pod import CONTAINER_PORT_NAME, object_labels, selector_labels
from pulumi_vllm.kubernetes.serving_args import VllmServingArgs
from pulumi_vllm.plan import plan_serving

TOKEN = "pulumi-vllm:index:VllmRouter"

ROUTER_COMPONENT = "router"
GATEWAY_API_VERSION = "gateway.networking.k8s.io/v1"
INFERENCE_POOL_API_VERSION = "inference.networking.k8s.io/v1"


def members(config: StackConfig) -> dict[str, StackConfig]:
    """The model groups of a stack: the ``models`` entries, or the stack itself when it serves one model."""
    return dict(config.models) if config.models else {config.name: config}


def served_name(config: StackConfig) -> str:
    """The model id the router routes to one group (the served model name)."""
    return config.model.served_model_name or config.model.id


def workers_service_name(member: StackConfig) -> str:
    """The headless Service whose DNS name resolves to one group's ready serving pods."""
    return f"{member.name}-workers"


def adapter_service_name(member: StackConfig, index: int) -> str:
    """The headless Service giving the group's pods a second DNS name for one adapter."""
    return f"{member.name}-adapter-{index}"


def router_name(config: StackConfig) -> str:
    """Name of the router's Deployment, Service and disruption budget."""
    return f"{config.name}-router"


def worker_groups(config: StackConfig) -> list[WorkerGroup]:
    """What the registration loop registers: each group's pods under its served name and each adapter's name."""
    groups = []
    for member in members(config).values():
        domain = f"{member.namespace}.svc.cluster.local"
        groups.append(WorkerGroup(served_name(member), f"{workers_service_name(member)}.{domain}", VLLM_PORT))
        for index, adapter in enumerate(member.adapters, start=1):
            service = f"{adapter_service_name(member, index)}.{domain}"
            groups.append(WorkerGroup(adapter, service, VLLM_PORT, host="{ip_dashed}." + service))
    return groups


def check_router(config: StackConfig) -> None:
    """Refuse what the router cannot front: targets other than Kubernetes, multi-node groups, clashing model names."""
    if config.target != "kubernetes":
        raise ConfigError(f"{PROJECT}:router.enabled: the router runs on Kubernetes; target {config.target!r} has none")
    seen: dict[str, str] = {}
    for key, member in members(config).items():
        if member.engine.kind != "vllm":
            raise ConfigError(
                f"{PROJECT}:models.{key}.engine.kind: {member.engine.kind!r} is not accepted behind the router: it "
                "registers vLLM workers on port 8000 and reads vLLM's metrics; use vllm, or serve this model in its "
                "own stack"
            )
        if plan_serving(member).topology.multi_node:
            raise ConfigError(
                f"{PROJECT}:router.enabled: model group {key!r} spans several pods (Ray); only its head serves, "
                "and the router registers every pod of a group: serve it without the router"
            )
        for name in (served_name(member), *member.adapters):
            if name in seen:
                where = f"adapters.{name}" if name in member.adapters else "model.servedModelName"
                raise ConfigError(
                    f"{PROJECT}:models.{key}.{where}: {name!r} is not accepted: it is also served by "
                    f"models.{seen[name]}; the router routes by name, so names must be unique across the stack: "
                    f"set models.{key}.{where} to another name"
                )
            seen[name] = key


def router_container(config: StackConfig, argv: list[str] | None = None) -> dict[str, Any]:
    """The router container (Inference-Gateway mode, the stack's policy, metrics on their own port).

    ``argv`` replaces the command line (the prefill/decode router's); image, ports, probes, resources and
    the hardened security context stay the same for every router.
    """
    spec = config.router
    if argv is None:
        argv = router_args(spec.policy, extra_args=spec.extra_args)

    def probe(path: str, **extra: int) -> dict[str, Any]:
        return {"httpGet": {"path": path, "port": "http"}, "periodSeconds": 10, **extra}

    return {
        "name": "router",
        "image": spec.image,
        "command": argv[:1],
        "args": argv[1:],
        "ports": [
            {"name": "http", "containerPort": ROUTER_PORT, "protocol": "TCP"},
            {"name": "metrics", "containerPort": ROUTER_METRICS_PORT, "protocol": "TCP"},
        ],
        "readinessProbe": probe("/readiness"),
        "livenessProbe": probe("/liveness", failureThreshold=3),
        "resources": {
            "requests": {"cpu": spec.cpu_request, "memory": spec.memory_request},
            "limits": {"memory": spec.memory_limit},
        },
        "securityContext": _hardened(),
    }


def registrar_container(config: StackConfig) -> dict[str, Any]:
    """The registration loop beside the router: same image, Python's standard library only."""
    env = registrar_env(worker_groups(config), config.router.refresh_seconds)
    return {
        "name": "register-workers",
        "image": config.router.image,
        "command": registrar_command(),
        "env": [{"name": name, "value": value} for name, value in sorted(env.items())],
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "64Mi"}},
        "securityContext": _hardened(),
    }


def _hardened() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def router_pod(config: StackConfig) -> dict[str, Any]:
    """The router's pod template (no Kubernetes API token: discovery is by DNS)."""
    return {
        "metadata": {"labels": object_labels(config, ROUTER_COMPONENT)},
        "spec": {
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "containers": [router_container(config), registrar_container(config)],
            # Spread the router pods, so one node going away leaves one serving.
            "topologySpreadConstraints": [
                {
                    "maxSkew": 1,
                    "topologyKey": "kubernetes.io/hostname",
                    "whenUnsatisfiable": "ScheduleAnyway",
                    "labelSelector": {"matchLabels": selector_labels(config.name, ROUTER_COMPONENT)},
                }
            ],
        },
    }


def http_route_spec(config: StackConfig) -> dict[str, Any]:
    """An HTTPRoute sending every path of the gateway's listeners to the router Service."""
    gateway = config.router.gateway
    parents = []
    for ref in gateway.parent_refs:
        parent: dict[str, Any] = {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": ref.name}
        if ref.namespace:
            parent["namespace"] = ref.namespace
        if ref.section_name:
            parent["sectionName"] = ref.section_name
        parents.append(parent)
    spec: dict[str, Any] = {
        "parentRefs": parents,
        "rules": [
            {
                "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                "backendRefs": [{"name": router_name(config), "port": config.router.service_port}],
            }
        ],
    }
    if gateway.hostnames:
        spec["hostnames"] = list(gateway.hostnames)
    return spec


def inference_pool_spec(config: StackConfig, member: StackConfig) -> dict[str, Any]:
    """An InferencePool of one model group's serving pods, picked by the gateway's endpoint picker."""
    gateway = config.router.gateway
    from pulumi_vllm.kubernetes.endpoint_picker import endpoint_picker_name

    picker = endpoint_picker_name(member.name) if gateway.deploy_endpoint_picker else gateway.endpoint_picker
    return {
        "selector": {"matchLabels": selector_labels(member.name)},
        "targetPorts": [{"number": VLLM_PORT}],
        "endpointPickerRef": {
            "name": picker,
            "port": {"number": gateway.endpoint_picker_port},
        },
    }


def router_budget_and_service(
    parent: pulumi.Resource, name: str, metadata: k8s.meta.v1.ObjectMetaArgs, selector: dict[str, str],
    spec: RouterSpec, deployment: k8s.apps.v1.Deployment,
) -> tuple[k8s.policy.v1.PodDisruptionBudget, k8s.core.v1.Service]:
    """A router's disruption budget (at most one router pod down at a time, whatever the replica count) and its
    Service (API and metrics ports), children of ``parent``; every router (the one of many models, the P/D one)."""
    budget = k8s.policy.v1.PodDisruptionBudget(
        f"{name}-pdb", metadata=metadata,
        spec=cast(Any, {"maxUnavailable": 1, "selector": {"matchLabels": selector}}),
        opts=pulumi.ResourceOptions(parent=parent),
    )
    service = k8s.core.v1.Service(
        f"{name}-service",
        metadata=metadata,
        spec=cast(Any, {
            "type": spec.service_type,
            "selector": selector,
            "ports": [
                {"name": "http", "port": spec.service_port, "targetPort": "http", "protocol": "TCP"},
                {"name": "metrics", "port": ROUTER_METRICS_PORT, "targetPort": "metrics", "protocol": "TCP"},
            ],
        }),
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[deployment]),
    )
    return budget, service


class VllmRouter(pulumi.ComponentResource):
    """vLLM's router in front of a stack's models, with the Services it registers pods from.

    Its inputs are the stack config's keys, as :class:`VllmServing`'s are: the ``router`` section, the
    ``namespace`` and the model groups (``models`` entries in ``config``, or the one model). The models'
    servings are separate components (``VllmServing`` per model, with the same names), which the router
    finds through the headless Services it creates.
    """

    base_url: pulumi.Output[str]
    """In-cluster base URL of the OpenAI API through the router."""
    models: pulumi.Output[list[str]]
    """Every model name the router routes (served model names and adapter names)."""

    def __init__(self, name: str, args: VllmServingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        # Validation comes before registration so bad input creates nothing, not even this component.
        config = stack_config_from_args(args)
        check_router(config)
        super().__init__(TOKEN, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        spec = config.router
        labels = object_labels(config, ROUTER_COMPONENT)
        namespace = config.namespace
        self._services = []
        for member in members(config).values():
            names = [workers_service_name(member)]
            names += [adapter_service_name(member, index) for index in range(1, len(member.adapters) + 1)]
            for service in names:
                self._services.append(self._headless(f"{name}-{service}", service, member, child))
        metadata = k8s.meta.v1.ObjectMetaArgs(name=router_name(config), namespace=namespace, labels=labels)
        selector = selector_labels(config.name, ROUTER_COMPONENT)
        self._deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=metadata,
            spec=cast(Any, {"replicas": spec.replicas, "selector": {"matchLabels": selector},
                            "template": router_pod(config)}),
            opts=child,
        )
        self._budget, self._service = router_budget_and_service(self, name, metadata, selector, spec, self._deployment)
        if spec.gateway.http_route:
            self._route = self._custom(f"{name}-http-route", GATEWAY_API_VERSION, "HTTPRoute", router_name(config),
                                       namespace, labels, http_route_spec(config), child)
        if spec.gateway.inference_pools:
            self._pools = [
                self._custom(f"{name}-{member.name}-pool", INFERENCE_POOL_API_VERSION, "InferencePool", member.name,
                             namespace, object_labels(member), inference_pool_spec(config, member), child)
                for member in members(config).values()
            ]
            if spec.gateway.deploy_endpoint_picker:
                from pulumi_vllm.kubernetes.endpoint_picker import EndpointPicker

                self._pickers = [
                    EndpointPicker(f"{name}-{member.name}-epp", {
                        "pool": member.name, "namespace": namespace, "labels": object_labels(member),
                        "lora": bool(member.adapters or member.lora.runtime_loading),
                    }, child)
                    for member in members(config).values()
                ]
        port = "" if spec.service_port == 80 else f":{spec.service_port}"
        self.base_url = pulumi.Output.from_input(
            f"http://{router_name(config)}.{namespace}.svc.cluster.local{port}/v1"
        )
        self.models = pulumi.Output.from_input([group.model_id for group in worker_groups(config)])
        self.register_outputs({"base_url": self.base_url, "models": self.models})

    def _headless(self, name: str, service: str, member: StackConfig, opts: pulumi.ResourceOptions) -> Any:
        return k8s.core.v1.Service(
            name,
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=service, namespace=member.namespace, labels=object_labels(member, ROUTER_COMPONENT)
            ),
            spec=cast(Any, {
                "clusterIP": "None",
                "selector": selector_labels(member.name),
                "ports": [{"name": "http", "port": VLLM_PORT, "targetPort": CONTAINER_PORT_NAME, "protocol": "TCP"}],
            }),
            opts=opts,
        )

    @staticmethod
    def _custom(name: str, api_version: str, kind: str, object_name: str, namespace: str,
                labels: dict[str, str], spec: dict[str, Any], opts: pulumi.ResourceOptions) -> Any:
        return k8s.apiextensions.CustomResource(
            name, api_version=api_version, kind=kind,
            metadata=k8s.meta.v1.ObjectMetaArgs(name=object_name, namespace=namespace, labels=labels),
            spec=spec, opts=opts,
        )


def stack_gpus(config: StackConfig) -> int:
    """GPUs every model group's pods hold at once (serving and batch), for the one quota of the namespace."""
    return sum(plan_serving(member).gpus_at_once for member in members(config).values())


def models_quota_gpus(config: StackConfig) -> int:
    """The one GPU quota of a multi-model stack's namespace; refused when below what the models request together."""
    needed = stack_gpus(config)
    gpus = config.quota.gpus if config.quota.gpus is not None else needed
    if gpus < needed:
        raise ConfigError(f"{PROJECT}:quota.gpus: {gpus} is below the {needed} GPUs the stack's models request together")
    return gpus


def serve_models(config: StackConfig, opts: pulumi.ResourceOptions | None) -> Mapping[str, Any]:
    """Every model group's serving, one GPU quota for all of them, and the router when enabled; the outputs."""
    from pulumi_vllm.kubernetes.serving import VllmServing

    groups = members(config)
    if config.target != "kubernetes":
        raise ConfigError(f"{PROJECT}:models: several models per stack run on Kubernetes; target {config.target!r}")
    for member in list(groups.values())[1:] if config.models else []:
        for note in [*plan_serving(member).warnings]:
            pulumi.log.warn(f"models {member.name}: {note}")
    if config.router.enabled:
        check_router(config)  # before anything is registered
    workload = opts
    outputs: dict[str, Any] = {}
    if config.models and config.quota.enabled:
        from pulumi_vllm.kubernetes.gpu_quota import GpuQuota

        gpus = models_quota_gpus(config)
        quota = GpuQuota(
            f"{config.name}-gpu-quota",
            {"namespace": config.namespace, "gpus": gpus, "gpu_resource_name": config.resources.gpu_resource_name},
            opts,
        )
        workload = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[quota]))
        outputs["gpuQuota"] = gpus
    servings = {key: VllmServing(member.name, {"config": member}, workload) for key, member in groups.items()}
    if not config.models:
        serving = servings[config.name]
        outputs.update(
            {"baseUrl": serving.base_url, "servedModelName": serving.served_model_name, "gpus": serving.gpus}
        )
    else:
        outputs["gpus"] = pulumi.Output.all(*(serving.gpus for serving in servings.values())).apply(sum)
        outputs["modelUrls"] = {key: serving.base_url for key, serving in servings.items()}
        outputs["servedModelName"] = served_name(next(iter(groups.values())))
    if config.router.enabled:
        router = VllmRouter(f"{config.name}-router", {"config": config}, opts)
        outputs["baseUrl"] = router.base_url
        outputs["models"] = router.models
    elif config.models:
        outputs["baseUrl"] = outputs["modelUrls"][next(iter(groups))]
    return outputs
