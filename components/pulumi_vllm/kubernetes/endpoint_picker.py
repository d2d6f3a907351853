"""The Gateway API Inference Extension's endpoint picker (EPP) for an InferencePool (docs/routing.md).

An inference gateway (an Envoy-based Gateway with the extension) asks the endpoint picker, over Envoy's
external-processing gRPC protocol on port 9002, which pod of an ``InferencePool`` should serve each request.
:class:`EndpointPicker` creates one for a model group's pool, as the extension's ``inferencepool`` chart lays
it out (``config/charts/inferencepool/templates/epp-deployment.yaml``, ``epp-config.yaml`` and ``rbac.yaml`` of
kubernetes-sigs/gateway-api-inference-extension): a ConfigMap with the scheduling plugins, a ServiceAccount with
a Role that reads the pool, its pods and the objectives, the Deployment of the pinned image
(``--pool-name <pool> --config-file /config/plugins.yaml``; gRPC 9002, gRPC health 9003, metrics 9090) and its
Service. The plugins score each pod by prefix-cache hits (``prefix-cache-scorer``), load (``queue-scorer`` and
``kv-cache-utilization-scorer``, from vLLM's ``vllm:num_requests_waiting`` and ``vllm:kv_cache_usage_perc``) and,
for a group with adapters, whether the adapter is loaded (``lora-affinity-scorer``).
"""

import json
from collections.abc import Mapping
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s

TOKEN = "pulumi-vllm:index:EndpointPicker"

EPP_VERSION = "v1.6.0"
"""The extension release: the InferencePool CRD the tests validate against (``../shared/crds``) is v1.6.0's."""
EPP_IMAGE = f"registry.k8s.io/gateway-api-inference-extension/epp:{EPP_VERSION}"
EPP_GRPC_PORT = 9002
EPP_HEALTH_PORT = 9003
EPP_METRICS_PORT = 9090
CONFIG_FILE = "plugins.yaml"

POOL_READER_RULES: list[dict[str, Any]] = [
    {"apiGroups": ["inference.networking.k8s.io"], "resources": ["inferencepools"], "verbs": ["get", "watch", "list"]},
    {"apiGroups": ["inference.networking.x-k8s.io"], "resources": ["inferenceobjectives", "inferencemodelrewrites"],
     "verbs": ["get", "watch", "list"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "watch", "list"]},
]
"""What the picker reads in its namespace: its pool, the pool's pods, and the objectives naming the pool."""


def endpoint_picker_name(pool: str) -> str:
    """Name of a pool's picker (Deployment, Service, ConfigMap, ServiceAccount, Role)."""
    return f"{pool}-epp"


def plugins_config(lora: bool) -> dict[str, Any]:
    """The picker's ``EndpointPickerConfig``: prefix-cache-aware and load-aware scoring, LoRA affinity with adapters."""
    scorers = [("queue-scorer", 2), ("kv-cache-utilization-scorer", 2), ("prefix-cache-scorer", 3)]
    if lora:
        scorers.append(("lora-affinity-scorer", 2))
    return {
        "apiVersion": "inference.networking.x-k8s.io/v1alpha1",
        "kind": "EndpointPickerConfig",
        "plugins": [{"type": "single-profile-handler"}, *({"type": name} for name, _ in scorers),
                    {"type": "max-score-picker"}],
        "schedulingProfiles": [{
            "name": "default",
            "plugins": [*({"pluginRef": name, "weight": weight} for name, weight in scorers),
                        {"pluginRef": "max-score-picker"}],
        }],
    }


def epp_args(pool: str) -> list[str]:
    """The picker's command-line flags, as the extension's chart passes them."""
    return ["--pool-name", pool, "--zap-encoder", "json", "--log-level", "error", "--config-file", f"/config/{CONFIG_FILE}"]


