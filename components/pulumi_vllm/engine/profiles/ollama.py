"""Ollama (``ollama serve``), for Ollama 0.40.2: a server script that also pulls the model into the cache.

``ollama serve`` loads nothing by itself, so the container runs a short ``/bin/sh`` script: it starts
the server in the background, waits for it to answer, pulls ``model.id`` unless the persistent cache
already holds it, copies it to ``model.servedModelName`` (Ollama's documented way to serve a model
under another name, ``ollama cp``), and then waits on the server's pid, passing SIGTERM on so the pod
stops cleanly. Readiness is ``ollama show NAME``: it succeeds once the served name exists.

Ollama has no tensor parallelism: when a model does not fit one GPU it splits the layers over every
visible GPU (``OLLAMA_SCHED_SPREAD=1`` makes it always do so), which is what a pipeline-parallel size
equal to the pod's GPUs means here.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import ClassVar
from urllib.parse import urlsplit

from pulumi_vllm.engine.profiles.base import ContainerCommand, EngineProfile, ServeSpec

OLLAMA_VERSION = "0.40.2"
"""The Ollama release the settings are written for."""

OLLAMA_IMAGE = f"ollama/ollama:{OLLAMA_VERSION}"
"""Ollama's image (CUDA and CPU runners; entrypoint ``/bin/ollama``, Ubuntu with bash but no curl or python)."""

OLLAMA_PORT = 11434
"""Ollama's default port."""

# Ollama's model names: [[host/]namespace/]model[:tag], each part of letters, digits, '_', '-' and
# '.' (none in a namespace, no '..'), 128 characters at most (types/model/name.go). With one '/'
# the first part is the namespace; a host comes only before a namespace.
_NAME = re.compile(r"^(?:(?:[A-Za-z0-9_.-]+/)?[A-Za-z0-9_-]+/)?[A-Za-z0-9_.-]+(?::[A-Za-z0-9_.-]+)?$")


def ollama_name(name: str) -> bool:
    """Whether ``name`` has the form of an Ollama model name (``llama3.1:8b``, ``hf.co/user/repo:Q4_K_M``)."""
    candidate = name.removeprefix("https://").removeprefix("http://")
    return 0 < len(candidate) <= 128 and ".." not in candidate and _NAME.match(candidate) is not None


