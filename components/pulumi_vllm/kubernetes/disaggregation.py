"""Prefill/decode disaggregation on Kubernetes: two pools of vLLM servers and vLLM's router in P/D mode.

:func:`serve_disaggregated` creates one :class:`~pulumi_vllm.kubernetes.serving.VllmServing` per pool
(``<name>-prefill`` and ``<name>-decode``: each its own Deployment, Service, disruption budget and
capacity plan) and a :class:`PdRouter`: a ServiceAccount with read access to the namespace's pods, the
router Deployment in ``--vllm-pd-disaggregation`` mode finding the pools' pods by their labels, its
disruption budget and Service. :func:`kv_container` adds what a server's KV connector and tiers need to
its container (the side-channel address, UCX settings, RDMA or EFA devices, the tiers' memory and disk);
the serving component calls it for every vLLM container, pooled or not (see docs/disaggregation.md).
"""

from collections.abc import Mapping
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s

from pulumi_vllm.config import ConfigError, StackConfig
from pulumi_vllm.config.base import PROJECT
from pulumi_vllm.engine.argv import VLLM_PORT
from pulumi_vllm.engine.pd_router import PD_MANAGED_FLAGS, pd_router_args
from pulumi_vllm.kubernetes.kv_pods import check_kv_flags
from pulumi_vllm.kubernetes.pod import object_labels, selector_labels
from pulumi_vllm.kubernetes.router import router_budget_and_service, router_container
from pulumi_vllm.plan import plan_serving

TOKEN = "pulumi-vllm:index:PdRouter"
PD_ROUTER_COMPONENT = "pd-router"

def check_disaggregation(config: StackConfig) -> None:
    """What a disaggregated stack cannot do, refused before anything is created (docs/disaggregation.md)."""
    spec = config.disaggregation
    if spec is None:
        return
    where = f"{PROJECT}:disaggregation"
    if config.models:
        raise ConfigError(f"{where}: not accepted with models: disaggregate one model per stack")
    if config.target != "kubernetes":
        raise ConfigError(f"{where}: the pools and the P/D router run on Kubernetes; target {config.target!r} has none")
    if config.engine.kind != "vllm":
        raise ConfigError(f"{where}: engine.kind {config.engine.kind!r} is not accepted: the pools are vLLM servers")
    if config.adapters:
        raise ConfigError(f"{where}: adapters are not accepted: the P/D router routes one model, not adapters")
    if config.router.gateway.http_route or config.router.gateway.inference_pools:
        raise ConfigError(f"{PROJECT}:router.gateway: not accepted with disaggregation yet: point your Gateway at the "
                          "P/D router's Service (baseUrl)")
    for arg in config.router.extra_args:
        if arg.split("=", 1)[0] in PD_MANAGED_FLAGS:
            raise ConfigError(f"{PROJECT}:router.extraArgs: {arg!r} is set by the P/D router command itself; "
                              "use disaggregation.prefillPolicy / decodePolicy")
    if spec.transport == "rdma" and not config.network.infiniband:
        raise ConfigError(
            f"{where}.transport: 'rdma' is not accepted: network.infiniband is false, so the stack says its GPU "
            "nodes have no RDMA device to request; set network.infiniband: true (and network.rdmaResourceName to "
            "your device plugin's resource) or use transport 'tcp'"
        )
    if spec.transport == "efa" and config.cloud is not None and config.cloud.provider != "aws":
        raise ConfigError(
            f"{where}.transport: 'efa' is not accepted: EFA is AWS's adapter and cloud.provider is "
            f"{config.cloud.provider!r}; use 'rdma' (with network.infiniband) or 'tcp'"
        )
    check_kv_flags(config)
    for role, pool in config.pools.items():
        check_kv_flags(pool)
        if plan_serving(pool).topology.multi_node:
            raise ConfigError(
                f"{where}.{role}: a pool larger than one node is not accepted: its servers would be Ray groups whose "
                "workers carry the pool's labels, and the P/D router would send requests to workers that serve "
                "nothing; keep each pool's tensor x pipeline x data parallel GPUs within parallelism.gpusPerNode"
            )


def pool_selector(pool: StackConfig) -> dict[str, str]:
    """The labels the P/D router discovers a pool's serving pods by."""
    return selector_labels(pool.name)


def pd_router_name(config: StackConfig) -> str:
    """Name of the P/D router's Deployment, Service, ServiceAccount and Role."""
    return f"{config.name}-router"


