"""Kubernetes' enumerated fields: the generated lists match the API's definitions, and refuse what the API server refuses."""

from __future__ import annotations

import ast
import fnmatch
import importlib.util
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import kubernetes_validate
import pytest
from schemas import KUBERNETES_VERSION

from pulumi_vllm.config import kubernetes_enums
from pulumi_vllm.config.kubernetes_enums import (
    KUBERNETES_ENUMS_SOURCE,
    KUBERNETES_ENUMS_VERSION,
    UnsupportedValueError,
    accepted_values,
    check_value,
    field_ids,
)

REPO = Path(__file__).resolve().parents[1]
GENERATOR = REPO / "tools" / "kubernetes_enums.py"
DATA = REPO / "components" / "pulumi_vllm" / "config" / "kubernetes_enums.json"
MODULE = REPO / "components" / "pulumi_vllm" / "config" / "kubernetes_enums.py"

CORE = "io.k8s.api.core.v1."
APPS = "io.k8s.api.apps.v1."
META = "io.k8s.apimachinery.pkg.apis.meta.v1."
EFFECT = CORE + "Toleration.effect"

API_SERVER_MESSAGE = (
    'spec.template.spec.tolerations[0].effect: Unsupported value: "NoSchedul": '
    'supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"'
)
"""What kube-apiserver 1.28.7 answered for a Deployment whose toleration effect was misspelt."""


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("kubernetes_enums_generator", GENERATOR)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("kubernetes_enums_generator", module)
    spec.loader.exec_module(module)
    return module


generator = _load_generator()


def _generate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(GENERATOR), *args], check=False, capture_output=True, text=True)


def _quoted(text: str) -> list[str]:
    return re.findall(r'"([^"]*)"', text)


# --- the data is what the generator writes from the installed definitions ----------------------


def test_committed_json_is_what_the_generator_writes_now(tmp_path: Path) -> None:
    out = tmp_path / "kubernetes_enums.json"
    run = _generate("--out", str(out))
    assert run.returncode == 0, run.stderr
    assert out.read_text(encoding="utf-8") == DATA.read_text(encoding="utf-8"), (
        "kubernetes_enums.json is stale: run make kubernetes-enums"
    )


def test_check_mode_tells_a_stale_file(tmp_path: Path) -> None:
    fresh = _generate("--check", "--out", str(DATA))
    assert fresh.returncode == 0, fresh.stderr
    stale = tmp_path / "stale.json"
    document = json.loads(DATA.read_text(encoding="utf-8"))
    document[EFFECT] = ["NoSchedul"]
    stale.write_text(json.dumps(document), encoding="utf-8")
    run = _generate("--check", "--out", str(stale))
    assert run.returncode == 1
    assert "make kubernetes-enums" in run.stderr
    assert json.loads(stale.read_text(encoding="utf-8"))[EFFECT] == ["NoSchedul"], "--check must not write"


def test_source_names_the_release_the_schema_tests_use_and_the_file() -> None:
    assert KUBERNETES_ENUMS_VERSION == KUBERNETES_VERSION == kubernetes_validate.utils.latest_version()
    assert KUBERNETES_ENUMS_SOURCE["file"] == f"kubernetes_validate/kubernetes-json-schema/v{KUBERNETES_VERSION}-local/_definitions.json"
    assert KUBERNETES_ENUMS_SOURCE["package"].startswith("kubernetes-validate ")
    assert KUBERNETES_ENUMS_SOURCE["read_from"] == ["description"]


def test_every_list_is_sorted_unique_and_of_the_groups_read() -> None:
    document: dict[str, Any] = json.loads(DATA.read_text(encoding="utf-8"))
    fields = {key: values for key, values in document.items() if key != "_source"}
    assert len(fields) >= 50
    assert tuple(sorted(fields)) == field_ids()
    for field, values in fields.items():
        assert field.startswith(generator.GROUPS), field
        assert values and values == sorted(set(values)) and all(isinstance(v, str) and v for v in values), field
        assert accepted_values(field) == tuple(values)


# --- the lists are the ones the API server enforces --------------------------------------------


