"""``pulumi-vllm bench --gpu G``: the load test's measured throughput, TTFT and ITL beside the model's prediction.

The prediction is :func:`pulumi_vllm.capacity.performance.predict` for the same workload (``--input-len``,
``--output-len``, ``--request-rate`` or ``--max-concurrency``) on the deployed layout (``--gpu``,
``--tensor-parallel-size``, ``--replicas``); the measured figures are read from the JSON ``vllm bench serve``
writes. ``--calibration-json FILE`` writes the pair in the shape of ``bench/performance_references.py``'s
rows, to add to the calibration data.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
from pathlib import Path
from typing import Any

from pulumi_vllm.capacity.performance import Prediction, ServingLayout, Workload, predict
from pulumi_vllm.errors import UserError

QUANTITIES = (
    ("output tokens/s", "output_throughput", "output_tokens_per_s"),
    ("requests/s", "request_throughput", "requests_per_s"),
    ("TTFT p50 (ms)", "median_ttft_ms", "ttft_p50"),
    ("ITL (ms)", "mean_tpot_ms", "itl_p50"),
)
"""(label, key of vllm bench serve's JSON, key of the prediction's flat figures). The ITL is compared with the
mean over requests of their time per output token after the first (TPOT): a server that streams several tokens
in one chunk makes the median of single gaps, and even the median TPOT, near 0 (vLLM on CPU here: 0.01 ms)."""


def workload(args: argparse.Namespace) -> Workload:
    """The load test's workload as the model sees it: a closed loop of ``--num-prompts`` when the rate is ``inf``
    under a ``--max-concurrency``; every prompt at once (a finite run at an unbounded rate) when the rate is ``inf``
    alone; a finite run of ``--num-prompts`` at a rate otherwise."""
    rate = str(args.request_rate)
    if rate == "inf":
        if args.max_concurrency:
            return Workload(args.input_len, args.output_len, concurrency=int(args.max_concurrency),
                            requests=int(args.num_prompts))
        return Workload(args.input_len, args.output_len, rate=math.inf, requests=int(args.num_prompts))
    # vllm bench serve sends --num-prompts at the rate and stops: a finite run, throughput over its makespan.
    return Workload(args.input_len, args.output_len, rate=float(rate), requests=int(args.num_prompts))


def _flat(prediction: Prediction) -> dict[str, float]:
    return {
        "output_tokens_per_s": prediction.output_tokens_per_s,
        "requests_per_s": prediction.requests_per_s,
        "ttft_p50": prediction.ttft_ms.p50,
        "itl_p50": prediction.itl_ms.p50,
    }


def compare(measured: dict[str, Any], prediction: Prediction) -> list[dict[str, Any]]:
    """One row per quantity: measured, predicted, and the miss (predicted / measured - 1) in percent."""
    predicted = _flat(prediction)
    rows = []
    for label, measured_key, predicted_key in QUANTITIES:
        value = measured.get(measured_key)
        guess = predicted[predicted_key]
        miss = None
        if isinstance(value, (int, float)) and value > 0 and math.isfinite(guess):
            miss = (guess / value - 1) * 100
        rows.append({"quantity": label, "measured": value, "predicted": round(guess, 3),
                     "miss_percent": None if miss is None else round(miss, 1)})
    return rows


def _default_max_num_seqs(gpu: str) -> int:
    """vLLM's default ``max_num_seqs`` on ``gpu`` (1024 on 70 GiB or more but A100s, else 256); 256 for a device
    profile outside the GPU catalog (the CPU one)."""
    from pulumi_vllm.capacity.gpus import lookup_gpu

    try:
        return lookup_gpu(gpu).default_max_num_seqs
    except ValueError:
        return 256


def calibration_row(args: argparse.Namespace, measured: dict[str, Any], load: Workload) -> dict[str, Any]:
    """The measurement in the fields of ``bench/performance_references.Measurement``."""
    return {
        "key": f"{Path(args.model).name.lower()}-{args.gpu.lower()}-{load.input_tokens}-{load.output_tokens}",
        "model": args.model,
        "gpu": args.gpu,
        "tensor_parallel_size": args.tensor_parallel_size,
        "input_tokens": load.input_tokens,
        "output_tokens": load.output_tokens,
        # As the references encode a run: a closed loop's clients; a burst's every request at once (concurrency
        # and requests alike, no rate); a Poisson rate's request_rate with concurrency 0.
        "concurrency": load.concurrency if load.concurrency is not None else (
            int(args.num_prompts) if load.rate == math.inf else 0),
        "request_rate": load.rate if load.rate is not None and math.isfinite(load.rate) else None,
        "requests": int(args.num_prompts),
        "output_tokens_per_s": measured.get("output_throughput"),
        "ttft_ms": measured.get("median_ttft_ms"),
        "itl_ms": measured.get("mean_tpot_ms"),
        "statistic": "median TTFT, mean TPOT",
        # The deployed image is this project's pinned vLLM, which schedules asynchronously by default.
        "async_scheduling": True,
        "source": "pulumi-vllm bench",
        "published": datetime.date.today().isoformat(),
    }


def report(args: argparse.Namespace, result_path: Path) -> int:
    """Print measured vs predicted for the finished run; 0, or 1 when the result cannot be read."""
    from pulumi_vllm.models.resolve import resolve_facts

    try:
        measured = json.loads(result_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise UserError(f"cannot read the load test's result {result_path}: {error}") from None
    try:
        facts, _ = resolve_facts(args.model)
    except ValueError as error:
        raise UserError(str(error)) from None
    if facts is None:
        raise UserError(f"--model {args.model!r}: no model facts (catalog or a local folder with config.json), so "
                        "nothing to predict")
    load = workload(args)
    layout = ServingLayout(args.gpu, tensor_parallel_size=args.tensor_parallel_size, replicas=args.replicas,
                           model_id=args.model, max_num_seqs=_default_max_num_seqs(args.gpu))
    try:
        prediction = predict(facts, layout, load)
    except ValueError as error:
        raise UserError(f"--gpu {args.gpu!r}: {error}") from None
    rows = compare(measured, prediction)
    if args.calibration_json:
        Path(args.calibration_json).write_text(
            json.dumps({"measurement": calibration_row(args, measured, load), "comparison": rows}, indent=2) + "\n",
            encoding="utf-8",
        )
    print(f"measured vs predicted ({layout.gpus} x {layout.gpu}, tensor parallel {layout.tensor_parallel_size}):")
    for row in rows:
        measured_text = "-" if row["measured"] is None else f"{row['measured']:.2f}"
        miss = "-" if row["miss_percent"] is None else f"{row['miss_percent']:+.1f}%"
        print(f"  {row['quantity']:16} measured {measured_text:>10}  predicted {row['predicted']:>10.2f}  miss {miss}")
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The prediction arguments of ``bench``."""
    group = parser.add_argument_group("measured vs predicted")
    group.add_argument("--gpu", default=None,
                       help="GPU type of the deployment (e.g. H100, L4; cpu-loopback for vLLM on CPU): print the "
                       "performance model's prediction beside the result")
    group.add_argument("--tensor-parallel-size", type=int, default=1)
    group.add_argument("--replicas", type=int, default=1, help="replicas behind the URL")
    group.add_argument("--calibration-json", default=None,
                       help="write the measurement and the comparison as JSON (a calibration row)")
