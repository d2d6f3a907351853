"""vLLM's router (vllm-project/router, the ``vllm-router`` package): its command line and worker registration.

The router runs in Inference-Gateway mode (``--enable-igw``): it keeps one worker group, with its own
policy instance, per model id, and routes each request by its ``model`` field to that group. In this
mode it takes no ``--worker-urls``; workers are added at run time with ``POST /workers`` (``{"url",
"model_id"}``) and removed with ``DELETE /workers/<url>``. A small registration loop in each router pod
(:data:`REGISTRAR_SCRIPT`, Python standard library only) does that: it resolves each model's headless
Service to the ready pods' addresses and registers each pod under the model's served name.

The router keys workers by URL, one model id per URL. A LoRA adapter is a second model id on the same
pods, so each adapter is registered under another name of the same pod: its address on a headless
Service of its own (``<ip-with-dashes>.<service>.<namespace>.svc.cluster.local``), which Kubernetes DNS
gives every ready pod of a headless Service.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

ROUTER_VERSION = "0.1.17"
"""The ``vllm-router`` release this project pins: the default image tag and the wheel its tests run."""

ROUTER_PORT = 8000
"""Port the router serves the OpenAI API on inside its pod."""

ROUTER_METRICS_PORT = 29000
"""Port of the router's Prometheus metrics (``--prometheus-port``)."""

ROUTER_COMMAND = ("vllm-router",)
"""The router's console script (the wheel's entry point and the image's)."""

GENERATE_ROUTES: tuple[str, ...] = ("/v1/chat/completions", "/v1/completions", "/v1/models")
"""The OpenAI routes a model served by vLLM's ``generate`` runner answers (and that clients reach through the router)."""

POOLING_ROUTES: tuple[str, ...] = (
    "/v1/embeddings", "/v2/embed", "/pooling", "/classify", "/score", "/v1/score", "/rerank", "/v1/rerank",
    "/v2/rerank", "/v1/models",
)
"""The routes of vLLM 0.32's pooling runner (``vllm/entrypoints/pooling/*/api_router.py``): embeddings, pooling,
classification, scoring and reranking. Which of them answer depends on the model's tasks (an embedding model
answers ``/v1/embeddings``, a cross-encoder ``/score`` and ``/rerank``); chat and completions never do."""


def runner_routes(runner: str) -> tuple[str, ...]:
    """The routes a model group offers through the router: chat and completions for ``generate``, the pooling
    routes for ``pooling`` (a chat request to an embedding model is not offered, and vLLM would answer 404)."""
    if runner == "pooling":
        return POOLING_ROUTES
    if runner == "generate":
        return GENERATE_ROUTES
    raise ValueError(f"runner {runner!r} is not accepted: generate or pooling is")


REFRESH_ENV = "ROUTER_REFRESH_SECONDS"
WORKERS_ENV = "ROUTER_WORKERS"
ROUTER_URL_ENV = "ROUTER_URL"


@dataclass(frozen=True)
class WorkerGroup:
    """Pods registered under one model id: the DNS name that resolves to them, and the URL host form."""

    model_id: str
    """The name clients send in ``model`` (a served model name or an adapter name)."""
    dns_name: str
    """A headless Service's name; it resolves to the addresses of the ready pods."""
    port: int
    """The pods' vLLM port."""
    host: str = "{ip}"
    """How a pod's URL host is written: ``{ip}`` (the address) or a name with ``{ip_dashed}`` in it."""

    def as_json(self) -> dict[str, object]:
        """The group as the registration loop reads it."""
        return {"model": self.model_id, "dns": self.dns_name, "port": self.port, "host": self.host}


def router_args(
    policy: str,
    *,
    host: str = "0.0.0.0",
    port: int = ROUTER_PORT,
    metrics_port: int = ROUTER_METRICS_PORT,
    extra_args: Sequence[str] = (),
) -> list[str]:
    """The router's command line in Inference-Gateway mode, routing each model's requests with ``policy``."""
    return [
        *ROUTER_COMMAND,
        "--enable-igw",
        "--host", host,
        "--port", str(port),
        "--policy", policy,
        "--prometheus-host", host,
        "--prometheus-port", str(metrics_port),
        *extra_args,
    ]


def workers_json(groups: Sequence[WorkerGroup]) -> str:
    """The registration loop's ``ROUTER_WORKERS`` value."""
    return json.dumps([group.as_json() for group in groups], sort_keys=True)


def registrar_env(groups: Sequence[WorkerGroup], refresh_seconds: int, router_port: int = ROUTER_PORT) -> dict[str, str]:
    """Environment of the registration loop: what to register, where, and how often."""
    return {
        WORKERS_ENV: workers_json(groups),
        ROUTER_URL_ENV: f"http://127.0.0.1:{router_port}",
        REFRESH_ENV: str(refresh_seconds),
    }


def registrar_command() -> list[str]:
    """The registration loop's command (the router image's Python)."""
    return ["python3", "-c", REGISTRAR_SCRIPT]


def worker_urls(group: Mapping[str, object], addresses: Sequence[str]) -> list[str]:
    """The URLs of a group's pods (same rule as :data:`REGISTRAR_SCRIPT`)."""
    host = str(group["host"])
    return [
        f"http://{host.format(ip=ip, ip_dashed=ip.replace('.', '-'))}:{group['port']}" for ip in addresses
    ]


REGISTRAR_SCRIPT = r'''
import json, os, socket, sys, time, urllib.parse, urllib.request
router = os.environ["ROUTER_URL"].rstrip("/")
groups = json.loads(os.environ["ROUTER_WORKERS"])
refresh = float(os.environ.get("ROUTER_REFRESH_SECONDS", "10"))
once = os.environ.get("ROUTER_REGISTER_ONCE") == "1"

def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(router + path, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"{}")

def addresses(name, port):
    try:
        found = socket.getaddrinfo(name, port, socket.AF_INET, socket.SOCK_STREAM)
    except OSError:
        return []
    return sorted({item[4][0] for item in found})

def wanted():
    urls = {}
    for group in groups:
        for ip in addresses(group["dns"], group["port"]):
            host = group["host"].format(ip=ip, ip_dashed=ip.replace(".", "-"))
            urls["http://%s:%s" % (host, group["port"])] = group["model"]
    return urls

registered = {}
while True:
    try:
        current = {item["url"]: item["model_id"] for item in call("GET", "/workers").get("workers", [])}
        target = wanted()
        for url, model in sorted(target.items()):
            if current.get(url) != model:
                call("POST", "/workers", {"url": url, "model_id": model})
                print("registered", url, "as", model, flush=True)
        for url in sorted(set(registered) - set(target)):
            if url in current:
                call("DELETE", "/workers/" + urllib.parse.quote(url, safe=""))
                print("removed", url, flush=True)
        registered = target
    except OSError as error:
        print("router not reachable yet:", error, file=sys.stderr, flush=True)
    if once:
        break
    time.sleep(refresh)
'''
"""Registers each group's ready pods with the router on localhost, and removes pods that went away.

Only pods it registered itself are removed, so workers added by hand through the API stay.
"""
