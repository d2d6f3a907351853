"""The rendered Ray head and worker scripts, run for real on loopback: a two-node cluster forms, then breaks.

The scripts come from the plain-backend example stack as rendered. Only per-node values change (the
addresses, ports, temp dir and wait bounds the scripts read from their environment), and the serve
command between the script's markers becomes a Ray client that counts the alive nodes instead of
vLLM. The test starts the head and one worker, sees both nodes alive through ``ray.nodes()``, stops
the worker, and expects the head to notice and stop by itself. Every process it started is found by
a marker in its environment and must be gone at the end; nothing else on the machine is touched.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from ray_processes import free_port, marked_processes

from pulumi_vllm.cli.render import render_stack
from pulumi_vllm.distributed import ray

pytestmark = pytest.mark.ray

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MARKER = "PULUMI_VLLM_RAY_LOOPBACK"
"""Ray's default worker port range: a head port in it makes ``ray start --head`` fail."""

NODE_COUNT_CLIENT = """
import os, sys, time, ray
ray.init(address=f"{os.environ['VLLM_HOST_IP']}:{os.environ['RAY_HEAD_PORT']}", logging_level="ERROR")
print("SERVE: alive nodes", sum(1 for node in ray.nodes() if node["Alive"]), flush=True)
time.sleep(300)
"""


def kill_marked(tag: str) -> None:
    for line in marked_processes(MARKER, tag):
        try:
            os.kill(int(line.split()[0]), signal.SIGKILL)
        except ProcessLookupError:
            pass


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.5)


def pod_command_and_env(stack: Any, component: str) -> tuple[list[str], dict[str, str]]:
    (statefulset,) = [
        doc
        for name, doc in stack.documents
        if name.startswith("statefulset-") and doc["metadata"]["labels"]["app.kubernetes.io/component"] == component
    ]
    (container,) = statefulset["spec"]["template"]["spec"]["containers"]
    env = {item["name"]: item["value"] for item in container["env"] if "value" in item}
    return container["command"], env


def with_serve_command(script: str, command: str) -> str:
    """``script`` with the line between its serve markers replaced by ``command`` (in the background)."""
    before, rest = script.split(ray.SERVE_BEGIN + "\n", 1)
    _, after = rest.split("\n" + ray.SERVE_END, 1)
    return f"{before}{ray.SERVE_BEGIN}\n{command} &\n{ray.SERVE_END}{after}"


@pytest.fixture
def ray_cli() -> Path:
    if not (BIN / "ray").is_file():
        pytest.skip(f"needs the ray CLI beside {sys.executable} (pip install 'ray[default]')")
    return BIN / "ray"


def test_rendered_scripts_form_a_cluster_and_the_head_stops_when_a_worker_leaves(ray_cli: Path) -> None:
    stack = render_stack(REPO, "llama-405b-2node", env={})
    head_command, head_pod_env = pod_command_and_env(stack, "ray-head")
    worker_command, worker_pod_env = pod_command_and_env(stack, "ray-worker")
    assert head_command[:2] == worker_command[:2] == ["/bin/bash", "-c"]
    assert head_pod_env["RAY_EXPECTED_NODES"] == "2"

    tag = uuid.uuid4().hex
    temp_dir = tempfile.mkdtemp(prefix="rayloop-", dir="/tmp")  # short: Ray's socket paths are length-limited
    port, client_port = free_port(), free_port()
    local = {
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "HOME": os.environ.get("HOME", temp_dir),
        MARKER: tag,
        "RAY_TMPDIR": temp_dir,  # Ray's --temp-dir for every process started from here
        "RAY_USAGE_STATS_ENABLED": "0",
        "VLLM_HOST_IP": "127.0.0.1",
        "RAY_HEAD_HOST": "127.0.0.1",
        "RAY_HEAD_PORT": str(port),
        "RAY_CLIENT_SERVER_PORT": str(client_port),
        "RAY_NODE_WAIT_SECONDS": "45",
        "RAY_NODE_WATCH_SECONDS": "1",
    }
    head_script = with_serve_command(
        head_command[2], f"{shlex.quote(sys.executable)} -c {shlex.quote(NODE_COUNT_CLIENT)}"
    )
    logs = Path(temp_dir)
    processes: list[subprocess.Popen[bytes]] = []

    def start(script: str, pod_env: dict[str, str], log: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            ["bash", "-c", script],
            env={**pod_env, **local},
            stdout=(logs / log).open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, stopped on its own
        )
        processes.append(process)
        return process

    def head_log() -> str:
        return (logs / "head.log").read_text(errors="replace")

    try:
        head = start(head_script, head_pod_env, "head.log")
        worker = start(worker_command[2], worker_pod_env, "worker.log")

        wait_for(lambda: "SERVE: alive nodes" in head_log() or head.poll() is not None, 50, "the serve step")
        assert f"all 2 {ray.ALL_NODES_JOINED}" in head_log(), head_log()
        assert "SERVE: alive nodes 2" in head_log(), head_log()
        assert head.poll() is None and worker.poll() is None
        assert "joining the Ray cluster at 127.0.0.1" in (logs / "worker.log").read_text(errors="replace")

        # A worker that goes away must not leave a head that looks healthy: the head stops by itself.
        os.killpg(worker.pid, signal.SIGTERM)
        head.wait(timeout=30)
        assert head.returncode == 1
        assert "ERROR: 1 of 2 Ray nodes left the cluster" in head_log(), head_log()
        worker.wait(timeout=20)

        wait_for(lambda: not marked_processes(MARKER, tag), 15, "the Ray processes to exit")
        assert marked_processes(MARKER, tag) == []
    finally:
        for process in processes:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        kill_marked(tag)
        shutil.rmtree(temp_dir, ignore_errors=True)
