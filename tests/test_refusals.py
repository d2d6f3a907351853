"""Bad input refused before the cluster would refuse it, and GPU pods that schedule on tainted GPU nodes.

Each class of mistake here was seen passing validation and only failing at ``pulumi up`` (or deploying
pods that never run) on a real API server; each test shows it refused first, with one message naming
the key as the user writes it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from stacks import SERVING_STACKS, STACKS

from pulumi_vllm.cli import main
from pulumi_vllm.cli.render import render_config, render_stack
from pulumi_vllm.config import ConfigError, load_stack_config, parse_stack_config
from pulumi_vllm.plan import plan_serving

REPO = Path(__file__).resolve().parents[1]
LLAMA_8B = {"model": {"id": "meta-llama/Llama-3.1-8B-Instruct"}}
BATCH = {"enabled": True, "inputLines": [{"custom_id": "r1", "method": "POST", "url": "/v1/chat/completions",
                                         "body": {"model": "m", "messages": [{"role": "user", "content": "hi"}]}}]}


def _project(tmp_path: Path, stack_config: dict[str, Any]) -> Path:
    (tmp_path / "Pulumi.yaml").write_text((REPO / "Pulumi.yaml").read_text())
    (tmp_path / "__main__.py").write_text((REPO / "__main__.py").read_text())
    (tmp_path / "Pulumi.test.yaml").write_text(yaml.safe_dump({"config": stack_config}))
    return tmp_path


# 1. Secrets written in plaintext in a stack file


@pytest.mark.parametrize("key", ["hfToken", "apiKey"])
def test_a_plaintext_secret_in_the_stack_file_is_refused_with_the_fix(
    tmp_path: Path, key: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    project = _project(tmp_path, {"pulumi-vllm:model": {"id": "Qwen/Qwen2.5-7B-Instruct"}, f"pulumi-vllm:{key}": "hf_plain123"})
    # Even with the offline render's secret variables set (as `make demo` does), a plain value is refused.
    monkeypatch.setenv("PULUMI_VLLM_SECRET_HF_TOKEN", "demo")
    monkeypatch.setenv("PULUMI_VLLM_SECRET_API_KEY", "demo")
    code = main(["render", "--project", str(project), "--stack", "test", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert f"pulumi-vllm:{key}: a plaintext value is not accepted" in err
    assert f"pulumi config set --secret {key} <value>" in err
    assert "hf_plain123" not in err
    assert not (tmp_path / "out").exists()


def test_a_secure_value_in_the_stack_file_is_accepted(tmp_path: Path) -> None:
    project = _project(
        tmp_path, {"pulumi-vllm:model": {"id": "Qwen/Qwen2.5-7B-Instruct"}, "pulumi-vllm:hfToken": {"secure": "v1:abc"}}
    )
    rendered = render_stack(project, "test", env={"PULUMI_VLLM_SECRET_HF_TOKEN": "hf_real"})
    assert any(name.startswith("secret-") for name, _ in rendered.documents)


def test_the_program_refuses_a_key_pulumi_does_not_call_secret() -> None:
    """Under the CLI the program reads Pulumi's list of secret keys (PULUMI_CONFIG_SECRET_KEYS)."""
    flat = {"pulumi-vllm:model": '{"id": "m"}', "pulumi-vllm:apiKey": "k"}
    with pytest.raises(ConfigError, match="pulumi-vllm:apiKey: a plaintext value is not accepted"):
        load_stack_config(flat, secret_keys=[])
    assert load_stack_config(flat, secret_keys=["pulumi-vllm:apiKey"]).api_key is not None


# 3. The model's own limits


def test_a_context_beyond_the_model_is_refused_in_vllms_words_before_the_capacity_check() -> None:
    config = parse_stack_config(
        {"model": {"id": "Qwen/Qwen2.5-7B-Instruct"}, "engine": {"maxModelLen": 65536}, "resources": {"gpuType": "L4"}}
    )
    with pytest.raises(ConfigError) as error:
        plan_serving(config)
    message = str(error.value)
    assert message.startswith("pulumi-vllm:engine.maxModelLen: 65536 is not accepted")
    assert "User-specified max_model_len (65536) is greater than the derived max_model_len" in message
    assert "max_position_embeddings=32768" in message
    assert "gpuType" not in message  # not blamed on the GPU


def test_the_long_context_override_vllm_offers_is_honoured() -> None:
    config = parse_stack_config(
        {"model": {"id": "Qwen/Qwen2.5-7B-Instruct"}, "engine": {"maxModelLen": 65536,
                                                               "env": {"VLLM_ALLOW_LONG_MAX_MODEL_LEN": "1"}}}
    )
    assert plan_serving(config).config.engine.max_model_len == 65536