def pd_router_container(config: StackConfig) -> dict[str, Any]:
    """The P/D router container: discovery of both pools in the namespace, the pools' policies, metrics."""
    spec = config.disaggregation
    if spec is None:
        raise ValueError("not a disaggregated stack")
    argv = pd_router_args(
        prefill_policy=spec.prefill_policy,
        decode_policy=spec.decode_policy,
        prefill_selector=pool_selector(config.pools["prefill"]),
        decode_selector=pool_selector(config.pools["decode"]),
        namespace=config.namespace,
        worker_port=VLLM_PORT,
        extra_args=config.router.extra_args,
    )
    return router_container(config, argv)


def pd_router_pod(config: StackConfig) -> dict[str, Any]:
    """The P/D router's pod template: its own ServiceAccount (the router lists and watches pods)."""
    return {
        "metadata": {"labels": object_labels(config, PD_ROUTER_COMPONENT)},
        "spec": {
            "serviceAccountName": pd_router_name(config),
            "automountServiceAccountToken": True,
            "enableServiceLinks": False,
            "containers": [pd_router_container(config)],
            "topologySpreadConstraints": [{
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": selector_labels(config.name, PD_ROUTER_COMPONENT)},
            }],
        },
    }


POD_READER_RULES: list[dict[str, Any]] = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]
"""What the router's Kubernetes discovery reads: the pods of its namespace, nothing else."""


class PdRouter(pulumi.ComponentResource):
    """vLLM's router in P/D mode in front of a disaggregated model, with the read access its discovery needs."""

    base_url: pulumi.Output[str]
    """In-cluster base URL of the OpenAI API through the router."""

    def __init__(self, name: str, args: Mapping[str, Any], opts: pulumi.ResourceOptions | None = None) -> None:
        config = args["config"]
        if not isinstance(config, StackConfig) or config.disaggregation is None:
            raise ConfigError(f"{PROJECT}:disaggregation: PdRouter needs a disaggregated stack config")
        super().__init__(TOKEN, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        router = config.router
        labels = object_labels(config, PD_ROUTER_COMPONENT)
        metadata = k8s.meta.v1.ObjectMetaArgs(name=pd_router_name(config), namespace=config.namespace, labels=labels)
        selector = selector_labels(config.name, PD_ROUTER_COMPONENT)
        self._account = k8s.core.v1.ServiceAccount(f"{name}-sa", metadata=metadata, opts=child)
        self._role = k8s.rbac.v1.Role(f"{name}-role", metadata=metadata, rules=cast(Any, POD_READER_RULES), opts=child)
        self._binding = k8s.rbac.v1.RoleBinding(
            f"{name}-binding", metadata=metadata,
            role_ref=cast(Any, {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": pd_router_name(config)}),
            subjects=cast(Any, [{"kind": "ServiceAccount", "name": pd_router_name(config),
                                 "namespace": config.namespace}]),
            opts=child,
        )
        self._deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment", metadata=metadata,
            spec=cast(Any, {"replicas": router.replicas, "selector": {"matchLabels": selector},
                            "template": pd_router_pod(config)}),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self._binding]),
        )
        self._budget, self._service = router_budget_and_service(self, name, metadata, selector, router, self._deployment)
        port = "" if router.service_port == 80 else f":{router.service_port}"
        self.base_url = pulumi.Output.from_input(
            f"http://{pd_router_name(config)}.{config.namespace}.svc.cluster.local{port}/v1"
        )
        self.register_outputs({"base_url": self.base_url})


def serve_disaggregated(config: StackConfig, opts: pulumi.ResourceOptions | None) -> dict[str, Any]:
    """Both pools and the P/D router of a disaggregated stack; the stack's outputs."""
    from pulumi_vllm.kubernetes.serving import VllmServing

    check_disaggregation(config)  # before anything is registered
    servings = {role: VllmServing(pool.name, {"config": pool}, opts) for role, pool in config.pools.items()}
    router = PdRouter(f"{config.name}-router", {"config": config}, opts)
    return {
        "baseUrl": router.base_url,
        "servedModelName": servings["decode"].served_model_name,
        "gpus": pulumi.Output.all(*(serving.gpus for serving in servings.values())).apply(sum),
        "poolUrls": {role: serving.base_url for role, serving in servings.items()},
    }
