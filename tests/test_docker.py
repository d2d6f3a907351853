"""The Docker target: config rules, and the resources the program creates, under Pulumi's mock runtime."""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import pulumi_vllm.render.docker_files  # noqa: F401 - registers the Docker render files
from pulumi_vllm.cli.render import render_config, render_stack
from pulumi_vllm.config import ConfigError, parse_stack_config
from pulumi_vllm.docker import docker_containers, docker_gpus_per_host
from pulumi_vllm.docker.server import DockerVllmServer
from pulumi_vllm.plan import plan_serving
from pulumi_vllm.render.engine import REDACTED, SECRET_SIG, Registration
from pulumi_vllm.render.manifests import write_documents

REPO = Path(__file__).resolve().parents[1]
TOKEN = "hf_DOCKERTOKEN_5f4dcc3b5aa765d6"
API_KEY = "sk-DOCKERKEY-e99a18c428cb38d5"
CONTAINER = "docker:index/container:Container"
IMAGE = "docker:index/remoteImage:RemoteImage"
VOLUME = "docker:index/volume:Volume"
PROVIDER = "pulumi:providers:docker"

MODEL = {"id": "Qwen/Qwen2.5-7B-Instruct", "servedModelName": "qwen"}
ONE_HOST = {"hosts": [{"name": "local"}]}


def _docker_config(**docker: Any) -> dict[str, Any]:
    return {"name": "qwen", "target": "docker", "model": MODEL, "docker": {**ONE_HOST, **docker}}


def _of_type(rendered: Any, type_: str) -> list[Registration]:
    return [reg for reg in rendered.run.registrations if reg.type == type_]


def _one(rendered: Any, type_: str) -> Registration:
    found = _of_type(rendered, type_)
    assert len(found) == 1, [reg.name for reg in found]
    return found[0]


@pytest.fixture(scope="module")
def single() -> Any:
    return render_stack(
        REPO, "docker-single", env={"PULUMI_VLLM_SECRET_HF_TOKEN": TOKEN, "PULUMI_VLLM_SECRET_API_KEY": API_KEY}, secrets={"hfToken": None, "apiKey": None}
    )


# --- config rules ---------------------------------------------------------------------------


def test_docker_target_requires_the_docker_section() -> None:
    with pytest.raises(ConfigError, match="target 'docker' needs the docker section"):
        parse_stack_config({"target": "docker", "model": MODEL})


