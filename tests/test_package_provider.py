"""The multi-language package: the provider started as the engine starts it, over its gRPC protocol.

``GetSchema`` must list every public component with each typed input and output and its description;
``Construct`` of ``VllmServing`` must register the same resources, with the same inputs, as the Python
class under Pulumi's mock runtime; the committed snapshot must be what the provider serves.
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import pulumi
import pytest

from pulumi_vllm.provider.client import SECRET_SIG, ProviderError, ProviderProcess, RecordingMonitor, secret
from pulumi_vllm.provider.host import COMPONENTS, PACKAGE
from pulumi_vllm.review.api import api_changes

REPO = Path(__file__).resolve().parents[1]
SNAPSHOT = REPO / "plugin" / "schema.json"

QWEN = {
    "name": "qwen",
    "namespace": "llm",
    "model": {"id": "Qwen/Qwen2.5-7B-Instruct"},
    "engine": {"maxModelLen": 16384},
    "resources": {"gpuType": "L40S"},
}


@pytest.fixture(scope="module")
def served() -> dict[str, Any]:
    started = time.monotonic()
    with ProviderProcess() as provider:
        schema = provider.get_schema()
    from conftest import _OBSERVED

    _OBSERVED.append(f"component provider: started and answered GetSchema in {time.monotonic() - started:.1f}s")
    return schema


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def args_type(component: type) -> Any:
    return inspect.get_annotations(component.__init__)["args"]  # type: ignore[misc]


@pytest.mark.parametrize("component", COMPONENTS, ids=lambda c: c.__name__)
def test_every_typed_input_is_in_the_schema_with_its_description(served: dict[str, Any], component: type) -> None:
    resource = served["resources"][f"{PACKAGE}:index:{component.__name__}"]
    expected = {camel(key) for key in args_type(component).__annotations__}
    assert set(resource["inputProperties"]) == expected
    undocumented = sorted(key for key, prop in resource["inputProperties"].items() if not prop.get("description"))
    assert undocumented == []
    required = {camel(key) for key in args_type(component).__required_keys__}
    assert set(resource.get("requiredInputs", [])) == required
    assert resource.get("description"), "the component's docstring"


@pytest.mark.parametrize("component", COMPONENTS, ids=lambda c: c.__name__)
def test_every_public_output_is_in_the_schema(served: dict[str, Any], component: type) -> None:
    resource = served["resources"][f"{PACKAGE}:index:{component.__name__}"]
    outputs = {camel(key) for key in component.__annotations__ if not key.startswith("_")}
    assert outputs and set(resource["properties"]) == outputs
    assert all(prop.get("description") for prop in resource["properties"].values())


def test_nested_types_are_documented_and_literals_became_strings(served: dict[str, Any]) -> None:
    types = served["types"]
    engine = types[f"{PACKAGE}:index:ServingEngineArgs"]["properties"]
    assert engine["maxModelLen"]["type"] == "integer"
    assert engine["dtype"]["type"] == "string" and "``bfloat16``" in engine["dtype"]["description"]
    missing = sorted(
        f"{name}.{key}" for name, spec in types.items() for key, prop in spec["properties"].items()
        if not prop.get("description")
    )
    assert missing == []


def test_the_snapshot_is_what_the_provider_serves(served: dict[str, Any]) -> None:
    snapshot = json.loads(SNAPSHOT.read_text())
    changes = api_changes(snapshot, served)
    assert changes == [], "plugin/schema.json is stale (run make schema):\n" + "\n".join(changes)
    assert snapshot == served, "plugin/schema.json is stale (run make schema)"


def test_the_plugin_requirements_are_the_package_dependencies() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    lines = [line for line in (REPO / "plugin" / "requirements.txt").read_text().splitlines() if line and line[0] != "#"]
    extras = project["optional-dependencies"]
    assert lines == project["dependencies"] + extras["aws"] + extras["gcp"]


def test_every_component_is_in_the_package_or_python_only_with_a_reason() -> None:
    """A new component must be served to every language, or be listed with the reason it cannot be."""
    import importlib
    import pkgutil

    import pulumi_vllm
    from pulumi_vllm.provider.host import PYTHON_ONLY

    found: set[str] = set()
    for info in pkgutil.walk_packages(pulumi_vllm.__path__, "pulumi_vllm."):
        if info.name.startswith(("pulumi_vllm.cli", "pulumi_vllm.provider")) or info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        found |= {
            name for name, value in vars(module).items()
            if inspect.isclass(value) and issubclass(value, pulumi.ComponentResource)
            and value is not pulumi.ComponentResource and value.__module__ == info.name
        }
    served = {component.__name__ for component in COMPONENTS}
    assert served.isdisjoint(PYTHON_ONLY)
    assert found == served | set(PYTHON_ONLY), "components neither served nor listed as Python-only"
    assert all(reason for reason in PYTHON_ONLY.values())


@pytest.mark.parametrize("component", COMPONENTS, ids=lambda c: c.__name__)
def test_every_package_component_is_accepted_by_the_sdk_analyzer(component: type) -> None:
    from pulumi.provider.experimental.analyzer import Analyzer

    definition = Analyzer(PACKAGE).analyze_component(component)
    assert definition.name == component.__name__ and definition.inputs


def _unwrap(value: Any) -> Any:
    """Secrets as ``("secret", value)``, numbers as floats: what both sides must agree on."""
    if isinstance(value, dict):
        if SECRET_SIG in value:
            return ("secret", _unwrap(value.get("value")))
        return {key: _unwrap(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_unwrap(item) for item in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return float(value)
    return value


def _python_class_registrations(inputs: dict[str, Any], api_key: str) -> dict[tuple[str, str], Any]:
    """What ``VllmServing`` registers when a Python program creates it (mock runtime, in a child process).

    A child process keeps this test's interpreter free of the mock runtime's global settings.
    """
    script = f"""
