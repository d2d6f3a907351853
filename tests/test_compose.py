"""Compose files of the Docker target: valid against the Compose schema, and the same containers as Pulumi's."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft7Validator
from schemas import require_schema

import pulumi_vllm.render.docker_files  # noqa: F401 - registers the Docker render files
from pulumi_vllm.cli.render import render_config, render_stack
from pulumi_vllm.docker.compose import compose_escape
from pulumi_vllm.render.manifests import dump_yaml

REPO = Path(__file__).resolve().parents[1]
TOKEN = "hf_COMPOSETOKEN_8f14e45fceea167a"
API_KEY = "sk-COMPOSEKEY-c9f0f895fb98ab91"
CONTAINER = "docker:index/container:Container"
SECRETS_ENV = {"PULUMI_VLLM_SECRET_HF_TOKEN": TOKEN, "PULUMI_VLLM_SECRET_API_KEY": API_KEY}


@cache
def compose_validator() -> Draft7Validator:
    """The Compose schema (``schemas/compose-spec.json`` of the first schema folder that has it)."""
    schema = json.loads(require_schema("schemas/compose-spec.json").read_text())
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema)


def _compose_files(rendered: Any) -> dict[str, dict[str, Any]]:
    return {name: doc for name, doc in rendered.documents if name.startswith("compose")}


def _validate(document: dict[str, Any]) -> None:
    # Validate what `docker compose` would read: the YAML text, parsed back.
    parsed = yaml.safe_load(dump_yaml(document))
    errors = sorted(compose_validator().iter_errors(parsed), key=lambda error: list(error.path))
    assert not errors, [f"{list(error.path)}: {error.message}" for error in errors]


@pytest.fixture(scope="module")
def single() -> Any:
    return render_stack(REPO, "docker-single", env=SECRETS_ENV, secrets={"hfToken": None, "apiKey": None})


@pytest.fixture(scope="module")
def two_hosts() -> Any:
    return render_stack(REPO, "docker-2host", env=SECRETS_ENV, secrets={"hfToken": None, "apiKey": None})


def test_the_validator_rejects_what_compose_rejects() -> None:
    # The schema must be strict enough to matter: an unknown service key and a bad ipc type fail.
    assert list(compose_validator().iter_errors({"services": {"a": {"image": "x", "gpu": "all"}}}))
    assert list(compose_validator().iter_errors({"services": {"a": {"image": "x", "ipc": 1}}}))


def test_single_host_writes_one_valid_compose_file(single: Any) -> None:
    files = _compose_files(single)
    assert list(files) == ["compose.yaml"]
    _validate(files["compose.yaml"])


def test_two_hosts_write_one_valid_compose_file_per_host(two_hosts: Any) -> None:
    files = _compose_files(two_hosts)
    assert sorted(files) == ["compose-gpu-a.yaml", "compose-gpu-b.yaml"]
    for document in files.values():
        _validate(document)
        assert len(document["services"]) == 1


@pytest.mark.parametrize("stack", ["single", "two_hosts"])
def test_compose_reads_secrets_from_the_environment_only(stack: str, request: pytest.FixtureRequest) -> None:
    rendered = request.getfixturevalue(stack)
    for document in _compose_files(rendered).values():
        text = dump_yaml(document)
        assert TOKEN not in text and API_KEY not in text
        for role, service in document["services"].items():
            environment = service["environment"]
            assert environment["HF_TOKEN"].startswith("${HF_TOKEN:?")
            # Only the container that serves the API holds the key.
            if role == "ray-worker":
                assert "VLLM_API_KEY" not in environment
            else:
                assert environment["VLLM_API_KEY"].startswith("${VLLM_API_KEY:?")


def _unescape(value: str) -> str:
    return value.replace("$$", "$")


@pytest.mark.parametrize("stack", ["single", "two_hosts"])
def test_compose_runs_the_containers_pulumi_creates(stack: str, request: pytest.FixtureRequest) -> None:
    rendered = request.getfixturevalue(stack)
    containers = {reg.inputs["name"]: reg.inputs for reg in rendered.run.registrations if reg.type == CONTAINER}
    services = [service for doc in _compose_files(rendered).values() for service in doc["services"].values()]
    assert sorted(service["container_name"] for service in services) == sorted(containers)
    for service in services:
        inputs = containers[service["container_name"]]
        assert [_unescape(part) for part in service["entrypoint"]] == inputs["entrypoints"]
        assert [_unescape(part) for part in service["command"]] == inputs["command"]
        labels = {item["label"]: item["value"] for item in inputs["labels"]}
        assert service["image"] == labels["vllm.pulumi.com/image"]
        devices = service["deploy"]["resources"]["reservations"]["devices"][0]
        gpus = "all" if devices.get("count") == "all" else "device=" + ",".join(devices["device_ids"])
        assert gpus == inputs["gpus"]
        assert (service.get("ipc") == "host") == (inputs.get("ipcMode") == "host")
        assert (service.get("network_mode") == "host") == (inputs.get("networkMode") == "host")
        assert service["restart"] == inputs["restart"]
        assert service["logging"]["options"] == inputs["logOpts"]
        published = [
            {"internal": float(port["target"]), "external": float(port["published"]), "ip": port["host_ip"]}
            for port in service.get("ports", [])
        ]
        assert published == inputs.get("ports", [])
        mount = service["volumes"][0]
        assert mount["target"] == inputs["volumes"][0]["containerPath"]
        if mount["type"] == "bind":
            assert mount["source"] == inputs["volumes"][0]["hostPath"]
        else:
            volume_name = rendered_volume_name(rendered, mount["source"], service)
            assert volume_name == inputs["volumes"][0]["volumeName"]
        if "healthcheck" in service:
            assert [_unescape(part) for part in service["healthcheck"]["test"]] == inputs["healthcheck"]["tests"]
            assert service["healthcheck"]["start_period"] == inputs["healthcheck"]["startPeriod"]
        else:
            assert "healthcheck" not in inputs


def rendered_volume_name(rendered: Any, key: str, service: dict[str, Any]) -> str:
    """The Docker volume name behind the Compose volume ``key`` of the file holding ``service``."""
    for document in _compose_files(rendered).values():
        if service in document["services"].values():
            return str(document["volumes"][key]["name"])
    raise AssertionError("service not found")


def test_private_ipc_and_host_path_are_valid_compose() -> None:
    rendered = render_config(
        {
            "name": "qwen",
            "target": "docker",
            "model": {"id": "Qwen/Qwen2.5-7B-Instruct"},
            "docker": {
                "hosts": [{"name": "box", "gpus": "all"}],
                "ipcHost": False,
                "shmSize": "8Gi",
                "cacheHostPath": "/srv/hf",
                "restart": "no",
            },
        }
    )
    document = _compose_files(rendered)["compose.yaml"]
    _validate(document)
    service = document["services"]["server"]
    assert service["shm_size"] == "8192m" and "ipc" not in service
    assert service["volumes"] == [{"type": "bind", "source": "/srv/hf", "target": "/root/.cache/huggingface"}]
    assert "volumes" not in document
    assert service["deploy"]["resources"]["reservations"]["devices"][0]["count"] == "all"
    # "no" must stay a string in YAML, not become a boolean
    assert yaml.safe_load(dump_yaml(document))["services"]["server"]["restart"] == "no"
    assert "HF_TOKEN" not in service["environment"]


@given(st.text(alphabet=st.sampled_from(list("ab$ {}:-_")), max_size=30))
def test_escaping_survives_compose_interpolation(value: str) -> None:
    escaped = compose_escape(value)
    # Compose turns "$$" into "$" and interpolates any other "$": after escaping, none is left.
    assert escaped.replace("$$", "").count("$") == 0
    assert _unescape(escaped) == value
