"""Models outside the catalog, sized from their files on the Hub: a loopback Hub answering as huggingface.co does.

The server answers the routes ``huggingface_hub`` calls: ``/api/models/{repo}/revision/{revision}`` (the
commit and the file list), ``HEAD`` and ``GET /{repo}/resolve/{revision}/{file}`` (with ``X-Repo-Commit``,
``ETag``, ``Content-Length`` and byte ranges, as ``hf_hub_download`` and the safetensors header reads need),
and the Hub's error codes (``X-Error-Code: GatedRepo``, ``RevisionNotFound``, ``RepoNotFound``). The config
files are written here, and the safetensors files are real ones (8-byte length, JSON header, zero bytes).
"""

from __future__ import annotations

import hashlib
import json
import logging
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pytest

from pulumi_vllm.cli import main
from pulumi_vllm.config import parse_stack_config
from pulumi_vllm.models import hub
from pulumi_vllm.models.checkpoint import read_safetensors_headers
from pulumi_vllm.models.resolve import resolve_model_facts
from pulumi_vllm.plan import plan_serving

TOKEN = "hf_loopbacktesttoken"

DTYPE_BYTES = {"BF16": 2, "F16": 2, "F32": 4, "F8_E4M3": 1, "U8": 1, "I32": 4}


def safetensors_bytes(tensors: dict[str, tuple[str, list[int]]]) -> bytes:
    """A real safetensors file: the header's length, the JSON header, then zeroed tensor data."""
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, (dtype, shape) in tensors.items():
        size = DTYPE_BYTES[dtype]
        for dim in shape:
            size *= dim
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + bytes(offset)


@dataclass
class Repo:
    """One model repository: files per revision name (branches and tags resolve to a commit)."""

    files: dict[str, bytes]
    gated: bool = False
    revisions: dict[str, dict[str, bytes]] = field(default_factory=dict)

    def commit(self, revision: str) -> str:
        return hashlib.sha1(f"{revision}:{sorted(self.at(revision))}".encode()).hexdigest()

    def at(self, revision: str) -> dict[str, bytes]:
        return self.revisions.get(revision, self.files)


