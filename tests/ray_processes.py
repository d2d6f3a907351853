"""What the real-Ray tests share: a loopback port Ray's workers will not take, and the processes a test started."""

from __future__ import annotations

import os
import socket
from pathlib import Path

RAY_WORKER_PORTS = range(10002, 20000)
"""Ray's default worker port range (``--min-worker-port`` / ``--max-worker-port``)."""


def free_port() -> int:
    """A free TCP port on loopback outside Ray's default worker port range."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port: int = probe.getsockname()[1]
        if port not in RAY_WORKER_PORTS:
            return port


def marked_processes(marker: str, tag: str) -> list[str]:
    """``pid command`` of every process (this one aside) whose environment has ``marker=tag``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if f"{marker}={tag}".encode() in environ:
            found.append(f"{entry.name} {command[:120]}")
    return found
