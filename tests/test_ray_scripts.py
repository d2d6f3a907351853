"""The Ray head and worker scripts: their commands, their syntax, and how they fail (bash runs them, no Ray)."""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pulumi_vllm.distributed import ray
from pulumi_vllm.engine.argv import EngineArgs, vllm_command

SERVE = vllm_command(
    EngineArgs(model="meta-llama/Llama-3.1-405B-Instruct-FP8", tensor_parallel_size=8, pipeline_parallel_size=2,
               distributed_executor_backend="ray")
).argv

HEAD_SCRIPTS = {
    "ray start": ray.head_script(ray.head_start_command(8), SERVE),
    "kuberay": ray.head_script(ray.KUBERAY_RAY_START, SERVE),
}
WORKER_SCRIPTS = {
    "ray start, own head address": ray.worker_script(ray.worker_start_command(8), "${RAY_HEAD_HOST}"),
    "ray start, leaderworkerset": ray.worker_script(ray.worker_start_command(8), "${LWS_LEADER_ADDRESS}"),
    "kuberay": ray.worker_script(ray.KUBERAY_RAY_START, None),
}


def serve_line(script: str) -> str:
    """The one line between the serve markers."""
    inside = script.split(ray.SERVE_BEGIN + "\n", 1)[1].split("\n" + ray.SERVE_END, 1)[0]
    assert "\n" not in inside
    return inside


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_script(script: str, env: dict[str, str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    # python3 on PATH is this interpreter: the wait step needs Python (Ray only once the port opens).
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    return subprocess.run(
        ["bash", "-c", script], env={"PATH": path, **env}, capture_output=True, text=True, timeout=timeout,
        check=False,
    )


@pytest.mark.parametrize("script", [*HEAD_SCRIPTS.values(), *WORKER_SCRIPTS.values()],
                         ids=[*(f"head: {k}" for k in HEAD_SCRIPTS), *(f"worker: {k}" for k in WORKER_SCRIPTS)])
def test_scripts_are_valid_bash(script: str) -> None:
    result = subprocess.run(["bash", "-n", "-c", script], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_node_count_program_is_valid_python() -> None:
    compile(ray.NODE_COUNT_PROGRAM, "node_count", "exec")


def test_head_runs_the_serve_command_once_between_the_markers() -> None:
    script = HEAD_SCRIPTS["ray start"]
    assert script.count(ray.SERVE_BEGIN) == 1 and script.count(ray.SERVE_END) == 1
    assert shlex.split(serve_line(script)) == [*SERVE, "&"]
    # The serve command starts only after the bounded wait for every node.
    assert script.index('"$node_count" wait') < script.index(ray.SERVE_BEGIN) < script.index('"$node_count" watch')


@given(st.lists(st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=0, max_size=12), min_size=1,
                max_size=6))
def test_any_serve_argv_survives_the_script_quoting(argv: list[str]) -> None:
    assert shlex.split(serve_line(ray.head_script("true", argv))) == [*argv, "&"]


def test_head_script_needs_a_serve_command() -> None:
    with pytest.raises(ValueError, match="serve command"):
        ray.head_script("true", [])


def test_ray_start_commands() -> None:
    head = shlex.split(ray.head_start_command(8))
    assert head[:3] == ["ray", "start", "--head"]
    assert "--port=${RAY_HEAD_PORT}" in head and "--node-ip-address=${VLLM_HOST_IP}" in head
    assert "--num-gpus=8" in head and head[-1] == "--block"
    assert "--include-dashboard=false" in head
    worker = shlex.split(ray.worker_start_command(4))
    assert worker[:2] == ["ray", "start"] and "--head" not in worker
    assert "--address=${head}" in worker and "--num-gpus=4" in worker and worker[-1] == "--block"


def test_workers_replace_the_shell_with_ray_start() -> None:
    for name, script in WORKER_SCRIPTS.items():
        last = script.strip().splitlines()[-1]
        assert last.startswith("exec ray start") or last == ray.KUBERAY_RAY_START, name
    assert "${LWS_LEADER_ADDRESS}" in WORKER_SCRIPTS["ray start, leaderworkerset"]
    assert "/dev/tcp/" not in WORKER_SCRIPTS["kuberay"]  # KubeRay's init container waits for the head


def test_ray_environment() -> None:
    env = ray.ray_environment(expected_nodes=3, wait_timeout_seconds=120, head_host="h.ns.svc")
    assert env == {"RAY_HEAD_PORT": "6379", "RAY_EXPECTED_NODES": "3", "RAY_NODE_WAIT_SECONDS": "120",
                   "RAY_HEAD_HOST": "h.ns.svc"}
    assert ray.HEAD_HOST_ENV not in ray.ray_environment(expected_nodes=2, wait_timeout_seconds=60)


def test_worker_gives_up_on_an_absent_head_with_a_clear_message() -> None:
    port = closed_port()
    env = {"RAY_HEAD_HOST": "127.0.0.1", "RAY_HEAD_PORT": str(port), "RAY_NODE_WAIT_SECONDS": "1",
           "VLLM_HOST_IP": "127.0.0.1"}
    started = time.monotonic()
    result = run_script(WORKER_SCRIPTS["ray start, own head address"], env)
    assert result.returncode == 1
    assert f"ERROR: the Ray head at 127.0.0.1:{port} did not answer within 1s" in result.stdout
    assert "joining" not in result.stdout
    assert time.monotonic() - started < 15


def head_env(port: int, wait: str) -> dict[str, str]:
    return {"VLLM_HOST_IP": "127.0.0.1", "RAY_HEAD_PORT": str(port), "RAY_EXPECTED_NODES": "2",
            "RAY_NODE_WAIT_SECONDS": wait}


def test_head_gives_up_when_the_nodes_do_not_join_in_time() -> None:
    # A "Ray head" that never opens its port: the bounded wait ends the container with a reason.
    script = ray.head_script("sleep 60", ["echo", "SERVING"])
    result = run_script(script, head_env(closed_port(), "2"))
    assert result.returncode == 1
    assert "ERROR: only 0 of 2 Ray nodes joined within 2s" in result.stdout
    assert "SERVING" not in result.stdout


def test_head_stops_when_ray_stops_before_the_nodes_join() -> None:
    script = ray.head_script("exit 3", ["echo", "SERVING"])
    result = run_script(script, head_env(closed_port(), "60"))
    assert result.returncode == 1
    assert "ERROR: the Ray head stopped (exit status 3) before every node joined" in result.stdout
    assert "SERVING" not in result.stdout


def test_head_stops_its_children_on_sigterm() -> None:
    script = ray.head_script("sleep 300", ["echo", "SERVING"])
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    process = subprocess.Popen(["bash", "-c", script], env={"PATH": path, **head_env(closed_port(), "300")},
                               stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        time.sleep(1.5)
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=15)
        assert process.returncode == 143
        assert "stop signal received" in out
        leftover = subprocess.run(
            ["pgrep", "-s", str(process.pid)], capture_output=True, text=True, check=False
        ).stdout.split()
        assert leftover == []
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