class LoopbackHub:
    """A threaded HTTP server on 127.0.0.1 answering like the Hub for the repositories it holds."""

    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str, str]] = []
        """(method, path, Authorization header) of every request."""
        self.ranges: dict[str, list[str]] = {}
        """The Range header of every GET, by path ("" without one)."""
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_HEAD(self) -> None:
                self._answer(body=False)

            def do_GET(self) -> None:
                self._answer(body=True)

            def _error(self, status: int, code: str, message: str = "") -> None:
                self.send_response(status)
                self.send_header("X-Error-Code", code)
                if message:
                    self.send_header("X-Error-Message", message)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _answer(self, body: bool) -> None:
                path = unquote(urlparse(self.path).path)
                auth = self.headers.get("authorization", "")
                hub.requests.append((self.command, path, auth))
                if self.command == "GET":
                    hub.ranges.setdefault(path, []).append(self.headers.get("range", ""))
                if path.startswith("/api/models/"):
                    self._api(path.removeprefix("/api/models/"), auth, body)
                elif "/resolve/" in path:
                    self._resolve(path.lstrip("/"), auth, body)
                else:
                    self._error(404, "RepoNotFound")

            def _find(self, spec: str) -> tuple[str, Repo, str] | None:
                """(repo id, repo, revision) of ``org/name/...revision`` where the revision may be a commit."""
                for repo_id, repo in hub.repos.items():
                    if spec == repo_id or spec.startswith(repo_id + "/"):
                        return repo_id, repo, spec[len(repo_id) + 1:]
                return None

            def _revision(self, repo: Repo, revision: str) -> str | None:
                names = {"main", *repo.revisions}
                for name in names:
                    if revision in (name, repo.commit(name)):
                        return name
                return None

            def _api(self, rest: str, auth: str, body: bool) -> None:
                repo_id, _, revision = rest.partition("/revision/")
                repo = hub.repos.get(repo_id)
                if repo is None:
                    return self._error(401, "RepoNotFound")
                name = self._revision(repo, revision or "main")
                if name is None:
                    return self._error(404, "RevisionNotFound", "Invalid rev id")
                info = {
                    "id": repo_id, "modelId": repo_id, "sha": repo.commit(name), "private": False,
                    "gated": "manual" if repo.gated else False,
                    "siblings": [{"rfilename": filename} for filename in sorted(repo.at(name))],
                }
                self._send(200, json.dumps(info).encode(), "application/json", body, repo.commit(name))

            def _resolve(self, rest: str, auth: str, body: bool) -> None:
                spec, _, filename = rest.partition("/resolve/")
                repo = hub.repos.get(spec)
                if repo is None:
                    return self._error(401, "RepoNotFound", "Invalid username or password.")
                revision, _, filename = filename.partition("/")
                name = self._revision(repo, revision)
                if name is None:
                    return self._error(404, "RevisionNotFound", "Invalid rev id")
                if repo.gated and auth != f"Bearer {TOKEN}":
                    return self._error(401, "GatedRepo", "Access to model is restricted.")
                data = repo.at(name).get(filename)
                if data is None:
                    return self._error(404, "EntryNotFound", "Entry not found")
                status, start, end = 200, 0, len(data) - 1
                ranged = self.headers.get("range")
                if ranged and ranged.startswith("bytes="):
                    first, _, last = ranged.removeprefix("bytes=").partition("-")
                    start, end = int(first), min(int(last) if last else len(data) - 1, len(data) - 1)
                    status = 206
                self._send(status, data[start:end + 1], "application/octet-stream", body, repo.commit(name),
                           etag=hashlib.sha256(data).hexdigest(), total=len(data) if status == 206 else None)

            def _send(self, status: int, data: bytes, kind: str, body: bool, commit: str, etag: str = "",
                      total: int | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("X-Repo-Commit", commit)
                if etag:
                    self.send_header("ETag", f'"{etag}"')
                if total is not None:
                    self.send_header("Content-Range", f"bytes {0}-{len(data) - 1}/{total}")
                self.end_headers()
                if body:
                    self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def seen(self, method: str = "") -> list[tuple[str, str, str]]:
        return [request for request in self.requests if not method or request[0] == method]


TINY_MOE = {
    "architectures": ["MixtralForCausalLM"], "model_type": "mixtral", "hidden_size": 256, "intermediate_size": 512,
    "num_attention_heads": 8, "num_key_value_heads": 2, "num_hidden_layers": 2, "vocab_size": 1024,
    "num_local_experts": 4, "num_experts_per_tok": 2, "max_position_embeddings": 4096, "torch_dtype": "bfloat16",
}


def tiny_moe_tensors() -> dict[str, tuple[str, list[int]]]:
    tensors: dict[str, tuple[str, list[int]]] = {
        "model.embed_tokens.weight": ("BF16", [1024, 256]), "lm_head.weight": ("BF16", [1024, 256]),
        "model.norm.weight": ("F32", [256]),
    }
    for layer in range(2):
        prefix = f"model.layers.{layer}"
        tensors[f"{prefix}.self_attn.q_proj.weight"] = ("BF16", [256, 256])
        tensors[f"{prefix}.self_attn.k_proj.weight"] = ("BF16", [64, 256])
        tensors[f"{prefix}.block_sparse_moe.gate.weight"] = ("BF16", [4, 256])
        for expert in range(4):
            tensors[f"{prefix}.block_sparse_moe.experts.{expert}.w1.weight"] = ("BF16", [512, 256])
    return tensors


# Shaped like Qwen/Qwen2.5-VL-7B-Instruct's config.json (huggingface.co/Qwen/Qwen2.5-VL-7B-Instruct).
QWEN_VL_7B = {
    "architectures": ["Qwen2_5_VLForConditionalGeneration"], "model_type": "qwen2_5_vl", "hidden_size": 3584,
    "intermediate_size": 18944, "num_attention_heads": 28, "num_hidden_layers": 28, "num_key_value_heads": 4,
    "vocab_size": 152064, "max_position_embeddings": 128000, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0,
    "sliding_window": 32768, "use_sliding_window": False, "max_window_layers": 28, "tie_word_embeddings": False,
    "torch_dtype": "bfloat16", "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]},
    "vision_config": {"depth": 32, "hidden_size": 1280, "out_hidden_size": 3584, "spatial_merge_size": 2},
}


def sharded(tensors: dict[str, tuple[str, list[int]]], shards: int) -> dict[str, bytes]:
    """The checkpoint as ``shards`` files and the index that maps each tensor to its file."""
    names = list(tensors)
    files: dict[str, bytes] = {}
    weight_map = {}
    for index in range(shards):
        filename = f"model-{index + 1:05d}-of-{shards:05d}.safetensors"
        part = {name: tensors[name] for name in names[index::shards]}
        files[filename] = safetensors_bytes(part)
        weight_map.update(dict.fromkeys(part, filename))
    files["model.safetensors.index.json"] = json.dumps({"metadata": {"total_size": 0}, "weight_map": weight_map}).encode()
    return files


@pytest.fixture
def loopback_hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[LoopbackHub]:
    """The loopback Hub, HF_ENDPOINT pointing at it, an empty cache folder, and the network allowed."""
    server = LoopbackHub()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("PULUMI_VLLM_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    server.repos["acme/tiny-moe"] = Repo({
        "config.json": json.dumps(TINY_MOE).encode(), "model.safetensors": safetensors_bytes(tiny_moe_tensors()),
    })
    yield server
    server.stop()


