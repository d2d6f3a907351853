"""Start a real vLLM OpenAI server as a subprocess, wait until it is ready, and stop it cleanly.

The command, environment and readiness path are the ones a container would use, so a rendered
Deployment can be replayed here: :func:`local_command` turns the container's ``vllm ...`` or
``python -m ...`` command into one this machine can run, and :func:`start_vllm_server` runs it in
its own process group, polls the probe path, and on exit stops the whole group.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

VLLM_CLI = Path(__file__).with_name("vllm_cli.py")
"""Runner that behaves as the ``vllm`` console script (see its docstring for why it exists)."""

DEFAULT_STARTUP_TIMEOUT = 240.0
"""Seconds to wait for the probe path; the tiny model is ready in 25-35 s on 2 cores."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def local_command(argv: Sequence[str]) -> list[str]:
    """Map a container command to one that runs here with this interpreter.

    ``vllm SUBCOMMAND ...`` runs vLLM's own CLI through :data:`VLLM_CLI`; ``python``/``python3``
    becomes this interpreter; anything else is returned unchanged.
    """
    argv = [str(arg) for arg in argv]
    if not argv:
        raise ValueError("empty command")
    if argv[0] == "vllm":
        return [sys.executable, str(VLLM_CLI), *argv[1:]]
    if argv[0] in ("python", "python3"):
        return [sys.executable, *argv[1:]]
    return argv


@dataclass
class HttpResponse:
    """Status, headers and body of one HTTP exchange."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        """The body decoded as JSON."""
        return json.loads(self.body)

    @property
    def text(self) -> str:
        """The body decoded as UTF-8."""
        return self.body.decode("utf-8", errors="replace")


def http_request(
    url: str,
    *,
    method: str = "GET",
    body: Any = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 60.0,
) -> HttpResponse:
    """Send one request with urllib; an HTTP error status is returned, not raised."""
    data = None
    all_headers = dict(headers or {})
    if body is not None:
        data = json.dumps(body).encode()
        all_headers.setdefault("Content-Type", "application/json")
    request = urllib.request.Request(url, data=data, method=method, headers=all_headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return HttpResponse(response.status, response.read(), dict(response.headers))
    except urllib.error.HTTPError as error:
        return HttpResponse(error.code, error.read(), dict(error.headers or {}))


def _group_members(process_group: int) -> list[int]:
    """Live (non-zombie) processes whose process group is ``process_group``, from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the parenthesised command name: state, ppid, pgrp, ...
        state, _ppid, pgrp = stat.rsplit(")", 1)[1].split()[:3]
        if int(pgrp) == process_group and state != "Z":
            members.append(int(entry.name))
    return members


@dataclass
class VllmServer:
    """A running vLLM server started by :func:`start_vllm_server`."""

    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path
    startup_seconds: float = 0.0
    """Seconds from start until the probe path answered 200."""
    stop_seconds: float = 0.0
    """Seconds the stop took (filled in on exit)."""
    killed: bool = False
    """True when the group had to be killed after the polite stop timed out."""

    @property
    def process_group(self) -> int:
        """The server's process group (its leader is the started process)."""
        return self.process.pid

    def log_text(self) -> str:
        """Everything the server has printed so far (stdout and stderr)."""
        return self.log_path.read_text(errors="replace")

    def remaining_processes(self) -> list[int]:
        """Processes of the server's group still alive; empty after a clean stop."""
        return _group_members(self.process_group)

    def request(self, path: str, **kwargs: Any) -> HttpResponse:
        """Send a request to ``path`` on this server (see :func:`http_request`)."""
        return http_request(self.base_url + path, **kwargs)


def metric_sum(server: VllmServer, name: str, **labels: str) -> float:
    """The sum of one metric's series on the server's ``/metrics`` whose labels include ``labels``."""
    total = 0.0
    for line in server.request("/metrics", timeout=10).text.splitlines():
        if line.startswith(name + "{") and all(f'{key}="{value}"' in line for key, value in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def stop_process(process: subprocess.Popen[bytes], grace_seconds: float = 15) -> None:
    """SIGTERM a helper process the test started (a router, a registrar), then SIGKILL it after ``grace_seconds``."""
    process.terminate()
    try:
        process.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=grace_seconds)


def _wait_ready(server: VllmServer, probe_path: str, timeout: float) -> None:
    """Poll ``probe_path`` until it answers 200; fail early if the server exits."""
    started = time.monotonic()
    deadline = started + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"vLLM exited with {server.process.returncode} before {probe_path} answered;"
                f" last output:\n{server.log_text()[-4000:]}"
            )
        with contextlib.suppress(OSError):
            if server.request(probe_path, timeout=5).status == 200:
                server.startup_seconds = time.monotonic() - started
                return
        time.sleep(0.5)
    raise TimeoutError(
        f"vLLM did not answer {probe_path} within {timeout:.0f} s; last output:\n{server.log_text()[-4000:]}"
    )


def _stop(server: VllmServer, grace_seconds: float) -> None:
    """SIGTERM the process group, wait, then SIGKILL whatever is left."""
    started = time.monotonic()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.process_group, signal.SIGTERM)
    try:
        server.process.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        server.killed = True
    # Workers may outlive the leader for a moment; give them the rest of the grace period.
    deadline = started + grace_seconds
    while server.remaining_processes() and time.monotonic() < deadline:
        time.sleep(0.2)
    if server.remaining_processes():
        server.killed = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.process_group, signal.SIGKILL)
        server.process.wait(timeout=30)
        kill_deadline = time.monotonic() + 10
        while server.remaining_processes() and time.monotonic() < kill_deadline:
            time.sleep(0.2)
    server.stop_seconds = time.monotonic() - started


@contextlib.contextmanager
def start_vllm_server(
    argv: Sequence[str],
    env: Mapping[str, str],
    port: int,
    *,
    probe_path: str = "/health",
    host: str = "127.0.0.1",
    startup_timeout: float = DEFAULT_STARTUP_TIMEOUT,
    stop_grace_seconds: float = 30.0,
    log_dir: Path | None = None,
) -> Iterator[VllmServer]:
    """Start vLLM with ``argv`` and yield it once ``probe_path`` answers 200; stop it on exit.

    Args:
        argv: the container command, e.g. ``["vllm", "serve", MODEL, "--port", "8000", ...]``
            (mapped with :func:`local_command`).
        env: variables added to this process's environment (a container's ``env``).
        port: the port the command makes the server listen on (used for the probe URL).
        probe_path: the readiness path to poll (a Deployment's ``readinessProbe.httpGet.path``).
        host: the address to reach the server on.
        startup_timeout: seconds to wait for the probe before giving up.
        stop_grace_seconds: seconds between SIGTERM and SIGKILL of the process group.
        log_dir: where to write the server's output (a new temporary directory by default).
    """
    log_dir = Path(log_dir) if log_dir is not None else Path(tempfile.mkdtemp(prefix="vllm-log-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"vllm-{port}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            local_command(argv),
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            # Its own process group, so the API server and its engine workers stop together.
            start_new_session=True,
        )
    server = VllmServer(process=process, base_url=f"http://{host}:{port}", log_path=log_path)
    try:
        _wait_ready(server, probe_path, startup_timeout)
        yield server
    finally:
        _stop(server, stop_grace_seconds)
