"""Write the quantization methods the installed vLLM release accepts, read from vLLM itself.

Usage: .venv/bin/python tools/vllm_quantization.py [--out FILE] [--check]

``vllm serve --quantization`` takes any string; vLLM refuses it later, in
``ModelConfig._verify_quantization`` (vllm/config/model.py), unless it is one of
``vllm.model_executor.layers.quantization.QUANTIZATION_METHODS`` ("Unknown quantization method: X.
Must be one of [...]"), and refuses the ones in ``DEPRECATED_QUANTIZATION_METHODS`` unless
``--allow-deprecated-quantization`` is given. Both lists, in vLLM's order, are written to
``components/pulumi_vllm/engine/quantization_methods.json`` with the release they come from, so the
stack config checks ``engine.quantization`` without vLLM installed.

``--check`` writes nothing and exits 1 when FILE differs from what would be written (for CI).
Needs vLLM installed (``make install-test``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared helper beside this script
from generated import write_or_check
from vllm_flags import installed_vllm_version

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "components" / "pulumi_vllm" / "engine" / "quantization_methods.json"


def quantization_data() -> dict[str, object]:
    """The release, its accepted quantization methods and the deprecated ones, as vLLM lists them."""
    from vllm.model_executor.layers import quantization

    return {
        "about": "Written by tools/vllm_quantization.py from vllm.model_executor.layers.quantization "
        "(QUANTIZATION_METHODS, DEPRECATED_QUANTIZATION_METHODS); do not edit.",
        "vllm_version": installed_vllm_version(),
        "methods": list(quantization.QUANTIZATION_METHODS),
        "deprecated": list(quantization.DEPRECATED_QUANTIZATION_METHODS),
    }


def render(data: dict[str, object]) -> str:
    """The file's text: one key a line, the lists on one line each."""
    lines = ",\n".join(f" {json.dumps(key)}: {json.dumps(value)}" for key, value in data.items())
    return "{\n" + lines + "\n}\n"


def main(argv: list[str] | None = None) -> int:
    """Write (or with ``--check`` compare) the data file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    return write_or_check(args.out, render(quantization_data()), Path(__file__).name, "vllm-quantization", args.check)


if __name__ == "__main__":
    raise SystemExit(main())
