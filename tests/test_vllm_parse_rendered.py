"""Every vLLM command the package renders, parsed by the installed vLLM's own parser.

Each example stack (every ``Pulumi.*.yaml`` of the repository) and a varied set of stack configs is
rendered offline; the vLLM invocation of every container (Kubernetes workloads, shell scripts of
Ray heads, Docker containers) is found with :mod:`pulumi_vllm.engine.workload` and handed to vLLM: the
server's arguments to ``vllm serve``'s parser and validation, the batch Job's to ``vllm
run-batch``'s. A flag vLLM does not know fails here with vLLM's own message. The parsed values are
then compared with the stack's config, so a flag that vLLM reads differently from what was meant
fails too.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest
from stacks import STACKS, VLLM_STACKS

from pulumi_vllm.cli.render import RenderedStack, render_config, render_stack
from pulumi_vllm.config import StackConfig
from pulumi_vllm.engine.check import VllmArgsError, check_batch_args, check_serve_args
from pulumi_vllm.engine.workload import VllmCommand
from pulumi_vllm.models.rope import rendered_overrides
from pulumi_vllm.render.checks import Invocation
from pulumi_vllm.render.checks import vllm_invocations as find_invocations
from pulumi_vllm.render.engine import stack_files

pytestmark = pytest.mark.vllm

REPO = Path(__file__).resolve().parents[1]

_LINE = {
    "custom_id": "request-1",
    "method": "POST",
    "url": "/v1/chat/completions",
    "body": {"model": "chat", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 16},
}
_LLAMA_70B = {"id": "meta-llama/Llama-3.1-70B-Instruct"}
_SHARED_CACHE = {"accessMode": "ReadWriteMany"}  # every pod of a multi-node model mounts it

CONFIGS: dict[str, dict[str, Any]] = {
    "minimal": {"model": {"id": "Qwen/Qwen2.5-0.5B-Instruct"}},
    "model-settings-and-secrets": {
        "name": "chat",
        "model": {
            "id": "mistralai/Mistral-7B-Instruct-v0.3",
            "revision": "e0bc86c23ce5aae1db576c8cca6f06f1f73af2db",
            "servedModelName": "chat",
            "trustRemoteCode": True,
        },
        "engine": {"dtype": "float16", "maxModelLen": 4096, "gpuMemoryUtilization": 0.85},
        "hfToken": "hf_PARSETEST_0123456789",
        "apiKey": "sk-PARSETEST-0123456789",
    },
    "kv-cache-fp8-and-quantization": {
        "model": {"id": "neuralmagic/Meta-Llama-3.1-8B-Instruct-FP8"},
        "engine": {"dtype": "bfloat16", "kvCacheDtype": "fp8", "quantization": "fp8", "maxModelLen": 32768},
    },
    "kv-cache-fp8-e5m2-awq": {
        "model": {"id": "TheBloke/Llama-2-7B-Chat-AWQ"},
        "engine": {"dtype": "half", "kvCacheDtype": "fp8_e5m2", "quantization": "awq"},
    },
    "extra-args": {
        "model": {"id": "Qwen/Qwen2.5-7B-Instruct", "servedModelName": "qwen"},
        "engine": {
            "dtype": "bfloat16",
            "extraArgs": [
                "--enable-prefix-caching",
                "--max-num-seqs",
                "64",
                "--enable-auto-tool-choice",
                "--tool-call-parser",
                "hermes",
                "--enforce-eager",
                "--max-num-batched-tokens=8192",
            ],
        },
    },
    "tensor-parallel-4": {
        "model": {"id": "meta-llama/Llama-3.1-70B-Instruct"},
        "engine": {"dtype": "bfloat16", "maxModelLen": 8192},
        "parallelism": {"tensorParallelSize": 4},
    },
    "batch-inline-with-server": {
        "model": {"id": "Qwen/Qwen2.5-7B-Instruct", "servedModelName": "chat"},
        "engine": {"dtype": "bfloat16", "maxModelLen": 8192, "extraArgs": ["--enforce-eager"]},
        "batch": {"enabled": True, "inputLines": [_LINE, {**_LINE, "custom_id": "request-2"}]},
    },
    "batch-path-output-claim-no-server": {
        "model": {"id": "Qwen/Qwen2.5-7B-Instruct"},
        "engine": {"kvCacheDtype": "fp8"},
        "parallelism": {"tensorParallelSize": 2},
        "replicas": 0,
        "batch": {
            "enabled": True,
            "inputPath": "/root/.cache/huggingface/requests.jsonl",
            "outputClaim": "batch-results",
            "outputFile": "results.jsonl",
        },
    },
    "multi-node-plain": {
        "model": _LLAMA_70B,
        "cache": _SHARED_CACHE,
        "parallelism": {"tensorParallelSize": 4, "pipelineParallelSize": 2, "gpusPerNode": 4},
    },
    "multi-node-leaderworkerset": {
        "model": _LLAMA_70B,
        "cache": _SHARED_CACHE,
        "parallelism": {
            "tensorParallelSize": 4,
            "pipelineParallelSize": 2,
            "gpusPerNode": 4,
            "backend": "leaderworkerset",
        },
    },
    "multi-node-kuberay": {
        "model": _LLAMA_70B,
        "cache": _SHARED_CACHE,
        "parallelism": {"tensorParallelSize": 4, "pipelineParallelSize": 2, "gpusPerNode": 4, "backend": "kuberay"},
    },
    "docker-one-host": {
        "target": "docker",
        "model": {"id": "Qwen/Qwen2.5-7B-Instruct", "servedModelName": "qwen"},
        "engine": {"dtype": "bfloat16", "maxModelLen": 16384, "extraArgs": ["--enable-prefix-caching"]},
        "docker": {"hosts": [{"name": "local", "gpus": ["0", "1"]}]},
        "parallelism": {"tensorParallelSize": 2},
        "apiKey": "sk-PARSETEST-docker",
    },
    "data-and-expert-parallel": {
        "model": {"id": "Qwen/Qwen3-30B-A3B"},
        "parallelism": {"tensorParallelSize": 2, "dataParallelSize": 2, "enableExpertParallel": True},
        "batch": {"enabled": True, "inputLines": [_LINE]},
    },
    "rope-scaling-yarn": {
        "model": {"id": "Qwen/Qwen3-32B"},
        "engine": {"maxModelLen": 131072, "hfOverrides": {"rope_parameters": {
            "rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768, "rope_theta": 1000000}}},
        "parallelism": {"tensorParallelSize": 2},
    },
    "pooling-runner": {
        "model": {"id": "Qwen/Qwen3-Embedding-8B"},
        "engine": {"runner": "pooling", "convert": "embed"},
    },
}
"""Stack configs beyond the example stacks: each vLLM setting the package turns into a flag."""


def vllm_invocations(rendered: RenderedStack) -> list[Invocation]:
    """Every vLLM invocation in a rendered stack; fails if a command visibly runs vLLM but none was read."""
    found, unread = find_invocations(rendered.run)
    assert not unread, "vLLM commands the workload reader did not find:\n" + "\n".join(unread)
    return found


def parse_with_vllm(invocation: Invocation) -> argparse.Namespace:
    """vLLM's parse of one invocation; a refusal fails the test with vLLM's own message."""
    check = check_serve_args if invocation.command.mode == "serve" else check_batch_args
    try:
        return check(list(invocation.command.args))
    except VllmArgsError as error:
        pytest.fail(
            f"{invocation.where}: vLLM refuses `{invocation.command.describe()}`:\n"
            f"  {error.message}",
            pytrace=False,
        )


def assert_reads_the_config(namespace: argparse.Namespace, config: StackConfig, where: str) -> None:
    """What vLLM parsed is what the stack's config asks for."""
    model, engine, parallelism = config.model, config.engine, config.parallelism
    expected: dict[str, Any] = {
        "model": model.id,
        "revision": model.revision,
        "trust_remote_code": model.trust_remote_code,
        "dtype": engine.dtype,
        "max_model_len": engine.max_model_len,
        "gpu_memory_utilization": engine.gpu_memory_utilization,
        "kv_cache_dtype": engine.kv_cache_dtype,
        "quantization": engine.quantization,
        "tensor_parallel_size": parallelism.tensor_parallel_size,
        "pipeline_parallel_size": parallelism.pipeline_parallel_size,
        "data_parallel_size": parallelism.data_parallel_size,
        "enable_expert_parallel": parallelism.enable_expert_parallel,
        "hf_overrides": rendered_overrides(engine.hf_overrides),
        "runner": engine.runner if engine.runner != "generate" else "auto",
        "convert": engine.convert or "auto",
    }
    if model.served_model_name:
        expected["served_model_name"] = [model.served_model_name]
    parsed = {name: getattr(namespace, name) for name in expected}
    assert parsed == expected, f"{where}: vLLM reads {parsed}, the config says {expected}"


