"""The safety sections' objects: when each appears, schema-valid (strict), the hardened pods, the refusals,
and the Jobs' command lines accepted by the parsers of the tools that run them (``hf``, ``vllm bench serve``)."""

from __future__ import annotations

import argparse
from typing import Any

import pytest
from schemas import validate_object

from pulumi_vllm.cli import main
from pulumi_vllm.cli.render import RenderedStack, render_config
from pulumi_vllm.config import ConfigError, LoadTestSpec, parse_stack_config
from pulumi_vllm.engine.jobs import Repository, bench_serve_argv, download_command, hf_download_argv
from pulumi_vllm.kubernetes.safety_pods import check_safety, pod_security_level
from pulumi_vllm.plan import plan_serving

MODEL = {"id": "Qwen/Qwen2.5-7B-Instruct", "revision": "v1.0"}
BASE: dict[str, Any] = {"name": "qwen", "namespace": "ml", "model": MODEL}
SHARED = {"cache": {"accessMode": "ReadWriteMany"}}
MULTI_NODE = {
    "name": "big", "namespace": "ml", "model": {"id": "meta-llama/Llama-3.1-405B-Instruct-FP8"},
    "parallelism": {"tensorParallelSize": 8, "pipelineParallelSize": 2, "gpusPerNode": 8}, **SHARED,
}
ALL_ON: dict[str, Any] = {
    **BASE, **SHARED, "replicas": 2, "apiKey": "k", "hfToken": "t",
    "warmup": {"enabled": True, "adapters": ["org/lora@abc"]},
    "networkPolicy": {"enabled": True, "allowFromNamespaces": ["apps"], "egress": [{"cidr": "10.0.0.0/8", "ports": [443]}]},
    "security": {"runAsNonRoot": True},
    "loadTest": {"enabled": True},
    "availability": {"spreadAcrossZones": True, "priorityClassName": "vllm-inference"},
}


def objects(rendered: RenderedStack, kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in rendered.documents if isinstance(doc, dict) and doc.get("kind") == kind]


def by_name(rendered: RenderedStack, kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in objects(rendered, kind)}


@pytest.fixture(scope="module")
def all_on() -> RenderedStack:
    return render_config(ALL_ON)


# --- when each object appears -------------------------------------------------------------------


def test_one_replica_with_defaults_gets_no_new_objects() -> None:
    rendered = render_config(BASE)
    for kind in ("PodDisruptionBudget", "NetworkPolicy", "Job"):
        assert objects(rendered, kind) == [], kind


def test_a_budget_comes_with_a_second_replica_and_goes_with_it() -> None:
    assert len(objects(render_config({**BASE, **SHARED, "replicas": 2}), "PodDisruptionBudget")) == 1
    assert objects(render_config({**BASE, **SHARED, "replicas": 2, "availability": {"podDisruptionBudget": False}}),
                   "PodDisruptionBudget") == []
    assert len(objects(render_config({**BASE, "availability": {"podDisruptionBudget": True}}), "PodDisruptionBudget")) == 1


def test_everything_on_renders_schema_valid_objects(all_on: RenderedStack) -> None:
    assert set(by_name(all_on, "Job")) == {"qwen-warmup", "qwen-loadtest"}
    assert set(by_name(all_on, "NetworkPolicy")) == {"qwen-api", "qwen-egress"}
    assert len(objects(all_on, "PodDisruptionBudget")) == 1
    for kind in ("Job", "NetworkPolicy", "PodDisruptionBudget", "Deployment"):
        for document in objects(all_on, kind):
            validate_object(document)


def test_the_servers_and_the_batch_wait_for_the_download_and_the_load_test_for_the_servers() -> None:
    rendered = render_config({**ALL_ON, "batch": {"enabled": True, "inputPath": "/data/in.jsonl"}})
    registrations = {reg.type.rsplit(":", 1)[-1]: reg for reg in rendered.run.registrations if reg.type.startswith("pulumi-vllm")}
    kinds = {reg.urn: reg.type for reg in rendered.run.registrations}
    (warmup,) = [reg for reg in rendered.run.registrations if reg.type == "kubernetes:batch/v1:Job" and "warmup" in reg.name]
    # Pulumi expands a dependency on a component to its children: the download Job itself.
    assert warmup.urn in registrations["VllmServer"].dependencies
    assert warmup.urn in registrations["BatchInference"].dependencies
    load_test = {kinds.get(urn) for urn in registrations["LoadTest"].dependencies}
    assert {"kubernetes:apps/v1:Deployment", "kubernetes:core/v1:Service"} <= load_test
    assert "pulumi.com/skipAwait" not in (warmup.inputs["metadata"].get("annotations") or {})  # Pulumi waits for it