def test_a_model_outside_the_catalog_is_sized_from_its_files_on_the_hub(loopback_hub: LoopbackHub) -> None:
    started = time.monotonic()
    resolved = resolve_model_facts("acme/tiny-moe", hub=True)
    facts = resolved.facts
    assert facts is not None and resolved.notes == ()
    commit = loopback_hub.repos["acme/tiny-moe"].commit("main")
    assert resolved.origin == f"hub:acme/tiny-moe@{commit}"
    assert facts.source == f"{loopback_hub.url}/acme/tiny-moe/blob/{commit}/config.json"
    assert (facts.num_hidden_layers, facts.num_key_value_heads, facts.head_dim) == (2, 2, 32)
    assert (facts.num_experts, facts.num_experts_per_token) == (4, 2)
    checkpoint = facts.checkpoint
    assert checkpoint is not None
    expected = tiny_moe_tensors()
    assert {t.name: (t.dtype, list(t.shape)) for t in checkpoint.tensors} == expected
    elements = sum(dims[0] * (dims[1] if len(dims) > 1 else 1) for _, dims in expected.values())
    assert checkpoint.num_elements == elements and facts.num_parameters == elements
    assert checkpoint.total_bytes == 2 * elements + 2 * 256  # BF16 everywhere, the F32 norm twice as wide
    # Only the header was read: every GET of the checkpoint asked for its first bytes.
    reads = {path: ranges for path, ranges in loopback_hub.ranges.items() if path.endswith(".safetensors")}
    assert list(reads) == [f"/acme/tiny-moe/resolve/{commit}/model.safetensors"]
    assert all(ranges.startswith(("bytes=0-", "bytes=8-")) for ranges in next(iter(reads.values())))
    assert time.monotonic() - started < 20


