"""Published vLLM V1 serving measurements from sources searched for while the performance model was being changed.

Every row carries ``found_after_fit=6``: these sources are the model's sixth clean test, held out whole (rule 6 of
``bench/performance_references.py``) and read only after the model was committed (b47a2ae). Figures are copied as
the source gives them, rounded to two decimals.

Source: Scicom's llm-benchmaxxing harness
(https://github.com/Scicom-AI-Enterprise-Organization/llm-benchmaxxing, results committed at 73674200b8ec), which
starts ``vllm serve`` on RunPod pods of 8 GPUs and runs ``vllm bench serve --save-result``: Qwen3-32B (bf16) at
tensor parallel 8 on 8 x H100 SXM, 8 x H200 SXM and 8 x B200, runs of 2026-01-28 and 2026-01-29. Every run is the
random dataset at a range ratio of 0 with ``--ignore-eos`` (fixed lengths: 1024, 2048, 4096, 8192 or 15000 tokens in,
128 out), ``--backend vllm`` on ``/v1/completions``, 100 prompts at ``--max-concurrency 100`` and an infinite
request rate: every prompt at once. The H100 and B200 figures are the JSON files' (``output_throughput``,
``median_ttft_ms``, ``median_itl_ms``); the H200 ones the printed result blocks of the logs. Not stated: the vLLM
release (async scheduling taken as off, as for every source that states none) and the server's flags beyond its
parallel sizes (the harness's default memory utilisation is 0.9, vLLM's); on H100 and B200 the model was served from
a local folder named for Qwen3-32B, taken as Qwen/Qwen3-32B in bf16 (the H200 logs print that id).

Left out, from the same search: the harness's gpt-oss-120b runs (a fine-tune whose weight format is not stated), its
GLM runs (no identifiable checkpoint) and its data-parallel runs; RunPod's Qwen3-8B tuning sweep on an H100 (a
request rate under a client cap, which the model does not describe, and server flags the rows cannot carry); a
Kimi-K2.5 run on 8 x H200 (a model outside the catalog, with a reasoning parser and throughput only); and the
pegainfer ledgers' vLLM baselines (Qwen3.5-4B, a hybrid model outside the catalog, and a Qwen3-4B run on an RTX 5090
past saturation whose prompt count and statistic do not match the bench's medians).

Import this module through ``performance_references``, not before it (it imports ``Measurement`` from there).
"""

from __future__ import annotations

from performance_references import Measurement

_FOUND = 6

_SCICOM = (
    "https://github.com/Scicom-AI-Enterprise-Organization/llm-benchmaxxing/blob/"
    "73674200b8ecbfbc3c77ab49fa9ffed9fbed4016/benchmarks/"
)
_FOLDERS = {
    "H100-80GB": ("h100", ("runpod_h100sxm/benchmark_results_qwen3_32b_h100sxm_runpod/"
                           "run_1_TP8_DP1_CTX{tin}_C100_P100_O128.json")),
    "B200": ("b200", "runpod_b200/benchmark_results_qwen3_32b_b200/run_1_TP8_DP1_CTX{tin}_C100_P100_O128.json"),
    "H200": ("h200", ("runpod_h200sxm/benchmark_results_qwen3_32b_h200sxm/"
                      "benchmark_qwen3_32b_h200sxm_run_1_TP8_DP1_CTX{tin}_C100_P100_O128.txt")),
}
"""Each GPU's short name in the rows' keys and its result files."""

ROWS: tuple[Measurement, ...] = tuple(
    Measurement(f"scicom-qwen3-32b-{_FOLDERS[gpu][0]}-tp8-{tin}-128-c100", "Qwen/Qwen3-32B", gpu, 8, tin, 128, 100,
                tput, ttft, itl, "median", _SCICOM + _FOLDERS[gpu][1].format(tin=tin), date, family="qwen3",
                requests=100, found_after_fit=_FOUND,
                note=("vllm bench serve --backend vllm, /v1/completions, random, range ratio 0, --ignore-eos, 100 "
                      "prompts at --max-concurrency 100 and request rate inf (all at once); vLLM release and server "
                      "flags beyond -tp 8 not recorded; TTFT and ITL are the medians"))
    for gpu, tin, tput, ttft, itl, date in (
        ("H100-80GB", 1024, 3710.63, 1340.18, 9.62, "2026-01-29"),
        ("H100-80GB", 2048, 3539.69, 1375.08, 10.64, "2026-01-29"),
        ("H100-80GB", 4096, 2091.59, 2512.55, 12.76, "2026-01-29"),
        ("H100-80GB", 8192, 1109.25, 5022.65, 17.01, "2026-01-29"),
        ("H100-80GB", 15000, 623.97, 9140.6, 24.61, "2026-01-29"),
        ("B200", 1024, 5368.23, 855.31, 7.46, "2026-01-29"),
        ("B200", 2048, 5165.61, 854.72, 7.95, "2026-01-29"),
        ("B200", 4096, 3207.35, 1561.63, 8.93, "2026-01-29"),
        ("B200", 8192, 1816.02, 3019.8, 10.79, "2026-01-29"),
        ("B200", 15000, 1071.49, 5373.39, 13.91, "2026-01-29"),
        ("H200", 1024, 3918.62, 1230.81, 8.58, "2026-01-28"),
        ("H200", 2048, 3805.06, 1228.86, 9.39, "2026-01-28"),
        ("H200", 4096, 2226.81, 2347.3, 10.95, "2026-01-28"),
        ("H200", 8192, 1162.45, 4822.26, 14.14, "2026-01-28"),
        ("H200", 15000, 644.24, 9062.07, 19.54, "2026-01-28"),
    )
)
"""The rows found for the sixth clean test."""
