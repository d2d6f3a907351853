"""The serving performance model vs. published vLLM measurements.

Run: ``PYTHONPATH=components python bench/performance_bench.py``. Prints, per measurement of
bench/performance_references.py, the predicted and measured output tokens/s, TTFT and ITL with the relative
errors; then the median and worst error of each quantity per GPU type and per model family, split into fitted
and held-out rows, and over the held-out rows whose source has no fitted row ("held-out by source").
Rows measured at a fixed ``--request-rate`` (``Measurement.request_rate``) are predicted in rate mode (a Poisson
arrival rate instead of a closed loop; a finite run where the row gives its request count) and summarised apart,
as "rate mode", so the closed-loop figures stay comparable with earlier runs. Rows measured on vLLM's V0 engine
(``Measurement.v0_engine``) are outside the model's domain: printed, summarised apart as "V0 engine", in no other
split and never fitted. The split itself is the rule of ``performance_references.split_rule``. Every row runs at vLLM's default
``max_num_batched_tokens`` for its GPU and entry point (:func:`engine_budget`), as no source states one.
``--json`` prints the same as JSON; ``--markdown`` the table of docs/capacity.md;
``--fit`` searches the efficiency constants on the fitted rows only (held-out rows never enter the fit) and
prints them for capacity/gpu_performance.json. ``--oracle`` is a bound, not a prediction: each publisher's fixed
TTFT part and prefill efficiency fitted on its own held-out rows, to tell a miss a host's figures could explain from
one in the model's structure.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from performance_references import CLEAN_TEST, REFERENCES, Measurement

from pulumi_vllm.capacity.measured_run import MeasuredRun
from pulumi_vllm.capacity.performance import (
    Constants,
    ServingLayout,
    Workload,
    fitted_constants,
    predict,
)
from pulumi_vllm.models.facts import ModelFacts

QUANTITIES = ("throughput", "ttft", "itl")


@dataclass(frozen=True)
class Row:
    """One measurement with its prediction and the relative errors (prediction / measured - 1)."""

    key: str
    gpu: str
    family: str
    held_out: bool
    source: str
    measured: dict[str, float | None]
    predicted: dict[str, float]
    error: dict[str, float | None]
    mode: str = "closed"
    """``closed`` (a closed loop or an offline batch), ``rate`` (a Poisson request rate) or ``v0`` (measured on
    vLLM's V0 engine, outside the model's domain: reported apart, never fitted)."""
    found_after_fit: int = 0
    """The clean test the row's source was found for (``Measurement.found_after_fit``)."""
    burst: bool = False
    """Every request sent at once (:func:`is_burst`)."""


def _error(predicted: float, measured: float | None) -> float | None:
    return None if measured is None or not math.isfinite(predicted) else predicted / measured - 1


def _run(row: Measurement) -> MeasuredRun:
    return MeasuredRun.from_fields(asdict(row))


def engine_budget(row: Measurement) -> int:
    """The ``max_num_batched_tokens`` the row's engine ran with (``MeasuredRun.engine_budget``)."""
    return _run(row).engine_budget()


def kv_cache_tokens(row: Measurement, facts: ModelFacts) -> int | None:
    """The KV-cache tokens the row's engine holds (``MeasuredRun.kv_cache_tokens``)."""
    return _run(row).kv_cache_tokens(facts)


def is_burst(row: Measurement) -> bool:
    """All of the run's requests sent at once: a known request count no larger than the concurrency, no rate."""
    return _run(row).is_burst


def setting(row: Measurement) -> tuple[ModelFacts, ServingLayout, Workload]:
    """The model, layout and workload of one measurement, as the performance model sees them."""
    return _run(row).setting()


def evaluate(row: Measurement, constants: Constants | None = None) -> Row:
    """Predict one measurement's workload on its layout."""
    facts, layout, workload = setting(row)
    prediction = predict(facts, layout, workload, constants)
    statistic = "p50"
    ttft = getattr(prediction.ttft_ms, statistic)
    itl = getattr(prediction.itl_ms, statistic)
    predicted = {"throughput": prediction.output_tokens_per_s, "ttft": ttft, "itl": itl}
    measured = {"throughput": row.output_tokens_per_s, "ttft": row.ttft_ms, "itl": row.itl_ms}
    mode = "v0" if row.v0_engine else "closed" if row.request_rate is None else "rate"
    return Row(row.key, row.gpu, row.family, row.held_out, row.source, measured, predicted,
               {quantity: _error(predicted[quantity], measured[quantity]) for quantity in QUANTITIES}, mode,
               row.found_after_fit, is_burst(row))


