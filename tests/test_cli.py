"""The ``pulumi-vllm`` command itself: its sub-commands and version."""

from __future__ import annotations

import pytest

from pulumi_vllm.cli import build_parser, main
from pulumi_vllm.config import VLLM_VERSION


def test_version_names_the_pinned_vllm(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--version"])
    assert stopped.value.code == 0
    assert f"(vLLM {VLLM_VERSION})" in capsys.readouterr().out


def test_every_sub_command_is_registered() -> None:
    subparsers = next(action for action in build_parser()._actions if action.dest == "command")
    assert set(subparsers.choices) == {"render", "size", "diff", "bench"}  # type: ignore[attr-defined]