# 4. Quotas below the stack's own needs


def test_a_gpu_quota_below_the_stacks_gpus_is_refused() -> None:
    config = parse_stack_config(
        {**LLAMA_8B, "replicas": 2, "cache": {"accessMode": "ReadWriteMany"}, "quota": {"enabled": True, "gpus": 1}}
    )
    with pytest.raises(ConfigError, match=r"pulumi-vllm:quota.gpus: 1 is not accepted: the stack itself requests 2"):
        plan_serving(config)


def test_the_default_quota_counts_the_batch_job_too() -> None:
    plan = plan_serving(parse_stack_config({**LLAMA_8B, "batch": BATCH,
                                            "quota": {"enabled": True}}))
    assert plan.quota_gpus == 2  # the server's GPU and the Job's GPU, held at the same time


def test_the_quota_exists_before_the_workloads() -> None:
    rendered = render_config({**LLAMA_8B, "quota": {"enabled": True}, "batch": BATCH})
    registrations = rendered.run.registrations
    quota = [reg.urn for reg in registrations if reg.type.endswith("GpuQuota") or reg.type.endswith("ResourceQuota")]
    assert len(quota) == 2
    order = [reg.type for reg in registrations]
    assert order.index("kubernetes:core/v1:ResourceQuota") < order.index("kubernetes:apps/v1:Deployment")
    for kind in ("pulumi-vllm:index:VllmServer", "pulumi-vllm:index:BatchInference"):
        (workload,) = [reg for reg in registrations if reg.type == kind]
        assert set(quota) & set(workload.dependencies), f"{kind} does not wait for the quota"


# 7. GPU pods schedule on common GPU nodes

GPU_TAINT = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def _pod_specs(document: dict[str, Any]) -> list[dict[str, Any]]:
    found = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "containers" in node and isinstance(node["containers"], list):
                found.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)
    return found


def _gpu_pods(rendered: Any) -> list[dict[str, Any]]:
    pods = []
    for _, document in rendered.documents:
        if isinstance(document, dict) and "kind" in document:
            for spec in _pod_specs(document):
                limits = [c.get("resources", {}).get("limits", {}) for c in spec["containers"]]
                if any("nvidia.com/gpu" in item for item in limits):
                    pods.append(spec)
    return pods


@pytest.mark.parametrize("stack", [s for s in SERVING_STACKS if "docker" not in s])
def test_every_gpu_pod_of_every_example_stack_tolerates_the_gpu_taint(stack: str) -> None:
    rendered = render_stack(REPO, stack, env={})
    pods = _gpu_pods(rendered)
    assert pods
    for spec in pods:
        assert GPU_TAINT in spec.get("tolerations", []), stack


