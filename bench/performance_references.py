"""Published vLLM serving measurements the performance model (capacity/performance.py) is fitted and judged on.

Each row: where it was published (URL, date), the layout (model, GPU, tensor/pipeline parallel sizes, weight
dtype), the workload (input and output tokens per request, and a closed-loop concurrency as in
``vllm bench serve --max-concurrency`` or an offline batch, which the model treats alike) and what was measured:
output tokens/s over the run, TTFT and ITL in milliseconds with the statistic the source reports.

The split (rule written 2026-12-07, before the constants were refitted on it; :func:`split_rule` applies it, no
row carries a hand-set flag):

1. Outside the model's domain: rows measured on vLLM's V0 engine (``Measurement.v0_engine``), set only where the
   source states a vLLM release below 0.8 (the first to run V1 by default) or a date before 2025-01-27 (V1's first
   release, 0.7.0, as an opt-in alpha: https://blog.vllm.ai/2025/01/27/v1-alpha-release.html); the row's note
   gives the evidence. They are neither fitted nor held out: ``performance_bench.py`` prints their errors apart
   as "V0 engine".
2. Rows run at a ``--request-rate`` are never fitted: they are held out and reported apart as "rate mode".
3. Two multi-row sources are held out whole, both on H200: vLLM's CI latency benchmark (three layouts, one row
   each: alternating would fit a layout's only row) and the gpt-oss-20b sweep (the only MXFP4 mixture of experts
   and the only harness outside vLLM's own benchmarks). Chosen so that one GPU type, one weight format and one
   harness are judged wholly out of sample, as H200 was in the previous split.
4. Any other source with fewer than 3 remaining rows is held out whole.
5. Within each other source, the remaining rows sorted by key alternate fitted / held out, starting with fitted.
6. Rows with ``found_after_fit`` equal to :data:`CLEAN_TEST` come from sources searched for while the model's
   structure and constants were last changed and read only after those were committed; they are held out whole
   (rules 1 and 2 still apply first) and ``performance_bench.py`` also reports them apart as "found after fit".
7. Rows of an earlier clean test (``found_after_fit`` above 0 and below :data:`CLEAN_TEST`; the first: sources
   searched for after 8a8fabe, the second after c6e7ab7, each predicted once as it came, in docs/capacity.md) are
   split like any other source (rules 4 and 5): once a clean test is recorded, half of its rows are fitted, so the
   next fit sees more GPUs, batch sizes and lengths than the 18 rows of rule 5 alone.

The previous split (hand-set flags: within a source with fitted rows one row per GPU type and family held out, a
source added after a fit held out whole) gave, on 17 fitted rows with 14 constants: fitted median 1% throughput,
30% TTFT, 0% ITL; held out (40 rows) 17%, 36%, 12%.

Gaps, said plainly: no L40S row with a full workload description was found in the sources searched (vLLM issues
and pull requests, vLLM's CI benchmark pages, vendors' and users' blogs); H200 has only the rows of
``performance_references_nvidia.py`` (vLLM's batch-8 latency benchmark of Llama 8B, Llama 3 70B at tensor parallel 4
and Mixtral 8x7B at 2, without TTFT or ITL, and a gpt-oss-20b sweep from a custom harness). Rows whose TTFT or ITL
was not published carry ``None`` there. ``performance_references_more.py`` adds dense 70B-class rows (Llama 3.3
70B on 8 x A100 40GB, FP8 Llama 3.1 70B on 8 x MI300X), MI300X rows with TTFT and ITL (Llama 3.1 405B bf16, on
the V0 engine) and the only rows at a request rate; still none for a mixture of experts on A100 40GB or MI300X,
nor for a 7B-8B model on L4. ``performance_references_fresh.py`` (found after the fit, rule 6) adds H100, A100 80GB and
H200 closed loops and bursts from GPUStack's performance lab, kvcached and silybench-data; still no L40S row.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Measurement:
    """One published measurement."""

    key: str
    model: str
    gpu: str
    tensor_parallel_size: int
    input_tokens: int
    output_tokens: int
    concurrency: int
    output_tokens_per_s: float
    ttft_ms: float | None
    itl_ms: float | None
    statistic: str
    """What the TTFT and ITL figures are (mean, median)."""
    source: str
    published: str
    held_out: bool = False
    """Set by :func:`split_rule` from the rule of the module's docstring, never by hand."""
    weight_dtype: str | None = None
    pipeline_parallel_size: int = 1
    family: str = ""
    note: str = ""
    request_rate: float | None = None
    """Requests/s of a ``--request-rate`` (Poisson) run, predicted in rate mode; ``None`` for a closed loop or an
    offline batch. A rate row's ``concurrency`` is the run's ``--max-concurrency`` cap, 0 when it had none."""
    requests: int | None = None
    """Requests the run sent (``--num-prompts``), where the source states it: a rate row with a count is predicted
    as a finite run (arrivals over ``requests / request_rate`` seconds, throughput over the makespan)."""
    found_after_fit: int = 0
    """The clean test this row's source was found for (0: none): :data:`CLEAN_TEST`, the latest, is held out whole
    and reported apart as the cleanest test of the model (rule 6 of the module's docstring); an earlier one is
    split like any other source (rule 7)."""
    async_scheduling: bool = False
    """vLLM's async scheduling was on: the source states vLLM 0.14.0 or later (on by default from that release,
    https://github.com/vllm-project/vllm/releases/tag/v0.14.0, but not with pipeline parallelism) or passes
    ``--async-scheduling``; off for earlier releases and for sources that state no release."""
    v0_engine: bool = False
    """Measured on vLLM's V0 engine (the source states a release below 0.8 or a date before V1 existed): outside
    the model's domain, reported apart."""
    varied_lengths: bool = False
    """The requests' output lengths vary (they stop at end of sequence, or come from a dataset): a closed loop's
    clients drift apart, so their prompts do not arrive together."""
    logged_kv_cache_tokens: int | None = None
    """The KV-cache tokens per engine the server's start-up log printed ("GPU KV cache size"), where the source gives
    them (a run at a lower ``--gpu-memory-utilization``, say); ``None``: planned as ``pulumi-vllm size`` plans them."""
    offline: bool = False
    """Run through vLLM's ``LLM`` class (``benchmark_latency.py``, offline batches) rather than ``vllm serve``: the
    engine's default ``max_num_batched_tokens`` is the ``LLM`` class's (16384 on GPUs of 70 GiB or more but A100s,
    else 8192) instead of the server's (8192, else 2048; ``EngineArgs.get_batch_defaults`` in
    vllm/engine/arg_utils.py). No source here sets it, so every row runs at its default."""


