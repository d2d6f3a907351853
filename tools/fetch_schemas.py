#!/usr/bin/env python3
"""Download the schemas listed in tools/schemas.lock and check each against its pinned sha256.

Usage: python3 tools/fetch_schemas.py [--manifest FILE] [--dest DIR] [--url-map FROM=TO ...]

Each manifest line is ``<relative path> <sha256> <url>`` (blank lines and ``#`` comments are
ignored). A file already in DEST with the pinned sha256 is kept; any other is removed and
downloaded again to a temporary file beside its destination, which is moved into place only when
its sha256 matches, so a failed or tampered download never leaves a file behind. ``--url-map`` rewrites a URL prefix, for a
mirror: ``--url-map https://raw.githubusercontent.com/=https://mirror.example/gh/``.

Standard library only, so it runs before any virtualenv exists.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MANIFEST = ROOT / "tools" / "schemas.lock"
DEFAULT_DEST = ROOT / ".cache" / "schemas"
CHUNK = 1 << 16


class FetchError(Exception):
    """A manifest line that cannot be satisfied (bad line, download error, sha256 mismatch)."""


@dataclass(frozen=True)
class Entry:
    """One manifest line."""

    relative: str
    sha256: str
    url: str


def parse_manifest(text: str, source: str = "manifest") -> list[Entry]:
    """The entries of a manifest; raises :class:`FetchError` on a malformed line."""
    entries: list[Entry] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) != 3:
            raise FetchError(f"{source}:{number}: expected '<relative path> <sha256> <url>', got {raw!r}")
        relative, digest, url = fields
        path = PurePosixPath(relative)
        if path.is_absolute() or ".." in path.parts or "\\" in relative:
            raise FetchError(f"{source}:{number}: {relative!r} must be a relative path inside the schema folder")
        if not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise FetchError(f"{source}:{number}: {digest!r} is not a lowercase hex sha256")
        if not url.startswith(("https://", "http://")):
            raise FetchError(f"{source}:{number}: {url!r} is not an http(s) URL")
        entries.append(Entry(relative, digest, url))
    return entries


def map_url(url: str, url_map: list[tuple[str, str]]) -> str:
    """``url`` with the first matching prefix of ``url_map`` replaced."""
    for old, new in url_map:
        if url.startswith(old):
            return new + url[len(old) :]
    return url


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(entry: Entry, dest: Path, url_map: list[tuple[str, str]], timeout: float) -> str:
    """Make ``dest/entry.relative`` the pinned file; returns what was done ("kept" or "downloaded")."""
    target = dest / entry.relative
    if target.is_file():
        if file_sha256(target) == entry.sha256:
            return "kept"
        # Never leave a file that is not the pinned one where the tests would read it.
        target.unlink()
    url = map_url(entry.url, url_map)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, partial_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    partial = Path(partial_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(handle, "wb") as out:
            try:
                request = urllib.request.Request(url, headers={"User-Agent": "pulumi-vllm-fetch-schemas"})
                with urllib.request.urlopen(request, timeout=timeout) as response:
                    for block in iter(lambda: response.read(CHUNK), b""):
                        digest.update(block)
                        out.write(block)
            except (urllib.error.URLError, OSError) as error:
                raise FetchError(f"{entry.relative}: download from {url} failed: {error}") from error
        actual = digest.hexdigest()
        if actual != entry.sha256:
            raise FetchError(
                f"{entry.relative}: sha256 mismatch for {url}: expected {entry.sha256}, got {actual}; "
                "the file was not saved"
            )
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return "downloaded"


def _url_map_item(value: str) -> tuple[str, str]:
    old, separator, new = value.partition("=")
    if not separator or not old:
        raise argparse.ArgumentTypeError(f"expected FROM=TO, got {value!r}")
    return old, new


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST, help="manifest file (default: %(default)s)")
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST, help="folder to fill (default: %(default)s)")
    parser.add_argument(
        "--url-map", type=_url_map_item, action="append", default=[], metavar="FROM=TO", help="rewrite a URL prefix"
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per download (default: %(default)s)")
    args = parser.parse_args(argv)

    try:
        entries = parse_manifest(args.manifest.read_text(), str(args.manifest))
    except (OSError, FetchError) as error:
        print(f"fetch_schemas: {error}", file=sys.stderr)
        return 2
    failures = 0
    for entry in entries:
        try:
            done = fetch(entry, args.dest, args.url_map, args.timeout)
        except FetchError as error:
            failures += 1
            print(f"fetch_schemas: error: {error}", file=sys.stderr)
            continue
        print(f"{done:>10} {entry.relative}")
    if failures:
        print(f"fetch_schemas: {failures} of {len(entries)} file(s) failed", file=sys.stderr)
        return 1
    print(f"fetch_schemas: {len(entries)} file(s) in {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
