"""Where the upstream schemas come from: the loader's precedence, visible skips, `make schemas`, no copies."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import importlib.util
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
import schemas
from conftest import SCHEMA_MISSING_PREFIX, schema_summary
from schemas import CRD_FILES, MANIFEST, crd_text, require_schema, schema_dirs, schema_path

REPO = Path(__file__).resolve().parents[1]
FETCH = REPO / "tools" / "fetch_schemas.py"
COMPOSE = "schemas/compose-spec.json"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def _load_fetch_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fetch_schemas", FETCH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("fetch_schemas", module)
    spec.loader.exec_module(module)
    return module


fetch_schemas = _load_fetch_script()
ENTRIES = fetch_schemas.parse_manifest(MANIFEST.read_text(), str(MANIFEST))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# --- the loader -------------------------------------------------------------------------------


@pytest.fixture
def folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """Empty stand-ins for the three places, with the loader pointed at them."""
    places = SimpleNamespace(env=tmp_path / "env", shared=tmp_path / "shared", cache=tmp_path / "cache")
    for folder in vars(places).values():
        folder.mkdir()
    monkeypatch.setenv(schemas.SCHEMAS_ENV, str(places.env))
    monkeypatch.setattr(schemas, "SHARED_DIR", places.shared)
    monkeypatch.setattr(schemas, "CACHE_DIR", places.cache)
    monkeypatch.delenv("CI", raising=False)
    return places


def test_precedence_is_the_variable_then_shared_then_the_cache(
    folders: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    relative = "crds/example.yaml"
    assert schema_dirs() == [folders.env, folders.shared, folders.cache]
    assert schema_path(relative) is None
    cached = write(folders.cache / relative, b"cache")
    assert schema_path(relative) == cached
    shared = write(folders.shared / relative, b"shared")
    assert schema_path(relative) == shared
    override = write(folders.env / relative, b"env")
    assert schema_path(relative) == override
    # A variable naming a folder without the file falls through to the next place.
    monkeypatch.setenv(schemas.SCHEMAS_ENV, str(folders.env / "elsewhere"))
    assert schema_path(relative) == shared
    # Unset or empty: only ../shared and the cache are searched.
    monkeypatch.setenv(schemas.SCHEMAS_ENV, "")
    assert schema_dirs() == [folders.shared, folders.cache]
    monkeypatch.delenv(schemas.SCHEMAS_ENV)
    assert schema_dirs() == [folders.shared, folders.cache]
    shared.unlink()
    assert schema_path(relative) == cached


def test_schema_dirs_takes_explicit_places(tmp_path: Path) -> None:
    env = {schemas.SCHEMAS_ENV: str(tmp_path / "a")}
    assert schema_dirs(env, tmp_path / "b", tmp_path / "c") == [tmp_path / "a", tmp_path / "b", tmp_path / "c"]
    assert schema_dirs({}, tmp_path / "b", tmp_path / "c") == [tmp_path / "b", tmp_path / "c"]
    assert schema_path("x.json", [tmp_path / "b"]) is None


def test_the_default_places() -> None:
    assert schemas.SHARED_DIR == REPO.parent / "shared"
    assert schemas.CACHE_DIR == REPO / ".cache" / "schemas"
    assert schemas.MISSING_PREFIX == SCHEMA_MISSING_PREFIX  # what conftest counts


def test_the_cache_is_ignored_by_git() -> None:
    result = subprocess.run(
        ["git", "check-ignore", "-q", ".cache/schemas/crds/x.yaml"], cwd=REPO, check=False, timeout=30
    )
    assert result.returncode == 0


def test_crd_text_reads_the_first_place(folders: SimpleNamespace) -> None:
    write(folders.shared / "crds" / "example.yaml", b"kind: CustomResourceDefinition\n")
    assert crd_text("example.yaml") == "kind: CustomResourceDefinition\n"


def test_a_missing_schema_skips_with_where_it_looked_and_how_to_get_it(
    folders: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(schemas.SCHEMAS_ENV, "/nonexistent")
    with pytest.raises(pytest.skip.Exception) as skipped:
        require_schema("crds/example.yaml")
    reason = str(skipped.value)
    assert reason.startswith(f"{SCHEMA_MISSING_PREFIX} crds/example.yaml ")
    for place in ("$PULUMI_VLLM_SCHEMAS=/nonexistent", str(folders.shared), str(folders.cache), "make schemas"):
        assert place in reason
    monkeypatch.delenv(schemas.SCHEMAS_ENV)
    with pytest.raises(pytest.skip.Exception) as skipped:
        require_schema("crds/example.yaml")
    assert "$PULUMI_VLLM_SCHEMAS (not set)" in str(skipped.value)
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception):
        require_schema("crds/example.yaml")


def test_under_ci_a_missing_schema_fails(folders: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception) as failed:
        require_schema(COMPOSE)
    assert str(failed.value).startswith(f"{SCHEMA_MISSING_PREFIX} {COMPOSE} ")
    write(folders.cache / COMPOSE, b"{}")
    assert require_schema(COMPOSE) == folders.cache / COMPOSE


def _skip(nodeid: str, reason: str) -> SimpleNamespace:
    return SimpleNamespace(nodeid=nodeid, longrepr=("file.py", 1, f"Skipped: {reason}"))


def test_the_summary_names_the_missing_files_and_stays_quiet_otherwise() -> None:
    assert schema_summary({}) == []
    assert schema_summary({"skipped": [_skip("t::a", "node is not installed")]}) == []
    stats = {
        "skipped": [
            _skip("t::a", f"{SCHEMA_MISSING_PREFIX} crds/b.yaml is in none of: ..."),
            _skip("t::b", f"{SCHEMA_MISSING_PREFIX} crds/a.yaml is in none of: ..."),
            _skip("t::c", "node is not installed"),
        ],
        "failed": [
            SimpleNamespace(nodeid="t::d", longrepr=f"{SCHEMA_MISSING_PREFIX} {COMPOSE} is in none of: ..."),
            # A failure that only quotes such a reason (a child run's output) does not count.
            SimpleNamespace(nodeid="t::e", longrepr=f"AssertionError: ... {SCHEMA_MISSING_PREFIX} crds/c.yaml ..."),
        ],
    }
    assert schema_summary(stats) == [
        "schemas: 2 test(s) skipped, missing: crds/a.yaml, crds/b.yaml (run make schemas, or set PULUMI_VLLM_SCHEMAS)",
        f"schemas: 1 test(s) failed, missing: {COMPOSE} (run make schemas, or set PULUMI_VLLM_SCHEMAS)",
    ]


HIDE_PLUGIN = '''"""Point the schema loader's ../shared and cache folders at empty folders."""
from pathlib import Path