_TT_QWEN3 = "https://github.com/tenstorrent/tt-inference-server/issues/340"
_TT_DEEPSEEK = "https://github.com/tenstorrent/tt-inference-server/issues/356"
_TT_QWEN25_72B = "https://github.com/tenstorrent/tt-inference-server/issues/143"
_WMX = "https://ai.wmx.dev/benchmarks"
_OCI = "https://blogs.oracle.com/cloud-infrastructure/serving-llama-31-405b-model-with-amd-mi300x-gpus"
_MUSGRAVE = "https://johnmusgrave.com/p/vllm-throughput-latency-sweep-on"

_OCI_NOTE = "V0 engine: published 2024-09, before vLLM's first V1 release (0.7.0, 2025-01-27)"

_TT_NOTE = (
    "GPU reference run of tt-inference-server's benchmark sweep (vLLM serving); output tokens/s = "
    "requests/s x output tokens; ITL is the sweep's mean TPOT"
)

REFERENCES: tuple[Measurement, ...] = (
    # Qwen3-1.7B, dense, 1 x A100 (80GB assumed), concurrency 1.
    Measurement("qwen3-1.7b-a100-128-128", "Qwen/Qwen3-1.7B", "A100-80GB", 1, 128, 128, 1,
                1.661 * 128, 11.4, 4.6, "mean", _TT_QWEN3, "2025-06-24", family="qwen3", note=_TT_NOTE),
    Measurement("qwen3-1.7b-a100-1024-128", "Qwen/Qwen3-1.7B", "A100-80GB", 1, 1024, 128, 1,
                1.565 * 128, 26.4, 4.8, "mean", _TT_QWEN3, "2025-06-24", family="qwen3", note=_TT_NOTE),
    Measurement("qwen3-1.7b-a100-2048-128", "Qwen/Qwen3-1.7B", "A100-80GB", 1, 2048, 128, 1,
                1.506 * 128, 30.9, 5.0, "mean", _TT_QWEN3, "2025-06-24", family="qwen3", note=_TT_NOTE),
    Measurement("qwen3-1.7b-a100-128-1024", "Qwen/Qwen3-1.7B", "A100-80GB", 1, 128, 1024, 1,
                0.208 * 1024, 14.0, 4.7, "mean", _TT_QWEN3, "2025-06-24", family="qwen3", note=_TT_NOTE),
    # Qwen3-30B-A3B, mixture of experts (128 experts, 8 per token), 1 x A100 80GB, concurrency 1.
    Measurement("qwen3-30b-a3b-a100-128-128", "Qwen/Qwen3-30B-A3B", "A100-80GB", 1, 128, 128, 1,
                0.795 * 128, 35.7, 9.6, "mean", _TT_QWEN3, "2025-07-18", family="qwen3-moe", note=_TT_NOTE),
    Measurement("qwen3-30b-a3b-a100-1024-128", "Qwen/Qwen3-30B-A3B", "A100-80GB", 1, 1024, 128, 1,
                0.762 * 128, 70.3, 9.8, "mean", _TT_QWEN3, "2025-07-18", family="qwen3-moe", note=_TT_NOTE),
    Measurement("qwen3-30b-a3b-a100-3072-128", "Qwen/Qwen3-30B-A3B", "A100-80GB", 1, 3072, 128, 1,
                0.731 * 128, 90.2, 10.1, "mean", _TT_QWEN3, "2025-07-18", family="qwen3-moe",
                note=_TT_NOTE),
    Measurement("qwen3-30b-a3b-a100-128-1024", "Qwen/Qwen3-30B-A3B", "A100-80GB", 1, 128, 1024, 1,
                0.101 * 1024, 27.0, 9.7, "mean", _TT_QWEN3, "2025-07-18", family="qwen3-moe", note=_TT_NOTE),
    # DeepSeek-R1-0528 AWQ (4-bit weights), mixture of experts, 8 x H100, tensor parallel 8, concurrency 1.
    Measurement("deepseek-r1-awq-8xh100-128-128", "deepseek-ai/DeepSeek-R1-0528", "H100-80GB", 8, 128, 128, 1,
                0.478 * 128, 47.3, 16.1, "mean", _TT_DEEPSEEK, "2025-07-10", weight_dtype="int4",
                family="deepseek-moe", note=_TT_NOTE),
    Measurement("deepseek-r1-awq-8xh100-1024-128", "deepseek-ai/DeepSeek-R1-0528", "H100-80GB", 8, 1024, 128, 1,
                0.464 * 128, 105.3, 16.1, "mean", _TT_DEEPSEEK, "2025-07-10", weight_dtype="int4",
                family="deepseek-moe", note=_TT_NOTE),
    Measurement("deepseek-r1-awq-8xh100-3072-128", "deepseek-ai/DeepSeek-R1-0528", "H100-80GB", 8, 3072, 128, 1,
                0.452 * 128, 131.7, 16.4, "mean", _TT_DEEPSEEK, "2025-07-10", weight_dtype="int4",
                family="deepseek-moe", note=_TT_NOTE),
    Measurement("deepseek-r1-awq-8xh100-128-1024", "deepseek-ai/DeepSeek-R1-0528", "H100-80GB", 8, 128, 1024, 1,
                0.061 * 1024, 27.3, 16.1, "mean", _TT_DEEPSEEK, "2025-07-10", weight_dtype="int4",
                family="deepseek-moe", note=_TT_NOTE),
    # Qwen2.5-72B-Instruct, dense, 2 x H100, tensor parallel 2 (bf16), concurrency 1, 8 requests per point. A
    # source with no fitted row: held out whole (read 2026-12-06).
    *(
        Measurement(f"qwen2.5-72b-2xh100-{isl}-{osl}", "Qwen/Qwen2.5-72B-Instruct", "H100-80GB", 2, isl, osl, 1,
                    rps * osl, ttft, tpot, "mean", _TT_QWEN25_72B, "2025-04-01", family="qwen2.5",
                    note=_TT_NOTE)
        for isl, osl, rps, ttft, tpot in (
            (128, 128, 0.252, 41.1, 30.9), (128, 1024, 0.032, 35.0, 30.9), (1024, 128, 0.246, 129.2, 31.0),
            (2048, 128, 0.245, 149.5, 31.0), (3072, 128, 0.237, 270.9, 31.1), (4096, 128, 0.224, 505.1, 31.1),
        )
    ),
    # Qwen2.5-0.5B, dense, 1 x L4 (GKE g2-standard-4), vLLM 0.23, 256 in / 128 out, closed-loop sweep.
    Measurement("qwen2.5-0.5b-l4-c1", "Qwen/Qwen2.5-0.5B-Instruct", "L4", 1, 256, 128, 1,
                168, 27.0, 5.1, "median", _WMX, "2026", family="qwen2.5", async_scheduling=True),
    Measurement("qwen2.5-0.5b-l4-c2", "Qwen/Qwen2.5-0.5B-Instruct", "L4", 1, 256, 128, 2,
                367, 37.8, 5.2, "median", _WMX, "2026", family="qwen2.5", async_scheduling=True),
    Measurement("qwen2.5-0.5b-l4-c4", "Qwen/Qwen2.5-0.5B-Instruct", "L4", 1, 256, 128, 4,
                698, 50.1, 5.3, "median", _WMX, "2026", family="qwen2.5", async_scheduling=True),
    Measurement("qwen2.5-0.5b-l4-c8", "Qwen/Qwen2.5-0.5B-Instruct", "L4", 1, 256, 128, 8,
                1312, 60.9, 5.5, "median", _WMX, "2026", family="qwen2.5", async_scheduling=True),
    Measurement("qwen2.5-0.5b-l4-c16", "Qwen/Qwen2.5-0.5B-Instruct", "L4", 1, 256, 128, 16,
                2277, 103.8, 6.0, "median", _WMX, "2026", family="qwen2.5", async_scheduling=True),
    Measurement("qwen2.5-0.5b-l4-c32", "Qwen/Qwen2.5-0.5B-Instruct", "L4", 1, 256, 128, 32,
                3773, 135.3, 7.1, "median", _WMX, "2026", family="qwen2.5", async_scheduling=True),
    # Llama 3.1 405B FP8, dense, 8 x MI300X, tensor parallel 8, vLLM's offline latency benchmark, 128 in / 128 out;
    # the batch size is the concurrency. Only throughput is published per batch. Published 2024-09, before vLLM
    # had a V1 engine (its first release, 0.7.0, is of 2025-01-27): V0.
    Measurement("llama-405b-fp8-8xmi300x-b1", "meta-llama/Llama-3.1-405B-Instruct-FP8", "MI300X", 8, 128, 128, 1,
                36, None, None, "mean", _OCI, "2024-09", weight_dtype="fp8", family="llama-3.1",
                v0_engine=True, note=_OCI_NOTE),
    Measurement("llama-405b-fp8-8xmi300x-b8", "meta-llama/Llama-3.1-405B-Instruct-FP8", "MI300X", 8, 128, 128, 8,
                258, None, None, "mean", _OCI, "2024-09", weight_dtype="fp8", family="llama-3.1",
                v0_engine=True, note=_OCI_NOTE),
    Measurement("llama-405b-fp8-8xmi300x-b32", "meta-llama/Llama-3.1-405B-Instruct-FP8", "MI300X", 8, 128, 128, 32,
                798, None, None, "mean", _OCI, "2024-09", weight_dtype="fp8", family="llama-3.1",
                v0_engine=True, note=_OCI_NOTE),
    Measurement("llama-405b-fp8-8xmi300x-b128", "meta-llama/Llama-3.1-405B-Instruct-FP8", "MI300X", 8, 128, 128, 128,
                1585, None, None, "mean", _OCI, "2024-09", weight_dtype="fp8", family="llama-3.1",
                v0_engine=True, note=_OCI_NOTE),
    Measurement("llama-405b-fp8-8xmi300x-b256", "meta-llama/Llama-3.1-405B-Instruct-FP8", "MI300X", 8, 128, 128, 256,
                1846, None, None, "mean", _OCI, "2024-09", weight_dtype="fp8", family="llama-3.1",
                v0_engine=True, note=_OCI_NOTE),
    # Llama 3.1 8B, dense, 1 x A100 40GB, vLLM 0.23, 1024 in / 128 out; the page gives "about 75 tokens/s" at
    # concurrency 1 and "a 6.6x gain" at 8.
    Measurement("llama-8b-a100-40gb-c1", "meta-llama/Llama-3.1-8B-Instruct", "A100-40GB", 1, 1024, 128, 1,
                75, None, None, "mean", _MUSGRAVE, "2026", family="llama-3.1", async_scheduling=True),
    Measurement("llama-8b-a100-40gb-c8", "meta-llama/Llama-3.1-8B-Instruct", "A100-40GB", 1, 1024, 128, 8,
                75 * 6.6, None, None, "mean", _MUSGRAVE, "2026", family="llama-3.1", async_scheduling=True),
)
"""Every measurement, fitted and held out."""

