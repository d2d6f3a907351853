"""Finding and parsing vLLM commands in any Kubernetes workload (workload.py)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from schemas import CRD_FILES, crd_schema, validate_object

from pulumi_vllm.engine.workload import (
    canonical_flag,
    container_commands,
    count,
    expand_kubernetes,
    find_commands,
    pod_gpus,
    pulumi_type,
    read_workload,
    split_script,
    vllm_containers,
)

MANIFESTS = Path(__file__).resolve().parent / "manifests"


def manifest(filename: str, kind: str) -> dict[str, Any]:
    """The first document of ``kind`` in a test manifest file."""
    documents = [d for d in yaml.safe_load_all((MANIFESTS / filename).read_text()) if d]
    return next(d for d in documents if d["kind"] == kind)


def workload_of(document: dict[str, Any]) -> Any:
    return read_workload(pulumi_type(document["apiVersion"], document["kind"]), document)


@pytest.mark.parametrize("path", sorted(MANIFESTS.glob("*.yaml")), ids=lambda path: path.name)
def test_hand_written_manifests_are_valid_kubernetes_objects(path: Path) -> None:
    documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
    assert documents
    for document in documents:
        key = (document["apiVersion"], document["kind"])
        if key in CRD_FILES:
            # Strict CRD schema, without re-checking the (large) schema itself on every call.
            schema = crd_schema(*key)
            jsonschema.validators.validator_for(schema)(schema).validate(document)
        else:
            validate_object(document)  # strict: an unknown field fails, as on the API server


def test_vllm_serve_with_positional_model_and_every_flag_spelling() -> None:
    found = find_commands(
        ["vllm", "serve", "Qwen/Qwen3-8B", "--tensor_parallel_size=4", "-pp", "2", "--trust-remote-code",
         "--max-model-len", "8192", "--enforce-eager"]
    )
    (command,) = found.vllm
    assert command.mode == "serve"
    assert command.model == "Qwen/Qwen3-8B"
    assert (command.tensor_parallel_size, command.pipeline_parallel_size, command.data_parallel_size) == (4, 2, 1)
    assert command.value("--max_model_len") == "8192"
    assert command.options["--trust-remote-code"] is None
    assert command.has("--enforce-eager")
    assert not found.ray_head and not found.ray_worker


def test_model_flag_and_module_entrypoints() -> None:
    server = find_commands(["python3", "-m", "vllm.entrypoints.openai.api_server", "--model", "m/a", "-tp", "8"]).vllm[0]
    assert (server.mode, server.model, server.tensor_parallel_size) == ("serve", "m/a", 8)
    batch = find_commands(["python", "-u", "-m", "vllm.entrypoints.openai.run_batch", "-i", "in", "-o", "out",
                           "--model", "m/b"]).vllm[0]
    assert (batch.mode, batch.model, batch.value("--input-file")) == ("batch", "m/b", "in")
    subcommand = find_commands(["vllm", "run-batch", "--model=m/c"]).vllm[0]
    assert (subcommand.mode, subcommand.model, subcommand.program) == ("batch", "m/c", ("vllm", "run-batch"))
    cli_main = find_commands(["python3", "-m", "vllm.entrypoints.cli.main", "serve", "m/d"]).vllm[0]
    assert (cli_main.mode, cli_main.model) == ("serve", "m/d")
    assert find_commands(["python3", "-m", "http.server"]).vllm == ()
    assert find_commands(["vllm", "--version"]).vllm == ()


def test_shell_scripts_with_separators_wrappers_and_comments() -> None:
    script = """
    set -e  # stop on the first error
    pip list | grep vllm; echo "it's starting" && \\
    cd /tmp && exec env -i HF_HOME=/cache nohup vllm serve org/model \\
        --tensor-parallel-size 2   # two GPUs
    """
    commands = split_script(script)
    assert ["set", "-e"] in commands
    assert ["echo", "it's starting"] in commands
    found = find_commands(["/bin/bash", "-lc", script])
    (command,) = found.vllm
    assert (command.model, command.tensor_parallel_size) == ("org/model", 2)


def test_ray_head_script_then_vllm_serve() -> None:
    head = manifest("ray-head-worker.yaml", "StatefulSet")
    found = container_commands(head["spec"]["template"]["spec"]["containers"][0])
    assert found.ray_head and not found.ray_worker
    (command,) = found.vllm
    assert (command.model, command.tensor_parallel_size, command.pipeline_parallel_size) == (
        "Qwen/Qwen2.5-72B-Instruct", 4, 2)
    assert command.value("--distributed-executor-backend") == "ray"
    worker = find_commands(["/bin/bash", "-c", "ray start --address=head:6379 --block"])
    assert worker.ray_worker and not worker.ray_head and worker.vllm == ()


def test_leaderworkerset_helper_script_roles() -> None:
    lws = workload_of(manifest("lws-llama-405b.yaml", "LeaderWorkerSet"))
    leader, worker = lws.groups
    leader_commands = container_commands(leader.containers[0])
    assert leader_commands.ray_head
    assert leader_commands.vllm[0].pipeline_parallel_size == 2  # written --pipeline_parallel_size
    assert container_commands(worker.containers[0]).ray_worker


def test_image_entrypoint_is_vllm_serve_when_only_args_are_given() -> None:
    container = {"image": "docker.io/vllm/vllm-openai:v0.32.0", "args": ["m/x", "--tensor-parallel-size", "2"]}
    assert container_commands(container).vllm[0].tensor_parallel_size == 2
    assert container_commands({**container, "args": []}).vllm == ()
    assert container_commands(container, image_entrypoint=False).vllm == ()
    assert container_commands({**container, "image": "python:3.11"}).vllm == ()


def test_raycluster_pods_without_a_command_do_not_count_as_servers() -> None:
    cluster = workload_of(manifest("raycluster-too-few-gpus.yaml", "RayCluster"))
    servers = vllm_containers(cluster)
    assert [(t.group.role, t.name) for t in servers] == [("head", "ray-head")]


def test_kubernetes_and_shell_variable_expansion() -> None:
    env = {"MODEL": "org/m", "TP": "2"}
    assert expand_kubernetes("$(MODEL) $(UNSET) $$(MODEL)", env) == "org/m $(UNSET) $(MODEL)"
    container = {
        "command": ["sh", "-c", "vllm serve $MODEL --tensor-parallel-size ${TP} --api-key $(KEY)"],
        "env": [{"name": "MODEL", "value": "org/m"}, {"name": "TP", "value": "2"},
                {"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
    }
    (command,) = container_commands(container).vllm
    assert (command.model, command.tensor_parallel_size, command.value("--api-key")) == ("org/m", 2, "$(KEY)")
    unknown = find_commands(["vllm", "serve", "m", "--tensor-parallel-size", "$(TP)"]).vllm[0]
    assert unknown.tensor_parallel_size is None


def test_describe_hides_the_api_key() -> None:
    command = find_commands(["vllm", "serve", "m", "--api-key", "sk-1", "--api_key=sk-2"]).vllm[0]
    assert "sk-1" not in command.describe() and "sk-2" not in command.describe()
    assert command.describe().startswith("vllm serve m --api-key REDACTED")


@pytest.mark.parametrize(
    ("value", "expected"),
    [(2, 2), (2.0, 2), ("3", 3), ("3.0", 3), (None, None), ("04da6b54-80e4", None), (True, None), (1.5, None)],
)
def test_count(value: Any, expected: Any) -> None:
    assert count(value) == expected
    assert count(None, 7) == 7


def test_pod_gpus_sum_containers_limits_first_and_init_containers_at_most() -> None:
    spec = {
        "containers": [
            {"resources": {"limits": {"nvidia.com/gpu": 2.0}, "requests": {"nvidia.com/gpu": 2}}},
            {"resources": {"requests": {"amd.com/gpu": "1"}}},
            {"resources": {"limits": {"cpu": "4"}}},
        ],
        "initContainers": [{"resources": {"limits": {"nvidia.com/gpu": 8}}}],
    }
    assert pod_gpus(spec) == 8
    spec["initContainers"] = []
    assert pod_gpus(spec) == 3
    assert pod_gpus({"containers": [{"resources": {"limits": {"nvidia.com/gpu": "unknown"}}}]}) is None


def test_read_workload_kinds_and_gpu_totals() -> None:
    deployment = workload_of(manifest("api-server-deployment.yaml", "Deployment"))
    assert (deployment.kind, deployment.namespace, deployment.replicas, deployment.total_gpus()) == (
        "Deployment", "inference", 2, 4)
    lws = workload_of(manifest("lws-llama-405b.yaml", "LeaderWorkerSet"))
    assert [(g.role, g.pods, g.gpus_per_pod) for g in lws.groups] == [("leader", 1, 8), ("worker", 1, 8)]
    assert lws.multi_pod and lws.gpus_per_copy() == 16
    job = workload_of(manifest("batch-job.yaml", "Job"))
    assert (job.kind, job.total_gpus()) == ("Job", 1)
    cluster = workload_of(manifest("raycluster-too-few-gpus.yaml", "RayCluster"))
    assert [(g.role, g.pods) for g in cluster.groups] == [("head", 1), ("worker group gpu", 1)]
    assert cluster.total_gpus() == 4
    autoscaled = {**cluster_spec(max_replicas=3), "enableInTreeAutoscaling": True}
    scaled = read_workload("kubernetes:ray.io/v1:RayCluster", {"metadata": {"name": "c"}, "spec": autoscaled})
    assert (scaled.gpus_per_copy(), scaled.total_gpus()) == (2, 6)
    cron = read_workload(
        "kubernetes:batch/v1:CronJob",
        {"metadata": {"name": "nightly"}, "spec": {"jobTemplate": {"spec": {"parallelism": 2, "template": {
            "spec": {"containers": [{"resources": {"limits": {"nvidia.com/gpu": 1}}}]}}}}}},
    )
    assert cron.total_gpus() == 2
    pod = read_workload("kubernetes:core/v1:Pod", {"metadata": {"name": "p", "labels": {"a": "b"}},
                                                   "spec": {"containers": []}})
    assert (pod.groups[0].labels, pod.total_gpus()) == ({"a": "b"}, 0)
    assert read_workload("kubernetes:core/v1:Service", {}) is None


def cluster_spec(max_replicas: int) -> dict[str, Any]:
    gpu_pod = {"spec": {"containers": [{"resources": {"limits": {"nvidia.com/gpu": 1}}}]}}
    return {
        "headGroupSpec": {"template": {"spec": {"containers": [{}]}}},
        "workerGroupSpecs": [{"groupName": "g", "replicas": 1, "numOfHosts": 2, "maxReplicas": max_replicas,
                              "template": gpu_pod}],
    }


def test_pulumi_type_tokens() -> None:
    assert pulumi_type("v1", "Pod") == "kubernetes:core/v1:Pod"
    assert pulumi_type("leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet") == (
        "kubernetes:leaderworkerset.x-k8s.io/v1:LeaderWorkerSet")


MODELS = st.sampled_from(["meta-llama/Llama-3.1-8B-Instruct", "Qwen/Qwen3-8B", "facebook/opt-125m"])
SIZES = st.integers(min_value=1, max_value=64)


@st.composite
def spelled(draw: st.DrawFn, flag: str, alias: str, value: int) -> list[str]:
    """``flag`` with ``value`` in one of the spellings vLLM accepts."""
    name = draw(st.sampled_from([flag, flag.replace("-", "_").replace("__", "--"), alias]))
    return [f"{name}={value}"] if draw(st.booleans()) and name.startswith("--") else [name, str(value)]


@given(data=st.data(), model=MODELS, tensor=SIZES, pipeline=SIZES)
def test_every_way_of_writing_a_server_parses_the_same(data: st.DataObject, model: str, tensor: int,
                                                       pipeline: int) -> None:
    flags = data.draw(spelled("--tensor-parallel-size", "-tp", tensor)) + data.draw(
        spelled("--pipeline-parallel-size", "-pp", pipeline))
    extra = data.draw(st.sampled_from([[], ["--trust-remote-code"], ["--max-model-len", "4096"]]))
    form = data.draw(st.sampled_from(["vllm", "module", "shell", "env-exec", "script"]))
    if form == "vllm":
        argv = ["vllm", "serve", model, *flags, *extra]
    elif form == "module":
        argv = ["python3", "-m", "vllm.entrypoints.openai.api_server", "--model", model, *extra, *flags]
    else:
        line = shlex.join(["vllm", "serve", model, *flags, *extra])
        if form == "env-exec":
            line = f"HF_HUB_OFFLINE=0 exec {line}"
        if form == "script":
            line = f"ray start --head --port=6379\nsleep 10 && {line} ; echo done"
        argv = ["/bin/sh", "-c", line]
    (command,) = find_commands(argv).vllm
    assert (command.model, command.tensor_parallel_size, command.pipeline_parallel_size) == (model, tensor, pipeline)


@given(st.text(alphabet=st.characters(codec="ascii"), max_size=200))
def test_split_script_never_fails(script: str) -> None:
    commands = split_script(script)
    assert all(command and all(isinstance(word, str) for word in command) for command in commands)
    find_commands(["sh", "-c", script])


@given(st.from_regex(r"--[a-z][a-z_-]{0,20}", fullmatch=True))
def test_canonical_flags_use_dashes(flag: str) -> None:
    canonical = canonical_flag(flag)
    assert "_" not in canonical and canonical.startswith("--")
    assert canonical_flag(canonical) == canonical
