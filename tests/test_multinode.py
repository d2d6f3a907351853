"""Multi-node stacks on each backend: schema-valid objects, the Ray topology, and what every pod carries."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pulumi
import pytest
from hypothesis import given
from hypothesis import strategies as st
from schemas import validate_object

from pulumi_vllm.cli.render import RenderedStack, render_config, render_stack
from pulumi_vllm.config import ConfigError, NetworkSpec, parse_stack_config
from pulumi_vllm.distributed import ray
from pulumi_vllm.distributed.multinode import check_multinode, multinode_problems
from pulumi_vllm.engine.argv import engine_args_from_config, vllm_command
from pulumi_vllm.kubernetes.multinode import MultiNodeServer
from pulumi_vllm.kubernetes.pod import HEALTH_PATH, MODEL_CACHE_PATH, ContainerSettings
from pulumi_vllm.kubernetes.ray_pods import (
    KUBERAY_OVERWRITE_COMMAND_ANNOTATION,
    head_selector,
    worker_selector,
)
from pulumi_vllm.kubernetes.safety_pods import graceful_engine
from pulumi_vllm.plan import plan_serving

REPO = Path(__file__).resolve().parents[1]
STACKS = {"plain": "llama-405b-2node", "leaderworkerset": "llama-405b-lws", "kuberay": "llama-405b-kuberay"}
WORKLOAD_KINDS = {"StatefulSet", "LeaderWorkerSet", "RayCluster"}

MULTI_NODE = {
    "name": "big",
    "namespace": "ml",
    "model": {"id": "meta-llama/Llama-3.1-405B-Instruct-FP8"},
    "parallelism": {"tensorParallelSize": 8, "pipelineParallelSize": 2, "gpusPerNode": 8},
    "cache": {"accessMode": "ReadWriteMany"},
}


def with_values(base: dict[str, Any], **sections: dict[str, Any] | Any) -> dict[str, Any]:
    """``base`` with some sections merged (dicts) or replaced (other values)."""
    values = dict(base)
    for key, value in sections.items():
        values[key] = {**values.get(key, {}), **value} if isinstance(value, dict) else value
    return values


@pytest.fixture(scope="module", params=list(STACKS))
def rendered(request: pytest.FixtureRequest) -> RenderedStack:
    return render_stack(REPO, STACKS[request.param], env={})


def manifests(stack: RenderedStack) -> list[dict[str, Any]]:
    return [doc for name, doc in stack.documents if not name.startswith("_") and isinstance(doc, dict)]


def pod_groups(stack: RenderedStack) -> list[tuple[str, int, dict[str, Any]]]:
    """``(role, pods of one replica, pod template)`` for every pod template of the stack's workloads."""
    groups: list[tuple[str, int, dict[str, Any]]] = []
    for doc in manifests(stack):
        spec = doc.get("spec", {})
        if doc["kind"] == "StatefulSet":
            role = "head" if spec["template"]["metadata"]["labels"]["app.kubernetes.io/component"] == "ray-head" else "worker"
            groups.append((role, spec["replicas"], spec["template"]))
        elif doc["kind"] == "LeaderWorkerSet":
            template = spec["leaderWorkerTemplate"]
            groups += [("head", 1, template["leaderTemplate"]), ("worker", template["size"] - 1, template["workerTemplate"])]
        elif doc["kind"] == "RayCluster":
            groups.append(("head", 1, spec["headGroupSpec"]["template"]))
            groups += [("worker", group["replicas"], group["template"]) for group in spec["workerGroupSpecs"]]
    return groups


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container["env"]}


def head_serve_argv(container: dict[str, Any]) -> list[str]:
    script = container["command"][2]
    line = script.split(ray.SERVE_BEGIN + "\n", 1)[1].split("\n" + ray.SERVE_END, 1)[0]
    words = shlex.split(line)
    assert words[-1] == "&"
    return words[:-1]