def test_a_sharded_vision_language_checkpoint_reads_every_shard_named_by_the_index(loopback_hub: LoopbackHub) -> None:
    tensors = {
        "model.embed_tokens.weight": ("BF16", [64, 32]), "lm_head.weight": ("BF16", [64, 32]),
        "visual.blocks.0.attn.qkv.weight": ("BF16", [96, 32]), "visual.merger.mlp.0.weight": ("BF16", [32, 128]),
        "model.layers.0.mlp.down_proj.weight": ("F8_E4M3", [32, 64]), "model.layers.0.mlp.down_proj.weight_scale":
        ("F32", [1]),
    }
    loopback_hub.repos["acme/vl-7b"] = Repo({"config.json": json.dumps(QWEN_VL_7B).encode(), **sharded(tensors, 3)})
    facts = resolve_model_facts("acme/vl-7b", hub=True).facts
    assert facts is not None and facts.checkpoint is not None
    assert (facts.num_hidden_layers, facts.num_attention_heads, facts.num_key_value_heads) == (28, 28, 4)
    assert (facts.hidden_size, facts.head_dim, facts.vocab_size, facts.max_position_embeddings) == (
        3584, 128, 152064, 128000)
    assert facts.sliding_window is None  # use_sliding_window: false
    assert {t.name: t.dtype for t in facts.checkpoint.tensors} == {name: dtype for name, (dtype, _) in tensors.items()}
    shards = {path.rsplit("/", 1)[-1] for method, path, _ in loopback_hub.seen("GET") if path.endswith(".safetensors")}
    assert shards == {f"model-0000{i}-of-00003.safetensors" for i in (1, 2, 3)}


def test_the_cache_answers_when_the_hub_is_gone_and_keeps_no_token(
    loopback_hub: LoopbackHub, tmp_path: Path
) -> None:
    first = resolve_model_facts("acme/tiny-moe", hub=True, token=TOKEN)
    loopback_hub.stop()
    again = resolve_model_facts("acme/tiny-moe", hub=True, token=TOKEN)
    assert again.facts == first.facts and again.origin == first.origin and again.notes == ()
    commit = loopback_hub.repos["acme/tiny-moe"].commit("main")
    folder = tmp_path / "cache" / "pulumi-vllm" / "hub" / loopback_hub.url.removeprefix("http://").replace(":", "_")
    cached = {path.name for path in (folder / "acme" / "tiny-moe").iterdir()}
    assert cached == {"main.json", f"{commit}.json"}  # the branch, and its commit for pinned runs
    for path in (folder / "acme" / "tiny-moe").iterdir():
        assert TOKEN not in path.read_text()
    # A branch is read again after a day; with the Hub gone, the stale copy is used and says so.
    main = folder / "acme" / "tiny-moe" / "main.json"
    data = json.loads(main.read_text())
    main.write_text(json.dumps({**data, "fetched_at": time.time() - hub.BRANCH_CACHE_SECONDS - 60}))
    stale = resolve_model_facts("acme/tiny-moe", hub=True)
    assert stale.facts == first.facts
    assert stale.notes and "could not connect" in stale.notes[0] and "cached 24 h ago" in stale.notes[0]
    # The commit never goes stale.
    pinned = resolve_model_facts("acme/tiny-moe", hub=True, revision=commit)
    assert pinned.facts == first.facts and pinned.notes == ()


def test_the_revision_is_passed_through(loopback_hub: LoopbackHub) -> None:
    repo = loopback_hub.repos["acme/tiny-moe"]
    repo.revisions["v2"] = {**repo.files, "config.json": json.dumps({**TINY_MOE, "num_hidden_layers": 6}).encode()}
    facts = resolve_model_facts("acme/tiny-moe", hub=True, revision="v2").facts
    assert facts is not None and facts.num_hidden_layers == 6
    commit = repo.commit("v2")
    paths = [path for _, path, _ in loopback_hub.seen()]
    assert "/api/models/acme/tiny-moe/revision/v2" in paths
    assert f"/acme/tiny-moe/resolve/{commit}/config.json" in paths  # files are read at the commit v2 names
    missing = resolve_model_facts("acme/tiny-moe", hub=True, revision="no-such-branch")
    assert missing.facts is None
    why = f"acme/tiny-moe has no revision 'no-such-branch' on {loopback_hub.url}"
    assert missing.notes == (f"could not read acme/tiny-moe from the Hub: {why}: no facts",)