import json, sys
import pulumi
sys.path.insert(0, {str(REPO / 'components')!r})
class Mocks(pulumi.runtime.Mocks):
    def __init__(self): self.seen = []
    def new_resource(self, args):
        self.seen.append((args.typ, args.name, args.inputs))
        return args.name, dict(args.inputs)
    def call(self, args): return {{}}
mocks = Mocks()
pulumi.runtime.set_mocks(mocks, project="consumer", stack="dev", preview=False)
from pulumi_vllm.kubernetes.serving import VllmServing
@pulumi.runtime.test
def run():
    serving = VllmServing("qwen", {{"config": json.loads({json.dumps(json.dumps(inputs))}),
                                    "api_key": pulumi.Output.secret({api_key!r})}})
    return serving.base_url
run()
def plain(value):
    if isinstance(value, dict): return {{k: plain(v) for k, v in value.items()}}
    if isinstance(value, list): return [plain(v) for v in value]
    return value
print(json.dumps([[t, n, plain(i)] for t, n, i in mocks.seen], default=str))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    return {(typ, name): inputs for typ, name, inputs in json.loads(result.stdout.splitlines()[-1])}


def test_construct_registers_what_the_python_class_registers() -> None:
    with RecordingMonitor("consumer", "dev") as monitor, ProviderProcess(engine_address=monitor.address) as provider:
        state = provider.construct(
            monitor, f"{PACKAGE}:index:VllmServing", "qwen", {**QWEN, "apiKey": secret("sk-test")}
        )
    assert state["baseUrl"] == "http://qwen.llm.svc.cluster.local/v1"
    assert state["servedModelName"] == "Qwen/Qwen2.5-7B-Instruct"
    through_grpc = {(r.type, r.name): r.inputs for r in monitor.resources}
    in_python = _python_class_registrations(QWEN, "sk-test")
    assert sorted(through_grpc) == sorted(in_python)
    types = {typ for typ, _ in through_grpc}
    assert {"kubernetes:apps/v1:Deployment", "kubernetes:core/v1:Service", "kubernetes:core/v1:Secret"} <= types
    # The API key reached the Secret as a secret, through the provider as through the class.
    secret_object = next(inputs for (typ, _), inputs in through_grpc.items() if typ == "kubernetes:core/v1:Secret")
    assert SECRET_SIG in json.dumps(secret_object)
    for key, inputs in through_grpc.items():
        if key[0].startswith("kubernetes:"):
            # Mock runtime: secrets unwrapped; gRPC: in the envelope. Same values either way.
            assert _strip(_unwrap(inputs)) == _strip(_unwrap(in_python[key])), key


def _strip(value: Any) -> Any:
    """Secret markers dropped (the mock runtime hands a component's secret values over unwrapped)."""
    if isinstance(value, tuple) and value and value[0] == "secret":
        return _strip(value[1])
    if isinstance(value, dict):
        return {key: _strip(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_strip(item) for item in value]
    return value


def test_construct_refuses_bad_config_naming_the_key() -> None:
    with (
        RecordingMonitor("consumer", "dev") as monitor,
        ProviderProcess(engine_address=monitor.address) as provider,
        pytest.raises(ProviderError) as refused,
    ):
        provider.construct(
            monitor, f"{PACKAGE}:index:VllmServing", "qwen", {**QWEN, "parallelism": {"tensorParallelSize": 0}}
        )
    assert "parallelism.tensorParallelSize" in str(refused.value)
    assert monitor.resources == [], "bad input registers nothing, not even the component"


@pulumi.runtime.test
def test_typed_args_and_the_config_mapping_build_the_same_serving(mocks: Any) -> Any:
    from pulumi_vllm.kubernetes.serving import VllmServing

    typed = VllmServing(
        "typed",
        {
            "name": "qwen",
            "namespace": "llm",
            "model": {"id": "Qwen/Qwen2.5-7B-Instruct"},
            "engine": {"max_model_len": 16384},
            "resources": {"gpu_type": "L40S"},
        },
    )
    mapped = VllmServing("mapped", {"config": QWEN})
    assert typed.plan.config == mapped.plan.config
    assert typed.plan.config.engine.max_model_len == 16384

    def check(urls: list[str]) -> None:
        assert urls[0] == urls[1]

    return pulumi.Output.all(typed.base_url, mapped.base_url).apply(check)