def test_every_object_is_schema_valid(rendered: RenderedStack) -> None:
    docs = manifests(rendered)
    assert {doc["kind"] for doc in docs} & WORKLOAD_KINDS
    for doc in docs:
        validate_object(doc)  # LeaderWorkerSet and RayCluster against their CRDs, strictly


def test_one_head_and_the_rest_workers(rendered: RenderedStack) -> None:
    topology = rendered.plan.topology
    groups = pod_groups(rendered)
    assert [(role, pods) for role, pods, _ in groups] == [("head", 1), ("worker", topology.pods - 1)]
    assert topology.pods == 2 and topology.gpus_per_pod == 8 and topology.world_size == 16


def test_every_pod_has_the_gpus_host_ip_shm_and_cache(rendered: RenderedStack) -> None:
    plan = rendered.plan
    for role, _, template in pod_groups(rendered):
        spec = template["spec"]
        (container,) = spec["containers"]
        resources = container["resources"]
        assert resources["limits"]["nvidia.com/gpu"] == resources["requests"]["nvidia.com/gpu"] == "8", role
        env = env_of(container)
        assert env["VLLM_HOST_IP"] == {"name": "VLLM_HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}
        assert env["HF_HOME"]["value"] == MODEL_CACHE_PATH
        assert env["RAY_EXPECTED_NODES"]["value"] == str(plan.topology.pods)
        volumes = {volume["name"]: volume for volume in spec["volumes"]}
        mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
        assert volumes[mounts["/dev/shm"]]["emptyDir"]["medium"] == "Memory"
        assert volumes[mounts[MODEL_CACHE_PATH]]["persistentVolumeClaim"]["claimName"] == plan.cache_claim_name
        assert container["image"] == rendered.config.engine.image
        assert spec["enableServiceLinks"] is False


def test_the_head_serves_the_one_vllm_command_with_ray_and_is_probed_on_health(rendered: RenderedStack) -> None:
    config = rendered.config
    (head,) = [template for role, _, template in pod_groups(rendered) if role == "head"]
    (container,) = head["spec"]["containers"]
    argv = head_serve_argv(container)
    # The one builder, with the drain on SIGTERM the pods' grace period covers (availability.drainSeconds).
    assert argv == vllm_command(graceful_engine(engine_args_from_config(config, multi_node=True), config)).argv
    assert argv[argv.index("--shutdown-timeout") + 1] == str(config.availability.drain_seconds)
    assert argv[argv.index("--distributed-executor-backend") + 1] == "ray"
    assert argv[argv.index("--tensor-parallel-size") + 1] == "8"
    assert argv[argv.index("--pipeline-parallel-size") + 1] == "2"
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == HEALTH_PATH
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= config.probes.startup_timeout_seconds
    assert config.parallelism.ray_wait_timeout_seconds < config.probes.startup_timeout_seconds


def test_workers_run_ray_only_and_have_no_http_probes(rendered: RenderedStack) -> None:
    for role, _, template in pod_groups(rendered):
        if role != "worker":
            continue
        (container,) = template["spec"]["containers"]
        script = container["command"][2]
        assert "vllm serve" not in script and ray.SERVE_BEGIN not in script
        assert "--head" not in script
        assert all("httpGet" not in container.get(probe, {}) for probe in ("startupProbe", "readinessProbe", "livenessProbe"))


def test_the_client_service_selects_only_the_head(rendered: RenderedStack) -> None:
    (service,) = [doc for doc in manifests(rendered) if doc["kind"] == "Service" and doc["metadata"]["name"] == rendered.plan.service_name]
    selector = service["spec"]["selector"]
    assert selector == head_selector(rendered.config)
    for role, _, template in pod_groups(rendered):
        labels = template["metadata"]["labels"]
        assert (selector.items() <= labels.items()) == (role == "head"), role


def test_workloads_carry_the_model_facts_and_wait_long_enough(rendered: RenderedStack) -> None:
    facts = rendered.plan.facts_annotations()
    workloads = [doc for doc in manifests(rendered) if doc["kind"] in WORKLOAD_KINDS]
    for doc in workloads:
        assert facts.items() <= doc["metadata"]["annotations"].items()
    registrations = [reg for reg in rendered.run.registrations
                     if reg.type in ("kubernetes:apps/v1:StatefulSet", "kubernetes:leaderworkerset.x-k8s.io/v1:LeaderWorkerSet",
                                     "kubernetes:ray.io/v1:RayCluster")]
    assert len(registrations) == len(workloads)
    assert all(reg.parent.endswith(f"pulumi-vllm:index:MultiNodeServer::{rendered.config.name}-server") for reg in registrations)
    timeouts = [reg.custom_timeouts for reg in registrations]
    startup = rendered.config.probes.startup_timeout_seconds
    assert all(int(t["create"].rstrip("s")) > startup and t["update"] == t["create"] for t in timeouts)


def by_kind(stack: RenderedStack, kind: str) -> list[dict[str, Any]]:
    return [doc for doc in manifests(stack) if doc["kind"] == kind]


def test_plain_backend_head_statefulset_workers_and_headless_service() -> None:
    stack = render_stack(REPO, STACKS["plain"], env={})
    config, plan = stack.config, stack.plan
    sets = {doc["metadata"]["labels"]["app.kubernetes.io/component"]: doc for doc in by_kind(stack, "StatefulSet")}
    head, workers = sets["ray-head"], sets["ray-worker"]
    (headless,) = [doc for doc in by_kind(stack, "Service") if doc["spec"].get("clusterIP") == "None"]
    assert head["spec"]["replicas"] == 1 and workers["spec"]["replicas"] == plan.topology.pods - 1
    assert head["spec"]["serviceName"] == workers["spec"]["serviceName"] == headless["metadata"]["name"]
    assert head["spec"]["selector"]["matchLabels"] == head_selector(config)
    assert workers["spec"]["selector"]["matchLabels"] == worker_selector(config)
    # The workers find the head by this name before it is ready (it is ready only once they joined).
    assert headless["spec"]["selector"] == head_selector(config)
    assert headless["spec"]["publishNotReadyAddresses"] is True
    assert headless["spec"]["ports"] == [{"name": "gcs", "port": ray.RAY_PORT, "targetPort": ray.RAY_PORT}]
    worker_env = env_of(workers["spec"]["template"]["spec"]["containers"][0])
    assert worker_env["RAY_HEAD_HOST"]["value"] == f"{headless['metadata']['name']}.{config.namespace}.svc"
    assert "ray start --head" in head["spec"]["template"]["spec"]["containers"][0]["command"][2]


def test_leaderworkerset_recreates_the_group_and_uses_the_leader_address() -> None:
    stack = render_stack(REPO, STACKS["leaderworkerset"], env={})
    (lws,) = by_kind(stack, "LeaderWorkerSet")
    spec = lws["spec"]
    template = spec["leaderWorkerTemplate"]
    assert template["size"] == stack.plan.topology.pods
    assert template["restartPolicy"] == "RecreateGroupOnPodRestart"
    assert spec["startupPolicy"] == "LeaderCreated"  # LeaderReady would wait forever for the workers
    assert spec["replicas"] == stack.config.replicas
    worker_script = template["workerTemplate"]["spec"]["containers"][0]["command"][2]
    assert 'head_host="${LWS_LEADER_ADDRESS}"' in worker_script
    assert lws["metadata"]["annotations"]["pulumi.com/waitFor"] == "condition=Available"


def test_leaderworkerset_infiniband_pods() -> None:
    stack = render_stack(REPO, STACKS["leaderworkerset"], env={})
    network = stack.config.network
    assert network.infiniband
    for _, _, template in pod_groups(stack):
        (container,) = template["spec"]["containers"]
        # Hardened as every pod, with the one capability RDMA needs kept.
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"], "add": ["IPC_LOCK"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        for section in ("requests", "limits"):
            assert container["resources"][section][network.rdma_resource_name] == str(network.rdma_resource_count)
        env = env_of(container)
        assert env["NCCL_IB_HCA"]["value"] == network.ib_hca
        assert env["NCCL_SOCKET_IFNAME"]["value"] == env["GLOO_SOCKET_IFNAME"]["value"] == network.nccl_socket_ifname


def test_no_infiniband_settings_unless_asked() -> None:
    stack = render_stack(REPO, STACKS["plain"], env={})
    for _, _, template in pod_groups(stack):
        (container,) = template["spec"]["containers"]
        assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}  # no IPC_LOCK
        assert not any(name.startswith("rdma/") for name in container["resources"]["limits"])
        assert "NCCL_IB_HCA" not in env_of(container)