def evaluate_all(constants: Constants | None = None) -> list[Row]:
    """Every reference, evaluated."""
    return [evaluate(row, constants) for row in REFERENCES]


def calibration_runs() -> dict[str, Measurement]:
    """Per publisher, the run a user measures first on a new deployment: a closed loop at the lowest concurrency
    with a published TTFT (a burst or a rate run only where the publisher has no loop), then the shortest prompt,
    then the key. V0 rows are left out."""
    runs: dict[str, Measurement] = {}
    for row in sorted(REFERENCES, key=lambda row: (is_burst(row) or row.request_rate is not None, row.concurrency,
                                                   row.input_tokens, row.key)):
        if row.ttft_ms is not None and not row.v0_engine:
            runs.setdefault(publisher(row.source), row)
    return runs


def evaluate_calibrated(constants: Constants | None = None) -> list[Row]:
    """Every reference but the calibration runs, predicted with its publisher's request overhead calibrated on
    that publisher's calibration run (:func:`calibration_runs`, ``calibrate_request_overhead``), as a user who
    measured one run on their host predicts the others; publishers without one keep the stored overhead."""
    runs = calibration_runs()
    calibrated: dict[str, Constants] = {}
    for name, run in runs.items():
        calibrated[name] = _run(run).calibrate(constants)
    chosen = {run.key for run in runs.values()}
    return [evaluate(row, calibrated.get(publisher(row.source), constants)) for row in REFERENCES
            if row.key not in chosen]


SPLITS = ("fitted", "held-out", "held-out before", "held-out by source", "first clean test, held out",
          "first clean test, held out: loops", "first clean test, held out: bursts", "second clean test, held out",
          "third clean test, held out", "third clean test, held out: rate", "fourth clean test, held out",
          "fifth clean test, held out", "found after fit",
          "found after fit: loops", "found after fit: bursts", "found after fit: rate", "rate mode", "V0 engine")
"""``held-out by source``: the held-out rows whose source has no fitted row (new publishers and harnesses), but
those of a clean test, which have their own lines;
``held-out before``: the held-out rows of no clean test (the set the targets were first judged on);
``first clean test, held out``: the held-out half of the first clean test's rows (rule 7 of
``performance_references``), then apart: its closed loops (``loops``) and its bursts (every request sent at once,
``bursts``);
``found after fit``: the (held-out) closed-loop and burst rows of the latest clean test (``CLEAN_TEST``: sources
read only after the model was last changed and committed), then its loops and bursts apart;
``second clean test, held out``: the held-out half of the second clean test's closed loops (rule 7);
``third clean test, held out``: the third clean test's closed loops (rule 7 holds them out: their sources have one
row each), and apart its rate runs (``rate``, never fitted);
``fourth clean test, held out``: the fourth clean test's closed loops (rule 7 holds them out: their sources have
one row each); ``fifth clean test, held out``: the held-out half of the fifth clean test's rows (rule 7);
``found after fit: rate``: the latest clean test's rows run at a request rate;
``rate mode``: the (held-out) rows run at a request rate, which the others leave out; ``V0 engine``: rows
measured on vLLM's V0 engine, outside the model's domain, in no other split."""


_CLEAN_TESTS = {"first clean test, held out": 1, "second clean test, held out": 2, "third clean test, held out": 3,
                "fourth clean test, held out": 4, "fifth clean test, held out": 5}
"""The earlier clean tests' lines (their held-out rows) by ``found_after_fit``; "found after fit" is the latest's."""


def _split_of(row: Row, fitted_sources: set[str], split: str) -> bool:
    if split == "V0 engine":
        return row.mode == "v0"
    if split == "rate mode":
        return row.mode == "rate"
    group, _, kind = split.partition(": ")
    if group in _CLEAN_TESTS or group == "found after fit":
        number = _CLEAN_TESTS.get(group, CLEAN_TEST)
        if kind == "rate":
            return row.mode == "rate" and row.found_after_fit == number
        chosen = row.found_after_fit == number and (row.held_out or group == "found after fit")
        return row.mode == "closed" and chosen and (not kind or (kind == "bursts") == row.burst)
    if row.mode != "closed":
        return False
    if split == "fitted":
        return not row.held_out
    if split == "held-out":
        return row.held_out
    if split == "held-out before":
        return row.held_out and not row.found_after_fit
    return row.held_out and not row.found_after_fit and row.source not in fitted_sources