def test_toleration_effect_is_the_api_servers_list() -> None:
    supported = API_SERVER_MESSAGE.split("supported values: ", 1)[1]
    assert accepted_values(EFFECT) == tuple(sorted(_quoted(supported)))


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        # Lt and Gt are new in 1.35's definitions (feature gate TaintTolerationComparisonOperators).
        (CORE + "Toleration.operator", {"Equal", "Exists", "Gt", "Lt"}),
        (CORE + "ServiceSpec.type", {"ClusterIP", "ExternalName", "LoadBalancer", "NodePort"}),
        (CORE + "Container.imagePullPolicy", {"Always", "IfNotPresent", "Never"}),
        (CORE + "PodSpec.restartPolicy", {"Always", "OnFailure", "Never"}),
        (CORE + "PodSpec.dnsPolicy", {"ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"}),
        (CORE + "PodSpec.preemptionPolicy", {"Never", "PreemptLowerPriority"}),
        (CORE + "ContainerPort.protocol", {"SCTP", "TCP", "UDP"}),
        (CORE + "ServicePort.protocol", {"SCTP", "TCP", "UDP"}),
        (CORE + "TopologySpreadConstraint.whenUnsatisfiable", {"DoNotSchedule", "ScheduleAnyway"}),
        (CORE + "NodeSelectorRequirement.operator", {"DoesNotExist", "Exists", "Gt", "In", "Lt", "NotIn"}),
        (APPS + "DeploymentStrategy.type", {"Recreate", "RollingUpdate"}),
        (META + "LabelSelectorRequirement.operator", {"DoesNotExist", "Exists", "In", "NotIn"}),
    ],
)
def test_lists_of_the_fields_config_passes_through(field: str, expected: set[str]) -> None:
    assert accepted_values(field) == tuple(sorted(expected))


@pytest.mark.parametrize(
    "field",
    [
        CORE + "PersistentVolumeClaimSpec.accessModes",
        CORE + "PersistentVolumeClaimSpec.volumeMode",
        CORE + "ServiceSpec.externalTrafficPolicy",
        CORE + "ServiceSpec.internalTrafficPolicy",
        APPS + "StatefulSetSpec.podManagementPolicy",
    ],
)
def test_fields_whose_definitions_state_no_list_have_none(field: str) -> None:
    # Their descriptions only mention values in passing ("If set to "Local", ...") or not at
    # all, so nothing is invented for them; config must check them some other way.
    with pytest.raises(KeyError, match="state no accepted values"):
        accepted_values(field)


def _deployment(effect: str) -> dict[str, Any]:
    labels = {"app": "vllm"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "vllm"},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [{"name": "vllm", "image": "vllm/vllm-openai:v0.32.0"}],
                    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": effect}],
                },
            },
        },
    }


def test_schema_check_passes_a_misspelt_effect_that_check_value_refuses() -> None:
    kubernetes_validate.validate(_deployment("NoSchedule"), KUBERNETES_VERSION, strict=True)
    # The schema check misses it: the official schema has no enum for the field.
    kubernetes_validate.validate(_deployment("NoSchedul"), KUBERNETES_VERSION, strict=True)
    check_value(EFFECT, "NoSchedule", "pulumi-vllm:resources.tolerations[0].effect")
    with pytest.raises(UnsupportedValueError) as refused:
        check_value(EFFECT, "NoSchedul", "pulumi-vllm:resources.tolerations[0].effect")
    # The same words as the API server's message after the path, the same values (sorted).
    ours = str(refused.value).removeprefix("pulumi-vllm:resources.tolerations[0].effect: ")
    theirs = API_SERVER_MESSAGE.removeprefix("spec.template.spec.tolerations[0].effect: ")
    pattern = r'Unsupported value: "NoSchedul": supported values: ("[A-Za-z]+", )*"[A-Za-z]+"'
    assert re.fullmatch(pattern, ours) and re.fullmatch(pattern, theirs)
    assert sorted(_quoted(ours)) == sorted(_quoted(theirs))


# --- the message -------------------------------------------------------------------------------


def test_message_format() -> None:
    with pytest.raises(ValueError) as refused:
        check_value(EFFECT, "NoSchedul", "pulumi-vllm:resources.tolerations[0].effect")
    assert str(refused.value) == (
        'pulumi-vllm:resources.tolerations[0].effect: Unsupported value: "NoSchedul": '
        'supported values: "NoExecute", "NoSchedule", "PreferNoSchedule"'
    )
    error = refused.value
    assert isinstance(error, UnsupportedValueError)
    assert (error.field_id, error.key, error.value) == (EFFECT, "pulumi-vllm:resources.tolerations[0].effect", "NoSchedul")
    assert error.supported == ("NoExecute", "NoSchedule", "PreferNoSchedule")
    assert error.reason == 'Unsupported value: "NoSchedul": supported values: "NoExecute", "NoSchedule", "PreferNoSchedule"'


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("noschedule", '"noschedule"'),  # case matters, as for the API server
        ("", '""'),
        ('No"Schedule', '"No\\"Schedule"'),
        (5, "5"),
        (True, "true"),
        (None, "null"),
        (["NoSchedule"], '["NoSchedule"]'),
    ],
)
def test_refused_values_are_shown_quoted(value: object, shown: str) -> None:
    with pytest.raises(UnsupportedValueError) as refused:
        check_value(EFFECT, value, "pulumi-vllm:key")
    assert str(refused.value).startswith(f"pulumi-vllm:key: Unsupported value: {shown}: supported values: ")


