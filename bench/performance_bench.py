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
prints them for capacity/gpu_performance.json.
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

from performance_references import REFERENCES, Measurement

from pulumi_vllm.capacity.gpus import lookup_gpu
from pulumi_vllm.capacity.performance import (
    Constants,
    ServingLayout,
    Workload,
    fitted_constants,
    predict,
)
from pulumi_vllm.capacity.planner import plan_capacity
from pulumi_vllm.models.facts import ModelFacts
from pulumi_vllm.models.resolve import resolve_facts

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
    found_after_fit: bool = False
    burst: bool = False
    """Every request sent at once (:func:`is_burst`)."""


def _error(predicted: float, measured: float | None) -> float | None:
    return None if measured is None or not math.isfinite(predicted) else predicted / measured - 1


def engine_budget(row: Measurement) -> int:
    """The ``max_num_batched_tokens`` the row's engine ran with: vLLM's default, as no source here sets it.

    ``EngineArgs.get_batch_defaults`` (vllm/engine/arg_utils.py): ``vllm serve`` takes 8192 on GPUs of 70 GiB or more
    but A100s, else 2048 (``GpuType.default_max_num_batched_tokens``); the ``LLM`` class of the offline benchmarks
    16384, else 8192. A prompt longer than the budget is prefilled in chunks of it.
    """
    gpu = lookup_gpu(row.gpu)
    if row.offline:
        return 16384 if gpu.large_batch_defaults else 8192
    return gpu.default_max_num_batched_tokens


def kv_cache_tokens(row: Measurement, facts: ModelFacts) -> int | None:
    """The KV-cache tokens the row's engine holds, as ``pulumi-vllm size`` plans them (``plan_capacity`` at vLLM's
    default memory utilisation and the model's own context length): the batch limit when long requests fill the
    cache before ``max_num_seqs`` does. Where the cache cannot hold one request of the model's full context, vLLM
    refuses to start until ``--max-model-len`` is lowered, which the sources did or their servers did for them: the
    cache is then as large, so its tokens still bound the batch. ``None`` where the planner finds no room for a
    cache at all (the source's server must have run with settings the row does not state)."""
    plan = plan_capacity(facts, row.gpu, row.tensor_parallel_size, row.pipeline_parallel_size,
                         weight_dtype=row.weight_dtype, model_id=row.model)
    return plan.kv_cache_tokens if plan.kv_cache_tokens > 0 else None


def is_burst(row: Measurement) -> bool:
    """All of the run's requests sent at once: a known request count no larger than the concurrency, no rate."""
    return row.request_rate is None and row.requests is not None and row.concurrency >= row.requests


def evaluate(row: Measurement, constants: Constants | None = None) -> Row:
    """Predict one measurement's workload on its layout."""
    facts, _ = resolve_facts(row.model)
    assert facts is not None, row.model
    layout = ServingLayout(
        gpu=row.gpu, tensor_parallel_size=row.tensor_parallel_size, pipeline_parallel_size=row.pipeline_parallel_size,
        weight_dtype=row.weight_dtype, model_id=row.model, max_num_seqs=lookup_gpu(row.gpu).default_max_num_seqs,
        max_num_batched_tokens=engine_budget(row), kv_cache_tokens=kv_cache_tokens(row, facts),
    )
    if row.request_rate is not None:
        # The model has no rate with a client cap: a capped rate run would be predicted as uncapped.
        assert row.concurrency == 0, f"{row.key}: a rate row with a --max-concurrency cap"
        workload = Workload(row.input_tokens, row.output_tokens, rate=row.request_rate, requests=row.requests,
                            varied_lengths=row.varied_lengths)
    elif is_burst(row):
        # Every prompt sent at once (no --max-concurrency, an infinite --request-rate): a finite run whose arrival
        # window is nil; the prompts beyond the batch limit wait for slots, the median one half of that backlog.
        workload = Workload(row.input_tokens, row.output_tokens, rate=math.inf, requests=row.requests,
                            varied_lengths=row.varied_lengths)
    else:
        workload = Workload(row.input_tokens, row.output_tokens, concurrency=row.concurrency,
                            varied_lengths=row.varied_lengths)
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


SPLITS = ("fitted", "held-out", "held-out before", "held-out by source", "found after fit", "found after fit: loops",
          "found after fit: bursts", "rate mode", "V0 engine")
