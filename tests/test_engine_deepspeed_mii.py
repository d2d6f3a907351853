"""The DeepSpeed-MII profile: our argv parsed by MII's own argument parser.

MII builds its parser inside ``if __name__ == "__main__"`` of ``mii/entrypoints/openai_api_server.py``, a
module that imports grpc, fastchat, deepspeed pieces and starts nothing until then. The test takes that
block's statements up to ``parser.parse_args()`` from the installed module's source (``ast``) and runs them
with argparse and json only: MII's parser, without importing MII.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import pathlib

import pytest
from engines import require_module

from pulumi_vllm.engine.profiles import ServeSpec, profile
from pulumi_vllm.engine.profiles.deepspeed_mii import MII_API_KEY_ENV, MII_MODULE, PROFILE

MODEL = "mistralai/Mistral-7B-Instruct-v0.3"
MII = "pip install --no-deps deepspeed-mii==0.3.3"


def spec(**changes: object) -> ServeSpec:
    values: dict[str, object] = {"model": MODEL, "served_model_name": MODEL}
    values.update(changes)
    return ServeSpec(**values)  # type: ignore[arg-type]


def mii_parser() -> argparse.ArgumentParser:
    found = importlib.util.find_spec("mii")  # locates the package without importing it (nor its GPU stack)
    if found is None or not found.submodule_search_locations:
        require_module("mii", MII)  # skips, or fails under $CI, with the install line
        raise AssertionError("mii is importable but has no package folder")
    origin = str(pathlib.Path(next(iter(found.submodule_search_locations)), *MII_MODULE.split(".")[1:])) + ".py"
    tree = ast.parse(pathlib.Path(origin).read_text())
    main = next(
        node for node in tree.body
        if isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
        and isinstance(node.test.left, ast.Name) and node.test.left.id == "__name__"
    )
    statements = []
    for statement in main.body:
        if isinstance(statement, ast.Assign) and ast.unparse(statement.value) == "parser.parse_args()":
            break
        statements.append(statement)
    namespace: dict[str, object] = {"argparse": argparse, "json": json}
    exec(compile(ast.Module(body=statements, type_ignores=[]), origin, "exec"), namespace)  # noqa: S102
    parser = namespace["parser"]
    assert isinstance(parser, argparse.ArgumentParser)
    return parser


def parse(served: ServeSpec) -> argparse.Namespace:
    command = PROFILE.command(served)
    assert command.command == ("python3",)
    assert command.args[:2] == ("-m", MII_MODULE)
    return mii_parser().parse_args(list(command.args[2:]))


def test_registry_returns_this_profile() -> None:
    assert profile("deepspeed-mii") is PROFILE


def test_mii_parses_our_command() -> None:
    args = parse(spec(tensor_parallel_size=2, gpus=2, port=8100, max_model_len=4096))
    assert args.model == MODEL
    assert args.tensor_parallel == 2
    assert args.replica_num == 1
    assert (args.host, args.port) == ("0.0.0.0", 8100)
    assert args.max_length == 4096
    assert args.api_keys is None


def test_mii_rejects_a_flag_it_lacks() -> None:
    parser = mii_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["--tensor-parallel-size", "2"])


def test_api_key_comes_from_the_environment() -> None:
    command = PROFILE.command(spec(api_key=True))
    assert f"$({MII_API_KEY_ENV})" in command.args
    assert parse(spec(api_key=True)).api_keys == [f"$({MII_API_KEY_ENV})"]
    assert PROFILE.api_key_env == MII_API_KEY_ENV


def test_extra_args_reach_mii() -> None:
    args = parse(spec(extra_args=("--response-role", "bot")))
    assert args.response_role == "bot"


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"served_model_name": "mistral"}, "model.servedModelName"),
        ({"revision": "main"}, "model.revision"),
        ({"trust_remote_code": True}, "model.trustRemoteCode"),
        ({"model_file": "x"}, "engine.modelFile"),
        ({"pipeline_parallel_size": 2, "gpus": 2}, "parallelism.pipelineParallelSize"),
    ],
)
def test_refusals(changes: dict[str, object], key: str) -> None:
    problems = PROFILE.problems(spec(**changes))
    assert [p.split(":")[0] for p in problems] == [key]


def test_facts() -> None:
    assert PROFILE.image == ""
    assert PROFILE.problems(spec()) == []
    assert (PROFILE.port, PROFILE.health_path, PROFILE.metrics_path) == (8000, "/health", None)
    assert not PROFILE.pipeline and not PROFILE.docker and not PROFILE.multi_node
    assert PROFILE.honours == frozenset({"max_model_len", "extra_args"})
