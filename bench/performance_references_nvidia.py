"""Published vLLM measurements on NVIDIA H200: vLLM's own per-commit latency benchmark (dense 8B and 70B, and
Mixtral 8x7B at tensor parallel 2) and a closed-loop concurrency sweep of gpt-oss-20b.

Both sources are held out whole (rule 3 of ``bench/performance_references.py``). Figures are copied as the
source prints them; where a row's output tokens/s or ITL is derived from printed figures, the note says how.

Import this module through ``performance_references`` (which appends ``ROWS`` to ``REFERENCES``), not before it.
"""

from __future__ import annotations

from performance_references import Measurement

_VLLM_PERF_H200 = "https://buildkite.com/vllm/performance-benchmark/builds/9515"
"""vLLM's performance-benchmark pipeline, one build on H200: the latency tests run ``benchmark_latency.py`` (one
offline batch of 8 prompts, 32 tokens in and 128 out each, end-to-end latency of the batch over 15 iterations after
5 warm-up ones) with the layouts of ``.buildkite/nightly-benchmarks/tests/latency-tests.json``
(https://github.com/vllm-project/vllm/blob/main/.buildkite/nightly-benchmarks/tests/latency-tests.json):
Llama 8B at tensor parallel 1, Llama 3 70B at 4, Mixtral 8x7B at 2, ``load_format: dummy`` (random weights in the
checkpoint's bf16). The build page shows no date."""

_GPU_CONC_H200 = "https://github.com/sariekr/gpu_conc/blob/main/H200/benchmark_summary_20250814_182107.json"
"""A closed-loop sweep of openai/gpt-oss-20b served by vLLM's OpenAI server on one H200 (``concurrency.py`` in the
same repository: N workers behind a semaphore of N keep N streaming chat requests in flight for 180 s; prompts of
about 1000 tokens, ``max_tokens`` 1000). The summary prints, per concurrency, output tokens/s over the run,
requests/s, the median TTFT and the median per-request output speed (tokens after the first over the time after
the first)."""

_LATENCY_NOTE = (
    "offline batch of 8 (benchmark_latency.py): output tokens/s = 8 x 128 / the printed mean latency of the batch; "
    "no TTFT or ITL is printed"
)
_GPU_CONC_NOTE = (
    "custom streaming harness over vLLM's OpenAI server, not vllm bench: input is the harness's 1000-token target "
    "(750 words of text), not a measured count; output tokens = the printed output tokens/s / requests/s, the mean "
    "completion length (max_tokens 1000); ITL = 1000 / the printed median output speed per request"
)


def _batch_of_8(latency_ms: float) -> float:
    """Output tokens/s of one batch of 8 requests of 128 output tokens that took ``latency_ms``."""
    return 8 * 128 / (latency_ms / 1000)


ROWS: tuple[Measurement, ...] = (
    # vLLM's latency benchmark on H200: batch 8, 32 tokens in, 128 out, mean latency of the batch in ms.
    Measurement("llama-3.1-8b-h200-b8-32-128", "meta-llama/Llama-3.1-8B-Instruct", "H200", 1, 32, 128, 8,
                _batch_of_8(833.421), None, None, "mean", _VLLM_PERF_H200, "build 9515 (undated)", offline=True,
                family="llama-3.1", note=f"{_LATENCY_NOTE}; mean latency 833.421 ms; the page names the model llama-3.1 8B, not the "
                     "checkpoint (the stored copy of the test file names Meta-Llama-3-8B, of the same shapes)"),
    Measurement("llama-3-70b-4xh200-b8-32-128", "meta-llama/Meta-Llama-3-70B-Instruct", "H200", 4, 32, 128, 8,
                _batch_of_8(2077.53), None, None, "mean", _VLLM_PERF_H200, "build 9515 (undated)", offline=True,
                family="llama-3", note=f"{_LATENCY_NOTE}; mean latency 2077.53 ms"),
    Measurement("mixtral-8x7b-2xh200-b8-32-128", "mistralai/Mixtral-8x7B-Instruct-v0.1", "H200", 2, 32, 128, 8,
                _batch_of_8(1917.44), None, None, "mean", _VLLM_PERF_H200, "build 9515 (undated)", offline=True,
                family="mixtral", note=f"{_LATENCY_NOTE}; mean latency 1917.44 ms"),
    # gpt-oss-20b (mixture of experts, MXFP4 expert weights), 1 x H200, closed loop at 1 to 16 requests in flight.
    # The sweep's higher levels (32 to 1024) are left out: their requests/s x mean latency (Little's law) is about
    # 20 requests in flight whatever the level, so the harness never reached them.
    *(
        Measurement(f"gpt-oss-20b-h200-c{concurrency}", "openai/gpt-oss-20b", "H200", 1, 1000,
                    int(tokens_per_s / requests_per_s + 0.5), concurrency, tokens_per_s, ttft, 1000 / speed,
                    "median", _GPU_CONC_H200, "2025-08-14", family="gpt-oss", varied_lengths=True,
                    note=f"{_GPU_CONC_NOTE}; {requests_per_s:.4f} requests/s, median speed {speed:.2f} tokens/s")
        for concurrency, tokens_per_s, requests_per_s, ttft, speed in (
            # concurrency, output tok/s, requests/s, median TTFT ms, median output speed per request (tok/s)
            (1, 221.20318353876516, 0.23799753105635021, 38.999080657958984, 220.78822550910246),
            (4, 733.0471580299304, 0.7789926469212468, 53.481340408325195, 184.750733792689),
            (8, 1274.270431954969, 1.357930775840443, 57.90579319000244, 162.05753411348525),
            (16, 1769.559317374485, 1.90544381313342, 66.04170799255371, 110.68092541072843),
        )
    ),
)
"""The rows this module adds to ``performance_references.REFERENCES``."""
