"""The pinned release's ``vllm serve`` flags as data, and extra flags checked with it without vLLM.

The tests without a marker run without vLLM: the wording of every refusal, what is accepted, the
shape of the data. The ``vllm`` tests compare with the installed vLLM: the committed data is what
``tools/vllm_flags.py`` writes from its parser, and :func:`check_extra_args` accepts and refuses what
that parser accepts and refuses, in the same words (vLLM's parser is built once for the module).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pulumi_vllm.config import VLLM_VERSION, ConfigError, parse_stack_config
from pulumi_vllm.engine.flags import (
    VLLM_FLAGS_DEVICE_TYPE,
    VLLM_FLAGS_VERSION,
    check_extra_args,
    flag_name,
    known_flags,
    vllm_flags_version,
)

REPO = Path(__file__).resolve().parents[1]
GENERATOR = REPO / "tools" / "vllm_flags.py"
DATA = REPO / "components" / "pulumi_vllm" / "engine" / "serve_flags.json"
MODEL = "meta-llama/Llama-3.1-8B-Instruct"
# What precedes the extra flags in the command line the project builds: the model, then flags that
# each take one value (vllm_command: --host, --port, ...), so nothing before them takes their words.
BEFORE_EXTRA = [MODEL, "--host", "0.0.0.0", "--port", "8000"]

FLAGS: dict[str, dict[str, Any]] = json.loads(DATA.read_text(encoding="utf-8"))["flags"]
WITH_CHOICES = sorted(flag for flag, record in FLAGS.items() if record["choices"] is not None)
SWITCHES = sorted(flag for flag, record in FLAGS.items() if record["nargs"] == 0 and record["action"] != "help")
ONE_VALUE = sorted(flag for flag, record in FLAGS.items() if record["nargs"] is None and record["choices"] is None)
SEVERAL = sorted(flag for flag, record in FLAGS.items() if record["nargs"] in ("+", "*"))
SHORT = sorted(flag for flag in FLAGS if not flag.startswith("--"))


def ours(args: Sequence[str]) -> str | None:
    """None if check_extra_args accepts ``args``, else its message."""
    try:
        check_extra_args(args)
    except ValueError as error:
        return str(error)
    return None


# --- without vLLM ----------------------------------------------------------------------------


def test_the_data_is_of_the_pinned_release() -> None:
    assert VLLM_FLAGS_VERSION == vllm_flags_version() == VLLM_VERSION
    assert VLLM_FLAGS_DEVICE_TYPE == "cuda"
    assert {"--max-model-len", "--enable-prefix-caching", "--no-enable-prefix-caching", "-tp", "-h"} <= known_flags()
    assert known_flags() == frozenset(FLAGS)


def test_the_records_agree_with_each_other() -> None:
    orders = sorted(record["order"] for record in FLAGS.values())
    assert orders == list(range(len(FLAGS)))
    for flag, record in FLAGS.items():
        names = sorted([flag, *record["aliases"]], key=lambda name: FLAGS[name]["order"])
        assert record["argument"] == "/".join(names), flag
        for alias in record["aliases"]:
            assert FLAGS[alias]["dest"] == record["dest"] and FLAGS[alias]["argument"] == record["argument"]
        assert record["takes_value"] == (record["nargs"] != 0), flag
        assert (record["convert"] is None) == (record["choices"] is None), flag
        if record["action"] == "BooleanOptionalAction" and flag.startswith("--") and not flag.startswith("--no-"):
            assert f"--no-{flag[2:]}" in record["aliases"], flag


ACCEPTED = [
    [],
    ["--enable-prefix-caching"],
    ["--no-enable-prefix-caching"],
    ["--max-num-seqs", "64"],
    ["--max_num_seqs", "64"],
    ["--max-model-len=4096"],
    ["--max-model-len", "-1"],
    ["-tp", "2"],
    ["-tp=2"],
    ["-n2"],
    ["-O3"],
    ["-O", "3"],
    ["--dtype=half"],
    ["--kv-cache-dtype", "fp8"],
    ["--moe-backend", "Triton"],
    ["--safetensors-load-strategy", "None"],
    ["--max-lora-rank", "08"],
    ["--served-model-name", "a", "b"],
    ["--compilation-config.mode", "3"],
    ["-cc.mode=3", "-cc.custom_ops+", "none,+rms_norm"],
    ["--enable-auto-tool-choice", "--tool-call-parser", "hermes"],
    ["--config", "/etc/vllm/serve.yaml"],
]


@pytest.mark.parametrize("extra", ACCEPTED, ids=" ".join)
def test_accepted(extra: list[str]) -> None:
    check_extra_args(extra)


DTYPES = "'auto', 'bfloat16', 'float', 'float16', 'float32', 'half'"
AMBIGUOUS = (
    "ambiguous option: --enable-p could match --enable-prompt-tokens-details, --enable-per-request-metrics, "
    "--enable-prompt-embeds, --enable-prefix-caching"
)
REFUSED = [
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["--tensor-paralel-size", "2"], "unrecognized arguments: --tensor-paralel-size 2"),
    (["--enforce-eager", "stray"], "unrecognized arguments: stray"),
    (["--max-num-seqs", "64", "stray", "--bogus"], "unrecognized arguments: stray --bogus"),
    (["--", "x"], "unrecognized arguments: -- x"),
    (
        ["--enable-prefix-cachin"],
        "unrecognized arguments: --enable-prefix-cachin (did you mean --enable-prefix-caching?)",
    ),
    (
        ["--enable_prefix_cachin"],
        "unrecognized arguments: --enable-prefix-cachin (did you mean --enable-prefix-caching?)",
    ),
    (["--max-model-le=4096"], "unrecognized arguments: --max-model-le=4096 (did you mean --max-model-len?)"),
    (["-t", "2"], "unrecognized arguments: -t 2 (did you mean -tp?)"),
    (
        ["--max-model-le", "4096", "--enable-prefix-cachin"],
        (
            "unrecognized arguments: --max-model-le 4096 --enable-prefix-cachin (did you mean --max-model-len "
            "for --max-model-le, --enable-prefix-caching for --enable-prefix-cachin?)"
        ),
    ),
    (["--enable-p"], AMBIGUOUS),
    (["--dtype", "fp9"], f"argument --dtype: invalid choice: 'fp9' (choose from {DTYPES})"),
    (["--dtype=fp9"], f"argument --dtype: invalid choice: 'fp9' (choose from {DTYPES})"),
    (
        ["--max-lora-rank", "5"],
        "argument --max-lora-rank: invalid choice: 5 (choose from 1, 8, 16, 32, 64, 128, 256, 320, 512)",
    ),
    (["--max-lora-rank", "x"], "argument --max-lora-rank: invalid int value: 'x'"),
    (
        ["--safetensors-load-strategy", "bad"],
        (
            "argument --safetensors-load-strategy: invalid choice: 'bad' "
            "(choose from 'eager', 'lazy', 'prefetch', 'torchao', None)"
        ),
    ),
    (["--max-model-len"], "argument --max-model-len: expected one argument"),
    (["--max-model-len", "--enforce-eager"], "argument --max-model-len: expected one argument"),
    (["-tp"], "argument --tensor-parallel-size/-tp: expected one argument"),
    (["-cc.mode"], "argument --compilation-config/-cc: expected one argument"),
    (["--served-model-name"], "argument --served-model-name: expected at least one argument"),
    (
        ["--enforce-eager=true"],
        "argument --enforce-eager/--no-enforce-eager: ignored explicit argument 'true'",
    ),
    # argparse stops at a bad value at once; it reports unknown words only at the end.
    (["--bogus", "--dtype", "fp9"], f"argument --dtype: invalid choice: 'fp9' (choose from {DTYPES})"),
    # It reads every word before taking any, so an ambiguous abbreviation is reported first.
    (["--dtype", "fp9", "--enable-p"], AMBIGUOUS),
    (["--help"], "the arguments ask vLLM to print help or its version and exit, not to run"),
    (["-h"], "the arguments ask vLLM to print help or its version and exit, not to run"),
    (
        ["--model", "other/model"],
        (
            "--model: the model is vllm serve's positional argument; vLLM would serve this one and report the "
            "positional model as unrecognized"
        ),
    ),
]


@pytest.mark.parametrize(("extra", "message"), REFUSED, ids=[" ".join(extra) for extra, _ in REFUSED])
def test_refused_in_argparses_words(extra: list[str], message: str) -> None:
    with pytest.raises(ValueError) as error:
        check_extra_args(extra)
    assert str(error.value) == message


def test_one_string_is_not_a_list_of_arguments() -> None:
    with pytest.raises(TypeError):
        check_extra_args("--enforce-eager")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("token", "name"),
    [
        ("--max-model-len", "--max-model-len"),
        ("--max_model_len=8", "--max-model-len"),
        ("--api_key", "--api-key"),
        ("-tp=2", "-tp"),
        ("-n2", "-n"),
        ("-O3", "--optimization-level"),
        ("--compilation-config.mode", "--compilation-config"),
        ("-cc.mode=3", "-cc"),
        ("--help=dtype", "--help"),
        ("--enable-prefix-cachin", None),
        ("--enable-p", None),
        ("--bogus", None),
        ("8000", None),
        ("-1", None),
    ],
)
def test_the_flag_a_token_names(token: str, name: str | None) -> None:
    assert flag_name(token) == name


def test_render_and_pulumi_up_refuse_a_bad_extra_flag_in_the_config() -> None:
    with pytest.raises(ConfigError) as error:
        parse_stack_config({"model": {"id": MODEL}, "engine": {"extraArgs": ["--enable-prefix-cachin"]}})
    assert "pulumi-vllm:engine.extraArgs" in str(error.value)
    assert "unrecognized arguments: --enable-prefix-cachin (did you mean --enable-prefix-caching?)" in str(error.value)


# --- with vLLM -------------------------------------------------------------------------------

_ARGPARSE_ERROR = re.compile(r"^[^\n]*?: error: ", re.MULTILINE)


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    """tools/vllm_flags.py, loaded as a module (one vLLM import for the whole file)."""
    spec = importlib.util.spec_from_file_location("vllm_flags_generator", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def vllm(generator: ModuleType) -> Callable[[Sequence[str]], str | None]:
    """vLLM's reading of ``vllm serve MODEL ... EXTRA``: None if it accepts, else its message.

    The ``vllm`` command's parser with its ``serve`` subcommand, as vLLM's CLI builds it, for the
    platform the data was generated for.
    """
    from vllm.entrypoints.cli.serve import ServeSubcommand
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    with generator.platform_device_type(VLLM_FLAGS_DEVICE_TYPE):
        parser = FlexibleArgumentParser(prog="vllm")
        ServeSubcommand().subparser_init(parser.add_subparsers(dest="subparser"))

    def read(extra: Sequence[str]) -> str | None:
        captured = io.StringIO()
        try:
            with contextlib.redirect_stderr(captured), contextlib.redirect_stdout(captured):
                parser.parse_args(["serve", *BEFORE_EXTRA, *extra])
        except SystemExit as exit_:
            if exit_.code in (0, None):
                return "exits without serving"
            output = captured.getvalue()
            return output[list(_ARGPARSE_ERROR.finditer(output))[-1].end() :].strip()
        except (IndexError, ValueError, OSError) as exc:  # vLLM's rewriting of the arguments fails outright
            return f"{type(exc).__name__}: {exc}"
        return None

    return read


@pytest.mark.vllm
def test_the_committed_data_is_what_the_generator_writes(generator: ModuleType, tmp_path: Path) -> None:
    out = tmp_path / "serve_flags.json"
    assert generator.main(["--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == DATA.read_text(encoding="utf-8")
    assert generator.main(["--out", str(DATA), "--check"]) == 0
    stale = json.loads(DATA.read_text(encoding="utf-8"))
    del stale["flags"]["--max-model-len"]
    out.write_text(generator.render(stale), encoding="utf-8")
    assert generator.main(["--out", str(out), "--check"]) == 1


@pytest.mark.vllm
def test_the_data_names_the_installed_release() -> None:
    from pulumi_vllm.engine.check import installed_vllm_version

    assert installed_vllm_version() == VLLM_FLAGS_VERSION


def _agree(vllm: Callable[[Sequence[str]], str | None], extra: list[str]) -> str | None:
    theirs = vllm(extra)
    assert ours(extra) == theirs, extra
    return theirs


@pytest.mark.vllm
@pytest.mark.parametrize("flag", WITH_CHOICES)
def test_every_flag_with_choices_agrees_with_vllm(vllm: Callable[[Sequence[str]], str | None], flag: str) -> None:
    for choice in FLAGS[flag]["choices"]:
        assert _agree(vllm, [flag, choice]) is None
        assert _agree(vllm, [f"{flag}={choice}"]) is None
    assert "invalid" in (_agree(vllm, [flag, "no-such-choice"]) or "")
    assert "expected" in (_agree(vllm, [flag]) or "")
    assert "expected" in (_agree(vllm, [flag, "--enforce-eager"]) or "")


@pytest.mark.vllm
@pytest.mark.parametrize("flag", sorted({*SWITCHES[::6], *(flag for flag in SWITCHES if flag in SHORT)}))
def test_switches_agree_with_vllm(vllm: Callable[[Sequence[str]], str | None], flag: str) -> None:
    assert _agree(vllm, [flag]) is None
    assert _agree(vllm, [flag, "1"]) == "unrecognized arguments: 1"
    assert "ignored explicit argument" in (_agree(vllm, [f"{flag}=1"]) or "")


VALUE_CANDIDATES = ("1", "0.5", "auto", "x", "{}")


@pytest.mark.vllm
@pytest.mark.parametrize("flag", sorted({*ONE_VALUE[::5], *SEVERAL, *(flag for flag in ONE_VALUE if flag in SHORT)}))
def test_flags_with_values_agree_with_vllm(vllm: Callable[[Sequence[str]], str | None], flag: str) -> None:
    """A value vLLM's own type accepts is accepted (types are vLLM's business); a missing one is refused."""
    value = next((word for word in VALUE_CANDIDATES if vllm([flag, word]) is None), None)
    if value is not None:
        assert ours([flag, value]) is None
        assert ours([f"{flag}={value}"]) is None
    assert "expected" in (_agree(vllm, [flag]) or "")
    assert "expected" in (_agree(vllm, [flag, "--enforce-eager"]) or "")


AGREED = [
    ["--max_model_len", "4096", "--enable_prefix_caching", "--no_enable_chunked_prefill"],
    ["-tp", "2", "-pp=2", "-n2", "-r0", "-qfp8", "-q=fp8"],
    ["-O3"],
    ["-O=3"],
    ["-O", "3"],
    ["-O", "x"],
    ["-Odecode"],
    ["-cc.mode", "3"],
    ["--compilation-config.mode=3", "-cc.custom_ops+", "none,+rms_norm"],
    ["--dtype.x", "1"],
    ["--gpu-memory-utilization", "-0.5", "--enforce-eager"],
    ["--dtype=--"],
    ["--", "x"],
    ["--hf-token"],
    ["--hf-token", "x", "y"],
    ["--served-model-name", "--x"],
    ["--foo bar"],
    ["--dtype", "--foo bar"],
    ["--enforce-eager", "x", "--foo"],
    ["--collect-detailed-traces", "all", "bad"],
    ["-hx"],
    ["-tp2"],
    ["-d"],
    ["-x"],
    ["-"],
    ["--x.y", "1"],
    ["--api-key", "a", "-1", "b"],
    ["--enable-prefix-cachin", "--dtype", "fp9"],
]


@pytest.mark.vllm
@pytest.mark.parametrize("extra", AGREED, ids=" ".join)
def test_vllms_rewriting_and_argparses_corners_agree(vllm: Callable[[Sequence[str]], str | None], extra: list[str]) -> None:
    """Underscores, -O, --flag.key, short flags with attached values, "--", negative numbers, spaces."""
    _agree(vllm, extra)


@pytest.mark.vllm
@pytest.mark.parametrize(
    ("extra", "meant"),
    [
        (["--enable-prefix-cachin"], "--enable-prefix-caching"),
        (["--max-model-le", "4096"], "--max-model-len"),
        (["--max-model-le=4096"], "--max-model-len"),
        (["--no-enable-prefix-cach"], "--no-enable-prefix-caching"),
        (["-t", "2"], "-tp"),
    ],
)
def test_an_abbreviation_vllm_accepts_is_refused(
    vllm: Callable[[Sequence[str]], str | None], extra: list[str], meant: str
) -> None:
    """The deliberate difference: vLLM's parser (argparse's ``allow_abbrev``) reads an unambiguous
    abbreviation as the flag it starts, this check refuses it as an unknown flag and names that flag.
    A later vLLM release may add a flag with the same beginning (the abbreviation then fails to start,
    ambiguous) or rename the one it stood for; the full name keeps meaning the same flag."""
    assert vllm(extra) is None
    assert ours(extra) == f"unrecognized arguments: {' '.join(extra)} (did you mean {meant}?)"


@pytest.mark.vllm
def test_help_is_refused_as_vllm_would_not_serve(vllm: Callable[[Sequence[str]], str | None]) -> None:
    """vLLM prints its help and exits 0: accepted as arguments, but nothing would be served."""
    for extra in (["--help"], ["-h"], ["--help=dtype"]):
        assert vllm(extra) == "exits without serving"
        assert ours(extra) == "the arguments ask vLLM to print help or its version and exit, not to run"


@pytest.mark.vllm
def test_the_data_is_for_gpus_where_vllms_choices_depend_on_the_platform() -> None:
    """--mm-processor-device offers the platform's device: the data has the GPU images' list."""
    from pulumi_vllm.engine.check import VllmArgsError, check_serve_args

    with pytest.raises(VllmArgsError, match="invalid choice: 'cuda'"):
        check_serve_args([MODEL, "--mm-processor-device", "cuda"])  # the vLLM installed here is a CPU build
    check_extra_args(["--mm-processor-device", "cuda"])


def _underscored(flag: str) -> str:
    """``--enable-prefix-caching`` -> ``--enable_prefix_caching`` (vLLM reads both)."""
    return "--" + flag[2:].replace("-", "_") if flag.startswith("--") else flag


def _units(vllm: Callable[[Sequence[str]], str | None]) -> list[list[str]]:
    """Pieces of extra arguments to combine: every word that may become a value is ``1``, which every
    value-taking flag used here accepts, so vLLM's value types never decide (this check leaves them alone)."""
    units: list[list[str]] = [["1"], ["--no-such-flag"], ["--tensor-paralel-size"], ["--enable-p"], ["-O3"], ["--"]]
    for flag in WITH_CHOICES[::3]:
        choice = FLAGS[flag]["choices"][0]
        units += [[flag, choice], [f"{flag}={choice}"], [flag, "fp9"], [flag]]
    for flag in SWITCHES[::10]:
        units += [[flag], [f"{flag}=1"], [_underscored(flag)]]
    for flag in [*ONE_VALUE[::8], *SEVERAL]:
        if vllm([flag, "1"]) is None and vllm([flag, "1", "--enforce-eager"]) is None:
            units += [[flag, "1"], [f"{flag}=1"], [flag]]
    return units


@pytest.fixture(scope="module")
def units(vllm: Callable[[Sequence[str]], str | None]) -> list[list[str]]:
    return _units(vllm)


@pytest.mark.vllm
@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(data=st.data())
def test_combinations_agree_with_vllm(
    vllm: Callable[[Sequence[str]], str | None], units: list[list[str]], data: st.DataObject
) -> None:
    """Any sequence of such pieces: refused by both in the same words, or accepted by both."""
    chosen = data.draw(st.lists(st.sampled_from(units), max_size=6))
    extra = [token for unit in chosen for token in unit]
    assert ours(extra) == vllm(extra), extra
