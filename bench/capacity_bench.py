"""Capacity planner vs. published vLLM start-up logs.

Run: ``PYTHONPATH=components python bench/capacity_bench.py`` (``make bench``). Prints, per
reference that can be sized, the planner's weights, KV-cache GiB and KV-cache tokens against what
vLLM logged, with the relative errors and the start-up verdicts; then the median and worst
KV-cache error per family, per GPU and per vLLM release, each split into fitted (in-sample) and
held-out references (bench/references.py says which is which); then the references that could not
be sized, and why.

``--json`` prints the same as one JSON object; ``--markdown`` prints the "Accuracy against
published start-up logs" section of docs/capacity.md.

The KV-cache error of a reference is that of its token count when the log gives one ("GPU KV cache
size", V0's blocks x 16, or the longest request an error names), else that of its "Available KV
cache memory" when positive. Exit status 1 when a fitted reference misses its KV cache by more
than 5 % or gets the wrong verdict (the fitted constants regressed); the held-out aims (median at
most 3 %, none over 10 %) are reported, not enforced.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import dataclass, replace
from pathlib import Path

# bench/ is not a package: make its references.py importable when run as a script.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from references import NEW_LOGS, REFERENCES, Reference

from pulumi_vllm.capacity.gpus import GpuType, custom_gpu, lookup_gpu
from pulumi_vllm.capacity.planner import (
    BLOCK_SIZE,
    GIB,
    CapacityPlan,
    accounting_for,
    parse_vllm_version,
    plan_capacity,
)
from pulumi_vllm.models import catalog
from pulumi_vllm.models.facts import ModelFacts

FITTED_TOLERANCE = 0.05
"""A fitted reference missing its KV cache by more than this fails the bench."""
HELD_OUT_MEDIAN_AIM = 0.03
HELD_OUT_WORST_AIM = 0.10
COMMAND = "PYTHONPATH=components .venv/bin/python bench/capacity_bench.py"


@dataclass(frozen=True)
class Row:
    """One sized reference: what the planner predicts against what vLLM logged."""

    ref: Reference
    plan: CapacityPlan
    weights_gib: float
    """Predicted weights per GPU (of the first pipeline stage, which logged them)."""
    weights_error: float | None
    kv_gib_error: float | None
    kv_tokens: int | None
    """Reported tokens: the token count, or V0's blocks x 16."""
    kv_tokens_error: float | None
    kv_error: float | None
    """The reference's KV-cache error (tokens when logged, else GiB), None when neither is comparable."""
    verdict_ok: bool | None
    request_kv_gib: float | None = None
    """Predicted KV cache of one max_model_len request (vLLM's "N GiB KV cache is needed")."""
    request_kv_error: float | None = None

    @property
    def kv_basis(self) -> str:
        """Which figure ``kv_error`` compares."""
        if self.kv_tokens_error is not None:
            return "tokens"
        return "GiB" if self.kv_gib_error is not None else ""


@dataclass(frozen=True)
class Unsized:
    """A reference the planner cannot size, and why."""

    ref: Reference
    reason: str


def _error(predicted: float, reported: float | None) -> float | None:
    if reported is None or reported <= 0:
        return None
    return (predicted - reported) / reported


def resolve_gpu(ref: Reference) -> GpuType | str:
    """The GPU the log ran on (its logged total when printed), or why it cannot be told."""
    try:
        base: GpuType | None = lookup_gpu(ref.gpu)
    except ValueError:
        base = None
    if ref.gpu_total_gib is not None:
        if base is not None:
            return replace(base, total_memory_gib=ref.gpu_total_gib)
        return custom_gpu(ref.gpu_total_gib, name=ref.gpu)
    if base is not None:
        return base
    return f"GPU {ref.gpu} is not in the GPU catalog and the log prints no total"


def resolve_facts(ref: Reference) -> ModelFacts | str:
    """The model's facts (inline, else from the catalog), or why there are none."""
    model_id = ref.facts_model_id or ref.model_id
    facts = ref.facts or (catalog.lookup(model_id) if model_id else None)
    return facts if facts is not None else f"model {ref.model_id or '(not named)'} is outside the catalog"


