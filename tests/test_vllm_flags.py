"""The serve flags data: equal to the installed vLLM's parser, and extra flags refused without vLLM."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pulumi_vllm.config import VLLM_VERSION, ConfigError, parse_stack_config
from pulumi_vllm.engine.flags import check_extra_args, known_flags, vllm_flags_version

REPO = Path(__file__).resolve().parents[1]
GENERATOR = REPO / "tools" / "vllm_flags.py"
DATA = REPO / "components" / "pulumi_vllm" / "engine" / "serve_flags.json"
MODEL = "meta-llama/Llama-3.1-8B-Instruct"


def test_the_data_is_of_the_pinned_release() -> None:
    assert vllm_flags_version() == VLLM_VERSION
    assert {"--max-model-len", "--enable-prefix-caching", "--no-enable-prefix-caching", "-tp"} <= known_flags()


@pytest.mark.vllm
def test_the_committed_flags_are_what_the_installed_vllms_parser_has() -> None:
    run = subprocess.run([sys.executable, str(GENERATOR), "--check", "--out", str(DATA)],
                         capture_output=True, text=True, check=False, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]


def test_the_check_mode_tells_a_stale_file(tmp_path: Path) -> None:
    stale = tmp_path / "serve_flags.json"
    document = json.loads(DATA.read_text())
    del document["flags"]["--max-model-len"]
    stale.write_text(json.dumps(document))
    if "vllm" not in sys.modules:
        pytest.importorskip("vllm")
    run = subprocess.run([sys.executable, str(GENERATOR), "--check", "--out", str(stale)],
                         capture_output=True, text=True, check=False, timeout=300)
    assert run.returncode == 1 and "make vllm-flags" in run.stderr


VALID = [
    ["--enable-prefix-caching"],
    ["--no-enable-prefix-caching"],
    ["--max-num-seqs", "64"],
    ["--max_num_seqs", "64"],
    ["--dtype=half"],
    ["--kv-cache-dtype", "fp8"],
    ["-tp", "2"],
    ["--enable-auto-tool-choice", "--tool-call-parser", "hermes"],
]
REFUSED = [
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["--dtype", "fp9"], "argument --dtype: invalid choice: 'fp9'"),
    (["--max-model-len"], "argument --max-model-len: expected one argument"),
    (["--max-num-seqs", "64", "stray"], "unrecognized arguments: stray"),
]


@pytest.fixture(scope="module")
def vllm_check():  # type: ignore[no-untyped-def]
    from pulumi_vllm.engine.check import VllmArgsError, check_serve_args

    return check_serve_args, VllmArgsError


@pytest.mark.vllm
@pytest.mark.parametrize("extra", VALID)
def test_what_vllm_accepts_is_accepted(vllm_check, extra: list[str]) -> None:  # type: ignore[no-untyped-def]
    check_serve_args, _ = vllm_check
    check_serve_args([MODEL, *extra])
    check_extra_args(extra)


@pytest.mark.vllm
@pytest.mark.parametrize(("extra", "message"), REFUSED)
def test_what_vllm_refuses_is_refused_in_its_words(vllm_check, extra: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    check_serve_args, error_type = vllm_check
    with pytest.raises(error_type) as theirs:
        check_serve_args([MODEL, *extra])
    with pytest.raises(ValueError) as ours:
        check_extra_args(extra)
    assert message in str(ours.value)
    assert message in str(theirs.value)


@pytest.mark.vllm
def test_every_choice_flag_agrees_with_vllm(vllm_check) -> None:  # type: ignore[no-untyped-def]
    check_serve_args, error_type = vllm_check
    flags = json.loads(DATA.read_text())["flags"]
    with_choices = sorted(name for name, spec in flags.items() if spec["choices"] and name.startswith("--"))
    assert len(with_choices) >= 20
    for name in with_choices:
        check_extra_args([name, flags[name]["choices"][0]])
        with pytest.raises(ValueError, match="invalid choice"):
            check_extra_args([name, "no-such-choice"])
        with pytest.raises(error_type):  # refused too (an int flag names the type first)
            check_serve_args([MODEL, name, "no-such-choice"])


@pytest.mark.vllm
def test_an_abbreviation_vllm_accepts_is_refused_here(vllm_check) -> None:  # type: ignore[no-untyped-def]
    """A deliberate difference: argparse expands --enable-prefix-cachin, a later release may not."""
    check_serve_args, _ = vllm_check
    check_serve_args([MODEL, "--enable-prefix-cachin"])
    with pytest.raises(ValueError, match=r"unrecognized arguments: --enable-prefix-cachin \(an abbreviation of "
                                         r"--enable-prefix-caching"):
        check_extra_args(["--enable-prefix-cachin"])


def test_render_and_pulumi_up_refuse_a_bad_extra_flag_in_the_config() -> None:
    with pytest.raises(ConfigError) as error:
        parse_stack_config({"model": {"id": MODEL}, "engine": {"extraArgs": ["--enable-prefix-cachin"]}})
    assert "pulumi-vllm:engine.extraArgs" in str(error.value)
    assert "unrecognized arguments: --enable-prefix-cachin" in str(error.value)
