"""Offline generation through :func:`pulumi_vllm.engine.offline.generate`, run as a script in its own process.

vLLM starts its engine workers with the ``spawn`` method, which re-imports the main module in
every worker; ``LLM.generate`` therefore only works from a script whose work sits under
``if __name__ == "__main__":``. :func:`run_offline_generate` runs this file that way and returns
its results.

As a script it reads one JSON object from stdin::

    {"engine": {<the fields of pulumi_vllm.engine.argv.EngineArgs>}, "prompts": ["..."],
     "sampling": {"temperature": 0.8, "top_p": 0.95, "max_tokens": 16}}

and prints one JSON object as its last stdout line: ``{"texts": ["...", ...]}``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pulumi_vllm.engine.argv import EngineArgs

RESULT_PREFIX = "OFFLINE_GENERATE_RESULT "
"""Marks the result line among whatever vLLM prints to stdout."""


def _package_root() -> str:
    """The folder holding the ``pulumi_vllm`` package, so the script imports the same code."""
    import pulumi_vllm

    return str(Path(pulumi_vllm.__file__).resolve().parents[1])


def run_offline_generate(
    engine: EngineArgs,
    prompts: Sequence[str],
    *,
    sampling: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 300.0,
) -> list[str]:
    """Call ``pulumi_vllm.engine.offline.generate(engine, prompts, **sampling)`` in a separate Python process.

    Returns:
        The generated text of each prompt.

    Raises:
        RuntimeError: the script failed; the message carries its output.
    """
    request = {
        "engine": {**dataclasses.asdict(engine), "extra_args": list(engine.extra_args)},
        "prompts": list(prompts),
        "sampling": dict(sampling or {}),
    }
    python_path = os.pathsep.join(filter(None, [_package_root(), os.environ.get("PYTHONPATH")]))
    completed = subprocess.run(
        [sys.executable, str(Path(__file__).resolve())],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {}), "PYTHONPATH": python_path},
        timeout=timeout,
        check=False,
    )
    results = [line[len(RESULT_PREFIX) :] for line in completed.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if completed.returncode != 0 or len(results) != 1:
        raise RuntimeError(
            f"offline generation exited with {completed.returncode};"
            f" stdout:\n{completed.stdout[-3000:]}\nstderr:\n{completed.stderr[-3000:]}"
        )
    texts: list[str] = json.loads(results[0])["texts"]
    return texts


def main() -> None:
    """Read the request from stdin, generate, print the result line."""
    from pulumi_vllm.engine.offline import generate

    request = json.loads(sys.stdin.read())
    engine = EngineArgs(**{**request["engine"], "extra_args": tuple(request["engine"]["extra_args"])})
    texts = generate(engine, request["prompts"], **request["sampling"])
    print(RESULT_PREFIX + json.dumps({"texts": texts}), flush=True)


if __name__ == "__main__":
    main()
