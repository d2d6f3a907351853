"""``engine.runner`` (vLLM's ``--runner``) and ``engine.convert``: pooling models get their command, probes that
ask no chat route, the pooling routes in the router's terms, and no load test against completions."""

from __future__ import annotations

from typing import Any

import pytest

from pulumi_vllm.cli.render import RenderedStack, render_config
from pulumi_vllm.config import ConfigError, parse_stack_config
from pulumi_vllm.engine.router import GENERATE_ROUTES, POOLING_ROUTES, runner_routes
from pulumi_vllm.plan import plan_serving

EMBEDDER = {"id": "Qwen/Qwen3-Embedding-8B"}


def _main(rendered: RenderedStack) -> dict[str, Any]:
    (deployment,) = [doc for _, doc in rendered.documents if isinstance(doc, dict) and doc.get("kind") == "Deployment"]
    return dict(deployment["spec"]["template"]["spec"]["containers"][0])


def _pooling(**engine: Any) -> RenderedStack:
    return render_config({"name": "embed", "model": EMBEDDER, "engine": {"runner": "pooling", **engine}})


def test_pooling_runner_and_convert_are_rendered_once() -> None:
    args = list(_main(_pooling(convert="embed"))["args"])
    assert args[args.index("--runner") + 1] == "pooling" and args.count("--runner") == 1
    assert args[args.index("--convert") + 1] == "embed"


def test_generate_is_the_default_and_renders_no_flag() -> None:
    config = parse_stack_config({"model": EMBEDDER})
    assert config.engine.runner == "generate" and config.engine.convert is None
    args = _main(render_config({"name": "chat", "model": EMBEDDER}))["args"]
    assert "--runner" not in args and "--convert" not in args


@pytest.mark.vllm
def test_vllm_reads_the_runner_and_convert() -> None:
    from pulumi_vllm.engine.check import check_serve_args

    namespace = check_serve_args(list(_main(_pooling(convert="classify"))["args"]))
    assert (namespace.runner, namespace.convert) == ("pooling", "classify")


def test_probes_ask_health_not_a_chat_route() -> None:
    main = _main(_pooling())
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert main[probe]["httpGet"]["path"] == "/health", probe


def test_pooling_routes_offer_no_chat() -> None:
    assert runner_routes("pooling") == POOLING_ROUTES and runner_routes("generate") == GENERATE_ROUTES
    assert {"/v1/embeddings", "/score", "/rerank", "/pooling"} <= set(POOLING_ROUTES)
    assert not {"/v1/chat/completions", "/v1/completions"} & set(POOLING_ROUTES)
    with pytest.raises(ValueError, match="runner 'draft' is not accepted"):
        runner_routes("draft")
    (line,) = [line for line in _pooling().summary() if line.startswith("runner:")]
    assert "/v1/embeddings" in line and "chat" not in line


def test_the_load_test_is_refused_for_a_pooling_model() -> None:
    config = parse_stack_config({"model": EMBEDDER, "engine": {"runner": "pooling"}, "loadTest": {"enabled": True}})
    with pytest.raises(ConfigError) as caught:
        plan_serving(config)
    assert str(caught.value).startswith(
        "pulumi-vllm:loadTest.enabled: true is not accepted with engine.runner 'pooling'"
    )


def test_convert_without_the_pooling_runner_is_refused() -> None:
    with pytest.raises(ConfigError, match="engine.convert: 'embed' is not accepted with engine.runner 'generate'"):
        parse_stack_config({"model": EMBEDDER, "engine": {"convert": "embed"}})


def test_runner_and_overrides_with_another_engine_are_refused() -> None:
    with pytest.raises(ConfigError, match="engine.runner is not accepted with engine.kind 'tgi'"):
        parse_stack_config({"model": EMBEDDER, "engine": {"kind": "tgi", "runner": "pooling"}})
    with pytest.raises(ConfigError, match="engine.hfOverrides is not accepted with engine.kind 'tgi'"):
        parse_stack_config({"model": EMBEDDER, "engine": {"kind": "tgi", "hfOverrides": {"max_position_embeddings": 8}}})


def test_values_outside_vllms_choices_are_refused() -> None:
    with pytest.raises(ConfigError, match="engine.runner"):
        parse_stack_config({"model": EMBEDDER, "engine": {"runner": "draft"}})
    with pytest.raises(ConfigError, match="engine.convert"):
        parse_stack_config({"model": EMBEDDER, "engine": {"runner": "pooling", "convert": "reward"}})


@pytest.mark.vllm
def test_offline_inference_loads_the_model_as_the_server_would() -> None:
    """``vllm.LLM`` keywords carry the runner, convert, overrides and expert parallel, under vLLM's own names."""
    import dataclasses

    from vllm.engine.arg_utils import EngineArgs as VllmEngineArgs

    from pulumi_vllm.engine.argv import EngineArgs
    from pulumi_vllm.engine.offline import llm_kwargs

    kwargs = llm_kwargs(EngineArgs(model="org/embedder", runner="pooling", convert="embed",
                                   hf_overrides='{"max_position_embeddings": 8192}', enable_expert_parallel=True))
    assert (kwargs["runner"], kwargs["convert"], kwargs["enable_expert_parallel"]) == ("pooling", "embed", True)
    assert kwargs["hf_overrides"] == {"max_position_embeddings": 8192}
    assert set(kwargs) <= {field.name for field in dataclasses.fields(VllmEngineArgs)}
    assert "runner" not in llm_kwargs(EngineArgs(model="org/chat"))
