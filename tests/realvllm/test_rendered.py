"""Real vLLM runs what the package renders: the Deployment's server and the batch Job, on a tiny model.

The tiny stack (see ``conftest.tiny_stack_values``) is rendered by the package; the rendered
Deployment's container is then started on this machine exactly as written (command, arguments,
environment with the API key from the rendered Secret, probe paths), with only the port moved to a
free one and the volumes mapped to local folders (see ``kubelet.py``). Likewise the rendered Job.
Slow: about half a minute per vLLM start on 2 cores; the server is started once for every HTTP test.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pulumi_vllm.cli.render import RenderedStack

from .conftest import API_KEY, TINY_SERVED_NAME
from .kubelet import LocalContainer, local_container, workload_manifest
from .server import VllmServer, free_port, local_command, start_vllm_server

pytestmark = pytest.mark.realvllm

AUTH = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture(scope="module")
def deployment_container(rendered_tiny: RenderedStack, tmp_path_factory: pytest.TempPathFactory) -> LocalContainer:
    """The rendered Deployment's container, on a free port."""
    return local_container(rendered_tiny, "Deployment", tmp_path_factory.mktemp("server-volumes"), port=free_port())


# Class scope: the server stops after its tests, before the batch Job needs the memory and cores.
@pytest.fixture(scope="class")
def served(
    deployment_container: LocalContainer, vllm_env: dict[str, str], observe_class: Any
) -> Iterator[VllmServer]:
    """The rendered server, ready once its rendered startup probe path answers; stopped and checked on exit."""
    container = deployment_container
    port = int(container.option("--port"))
    with start_vllm_server(
        container.argv,
        {**vllm_env, **container.env},
        port,
        probe_path=container.probe_paths["startupProbe"],
    ) as server:
        observe_class(
            f"rendered vLLM server answered {container.probe_paths['startupProbe']} after {server.startup_seconds:.1f} s"
        )
        yield server
    observe_class(f"vLLM server stopped in {server.stop_seconds:.1f} s (killed: {server.killed})")
    assert server.process.returncode is not None
    assert server.remaining_processes() == [], "processes of the server's group outlived it"


def test_rendered_container_is_replayed_as_written(rendered_tiny: RenderedStack,
                                                   deployment_container: LocalContainer) -> None:
    """Only the port and the volume paths differ from the rendered container; the key comes from the Secret."""
    container = workload_manifest(rendered_tiny, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    rendered = [*container["command"], *container["args"]]
    assert rendered[:2] == ["vllm", "serve"]
    changed = [(a, b) for a, b in zip(rendered, deployment_container.argv, strict=True) if a != b]
    assert changed == [(str(container["ports"][0]["containerPort"]), deployment_container.option("--port"))]
    assert deployment_container.env["VLLM_API_KEY"] == API_KEY
    assert "HF_TOKEN" not in deployment_container.env
    # HF_HOME points into the model-cache volume, which is a local folder here.
    (hf_home,) = [item["value"] for item in container["env"] if item["name"] == "HF_HOME"]
    assert deployment_container.env["HF_HOME"] == str(deployment_container.local_path(hf_home))
    assert Path(deployment_container.env["HF_HOME"]).is_dir()


class TestRenderedServer:
    """The OpenAI server of the rendered Deployment (one start for the class)."""

    def test_probe_paths_answer_without_the_key(self, served: VllmServer,
                                                deployment_container: LocalContainer) -> None:
        """Probes carry no key: the rendered probe paths must not be behind the API key."""
        assert set(deployment_container.probe_paths) == {"startupProbe", "readinessProbe", "livenessProbe"}
        for path in set(deployment_container.probe_paths.values()):
            assert served.request(path).status == 200

    def test_models_needs_the_key(self, served: VllmServer) -> None:
        assert served.request("/v1/models").status == 401
        assert served.request("/v1/models", headers={"Authorization": "Bearer wrong"}).status == 401
        response = served.request("/v1/models", headers=AUTH)
        assert response.status == 200
        assert [model["id"] for model in response.json()["data"]] == [TINY_SERVED_NAME]

    def test_completions(self, served: VllmServer) -> None:
        body = {"model": TINY_SERVED_NAME, "prompt": "The capital of France is", "max_tokens": 8}
        refused = served.request("/v1/completions", method="POST", body=body)
        assert refused.status == 401
        assert refused.json() == {"error": "Unauthorized"}
        response = served.request("/v1/completions", method="POST", body=body, headers=AUTH)
        assert response.status == 200, response.text
        payload = response.json()
        assert len(payload["choices"]) == 1
        assert 0 < payload["usage"]["completion_tokens"] <= 8

    def test_chat_completions(self, served: VllmServer) -> None:
        body = {
            "model": TINY_SERVED_NAME,
            "messages": [{"role": "user", "content": "Write a short poem about the sea."}],
            "max_tokens": 8,
        }
        assert served.request("/v1/chat/completions", method="POST", body=body).status == 401
        response = served.request("/v1/chat/completions", method="POST", body=body, headers=AUTH)
        assert response.status == 200, response.text
        choice = response.json()["choices"][0]
        assert choice["message"]["role"] == "assistant"
        assert isinstance(choice["message"]["content"], str)

    def test_metrics_has_vllm_series_without_the_key(self, served: VllmServer) -> None:
        """Prometheus scrapes carry no key either; after the requests above the counters exist."""
        response = served.request("/metrics")
        assert response.status == 200
        series = [line for line in response.text.splitlines() if line.startswith("vllm:")]
        assert series, "no vllm: series in /metrics"
        assert any(line.startswith("vllm:num_requests_running") for line in series)
        assert any(line.startswith("vllm:request_success_total") for line in series)


def test_rendered_batch_job_answers_every_line(
    rendered_tiny: RenderedStack, vllm_env: dict[str, str], tmp_path: Path, observe: Any
) -> None:
    """The rendered Job's ``vllm run-batch``: the ConfigMap's input in, one response per line out."""
    job = local_container(rendered_tiny, "Job", tmp_path)
    assert job.argv[:2] == ["vllm", "run-batch"]
    input_file, output_file = Path(job.option("-i")), Path(job.option("-o"))
    requests = [json.loads(line) for line in input_file.read_text().splitlines()]
    assert len(requests) == 2  # the ConfigMap's input.jsonl, where the Job mounts it
    started = time.monotonic()
    completed = subprocess.run(
        local_command(job.argv),
        env={**os.environ, **vllm_env, **job.env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    observe(f"rendered batch Job (2 lines) took {time.monotonic() - started:.1f} s")
    assert completed.returncode == 0, completed.stderr[-3000:]
    lines = [json.loads(line) for line in output_file.read_text().splitlines() if line.strip()]
    assert sorted(line["custom_id"] for line in lines) == sorted(request["custom_id"] for request in requests)
    assert all(line["error"] is None for line in lines)
    assert all(line["response"]["status_code"] == 200 for line in lines)
    assert all(line["response"]["body"]["model"] == TINY_SERVED_NAME for line in lines)