def check_stack(rendered: RenderedStack) -> None:
    """Parse every vLLM command of ``rendered`` with vLLM and compare it with the stack's config."""
    invocations = vllm_invocations(rendered)
    config = rendered.config
    # Per model (one, or each entry of `models`): one server (a Deployment, a Ray head or a Docker
    # container) and, when enabled, one batch Job.
    members = list(config.models.values()) or list(config.pools.values()) or [config]  # pools: disaggregation
    modes = sorted(invocation.command.mode for invocation in invocations)
    expected_modes = sorted(mode for member in members for mode in ["serve", *(["batch"] if member.batch.enabled else [])])
    found = [f"{invocation.where}: {invocation.command.describe()}" for invocation in invocations]
    assert modes == expected_modes, f"expected vLLM commands {expected_modes}, found:\n" + "\n".join(found)
    for invocation in invocations:
        namespace = parse_with_vllm(invocation)
        # The model group whose objects carry this command (objects are named after the group).
        (member,) = [m for m in members if len(members) == 1 or any(
            f"/{m.name}{suffix}," in invocation.where for suffix in ("", "-batch"))]
        assert_reads_the_config(namespace, member, invocation.where)
        if invocation.command.mode == "batch":
            assert namespace.input_file and namespace.output_file, invocation.where
        else:
            assert namespace.port == int(invocation.command.value("--port") or 8000), invocation.where


