"""The published package: the wheel and sdist build, and the wheel works installed (not editable) on its own.

The wheel is built from a copy of the project files (``python -m build --no-isolation``: the build
backend comes from this virtualenv, nothing is downloaded), installed with ``--no-deps`` into a fresh
virtualenv whose dependencies are this virtualenv's site-packages (a ``.pth`` line, appended after the
fresh site-packages, so the installed wheel is what imports), and then ``pulumi-vllm --version``,
``size`` and ``render`` run from it on a copy of an example stack.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import time
import venv
import zipfile
from pathlib import Path
from typing import Any

import pytest

import pulumi_vllm

REPO = Path(__file__).resolve().parents[1]
PACKAGE_DATA = (
    "pulumi_vllm/py.typed",
    "pulumi_vllm/engine/serve_flags.json",
    "pulumi_vllm/config/kubernetes_enums.json",
    "pulumi_vllm/models/catalog.json",
    "pulumi_vllm/provider/host.py",
    "pulumi_vllm/kubernetes/serving_args.py",
)

pytestmark = pytest.mark.package


def _run(command: list[str], cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, f"{command} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from conftest import _OBSERVED

    root = tmp_path_factory.mktemp("package")
    source = root / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(
        REPO / "components", source / "components", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    started = time.monotonic()
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(root / "dist"), str(source)])
    built_in = time.monotonic() - started
    wheel = next((root / "dist").glob("*.whl"))
    sdist = next((root / "dist").glob("*.tar.gz"))

    started = time.monotonic()
    env_dir = root / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    purelib = Path(
        _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    )
    # The dependencies (pulumi, pulumi-kubernetes, pydantic, ...) from this virtualenv, after the wheel.
    (purelib / "zz_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps", str(wheel)])
    installed_in = time.monotonic() - started
    _OBSERVED.append(f"wheel: built (wheel and sdist) in {built_in:.1f}s, installed in a fresh virtualenv in {installed_in:.1f}s")
    return {"root": root, "wheel": wheel, "sdist": sdist, "bin": env_dir / "bin", "purelib": purelib}


def test_the_wheel_and_sdist_hold_the_package_data(built: dict[str, Any]) -> None:
    names = set(zipfile.ZipFile(built["wheel"]).namelist())
    assert [item for item in PACKAGE_DATA if item not in names] == []
    assert built["wheel"].name.startswith(f"pulumi_vllm-{pulumi_vllm.__version__}-")
    with tarfile.open(built["sdist"]) as sdist:
        members = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    assert [item for item in PACKAGE_DATA if f"components/{item}" not in members] == []


def test_the_installed_wheel_is_what_imports(built: dict[str, Any]) -> None:
    result = _run([str(built["bin"] / "python"), "-c", "import pulumi_vllm; print(pulumi_vllm.__file__)"])
    assert Path(result.stdout.strip()).is_relative_to(built["purelib"])


def test_version_comes_from_the_one_source(built: dict[str, Any]) -> None:
    result = _run([str(built["bin"] / "pulumi-vllm"), "--version"])
    assert result.stdout.split()[:2] == ["pulumi-vllm", pulumi_vllm.__version__]


def test_size_runs_from_the_wheel(built: dict[str, Any]) -> None:
    result = _run(
        [str(built["bin"] / "pulumi-vllm"), "size", "--model", "Qwen/Qwen2.5-7B-Instruct", "--gpu", "L40S", "--json"]
    )
    report = json.loads(result.stdout)
    assert report, "size printed an empty report"


def test_render_runs_from_the_wheel_on_a_copy_of_the_dev_stack(built: dict[str, Any]) -> None:
    project = built["root"] / "project"
    project.mkdir()
    for name in ("Pulumi.yaml", "__main__.py", "Pulumi.dev.yaml"):
        shutil.copy2(REPO / name, project / name)
    out = built["root"] / "rendered"
    result = _run([str(built["bin"] / "pulumi-vllm"), "render", "--stack", "dev", "--out", str(out)], cwd=project)
    assert "rendered stack 'dev'" in result.stdout
    deployments = [path for path in out.rglob("*.yaml") if "kind: Deployment" in path.read_text()]
    assert deployments and "meta-llama/Llama-3.1-8B-Instruct" in deployments[0].read_text()
