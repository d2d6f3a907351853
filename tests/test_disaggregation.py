"""Prefill/decode pools, KV-cache tiers and the P/D router: rendered, then read by vLLM's and the router's own code.

The example stack ``Pulumi.disaggregated-pd.yaml`` (two pools over NIXL on InfiniBand, a CPU tier) is rendered
offline; each pool's ``--kv-transfer-config`` goes to vLLM 0.32's ``KVTransferConfig`` and its connector names to
``KVConnectorFactory``; each pool's whole command to ``vllm serve``'s parser; the router's command to
vllm-router's parser; the whole render to the policy pack over gRPC. Refusals are checked for their wording.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pulumi_vllm.capacity.disaggregation import disaggregation_notes, size_pools
from pulumi_vllm.capacity.planner import kv_cache_bytes_per_token
from pulumi_vllm.cli.render import RenderedStack, render_config, render_stack
from pulumi_vllm.config import ConfigError, parse_stack_config
from pulumi_vllm.engine.check import check_serve_args
from pulumi_vllm.engine.kv_transfer import GIB, kv_transfer_config, tier_tokens
from pulumi_vllm.engine.pd_router import pd_router_args
from pulumi_vllm.models.catalog import lookup
from pulumi_vllm.models.facts import ModelFacts
from pulumi_vllm.plan import plan_serving
from pulumi_vllm.policy.client import PolicyPackProcess, resources_from_registrations

REPO = Path(__file__).resolve().parents[1]
PACK = REPO / "policies"

BASE: dict[str, Any] = {
    "name": "pd",
    "namespace": "serving",
    "model": {"id": "meta-llama/Llama-3.1-70B-Instruct"},
    "engine": {"maxModelLen": 8192},
    "resources": {"gpuType": "H100-80GB"},
    "parallelism": {"gpusPerNode": 8},
    "cache": {"accessMode": "ReadWriteMany"},
    "disaggregation": {
        "prefill": {"replicas": 2, "tensorParallelSize": 4},
        "decode": {"replicas": 2, "tensorParallelSize": 4},
    },
}


def _with(**changes: Any) -> dict[str, Any]:
    values = json.loads(json.dumps(BASE))
    for key, value in changes.items():
        values[key] = value
    return values


@pytest.fixture(scope="module")
def example() -> RenderedStack:
    return render_stack(REPO, "disaggregated-pd")


def _docs(rendered: RenderedStack) -> dict[str, Any]:
    return {name: doc for name, doc in rendered.documents if isinstance(doc, dict)}


def _container(rendered: RenderedStack, deployment: str) -> dict[str, Any]:
    doc = _docs(rendered)[f"deployment-{deployment}.yaml"]
    container: dict[str, Any] = doc["spec"]["template"]["spec"]["containers"][0]
    return container


def _flag(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def test_the_example_renders_both_pools_and_the_pd_router(example: RenderedStack) -> None:
    kinds = {(doc["kind"], doc["metadata"]["name"]) for doc in _docs(example).values() if "kind" in doc}
    assert {("Deployment", "llama-pd-prefill"), ("Deployment", "llama-pd-decode"), ("Deployment", "llama-pd-router"),
            ("ServiceAccount", "llama-pd-router"), ("Role", "llama-pd-router"), ("RoleBinding", "llama-pd-router"),
            ("Service", "llama-pd-router")} <= kinds
    prefill = _docs(example)["deployment-llama-pd-prefill.yaml"]
    decode = _docs(example)["deployment-llama-pd-decode.yaml"]
    assert (prefill["spec"]["replicas"], decode["spec"]["replicas"]) == (2, 1)
    assert _flag(_container(example, "llama-pd-prefill")["args"], "--tensor-parallel-size") == "2"
    assert _flag(_container(example, "llama-pd-decode")["args"], "--tensor-parallel-size") == "4"
    outputs = dict(example.run.outputs)
    assert outputs["baseUrl"] == "http://llama-pd-router.vllm.svc.cluster.local/v1"
    assert outputs["gpus"] == 2 * 2 + 1 * 4


@pytest.mark.parametrize("pool", ["llama-pd-prefill", "llama-pd-decode"])
def test_each_pools_kv_transfer_config_is_accepted_by_vllm(example: RenderedStack, pool: str) -> None:
    from vllm.config.kv_transfer import KVTransferConfig
    from vllm.distributed.kv_transfer.kv_connector.factory import KVConnectorFactory

    value = json.loads(_flag(_container(example, pool)["args"], "--kv-transfer-config"))
    config = KVTransferConfig(**value)
    assert config.kv_connector == "MultiConnector" and config.is_kv_producer and config.is_kv_consumer
    children = value["kv_connector_extra_config"]["connectors"]
    assert [child["kv_connector"] for child in children] == ["NixlConnector", "OffloadingConnector"]
    for child in children:
        assert KVTransferConfig(**child).kv_role == "kv_both"
        assert child["kv_connector"] in KVConnectorFactory._registry  # a name vLLM 0.32 can load
    assert children[1]["kv_connector_extra_config"] == {"cpu_bytes_to_use": 64 * GIB}


@pytest.mark.parametrize("pool", ["llama-pd-prefill", "llama-pd-decode"])
def test_each_pools_command_parses_with_vllm(example: RenderedStack, pool: str) -> None:
    container = _container(example, pool)
    assert container["command"] == ["vllm", "serve"]
    parsed = check_serve_args(container["args"])
    assert parsed.kv_transfer_config.kv_connector == "MultiConnector"


def test_the_pools_pods_carry_nixl_and_rdma_settings(example: RenderedStack) -> None:
    container = _container(example, "llama-pd-decode")
    env = {item["name"]: item for item in container["env"]}
    assert env["VLLM_NIXL_SIDE_CHANNEL_HOST"]["valueFrom"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    assert env["VLLM_NIXL_SIDE_CHANNEL_PORT"]["value"] == "5600"
    assert env["UCX_TLS"]["value"] == "rc,cuda_copy,cuda_ipc"
    assert container["resources"]["requests"]["rdma/ib"] == container["resources"]["limits"]["rdma/ib"] == "1"
    assert "IPC_LOCK" in container["securityContext"]["capabilities"]["add"]


def test_the_cpu_tier_adds_its_gib_to_the_pods_memory() -> None:
    def memory(values: dict[str, Any]) -> int:
        rendered = render_config(values)
        request = _container(rendered, "pd-decode")["resources"]["requests"]["memory"]
        return int(request.removesuffix("Gi"))

    assert memory({**_with(), "kvCache": {"cpuGib": 48}}) - memory(_with()) == 48


def test_the_router_command_parses_with_the_routers_parser(example: RenderedStack) -> None:
    from vllm_router.launch_router import parse_router_args

    container = _container(example, "llama-pd-router")
    assert container["command"] == ["vllm-router"]
    args = parse_router_args(container["args"])
    assert args.vllm_pd_disaggregation and args.service_discovery
    assert args.prefill_selector == {"app.kubernetes.io/component": "server", "app.kubernetes.io/instance":
                                     "llama-pd-prefill", "app.kubernetes.io/name": "vllm"}
    assert args.decode_selector["app.kubernetes.io/instance"] == "llama-pd-decode"
    assert (args.service_discovery_port, args.service_discovery_namespace) == (8000, "vllm")
    assert (args.prefill_policy, args.decode_policy) == ("cache_aware", "round_robin")
    pod = _docs(example)["deployment-llama-pd-router.yaml"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "llama-pd-router"
    # The pods the selectors name are the pools' pods.
    labels = _docs(example)["deployment-llama-pd-prefill.yaml"]["spec"]["template"]["metadata"]["labels"]
    assert args.prefill_selector.items() <= labels.items()


def test_the_router_role_reads_only_pods() -> None:
    rendered = render_config(_with())
    role = _docs(rendered)["role-pd-router.yaml"]
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]
    binding = _docs(rendered)["rolebinding-pd-router.yaml"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "pd-router", "namespace": "serving"}]


def test_static_urls_parse_too() -> None:
    from vllm_router.launch_router import parse_router_args

    argv = pd_router_args(prefill_policy="cache_aware", decode_policy="round_robin",
                          prefill_urls=["http://127.0.0.1:1"], decode_urls=["http://127.0.0.1:2"])
    args = parse_router_args(argv[1:])
    assert args.prefill_urls == [("http://127.0.0.1:1", None)] and args.decode_urls == ["http://127.0.0.1:2"]
    with pytest.raises(ValueError, match="selectors or at least one prefill"):
        pd_router_args(prefill_policy="random", decode_policy="random")


def test_a_kv_tier_alone_uses_the_offloading_connector_and_a_disk_tier_its_emptydir() -> None:
    from vllm.config.kv_transfer import KVTransferConfig

    rendered = render_config({"name": "tiered", "model": {"id": "Qwen/Qwen3-8B"}, "resources": {"gpuType": "L40S"},
                              "kvCache": {"cpuGib": 32, "disk": {"sizeGib": 200}}})
    container = _container(rendered, "tiered")
    value = json.loads(_flag(container["args"], "--kv-transfer-config"))
    assert KVTransferConfig(**value).kv_connector == "OffloadingConnector"
    assert value["kv_connector_extra_config"] == {
        "cpu_bytes_to_use": 32 * GIB, "spec_name": "TieringOffloadingSpec",
        "secondary_tiers": [{"type": "fs", "root_dir": "/var/cache/vllm-kv"}],
    }
    check_serve_args(container["args"])
    assert container["resources"]["requests"]["ephemeral-storage"] == "200Gi"
    assert {"name": "kv-disk", "mountPath": "/var/cache/vllm-kv"} in container["volumeMounts"]
    pod = _docs(rendered)["deployment-tiered.yaml"]["spec"]["template"]["spec"]
    assert {"name": "kv-disk", "emptyDir": {"sizeLimit": "200Gi"}} in pod["volumes"]
    assert not any(item["name"].startswith(("UCX_", "VLLM_NIXL")) for item in container["env"])


def test_lmcache_pools_produce_and_consume() -> None:
    from vllm.config.kv_transfer import KVTransferConfig

    config = parse_stack_config(_with(disaggregation={**BASE["disaggregation"], "connector": "lmcache"}))
    roles = {role: KVTransferConfig(**(kv_transfer_config(pool) or {})) for role, pool in config.pools.items()}
    assert roles["prefill"].is_kv_producer and not roles["prefill"].is_kv_consumer
    assert roles["decode"].is_kv_consumer and not roles["decode"].is_kv_producer
    assert {cfg.kv_connector for cfg in roles.values()} == {"LMCacheConnectorV1"}


@pytest.mark.parametrize(("values", "expected"), [
    (_with(disaggregation={**BASE["disaggregation"], "transport": "rdma"}),
     "pulumi-vllm:disaggregation.transport: 'rdma' is not accepted: network.infiniband is false"),
    (_with(disaggregation={**BASE["disaggregation"], "decodePolicy": "power_of_two",
                           "decode": {"replicas": 1}}),
     "decodePolicy 'power_of_two' needs at least 2 decode replicas"),
    (_with(disaggregation={"prefill": {"tensorParallelSize": 3}, "decode": {"tensorParallelSize": 4}}),
     "pulumi-vllm:disaggregation.prefill.tensorParallelSize: "),
    (_with(disaggregation={"prefill": {"tensorParallelSize": 0}}),
     "pulumi-vllm:disaggregation.prefill.tensorParallelSize: 0 is not accepted"),
    (_with(disaggregation={"prefill": {"tensorParallelSize": 4}}),
     "(set capacity.check to 'warning' to deploy anyway) (for the decode pool, disaggregation.decode)"),
    (_with(engine={"maxModelLen": 8192, "extraArgs": ["--kv-offloading-size", "8"]}),
     "pulumi-vllm:engine.extraArgs: '--kv-offloading-size' is not accepted: the stack writes the KV connector"),
    (_with(engine={"maxModelLen": 8192, "extraArgs": ["--kv-transfer-config", "{}"]}),
     "pulumi-vllm:engine.extraArgs: ['--kv-transfer-config', '{}'] is not accepted: it gives --kv-transfer-config"),
    (_with(disaggregation={"prefill": {"tensorParallelSize": 8, "pipelineParallelSize": 2},
                           "decode": {"tensorParallelSize": 4}}),
     "pulumi-vllm:disaggregation.prefill: a pool larger than one node is not accepted"),
    (_with(disaggregation={**BASE["disaggregation"], "inputTokens": 8000}),
     "inputTokens and outputTokens describe the workload together"),
    ({"model": {"id": "Qwen/Qwen3-8B"}, "kvCache": {"disk": {"sizeGib": 10}}}, "set cpuGib as well"),
    ({"model": {"id": "Qwen/Qwen3-8B"}, "disaggregation": {"prefill": {"replicas": 2}}},
     "pulumi-vllm:disaggregation.prefill: replicas 2 cannot share a ReadWriteOnce model cache across nodes"),
    (_with(router={"extraArgs": ["--decode-policy", "random"]}),
     "pulumi-vllm:router.extraArgs: '--decode-policy' is set by the P/D router command itself"),
])
def test_what_cannot_work_is_refused_naming_the_key(values: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        render_config(values)
    assert expected in str(caught.value)


def test_tier_tokens_match_the_published_kv_size_per_token() -> None:
    # NVIDIA's "Mastering LLM Techniques: Inference Optimization" gives Llama 2 7B's KV cache in 16-bit as
    # 2 x 32 layers x 4096 hidden x 2 bytes = 0.5 MiB per token ("~2 GB" for a 4096-token sequence):
    # https://developer.nvidia.com/blog/mastering-llm-techniques-inference-optimization/
    llama2 = ModelFacts(num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32, head_dim=128,
                        hidden_size=4096, vocab_size=32000)  # meta-llama/Llama-2-7b-hf's config.json
    assert kv_cache_bytes_per_token(llama2) == 512 * 1024
    assert tier_tokens(2.0, kv_cache_bytes_per_token(llama2), 1) == 4096
    # A tier stores every rank's share: tensor parallel 2 halves the bytes per rank, not the tokens.
    assert tier_tokens(2.0, kv_cache_bytes_per_token(llama2, 2), 2) == 4096
    # Llama 3.1 70B (80 layers, 8 KV heads of 128): 320 KiB per token in 16-bit, so 64 GiB hold 209,715 tokens.
    llama70 = lookup("meta-llama/Llama-3.1-70B-Instruct")
    assert kv_cache_bytes_per_token(llama70) == 320 * 1024
    assert tier_tokens(64.0, kv_cache_bytes_per_token(llama70, 4), 4) == 209_715


def test_the_planner_sizes_each_pool_and_says_when_pd_does_not_pay() -> None:
    config = parse_stack_config(_with(kvCache={"cpuGib": 64}, model={"id": "RedHatAI/Llama-3.3-70B-Instruct-FP8-dynamic"},
                                      disaggregation={
        **BASE["disaggregation"], "inputTokens": 8000, "outputTokens": 200,
        "prefill": {"replicas": 2, "tensorParallelSize": 2}, "decode": {"replicas": 1, "tensorParallelSize": 4},
    }))
    pools = size_pools(config, plan_serving)
    assert pools["decode"].gpus_per_server == 4 and pools["prefill"].gpus_per_server == 2
    assert pools["decode"].tier_tokens_per_server == 209_715
    # Four GPUs hold more KV cache than two: the decode pool, which keeps every running sequence, gets more.
    assert (pools["decode"].kv_tokens_per_server or 0) > 2 * (pools["prefill"].kv_tokens_per_server or 0)
    assert pools["prefill"].capacity_requests_per_s and pools["decode"].capacity_requests_per_s
    notes = disaggregation_notes(config, pools, plan_serving(config).facts)
    assert any("binds" in note for note in notes)
    assert any("NIXL over TCP" in note for note in notes)
    assert not any("dense model below" in note for note in notes)
    small = parse_stack_config({**_with(), "model": {"id": "Qwen/Qwen3-8B"},
                                "disaggregation": {**BASE["disaggregation"], "inputTokens": 500, "outputTokens": 500}})
    small_notes = disaggregation_notes(small, size_pools(small, plan_serving), plan_serving(small).facts)
    assert any("dense model below 20B" in note for note in small_notes)
    assert any("below the 10:1" in note for note in small_notes)


@pytest.fixture(scope="module")
def pack() -> Iterator[PolicyPackProcess]:
    process = PolicyPackProcess(PACK, project="pulumi-vllm", stack="test", stack_config={"pulumi-vllm:name": "t"})
    process.start()
    try:
        yield process
    finally:
        process.close()


def test_the_policy_pack_passes_the_example(pack: PolicyPackProcess, example: RenderedStack) -> None:
    pack.configure(None)
    violations = pack.analyze_all(resources_from_registrations(example.run.registrations))
    assert [(v.policy_name, v.detail) for v in violations if v.enforcement_level == "mandatory"] == []
    assert [v.policy_name for v in violations] == []


def test_every_rendered_object_is_valid_for_its_kind(example: RenderedStack) -> None:
    from schemas import validate_object

    objects = [doc for doc in _docs(example).values() if "kind" in doc]
    assert len(objects) >= 12
    for doc in objects:
        validate_object(doc)  # strict: Kubernetes' own schemas


def test_the_render_summary_shows_both_pools(example: RenderedStack) -> None:
    from pulumi_vllm.render.summary import summary_lines

    lines = summary_lines(example)
    assert any(line.startswith("prefill:  2 x 2 nvidia.com/gpu (tensor 2 x pipeline 1); 199,312 KV-cache tokens")
               for line in lines)
    assert any(line.startswith("decode:   1 x 4 nvidia.com/gpu") for line in lines)
    assert "gpus:     8 x nvidia.com/gpu in both pools" in lines
    assert "kv:       MultiConnector (nixl over rdma; CPU tier 64 GiB per server)" in lines


def test_efa_pods_request_the_adapter_and_nixl_uses_libfabric() -> None:
    from vllm.config.kv_transfer import KVTransferConfig

    rendered = render_config(_with(disaggregation={**BASE["disaggregation"], "transport": "efa", "efaResourceCount": 4}))
    container = _container(rendered, "pd-prefill")
    value = json.loads(_flag(container["args"], "--kv-transfer-config"))
    assert KVTransferConfig(**value).get_from_extra_config("backends", None) == ["LIBFABRIC"]
    assert container["resources"]["limits"]["vpc.amazonaws.com/efa"] == "4"
    assert not any(item["name"] == "UCX_TLS" for item in container["env"])


def test_the_gateway_options_are_refused_with_disaggregation() -> None:
    with pytest.raises(ConfigError, match="router.gateway: not accepted with disaggregation"):
        render_config(_with(router={"gateway": {"inferencePools": True, "deployEndpointPicker": True}}))


_POOL_VALUE = st.one_of(st.integers(-1, 9), st.booleans(), st.text(max_size=4), st.none())


@settings(max_examples=60, deadline=None)
@given(pool=st.dictionaries(st.sampled_from(["replicas", "tensorParallelSize", "dataParallelSize", "gpuType",
                                             "enableExpertParallel", "extraArgs", "bogus"]), _POOL_VALUE, max_size=4),
       transport=st.sampled_from(["tcp", "rdma", "efa", "udp"]))
def test_any_pool_parses_or_fails_naming_a_key(pool: dict[str, Any], transport: str) -> None:
    raw = {"model": {"id": "Qwen/Qwen3-8B"}, "cache": {"accessMode": "ReadWriteMany"},
           "disaggregation": {"transport": transport, "prefill": pool}}
    try:
        config = parse_stack_config(raw)
    except ConfigError as error:
        lines = str(error).splitlines()
        body = lines[1:] if lines[0].startswith("invalid stack configuration") else lines
        assert all(line.strip().startswith("pulumi-vllm:") for line in body if line.startswith("  pulumi"))
        assert body and body[0].strip().startswith("pulumi-vllm:")
        return
    prefill = config.pools["prefill"]
    assert prefill.name == "vllm-prefill" and prefill.pool_role == "prefill"
    if "replicas" in pool:
        assert prefill.replicas == pool["replicas"]
    if "tensorParallelSize" in pool and pool["tensorParallelSize"] is not None:
        assert prefill.parallelism.tensor_parallel_size == int(pool["tensorParallelSize"])
