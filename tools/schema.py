"""Write the component package's schema, as the provider serves it over gRPC, to ``plugin/schema.json``.

Usage: .venv/bin/python tools/schema.py [--out FILE] [--check]

The provider is started as the Pulumi engine starts a source-based plugin (``python plugin/ <engine>``)
and asked for its schema (``GetSchema``), inferred from the components' type hints. The snapshot is
what reviews compare (``pulumi-vllm diff`` reports a changed input or output as an API change) and what
``pulumi package add ./plugin/schema.json`` can generate an SDK from. ``--check`` writes nothing and
exits 1 when FILE differs (for CI).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared helper beside this script
from generated import write_or_check

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "components"))
DEFAULT_OUT = ROOT / "plugin" / "schema.json"

from pulumi_vllm.provider.client import provider_schema


def render(schema: dict[str, object]) -> str:
    """The snapshot's text: sorted keys, two-space indent, a final newline."""
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default: {DEFAULT_OUT.relative_to(ROOT)}")
    parser.add_argument("--check", action="store_true", help="exit 1 if --out differs, writing nothing")
    args = parser.parse_args(argv)
    return write_or_check(args.out, render(provider_schema(ROOT / "plugin")), Path(__file__).name, "schema", args.check)


if __name__ == "__main__":
    raise SystemExit(main())