def serve_script(model: str, served_model_name: str) -> str:
    """The ``/bin/sh`` script that serves ``model`` as ``served_model_name`` (pulled into ``$OLLAMA_MODELS``)."""
    model_q, served_q = shlex.quote(model), shlex.quote(served_model_name)
    lines = [
        "ollama serve &",
        "server=$!",
        # As pid 1 the shell ignores SIGTERM unless it traps it: pass it on to the server.
        "trap 'kill -TERM \"$server\" 2>/dev/null' TERM INT",
        "fail() { echo \"$1\" >&2; kill -TERM \"$server\" 2>/dev/null; wait \"$server\"; exit 1; }",
        "until ollama list >/dev/null 2>&1; do",
        "  kill -0 \"$server\" 2>/dev/null || exit 1",
        "  sleep 1",
        "done",
        # A model already in the persistent cache is served as it is (no registry round trip on restart).
        f"ollama show {model_q} >/dev/null 2>&1 || ollama pull {model_q} || fail {shlex.quote(f'pull of {model} failed')}",
    ]
    if served_model_name != model:
        lines.append(
            f"ollama cp {model_q} {served_q} || fail {shlex.quote(f'ollama cp {model} {served_model_name} failed')}"
        )
    lines += [
        "status=0",
        # A trapped signal interrupts wait: wait again until the server has really gone.
        "while kill -0 \"$server\" 2>/dev/null; do wait \"$server\"; status=$?; done",
        "exit \"$status\"",
    ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class OllamaProfile(EngineProfile):
    """Ollama: one server per pod, layers split over its GPUs, the model pulled at start."""

    model_kinds: ClassVar[str] = "an Ollama model name (llama3.1:8b, hf.co/user/repo:Q4_K_M)"

    def command(self, spec: ServeSpec) -> ContainerCommand:
        """``/bin/sh -c SCRIPT``: start ``ollama serve``, pull and alias the model, wait on the server."""
        return ContainerCommand(("/bin/sh", "-c"), (serve_script(spec.model, spec.served_model_name),))

    def env(self, spec: ServeSpec) -> dict[str, str]:
        """Where Ollama listens and keeps its models, its context length, and how it places the model."""
        env = {
            "OLLAMA_HOST": f"0.0.0.0:{spec.port}",
            # Under the mounted cache, so a pulled model survives restarts.
            "OLLAMA_MODELS": f"{spec.cache_path.rstrip('/')}/ollama",
            # The pod serves this one model: keep it loaded instead of unloading it after 5 idle minutes.
            "OLLAMA_KEEP_ALIVE": "-1",
        }
        if spec.max_model_len is not None:
            env["OLLAMA_CONTEXT_LENGTH"] = str(spec.max_model_len)
        if spec.pipeline_parallel_size > 1:
            # Without it Ollama puts a model that fits one GPU on that GPU alone.
            env["OLLAMA_SCHED_SPREAD"] = "1"
        return env

    def ready_command(self, spec: ServeSpec) -> tuple[str, ...] | None:
        """``ollama show SERVED_NAME``: fails until the pull (and the copy to the served name) has finished."""
        return ("ollama", "show", spec.served_model_name)

    def http_check(self, url: str) -> tuple[str, ...]:
        """A GET of ``url`` with bash's ``/dev/tcp`` (the image has neither curl nor python3)."""
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        path = parts.path or "/"
        request = f"GET {path} HTTP/1.0\\r\\nHost: {host}\\r\\n\\r\\n"
        script = f"exec 3<>/dev/tcp/{host}/{port} && printf '{request}' >&3 && head -n 1 <&3 | grep -q ' 200 '"
        return ("bash", "-c", script)

    def problems(self, spec: ServeSpec) -> list[str]:
        """What Ollama 0.40.2 cannot do with ``spec``, in the stack's keys."""
        problems = super().problems(spec)
        kind = f"with engine.kind {self.kind!r}"
        if not ollama_name(spec.model):
            problems.append(
                f"model.id: {spec.model!r} is not accepted {kind}: Ollama pulls models by name; use an Ollama model "
                "name such as llama3.1:8b or hf.co/user/repo:Q4_K_M"
            )
        if spec.served_model_name != spec.model and not ollama_name(spec.served_model_name):
            problems.append(
                f"model.servedModelName: {spec.served_model_name!r} is not accepted {kind}: the model is copied to it "
                "with ollama cp, which takes a model name ([namespace/]name[:tag] of letters, digits, '_', '-', '.')"
            )
        if spec.revision:
            problems.append(
                f"model.revision: {spec.revision!r} is not accepted {kind}: Ollama has no revisions; put the tag in "
                "model.id (llama3.1:8b-instruct-q4_K_M)"
            )
        if spec.trust_remote_code:
            problems.append(
                f"model.trustRemoteCode: true is not accepted {kind}: Ollama runs no model code; remove it"
            )
        if spec.pipeline_parallel_size > 1 and spec.pipeline_parallel_size != spec.gpus:
            problems.append(
                f"parallelism.pipelineParallelSize: {spec.pipeline_parallel_size} is not accepted {kind}: Ollama "
                f"splits the layers over every GPU of the pod ({spec.gpus}); use {spec.gpus} or 1"
            )
        return problems


PROFILE = OllamaProfile(
    kind="ollama",
    title="Ollama",
    image=OLLAMA_IMAGE,
    version=OLLAMA_VERSION,
    docs="https://docs.ollama.com/faq",
    port=OLLAMA_PORT,
    # "Ollama is running" from the first second; readiness is ready_command (the model is there).
    health_path="/",
    ready_path="/api/version",
    metrics_path=None,
    openai_paths=("/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/models"),
    model_source="an Ollama model name, pulled from the Ollama registry (or hf.co) into the cache at start",
    parallelism="no tensor parallelism (parallelism.tensorParallelSize 1); layers split over every GPU of the pod "
    "(parallelism.pipelineParallelSize equal to the pod's GPUs sets OLLAMA_SCHED_SPREAD=1)",
    splits_heads=False,
    max_tensor_parallel=1,
    pipeline=True,
    docker=True,
    api_key_env=None,
    honours=frozenset({"max_model_len"}),
)