def evaluate(ref: Reference) -> Row | Unsized:
    """Size one reference, or say why it cannot be sized."""
    if ref.unsized:
        return Unsized(ref, ref.unsized)
    facts = resolve_facts(ref)
    if isinstance(facts, str):
        return Unsized(ref, facts)
    gpu = resolve_gpu(ref)
    if isinstance(gpu, str):
        return Unsized(ref, gpu)
    try:
        accounting_for(ref.vllm_version)
    except ValueError:
        return Unsized(ref, f"vLLM release {ref.vllm_version!r} cannot be placed in an accounting era")
    try:
        plan = plan_capacity(
            facts, gpu, tensor_parallel_size=ref.tensor_parallel_size,
            pipeline_parallel_size=ref.pipeline_parallel_size, max_model_len=ref.max_model_len or None,
            gpu_memory_utilization=ref.gpu_memory_utilization, kv_cache_dtype=ref.kv_cache_dtype,
            weight_dtype=ref.weight_dtype, vllm_version=ref.vllm_version, model_id=ref.model_id,
            max_num_seqs=ref.max_num_seqs, max_num_batched_tokens=ref.max_num_batched_tokens,
            data_parallel_size=ref.data_parallel_size, enable_expert_parallel=ref.enable_expert_parallel,
        )
    except ValueError as error:
        return Unsized(ref, f"the planner refuses the layout: {error}")
    # Components of pipeline runs were logged by rank 0, the first stage.
    weights = plan.stages[0].weights_gib if ref.pipeline_parallel_size > 1 else plan.weights_gib_per_gpu
    kv_tokens = ref.kv_cache_tokens
    if kv_tokens is None and ref.kv_cache_blocks is not None:
        kv_tokens = ref.kv_cache_blocks * BLOCK_SIZE
    tokens_error = _error(plan.kv_cache_tokens, kv_tokens) if kv_tokens else None
    gib_error = _error(plan.kv_cache_gib_per_gpu, ref.kv_cache_gib)
    kv_error = tokens_error if tokens_error is not None else gib_error
    verdict_ok = None if ref.fits is None else plan.fits == ref.fits
    layout = min(plan.stages, key=lambda s: s.kv_cache_blocks / s.kv.blocks_per_request).kv
    request_gib = layout.blocks_per_request * layout.bytes_per_block / GIB
    return Row(ref, plan, weights, _error(weights, ref.weights_gib), gib_error, kv_tokens, tokens_error, kv_error,
               verdict_ok, request_gib, _error(request_gib, ref.request_kv_gib))


def evaluate_all(references: tuple[Reference, ...] = REFERENCES) -> tuple[list[Row], list[Unsized]]:
    """Every reference, sized or listed as unsized."""
    rows: list[Row] = []
    unsized: list[Unsized] = []
    for ref in references:
        result = evaluate(ref)
        (rows if isinstance(result, Row) else unsized).append(result)  # type: ignore[arg-type]
    return rows, unsized


@dataclass(frozen=True)
class Summary:
    """Median and worst absolute KV-cache error of one group of references."""

    n: int
    median: float
    worst: float
    worst_label: str

    def as_json(self) -> dict[str, object]:
        """JSON form."""
        return {"n": self.n, "median": round(self.median, 4), "worst": round(self.worst, 4),
                "worst_label": self.worst_label}

    def text(self) -> str:
        """``n=3 median 1.20% worst 4.00% (label)``."""
        return f"n={self.n} median {self.median * 100:.2f}% worst {self.worst * 100:.2f}% ({self.worst_label})"


def summarise(rows: list[Row], error: str = "kv_error") -> Summary | None:
    """Median and worst of ``error`` over ``rows`` that have one."""
    pairs = [(row.ref.label, abs(value)) for row in rows if (value := getattr(row, error)) is not None]
    if not pairs:
        return None
    label, worst = max(pairs, key=lambda pair: pair[1])
    return Summary(len(pairs), statistics.median(value for _, value in pairs), worst, label)


GROUPINGS = {
    "family": lambda row: row.ref.family,
    "GPU": lambda row: row.ref.gpu,
    "vLLM": lambda row: row.ref.version_label,
}
SPLITS = ("fitted", "held-out")
TARGET_GPUS = ("A100-80GB", "A100-40GB", "L40S", "L4", "H200", "MI300X")
TARGET_FAMILIES = ("moe", "fp8-moe", "mxfp4", "mla", "vision", "hybrid")


def _group_order(group: str) -> tuple[object, ...]:
    """Releases in numeric order (0.6 before 0.10); anything else alphabetically."""
    try:
        return (0, parse_vllm_version(group.rstrip("*")), group)
    except ValueError:
        return (1, (), group)


def _link(ref: Reference) -> str:
    return f"[log]({ref.source})" if ref.source.startswith("http") else ref.source