def epp_pod(pool: str, labels: Mapping[str, str], image: str = EPP_IMAGE) -> dict[str, Any]:
    """The picker's pod template."""
    def grpc_probe() -> dict[str, Any]:
        return {"grpc": {"port": EPP_HEALTH_PORT, "service": "inference-extension"}, "initialDelaySeconds": 5,
                "periodSeconds": 10}

    name = endpoint_picker_name(pool)
    return {
        "metadata": {"labels": dict(labels)},
        "spec": {
            "serviceAccountName": name,
            # As long as the longest graceful stop of the pool's pods, so requests in flight keep their picker.
            "terminationGracePeriodSeconds": 130,
            "containers": [{
                "name": "epp",
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "args": epp_args(pool),
                "ports": [
                    {"name": "grpc", "containerPort": EPP_GRPC_PORT},
                    {"name": "grpc-health", "containerPort": EPP_HEALTH_PORT},
                    {"name": "metrics", "containerPort": EPP_METRICS_PORT},
                ],
                "livenessProbe": grpc_probe(),
                "readinessProbe": grpc_probe(),
                "env": [{"name": "NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}],
                "volumeMounts": [{"name": "plugins-config", "mountPath": "/config"}],
                "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"memory": "2Gi"}},
                "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                                    "seccompProfile": {"type": "RuntimeDefault"}},
            }],
            "volumes": [{"name": "plugins-config", "configMap": {"name": name}}],
        },
    }


class EndpointPicker(pulumi.ComponentResource):
    """The inference extension's endpoint picker for one InferencePool, with the read access it needs."""

    service_name: pulumi.Output[str]
    """The picker's Service, which the InferencePool's ``endpointPickerRef`` names."""

    def __init__(self, name: str, args: Mapping[str, Any], opts: pulumi.ResourceOptions | None = None) -> None:
        pool, namespace = str(args["pool"]), str(args["namespace"])
        labels = {**dict(args.get("labels") or {}), "app.kubernetes.io/component": "endpoint-picker"}
        selector = {"app.kubernetes.io/name": "vllm-epp", "app.kubernetes.io/instance": pool}
        super().__init__(TOKEN, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        object_name = endpoint_picker_name(pool)
        metadata = k8s.meta.v1.ObjectMetaArgs(name=object_name, namespace=namespace, labels={**labels, **selector})
        self._config = k8s.core.v1.ConfigMap(
            f"{name}-config", metadata=metadata,
            data={CONFIG_FILE: json.dumps(plugins_config(bool(args.get("lora"))), indent=2)}, opts=child,
        )
        self._account = k8s.core.v1.ServiceAccount(f"{name}-sa", metadata=metadata, opts=child)
        self._role = k8s.rbac.v1.Role(f"{name}-role", metadata=metadata, rules=cast(Any, POOL_READER_RULES), opts=child)
        self._binding = k8s.rbac.v1.RoleBinding(
            f"{name}-binding", metadata=metadata,
            role_ref=cast(Any, {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": object_name}),
            subjects=cast(Any, [{"kind": "ServiceAccount", "name": object_name, "namespace": namespace}]), opts=child,
        )
        self._deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment", metadata=metadata,
            spec=cast(Any, {"replicas": 1, "selector": {"matchLabels": selector},
                            "template": epp_pod(pool, {**labels, **selector}, str(args.get("image") or EPP_IMAGE))}),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self._binding, self._config]),
        )
        self._service = k8s.core.v1.Service(
            f"{name}-service", metadata=metadata,
            spec=cast(Any, {"selector": selector, "ports": [
                {"name": "grpc-ext-proc", "port": EPP_GRPC_PORT, "targetPort": "grpc", "protocol": "TCP",
                 "appProtocol": "http2"},
                {"name": "metrics", "port": EPP_METRICS_PORT, "targetPort": "metrics", "protocol": "TCP"},
            ]}),
            opts=child,
        )
        self.service_name = pulumi.Output.from_input(object_name)
        self.register_outputs({"service_name": self.service_name})
