"""A Pulumi plugin started as the engine starts one: a subprocess that prints its gRPC port on its first stdout
line and serves until stopped. The policy pack client and the component provider client both run on it."""

from __future__ import annotations

import queue
import subprocess
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Self


class PluginProcess:
    """Start, read the port, keep stderr, stop: the life of one plugin process (a context manager)."""

    startup_timeout: float = 60.0

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr: Any = None
        self._channel: Any = None
        self._stub: Any = None

    def start(self) -> None:
        """Start the plugin and connect to it (each client says how)."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _spawn(self, argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> None:
        # stderr goes to a file kept open while the plugin runs (closed in close()), so a chatty plugin never
        # blocks on a full pipe.
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115
        self._process = subprocess.Popen(
            list(argv), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._stderr
        )

    def _read_port(self, what: str, error: type[Exception]) -> int:
        """The port on the plugin's first stdout line; else the plugin is stopped and ``error`` names ``what``."""
        assert self._process is not None and self._process.stdout is not None
        lines: queue.Queue[bytes] = queue.Queue()
        stdout = self._process.stdout
        threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
        try:
            line = lines.get(timeout=self.startup_timeout)
        except queue.Empty:
            line = b""
        if not line.strip().isdigit():
            written = self.stderr()
            self.close()
            raise error(f"{what} did not start (no port on its first line): {line!r}\n{written}")
        return int(line)

    def _connect(self, port: int) -> Any:
        import grpc

        self._channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        return self._channel

    def stderr(self) -> str:
        """What the plugin has written to stderr so far."""
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def close(self) -> None:
        """Close the connection and stop the plugin (it serves until stopped, as under the engine)."""
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            if process.stdout is not None:
                process.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
