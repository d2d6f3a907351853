"""LoRA for real: a peft adapter for the tiny model, served by real vLLM from the rendered flags.

The stack names the adapter by its path (``adapters: {sql: /path}``) and turns runtime loading on; the
rendered Deployment's container runs here as written (kubelet.py; only the port moved). vLLM's CPU
build serves LoRA: the adapter is listed by ``/v1/models`` with the base model as its parent, a request
naming it is answered by it (greedy output differs from the base model's), and a second adapter loads
into the running server through ``/v1/load_lora_adapter`` because the rendered environment allows it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pulumi_vllm.cli.render import RenderedStack, render_config

from .kubelet import LocalContainer, local_container
from .server import VllmServer, free_port, start_vllm_server
from .test_router_e2e import make_adapter

pytestmark = pytest.mark.realvllm

BASE = "tiny-lora"


@pytest.fixture(scope="module")
def adapters(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {name: make_adapter(tiny_model_dir, tmp_path_factory.mktemp(name)) for name in ("sql", "late")}


@pytest.fixture(scope="module")
def rendered(tiny_model_dir: Path, adapters: dict[str, Path]) -> RenderedStack:
    return render_config({
        "name": "lora",
        "model": {"id": str(tiny_model_dir), "servedModelName": BASE},
        "engine": {"dtype": "float32", "maxModelLen": 512, "extraArgs": ["--enforce-eager"]},
        "adapters": {"sql": str(adapters["sql"])},
        "lora": {"maxLoraRank": 8, "maxLoras": 2, "runtimeLoading": True},
    })


@pytest.fixture(scope="module")
def container(rendered: RenderedStack, tmp_path_factory: pytest.TempPathFactory) -> LocalContainer:
    return local_container(rendered, "Deployment", tmp_path_factory.mktemp("lora-volumes"), port=free_port())


@pytest.fixture(scope="module")
def served(container: LocalContainer, vllm_env: dict[str, str]) -> Iterator[VllmServer]:
    port = int(container.option("--port"))
    with start_vllm_server(container.argv, {**container.env, **vllm_env}, port,
                           probe_path=container.probe_paths["readinessProbe"], startup_timeout=420) as server:
        yield server
    assert server.remaining_processes() == []


def test_the_rendered_flags_point_at_the_adapter_files(container: LocalContainer, adapters: dict[str, Path]) -> None:
    at = container.argv.index("--lora-modules")
    assert container.argv[at + 1] == f"sql={adapters['sql']}"
    assert (adapters["sql"] / "adapter_config.json").is_file()
    assert (adapters["sql"] / "adapter_model.safetensors").is_file()
    assert container.option("--max-lora-rank") == "8" and container.option("--max-loras") == "2"
    assert container.env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True"


def _complete(server: VllmServer, model: str) -> dict[str, Any]:
    response = server.request("/v1/completions", method="POST", timeout=120,
                              body={"model": model, "prompt": "Hello", "max_tokens": 8, "temperature": 0})
    assert response.status == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_v1_models_lists_the_adapter_under_its_base(served: VllmServer) -> None:
    models = {item["id"]: item for item in served.request("/v1/models").json()["data"]}
    assert set(models) == {BASE, "sql"}
    assert models["sql"]["parent"] == BASE


def test_a_request_naming_the_adapter_is_answered_by_it(served: VllmServer) -> None:
    base, adapter = _complete(served, BASE), _complete(served, "sql")
    assert adapter["model"] == "sql"
    assert base["choices"][0]["text"] != adapter["choices"][0]["text"]


def test_an_adapter_loads_into_the_running_server(served: VllmServer, adapters: dict[str, Path]) -> None:
    response = served.request("/v1/load_lora_adapter", method="POST",
                              body={"lora_name": "late", "lora_path": str(adapters["late"])}, timeout=60)
    assert response.status == 200, response.text
    assert "late" in {item["id"] for item in served.request("/v1/models").json()["data"]}
    assert _complete(served, "late")["model"] == "late"


def test_an_unknown_adapter_name_is_refused(served: VllmServer) -> None:
    response = served.request("/v1/completions", method="POST", timeout=60,
                              body={"model": "no-such-adapter", "prompt": "Hello", "max_tokens": 2})
    assert response.status == 404, response.text