from performance_references_more import ROWS as _MORE_ROWS  # after Measurement: that module imports it from here

REFERENCES = REFERENCES + _MORE_ROWS

from performance_references_nvidia import ROWS as _NVIDIA_ROWS  # after Measurement: that module imports it too

REFERENCES = REFERENCES + _NVIDIA_ROWS

from performance_references_fresh import ROWS as _FRESH_ROWS

REFERENCES = REFERENCES + _FRESH_ROWS

from performance_references_fresh2 import ROWS as _FRESH2_ROWS

REFERENCES = REFERENCES + _FRESH2_ROWS

from performance_references_fresh2a import ROWS as _FRESH2A_ROWS

REFERENCES = REFERENCES + _FRESH2A_ROWS

from performance_references_fresh3 import ROWS as _FRESH3_ROWS
from performance_references_fresh3a import ROWS as _FRESH3A_ROWS

REFERENCES = REFERENCES + _FRESH3_ROWS + _FRESH3A_ROWS

from performance_references_fresh4 import ROWS as _FRESH4_ROWS

REFERENCES = REFERENCES + _FRESH4_ROWS

from performance_references_fresh5 import ROWS as _FRESH5_ROWS

REFERENCES = REFERENCES + _FRESH5_ROWS

from performance_references_fresh6 import ROWS as _FRESH6_ROWS

