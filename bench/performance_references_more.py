"""More published vLLM serving measurements: MI300X with TTFT and ITL, A100 40GB at tensor parallel 8, and runs
at a fixed Poisson request rate.

Which rows are fitted and which held out follows the rule of ``bench/performance_references.py``; dstack's rows
(vLLM 0.6.3) are on the V0 engine, outside the model's domain, and reported apart. Rows come from the
published logs as printed; where the benchmark drew prompts from a dataset (ShareGPT, vLLM's sonnet text), the
input and output tokens are the run's totals divided by its request count, rounded to the nearest token, and the
note says so. TTFT and ITL are the medians vLLM's ``benchmark_serving.py`` prints ("Median TTFT", "Median ITL"),
the closest of its statistics to the model's p50 and decode step.

Rate rows (``request_rate`` set) were run with ``--request-rate`` and no ``--max-concurrency`` cap: their
``concurrency`` is 0. Their output tokens/s is the benchmark's own (requests completed over the run's duration,
which includes draining the last arrivals), so a short run at a rate near or above capacity reports less than
the rate offered.

Import this module through ``performance_references`` (which appends ``ROWS`` to ``REFERENCES``), not before it.
"""

from __future__ import annotations

from performance_references import Measurement

_DSTACK_MI300X = "https://github.com/dstackai/benchmarks/blob/main/amd/inference/raw_data/vllm_raw.txt"
"""dstack's 8 x MI300X (Hot Aisle) benchmark of Llama 3.1 405B, bf16, vLLM 0.6.3.dev116 (ROCm 6.1) with
``vllm serve --tensor-parallel-size=8``; ``benchmark_serving.py --dataset-name sonnet --num-prompt=N`` at the
default infinite request rate, so N prompts arrive together (an offline batch of N). Write-up:
https://dstack.ai/blog/amd-mi300x-inference-benchmark/ (2024-10-09)."""
_DSTACK_MI300X_RATE = "https://github.com/dstackai/benchmarks/blob/main/amd/inference/vllm/data/result_vllm_QPS_high.csv"
"""The same deployment at a Poisson rate: the write-up names the run of 900 requests at 3 requests/s."""
_AZURE_A100 = (
    "https://github.com/surajssd/llm-k8s/blob/main/results_serving_meta-llama-Llama-3.3-70B-Instruct/"
    "cumulative_results.md"
)
"""vLLM's own serving benchmark (``.buildkite`` nightly suite: ShareGPT, 200 prompts, ``--request-rate`` 1, 4,
16 and inf) against Llama 3.3 70B Instruct on one Azure Standard_ND96asr_v4 (8 x A100 SXM4 40GB, NVLink), test
case ``tp8_pp1``; per-run logs in ``01_tp8_pp1/benchmark-script-run.sh`` beside it."""

_AZURE_RUN = "04-14 (the log's date; no year printed)"

_ROCM_DEV_DOCKER = (
    "https://github.com/ROCm/vllm/blob/040de12d45c16d6de6ad386cc57dd68b8c5b805e/docs/dev-docker/README.md"
)
"""AMD's reference figures for its rocm/vllm-dev image (vLLM v0.10.0, ROCm 6.4.1) on 8 x MI300X (192GiB, 750W),
"Latency Measurements": vLLM's ``benchmark_latency.py`` (``--dtype float16``, no ``--kv-cache-dtype``, so the KV
cache is 16-bit) with the Quark FP8 checkpoints amd/Llama-3.1-70B-Instruct-FP8-KV and
amd/Llama-3.1-405B-Instruct-FP8-KV at tensor parallel 8: the end-to-end seconds of one batch."""

_DSTACK_NOTE = (
    "V0 engine: the source names vLLM 0.6.3.dev116 (below 0.8, before V1 existed); offline batch: N sonnet prompts sent at once (request rate inf), so concurrency = N (all within vLLM's "
    "default 256 running sequences); input and output tokens = the run's totals / N; TTFT and ITL are the "
    "printed medians"
)
_AZURE_NOTE = (
    "ShareGPT, 200 prompts: tokens = the run's totals (42659 in) / 200; the GPU count and "
    "tensor parallel size are the test case's tp8_pp1 on the 8-GPU VM (the deployment file it cites says 4, but "
    "a bf16 70B does not fit four 40GB A100s); TTFT and ITL are the printed medians"
)


def _per_request(total: int, requests: int) -> int:
    """A run's token total per request, to the nearest token."""
    return int(total / requests + 0.5)


