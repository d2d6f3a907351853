"""A prefill server and a decode server joined by a KV connector, behind vLLM's router in P/D mode, on loopback.

A disaggregated stack of the tiny model is rendered by the package. Its prefill and decode Deployments'
containers run here as real vLLM (kubelet.py: the command, arguments and environment as written, the pod's
address as loopback, only the port moved) with one substitution: the rendered ``--kv-transfer-config`` names
``NixlConnector``, whose ``nixl`` package is not installed in this CPU build, so both servers run vLLM's
``ExampleConnector`` (``kv_role`` ``kv_both``, KV blocks written to and read from a shared folder), which
works on CPU. The router runs the rendered P/D command from the pinned wheel with its Kubernetes discovery
replaced by the two servers' URLs (``--prefill URL --decode URL``; there is no API server here).

Checked: a chat request and a long completion through the router are answered; the prefill server ran each
request for one token and the decode server generated the rest; for the long prompt the decode server took
whole blocks of the prompt from the connector (``vllm:prompt_tokens_by_source_total{source="external_kv_transfer"}``)
instead of computing them. Two vLLM servers run at once; every process is stopped at the end.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from pulumi_vllm.cli.render import RenderedStack, render_config

from .kubelet import local_container
from .server import VllmServer, free_port, http_request, metric_sum, start_vllm_server, stop_process

pytestmark = pytest.mark.realvllm

ROUTER_STARTUP_SECONDS = 60.0
LONG_PROMPT = " ".join(["the sea and the ships"] * 40)
"""About 320 tokens of the tiny model's tokenizer: more than two of the CPU backend's 128-token blocks."""
DISCOVERY_FLAGS = {"--service-discovery": 0, "--service-discovery-port": 1, "--service-discovery-namespace": 1}


def stack_values(model_dir: Path) -> dict[str, Any]:
    """The tiny model as a prefill pool and a decode pool of one server each, NIXL over TCP."""
    return {
        "name": "pd",
        "model": {"id": str(model_dir), "servedModelName": "tiny"},
        "engine": {"dtype": "float32", "maxModelLen": 512, "extraArgs": ["--enforce-eager"]},
        "disaggregation": {"transport": "tcp", "prefill": {"replicas": 1}, "decode": {"replicas": 1}},
        "router": {"replicas": 1},
    }


def only(rendered: RenderedStack, name: str) -> RenderedStack:
    """The render with one Deployment (the one named ``name``), for kubelet.local_container."""
    documents = [
        (path, doc) for path, doc in rendered.documents
        if not (isinstance(doc, dict) and doc.get("kind") == "Deployment" and doc["metadata"]["name"] != name)
    ]
    return dataclasses.replace(rendered, documents=documents)


def deployment(rendered: RenderedStack, name: str) -> dict[str, Any]:
    (found,) = [doc for _, doc in rendered.documents if isinstance(doc, dict) and doc.get("kind") == "Deployment"
                and doc["metadata"]["name"] == name]
    return found


def on_cpu(argv: list[str], storage: Path) -> list[str]:
    """``argv`` with the NIXL connector swapped for vLLM's shared-storage ExampleConnector."""
    at = argv.index("--kv-transfer-config") + 1
    assert json.loads(argv[at]) == {"kv_connector": "NixlConnector", "kv_role": "kv_both"}
    example = {"kv_connector": "ExampleConnector", "kv_role": "kv_both",
               "kv_connector_extra_config": {"shared_storage_path": str(storage)}}
    return [*argv[:at], json.dumps(example), *argv[at + 1:]]


def router_argv(container: dict[str, Any], prefill: str, decode: str, port: int, metrics: int) -> list[str]:
    """The rendered P/D router command with discovery replaced by the servers' URLs, on loopback ports."""
    argv = [*container["command"], *container["args"]]
    out: list[str] = []
    skip = 0
    for index, word in enumerate(argv):
        if skip:
            skip -= 1
            continue
        if word in DISCOVERY_FLAGS:
            skip = DISCOVERY_FLAGS[word]
            continue
        if word in ("--prefill-selector", "--decode-selector"):
            skip = sum(1 for _ in _values_after(argv, index))
            continue
        out.append(word)
    values = {"--port": str(port), "--prometheus-port": str(metrics), "--host": "127.0.0.1",
              "--prometheus-host": "127.0.0.1"}
    out = [values.get(out[i - 1], word) if i else word for i, word in enumerate(out)]
    return [*out, "--prefill", prefill, "--decode", decode]


def _values_after(argv: list[str], index: int) -> Iterator[str]:
    for word in argv[index + 1:]:
        if word.startswith("--"):
            return
        yield word


@dataclasses.dataclass
class Pools:
    prefill: VllmServer
    decode: VllmServer
    ports: dict[str, int]