def not_covered(rows: list[Row]) -> str:
    """What the sized references leave unchecked, computed from them."""
    with_error = [r for r in rows if r.kv_error is not None]
    gpus = [g for g in TARGET_GPUS if not any(r.ref.gpu == g for r in with_error)]
    families = [f for f in TARGET_FAMILIES if not any(r.ref.family == f for r in with_error)]
    recent = [r for r in with_error if parse_vllm_version(r.ref.vllm_version) >= (0, 20, 0)]
    parts = []
    if not recent:
        parts.append("no log of vLLM 0.20 or newer that the planner can size (the 0.2x logs found are of models "
                     "or GPUs outside the catalogs)")
    if gpus:
        parts.append("no KV-cache figure on " + ", ".join(gpus))
    if families:
        parts.append("none of the families " + ", ".join(families))
    return "; ".join(parts)


def grouped(rows: list[Row]) -> dict[str, dict[str, dict[str, Summary | None]]]:
    """``{grouping: {group: {split: Summary}}}`` for the KV-cache error."""
    result: dict[str, dict[str, dict[str, Summary | None]]] = {}
    for name, key in GROUPINGS.items():
        groups: dict[str, dict[str, Summary | None]] = {}
        for group in sorted({key(row) for row in rows}, key=_group_order):
            members = [row for row in rows if key(row) == group]
            splits = {split: summarise([r for r in members if r.ref.split == split]) for split in SPLITS}
            if any(splits.values()):
                groups[group] = splits
        result[name] = groups
    return result


def overall(rows: list[Row]) -> dict[str, dict[str, Summary | None]]:
    """KV-cache and weights error over all references of each split."""
    return {
        split: {
            "kv": summarise([r for r in rows if r.ref.split == split]),
            "weights": summarise([r for r in rows if r.ref.split == split], "weights_error"),
        }
        for split in SPLITS
    }


def new_logs_held_out(rows: list[Row]) -> Summary | None:
    """KV-cache error over the held-out references of NEW_LOGS alone (the H100 0.16-0.19 logs left out)."""
    labels = {ref.label for ref in NEW_LOGS}
    return summarise([r for r in rows if r.ref.split == "held-out" and r.ref.label in labels])


def wrong_verdicts(rows: list[Row]) -> list[Row]:
    """Rows whose predicted start-up verdict differs from the log's."""
    return [row for row in rows if row.verdict_ok is False]


def _pct(error: float | None) -> str:
    return "" if error is None else f"{error * 100:+.1f}%"


def _pair(predicted: float, reported: float | None, digits: int = 2) -> str:
    if reported is None:
        return ""
    if digits == 0:
        return f"{predicted:,.0f}/{reported:,.0f}"
    return f"{predicted:.{digits}f}/{reported:.{digits}f}"


def _verdict(row: Row) -> str:
    reported = "?" if row.ref.fits is None else ("fits" if row.ref.fits else "no")
    return f"{'fits' if row.plan.fits else 'no'}/{reported}"


