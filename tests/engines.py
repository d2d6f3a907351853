"""What the engine tests share: the engines' own packages, required where CI installs them."""

from __future__ import annotations

import contextlib
import http.server
import importlib
import threading
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from schemas import _in_ci


def require_module(name: str, install: str) -> ModuleType:
    """Import ``name`` (an engine's own parser or schema); skips the test when missing, fails it under ``$CI``.

    ``install`` is the command that installs it (``make install-test`` does, in CI).
    """
    try:
        return importlib.import_module(name)
    except ImportError as error:
        reason = f"engine package missing: {name} ({error}); install it with: {install}"
        if _in_ci():
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)


def require_program(name: str, install: str) -> str:
    """The path of the program ``name``; skips the test when it is missing, fails it under ``$CI``."""
    import shutil

    found = shutil.which(name)
    if found is None:
        reason = f"{name} is not installed ({install})"
        if _in_ci():
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return found


@contextlib.contextmanager
def status_server(statuses: dict[str, int], body: bytes = b"", default: int = 404) -> Iterator[int]:
    """A loopback HTTP server answering GET ``path`` with ``statuses[path]`` (else ``default``); yields its port."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(statuses.get(self.path, default))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def profile_container(profile: Any, spec: Any) -> dict[str, Any]:
    """The container a profile makes of ``spec`` (image, command, args, env), as the policy pack reads containers."""
    command = profile.command(spec)
    return {
        "image": profile.image,
        "command": list(command.command),
        "args": list(command.args),
        "env": [{"name": name, "value": value} for name, value in profile.env(spec).items()],
    }