def test_a_gated_model_needs_the_token_sent_as_a_bearer_header(loopback_hub: LoopbackHub) -> None:
    loopback_hub.repos["acme/gated-7b"] = Repo(dict(loopback_hub.repos["acme/tiny-moe"].files), gated=True)
    refused = resolve_model_facts("acme/gated-7b", hub=True)
    assert refused.facts is None
    gated = "acme/gated-7b is gated: set the hfToken secret (or HF_TOKEN) to a token with access"
    assert refused.notes == (f"could not read acme/gated-7b from the Hub: {gated}: no facts",)
    assert all(auth == "" for _, _, auth in loopback_hub.seen())
    wrong = resolve_model_facts("acme/gated-7b", hub=True, token="hf_wrong")
    assert wrong.facts is None and "the token given has no access" in wrong.notes[0] and "hf_wrong" not in wrong.notes[0]
    loopback_hub.requests.clear()
    allowed = resolve_model_facts("acme/gated-7b", hub=True, token=TOKEN)
    assert allowed.facts is not None and allowed.facts.num_experts == 4
    assert {auth for _, _, auth in loopback_hub.seen()} == {f"Bearer {TOKEN}"}


def test_an_unknown_repository_says_so(loopback_hub: LoopbackHub) -> None:
    resolved = resolve_model_facts("acme/nothing-here", hub=True)
    assert resolved.facts is None and resolved.origin == "unknown"
    assert "acme/nothing-here was not found on" in resolved.notes[0]
    assert "private or gated" in resolved.notes[0]


def test_no_network_and_offline_fall_back_with_a_note(
    loopback_hub: LoopbackHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed}")
    started = time.monotonic()
    unreachable = resolve_model_facts("acme/tiny-moe", hub=True)
    assert time.monotonic() - started < 15
    assert unreachable.facts is None
    why = f"could not connect to http://127.0.0.1:{closed} (ConnectError)"
    assert unreachable.notes == (f"could not read acme/tiny-moe from the Hub: {why}: no facts",)

    monkeypatch.setenv("HF_ENDPOINT", loopback_hub.url)
    monkeypatch.setenv("PULUMI_VLLM_OFFLINE", "1")
    offline = resolve_model_facts("acme/tiny-moe", hub=True)
    assert offline.facts is None and loopback_hub.requests == []
    assert offline.notes[0].startswith("could not read acme/tiny-moe from the Hub: offline (PULUMI_VLLM_OFFLINE is set)")
    # Explicit facts still size it; the catalog and a local config.json never ask the Hub.
    explicit = {"num_hidden_layers": 2, "num_attention_heads": 8, "num_key_value_heads": 2, "head_dim": 32,
                "hidden_size": 256, "vocab_size": 1024}
    assert resolve_model_facts("acme/tiny-moe", explicit, hub=True).origin == "config"
    monkeypatch.delenv("PULUMI_VLLM_OFFLINE")
    assert resolve_model_facts("meta-llama/Llama-3.1-8B-Instruct", hub=True).origin == "catalog"
    assert loopback_hub.requests == []
    with pytest.raises(ValueError, match="explicit model facts must be complete; missing: .*not found on"):
        resolve_model_facts("acme/nothing-here", {"num_hidden_layers": 2}, hub=True)


def test_a_local_folder_gives_its_checkpoint_too(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(TINY_MOE))
    (tmp_path / "model.safetensors").write_bytes(safetensors_bytes(tiny_moe_tensors()))
    resolved = resolve_model_facts(str(tmp_path), hub=True)
    assert resolved.facts is not None and resolved.facts.checkpoint == read_safetensors_headers(tmp_path)
    assert resolved.origin.startswith("config.json:")