def summary(rows: list[Row], group: str) -> list[dict[str, object]]:
    """Median and worst absolute error of each quantity per ``group`` value (gpu or family): fitted, held out,
    and held out from sources with no fitted row, over the closed-loop rows; then the rate rows ("rate mode")."""
    out: list[dict[str, object]] = []
    fitted_sources = {row.source for row in rows if not row.held_out and row.mode != "v0"}
    keys = sorted({getattr(row, group) for row in rows}) + ["all"]
    for key in keys:
        for split in SPLITS:
            chosen = [row for row in rows
                      if (key == "all" or getattr(row, group) == key) and _split_of(row, fitted_sources, split)]
            if not chosen or (split not in ("fitted", "held-out", "held-out before", "rate mode", "V0 engine")
                              and key != "all"):
                continue
            entry: dict[str, object] = {group: key, "split": split, "n": len(chosen)}
            for quantity in QUANTITIES:
                errors = [abs(e) for row in chosen if (e := row.error[quantity]) is not None]
                entry[quantity] = (
                    {"median": statistics.median(errors), "worst": max(errors), "n": len(errors)} if errors else None
                )
            out.append(entry)
    return out


def publisher(source: str) -> str:
    """Who published a row: the GitHub owner, or the site's host (the pages of one lab are one harness)."""
    parts = source.split("/")
    host = parts[2] if len(parts) > 2 else source
    if host == "github.com" and len(parts) > 3:
        return f"github.com/{parts[3]}"
    return host


def _fitted_by_publisher() -> dict[str, list[Measurement]]:
    grouped: dict[str, list[Measurement]] = {}
    for row in REFERENCES:
        if not (row.held_out or row.v0_engine or row.request_rate is not None):
            grouped.setdefault(publisher(row.source), []).append(row)
    return grouped


def _publisher_loss(rows: list[Measurement], constants: Constants) -> float:
    errors = []
    for row in rows:
        result = evaluate(row, constants)
        for quantity in QUANTITIES:
            measured, predicted = result.measured[quantity], result.predicted[quantity]
            if measured is not None and predicted > 0 and math.isfinite(predicted):
                errors.append(abs(math.log(predicted / measured)))
    return statistics.mean(errors) + statistics.median(errors)


def _loss(constants: Constants, overheads: dict[str, float] | None = None) -> float:
    """Over the fitted rows and every quantity they publish: the mean and the median of the absolute log errors
    of each publisher's rows, averaged over the publishers, so that one lab's harness with many pages does not
    outweigh the others. ``overheads``: each publisher's own ``request_overhead_ms`` (its harness and host), in
    place of the constants' one."""
    losses = []
    for name, rows in _fitted_by_publisher().items():
        own = constants if overheads is None else replace(constants, request_overhead_ms=overheads[name])
        losses.append(_publisher_loss(rows, own))
    return statistics.mean(losses)


def publisher_overheads(constants: Constants) -> dict[str, float]:
    """Each fitted publisher's ``request_overhead_ms``: the value (0 to 80 ms) that fits its fitted rows best with
    the other constants held. The fixed part of a TTFT is the harness's and the host's (HTTP client, chat template,
    proxy, CPU), not the GPU's, and differs between publishers by several times."""
    found: dict[str, float] = {}
    grouped = _fitted_by_publisher()
    for name, rows in grouped.items():
        if not any(row.ttft_ms is not None for row in rows):
            continue

        def loss(value: float, rows: list[Measurement] = rows) -> float:
            return _publisher_loss(rows, replace(constants, request_overhead_ms=value))

        best = min((float(value) for value in range(0, 81, 4)), key=loss)
        for step in (2.0, 1.0, 0.5, 0.25):
            best = min((max(0.0, best - step), best, best + step), key=loss)
        found[name] = best
    # A publisher without a published TTFT cannot tell its overhead from the rest: it takes the others' median.
    typical = statistics.median(found.values())
    return {name: found.get(name, typical) for name in grouped}