# --- the pods -----------------------------------------------------------------------------------


def test_the_default_pod_is_hardened_and_stops_gracefully() -> None:
    (deployment,) = objects(render_config(BASE), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert pod["securityContext"] == {"seccompProfile": {"type": "RuntimeDefault"}}
    assert container["lifecycle"] == {"preStop": {"exec": {"command": ["sleep", "10"]}}}
    argv = [*container["command"], *container["args"]]
    drain = int(argv[argv.index("--shutdown-timeout") + 1])
    # The kubelet's budget covers the pause and vLLM's drain.
    assert pod["terminationGracePeriodSeconds"] > 10 + drain
    assert "HF_HUB_OFFLINE" not in {item["name"] for item in container["env"]}
    assert pod_security_level(plan_serving(parse_stack_config(BASE))) == "baseline"


def test_non_root_moves_the_cache_out_of_root_and_gives_a_writable_tmp(all_on: RenderedStack) -> None:
    (deployment,) = objects(all_on, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {item["name"]: item.get("value") for item in container["env"]}
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    assert env["HF_HOME"] == "/cache/huggingface" and mounts[env["HF_HOME"]] == "model-cache"
    assert env["HOME"] == "/tmp" and mounts["/tmp"] == "tmp" and env["HF_HUB_OFFLINE"] == "1"
    assert pod["securityContext"]["fsGroup"] == 1000 and container["securityContext"]["runAsNonRoot"] is True
    assert pod["priorityClassName"] == "vllm-inference"
    assert [item["topologyKey"] for item in pod["topologySpreadConstraints"]] == [
        "kubernetes.io/hostname", "topology.kubernetes.io/zone"]
    assert pod_security_level(plan_serving(parse_stack_config(ALL_ON))) == "restricted"
    # The Jobs run in the same namespace: they meet the same level.
    for job in objects(all_on, "Job"):
        job_pod = job["spec"]["template"]["spec"]
        assert job_pod["securityContext"] == pod["securityContext"]
        assert job_pod["containers"][0]["securityContext"] == container["securityContext"]


def test_infiniband_keeps_ipc_lock_and_makes_the_pods_privileged_level() -> None:
    values = {**MULTI_NODE, "network": {"infiniband": True}}
    assert pod_security_level(plan_serving(parse_stack_config(values))) == "privileged"


# --- network policies ---------------------------------------------------------------------------


def test_no_listed_source_means_no_ingress_rule_rather_than_an_open_one() -> None:
    values = {**BASE, "networkPolicy": {"enabled": True, "monitoringNamespace": None}}
    (api,) = objects(render_config(values), "NetworkPolicy")
    assert api["spec"]["ingress"] == [] and api["spec"]["policyTypes"] == ["Ingress"]


def test_ray_ports_only_within_the_group_and_dns_always_allowed() -> None:
    rendered = render_config({**MULTI_NODE, "networkPolicy": {"enabled": True, "egress": []}})
    policies = by_name(rendered, "NetworkPolicy")
    assert set(policies) == {"big-api", "big-ray", "big-egress"}
    group = policies["big-ray"]["spec"]["podSelector"]
    assert policies["big-ray"]["spec"]["ingress"] == [{"from": [{"podSelector": group}]}]
    egress = policies["big-egress"]["spec"]["egress"]
    assert {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]} in egress
    assert {"to": [{"podSelector": group}]} in egress
    assert policies["big-api"]["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "ray-head"
    for policy in policies.values():
        validate_object(policy)


# --- refusals -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({**BASE, "model": {"id": "/models/m"}, "warmup": {"enabled": True}},
         "pulumi-vllm:warmup.enabled: true is not accepted: model.id '/models/m' is a path inside the container"),
        ({**MULTI_NODE, "availability": {"spreadAcrossZones": True}},
         "pulumi-vllm:availability.spreadAcrossZones: true is not accepted for a multi-node model"),
        ({**BASE, "model": {"id": "/root/m"}, "security": {"runAsNonRoot": True}},
         "pulumi-vllm:security.runAsNonRoot: true is not accepted with model.id '/root/m'"),
        ({**BASE, "warmup": {"enabled": True}, "engine": {"env": {"HF_HUB_OFFLINE": "0"}}},
         "pulumi-vllm:engine.env.HF_HUB_OFFLINE: is set by warmup itself"),
    ],
)
def test_refused_before_anything_is_created(
    values: dict[str, Any], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ConfigError) as error:
        check_safety(plan_serving(parse_stack_config(values)))
    assert str(error.value).startswith(message)
    # The program stops with the message before registering any resource; the render reports it as its own.
    with pytest.raises(ConfigError) as stopped:
        render_config(values)
    assert str(stopped.value).startswith(message)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"availability": {"terminationGracePeriodSeconds": 30}},
         ("pulumi-vllm:availability: terminationGracePeriodSeconds 30 does not cover the pre-stop pause (10 s) "
          "plus drainSeconds (45 s)")),
        ({"networkPolicy": {"egress": [{"cidr": "10.0.0.1/8"}]}},
         "pulumi-vllm:networkPolicy.egress[0].cidr: '10.0.0.1/8' is not accepted"),
        ({"warmup": {"adapters": ["lora"]}}, "pulumi-vllm:warmup.adapters: ['lora'] is not accepted"),
    ],
)
def test_bad_keys_are_named(section: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_stack_config({**BASE, **section})
    assert message in str(error.value)


def test_the_cli_refuses_with_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Any) -> None:
    assert main(["bench", "http://x/v1", "--model", "m", "--request-rate", "0", "--print"]) == 2
    assert "the request rate must be greater than 0" in capsys.readouterr().err


