"""Real vLLM runs what the safety sections render: offline from a hub cache, as a non-root user, under load.

One stack with ``warmup``, ``security.runAsNonRoot`` and ``loadTest`` on, serving the tiny model by a
repository id. Its Deployment's container is replayed as written (see ``kubelet.py``) as uid 1000 with
no root privileges (``setpriv``), on a cache folder laid out as the Hugging Face hub cache by
huggingface_hub's own cache functions, and with nothing but the rendered environment telling vLLM to stay
offline. The load-test Job's ``vllm bench serve`` then runs against it and writes its JSON. One vLLM start
for all three (about 40 s on 2 cores).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pulumi_vllm.cli.render import RenderedStack, render_config

from .conftest import API_KEY
from .kubelet import LocalContainer, local_container, workload_manifest
from .server import VllmServer, free_port, local_command, start_vllm_server

pytestmark = pytest.mark.realvllm

REPO_ID = "pulumi-vllm-tests/tiny-llama"
"""The repository id the tiny model is cached and served under (nothing is downloaded)."""
UID = 1000
AS_USER = ["setpriv", f"--reuid={UID}", f"--regid={UID}", "--clear-groups", "--"]
"""Run a command as uid/gid 1000, as the kubelet does for ``runAsUser``/``runAsGroup``."""


def hub_cache(model_dir: Path, hub: Path, repo_id: str) -> str:
    """Lay ``model_dir``'s files out as the hub cache of ``repo_id`` at ``main`` (blobs, snapshot, ref).

    Uses huggingface_hub's own layout functions (folder name, blob symlinks, the ref file), as a download
    would leave it; returns the commit id.
    """
    from huggingface_hub.file_download import (
        _cache_commit_hash_for_specific_revision,
        _create_symlink,
        repo_folder_name,
    )

    storage = hub / repo_folder_name(repo_id=repo_id, repo_type="model")
    files = sorted(path for path in model_dir.iterdir() if path.is_file())
    digests = {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in files}
    commit = hashlib.sha1("".join(f"{name}:{digest}" for name, digest in digests.items()).encode()).hexdigest()
    (storage / "snapshots" / commit).mkdir(parents=True, exist_ok=True)
    (storage / "blobs").mkdir(parents=True, exist_ok=True)
    for path in files:
        blob = storage / "blobs" / digests[path.name]
        shutil.copyfile(path, blob)
        _create_symlink(str(blob), str(storage / "snapshots" / commit / path.name), new_blob=False)
    _cache_commit_hash_for_specific_revision(str(storage), "main", commit)
    return commit


def safety_values() -> dict[str, Any]:
    """The tiny model served by repository id (found in the hub cache, not by a path) with the safety sections on."""
    return {
        "name": "tiny",
        "model": {"id": REPO_ID},
        "engine": {"dtype": "float32", "maxModelLen": 512, "extraArgs": ["--enforce-eager"]},
        "apiKey": API_KEY,
        "cache": {"accessMode": "ReadWriteMany"},
        "warmup": {"enabled": True},
        "security": {"runAsNonRoot": True, "runAsUser": UID, "runAsGroup": UID},
        "loadTest": {"enabled": True, "requestRate": "inf", "inputLen": 32, "outputLen": 8, "numPrompts": 4},
    }


@pytest.fixture(scope="module")
def rendered_safety() -> RenderedStack:
    return render_config(safety_values())


@pytest.fixture(scope="module")
def volumes_root() -> Iterator[Path]:
    """A folder uid 1000 can reach (pytest's own temporary folders are root's only)."""
    root = Path(tempfile.mkdtemp(prefix="vllm-nonroot-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def user_python(volumes_root: Path) -> str:
    """An interpreter uid 1000 may run, with this environment's packages.

    This machine's interpreter lives under /root (mode 700); an image's is world-executable. The system
    CPython of the same minor release is given this virtualenv's site-packages, as a virtualenv would be.
    """
    import sys
    import sysconfig

    system = Path("/usr/bin") / f"python{sys.version_info.major}.{sys.version_info.minor}"
    if not system.exists():
        pytest.skip(f"no world-executable {system} to run as uid {UID}")
    env = volumes_root / "user-venv"
    (env / "bin").mkdir(parents=True)
    (env / "bin" / "python").symlink_to(system)
    (env / "pyvenv.cfg").write_text(f"home = {system.parent}\ninclude-system-site-packages = false\n")
    site = env / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    site.mkdir(parents=True)
    (site / "outer.pth").write_text(f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n")
    return str(env / "bin" / "python")


def as_user(argv: list[str], python: str) -> list[str]:
    """``argv`` (a :func:`local_command`) run as uid 1000 with ``python`` instead of this interpreter."""
    import sys

    return [*AS_USER, *(python if word == sys.executable else word for word in argv)]


def _own(root: Path) -> None:
    # What fsGroup does to the pod's volumes: the group (here also the user) may write them.
    for path in [root, *root.rglob("*")]:
        os.chown(path, UID, UID, follow_symlinks=False)


@pytest.fixture(scope="module")
def server_container(rendered_safety: RenderedStack, tiny_model_dir: Path, volumes_root: Path) -> LocalContainer:
    container = local_container(rendered_safety, "Deployment", volumes_root, port=free_port())
    hub_cache(tiny_model_dir, Path(container.env["HF_HOME"]) / "hub", REPO_ID)
    _own(volumes_root)
    return container


@pytest.fixture(scope="class")
def served(server_container: LocalContainer, vllm_env: dict[str, str], user_python: str,
           observe_class: Any) -> Iterator[VllmServer]:
    container = server_container
    # Only the rendered environment may say "offline"; the compile cache goes where uid 1000 may write.
    machine = {key: value for key, value in vllm_env.items() if key != "HF_HUB_OFFLINE"}
    machine["VLLM_CACHE_ROOT"] = str(container.local_path("/tmp") / "vllm")
    env = {**machine, **container.env}
    assert "HF_HUB_OFFLINE" not in os.environ, "the test must not inherit an offline setting"
    with start_vllm_server(
        as_user(local_command(container.argv), user_python), env, int(container.option("--port")),
        probe_path=container.probe_paths["startupProbe"],
    ) as server:
        observe_class(f"non-root offline vLLM answered after {server.startup_seconds:.1f} s")
        yield server
    assert server.remaining_processes() == []


def test_the_hub_cache_is_one_huggingface_hub_reads_offline(server_container: LocalContainer) -> None:
    from huggingface_hub import scan_cache_dir, snapshot_download

    hub = Path(server_container.env["HF_HOME"]) / "hub"
    (repo,) = scan_cache_dir(hub).repos
    assert repo.repo_id == REPO_ID and set(repo.refs) == {"main"}
    snapshot = snapshot_download(REPO_ID, cache_dir=hub, local_files_only=True)
    assert (Path(snapshot) / "config.json").is_file()


def test_the_rendered_server_is_non_root_and_offline(rendered_safety: RenderedStack,
                                                      server_container: LocalContainer) -> None:
    pod = workload_manifest(rendered_safety, "Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["securityContext"]["runAsUser"] == UID and container["securityContext"]["runAsNonRoot"]
    assert server_container.env["HF_HUB_OFFLINE"] == "1"
    assert server_container.env["HOME"] == str(server_container.local_path("/tmp"))
    assert server_container.argv[:3] == ["vllm", "serve", REPO_ID]


class TestNonRootOfflineServer:
    """One start of the rendered server, as uid 1000, offline, from the hub cache."""

    def test_it_runs_as_the_unprivileged_user(self, served: VllmServer) -> None:
        status = Path(f"/proc/{served.process.pid}/status").read_text()
        uids = next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1:]
        assert uids == [str(UID)] * 4
        assert "CapEff:\t0000000000000000" in status

    def test_it_answers_by_the_repository_id(self, served: VllmServer) -> None:
        auth = {"Authorization": f"Bearer {API_KEY}"}
        models = served.request("/v1/models", headers=auth)
        assert models.status == 200
        assert [model["id"] for model in models.json()["data"]] == [REPO_ID]
        body = {"model": REPO_ID, "prompt": "The capital of France is", "max_tokens": 4}
        completion = served.request("/v1/completions", method="POST", body=body, headers=auth)
        assert completion.status == 200, completion.text
        assert completion.json()["usage"]["completion_tokens"] > 0

    def test_the_load_test_job_benchmarks_it_and_writes_its_json(
        self, served: VllmServer, rendered_safety: RenderedStack, volumes_root: Path, user_python: str, observe: Any
    ) -> None:
        # The load-test Job alone (the render also holds the pre-download Job), on the server's volumes.
        only = dataclasses.replace(
            rendered_safety,
            documents=[(name, doc) for name, doc in rendered_safety.documents
                       if not (isinstance(doc, dict) and doc.get("kind") == "Job" and "warmup" in doc["metadata"]["name"])],
        )
        job = local_container(only, "Job", volumes_root)
        shell, flag, script = job.argv
        assert (shell, flag) == ("/bin/sh", "-c")
        first, bench, cat = script.splitlines()
        assert first == "set -e"
        argv = shlex.split(bench)
        assert argv[:3] == ["vllm", "bench", "serve"]
        result = argv[argv.index("--result-dir") + 1] + "/" + argv[argv.index("--result-filename") + 1]
        assert shlex.split(cat) == ["cat", result]
        # As the kubelet would: paths under the mounts moved to their folders; the Service's URL is the server's.
        argv = [str(job.local_path(word)) if word.startswith("/") else word for word in argv]
        argv[argv.index("--base-url") + 1] = served.base_url
        _own(volumes_root)
        started = time.monotonic()
        completed = subprocess.run(
            as_user(local_command(argv), user_python),
            env={**os.environ, "VLLM_NO_USAGE_STATS": "1", **job.env},
            capture_output=True, text=True, timeout=300, check=False,
        )
        observe(f"rendered load test (4 prompts) took {time.monotonic() - started:.1f} s")
        assert completed.returncode == 0, (completed.stdout + completed.stderr)[-4000:]
        assert job.env["HF_HUB_OFFLINE"] == "1" and job.env["OPENAI_API_KEY"] == API_KEY
        payload = json.loads(job.local_path(result).read_text())
        assert payload["completed"] == 4 and payload["failed"] == 0
        assert payload["total_output_tokens"] > 0