def test_size_reads_a_model_outside_the_catalog_from_the_hub(
    loopback_hub: LoopbackHub, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = loopback_hub.repos["acme/tiny-moe"]
    repo.revisions["v2"] = {**repo.files, "config.json": json.dumps({**TINY_MOE, "max_position_embeddings": 2048}).encode()}
    code = main(["size", "--model", "acme/tiny-moe", "--gpu", "L4", "--revision", "v2"])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert f"(facts: hub:acme/tiny-moe@{repo.commit('v2')})" in out
    assert "max_model_len=2048" in out and "num_parameters unknown" not in out

    loopback_hub.repos["acme/gated-7b"] = Repo(dict(repo.files), gated=True)
    code = main(["size", "--model", "acme/gated-7b", "--gpu", "L4"])
    out, err = capsys.readouterr()
    assert code == 2 and "Traceback" not in err
    assert "is gated: set the hfToken secret (or HF_TOKEN)" in err
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    assert main(["size", "--model", "acme/gated-7b", "--gpu", "L4", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["fits"] is True


def test_the_plan_reads_the_hub_with_the_stacks_token_and_revision(
    loopback_hub: LoopbackHub, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    loopback_hub.repos["acme/gated-7b"] = Repo(dict(loopback_hub.repos["acme/tiny-moe"].files), gated=True)
    stack = {"model": {"id": "acme/gated-7b", "revision": "main"}, "parallelism": {"tensorParallelSize": 3},
             "hfToken": TOKEN}
    with pytest.raises(Exception, match="tensorParallelSize: 3 is not accepted for acme/gated-7b"):
        plan_serving(parse_stack_config(stack))  # 8 heads do not split over 3 GPUs: the facts came from the Hub
    assert ("GET", "/api/models/acme/gated-7b/revision/main", f"Bearer {TOKEN}") in loopback_hub.seen()
    with caplog.at_level(logging.DEBUG, logger="pulumi_vllm"):
        plan = plan_serving(parse_stack_config({**stack, "model": {"id": "acme/gated-8b"}, "hfToken": "hf_x"}))
    assert plan.facts is None
    # The reason is one of the plan's warnings, which the render summary and `pulumi up` print.
    assert any(warning.startswith("pulumi-vllm:model.id: could not read acme/gated-8b from the Hub: acme/gated-8b was not found") for warning in plan.warnings)
    assert not any("hf_x" in warning for warning in plan.warnings) and "hf_x" not in caplog.text
    # render without the secret's value stands "[secret]" in for it: HF_TOKEN is used instead.
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    loopback_hub.requests.clear()
    loopback_hub.repos["acme/gated-9b"] = Repo(dict(loopback_hub.repos["acme/tiny-moe"].files), gated=True)
    placeholder = {"model": {"id": "acme/gated-9b"}, "hfToken": "[secret]"}
    assert plan_serving(parse_stack_config(placeholder)).facts is not None
    assert {auth for _, _, auth in loopback_hub.seen()} == {f"Bearer {TOKEN}"}


def test_no_example_stack_reaches_the_hub(monkeypatch: pytest.MonkeyPatch, repo: Path) -> None:
    """The example stacks name catalog models (or GGUF ones), so planning them never needs the network."""
    from pulumi_vllm.config.stack import load_program_parts
    from pulumi_vllm.render.engine import read_stack_files, stack_files

    monkeypatch.delenv("PULUMI_VLLM_OFFLINE", raising=False)
    asked: list[str] = []

    def no_network(repo_id: str, *args: Any) -> hub.HubModel:
        asked.append(repo_id)
        raise hub.HubUnavailable("the tests stay off the network")

    monkeypatch.setattr(hub, "_download", no_network)
    planned = []
    for stack in sorted(stack_files(repo)):
        _, flat, secret = read_stack_files(repo, stack)
        serving = load_program_parts(flat, secret_keys=set(secret)).serving
        for config in (serving.models.values() or [serving]) if serving is not None else []:
            planned.append(plan_serving(config).config.model.id)
    assert len(planned) >= 20 and asked == []
