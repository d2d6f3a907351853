"""Time the policy pack over gRPC on the largest example stack, as `pulumi preview --policy-pack` drives it.

Run from the repository root:

    PYTHONPATH=components python bench/policy_roundtrip.py [--runs 20]

Prints the median (and min/max) of: starting the pack until it prints its port, and one preview's
worth of calls (Configure, Analyze for every resource, AnalyzeStack) on a running pack.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from pulumi_vllm.cli.render import render_stack
from pulumi_vllm.policy.client import PolicyPackProcess, resources_from_registrations
from pulumi_vllm.render.engine import stack_files

REPO = Path(__file__).resolve().parents[1]


def _stats(samples: list[float]) -> str:
    return f"median {statistics.median(samples) * 1000:.1f} ms (min {min(samples) * 1000:.1f}, max {max(samples) * 1000:.1f})"


def main() -> None:
    """Render every stack, pick the one with the most resources, and time the pack on it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="round trips to time (default 20)")
    parser.add_argument("--starts", type=int, default=3, help="pack start-ups to time (default 3)")
    options = parser.parse_args()

    stacks = {}
    for name in sorted(stack_files(REPO)):
        try:
            stacks[name] = render_stack(REPO, name)
        except Exception as error:  # noqa: BLE001 - report and go on with the stacks that render
            print(f"skipped stack {name}: {type(error).__name__}: {error}")
    largest = max(stacks, key=lambda name: len(stacks[name].run.registrations))
    resources = resources_from_registrations(stacks[largest].run.registrations)
    print(f"largest stack: {largest} ({len(resources)} resources)")

    starts = []
    for _ in range(options.starts):
        began = time.perf_counter()
        with PolicyPackProcess(REPO / "policies"):
            starts.append(time.perf_counter() - began)
    print(f"pack start-up to port: {_stats(starts)} over {len(starts)} starts")

    with PolicyPackProcess(REPO / "policies") as pack:
        pack.configure(None)
        pack.analyze_all(resources)  # warm-up: first calls import the rules and the catalog
        trips = []
        for _ in range(options.runs):
            began = time.perf_counter()
            pack.configure(None)
            violations = pack.analyze_all(resources)
            trips.append(time.perf_counter() - began)
    print(f"Configure + {len(resources)} x Analyze + AnalyzeStack: {_stats(trips)} over {len(trips)} runs "
          f"({len(violations)} violations)")


if __name__ == "__main__":
    main()
