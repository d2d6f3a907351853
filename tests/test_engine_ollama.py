"""The Ollama profile: the serve-and-pull script, the environment, readiness and refusals, for Ollama 0.40.2.

No Ollama server runs here (no registry reachable from this workplace ships the Go binary, and a model
pull needs the Ollama registry). The PyPI ``ollama`` package is only the HTTP client, with nothing that
reads a server's settings, so it is not used. What runs for real: the container's script under
``/bin/sh`` (dash, as in Ollama's Ubuntu image) against a stand-in ``ollama`` executable that records
its calls, so ordering, quoting, failure and signal handling are tested as the shell executes them; the
health check under bash against a local HTTP server; and the policy pack's reader of Ollama commands.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from engines import profile_container, require_program, status_server

from pulumi_vllm.config import ConfigError, parse_stack_config
from pulumi_vllm.engine.other_engines import engine_commands
from pulumi_vllm.engine.profiles import ServeSpec, profile
from pulumi_vllm.engine.profiles.ollama import OLLAMA_IMAGE, OLLAMA_VERSION, PROFILE, ollama_name, serve_script
from pulumi_vllm.engine.profiles.stack import _ENGINE_FIELDS
from pulumi_vllm.plan import plan_serving

MODEL = "llama3.1:8b"
SPEC = ServeSpec(model=MODEL, served_model_name=MODEL, port=PROFILE.port)
ALIASED = replace(SPEC, served_model_name="chat")

# --- the profile's facts --------------------------------------------------------------------------------------


def test_profile_is_the_ollama_kind() -> None:
    assert profile("ollama") is PROFILE
    assert PROFILE.kind == "ollama" and PROFILE.title == "Ollama"


def test_image_is_pinned_to_the_version_the_settings_are_written_for() -> None:
    assert OLLAMA_VERSION == "0.40.2"
    assert OLLAMA_IMAGE == PROFILE.image == "ollama/ollama:0.40.2"
    assert PROFILE.version == OLLAMA_VERSION and "latest" not in PROFILE.image
    assert PROFILE.docs.startswith("https://docs.ollama.com/")


def test_facts_of_the_server() -> None:
    assert PROFILE.port == 11434
    assert PROFILE.health_path == "/" and PROFILE.ready_path == "/api/version"
    assert PROFILE.metrics_path is None
    assert "/v1/chat/completions" in PROFILE.openai_paths and "/v1/models" in PROFILE.openai_paths
    assert PROFILE.api_key_env is None
    assert "Ollama model name" in PROFILE.model_kinds


def test_parallelism_facts() -> None:
    assert not PROFILE.splits_heads and PROFILE.max_tensor_parallel == 1 and PROFILE.pipeline
    assert PROFILE.docker and not PROFILE.multi_node and not PROFILE.vllm_based
    assert "pipelineParallelSize" in PROFILE.parallelism


def test_honours_only_the_context_length() -> None:
    assert PROFILE.honours <= set(_ENGINE_FIELDS)
    assert PROFILE.honours == {"max_model_len"}


# --- command(), env(), ready_command() -----------------------------------------------------------------------


def test_command_is_a_shell_script_that_serves_and_pulls() -> None:
    command = PROFILE.command(SPEC)
    assert command.command == ("/bin/sh", "-c")
    (script,) = command.args
    assert script == serve_script(MODEL, MODEL)
    lines = script.splitlines()
    assert lines[0] == "ollama serve &"
    assert any(line.startswith(f"ollama show {MODEL} ") and f"ollama pull {MODEL}" in line for line in lines)
    assert not any(line.startswith("ollama cp") for line in lines)
    assert 'wait "$server"' in script


def test_a_served_name_is_an_ollama_copy() -> None:
    script = PROFILE.command(ALIASED).args[0]
    assert f"ollama cp {MODEL} chat " in script
    assert PROFILE.ready_command(ALIASED) == ("ollama", "show", "chat")
    assert PROFILE.ready_command(SPEC) == ("ollama", "show", MODEL)


def test_names_are_shell_quoted() -> None:
    script = serve_script("hf.co/user/repo:Q4_K_M", "it's; rm -rf /")
    assert "ollama cp hf.co/user/repo:Q4_K_M 'it'\"'\"'s; rm -rf /'" in script


def test_env_listens_on_every_interface_and_keeps_models_in_the_cache() -> None:
    env = PROFILE.env(replace(SPEC, cache_path="/cache/hf/"))
    assert env == {"OLLAMA_HOST": "0.0.0.0:11434", "OLLAMA_MODELS": "/cache/hf/ollama", "OLLAMA_KEEP_ALIVE": "-1"}


def test_max_model_len_is_the_context_length() -> None:
    assert PROFILE.env(replace(SPEC, max_model_len=8192))["OLLAMA_CONTEXT_LENGTH"] == "8192"


def test_pipeline_over_the_pods_gpus_spreads_the_layers() -> None:
    spread = replace(SPEC, gpus=2, pipeline_parallel_size=2)
    assert PROFILE.env(spread)["OLLAMA_SCHED_SPREAD"] == "1"
    assert PROFILE.problems(spread) == []
    assert "OLLAMA_SCHED_SPREAD" not in PROFILE.env(replace(SPEC, gpus=2))


def test_policy_pack_reads_the_script_as_ollama() -> None:
    env = PROFILE.env(ALIASED)
    (view,) = engine_commands(profile_container(PROFILE, ALIASED))
    assert view.engine == "ollama"
    assert view.program == ("ollama", "serve")
    assert view.tensor_flag is None  # layers are split, not heads: no head rule
    assert view.health_path == PROFILE.health_path
    assert next(env[name] for name in view.cache_env if name in env) == f"{ALIASED.cache_path}/ollama"


# --- problems() ---------------------------------------------------------------------------------------------------


def test_a_plain_spec_has_no_problems() -> None:
    assert PROFILE.problems(SPEC) == []
    assert PROFILE.problems(ALIASED) == []


@pytest.mark.parametrize(
    "name", ["llama3.1:8b", "llama3.1", "library/llama3.1:8b", "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M",
             "registry.ollama.ai/library/qwen3:4b"],
)
def test_ollama_names(name: str) -> None:
    assert ollama_name(name)


@pytest.mark.parametrize(
    "name", ["", "/models/llama.gguf", "a b", "x/y/z/w", "name:", "a..b", "ns.dot/m:1", "h/ns.dot/m", "x" * 129],
)
def test_not_ollama_names(name: str) -> None:
    assert not ollama_name(name)


def test_a_path_is_not_a_model_name() -> None:
    (message,) = PROFILE.problems(replace(SPEC, model="/models/llama.gguf", served_model_name="/models/llama.gguf"))
    assert message.startswith("model.id: '/models/llama.gguf' is not accepted with engine.kind 'ollama'")


def test_a_served_name_ollama_cp_cannot_take_is_refused() -> None:
    (message,) = PROFILE.problems(replace(SPEC, served_model_name="my chat"))
    assert message.startswith("model.servedModelName: 'my chat' is not accepted with engine.kind 'ollama'")


def test_tensor_parallelism_is_refused() -> None:
    (message,) = PROFILE.problems(replace(SPEC, tensor_parallel_size=2, gpus=2))
    assert message.startswith("parallelism.tensorParallelSize: 2 is not accepted with engine.kind 'ollama'")
    assert "at most 1" in message


def test_a_pipeline_smaller_than_the_pod_is_refused() -> None:
    (message,) = PROFILE.problems(replace(SPEC, pipeline_parallel_size=2, gpus=4))
    assert message.startswith("parallelism.pipelineParallelSize: 2 is not accepted with engine.kind 'ollama'")
    assert "use 4 or 1" in message


def test_revision_and_remote_code_are_refused() -> None:
    problems = PROFILE.problems(replace(SPEC, revision="main", trust_remote_code=True))
    assert [p.split(":", 1)[0] for p in problems] == ["model.revision", "model.trustRemoteCode"]


def test_the_stack_refuses_an_engine_field_ollama_does_not_map() -> None:
    values = {
        "model": {"id": MODEL}, "resources": {"gpuType": "L4"},
        "engine": {"kind": "ollama", "quantization": "awq"},
    }
    with pytest.raises(ConfigError) as error:
        plan_serving(parse_stack_config(values))
    assert "pulumi-vllm:engine.quantization: 'awq' is not accepted with engine.kind 'ollama'" in str(error.value)


# --- the script runs for real under /bin/sh, against a stand-in `ollama` -----------------------------------------

FAKE_OLLAMA = textwrap.dedent(
    """\
    #!/bin/sh
    # A stand-in for the ollama CLI: records each call, keeps models as files under $STATE/models.
    printf '%s\\n' "$*" >> "$STATE/calls"
    case "$1" in
      serve)
        [ -n "$FAIL_SERVE" ] && exit 3
        trap 'echo stopped >> "$STATE/calls"; exit "${SERVE_EXIT:-0}"' TERM
        echo $$ > "$STATE/serve.pid"
        touch "$STATE/up"
        while :; do sleep 0.05; done ;;
      list) [ -e "$STATE/up" ] ;;
      show) [ -e "$STATE/models/$2" ] ;;
      pull)
        [ -n "$FAIL_PULL" ] && exit 1
        mkdir -p "$STATE/models" && touch "$STATE/models/$2" ;;
      cp) [ -e "$STATE/models/$2" ] && touch "$STATE/models/$3" ;;
      *) exit 2 ;;
    esac
    """
)


@dataclass
class Container:
    """The stand-in container: the directory the fake ollama keeps its state in, and the environment."""

    state: Path
    env: dict[str, str]

    def calls(self) -> list[str]:
        path = self.state / "calls"
        return path.read_text().splitlines() if path.exists() else []

    def start(self, spec: ServeSpec, **env: str) -> subprocess.Popen[bytes]:
        command = PROFILE.command(spec)
        return subprocess.Popen([*command.command, *command.args], env={**self.env, **env})

    def ready(self, spec: ServeSpec) -> bool:
        ready = PROFILE.ready_command(spec)
        assert ready is not None
        return subprocess.run(ready, check=False, env=self.env, capture_output=True, timeout=10).returncode == 0


@pytest.fixture
def container(tmp_path: Path) -> Iterator[Container]:
    if shutil.which("sh") is None:
        pytest.fail("/bin/sh is missing", pytrace=False)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "ollama"
    fake.write_text(FAKE_OLLAMA)
    fake.chmod(0o755)
    state = tmp_path / "state"
    state.mkdir()
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "STATE": str(state)}
    yield Container(state, env)
    # A test that failed half-way may leave the stand-in server behind: end it.
    pid_file = state / "serve.pid"
    if pid_file.exists():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)


def _until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def _stop(process: subprocess.Popen[bytes]) -> int:
    try:
        return process.wait(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()


def test_script_pulls_copies_then_serves_until_sigterm(container: Container) -> None:
    process = container.start(ALIASED)
    try:
        _until(lambda: container.ready(ALIASED))
        assert process.poll() is None, "the script must keep the server in the foreground"
        # The readiness probe's own `ollama show` calls are in the record too: leave them out.
        calls = [call for call in container.calls() if call != "show chat"]
        assert calls.index("serve") < calls.index(f"show {MODEL}") < calls.index(f"pull {MODEL}")
        assert calls.index(f"pull {MODEL}") < calls.index(f"cp {MODEL} chat")
        assert calls.index("list") < calls.index(f"show {MODEL}")  # the server answered before the pull
        process.send_signal(signal.SIGTERM)
        assert _stop(process) == 0
        assert container.calls()[-1] == "stopped"  # the server was asked to stop, and did
    finally:
        if process.poll() is None:
            process.kill()


def test_a_cached_model_is_not_pulled_again(container: Container) -> None:
    (container.state / "models").mkdir()
    (container.state / "models" / MODEL).touch()
    process = container.start(SPEC)
    try:
        _until(lambda: f"show {MODEL}" in container.calls())
        _until(lambda: container.ready(SPEC))
        process.send_signal(signal.SIGTERM)
        assert _stop(process) == 0
        assert not any(call.startswith("pull") for call in container.calls())
    finally:
        if process.poll() is None:
            process.kill()


def test_a_failed_pull_stops_the_server_and_fails(container: Container) -> None:
    process = container.start(SPEC, FAIL_PULL="1")
    assert _stop(process) == 1
    calls = container.calls()
    assert f"pull {MODEL}" in calls and calls[-1] == "stopped"
    assert not container.ready(SPEC)


def test_a_server_that_dies_fails_the_script_without_pulling(container: Container) -> None:
    process = container.start(SPEC, FAIL_SERVE="1")
    assert _stop(process) == 1
    assert not any(call.startswith("pull") for call in container.calls())


def test_the_server_exit_status_is_the_containers(container: Container) -> None:
    process = container.start(SPEC, SERVE_EXIT="7")
    try:
        _until(lambda: container.ready(SPEC))
        # The server stops by itself (as on a crash), not through the script: the script ends with its status.
        os.kill(int((container.state / "serve.pid").read_text()), signal.SIGTERM)
        assert _stop(process) == 7
    finally:
        if process.poll() is None:
            process.kill()


def test_quoted_names_reach_ollama_as_one_word(container: Container) -> None:
    spec = replace(SPEC, served_model_name="odd name;x")
    process = container.start(spec)
    try:
        _until(lambda: (container.state / "models" / "odd name;x").exists())
        assert f"cp {MODEL} odd name;x" in container.calls()
        process.send_signal(signal.SIGTERM)
        assert _stop(process) == 0
    finally:
        if process.poll() is None:
            process.kill()


# --- the health check runs for real under bash ---------------------------------------------------------------------


def test_http_check_needs_neither_curl_nor_python() -> None:
    require_program("bash", "apt-get install bash")
    with status_server({"/": 200}, b"Ollama is running") as port:
        ok = PROFILE.http_check(f"http://127.0.0.1:{port}/")
        assert ok[0] == "bash" and "curl" not in ok[2] and "python" not in ok[2]
        assert subprocess.run(ok, check=False, capture_output=True, timeout=30).returncode == 0
        missing = PROFILE.http_check(f"http://127.0.0.1:{port}/missing")
        assert subprocess.run(missing, check=False, capture_output=True, timeout=30).returncode != 0