def test_every_example_stack_is_found() -> None:
    """Stacks are discovered, not listed: a new Pulumi.<stack>.yaml is checked without editing this file."""
    assert "dev" in STACKS
    assert len(STACKS) == len(stack_files(REPO))


@pytest.mark.parametrize("stack", VLLM_STACKS)
def test_example_stack_commands_parse_with_vllm(stack: str) -> None:
    check_stack(render_stack(REPO, stack, env={}))


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_config_commands_parse_with_vllm(name: str) -> None:
    check_stack(render_config({"name": "parse", **CONFIGS[name]}))


def test_a_misspelt_flag_fails_with_vllms_message() -> None:
    """The failure a misspelt rendered flag produces: vLLM's words, the workload and the command line."""
    rendered = render_config({"name": "parse", **CONFIGS["minimal"]})
    (invocation,) = vllm_invocations(rendered)
    args = [("--tensor-paralel-size" if arg == "--tensor-parallel-size" else arg) for arg in invocation.command.args]
    broken = Invocation(invocation.where, VllmCommand("serve", invocation.command.program, tuple(args)))
    with pytest.raises(pytest.fail.Exception) as caught:
        parse_with_vllm(broken)
    message = str(caught.value)
    assert "unrecognized arguments: --tensor-paralel-size 1" in message
    assert message.startswith("Deployment default/parse")


def test_render_check_vllm_accepts_the_example_stacks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pulumi_vllm.cli import main

    for stack in ("dev", "llama-405b-2node", "docker-2host", "qwen-batch"):
        assert main(["render", "--stack", stack, "--out", str(tmp_path / stack), "--project", str(REPO), "--check-vllm"]) == 0
        assert "command(s) accepted" in capsys.readouterr().out


def test_render_check_vllm_refuses_a_bad_extra_arg_with_vllms_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A misspelt extra flag is refused before the render, in vLLM's words, from the pinned release's flags."""
    from pulumi_vllm.cli import main

    project = tmp_path / "project"
    project.mkdir()
    for name in ("Pulumi.yaml", "__main__.py"):
        (project / name).write_text((REPO / name).read_text())
    (project / "Pulumi.typo.yaml").write_text(
        "config:\n  pulumi-vllm:model:\n    id: Qwen/Qwen2.5-7B-Instruct\n"
        "  pulumi-vllm:engine:\n    extraArgs: [--enable-prefix-cahing]\n"
    )
    code = main(["render", "--stack", "typo", "--out", str(tmp_path / "out"), "--project", str(project), "--check-vllm"])
    err = capsys.readouterr().err
    assert code == 2
    assert "pulumi-vllm:engine.extraArgs" in err
    assert "unrecognized arguments: --enable-prefix-cahing" in err
    assert not (tmp_path / "out").exists()