def test_kuberay_runs_its_generated_ray_start_in_the_pods_own_scripts() -> None:
    stack = render_stack(REPO, STACKS["kuberay"], env={})
    (cluster,) = by_kind(stack, "RayCluster")
    assert cluster["metadata"]["annotations"][KUBERAY_OVERWRITE_COMMAND_ANNOTATION] == "true"
    (group,) = cluster["spec"]["workerGroupSpecs"]
    workers = stack.plan.topology.pods - 1
    assert group["replicas"] == group["minReplicas"] == group["maxReplicas"] == workers
    assert cluster["spec"]["headGroupSpec"]["rayStartParams"]["num-gpus"] == group["rayStartParams"]["num-gpus"] == "8"
    head = cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    worker = group["template"]["spec"]["containers"][0]
    for container in (head, worker):
        assert ray.KUBERAY_RAY_START in container["command"][2]
        assert "ray start" not in container["command"][2]
    (registration,) = [reg for reg in stack.run.registrations if reg.type == "kubernetes:ray.io/v1:RayCluster"]
    assert registration.delete_before_replace  # a changed spec replaces the cluster: KubeRay would not roll it
    # Probes of our own, so KubeRay does not inject its dashboard-agent probes on the workers.
    port = int(group["rayStartParams"]["node-manager-port"])
    assert worker["readinessProbe"]["tcpSocket"]["port"] == worker["livenessProbe"]["tcpSocket"]["port"] == port