import schemas

schemas.SHARED_DIR = Path({shared!r})
schemas.CACHE_DIR = Path({cache!r})
'''


def _run_without_schemas(tmp_path: Path, ci: bool) -> subprocess.CompletedProcess[str]:
    """Two schema-validating test modules, in a child pytest that finds no schema anywhere."""
    shared, cache = tmp_path / "no-shared", tmp_path / "no-cache"
    plugins = tmp_path / "plugins"
    plugins.mkdir(exist_ok=True)
    (plugins / "hide_schemas.py").write_text(HIDE_PLUGIN.format(shared=str(shared), cache=str(cache)))
    env = {key: value for key, value in os.environ.items() if key not in ("CI", "PYTEST_ADDOPTS")}
    env[schemas.SCHEMAS_ENV] = "/nonexistent"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(plugins), str(REPO / "tests"), env.get("PYTHONPATH")]))
    if ci:
        env["CI"] = "1"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "hide_schemas"]
    command += [
        "tests/test_compose.py::test_the_validator_rejects_what_compose_rejects",
        "tests/test_multinode.py::test_every_object_is_schema_valid",
    ]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=False, timeout=600)


SUMMARY = re.compile(
    r"^schemas: (\d+) test\(s\) (skipped|failed), missing: (.+) \(run make schemas, or set PULUMI_VLLM_SCHEMAS\)$",
    re.MULTILINE,
)


def test_without_any_schema_the_tests_skip_visibly_and_fail_under_ci(tmp_path: Path) -> None:
    local = _run_without_schemas(tmp_path, ci=False)
    output = local.stdout + local.stderr
    assert local.returncode == 0, output
    assert re.search(r"^(\d+ passed, )?\d+ skipped in ", output, re.MULTILINE), output
    [summary] = SUMMARY.findall(output)
    count, outcome, missing = summary
    assert outcome == "skipped" and int(count) >= 2
    assert COMPOSE in missing and "crds/" in missing
    # -ra prints each reason: the file, the three places, and the remedy.
    assert f"{SCHEMA_MISSING_PREFIX} {COMPOSE} is in none of: $PULUMI_VLLM_SCHEMAS=/nonexistent, " in output
    assert str(tmp_path / "no-shared") in output and str(tmp_path / "no-cache") in output
    assert "run `make schemas`" in output

    under_ci = _run_without_schemas(tmp_path, ci=True)
    output = under_ci.stdout + under_ci.stderr
    assert under_ci.returncode == 1, output
    assert re.search(r"^\d+ failed(, \d+ passed)? in ", output, re.MULTILINE), output
    [summary] = SUMMARY.findall(output)
    assert summary[:2] == (count, "failed") and summary[2] == missing


# --- the manifest -----------------------------------------------------------------------------


def test_the_manifest_pins_every_schema_the_tests_read() -> None:
    relatives = [entry.relative for entry in ENTRIES]
    assert len(relatives) == len(set(relatives)), "a file is listed twice"
    assert {f"crds/{name}" for name in CRD_FILES.values()} | {COMPOSE} <= set(relatives)
    for entry in ENTRIES:
        assert entry.url.startswith(("https://raw.githubusercontent.com/", "https://github.com/")), entry.url
        assert entry.url.endswith("/" + entry.relative.rsplit("/", 1)[1]), entry.url
    if schemas.SHARED_DIR.is_dir():
        # Every schema in ../shared is pinned, so a checkout without it can fetch the same files.
        shared = {
            path.relative_to(schemas.SHARED_DIR).as_posix()
            for pattern in ("crds/*.yaml", "schemas/*.json")
            for path in schemas.SHARED_DIR.glob(pattern)
        }
        assert shared <= set(relatives), sorted(shared - set(relatives))


@pytest.mark.parametrize("entry", ENTRIES, ids=[entry.relative for entry in ENTRIES])
def test_the_schema_read_is_the_pinned_file(entry: Any) -> None:
    path = require_schema(entry.relative)
    assert sha256(path.read_bytes()) == entry.sha256, f"{path} differs from tools/schemas.lock"


# --- make schemas (tools/fetch_schemas.py) against a loopback server --------------------------


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def serving(root: Path) -> Iterator[str]:
    """``root`` over HTTP on 127.0.0.1 (a free port) until the block ends; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def run_fetch(*args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if "proxy" not in key.lower()}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return subprocess.run(
        [sys.executable, str(FETCH), "--timeout", "10", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env=env,
    )


def leftovers(folder: Path) -> list[str]:
    return sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file())


def test_make_schemas_fetches_the_real_manifest_through_a_url_map(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    url_map = [("https://raw.githubusercontent.com/", "raw/"), ("https://github.com/", "web/")]
    for entry in ENTRIES:
        source = require_schema(entry.relative)
        local = fetch_schemas.map_url(entry.url, [(old, str(mirror) + "/" + new) for old, new in url_map])
        write(Path(local), source.read_bytes())
    dest = tmp_path / "dest"
    with serving(mirror) as base:
        maps = [arg for old, new in url_map for arg in ("--url-map", f"{old}={base}{new}")]
        first = run_fetch("--dest", str(dest), *maps)
        assert first.returncode == 0, first.stdout + first.stderr
        assert first.stdout.count("downloaded ") == len(ENTRIES)
        for entry in ENTRIES:
            assert sha256((dest / entry.relative).read_bytes()) == entry.sha256
        assert leftovers(dest) == sorted(entry.relative for entry in ENTRIES)
        # A second run finds every file in place and downloads nothing.
        second = run_fetch("--dest", str(dest), *maps)
        assert second.returncode == 0, second.stdout + second.stderr
        assert second.stdout.count("kept ") == len(ENTRIES) and "downloaded" not in second.stdout
    # What was fetched is what the loader reads from the cache.
    dirs = schema_dirs({}, tmp_path / "no-shared", dest)
    assert schema_path(COMPOSE, dirs) == dest / COMPOSE


def test_a_wrong_sha256_fails_clearly_and_leaves_no_file(tmp_path: Path) -> None:
    root = tmp_path / "www"
    good, bad = b"kind: CustomResourceDefinition\n", b"kind: Tampered\n"
    write(root / "good.yaml", good)
    write(root / "bad.yaml", bad)
    dest = tmp_path / "dest"
    write(dest / "crds" / "stale.yaml", b"an older release\n")  # present but not the pinned file
    with serving(root) as base:
        manifest = tmp_path / "schemas.lock"
        manifest.write_text(
            "# test manifest\n\n"
            f"crds/good.yaml {sha256(good)} {base}good.yaml\n"
            f"crds/bad.yaml {sha256(good)} {base}bad.yaml\n"
            f"crds/stale.yaml {sha256(good)} {base}good.yaml\n"
            f"crds/gone.yaml {sha256(good)} {base}gone.yaml\n"
        )
        result = run_fetch("--manifest", str(manifest), "--dest", str(dest))
    assert result.returncode == 1
    assert (
        f"crds/bad.yaml: sha256 mismatch for {base}bad.yaml: expected {sha256(good)}, got {sha256(bad)}; "
        "the file was not saved"
    ) in result.stderr
    assert f"crds/gone.yaml: download from {base}gone.yaml failed: HTTP Error 404" in result.stderr
    assert "2 of 4 file(s) failed" in result.stderr
    # Only the verified files are there: no tampered file, no partial download, the stale one replaced.
    assert leftovers(dest) == ["crds/good.yaml", "crds/stale.yaml"]
    assert (dest / "crds" / "stale.yaml").read_bytes() == good


def test_a_stale_file_whose_download_fails_is_removed(tmp_path: Path) -> None:
    root = tmp_path / "www"
    write(root / "new.yaml", b"new\n")
    dest = tmp_path / "dest"
    write(dest / "crds" / "x.yaml", b"old\n")
    with serving(root) as base:
        manifest = write(tmp_path / "schemas.lock", f"crds/x.yaml {sha256(b'other')} {base}new.yaml\n".encode())
        result = run_fetch("--manifest", str(manifest), "--dest", str(dest))
    assert result.returncode == 1 and "sha256 mismatch" in result.stderr
    assert leftovers(dest) == []


def test_an_unreachable_server_fails_within_the_timeout(tmp_path: Path) -> None:
    with serving(tmp_path) as base:
        pass  # the port is closed again: nothing listens there any more
    manifest = write(tmp_path / "schemas.lock", f"crds/x.yaml {sha256(b'x')} {base}x.yaml\n".encode())
    result = run_fetch("--manifest", str(manifest), "--dest", str(tmp_path / "dest"))
    assert result.returncode == 1 and "crds/x.yaml: download from" in result.stderr
    assert not (tmp_path / "dest" / "crds" / "x.yaml").exists()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("crds/x.yaml abc https://example.invalid/x.yaml", "is not a lowercase hex sha256"),
        (f"../x.yaml {'0' * 64} https://example.invalid/x.yaml", "must be a relative path"),
        (f"/x.yaml {'0' * 64} https://example.invalid/x.yaml", "must be a relative path"),
        (f"crds/x.yaml {'0' * 64} file:///etc/passwd", "is not an http(s) URL"),
        (f"crds/x.yaml {'0' * 64}", "expected '<relative path> <sha256> <url>'"),
    ],
)
def test_a_malformed_manifest_is_refused(tmp_path: Path, line: str, message: str) -> None:
    manifest = write(tmp_path / "schemas.lock", (line + "\n").encode())
    result = run_fetch("--manifest", str(manifest), "--dest", str(tmp_path / "dest"))
    assert result.returncode == 2
    assert f"{manifest}:1:" in result.stderr and message in result.stderr
    assert not (tmp_path / "dest").exists()


def test_the_url_map_rewrites_only_a_matching_prefix() -> None:
    url_map = [("https://raw.githubusercontent.com/", "http://127.0.0.1:1/raw/")]
    assert fetch_schemas.map_url("https://raw.githubusercontent.com/o/r/v1/a.yaml", url_map) == (
        "http://127.0.0.1:1/raw/o/r/v1/a.yaml"
    )
    assert fetch_schemas.map_url("https://github.com/o/r/raw/v1/a.yaml", url_map) == (
        "https://github.com/o/r/raw/v1/a.yaml"
    )


def test_make_schemas_runs_the_fetch_script_and_make_test_does_not() -> None:
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^schemas:\n\t\$\(PYTHON\) tools/fetch_schemas\.py$", makefile, re.MULTILINE)
    [test_line] = re.findall(r"^test:(.*)$", makefile, re.MULTILINE)
    assert "schemas" not in test_line.split()


# --- no upstream copies in the repository -----------------------------------------------------


def repository_files() -> list[Path]:
    """Tracked files, and untracked ones that are not ignored (files about to be committed)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout.decode()
    paths = {REPO / name for name in listed.split("\0") if name}
    return sorted(path for path in paths if path.is_file())


def reference_digests() -> dict[str, str]:
    """sha256 -> where the upstream file lives: every file under ../shared, else the manifest's pins."""
    digests = {entry.sha256: f"{entry.relative} (tools/schemas.lock)" for entry in ENTRIES}
    if schemas.SHARED_DIR.is_dir():
        for path in sorted(schemas.SHARED_DIR.rglob("*")):
            if path.is_file():
                digests[sha256(path.read_bytes())] = str(path)
    digests.pop(EMPTY_SHA256, None)  # an empty file is nobody's copy
    return digests


def copies(files: list[Path], digests: dict[str, str]) -> list[str]:
    """``file: upstream`` for every file whose bytes (or gunzipped bytes) are an upstream file's."""
    found = []
    for path in files:
        data = path.read_bytes()
        contents = [data]
        if path.name.endswith((".gz", ".tgz")):
            try:
                contents.append(gzip.decompress(data))
            except (OSError, EOFError):
                pass
        for content in contents:
            digest = sha256(content)
            if digest in digests:
                found.append(f"{path.relative_to(REPO) if path.is_relative_to(REPO) else path}: {digests[digest]}")
    return found


def test_copy_detection_sees_plain_and_gzipped_copies(tmp_path: Path) -> None:
    upstream = b"apiVersion: apiextensions.k8s.io/v1\n"
    digests = {sha256(upstream): "upstream.yaml"}
    plain = write(tmp_path / "a.yaml", upstream)
    zipped = write(tmp_path / "b.yaml.gz", gzip.compress(upstream))
    own = write(tmp_path / "c.yaml", b"our own\n")
    broken = write(tmp_path / "d.gz", b"not gzip")
    assert copies([plain, zipped, own, broken], digests) == [f"{plain}: upstream.yaml", f"{zipped}: upstream.yaml"]


def test_no_file_in_the_repository_is_a_copy_of_an_upstream_file() -> None:
    files = repository_files()
    assert REPO / "tools" / "schemas.lock" in files
    assert copies(files, reference_digests()) == []