def table_lines(rows: list[Row]) -> list[str]:
    """The per-reference table, as text."""
    header = (
        f"{'run':<44} {'family':<8} {'GPU':<9} {'vLLM':<7} {'TPxPP':<5} | {'weights GiB':>13} {'err':>6} | "
        f"{'KV GiB':>13} {'err':>6} | {'KV tokens':>21} {'err':>6} | {'activation':>11} | {'verdict':>9} | split"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        ref = row.ref
        lines.append(
            f"{ref.label:<44} {ref.family:<8} {ref.gpu:<9} {ref.version_label:<7} "
            f"{ref.tensor_parallel_size}x{ref.pipeline_parallel_size:<3} | "
            f"{_pair(row.weights_gib, ref.weights_gib):>13} {_pct(row.weights_error):>6} | "
            f"{_pair(row.plan.kv_cache_gib_per_gpu, ref.kv_cache_gib):>13} {_pct(row.kv_gib_error):>6} | "
            f"{_pair(row.plan.kv_cache_tokens, row.kv_tokens, 0):>21} {_pct(row.kv_tokens_error):>6} | "
            f"{_pair(row.plan.stages[0].activation_gib, ref.activation_gib):>11} | {_verdict(row):>9} | {ref.split}"
        )
    return lines


def _cell(summary: Summary | None) -> str:
    if summary is None:
        return "-"
    return f"{summary.n}: {summary.median * 100:.1f}% / {summary.worst * 100:.1f}%"


def summary_lines(rows: list[Row]) -> list[str]:
    """Per family, GPU and release, fitted vs held-out, as text."""
    lines: list[str] = []
    totals = overall(rows)
    for split in SPLITS:
        kv, weights = totals[split]["kv"], totals[split]["weights"]
        lines.append(f"{split:<9} KV cache: {kv.text() if kv else '-'}")
        lines.append(f"{'':<9} weights:  {weights.text() if weights else '-'}")
    new = new_logs_held_out(rows)
    lines.append(f"{'':<9} new logs only: {new.text() if new else '-'}")
    held = totals["held-out"]["kv"]
    if held:
        met = held.median <= HELD_OUT_MEDIAN_AIM and held.worst <= HELD_OUT_WORST_AIM
        lines.append(f"held-out aim (median <= {HELD_OUT_MEDIAN_AIM:.0%}, worst <= {HELD_OUT_WORST_AIM:.0%}): "
                     f"{'met' if met else 'not met'}")
    for name, groups in grouped(rows).items():
        lines.append("")
        lines.append(f"KV-cache error by {name} (n: median / worst)   {'fitted':>22} {'held-out':>22}")
        for group, splits in groups.items():
            lines.append(f"  {group:<40} {_cell(splits['fitted']):>22} {_cell(splits['held-out']):>22}")
    for row in rows:
        if row.request_kv_error is not None:
            lines.append(f"One request's KV cache, {row.ref.label}: {row.request_kv_gib:.2f}/"
                         f"{row.ref.request_kv_gib:.2f} GiB ({_pct(row.request_kv_error)})")
    wrong = wrong_verdicts(rows)
    judged = sum(1 for row in rows if row.verdict_ok is not None)
    lines.append("")
    lines.append(f"Verdicts: {judged - len(wrong)}/{judged} correct"
                 + (f"; wrong: {', '.join(r.ref.label for r in wrong)}" if wrong else ""))
    return lines


def unsized_lines(unsized: list[Unsized]) -> list[str]:
    """The references that could not be sized."""
    lines = [f"Not sized ({len(unsized)}):"]
    lines += [f"  {item.ref.label}: {item.reason} ({item.ref.source})" for item in unsized]
    return lines


def failures(rows: list[Row]) -> list[str]:
    """Fitted references that regressed: a wrong verdict or a KV-cache miss over FITTED_TOLERANCE."""
    found = []
    for row in rows:
        if not row.ref.fitted:
            continue
        if row.verdict_ok is False:
            found.append(f"{row.ref.label}: wrong verdict")
        if row.kv_error is not None and abs(row.kv_error) > FITTED_TOLERANCE:
            found.append(f"{row.ref.label}: KV cache off by {row.kv_error * 100:+.1f}%")
    return found


def as_json(rows: list[Row], unsized: list[Unsized]) -> dict[str, object]:
    """Everything the bench prints, for tools."""
    def summary(value: Summary | None) -> object:
        return None if value is None else value.as_json()

    return {
        "rows": [
            {
                "label": row.ref.label, "source": row.ref.source, "family": row.ref.family, "gpu": row.ref.gpu,
                "vllm_version": row.ref.version_label, "split": row.ref.split,
                "weights_gib": {"predicted": round(row.weights_gib, 3), "reported": row.ref.weights_gib,
                                "error": row.weights_error},
                "kv_cache_gib": {"predicted": round(row.plan.kv_cache_gib_per_gpu, 3), "reported": row.ref.kv_cache_gib,
                                 "error": row.kv_gib_error},
                "kv_cache_tokens": {"predicted": row.plan.kv_cache_tokens, "reported": row.kv_tokens,
                                    "error": row.kv_tokens_error},
                "activation_gib": {"predicted": round(row.plan.stages[0].activation_gib, 3),
                                   "reported": row.ref.activation_gib},
                "fits": {"predicted": row.plan.fits, "reported": row.ref.fits},
                "request_kv_gib": {"predicted": round(row.request_kv_gib or 0, 3), "reported": row.ref.request_kv_gib,
                                   "error": row.request_kv_error},
            }
            for row in rows
        ],
        "new_logs_held_out": summary(new_logs_held_out(rows)),
        "overall": {split: {k: summary(v) for k, v in values.items()} for split, values in overall(rows).items()},
        "grouped": {
            name: {group: {split: summary(s) for split, s in splits.items()} for group, splits in groups.items()}
            for name, groups in grouped(rows).items()
        },
        "wrong_verdicts": [row.ref.label for row in wrong_verdicts(rows)],
        "unsized": [{"label": u.ref.label, "reason": u.reason, "source": u.ref.source} for u in unsized],
        "failures": failures(rows),
    }


def _md_cell(summary: Summary | None) -> str:
    return "–" if summary is None else f"{summary.n} · {summary.median * 100:.1f} % · {summary.worst * 100:.1f} %"


def markdown(rows: list[Row], unsized: list[Unsized]) -> str:
    """The "Accuracy against published start-up logs" section of docs/capacity.md."""
    totals = overall(rows)
    out = [
        "## Accuracy against published start-up logs",
        "",
        "`make bench` (or `" + COMMAND + "`) sizes every published vLLM start-up log in "
        "`bench/references.py` (each with the URL it is copied from) and compares the planner's weights, "
        "`Available KV cache memory` and `GPU KV cache size` with the logged ones; `--json` prints the same "
        "for tools and `--markdown` prints this section. A reference is *fitted* when a constant of "
        "`capacity/accounting.py` was computed from it and *held-out* otherwise; the split is fixed in the "
        "references' docstring (new logs alternate between a pool that may be fitted on and one that never "
        "is; a reference fitted on says so in its notes). Figures are absolute relative errors of the KV cache (tokens where "
        "the log gives them, else GiB): count · median · worst.",
        "",
        "| | fitted | held-out |",
        "| --- | --- | --- |",
        f"| KV cache, all references | {_md_cell(totals['fitted']['kv'])} | {_md_cell(totals['held-out']['kv'])} |",
        (f"| weights, all references | {_md_cell(totals['fitted']['weights'])} | "
        f"{_md_cell(totals['held-out']['weights'])} |"),
        f"| KV cache, logs added beyond the H100 0.16-0.19 set | – | {_md_cell(new_logs_held_out(rows))} |",
    ]
    for name, groups in grouped(rows).items():
        out += ["", f"| {name} | fitted | held-out |", "| --- | --- | --- |"]
        out += [f"| {group} | {_md_cell(s['fitted'])} | {_md_cell(s['held-out'])} |" for group, s in groups.items()]
    wrong = wrong_verdicts(rows)
    judged = sum(1 for row in rows if row.verdict_ok is not None)
    checks = [r for r in rows if r.request_kv_error is not None]
    if checks:
        out += [""] + [f"KV cache one request needs, as vLLM's error states it: {r.ref.label} "
                       f"{r.request_kv_gib:.2f} GiB predicted, {r.ref.request_kv_gib:.2f} GiB logged "
                       f"({_pct(r.request_kv_error)}; {_link(r.ref)})." for r in checks]
    out += ["", f"Start-up verdicts: {judged - len(wrong)} of {judged} right"
            + (f" (wrong: {', '.join(r.ref.label for r in wrong)})." if wrong else "."), ""]
    misses = sorted((r for r in rows if r.ref.split == "held-out" and r.kv_error is not None),
                    key=lambda r: -abs(r.kv_error or 0))[:6]
    if misses:
        out.append("Largest held-out misses:")
        out.append("")
        out += [f"- {r.ref.label} ({r.ref.gpu}, vLLM {r.ref.version_label}): KV cache {_pct(r.kv_error)} "
                f"({r.kv_basis}), weights {_pct(r.weights_error) or 'not logged'}; {_link(r.ref)}"
                for r in misses]
        out.append("")
    out += [f"Not sized ({len(unsized)} of {len(unsized) + len(rows)} references):", ""]
    out += [f"- {u.ref.label}: {u.reason} ({_link(u.ref)})" for u in unsized]
    out += [
        "",
        ("A release marked `*` is not printed in its log; it is the first release of the accounting era the "
         "log's format and date place it in. Not covered: " + not_covered(rows) + ". No sized reference "
         "checks data or expert parallelism yet (the planner sizes them from vLLM's MoE layout); GPUs of different sizes "
         "in one pipeline, speculative decoding, KV connectors and CPU offloading are outside the planner, and a "
         "failure after the KV cache is sized (CUDA-graph capture before 0.21, out of memory while loading) is not "
         "predicted."),
    ]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Print the table and the summaries; non-zero exit when a fitted reference regressed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--markdown", action="store_true", help="print the docs/capacity.md section")
    args = parser.parse_args(argv)
    rows, unsized = evaluate_all()
    found = failures(rows)
    if args.json:
        print(json.dumps(as_json(rows, unsized), indent=1))
    elif args.markdown:
        print(markdown(rows, unsized), end="")
    else:
        print("\n".join(table_lines(rows)))
        print()
        print("\n".join(summary_lines(rows)))
        print()
        print("\n".join(unsized_lines(unsized)))
        if found:
            print()
            print("Fitted references that regressed: " + "; ".join(found))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