REFERENCES = REFERENCES + _FRESH6_ROWS


HELD_OUT_WHOLE = (
    "https://buildkite.com/vllm/performance-benchmark/builds/9515",
    "https://github.com/sariekr/gpu_conc/blob/main/H200/benchmark_summary_20250814_182107.json",
)
"""The two multi-row sources held out whole (rule 3 of the module's docstring)."""

CLEAN_TEST = 6
"""The latest clean test (rule 6): its rows are held out whole; earlier ones are split by rule 7."""


def split_rule(rows: tuple[Measurement, ...]) -> tuple[Measurement, ...]:
    """``rows`` with ``held_out`` set by the rule of the module's docstring (V0 rows keep ``held_out=False``: they
    are in neither split, ``performance_bench.py`` reports them by ``v0_engine``)."""
    by_source: dict[str, list[Measurement]] = {}
    for row in rows:
        if not row.v0_engine and row.request_rate is None:
            by_source.setdefault(row.source, []).append(row)
    held: set[str] = {row.key for row in rows if row.request_rate is not None and not row.v0_engine}
    for source, members in by_source.items():
        ordered = sorted(members, key=lambda row: row.key)
        if source in HELD_OUT_WHOLE or len(ordered) < 3 or any(row.found_after_fit == CLEAN_TEST for row in ordered):
            held.update(row.key for row in ordered)
        else:
            held.update(row.key for index, row in enumerate(ordered) if index % 2 == 1)
    return tuple(replace(row, held_out=row.key in held) for row in rows)


REFERENCES = split_rule(REFERENCES)


def fitted() -> tuple[Measurement, ...]:
    """The rows the constants are fitted on."""
    return tuple(row for row in REFERENCES if not row.held_out and not row.v0_engine)


def held_out() -> tuple[Measurement, ...]:
    """The rows kept out of the fit."""
    return tuple(row for row in REFERENCES if row.held_out)