# --- the Jobs' command lines, parsed by their own tools -------------------------------------------


def hf_parse(argv: list[str]) -> dict[str, Any]:
    """Parse ``hf ...`` with the ``hf`` CLI's own (click) parser, without running the command."""
    cli = pytest.importorskip("huggingface_hub.cli.hf")
    group = cli.app
    assert argv[0] == "hf"
    context = group.make_context("hf", list(argv[1:]))
    name, command, rest = group.resolve_command(context, [*getattr(context, "_protected_args", []), *context.args])
    return dict(command.make_context(name, rest, parent=context).params)


def test_the_download_is_what_the_hf_cli_parses(all_on: RenderedStack) -> None:
    params = hf_parse(hf_download_argv(Repository("Qwen/Qwen2.5-7B-Instruct", "v1.0")))
    assert params["repo_id"] == "Qwen/Qwen2.5-7B-Instruct" and params["revision"] == "v1.0"
    assert params["token"] is None  # read from HF_TOKEN, never on the command line
    import click

    with pytest.raises(click.UsageError, match="No such option"):
        hf_parse(["hf", "download", "org/m", "--revison", "x"])
    job = by_name(all_on, "Job")["qwen-warmup"]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == download_command(
        [Repository("Qwen/Qwen2.5-7B-Instruct", "v1.0"), Repository("org/lora", "abc")])
    for line in container["command"][2].splitlines()[1:]:
        import shlex

        assert hf_parse(shlex.split(line))["repo_id"] in {"Qwen/Qwen2.5-7B-Instruct", "org/lora"}
    assert {item["name"] for item in container["env"]} >= {"HF_HOME", "HF_TOKEN"}


@pytest.mark.vllm
def test_the_load_test_is_what_vllm_bench_serve_parses() -> None:
    serve = pytest.importorskip("vllm.benchmarks.serve")
    parser = argparse.ArgumentParser()
    serve.add_cli_args(parser)
    spec = LoadTestSpec(request_rate=2.5, max_concurrency=8, input_len=100, output_len=20, num_prompts=7)
    argv = bench_serve_argv(spec, base_url="http://svc:80", model="org/m", served_model_name="m",
                            result_dir="/results", result_filename="r.json")
    assert argv[:3] == ["vllm", "bench", "serve"]
    parsed = parser.parse_args(argv[3:])
    assert (parsed.base_url, parsed.model, parsed.served_model_name) == ("http://svc:80", "org/m", "m")
    assert (parsed.random_input_len, parsed.random_output_len, parsed.num_prompts) == (100, 20, 7)
    assert (parsed.request_rate, parsed.max_concurrency, parsed.save_result) == (2.5, 8, True)
    assert (parsed.result_dir, parsed.result_filename, parsed.dataset_name) == ("/results", "r.json", "random")