@pytest.mark.parametrize(
    ("docker", "message"),
    [
        ({"hosts": []}, "docker.hosts"),
        ({"hosts": [{"name": "a"}, {"name": "b", "address": "10.0.0.2"}]}, "hosts \\['a'\\] have no address"),
        ({"hosts": [{"name": "a", "address": "10.0.0.1"}, {"name": "a", "address": "10.0.0.2"}]}, "repeat"),
        ({"hosts": [{"name": "a", "dockerHost": "tcp://10.0.0.1:2375"}]}, "docker.hosts\\[0\\].dockerHost"),
        ({"hosts": [{"name": "a", "address": "gpu-a.example"}]}, "is not an IP address"),
        ({**ONE_HOST, "publishAddress": "localhost"}, "docker.publishAddress"),
        ({**ONE_HOST, "shmSize": "16Gi"}, "set ipcHost: false"),
        ({**ONE_HOST, "cacheVolume": "v", "cacheHostPath": "/data"}, "either cacheVolume or cacheHostPath"),
        ({**ONE_HOST, "cacheHostPath": "data/hf"}, "not an absolute path"),
        ({**ONE_HOST, "logMaxSize": "100MB"}, "docker.logMaxSize"),
        ({"hosts": [{"name": "a", "gpus": []}]}, "not a GPU list"),
    ],
)
def test_bad_docker_sections_name_the_key(docker: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_stack_config({"target": "docker", "model": MODEL, "docker": docker})


def test_docker_rejects_kubernetes_secret_refs_and_replicas() -> None:
    with pytest.raises(ConfigError, match="hfTokenSecret names a Kubernetes Secret"):
        parse_stack_config({**_docker_config(), "hfTokenSecret": {"name": "hf"}})
    with pytest.raises(ConfigError, match="replicas 2"):
        parse_stack_config({**_docker_config(), "replicas": 2})


def test_gpu_ids_from_yaml_integers_become_strings() -> None:
    config = parse_stack_config(_docker_config(hosts=[{"name": "a", "gpus": [0, 1]}]))
    assert config.docker is not None and config.docker.hosts[0].gpus == ["0", "1"]


def test_gpu_list_must_match_the_gpus_per_host() -> None:
    values = {
        **_docker_config(hosts=[{"name": "a", "gpus": ["0"]}]),
        "parallelism": {"tensorParallelSize": 2},
    }
    with pytest.raises(ConfigError, match=r"docker.hosts\[0\].gpus: \['0'\] is not accepted: each host runs 2 GPU"):
        plan_serving(parse_stack_config(values))


@settings(max_examples=60, deadline=None)
@given(
    tensor=st.sampled_from([1, 2, 4, 8]),
    pipeline=st.integers(min_value=1, max_value=4),
    hosts=st.integers(min_value=1, max_value=4),
)
def test_hosts_split_the_world_evenly_or_are_refused(tensor: int, pipeline: int, hosts: int) -> None:
    values = {
        "target": "docker",
        # No model facts: only the layout rules apply.
        "model": {"id": "example/unknown-model"},
        "parallelism": {"tensorParallelSize": tensor, "pipelineParallelSize": pipeline},
        "docker": {"hosts": [{"name": f"h{i}", "address": f"10.0.0.{i + 1}"} for i in range(hosts)]},
    }
    config = parse_stack_config(values)
    world = tensor * pipeline
    try:
        per_host = docker_gpus_per_host(config)
    except ConfigError as error:
        assert world % hosts and "docker.hosts" in str(error)
        return
    assert per_host * hosts == world
    try:
        plan = plan_serving(config)
    except ConfigError as error:
        # A tensor-parallel group would span hosts: refused, with the layout rule's message.
        assert per_host % tensor and "parallelism.tensorParallelSize" in str(error)
        return
    assert plan.topology.pods == hosts and plan.topology.gpus_per_pod == per_host


# --- one host, under the mock runtime -------------------------------------------------------


def test_single_host_creates_provider_image_volume_container(single: Any) -> None:
    provider = _one(single, PROVIDER)
    assert provider.inputs["host"] == "unix:///var/run/docker.sock"
    image = _one(single, IMAGE)
    assert image.inputs == {"name": "vllm/vllm-openai:v0.32.0", "keepLocally": True}
    volume = _one(single, VOLUME)
    assert volume.inputs["name"] == "hf-cache"
    assert volume.retain_on_delete is True
    container = _one(single, CONTAINER)
    for child in (image, volume, container):
        assert child.provider.startswith(provider.urn + "::")
    assert {reg.type for reg in single.run.registrations} == {
        PROVIDER, IMAGE, VOLUME, CONTAINER, "pulumi-vllm:index:DockerVllmServer",
    }


def test_single_host_container_inputs(single: Any) -> None:
    inputs = _one(single, CONTAINER).inputs
    assert inputs["name"] == "qwen-7b"
    assert inputs["entrypoints"] == ["vllm", "serve"]
    assert inputs["command"][0] == "Qwen/Qwen2.5-7B-Instruct"
    assert inputs["gpus"] == "device=0"
    assert inputs["ipcMode"] == "host" and "shmSize" not in inputs
    assert "networkMode" not in inputs
    assert inputs["ports"] == [{"internal": 8000.0, "external": 8000.0, "ip": "127.0.0.1"}]
    assert inputs["volumes"] == [{"volumeName": "hf-cache", "containerPath": "/root/.cache/huggingface"}]
    assert inputs["restart"] == "unless-stopped"
    assert inputs["logDriver"] == "json-file"
    assert inputs["logOpts"] == {"max-size": "100m", "max-file": "5"}
    check = inputs["healthcheck"]
    assert check["tests"][:2] == ["CMD", "python3"]
    assert "http://127.0.0.1:8000/health" in check["tests"][-1]
    assert check["startPeriod"] == "1800s" and check["retries"] == 3.0
    labels = {item["label"]: item["value"] for item in inputs["labels"]}
    assert labels["vllm.pulumi.com/image"] == "vllm/vllm-openai:v0.32.0"
    assert labels["vllm.pulumi.com/model"] == "Qwen/Qwen2.5-7B-Instruct"


def test_secrets_reach_the_container_only_inside_the_secret_envelope(single: Any, tmp_path: Path) -> None:
    container = _one(single, CONTAINER)
    envs = container.inputs["envs"]
    assert SECRET_SIG in envs
    assert f"HF_TOKEN={TOKEN}" in envs["value"] and f"VLLM_API_KEY={API_KEY}" in envs["value"]
    assert "HF_HOME=/root/.cache/huggingface" in envs["value"]
    assert "envs" in container.additional_secret_outputs
    written = write_documents(tmp_path / "out", single.documents)
    assert any(path.name == "compose.yaml" for path in written)
    for path in written:
        text = path.read_text()
        assert TOKEN not in text and API_KEY not in text, path
    resource_file = dict(single.documents)["docker/container-qwen-7b-container.yaml"]
    assert resource_file["inputs"]["envs"] == [REDACTED] * 3


def test_stack_outputs_point_at_the_published_port(single: Any) -> None:
    assert single.run.outputs["baseUrl"] == "http://127.0.0.1:8000/v1"
    assert single.run.outputs["servedModelName"] == "qwen2.5-7b-instruct"
    assert single.run.outputs["gpus"] == 1


def test_every_docker_resource_has_a_readable_file(single: Any) -> None:
    files = {name: doc for name, doc in single.documents if name.startswith("docker/")}
    docker_regs = [reg for reg in single.run.registrations if reg.type.startswith(("docker:", PROVIDER))]
    assert len(files) == len(docker_regs) == 4
    assert sorted(doc["type"] for doc in files.values()) == sorted(reg.type for reg in docker_regs)
    volume_file = next(doc for doc in files.values() if doc["type"] == VOLUME)
    assert volume_file["options"]["retainOnDelete"] is True
    # integers restored for reading
    container_file = next(doc for doc in files.values() if doc["type"] == CONTAINER)
    assert container_file["inputs"]["ports"][0]["external"] == 8000


def without_drain(argv: list[str]) -> list[str]:
    """A pod's vLLM command without its drain on SIGTERM, sized to the pod's grace period (Kubernetes only)."""
    at = argv.index("--shutdown-timeout")
    return argv[:at] + argv[at + 2:]


def test_container_runs_the_same_vllm_command_as_the_kubernetes_target() -> None:
    shared = {
        "name": "llm",
        "model": {"id": "meta-llama/Llama-3.1-8B-Instruct", "servedModelName": "llama"},
        "engine": {"dtype": "bfloat16", "maxModelLen": 8192, "extraArgs": ["--enable-prefix-caching"]},
        "parallelism": {"tensorParallelSize": 2},
    }
    kubernetes = render_config(shared)
    docker = render_config({**shared, "target": "docker", "docker": ONE_HOST})
    deployment = next(reg for reg in kubernetes.run.registrations if reg.type == "kubernetes:apps/v1:Deployment")
    pod_container = deployment.inputs["spec"]["template"]["spec"]["containers"][0]
    inputs = _one(docker, CONTAINER).inputs
    assert inputs["entrypoints"] + inputs["command"] == without_drain(pod_container["command"] + pod_container["args"])
    assert "--enable-prefix-caching" in inputs["command"]


def test_private_ipc_host_path_cache_all_gpus_and_wider_publish() -> None:
    rendered = render_config(
        _docker_config(
            ipcHost=False,
            shmSize="16Gi",
            cacheHostPath="/data/hf",
            publishAddress="0.0.0.0",
            port=9000,
            restart="always",
            logMaxSize="10m",
            logMaxFile=2,
        )
    )
    inputs = _one(rendered, CONTAINER).inputs
    assert inputs["shmSize"] == 16 * 1024 and "ipcMode" not in inputs
    assert inputs["volumes"] == [{"hostPath": "/data/hf", "containerPath": "/root/.cache/huggingface"}]
    assert _of_type(rendered, VOLUME) == []
    assert inputs["gpus"] == "all"
    assert inputs["ports"] == [{"internal": 8000.0, "external": 9000.0, "ip": "0.0.0.0"}]
    assert inputs["restart"] == "always" and inputs["logOpts"] == {"max-size": "10m", "max-file": "2"}
    assert "envs" in inputs and SECRET_SIG not in inputs["envs"]  # nothing secret, nothing wrapped
    assert rendered.run.outputs["baseUrl"] == "http://127.0.0.1:9000/v1"


def test_default_shm_is_two_gib_per_gpu_and_cache_protectable() -> None:
    rendered = render_config(
        {
            **_docker_config(ipcHost=False),
            "parallelism": {"tensorParallelSize": 4},
            "cache": {"protect": True, "retainOnDelete": False},
        }
    )
    assert _one(rendered, CONTAINER).inputs["shmSize"] == 8 * 1024
    volume = _one(rendered, VOLUME)
    assert volume.protect is True and volume.retain_on_delete is False
    assert volume.inputs["name"] == "qwen-hf-cache"


def test_cache_volume_survives_model_and_engine_changes() -> None:
    def volume(values: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        registration = _one(render_config(values), VOLUME)
        return registration.name, registration.inputs

    base = _docker_config()
    changed = {**base, "model": {"id": "meta-llama/Llama-3.1-8B-Instruct"}, "engine": {"maxModelLen": 4096}}
    assert volume(base) == volume(changed)


@pulumi.runtime.test
def test_component_takes_secret_arguments_into_the_env(mocks: Any) -> pulumi.Output:
    server = DockerVllmServer(
        "srv", {"config": _docker_config(), "api_key": pulumi.Output.secret("k-123"), "hf_token": "hf_abc"}
    )

    def check(values: list[Any]) -> None:
        base_url, envs = values
        assert base_url == "http://127.0.0.1:8000/v1"
        assert "VLLM_API_KEY=k-123" in envs and "HF_TOKEN=hf_abc" in envs
        recorded = mocks.one(CONTAINER).inputs["envs"]
        assert SECRET_SIG in recorded and recorded["value"] == envs

    return pulumi.Output.all(server.base_url, server._container.envs).apply(check)


def test_component_rejects_bad_config_before_registering_anything(mocks: Any) -> None:
    values = {**_docker_config(hosts=[{"name": "a", "gpus": ["0"]}]), "parallelism": {"tensorParallelSize": 2}}
    with pytest.raises(ConfigError, match=r"docker.hosts\[0\].gpus"):
        DockerVllmServer("srv", {"config": values})
    assert mocks.resources == []


# --- a Ray cluster across hosts, under the mock runtime -------------------------------------


@pytest.fixture(scope="module")
def two_hosts() -> Any:
    return render_stack(
        REPO, "docker-2host", env={"PULUMI_VLLM_SECRET_HF_TOKEN": TOKEN, "PULUMI_VLLM_SECRET_API_KEY": API_KEY}, secrets={"hfToken": None, "apiKey": None}
    )


def _containers_by_role(rendered: Any) -> dict[str, dict[str, Any]]:
    containers = {}
    for registration in _of_type(rendered, CONTAINER):
        labels = {item["label"]: item["value"] for item in registration.inputs["labels"]}
        containers[labels["app.kubernetes.io/component"]] = registration.inputs
    return containers


def _env(inputs: dict[str, Any]) -> dict[str, str]:
    return dict(item.split("=", 1) for item in inputs["envs"]["value"])


def test_two_hosts_get_one_provider_and_image_each(two_hosts: Any) -> None:
    providers = {reg.name: reg for reg in _of_type(two_hosts, PROVIDER)}
    assert {name: reg.inputs["host"] for name, reg in providers.items()} == {
        "llama-405b-gpu-a": "ssh://ops@10.0.0.11",
        "llama-405b-gpu-b": "ssh://ops@10.0.0.12",
    }
    images = _of_type(two_hosts, IMAGE)
    assert sorted(reg.provider.split("::")[-2] for reg in images) == sorted(providers)
    assert {reg.inputs["name"] for reg in images} == {"vllm/vllm-openai:v0.32.0"}
    containers = _of_type(two_hosts, CONTAINER)
    assert sorted(reg.provider.split("::")[-2] for reg in containers) == sorted(providers)
    assert _of_type(two_hosts, VOLUME) == []  # the cache is a host path here
    assert _one(two_hosts, "pulumi-vllm:index:DockerRayCluster").name == "llama-405b"


def _serve_argv(head_script: str) -> list[str]:
    """The command between the head script's serve markers (``<argv> &``)."""
    from pulumi_vllm.distributed import ray

    lines = head_script.splitlines()
    (line,) = lines[lines.index(ray.SERVE_BEGIN) + 1 : lines.index(ray.SERVE_END)]
    return shlex.split(line.removesuffix(" &"))


def test_ray_head_and_worker_containers(two_hosts: Any) -> None:
    from pulumi_vllm.distributed import ray
    from pulumi_vllm.engine.argv import engine_args_from_config, vllm_command

    containers = _containers_by_role(two_hosts)
    head, worker = containers["ray-head"], containers["ray-worker"]
    for inputs in (head, worker):
        assert inputs["networkMode"] == "host" and "ports" not in inputs
        assert inputs["ipcMode"] == "host" and inputs["gpus"] == "all"
        assert inputs["volumes"] == [{"hostPath": "/data/hf-cache", "containerPath": "/root/.cache/huggingface"}]
        assert inputs["entrypoints"] == ["bash", "-c"]
        assert "--num-gpus=8" in inputs["command"][0]
    # The head serves exactly what the one argv builder makes, with Ray as the executor backend,
    # on the publish address (the host network has no port mapping to narrow it).
    expected = vllm_command(engine_args_from_config(two_hosts.config, multi_node=True), host="127.0.0.1", port=8000)
    assert head["command"] == [ray.head_script(ray.head_start_command(8), expected.argv)]
    assert worker["command"] == [ray.worker_script(ray.worker_start_command(8), "${RAY_HEAD_HOST}")]
    serve = _serve_argv(head["command"][0])
    assert serve == expected.argv
    assert serve[serve.index("--distributed-executor-backend") + 1] == "ray"
    tensor = int(serve[serve.index("--tensor-parallel-size") + 1])
    pipeline = int(serve[serve.index("--pipeline-parallel-size") + 1])
    assert tensor * pipeline == 16 == two_hosts.run.outputs["gpus"]
    assert "healthcheck" in head and "healthcheck" not in worker
    assert "http://127.0.0.1:8000/health" in head["healthcheck"]["tests"][-1]


def test_every_host_advertises_its_own_address(two_hosts: Any) -> None:
    containers = _containers_by_role(two_hosts)
    head, worker = _env(containers["ray-head"]), _env(containers["ray-worker"])
    assert head["VLLM_HOST_IP"] == "10.0.0.11" and worker["VLLM_HOST_IP"] == "10.0.0.12"
    for env in (head, worker):
        assert env["RAY_HEAD_HOST"] == "10.0.0.11" and env["RAY_HEAD_PORT"] == "6379"
        assert env["RAY_EXPECTED_NODES"] == "2"
        assert env["RAY_NODE_WAIT_SECONDS"] == "900"  # parallelism.rayWaitTimeoutSeconds
        assert env["NCCL_SOCKET_IFNAME"] == env["GLOO_SOCKET_IFNAME"] == "eth0"  # network.ncclSocketIfname
        assert env["HF_TOKEN"] == TOKEN
    assert head["VLLM_API_KEY"] == API_KEY and "VLLM_API_KEY" not in worker


def test_two_host_secrets_stay_in_envelopes_and_out_of_files(two_hosts: Any, tmp_path: Path) -> None:
    for registration in _of_type(two_hosts, CONTAINER):
        assert SECRET_SIG in registration.inputs["envs"]
    for path in write_documents(tmp_path / "out", two_hosts.documents):
        text = path.read_text()
        assert TOKEN not in text and API_KEY not in text, path


def test_named_cache_volume_on_every_host() -> None:
    rendered = render_config(
        {
            "name": "llama",
            "target": "docker",
            "model": {"id": "meta-llama/Llama-3.1-70B-Instruct"},
            "parallelism": {"tensorParallelSize": 4, "pipelineParallelSize": 2},
            "docker": {
                "hosts": [
                    {"name": "a", "dockerHost": "ssh://u@10.1.0.1", "address": "10.1.0.1", "gpus": [0, 1, 2, 3]},
                    {"name": "b", "dockerHost": "ssh://u@10.1.0.2", "address": "10.1.0.2", "gpus": [4, 5, 6, 7]},
                ],
            },
        }
    )
    volumes = _of_type(rendered, VOLUME)
    assert [reg.inputs["name"] for reg in volumes] == ["llama-hf-cache", "llama-hf-cache"]
    assert len({reg.provider for reg in volumes}) == 2 and all(reg.retain_on_delete for reg in volumes)
    gpus = sorted(reg.inputs["gpus"] for reg in _of_type(rendered, CONTAINER))
    assert gpus == ["device=0,1,2,3", "device=4,5,6,7"]


def test_hosts_that_cannot_share_the_model_are_refused() -> None:
    values = {
        "target": "docker",
        "model": {"id": "meta-llama/Llama-3.1-405B-Instruct"},
        "parallelism": {"tensorParallelSize": 8, "pipelineParallelSize": 2},
        "docker": {"hosts": [{"name": f"h{i}", "address": f"10.0.0.{i + 1}"} for i in range(3)]},
    }
    with pytest.raises(ConfigError, match="3 hosts cannot share 16 GPUs"):
        render_config(values)


def test_ray_head_serves_what_the_kubernetes_ray_head_serves() -> None:
    shared = {
        "name": "big",
        "model": {"id": "meta-llama/Llama-3.1-70B-Instruct", "servedModelName": "llama-70b"},
        "engine": {"maxModelLen": 8192, "extraArgs": ["--enable-prefix-caching"]},
        "parallelism": {"tensorParallelSize": 4, "pipelineParallelSize": 2, "gpusPerNode": 4},
        "network": {"ncclSocketIfname": "eth1"},
    }
    kubernetes = render_config({**shared, "cache": {"accessMode": "ReadWriteMany"}})
    from pulumi_vllm.distributed import ray

    # The Kubernetes Ray head: the one pod template whose script holds the serve command.
    pod_containers = [
        container
        for reg in kubernetes.run.registrations
        if reg.type.startswith("kubernetes:") and "template" in reg.inputs.get("spec", {})
        for container in reg.inputs["spec"]["template"]["spec"]["containers"]
        if ray.SERVE_BEGIN in container["command"][-1]
    ]
    (pod_container,) = pod_containers
    hosts = [{"name": name, "address": f"10.2.0.{index + 1}"} for index, name in enumerate(("a", "b"))]
    # Bound to every interface on port 8000, the Docker head listens where the pod does.
    docker = render_config(
        {**shared, "target": "docker", "docker": {"hosts": hosts, "publishAddress": "0.0.0.0", "port": 8000}}
    )
    head = _containers_by_role(docker)["ray-head"]
    assert _serve_argv(head["command"][0]) == without_drain(_serve_argv(pod_container["command"][-1]))
    pod_env = {item["name"]: item.get("value") for item in pod_container["env"]}
    docker_env = _env(head) if SECRET_SIG in head["envs"] else dict(item.split("=", 1) for item in head["envs"])
    for name in ("RAY_EXPECTED_NODES", "RAY_HEAD_PORT", "RAY_NODE_WAIT_SECONDS", "NCCL_SOCKET_IFNAME", "GLOO_SOCKET_IFNAME"):
        assert docker_env[name] == pod_env[name], name


def test_infiniband_is_refused_on_docker() -> None:
    values = {
        "target": "docker",
        "model": {"id": "Qwen/Qwen2.5-7B-Instruct"},
        "network": {"infiniband": True},
        "docker": ONE_HOST,
    }
    with pytest.raises(ConfigError, match="network.infiniband"):
        plan_serving(parse_stack_config(values))


def test_render_command_writes_docker_files_and_compose(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pulumi_vllm.cli import main

    out = tmp_path / "rendered"
    assert main(["render", "--stack", "docker-single", "--out", str(out), "--project", str(REPO)]) == 0
    names = sorted(str(path.relative_to(out)) for path in out.rglob("*.yaml"))
    assert "compose.yaml" in names
    assert sorted(name for name in names if name.startswith("docker/")) == [
        "docker/container-qwen-7b-container.yaml",
        "docker/provider-qwen-7b-local.yaml",
        "docker/remoteimage-qwen-7b-local-image.yaml",
        "docker/volume-qwen-7b-local-cache.yaml",
    ]
    container = yaml.safe_load((out / "docker/container-qwen-7b-container.yaml").read_text())
    assert container["type"] == CONTAINER and container["inputs"]["gpus"] == "device=0"
    assert "rendered stack 'docker-single'" in capsys.readouterr().out


def test_worker_script_joins_the_head_the_docker_env_names(tmp_path: Path) -> None:
    """bash runs a worker container's command with its env; a stand-in ``ray`` prints what it was asked."""
    with socket.socket() as head_port:
        head_port.bind(("127.0.0.1", 0))
        head_port.listen()
        port = head_port.getsockname()[1]
        config = parse_stack_config(
            {
                "target": "docker",
                "model": {"id": "example/unknown-model"},
                "parallelism": {"pipelineParallelSize": 2},
                "docker": {
                    "hosts": [{"name": "head", "address": "127.0.0.1"}, {"name": "worker", "address": "127.0.0.2"}],
                    "rayPort": port,
                },
            }
        )
        plan = plan_serving(config)
        (worker,) = docker_containers(config, plan.topology, {})[1].containers
        fake_ray = tmp_path / "ray"
        fake_ray.write_text('#!/bin/sh\necho "ray $*"\n')
        fake_ray.chmod(0o755)
        result = subprocess.run(
            [*worker.entrypoint, *worker.command],
            env={"PATH": f"{tmp_path}:{os.environ['PATH']}", **dict(worker.env)},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"ray start --address=127.0.0.1:{port} --node-ip-address=127.0.0.2 --num-gpus=1" in result.stdout