"""``held-out by source``: the held-out rows whose source has no fitted row (new publishers and harnesses), but
those found after the fit, which have their own lines;
``held-out before``: the held-out rows but those found after the fit (the set the targets were first judged on);
``found after fit``: the (held-out) closed-loop and burst rows of sources searched for only after the model was
fixed, then apart: its closed loops (``loops``) and its bursts (every request sent at once, ``bursts``);
``rate mode``: the (held-out) rows run at a request rate, which the first three leave out; ``V0 engine``: rows
measured on vLLM's V0 engine, outside the model's domain, in no other split."""


def _split_of(row: Row, fitted_sources: set[str], split: str) -> bool:
    if split == "V0 engine":
        return row.mode == "v0"
    if split == "rate mode":
        return row.mode == "rate"
    if row.mode != "closed":
        return False
    if split == "fitted":
        return not row.held_out
    if split == "held-out":
        return row.held_out
    if split == "held-out before":
        return row.held_out and not row.found_after_fit
    if split == "found after fit":
        return row.found_after_fit
    if split == "found after fit: loops":
        return row.found_after_fit and not row.burst
    if split == "found after fit: bursts":
        return row.found_after_fit and row.burst
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
            if not chosen or ((split == "held-out by source" or split.startswith("found after fit")) and key != "all"):
                continue
            entry: dict[str, object] = {group: key, "split": split, "n": len(chosen)}
            for quantity in QUANTITIES:
                errors = [abs(e) for row in chosen if (e := row.error[quantity]) is not None]
                entry[quantity] = (
                    {"median": statistics.median(errors), "worst": max(errors), "n": len(errors)} if errors else None
                )
            out.append(entry)
    return out


def _loss(constants: Constants) -> float:
    """Median of the absolute log errors over the fitted rows and every quantity they publish."""
    errors = []
    for row in REFERENCES:
        if row.held_out or row.v0_engine or row.request_rate is not None:
            continue
        result = evaluate(row, constants)
        for quantity in QUANTITIES:
            measured, predicted = result.measured[quantity], result.predicted[quantity]
            if measured is not None and predicted > 0 and math.isfinite(predicted):
                errors.append(abs(math.log(predicted / measured)))
    return statistics.mean(errors) + statistics.median(errors)


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
    "frontend_us_per_token": (0.0, 400.0),
}


def fit(rounds: int = 6) -> Constants:
    """Coordinate search of the constants on the fitted rows (a few passes over each, shrinking steps)."""
    best = fitted_constants()
    best_loss = _loss(best)
    for round_ in range(rounds):
        for name, (low, high) in _BOUNDS.items():
            span = (high - low) / (3 ** (round_ + 1))
            for step in (-2 * span, -span, -span / 2, span / 2, span, 2 * span):
                value = min(high, max(low, getattr(best, name) + step))
                candidate = replace(best, **{name: value})
                loss = _loss(candidate)
                if loss < best_loss:
                    best, best_loss = candidate, loss
    return best


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


def _summary_lines(rows: list[Row], markdown: bool) -> list[str]:
    lines: list[str] = []
    for group in ("gpu", "family"):
        if markdown:
            lines += [f"| {group} | split | n | throughput median / worst | TTFT median / worst | ITL median / worst |",
                      "| --- | --- | --- | --- | --- | --- |"]
        else:
            lines.append(f"\nper {group}: median / worst absolute error (n)")
        for entry in summary(rows, group):
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


def main(argv: list[str] | None = None) -> int:
    """Print the comparison (or the fitted constants with ``--fit``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--fit", action="store_true", help="fit the constants on the fitted rows and print them")
    args = parser.parse_args(argv)
    if args.fit:
        constants = fit()
        print(json.dumps({key: round(getattr(constants, key), 4) for key in _BOUNDS}, indent=2))
        print(f"loss {_loss(constants):.4f} (from {_loss(fitted_constants()):.4f})", file=sys.stderr)
        return 0
    rows = evaluate_all()
    if args.json:
        print(json.dumps(_finite({"rows": [asdict(row) for row in rows], "by_gpu": summary(rows, "gpu"),
                                  "by_family": summary(rows, "family")}), indent=2))
    elif args.markdown:
        print("\n".join(_summary_lines(rows, markdown=True)))
    else:
        print("\n".join(_table(rows) + _summary_lines(rows, markdown=False)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