_BOUNDS = {
    "decode_bandwidth_factor": (0.3, 1.6),
    "kv_bandwidth_factor": (0.1, 1.0),
    "step_overhead_ms": (0.0, 8.0),
    "per_sequence_overhead_us": (0.0, 200.0),
    "request_overhead_ms": (0.0, 40.0),
    "moe_bandwidth_factor": (0.05, 1.5),
    "amd_software_factor": (0.2, 1.2),
    "int4_moe_factor": (0.05, 1.2),
    "moe_half_tokens_per_expert": (0.0, 64.0),
    "moe_compute_factor": (0.05, 1.0),
    "frontend_ms_per_request": (0.0, 15.0),
}


def fit(rounds: int = 6) -> tuple[Constants, dict[str, float]]:
    """Coordinate search of the constants on the fitted rows (a few passes over each, shrinking steps), each
    publisher's request overhead fitted beside them (:func:`publisher_overheads`, refitted after every pass); the
    stored ``request_overhead_ms`` is the median of those of the publishers with a TTFT, the figure for a host not
    yet measured.
    Returns the constants and the publishers' overheads."""
    best = fitted_constants()
    overheads = publisher_overheads(best)
    best_loss = _loss(best, overheads)
    for round_ in range(rounds):
        for name, (low, high) in _BOUNDS.items():
            if name == "request_overhead_ms":
                continue
            span = (high - low) / (3 ** (round_ + 1))
            for step in (-2 * span, -span, -span / 2, span / 2, span, 2 * span):
                value = min(high, max(low, getattr(best, name) + step))
                candidate = replace(best, **{name: value})
                loss = _loss(candidate, overheads)
                if loss < best_loss:
                    best, best_loss = candidate, loss
        overheads = publisher_overheads(best)
        best_loss = _loss(best, overheads)
    # Publishers without a TTFT hold the others' median, which leaves the median as it is.
    return replace(best, request_overhead_ms=statistics.median(overheads.values())), overheads


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:+.0f}%"


def _split_label(row: Row) -> str:
    if row.mode in ("rate", "v0"):
        return row.mode
    return "held" if row.held_out else "fit"


def _table(rows: list[Row]) -> list[str]:
    header = (f"{'measurement':40} {'split':8} {'tok/s pred/meas':>20} {'err':>6} {'TTFT ms':>16} {'err':>6} "
              f"{'ITL ms':>14} {'err':>6}")
    lines = [header]

    def pair(row: Row, quantity: str) -> str:
        measured = row.measured[quantity]
        return f"{row.predicted[quantity]:.1f}/{'-' if measured is None else f'{measured:.1f}'}"

    for row in rows:
        lines.append(
            f"{row.key:40} {_split_label(row):8} {pair(row, 'throughput'):>20} "
            f"{_percent(row.error['throughput']):>6} {pair(row, 'ttft'):>16} {_percent(row.error['ttft']):>6} "
            f"{pair(row, 'itl'):>14} {_percent(row.error['itl']):>6}"
        )
    return lines


def _overall_lines(rows: list[Row]) -> list[dict[str, object]]:
    return [entry for entry in summary(rows, "gpu") if entry["gpu"] == "all"]


def _summary_lines(rows: list[Row], markdown: bool, overall_only: bool = False) -> list[str]:
    lines: list[str] = []
    for group in ("gpu",) if overall_only else ("gpu", "family"):
        if markdown:
            lines += [f"| {group} | split | n | throughput median / worst | TTFT median / worst | ITL median / worst |",
                      "| --- | --- | --- | --- | --- | --- |"]
        else:
            lines.append(f"\nper {group}: median / worst absolute error (n)")
        for entry in _overall_lines(rows) if overall_only else summary(rows, group):
            cells = []
            for quantity in QUANTITIES:
                figures = entry[quantity]
                if isinstance(figures, dict):
                    cells.append(f"{figures['median'] * 100:.0f}% / {figures['worst'] * 100:.0f}% ({figures['n']})")
                else:
                    cells.append("-")
            if markdown:
                lines.append(f"| {entry[group]} | {entry['split']} | {entry['n']} | " + " | ".join(cells) + " |")
            else:
                lines.append(f"  {entry[group]!s:14} {entry['split']:18} n={entry['n']!s:3} "
                             f"throughput {cells[0]:22} TTFT {cells[1]:22} ITL {cells[2]}")
        if markdown:
            lines.append("")
    return lines


