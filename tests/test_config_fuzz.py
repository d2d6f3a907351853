"""Fuzzing the whole stack config: no traceback, messages in the user's spelling, renders that pass the schemas."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from pydantic.alias_generators import to_camel
from schemas import validate_object

from pulumi_vllm.cli.render import render_config
from pulumi_vllm.config import ConfigError, StackConfig, parse_stack_config
from pulumi_vllm.models import catalog
from pulumi_vllm.plan import plan_serving


def _snake_fields(model: type[BaseModel]) -> set[str]:
    names: set[str] = set()
    for name, field in model.model_fields.items():
        if "_" in name:
            names.add(name)
        for candidate in getattr(field.annotation, "__args__", ()) or (field.annotation,):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                names |= _snake_fields(candidate)
    return names


SNAKE_FIELDS = _snake_fields(StackConfig)
"""Python names of config keys (``tensor_parallel_size``): a message must use the user's ``tensorParallelSize``."""

MODELS = [*catalog.known_models()[::2], "acme/unknown-7b"]
TOLERATIONS = (
    [None, [], [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
     [{"key": "dedicated", "operator": "Equal", "value": "llm", "effect": "NoExecute", "tolerationSeconds": 30}]],
    [[{"key": "a", "operator": "Exsts"}], [{"key": "a", "effect": "NoSchedul"}]],
)


@st.composite
def configs(draw: st.DrawFn, valid_only: bool = False) -> dict[str, Any]:
    """Stack configs for the Kubernetes target, every section drawn from values users write, good and bad.

    With ``valid_only`` the per-key values are all acceptable ones (combinations may still be refused).
    """

    def pick(good: list[Any], bad: list[Any] = []) -> Any:  # noqa: B006 - read only
        return draw(st.sampled_from(good if valid_only else good + bad))

    raw: dict[str, Any] = {"model": {"id": pick(MODELS)}}
    engine = {
        "maxModelLen": pick([None, 512, 4096, 32768], [131072, 10**6, 0]),
        "gpuMemoryUtilization": pick([None, 0.5, 0.9, 0.95], [1.5, 0]),
        "dtype": pick([None, "auto", "bfloat16", "float16"], ["fp9"]),
        "kvCacheDtype": pick([None, "auto", "fp8"], ["int3"]),
        "extraArgs": pick([None, [], ["--enable-prefix-caching"], ["--max-num-seqs", "64"]],
                          [["--enable-prefix-cachin"], ["--bogus"], ["--port", "9"]]),
        "image": pick([None, "vllm/vllm-openai:v0.32.0"], ["vllm/vllm-openai:latest", "x"]),
    }
    raw["engine"] = {key: value for key, value in engine.items() if value is not None}
    gpus_per_node = pick([None, 8], [1, 4])
    raw["parallelism"] = {
        "tensorParallelSize": pick([1, 1, 2, 4, 8], [3, 16]),
        "pipelineParallelSize": pick([1, 1, 1, 2], [3]),
        **({"gpusPerNode": gpus_per_node} if gpus_per_node else {}),
        "backend": pick(["plain", "leaderworkerset", "kuberay"], ["slurm"]),
    }
    resources: dict[str, Any] = {}
    if (gpu := pick([None, None, "H100", "A100-80GB", "L40S"], ["L4", "T4", "nonsense-gpu"])) is not None:
        resources["gpuType"] = gpu
    if (tolerations := pick(*TOLERATIONS)) is not None:
        resources["tolerations"] = tolerations
    if draw(st.booleans()):
        resources["nodeSelector"] = {"pool": pick(["gpu"], ["bad value!"])}
    if draw(st.booleans()):
        resources["memoryRequest"] = pick(["16Gi", "64Gi"], ["lots"])
    raw["resources"] = resources
    raw["cache"] = {"accessMode": pick(["ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"], ["ReadOnlyMany", "RWX"])}
    raw["service"] = {"type": pick(["ClusterIP", "NodePort", "LoadBalancer"], ["ExternalName", "Ingress"])}
    raw["replicas"] = pick([1, 1, 0, 2])
    if draw(st.booleans()):
        raw["quota"] = {"enabled": True, **({"gpus": q} if (q := pick([None, 64], [0, 1, 8])) is not None else {})}
    raw["name"] = pick(["llm", "qwen-7b"], ["Bad_Name", "a" * 50])
    raw["namespace"] = pick(["default", "vllm-prod"], ["Prod"])
    if draw(st.booleans()):
        raw["hfToken"] = "hf_fuzz"
    return raw


def _outcome(raw: dict[str, Any]) -> tuple[Any, str]:
    """The plan, or the message of the one ConfigError; anything else propagates (a bug)."""
    try:
        return plan_serving(parse_stack_config(raw)), ""
    except ConfigError as error:
        return None, str(error)


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs())
def test_any_config_is_planned_or_refused_in_the_users_words(raw: dict[str, Any]) -> None:
    plan, message = _outcome(raw)
    if plan is not None:
        return
    assert message.startswith(("pulumi-vllm:", "invalid stack configuration:")), message
    words = set(re.findall(r"[a-z]+(?:_[a-z0-9]+)+", message))
    # vLLM's own wording may name its engine arguments, but then the stack key must be named too.
    python_names = {name for name in words & SNAKE_FIELDS if to_camel(name) not in message}
    assert not python_names, f"message uses Python names {python_names} without the stack key: {message}"
    assert "hf_fuzz" not in message


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs(valid_only=True))
def test_every_accepted_config_renders_objects_the_schemas_accept(raw: dict[str, Any]) -> None:
    plan, _ = _outcome(raw)
    if plan is None:
        return
    rendered = render_config(raw)
    objects = [doc for name, doc in rendered.documents if isinstance(doc, dict) and "kind" in doc]
    assert objects
    for document in objects:
        validate_object(document)
