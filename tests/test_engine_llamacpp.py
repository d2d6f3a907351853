"""The llama.cpp profile: its command line and refusals, and a real ``llama-server`` serving a tiny GGUF model.

The real tests run the llama-server binary that ``tools/build_llama_server.sh`` builds (from the llama.cpp source
vendored in the pinned llama-cpp-python sdist, the same commit as the pinned image) into the cache, or the one
``$PULUMI_VLLM_LLAMA_SERVER`` names. Without it they are skipped with the build command as the reason, and fail
under ``$CI``.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from engines import require_module
from schemas import _in_ci

from pulumi_vllm.engine.profiles import ServeSpec, profile
from pulumi_vllm.engine.profiles.llamacpp import (
    LLAMACPP_BUILD,
    LLAMACPP_COMMIT,
    LLAMACPP_IMAGE,
    LLAMACPP_SERVER,
    PROFILE,
)

REPO = Path(__file__).resolve().parents[1]
BUILD_SCRIPT = REPO / "tools" / "build_llama_server.sh"
BINARY_ENV = "PULUMI_VLLM_LLAMA_SERVER"
"""Environment variable naming a llama-server binary, used before the cache."""
API_KEY = "test-llama-key"
STARTUP_TIMEOUT = 120.0
"""Seconds the tiny model may take to load (it takes about one)."""

HUB = ServeSpec(
    model="Qwen/Qwen2.5-0.5B-Instruct-GGUF", served_model_name="qwen", model_file="qwen2.5-0.5b-instruct-q4_k_m.gguf"
)
LOCAL = ServeSpec(model="/models/tiny.gguf", served_model_name="tiny")


def _flag(args: tuple[str, ...], name: str) -> str:
    assert args.count(name) == 1, args
    return args[args.index(name) + 1]


# --- the profile's facts --------------------------------------------------------------------------------------


def test_profile_is_the_llamacpp_kind() -> None:
    assert profile("llama.cpp") is PROFILE
    assert PROFILE.kind == "llama.cpp"


def test_image_is_the_pinned_cuda_server_build() -> None:
    assert LLAMACPP_IMAGE == f"ghcr.io/ggml-org/llama.cpp:server-cuda-b{LLAMACPP_BUILD}"
    assert PROFILE.image == LLAMACPP_IMAGE and not PROFILE.image.endswith((":latest", ":server-cuda"))
    assert PROFILE.version == f"b{LLAMACPP_BUILD}"


def test_facts_of_llama_server() -> None:
    assert PROFILE.port == 8080
    assert PROFILE.health_path == PROFILE.ready_path == "/health"
    assert PROFILE.metrics_path == "/metrics"
    assert "/v1/chat/completions" in PROFILE.openai_paths
    assert PROFILE.api_key_env == "LLAMA_API_KEY"
    assert not PROFILE.splits_heads and PROFILE.pipeline and PROFILE.docker and not PROFILE.multi_node
    assert not PROFILE.vllm_based


# --- command() ----------------------------------------------------------------------------------------------------


def test_hub_model_is_downloaded_by_repo_and_file() -> None:
    command = PROFILE.command(HUB)
    assert command.command == (LLAMACPP_SERVER,)
    assert _flag(command.args, "--hf-repo") == HUB.model
    assert _flag(command.args, "--hf-file") == HUB.model_file
    assert "-m" not in command.args


def test_path_model_is_loaded_with_m() -> None:
    args = PROFILE.command(LOCAL).args
    assert args[:2] == ("-m", "/models/tiny.gguf")
    assert "--hf-repo" not in args and "--hf-file" not in args


def test_folder_path_with_model_file_joins_them() -> None:
    spec = replace(LOCAL, model="/models/qwen", model_file="q4.gguf")
    assert _flag(PROFILE.command(spec).args, "-m") == "/models/qwen/q4.gguf"


def test_host_port_alias_and_metrics() -> None:
    args = PROFILE.command(replace(HUB, port=9000)).args
    assert _flag(args, "--host") == "0.0.0.0"
    assert _flag(args, "--port") == "9000"
    assert _flag(args, "--alias") == "qwen"
    assert "--metrics" in args


def test_context_size_from_max_model_len() -> None:
    assert "--ctx-size" not in PROFILE.command(HUB).args
    assert _flag(PROFILE.command(replace(HUB, max_model_len=4096)).args, "--ctx-size") == "4096"


def test_every_layer_on_the_gpus() -> None:
    assert _flag(PROFILE.command(HUB).args, "--n-gpu-layers") == "all"
    assert _flag(PROFILE.command(replace(HUB, gpus=0)).args, "--n-gpu-layers") == "0"


def test_one_gpu_has_no_split() -> None:
    args = PROFILE.command(HUB).args
    assert "--split-mode" not in args and "--tensor-split" not in args


def test_tensor_parallel_splits_rows_in_equal_parts() -> None:
    args = PROFILE.command(replace(HUB, tensor_parallel_size=4, gpus=4)).args
    assert _flag(args, "--split-mode") == "row"
    assert _flag(args, "--tensor-split") == "1,1,1,1"


def test_pipeline_parallel_splits_layers_in_equal_parts() -> None:
    args = PROFILE.command(replace(HUB, pipeline_parallel_size=2, gpus=2)).args
    assert _flag(args, "--split-mode") == "layer"
    assert _flag(args, "--tensor-split") == "1,1"


def test_extra_args_come_last_verbatim() -> None:
    args = PROFILE.command(replace(HUB, extra_args=("--jinja", "--threads", "8"))).args
    assert args[-3:] == ("--jinja", "--threads", "8")


def test_api_key_is_never_a_flag() -> None:
    assert "--api-key" not in PROFILE.command(replace(HUB, api_key=True)).args


def test_downloads_go_into_the_model_cache() -> None:
    assert PROFILE.env(replace(HUB, cache_path="/cache")) == {"LLAMA_CACHE": "/cache/hub"}
    assert PROFILE.files(HUB) == {}


# --- problems() ---------------------------------------------------------------------------------------------------


def test_fine_specs_have_no_problems() -> None:
    assert PROFILE.problems(HUB) == []
    assert PROFILE.problems(LOCAL) == []
    assert PROFILE.problems(replace(HUB, pipeline_parallel_size=2, gpus=2)) == []
    assert PROFILE.problems(replace(HUB, tensor_parallel_size=8, gpus=8)) == []


def test_hub_model_needs_model_file() -> None:
    [problem] = PROFILE.problems(replace(HUB, model_file=None))
    assert problem.startswith("engine.modelFile: is required with engine.kind 'llama.cpp'")
    assert "Qwen/Qwen2.5-0.5B-Instruct-GGUF" in problem


def test_folder_path_needs_model_file() -> None:
    [problem] = PROFILE.problems(replace(LOCAL, model="/models/qwen"))
    assert problem.startswith("engine.modelFile: is required")


def test_model_file_must_be_gguf() -> None:
    [problem] = PROFILE.problems(replace(HUB, model_file="model.safetensors"))
    assert problem.startswith("engine.modelFile: 'model.safetensors' is not accepted with engine.kind 'llama.cpp'")
    assert ".gguf" in problem


def test_gguf_path_refuses_model_file() -> None:
    [problem] = PROFILE.problems(replace(LOCAL, model_file="other.gguf"))
    assert "remove engine.modelFile" in problem


def test_revision_is_refused() -> None:
    [problem] = PROFILE.problems(replace(HUB, revision="abc123"))
    assert problem.startswith("model.revision: 'abc123' is not accepted")


def test_tensor_and_pipeline_together_are_refused() -> None:
    [problem] = PROFILE.problems(replace(HUB, tensor_parallel_size=2, pipeline_parallel_size=2, gpus=4))
    assert problem.startswith("parallelism: tensorParallelSize 2 with pipelineParallelSize 2 is not accepted")


# --- the tiny GGUF ------------------------------------------------------------------------------------------------


def test_tiny_gguf_is_a_llama_model_with_a_tokenizer(tmp_path: Path) -> None:
    gguf = require_module("gguf", "pip install gguf==0.19.0")
    from tiny_gguf import BLOCK_COUNT, write_tiny_gguf

    reader = gguf.GGUFReader(write_tiny_gguf(tmp_path / "tiny.gguf"))
    architecture = reader.fields["general.architecture"]
    assert bytes(architecture.parts[architecture.data[0]]).decode() == "llama"
    tokens = reader.fields["tokenizer.ggml.tokens"]
    assert 256 < len(tokens.data) < 400
    assert "tokenizer.ggml.merges" in reader.fields and "tokenizer.chat_template" in reader.fields
    assert sum(tensor.name.startswith("blk.0.") for tensor in reader.tensors) == 9
    assert len(reader.tensors) == 3 + 9 * BLOCK_COUNT


# --- a real llama-server ------------------------------------------------------------------------------------------


def _build_version() -> str:
    match = re.search(r"^VERSION=(\S+)$", BUILD_SCRIPT.read_text(), re.MULTILINE)
    assert match, f"no VERSION= line in {BUILD_SCRIPT}"
    return match.group(1)


def cached_binary(environ: dict[str, str] | None = None) -> Path:
    """Where ``tools/build_llama_server.sh`` puts llama-server."""
    env = os.environ if environ is None else environ
    cache = Path(env.get("PULUMI_VLLM_CACHE") or Path(env.get("HOME", str(Path.home()))) / ".cache" / "pulumi-vllm")
    return cache / f"llama-server-{_build_version()}" / "llama-server"


def require_llama_server() -> Path:
    """The llama-server binary (``$PULUMI_VLLM_LLAMA_SERVER`` or the cache); skips when missing, fails under ``$CI``."""
    named = os.environ.get(BINARY_ENV)
    path = Path(named) if named else cached_binary()
    if path.is_file() and os.access(path, os.X_OK):
        return path
    reason = (
        f"llama-server missing: {path} is not an executable; build it with: tools/build_llama_server.sh "
        f"(a few minutes), or set ${BINARY_ENV}"
    )
    if _in_ci():
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Response:
    status: int
    body: bytes

    def json(self) -> dict[str, object]:
        loaded: dict[str, object] = json.loads(self.body)
        return loaded


@dataclass
class Server:
    """A running llama-server, reached on loopback."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path
    spec: ServeSpec

    def request(self, path: str, body: object | None = None, key: str | None = API_KEY) -> Response:
        headers = {"Content-Type": "application/json"}
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return Response(response.status, response.read())
        except urllib.error.HTTPError as error:
            return Response(error.code, error.read())

    def logs(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def _wait_ready(server: Server) -> float:
    start = time.monotonic()
    while time.monotonic() - start < STARTUP_TIMEOUT:
        if server.process.poll() is not None:
            pytest.fail(f"llama-server exited with {server.process.returncode}:\n{server.logs()}", pytrace=False)
        try:
            if server.request("/health", key=None).status == 200:
                return time.monotonic() - start
        except (ConnectionError, urllib.error.URLError, TimeoutError):
            pass
        time.sleep(0.2)
    pytest.fail(f"llama-server not ready within {STARTUP_TIMEOUT} s:\n{server.logs()}", pytrace=False)


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """llama-server started with exactly the profile's argv on the tiny GGUF model, with an API key."""
    binary = require_llama_server()
    require_module("gguf", "pip install gguf==0.19.0")
    from tiny_gguf import CONTEXT_LENGTH, write_tiny_gguf

    folder = tmp_path_factory.mktemp("llamacpp")
    model = write_tiny_gguf(folder / "tiny.gguf")
    port = _free_port()
    # No GPU here: gpus=0 keeps every layer on the CPU (the profile's argv otherwise as in a Pod).
    spec = ServeSpec(
        model=str(model), served_model_name="tiny", max_model_len=CONTEXT_LENGTH, gpus=0, port=port,
        cache_path=str(folder / "cache"), api_key=True,
    )
    argv = PROFILE.command(spec).argv
    argv[0] = str(binary)  # the image's /app/llama-server
    env = {**os.environ, **PROFILE.env(spec), "LLAMA_API_KEY": API_KEY}
    log = folder / "llama-server.log"
    with log.open("wb") as output:
        process = subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    server = Server(process, port, log, spec)
    try:
        _wait_ready(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


def test_llama_server_accepts_every_flag_the_profile_writes() -> None:
    binary = require_llama_server()
    help_text = subprocess.run([str(binary), "--help"], capture_output=True, text=True, timeout=60, check=True).stdout
    specs = [
        HUB, LOCAL, replace(HUB, max_model_len=2048),
        replace(HUB, tensor_parallel_size=2, gpus=2), replace(HUB, pipeline_parallel_size=2, gpus=2),
    ]
    flags = {arg for spec in specs for arg in PROFILE.command(spec).args if arg.startswith("-")}
    assert flags >= {"--hf-repo", "--hf-file", "-m", "--split-mode", "--tensor-split", "--n-gpu-layers", "--metrics"}
    for flag in flags:
        assert re.search(rf"(^|[\s,]){re.escape(flag)}([\s,=]|$)", help_text, re.MULTILINE), flag
    assert "LLAMA_API_KEY" in help_text  # --api-key's environment variable
    for value in ("'all'", "row", "layer"):
        assert value in help_text


def test_llama_server_reports_the_pinned_build() -> None:
    binary = require_llama_server()
    version = subprocess.run([str(binary), "--version"], check=False, capture_output=True, text=True, timeout=60)
    # "version: 0.5.0-dev (build 11312, commit 0c1e570)": the script passes the release number to CMake.
    assert f"(build {LLAMACPP_BUILD}, commit {LLAMACPP_COMMIT[:7]})" in version.stdout + version.stderr


def test_health_is_public(llama_server: Server) -> None:
    response = llama_server.request("/health", key=None)
    assert response.status == 200
    assert response.json() == {"status": "ok"}


def test_models_lists_the_alias(llama_server: Server) -> None:
    response = llama_server.request("/v1/models")
    assert response.status == 200
    ids = [model["id"] for model in response.json()["data"]]  # type: ignore[attr-defined]
    assert ids == ["tiny"]


def test_chat_completion_with_the_key(llama_server: Server) -> None:
    body = {
        "model": "tiny", "messages": [{"role": "user", "content": "hello there"}], "max_tokens": 8, "temperature": 0,
    }
    response = llama_server.request("/v1/chat/completions", body)
    assert response.status == 200, response.body
    answer = response.json()
    assert answer["object"] == "chat.completion"
    assert answer["model"] == "tiny"
    [choice] = answer["choices"]  # type: ignore[misc]
    assert choice["message"]["role"] == "assistant"
    usage = answer["usage"]
    assert usage["prompt_tokens"] > 0 and 0 < usage["completion_tokens"] <= 8  # type: ignore[index]


def test_requests_without_the_key_are_refused(llama_server: Server) -> None:
    body = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}
    assert llama_server.request("/v1/chat/completions", body, key=None).status == 401
    assert llama_server.request("/v1/chat/completions", body, key="wrong").status == 401


def test_metrics_with_the_key(llama_server: Server) -> None:
    response = llama_server.request(PROFILE.metrics_path or "/metrics")
    assert response.status == 200
    text = response.body.decode()
    assert "# TYPE llamacpp:prompt_tokens_total counter" in text
    # The key guards the metrics too: a scraper needs it.
    assert llama_server.request("/metrics", key=None).status == 401