def test_accepted_values_pass_silently() -> None:
    for field in field_ids():
        for value in accepted_values(field):
            assert check_value(field, value, "pulumi-vllm:key") is None


def test_an_unknown_field_id_is_a_key_error_naming_it() -> None:
    with pytest.raises(KeyError, match=r"Toleration\.efect.*Kubernetes 1\.37\.0"):
        check_value(CORE + "Toleration.efect", "NoSchedule", "pulumi-vllm:key")


# --- the module is pure and shipped with its data ----------------------------------------------


def test_module_imports_the_standard_library_only() -> None:
    tree = ast.parse(MODULE.read_text(encoding="utf-8"))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    roots = {name.split(".")[0] for name in imported}
    assert roots <= set(sys.stdlib_module_names) | {"__future__"}, roots
    assert kubernetes_enums.DATA_FILE == DATA.name


def test_package_data_includes_the_json() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = pyproject["tool"]["setuptools"]["package-data"]["pulumi_vllm"]
    relative = DATA.relative_to(REPO / "components" / "pulumi_vllm").as_posix()
    assert any(fnmatch.fnmatch(relative, pattern) for pattern in patterns), (relative, patterns)


# --- how the generator reads descriptions ------------------------------------------------------


def _values(description: str) -> tuple[str, ...] | None:
    found = generator.values_from_description(description)
    return found.values if found else None


def test_generator_reads_the_openapi_generators_enum_list_first() -> None:
    description = (
        "Effect indicates the taint effect to match. When specified, allowed values are NoSchedule.\n\n"
        "Possible enum values:\n"
        ' - `"NoExecute"` Evict any already-running pods that do not tolerate the taint.\n'
        ' - `"NoSchedule"` Do not allow new pods to schedule onto the node.\n'
        ' - `"PreferNoSchedule"` Like TaintEffectNoSchedule, but the scheduler tries not to schedule.'
    )
    found = generator.values_from_description(description)
    assert found is not None and found.form == "possible-enum-values"
    assert found.values == ("NoExecute", "NoSchedule", "PreferNoSchedule")


def test_generator_reads_an_enum_in_the_schema_first() -> None:
    schema = {"type": ["string", "null"], "enum": ["B", "A"], "description": "One of C, D."}
    found = generator.field_values(schema)
    assert found is not None and (found.values, found.form) == (("A", "B"), "enum")
    items = {"type": "array", "items": {"type": "string"}, "description": 'Valid values are "IPv4" and "IPv6".'}
    assert generator.field_values(items).values == ("IPv4", "IPv6")
    assert generator.field_values({"type": "integer", "description": "One of A, B."}) is None


@pytest.mark.parametrize(
    ("description", "expected"),
    [
        ("Valid operators are In, NotIn, Exists, DoesNotExist. Gt, and Lt.", ("DoesNotExist", "Exists", "Gt", "In", "Lt", "NotIn")),
        ("One of Always, OnFailure, Never. In some contexts, only a subset may be permitted.", ("Always", "Never", "OnFailure")),
        ('Can be "Recreate" or "RollingUpdate". Default is RollingUpdate.', ("Recreate", "RollingUpdate")),
        ("Valid options are Retain (default for manual ones), Delete (default), and Recycle (deprecated).", ("Delete", "Recycle", "Retain")),
        ("The currently supported values are linux and windows.", ("linux", "windows")),
        ('The only possible value is "Restart" to restart the container.', ("Restart",)),
        ("Possible values are:\n\n- FailJob: fails the job.\n- Ignore: ignores it.\n\nMore may be added.", ("FailJob", "Ignore")),
        ("Valid options are:\n  Localhost - a profile.\n  RuntimeDefault - the default.", ("Localhost", "RuntimeDefault")),
        ("How to deal with it. - DoNotSchedule (default) tells the scheduler. - ScheduleAnyway tells it.", ("DoNotSchedule", "ScheduleAnyway")),
    ],
)
def test_generator_reads_the_forms_the_api_docs_use(description: str, expected: tuple[str, ...]) -> None:
    assert _values(description) == expected


@pytest.mark.parametrize(
    "description",
    [
        "Name of the port. Must be a DNS_LABEL. Optional only if one port is defined.",
        'If set to "Local", the proxy keeps traffic local. The default value, "Cluster", routes to all endpoints.',
        "The default policy is `OrderedReady`. The alternative policy is `Parallel`.",
        'Valid values are "None", empty string (""), or a valid IP address.',
        "When set: - It takes precedence over hostname. - The Pod's hostname will be this value.",
        "It can be read or written by the container.",
        "accessModes contains the desired access modes the volume should have.",
    ],
)
def test_generator_reads_no_list_from_prose_that_states_none(description: str) -> None:
    assert _values(description) is None
