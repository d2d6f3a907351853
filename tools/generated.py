"""What the data generators under tools/ share: write a generated file, or check that it is current."""

from __future__ import annotations

import sys
from pathlib import Path


def write_or_check(out: Path, text: str, generator: str, make_target: str, check: bool) -> int:
    """With ``check``: 0 if ``out`` holds ``text``, else 1 with a hint naming ``make_target``. Otherwise write it."""
    if check:
        current = out.read_text(encoding="utf-8") if out.is_file() else None
        if current != text:
            print(f"{out}: not what {generator} writes now; run make {make_target}", file=sys.stderr)
            return 1
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return 0