def test_leaderworkerset_scales_whole_groups() -> None:
    values = with_values(MULTI_NODE, parallelism={"backend": "leaderworkerset"}, replicas=2)
    stack = render_config(values)
    (lws,) = by_kind(stack, "LeaderWorkerSet")
    assert lws["spec"]["replicas"] == 2
    assert stack.run.outputs["gpus"] == 2 * 16


@pytest.mark.parametrize("backend", ["plain", "kuberay"])
def test_other_backends_refuse_replicas(backend: str) -> None:
    with pytest.raises(ConfigError, match="replicas: 2 is not accepted .* leaderworkerset"):
        render_config(with_values(MULTI_NODE, parallelism={"backend": backend}, replicas=2))


def test_multinode_problems_name_the_keys() -> None:
    config = parse_stack_config(
        with_values(
            MULTI_NODE,
            cache={"accessMode": "ReadWriteOnce"},
            parallelism={"rayWaitTimeoutSeconds": 1800},
            engine={"env": {"VLLM_HOST_IP": "10.0.0.1"}},
            name="a" * 42,
        )
    )
    problems = multinode_problems(config)
    assert [problem.split(":", 2)[1] for problem in problems] == [
        "cache.accessMode", "parallelism.rayWaitTimeoutSeconds", "engine.env", "name",
    ]
    with pytest.raises(ConfigError, match="ReadWriteMany"):
        check_multinode(config)
    assert multinode_problems(parse_stack_config(MULTI_NODE)) == []
    assert multinode_problems(parse_stack_config(with_values(MULTI_NODE, cache={"accessMode": "ReadWriteOnce",
                                                                                 "existingClaim": "shared"}))) == []


def test_network_env_clash_with_engine_env_is_refused() -> None:
    config = parse_stack_config(
        with_values(MULTI_NODE, network={"ncclSocketIfname": "eth0"}, engine={"env": {"NCCL_SOCKET_IFNAME": "ib0"}})
    )
    assert any("NCCL_SOCKET_IFNAME" in problem for problem in multinode_problems(config))