def test_the_batch_job_shares_the_servers_scheduling_settings() -> None:
    scheduling = {"nodeSelector": {"pool": "gpu"}, "runtimeClassName": "nvidia",
                  "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "llm", "effect": "NoSchedule"}]}
    rendered = render_config({**LLAMA_8B, "batch": BATCH,
                              "resources": {k: v for k, v in scheduling.items()}})
    pods = _gpu_pods(rendered)
    assert len(pods) == 2  # the Deployment's and the Job's
    for spec in pods:
        assert {key: spec.get(key) for key in scheduling} == scheduling


def test_an_empty_toleration_list_means_none() -> None:
    rendered = render_config({**LLAMA_8B, "resources": {"tolerations": []}})
    assert all("tolerations" not in spec for spec in _gpu_pods(rendered))


# 9. Rendered folders kubectl can apply

KUBECTL_EXTENSIONS = (".json", ".yaml", ".yml")
"""The files ``kubectl apply -f DIR`` (and ``-R``) reads: k8s.io/cli-runtime, pkg/resource (FileExtensions)."""


@pytest.mark.parametrize("stack", [s for s in STACKS if "docker" not in s])
def test_every_file_kubectl_apply_reads_is_a_kubernetes_object(tmp_path: Path, stack: str) -> None:
    out = tmp_path / stack
    assert main(["render", "--stack", stack, "--out", str(out), "--project", str(REPO)]) == 0
    read = [path for path in out.glob("*") if path.is_file() and path.suffix in KUBECTL_EXTENSIONS]
    assert read
    for path in read:
        document = yaml.safe_load(path.read_text())
        assert {"apiVersion", "kind", "metadata"} <= set(document), path.relative_to(out)
        assert document["metadata"].get("name"), path.relative_to(out)
    assert (out / "_pulumi" / "resources.txt").is_file()  # Pulumi's metadata stays, out of kubectl's way
    # Below the top level (what `kubectl apply -R` would add), only the Helm releases and the cloud resources are
    # YAML, and they are not Kubernetes objects: docs/kubernetes.md says to apply without -R then.
    nested = {path.parent.name for path in out.rglob("*") if path.parent != out and path.suffix in KUBECTL_EXTENSIONS}
    assert nested <= {"helm", "aws", "gcp"}  # helm/ and cloud/<provider>/: not Kubernetes objects
    for path in out.glob("helm/*.yaml"):
        assert {"chart", "repository", "version", "namespace", "values"} <= set(yaml.safe_load(path.read_text()))


# 2. Fields whose values Kubernetes fixes


@pytest.mark.parametrize(
    ("toleration", "field", "value"),
    [({"key": "a", "operator": "Exists", "effect": "NoSchedul"}, "effect", "NoSchedul"),
     ({"key": "a", "operator": "exists"}, "operator", "exists")],
)
def test_a_misspelt_toleration_is_refused_with_the_apis_values(toleration: dict[str, Any], field: str, value: str) -> None:
    from pulumi_vllm.config.kubernetes_enums import accepted_values

    with pytest.raises(ConfigError) as error:
        parse_stack_config({**LLAMA_8B, "resources": {"tolerations": [toleration]}})
    supported = ", ".join(f'"{item}"' for item in accepted_values(f"io.k8s.api.core.v1.Toleration.{field}"))
    assert (
        f'pulumi-vllm:resources.tolerations[0].{field}: Unsupported value: "{value}": supported values: {supported}'
        in str(error.value)
    )


def test_the_schema_check_alone_would_pass_that_toleration() -> None:
    """What kubernetes-validate (the official OpenAPI schemas) says of the same value: nothing."""
    from schemas import validate_object

    rendered = render_config({**LLAMA_8B, "resources": {"tolerations": []}})
    (deployment,) = [doc for _, doc in rendered.documents if isinstance(doc, dict) and doc.get("kind") == "Deployment"]
    deployment["spec"]["template"]["spec"]["tolerations"] = [{"key": "a", "operator": "Exists", "effect": "NoSchedul"}]
    validate_object(deployment)  # accepted: only the API server (and now the config) refuses it


def test_the_service_types_offered_are_ones_the_api_accepts() -> None:
    import typing

    from pulumi_vllm.config import ServiceSpec
    from pulumi_vllm.config.kubernetes_enums import accepted_values

    offered = set(typing.get_args(ServiceSpec.model_fields["type"].annotation))
    # ExternalName is left out on purpose: it aliases a DNS name and selects no pods.
    assert offered == set(accepted_values("io.k8s.api.core.v1.ServiceSpec.type")) - {"ExternalName"}


ENUM_FIELDS = {
    "containers": [("imagePullPolicy", "io.k8s.api.core.v1.Container.imagePullPolicy")],
    "pod": [("restartPolicy", "io.k8s.api.core.v1.PodSpec.restartPolicy"),
            ("dnsPolicy", "io.k8s.api.core.v1.PodSpec.dnsPolicy")],
    "ports": [("protocol", "io.k8s.api.core.v1.ContainerPort.protocol")],
}


@pytest.mark.parametrize("stack", [s for s in SERVING_STACKS if "docker" not in s])
def test_every_enumerated_field_rendered_holds_a_value_the_api_accepts(stack: str) -> None:
    from pulumi_vllm.config.kubernetes_enums import check_value

    rendered = render_stack(REPO, stack, env={})
    checked = 0
    for _, document in rendered.documents:
        if not isinstance(document, dict) or "kind" not in document:
            continue
        if document["kind"] == "Service":
            check_value("io.k8s.api.core.v1.ServiceSpec.type", document["spec"].get("type", "ClusterIP"), stack)
            checked += 1
        for spec in _pod_specs(document):
            for field, field_id in ENUM_FIELDS["pod"]:
                if field in spec:
                    check_value(field_id, spec[field], f"{stack} {document['kind']} {field}")
                    checked += 1
            for toleration in spec.get("tolerations", []):
                for field in ("operator", "effect"):
                    check_value(f"io.k8s.api.core.v1.Toleration.{field}", toleration[field], stack)
                    checked += 1
            for container in spec["containers"]:
                for field, field_id in ENUM_FIELDS["containers"]:
                    if field in container:
                        check_value(field_id, container[field], stack)
                        checked += 1
                for port in container.get("ports", []):
                    check_value(ENUM_FIELDS["ports"][0][1], port.get("protocol", "TCP"), stack)
                    checked += 1
    assert checked >= 4