ROWS: tuple[Measurement, ...] = (
    # Llama 3.1 405B, bf16, 8 x MI300X, tensor parallel 8, ~80-token prompts, batches of 1 to 256.
    *(
        Measurement(f"llama-405b-8xmi300x-sonnet80-b{batch}", "meta-llama/Llama-3.1-405B-Instruct", "MI300X", 8,
                    _per_request(tokens_in, batch), _per_request(tokens_out, batch), batch, tput, ttft, itl,
                    "median", _DSTACK_MI300X, "2024-10-09", family="llama-3.1", v0_engine=True,
                    note=f"{_DSTACK_NOTE}; totals {tokens_in} in, {tokens_out} out")
        for batch, tokens_in, tokens_out, tput, ttft, itl in (
            # batch, total input and output tokens, output tok/s, median TTFT ms, median ITL ms
            (1, 80, 85, 18.75, 314.58, 49.66),
            (4, 320, 288, 53.18, 397.41, 54.54),
            (16, 1279, 936, 142.52, 1207.28, 58.60),
            (64, 5189, 3842, 195.93, 2811.65, 202.67),
            (256, 20829, 15376, 345.83, 10570.10, 403.86),
        )
    ),
    # The same layout with one 10000-token prompt (122 tokens out).
    Measurement("llama-405b-8xmi300x-sonnet10000-b1", "meta-llama/Llama-3.1-405B-Instruct", "MI300X", 8,
                10000, 122, 1, 5.85, 12286.18, 66.38, "median", _DSTACK_MI300X, "2024-10-09",
                family="llama-3.1", v0_engine=True, note=_DSTACK_NOTE),
    # The same layout at 3 requests/s: 900 requests, 826091 tokens in and 135000 out in total. The offered rate
    # is beyond what the layout serves (the run completes about 1 request/s).
    Measurement("llama-405b-8xmi300x-rate3", "meta-llama/Llama-3.1-405B-Instruct", "MI300X", 8,
                _per_request(826091, 900), _per_request(135000, 900), 0, 154.95, 274705.84, 451.46, "median",
                _DSTACK_MI300X_RATE, "2024-10-09", family="llama-3.1", request_rate=3.0,
                requests=900, v0_engine=True,
                note="V0 engine (vLLM 0.6.3.dev116, as the rows above); Poisson rate 3 requests/s, 900 requests (the run the write-up names at 3 RPS); tokens = "
                     "the CSV's totals / 900; TTFT and ITL are the CSV's medians"),
    # Llama 3.1 70B and 405B, FP8 weights (AMD's Quark checkpoints of these models: the catalog's facts of the
    # originals with fp8 weights), 8 x MI300X, tensor parallel 8, offline batches of 128 or 2048 tokens in and
    # 2048 out. Output tokens/s = batch x 2048 / the published batch latency; TTFT and ITL are not published.
    *(
        Measurement(f"llama-{size.lower()}-fp8-8xmi300x-{isl}-2048-b{batch}", f"meta-llama/Llama-3.1-{size}-Instruct",
                    "MI300X", 8, isl, 2048, batch, batch * 2048 / seconds, None, None, "mean", _ROCM_DEV_DOCKER,
                    "vLLM v0.10.0 image (date not stated)", weight_dtype="fp8",
                    family="llama-3.1", offline=True,
                    note=f"benchmark_latency.py batch {batch}: {seconds} s for {isl} in / 2048 out per prompt; "
                         f"checkpoint amd/Llama-3.1-{size}-Instruct-FP8-KV")
        for size, isl, batch, seconds in (
            ("70B", 128, 1, 17.236), ("70B", 128, 8, 19.677), ("70B", 128, 32, 24.932), ("70B", 128, 128, 46.484),
            ("70B", 2048, 1, 17.500), ("70B", 2048, 32, 25.966), ("70B", 2048, 128, 52.394),
            ("405B", 128, 1, 48.453), ("405B", 128, 8, 54.226), ("405B", 128, 32, 68.901),
            ("405B", 128, 128, 117.027), ("405B", 2048, 128, 125.471),
        )
    ),
    # Llama 3.3 70B Instruct, bf16, 8 x A100 40GB, tensor parallel 8, ShareGPT, at 1, 4 and 16 requests/s... The
    # four runs send the same 200 prompts (seed 0) one after another to one server with vLLM's prefix cache on
    # (the default of its V1 engine), so from the second run on the prompts are cached: their TTFT (printed
    # 49.5, 58.1 and 349.8 ms) is not a prefill and is left out. The 200-prompt burst's median of 349.8 ms is
    # below the 1.2 s that half of its 42659 prompt tokens need at the eight GPUs' peak bf16 rate (312 TFLOP/s
    # each), which shows it.
    *(
        Measurement(f"llama-3.3-70b-8xa100-40gb-sharegpt-rate{rate:g}", "meta-llama/Llama-3.3-70B-Instruct",
                    "A100-40GB", 8, _per_request(42659, 200), _per_request(tokens_out, 200), 0, tput, ttft, itl,
                    "median", _AZURE_A100, _AZURE_RUN, family="llama-3.3", request_rate=rate,
                    requests=200, varied_lengths=True, note=f"{_AZURE_NOTE}; {tokens_out} tokens out")
        for rate, tokens_out, tput, ttft, itl in (
            # rate, total output tokens, output tok/s, median TTFT ms (first run only), median ITL ms
            (1.0, 42722, 208.177, 56.3722, 24.3097),
            (4.0, 42449, 673.918, None, 27.1927),
            (16.0, 42770, 1354.37, None, 30.4248),
        )
    ),
    # ... and all 200 prompts at once (request rate inf), an offline batch of 200.
    Measurement("llama-3.3-70b-8xa100-40gb-sharegpt-b200", "meta-llama/Llama-3.3-70B-Instruct", "A100-40GB", 8,
                _per_request(42659, 200), _per_request(42398, 200), 200, 1780.36, None, 35.0514, "median",
                _AZURE_A100, _AZURE_RUN, family="llama-3.3", requests=200, varied_lengths=True,
                note=f"{_AZURE_NOTE}; 42398 tokens out; request rate inf, so concurrency = 200"),
)
"""The rows this module adds to ``performance_references.REFERENCES``."""
