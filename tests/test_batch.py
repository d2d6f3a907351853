"""The batch inference Job: the server's settings, the batch command from the same builder, safe Job settings."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pulumi_vllm.cli.render import render_config
from pulumi_vllm.config import ConfigError, parse_stack_config
from pulumi_vllm.plan import plan_serving

LINE = {
    "custom_id": "r1",
    "method": "POST",
    "url": "/v1/chat/completions",
    "body": {"model": "m", "messages": [{"role": "user", "content": "hi"}]},
}
BASE = {"name": "llm", "model": {"id": "meta-llama/Llama-3.1-8B-Instruct"}, "hfToken": "hf_x"}


def _objects(rendered: Any, kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in rendered.documents if isinstance(doc, dict) and doc.get("kind") == kind]


def test_job_shares_the_server_pod_and_runs_run_batch() -> None:
    rendered = render_config({**BASE, "batch": {"enabled": True, "inputLines": [LINE, {**LINE, "custom_id": "r2"}]}})
    (job,) = _objects(rendered, "Job")
    (deployment,) = _objects(rendered, "Deployment")
    (config_map,) = _objects(rendered, "ConfigMap")
    job_pod = job["spec"]["template"]["spec"]
    server_pod = deployment["spec"]["template"]["spec"]
    job_container, server_container = job_pod["containers"][0], server_pod["containers"][0]
    assert job_container["command"] == ["vllm", "run-batch"]
    args = job_container["args"]
    assert args[:6] == ["-i", "/batch/input/input.jsonl", "-o", "/root/.cache/huggingface/batch-output.jsonl", "--model",
                        "meta-llama/Llama-3.1-8B-Instruct"]
    # Same engine flags as the server (the same builder): everything after the server's --port value, but the
    # server's drain on SIGTERM (availability.drainSeconds), which a batch run has no use for.
    server_flags = list(server_container["args"][5:])
    at = server_flags.index("--shutdown-timeout")
    assert server_flags[at + 1] == "45"
    assert args[6:] == server_flags[:at] + server_flags[at + 2:]
    for field in ("image", "resources", "env"):
        assert job_container[field] == server_container[field]
    assert job_pod["restartPolicy"] == "Never"
    assert "startupProbe" not in job_container
    assert job["spec"]["backoffLimit"] == 1 and job["spec"]["ttlSecondsAfterFinished"] == 86400
    lines = [json.loads(line) for line in config_map["data"]["input.jsonl"].splitlines()]
    assert [line["custom_id"] for line in lines] == ["r1", "r2"]


def test_job_is_replaced_not_updated() -> None:
    rendered = render_config({**BASE, "batch": {"enabled": True, "inputPath": "/root/.cache/huggingface/in.jsonl",
                                                "outputClaim": "results"}})
    registration = next(reg for reg in rendered.run.registrations if reg.type == "kubernetes:batch/v1:Job")
    assert registration.delete_before_replace
    (job,) = _objects(rendered, "Job")
    volumes = {volume["name"]: volume for volume in job["spec"]["template"]["spec"]["volumes"]}
    assert volumes["batch-output"]["persistentVolumeClaim"]["claimName"] == "results"
    assert job["spec"]["template"]["spec"]["containers"][0]["args"][1:4:2] == [
        "/root/.cache/huggingface/in.jsonl", "/batch/output/batch-output.jsonl"]
    assert _objects(rendered, "ConfigMap") == []


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        ({"enabled": True}, "set exactly one of inputLines or inputPath"),
        ({"enabled": True, "inputPath": "/a", "inputLines": [LINE]}, "set exactly one of inputLines or inputPath"),
        ({"enabled": True, "inputPath": "/a", "outputFile": "x/y.jsonl"}, "must be a file name"),
        ({"enabled": True, "inputPath": "/a", "backoffLimit": 50}, "pulumi-vllm:batch.backoffLimit"),
    ],
)
def test_bad_batch_config(batch: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_stack_config({**BASE, "batch": batch})


def test_batch_needs_a_single_pod_model() -> None:
    config = parse_stack_config(
        {"model": {"id": "meta-llama/Llama-3.1-405B-Instruct-FP8"},
         "parallelism": {"tensorParallelSize": 8, "pipelineParallelSize": 2, "gpusPerNode": 8},
         "cache": {"accessMode": "ReadWriteMany"}, "batch": {"enabled": True, "inputPath": "/a"}}
    )
    with pytest.raises(ConfigError, match="pulumi-vllm:batch.enabled"):
        plan_serving(config)