@pytest.fixture(scope="module")
def rendered(tiny_model_dir: Path) -> RenderedStack:
    return render_config(stack_values(tiny_model_dir))


@pytest.fixture(scope="module")
def pools(rendered: RenderedStack, vllm_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pools]:
    """Both servers, started together from the rendered Deployments, stopped at the end."""
    storage = tmp_path_factory.mktemp("kv-store")
    ports = {"prefill": free_port(), "decode": free_port()}
    containers = {
        role: local_container(only(rendered, f"pd-{role}"), "Deployment", tmp_path_factory.mktemp(f"vol-{role}"),
                              port=ports[role])
        for role in ports
    }
    with contextlib.ExitStack() as stack:
        managers = {
            role: start_vllm_server(on_cpu(container.argv, storage), {**container.env, **vllm_env}, ports[role],
                                    probe_path=container.probe_paths["readinessProbe"], startup_timeout=480)
            for role, container in containers.items()
        }
        servers: dict[str, VllmServer] = {}
        with ThreadPoolExecutor(max_workers=2) as pool:
            futures = {role: pool.submit(manager.__enter__) for role, manager in managers.items()}
            for role, future in futures.items():
                with contextlib.suppress(Exception):
                    servers[role] = future.result(timeout=540)
                    stack.push(managers[role].__exit__)  # only a started server has something to stop
        missing = set(ports) - set(servers)
        assert not missing, f"vLLM did not start for {missing}"
        yield Pools(servers["prefill"], servers["decode"], ports)
    for server in servers.values():
        assert server.remaining_processes() == [], "a vLLM process outlived its stop"


@pytest.fixture(scope="module")
def router(rendered: RenderedStack, pools: Pools, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The rendered P/D router on loopback; yields its URL."""
    (container,) = deployment(rendered, "pd-router")["spec"]["template"]["spec"]["containers"]
    port, metrics = free_port(), free_port()
    argv = router_argv(container, pools.prefill.base_url, pools.decode.base_url, port, metrics)
    executable = shutil.which("vllm-router", path=str(Path(sys.executable).parent))
    assert executable, "vllm-router is not installed (pip install vllm-router==0.1.17)"
    log = tmp_path_factory.mktemp("router") / "router.log"
    with log.open("wb") as out:
        process = subprocess.Popen([executable, *argv[1:]], stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ROUTER_STARTUP_SECONDS
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                if http_request(base + "/readiness", timeout=2).status == 200:
                    break
            time.sleep(0.5)
        else:
            raise TimeoutError(f"the P/D router did not become ready:\n{log.read_text()[-2000:]}")
        yield base
    finally:
        stop_process(process)
    assert process.poll() is not None


def test_the_router_lists_one_prefill_and_one_decode_worker(router: str) -> None:
    workers = http_request(router + "/workers", timeout=10).json()
    assert workers["stats"] == {"prefill_count": 1, "decode_count": 1, "regular_count": 0}


def test_a_chat_request_is_prefilled_on_one_server_and_decoded_on_the_other(router: str, pools: Pools) -> None:
    before = {role: metric_sum(getattr(pools, role), "vllm:generation_tokens_total") for role in ("prefill", "decode")}
    answer = http_request(router + "/v1/chat/completions", method="POST", timeout=120, body={
        "model": "tiny", "messages": [{"role": "user", "content": "Name a colour."}], "max_tokens": 6,
        "temperature": 0, "ignore_eos": True,
    })
    assert answer.status == 200, answer.text
    assert answer.json()["choices"][0]["message"]["content"]
    generated = {role: metric_sum(getattr(pools, role), "vllm:generation_tokens_total") - before[role]
                 for role in ("prefill", "decode")}
    assert generated == {"prefill": 1.0, "decode": 6.0}


def test_the_decode_server_takes_the_prompts_blocks_from_the_connector(router: str, pools: Pools) -> None:
    source = "vllm:prompt_tokens_by_source_total"
    before = metric_sum(pools.decode, source, source="external_kv_transfer")
    computed = metric_sum(pools.decode, source, source="local_compute")
    answer = http_request(router + "/v1/completions", method="POST", timeout=120, body={
        "model": "tiny", "prompt": LONG_PROMPT, "max_tokens": 4, "temperature": 0,
    })
    assert answer.status == 200, answer.text
    prompt_tokens = answer.json()["usage"]["prompt_tokens"]
    transferred = metric_sum(pools.decode, source, source="external_kv_transfer") - before
    local = metric_sum(pools.decode, source, source="local_compute") - computed
    # Whole 128-token blocks come from the prefill server; only the rest of the prompt is computed again.
    assert transferred >= 256 and transferred % 128 == 0
    assert transferred + local == prompt_tokens
