"""Shared fixtures: Pulumi mocks installed per test, and the repository root."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

import pulumi
import pytest

REPO = Path(__file__).resolve().parents[1]

# No test reads a model from the real Hugging Face Hub: sizing a model outside the catalog stays off the
# network (and so do the CLI subprocesses, which inherit it). tests/test_models_hub.py lifts it per test to
# talk to its loopback Hub.
os.environ["PULUMI_VLLM_OFFLINE"] = "1"


class RecordingMocks(pulumi.runtime.Mocks):
    """Mocks that record every registration and answer like the provider would (names, ids)."""

    def __init__(self) -> None:
        self.resources: list[pulumi.runtime.MockResourceArgs] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict]:
        self.resources.append(args)
        state = dict(args.inputs)
        if args.typ.startswith("kubernetes:"):
            metadata = dict(state.get("metadata") or {})
            metadata.setdefault("name", f"{args.name}-{hashlib.sha256(args.name.encode()).hexdigest()[:8]}")
            state["metadata"] = metadata
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:
        return {}

    def of_type(self, type_: str) -> list[pulumi.runtime.MockResourceArgs]:
        """Registrations of one resource type."""
        return [item for item in self.resources if item.typ == type_]

    def one(self, type_: str) -> Any:
        """The single registration of ``type_`` (fails if there are none or several)."""
        found = self.of_type(type_)
        assert len(found) == 1, f"expected one {type_}, got {[item.name for item in found]}"
        return found[0]


@pytest.fixture
def mocks() -> RecordingMocks:
    """Fresh Pulumi mocks for one test (preview=False so applies run and are checked)."""
    recorder = RecordingMocks()
    pulumi.runtime.set_mocks(recorder, project="pulumi-vllm", stack="test", preview=False)
    return recorder


@pytest.fixture
def repo() -> Path:
    """The repository root (holds Pulumi.yaml and the example stacks)."""
    return REPO


_OBSERVED: list[str] = []
"""Figures tests observed, gathered where the run is reported (the main process under ``-n``)."""
_PENDING: list[str] = []
"""Figures observed in this process and not yet attached to a test report."""


@pytest.fixture
def observe() -> Any:
    """Record a figure a test measured (start-up times, run times); printed at the end of the run."""

    def record(line: str) -> None:
        _PENDING.append(line)

    return record


@pytest.fixture(scope="class")
def observe_class() -> Any:
    """:func:`observe` for class-scoped fixtures."""
    return _PENDING.append


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Attach the figures observed so far to the test's teardown report: reports are what pytest-xdist's
    workers send to the main process, so the figures reach the end-of-run summary with or without ``-n``."""
    report = yield
    if report.when == "teardown" and _PENDING:
        report.user_properties.append(("observed", list(_PENDING)))
        _PENDING.clear()
    return report


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Gather the observed figures from every report (the main process's view of every worker)."""
    for name, value in report.user_properties:
        if name == "observed":
            _OBSERVED.extend(value)


_REAL_PROCESS_MARKERS = ("realvllm", "ray")
"""Tests that start real vLLM or Ray processes (tens of seconds each)."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the tests that start real vLLM or Ray processes first (in their collected order).

    ``make test`` runs ``pytest -n 2 --dist loadfile --no-loadscope-reorder``: files are handed out in this
    order, so the few long files spread over both workers and the many short ones fill in behind them,
    instead of the long ones ending the run on one worker.
    """
    items.sort(key=lambda item: not any(item.get_closest_marker(name) for name in _REAL_PROCESS_MARKERS))


def _bind_vllm_to_this_workers_core() -> None:
    """Under pytest-xdist, give each worker's vLLM servers a CPU core of their own.

    vLLM's CPU backend binds its OpenMP threads itself (``VLLM_CPU_OMP_THREADS_BIND=auto``), and on a
    two-core machine every server picks the same core: two workers' servers would then share one core
    while the other idles. Worker N's servers (which inherit this environment) are bound to core N modulo
    the cores this process may use. A value the user set wins; without ``-n`` nothing changes.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw") or "VLLM_CPU_OMP_THREADS_BIND" in os.environ:
        return
    cores = sorted(os.sched_getaffinity(0))
    os.environ["VLLM_CPU_OMP_THREADS_BIND"] = str(cores[int(worker[2:]) % len(cores)])


_bind_vllm_to_this_workers_core()


# How tests/schemas.py begins the reason of a skip (or, under $CI, a failure) for a missing schema file.
SCHEMA_MISSING_PREFIX = "schema missing:"
# Anchored: a failure whose message merely quotes such a reason (say, a child pytest's output) is not one.
_SCHEMA_MISSING = re.compile(r"(?:Skipped: )?" + re.escape(SCHEMA_MISSING_PREFIX) + r" (\S+)")


def schema_summary(stats: dict[str, list[Any]]) -> list[str]:
    """One line per outcome (skipped, or failed/errored under $CI) of tests that lacked a schema file, else none."""
    lines = []
    for outcome, word in (("skipped", "skipped"), ("failed", "failed"), ("error", "errored")):
        tests: set[str] = set()
        missing: set[str] = set()
        for report in stats.get(outcome, []):
            longrepr = getattr(report, "longrepr", None)
            text = str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
            found = _SCHEMA_MISSING.match(text.lstrip())
            if found:
                tests.add(getattr(report, "nodeid", ""))
                missing.add(found.group(1))
        if tests:
            lines.append(
                f"schemas: {len(tests)} test(s) {word}, missing: {', '.join(sorted(missing))} "
                "(run make schemas, or set PULUMI_VLLM_SCHEMAS)"
            )
    return lines


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the figures tests observed, so CI logs carry them without -s; and any schema-less tests."""
    if _OBSERVED:
        terminalreporter.section("observed timings")
        for line in _OBSERVED:
            terminalreporter.write_line(line)
    for line in schema_summary(terminalreporter.stats):
        terminalreporter.write_line(line, yellow=True, bold=True)
