"""The inference extension's endpoint picker beside the router's InferencePools: rendered and validated.

The two-model example stack with ``router.gateway.inferencePools`` and ``deployEndpointPicker`` is rendered;
every object is validated strictly (the InferencePool against the v1.6.0 CRD in ``../shared/crds``, the rest
against Kubernetes' schemas); each pool names its own picker's Service, each picker watches its own pool, and
the plugin configuration scores prefix-cache hits, load and, for the group with an adapter, LoRA affinity.
The picker is a Go binary of the pinned image: its flags follow the extension's chart and are not run here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from schemas import validate_object
from stacks import stack_file

from pulumi_vllm.cli.render import RenderedStack, render_config
from pulumi_vllm.config import ConfigError
from pulumi_vllm.kubernetes.endpoint_picker import EPP_IMAGE, EPP_VERSION

REPO = Path(__file__).resolve().parents[1]
GATEWAY = {"inferencePools": True, "deployEndpointPicker": True}


def _values(**gateway: Any) -> dict[str, Any]:
    stack = yaml.safe_load(stack_file("two-models-router").read_text())["config"]
    values = {key.split(":", 1)[1]: value for key, value in stack.items()}
    values["router"] = {**values.get("router", {}), "enabled": True, "gateway": {**GATEWAY, **gateway}}
    return values


def _objects(rendered: RenderedStack) -> list[dict[str, Any]]:
    return [doc for _, doc in rendered.documents if isinstance(doc, dict) and "kind" in doc]


def _named(rendered: RenderedStack, kind: str, name: str) -> dict[str, Any]:
    (found,) = [doc for doc in _objects(rendered) if doc["kind"] == kind and doc["metadata"]["name"] == name]
    return found


@pytest.fixture(scope="module")
def rendered() -> RenderedStack:
    return render_config(_values())


def test_every_picker_object_is_valid(rendered: RenderedStack) -> None:
    pickers = [doc for doc in _objects(rendered) if doc["metadata"]["name"].endswith("-epp")]
    assert sorted((doc["kind"], doc["metadata"]["name"]) for doc in pickers) == sorted(
        (kind, f"chat-{group}-epp") for group in ("llama", "qwen")
        for kind in ("ConfigMap", "ServiceAccount", "Role", "RoleBinding", "Deployment", "Service")
    )
    for doc in [*pickers, *(doc for doc in _objects(rendered) if doc["kind"] == "InferencePool")]:
        validate_object(doc)


@pytest.mark.parametrize("group", ["llama", "qwen"])
def test_each_pool_names_its_own_picker_which_watches_that_pool(rendered: RenderedStack, group: str) -> None:
    pool = _named(rendered, "InferencePool", f"chat-{group}")
    assert pool["spec"]["endpointPickerRef"] == {"name": f"chat-{group}-epp", "port": {"number": 9002}}
    service = _named(rendered, "Service", f"chat-{group}-epp")
    assert {"name": "grpc-ext-proc", "port": 9002, "targetPort": "grpc", "protocol": "TCP",
            "appProtocol": "http2"} in service["spec"]["ports"]
    deployment = _named(rendered, "Deployment", f"chat-{group}-epp")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == EPP_IMAGE and EPP_VERSION == "v1.6.0"
    args = container["args"]
    assert args[args.index("--pool-name") + 1] == f"chat-{group}"
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    role = _named(rendered, "Role", f"chat-{group}-epp")
    read = {(group_, resource) for rule in role["rules"] for group_ in rule["apiGroups"] for resource in rule["resources"]}
    assert {("", "pods"), ("inference.networking.k8s.io", "inferencepools")} <= read
    assert all(rule["verbs"] == ["get", "watch", "list"] for rule in role["rules"])


def test_the_plugins_score_prefix_load_and_lora_where_adapters_are(rendered: RenderedStack) -> None:
    def plugins(group: str) -> set[str]:
        config = yaml.safe_load(_named(rendered, "ConfigMap", f"chat-{group}-epp")["data"]["plugins.yaml"])
        assert config["kind"] == "EndpointPickerConfig"
        (profile,) = config["schedulingProfiles"]
        refs = {plugin["pluginRef"] for plugin in profile["plugins"]}
        assert refs <= {plugin["type"] for plugin in config["plugins"]}
        return refs

    load_and_prefix = {"queue-scorer", "kv-cache-utilization-scorer", "prefix-cache-scorer", "max-score-picker"}
    assert plugins("llama") == load_and_prefix | {"lora-affinity-scorer"}  # llama serves the sql adapter
    assert plugins("qwen") == load_and_prefix


@pytest.mark.parametrize(("gateway", "expected"), [
    ({"inferencePools": False}, "deployEndpointPicker picks endpoints of InferencePools"),
    ({"endpointPicker": "mine"}, "set endpointPicker (your own picker's Service) or deployEndpointPicker, not both"),
])
def test_contradictions_are_refused(gateway: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        render_config(_values(**gateway))