def test_infiniband_keys() -> None:
    with pytest.raises(ConfigError, match="network: .*infiniband: true"):
        parse_stack_config(with_values(MULTI_NODE, network={"ibHca": "mlx5_0"}))
    with pytest.raises(ConfigError, match="network.rdmaResourceName"):
        parse_stack_config(with_values(MULTI_NODE, network={"infiniband": True, "rdmaResourceName": "ib"}))
    assert NetworkSpec().infiniband is False and NetworkSpec().nccl_socket_ifname is None


_NAME = st.from_regex(r"[a-z][a-z0-9]{0,7}", fullmatch=True)


@given(st.lists(_NAME, min_size=1, max_size=3), st.sampled_from(["", "^", "="]))
def test_interface_lists_are_accepted(names: list[str], prefix: str) -> None:
    value = prefix + ",".join(names)
    assert NetworkSpec(ncclSocketIfname=value).nccl_socket_ifname == value


@given(_NAME, st.sampled_from([" ", ";", "$", "/", "'"]))
def test_interface_lists_with_shell_or_spaces_are_refused(name: str, bad: str) -> None:
    with pytest.raises(ValueError, match="interface list"):
        NetworkSpec(ncclSocketIfname=name + bad + name)


def server_for(values: dict[str, Any]) -> MultiNodeServer:
    config = parse_stack_config(values)
    plan = plan_serving(config)
    engine = engine_args_from_config(config, multi_node=True)
    command = vllm_command(engine)
    container = ContainerSettings(
        image=config.engine.image, command=command.command, args=command.args, gpus=8,
        resources=config.resources, cache_claim="big-model-cache", probes=config.probes,
    )
    return MultiNodeServer("big-server", {"plan": plan, "engine": engine, "container": container, "labels": {}})


@pulumi.runtime.test
def test_component_exposes_the_head_selector_and_gpus(mocks: Any) -> pulumi.Output:
    config = parse_stack_config(MULTI_NODE)
    server = server_for(MULTI_NODE)
    assert server.head_selector == head_selector(config)
    assert server.gpus == 16 and server.backend == "plain" and server.pods_per_replica == 2

    def check(names: list[str]) -> None:
        assert names == ["big-ray-head", "big-ray-worker"]
        sets = mocks.of_type("kubernetes:apps/v1:StatefulSet")
        assert sorted(item.name for item in sets) == ["big-server-head", "big-server-workers"]
        head = next(item for item in sets if item.name == "big-server-head")
        assert head.inputs["spec"]["selector"]["matchLabels"] == server.head_selector
        assert mocks.one("kubernetes:core/v1:Service").inputs["spec"]["clusterIP"] == "None"

    return server.workload_names.apply(check)


def test_component_refuses_a_single_writer_cache_before_registering(mocks: Any) -> None:
    config = parse_stack_config(with_values(MULTI_NODE, cache={"accessMode": "ReadWriteOnce"}))
    # The plan already refuses it, so neither the serving component nor its claim is ever registered.
    with pytest.raises(ConfigError, match="cache.accessMode"):
        plan_serving(config)
    assert mocks.resources == []


@pytest.mark.parametrize(("backend", "kind"), [("leaderworkerset", "LeaderWorkerSet"), ("kuberay", "RayCluster")])
@pulumi.runtime.test
def test_component_registers_one_custom_resource(mocks: Any, backend: str, kind: str) -> pulumi.Output:
    server = server_for(with_values(MULTI_NODE, parallelism={"backend": backend}))

    def check(names: list[str]) -> None:
        assert names == ["big-ray"]
        (group,) = [item for item in mocks.resources if item.typ.endswith(f":{kind}")]
        assert group.name == f"big-server-{kind.lower()}"
        assert group.inputs["metadata"]["annotations"]["pulumi.com/waitFor"]
        assert not mocks.of_type("kubernetes:apps/v1:StatefulSet")

    return server.workload_names.apply(check)
