"""Capacity planner vs. published vLLM start-up logs.

Run: ``PYTHONPATH=components python bench/capacity_bench.py`` (``make bench``). Prints, per
reference run, the planner's weights, KV-cache tokens (or KV-cache GiB where the log gave no token
count) and activation against what vLLM reported, the relative errors, the verdicts, and the
median and worst KV-cache error for dense and for mixture-of-experts models. Exit status 1 when a
verdict is wrong or a dense model's KV-cache error exceeds 5 %.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

# bench/ is not a package: make its references.py importable when run as a script.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from references import REFERENCES, Reference

from pulumi_vllm.capacity.gpus import custom_gpu
from pulumi_vllm.capacity.planner import CapacityPlan, plan_capacity
from pulumi_vllm.models import catalog

DENSE_TOLERANCE = 0.05


def predict(ref: Reference) -> CapacityPlan:
    """The planner's figures for one reference run."""
    facts = ref.facts or catalog.lookup(ref.model_id)
    if facts is None:
        raise SystemExit(f"no facts for {ref.model_id}")
    gpu = custom_gpu(ref.gpu_total_gib, name=f"H100-80GB ({ref.gpu_total_gib} GiB)")
    return plan_capacity(
        facts, gpu, ref.tensor_parallel_size, ref.pipeline_parallel_size, ref.max_model_len,
        ref.gpu_memory_utilization, ref.kv_cache_dtype, ref.weight_dtype, ref.vllm_version, ref.model_id,
    )


def _error(predicted: float, reported: float | None) -> float | None:
    if reported is None or reported == 0:
        return None
    return (predicted - reported) / abs(reported)


def _pct(error: float | None) -> str:
    return "" if error is None else f"{error * 100:+.2f}%"


def main() -> int:
    """Print the table and the summary; non-zero exit when the accuracy aims are missed."""
    header = (
        f"{'run':<31} {'vLLM':<6} {'TPxPP':<5} | {'weights GiB pred/rep':>21} {'err':>7} | "
        f"{'KV cache pred/rep':>23} {'err':>7} | {'activation':>11} | {'verdict':>9} | fit"
    )
    print(header)
    print("-" * len(header))
    kv_errors: dict[str, list[tuple[str, float]]] = {"dense": [], "MoE": []}
    weight_errors: list[float] = []
    wrong_verdicts: list[str] = []
    for ref in REFERENCES:
        plan = predict(ref)
        # Components of pipeline runs were logged by rank 0, the first stage.
        stage = plan.stages[0]
        weights = stage.weights_gib if ref.pipeline_parallel_size > 1 else plan.weights_gib_per_gpu
        weight_error = _error(weights, ref.weights_gib)
        if weight_error is not None:
            weight_errors.append(weight_error)
        if ref.kv_cache_tokens is not None:
            kv_text = f"{plan.kv_cache_tokens:>11,}/{ref.kv_cache_tokens:<11,}"
            kv_error = _error(plan.kv_cache_tokens, ref.kv_cache_tokens)
        elif ref.kv_cache_gib is not None:
            kv_text = f"{plan.kv_cache_gib_per_gpu:>7.2f}/{ref.kv_cache_gib:<7.2f} GiB".rjust(23)
            kv_error = _error(plan.kv_cache_gib_per_gpu, ref.kv_cache_gib)
        else:
            kv_text, kv_error = " " * 23, None
        if kv_error is not None and ref.fits:
            kv_errors["dense" if ref.dense else "MoE"].append((ref.label, kv_error))
        activation = "" if ref.activation_gib is None else f"{stage.activation_gib:.2f}/{ref.activation_gib:.2f}"
        verdict = f"{'fits' if plan.fits else 'no'}/{'fits' if ref.fits else 'no'}"
        if plan.fits != ref.fits:
            wrong_verdicts.append(ref.label)
        weight_text = f"{weights:>9.2f}/{ref.weights_gib:<9.2f}" if ref.weights_gib else " " * 19
        print(
            f"{ref.label:<31} {ref.vllm_version:<6} {ref.tensor_parallel_size}x{ref.pipeline_parallel_size:<3} | "
            f"{weight_text:>21} {_pct(weight_error):>7} | {kv_text:>23} {_pct(kv_error):>7} | "
            f"{activation:>11} | {verdict:>9} | {'yes' if ref.fitted else ''}"
        )
    print()
    print("KV-cache error (tokens where the log gave them, else GiB), runs that start:")
    failed = False
    for kind, rows in kv_errors.items():
        if not rows:
            continue
        magnitudes = [abs(error) for _, error in rows]
        worst_label, worst = max(rows, key=lambda row: abs(row[1]))
        print(
            f"  {kind:<5} n={len(rows):<3} median {statistics.median(magnitudes) * 100:.2f}%  "
            f"worst {abs(worst) * 100:.2f}% ({worst_label})"
        )
        if kind == "dense" and abs(worst) > DENSE_TOLERANCE:
            failed = True
    fitted = {ref.label for ref in REFERENCES if ref.fitted}
    out_of_sample = [abs(error) for label, error in kv_errors["dense"] if label not in fitted]
    if out_of_sample:
        print(
            f"  dense runs not used for fitting: n={len(out_of_sample)} median "
            f"{statistics.median(out_of_sample) * 100:.2f}%  worst {max(out_of_sample) * 100:.2f}%"
        )
    magnitudes = [abs(e) for e in weight_errors]
    print(f"Weights error: n={len(magnitudes)} median {statistics.median(magnitudes) * 100:.2f}%  "
          f"worst {max(magnitudes) * 100:.2f}%")
    print(f"Verdicts: {len(REFERENCES) - len(wrong_verdicts)}/{len(REFERENCES)} correct"
          + (f"; wrong: {', '.join(wrong_verdicts)}" if wrong_verdicts else ""))
    return 1 if failed or wrong_verdicts else 0


if __name__ == "__main__":
    sys.exit(main())