def _finite(value: object) -> object:
    """``value`` with infinite floats (a saturated rate's TTFT) as ``None``, so the JSON stays standard."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


ORACLE_OVERHEADS_MS = (0.0, 5.0, 10.0, 20.0, 30.0, 45.0, 60.0)
ORACLE_PREFILL_FACTORS = (0.4, 0.55, 0.7, 0.85, 1.0, 1.2, 1.5)


def oracle(constants: Constants | None = None) -> tuple[dict[str, tuple[float, float, float, int]], float]:
    """Not a prediction: a bound on what per-host constants could do for TTFT. For each publisher, the
    ``request_overhead_ms`` and ``prefill_efficiency_factor`` (on a grid) that give the lowest median absolute TTFT
    error on its own held-out rows, fitted on those very rows, as no user could. Returns, per publisher, (median
    error, overhead, factor, rows), and the median over all those rows' errors. If even this misses a target, the
    miss is in the model's structure, not in a host's two figures."""
    constants = constants or fitted_constants()
    rows = evaluate_all(constants)
    held = {row.key for row in rows if _split_of(row, set(), "held-out") and row.error["ttft"] is not None}
    grouped: dict[str, list[Measurement]] = {}
    for row in REFERENCES:
        if row.key in held:
            grouped.setdefault(publisher(row.source), []).append(row)
    found: dict[str, tuple[float, float, float, int]] = {}
    every: list[float] = []
    for name, measurements in sorted(grouped.items()):
        best: tuple[float, float, float, list[float]] | None = None
        for overhead in ORACLE_OVERHEADS_MS:
            for factor in ORACLE_PREFILL_FACTORS:
                candidate = replace(constants, request_overhead_ms=overhead, prefill_efficiency_factor=factor)
                errors = [abs(evaluate(row, candidate).error["ttft"] or 0.0) for row in measurements]
                median = statistics.median(errors)
                if best is None or median < best[0]:
                    best = (median, overhead, factor, errors)
        assert best is not None
        found[name] = (best[0], best[1], best[2], len(measurements))
        every.extend(best[3])
    return found, statistics.median(every)


def main(argv: list[str] | None = None) -> int:
    """Print the comparison (or the fitted constants with ``--fit``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--fit", action="store_true", help="fit the constants on the fitted rows and print them")
    parser.add_argument("--oracle", action="store_true",
                        help="TTFT with two constants per publisher fitted on its own held-out rows (a bound, not a "
                             "prediction)")
    args = parser.parse_args(argv)
    if args.oracle:
        found, overall = oracle()
        for name, (median, overhead, factor, count) in found.items():
            print(f"{name:32} n={count:<4} TTFT median {median:.0%} (request_overhead_ms {overhead:g}, "
                  f"prefill_efficiency_factor {factor:g})")
        print(f"all held-out rows with a TTFT: median {overall:.0%} with each publisher's two constants fitted on "
              "its own held-out rows")
        return 0
    if args.fit:
        constants, overheads = fit()
        print(json.dumps({key: round(getattr(constants, key), 4) for key in _BOUNDS}, indent=2))
        print(json.dumps({"request_overhead_ms_by_publisher": {key: round(value, 2) for key, value in
                                                               sorted(overheads.items())}}, indent=2))
        print(f"loss {_loss(constants, overheads):.4f} with the publishers' overheads, {_loss(constants):.4f} with "
              f"their median (from {_loss(fitted_constants()):.4f})", file=sys.stderr)
        return 0
    rows = evaluate_all()
    calibrated = evaluate_calibrated()
    runs = ", ".join(f"{name}: {run.key}" for name, run in sorted(calibration_runs().items()))
    heading = (f"calibrated: each publisher's request overhead set from one of its runs ({runs}), which is left "
               "out; the overall lines only")
    if args.json:
        print(json.dumps(_finite({"rows": [asdict(row) for row in rows], "by_gpu": summary(rows, "gpu"),
                                  "by_family": summary(rows, "family"),
                                  "calibrated": {"runs": {name: run.key for name, run in calibration_runs().items()},
                                                 "rows": [asdict(row) for row in calibrated],
                                                 "overall": _overall_lines(calibrated)}}), indent=2))
    elif args.markdown:
        print("\n".join(_summary_lines(rows, markdown=True) + [heading + ":", ""]
                        + _summary_lines(calibrated, markdown=True, overall_only=True)))
    else:
        print("\n".join(_table(rows) + _summary_lines(rows, markdown=False) + ["", heading]
                        + _summary_lines(calibrated, markdown=False, overall_only=True)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
