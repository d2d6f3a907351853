"""Published vLLM V1 serving measurements from sources searched for after the performance model was fixed.

Every row carries ``found_after_fit=1``: these sources were the model's first clean test (predicted once as they
came, in docs/capacity.md's "The clean test") and are now split like any other source (rule 7 of
``bench/performance_references.py``). Figures are copied as the source prints
them; where a row's tokens per request are derived from the run's totals, the note says how.

Sources:

- GPUStack's performance lab (https://github.com/gpustack/gpustack, ``docs/performance-lab/``): per model and GPU,
  the full ``vllm bench serve`` output of a baseline ``vllm serve <model>`` (vLLM v0.11.0 unless the row says
  otherwise; no flag but the tensor parallel size and, where a note says so, ``--max-model-len``; so vLLM's V1
  defaults: prefix caching and chunked prefill on), sent through ``--backend openai-chat --endpoint
  /v1/chat/completions`` (the chat template's tokens are added to each prompt and not counted in the printed input
  totals). The pages state no warm-up run and no date, nor whether the runs of one page shared one server (and so
  its prefix cache; the 4000- and 2000-token random runs both draw 500 prompts with seed 42, so their prompts may
  begin alike). Two kinds of run:

  - closed loops: 100 ShareGPT prompts at ``--max-concurrency`` 1, 2, 4 and 8 (the Qwen3-8B "latency" page, "a
    single NVIDIA H100 SXM GPU"; 23260 tokens in, 22061 out in total), and at 4 on the gpt-oss-120b, DeepSeek-R1
    and GLM-4.6 pages;
  - bursts: no ``--max-concurrency`` and the default infinite request rate, so all N prompts arrive at once (the
    output prints "Peak concurrent requests" equal to N): an offline batch of N sent to the server. ShareGPT,
    1000 prompts; and the random dataset (``--seed 42``, no ``--ignore-eos``, so some requests stop early) at
    32000 in / 100 out (100 prompts), 4000 / 200 (500), 2000 / 100 (500) and 128 / 4 (1000).

  Pages and hardware: Qwen3-14B on "a single NVIDIA H100 SXM GPU"; Qwen3-32B and gpt-oss-20b on "NVIDIA H100 GPUs"
  with no tensor parallel flag (one GPU); Qwen3-32B on "NVIDIA A100 GPUs", which the published docs of that page
  (https://docs.gpustack.ai/2.3/zh/performance-lab/qwen3-32b/a100/) give as a single A100 SXM 80GB; gpt-oss-20b on
  "a single NVIDIA A100 SXM 80GB GPU"; gpt-oss-120b
  on "NVIDIA H100 GPUs" (vLLM v0.10.2, ``--max-model-len 32768``; its parallelism runs at tensor parallel 2 and 4
  and pipeline parallel 2 add ``--async-scheduling``, not vLLM's default then, as those rows' notes say) and on
  "2 x NVIDIA A100 SXM 80GB GPUs on a single node" (the same cases at tensor parallel 1, and a tensor parallel 2
  run with ``--async-scheduling``);
  Qwen3-235B-A22B-Instruct-2507 on "NVIDIA H100 GPUs" at ``-tp 8`` (bf16) and its FP8 checkpoint at ``-tp 4``;
  DeepSeek-R1-0528 (FP8 weights) and GLM-4.6 (bf16) on "NVIDIA H200 GPUs" at ``-tp 8``. The Qwen3-14B A100 page
  (a single "A100 SXM", memory not stated) is left out. gpt-oss-20b stops early on the random prompts (4000 / 200
  asked: 105 tokens out on average).

- kvcached's H100 check of its KV layout (https://github.com/ovg-project/kvcached, ``benchmarks/bench_layout/``):
  ``run_sweep.sh`` starts ``vllm serve Qwen/Qwen3-0.6B --gpu-memory-utilization 0.5 --max-model-len 2048`` on
  one "NVIDIA H100 80GB HBM3" (``H100_results.md``), vLLM 0.19.0; config A ("vanilla") runs no kvcached. Each
  config sends a warm-up of 100 random prompts (seed 1) to the fresh server, then 500 random prompts of 512 tokens
  in / 128 out (``--backend vllm``, the completions endpoint, no chat template) for seeds 42, 99 and 7 one after
  another, saved with ``--save-result``; every run generated all 64000 tokens asked. Prefix caching is vLLM's
  default (on); the seeds draw different random prompts. The rows here are the seed-42 JSON files: ``inf``
  (all 500 at once) and ``--request-rate 16`` (Poisson, no concurrency cap). Dated 2026-05-13 in the JSON.

- silybench-data (https://github.com/tgarg01/silybench-data): one GCP a3-highgpu-1g (1 x H100 SXM 80GB), vLLM
  0.30.0 (``vllm/vllm-openai:v0.30.0``), Qwen/Qwen3-8B in bf16 served with ``--max-model-len 16384
  --gpu-memory-utilization 0.9 --reasoning-parser qwen3`` and thinking off; ``vllm bench serve`` random prompts
  at fixed lengths (every run generated all the tokens asked: output tokens/s over requests/s equals the output
  length), closed loops at 1 to 512 users, 3 repeats each (``experiments/2026-09-24-qwen3-8b-pipeline/
  experiment.yaml``, which calls the campaign a pipeline validation, "not a published result", kept with its raw
  files). The derived results give output tokens/s and the median ITL but TTFT only as p95 and p99, so these rows
  carry no TTFT (the note gives the p95). Prefix caching is vLLM's default (on); whether the repeats reuse
  prompts is not stated.

TTFT and ITL are the medians ``vllm bench serve`` prints ("Median TTFT", "Median ITL"); a burst row's note also
gives the printed median TPOT, which, unlike the median ITL, includes the prefills that stall a request's decode.

Import this module through ``performance_references``, not before it (it imports ``Measurement`` from there).
"""

from __future__ import annotations

from performance_references import Measurement

_GPUSTACK = "https://github.com/gpustack/gpustack/blob/"
_GPUSTACK_QWEN3_8B = (
    _GPUSTACK + "1dbc3b8130da92d31539404545a1aff5c3992f8c/docs/performance-lab/qwen3-8b/h100-latency.md"
)
_GPUSTACK_QWEN3_14B = _GPUSTACK + "7ae332aaf05783e657560ef927c527b156e2536d/docs/performance-lab/qwen3-14b/h100.md"
_GPUSTACK_QWEN3_32B = _GPUSTACK + "10e9444a07c73556f2ef0d10d2b2766bbf54c9c0/docs/performance-lab/qwen3-32b/h100.md"
_GPUSTACK_GPT_OSS_20B = (
    _GPUSTACK + "7b50d5067ddbdeba0739e7f72d6f40e53d3b9a04/docs/performance-lab/gpt-oss-20b/h100.md"
)
_KVCACHED = (
    "https://github.com/ovg-project/kvcached/blob/751b1813acaf2c95b365cfd1c0f342d6791ff7e5/benchmarks/bench_layout/"
)
_KVCACHED_NOTE = (
    "vllm bench serve random 512 in / 128 out, 500 prompts (seed 42; 256000 in, 64000 out in total) after a "
    "100-prompt warm-up on the same server; --gpu-memory-utilization 0.5 --max-model-len 2048; TTFT and ITL are "
    "the saved medians (median TPOT {tpot:.2f} ms)"
)
_GPUSTACK_GPT_OSS_120B = (
    _GPUSTACK + "72aee9dd195ff5c9bf3a4886add80038ce79aef8/docs/performance-lab/gpt-oss-120b/h100.md"
)
_GPUSTACK_DEEPSEEK_R1 = (
    _GPUSTACK + "a5c9fafc3022e81779c2c5ade32c5b703ce2248c/docs/performance-lab/deepseek-r1/h200.md"
)
_GPUSTACK_GLM_46 = _GPUSTACK + "72aee9dd195ff5c9bf3a4886add80038ce79aef8/docs/performance-lab/glm-4.6/h200.md"
_GPUSTACK_GPT_OSS_20B_A100 = (
    _GPUSTACK + "7ae332aaf05783e657560ef927c527b156e2536d/docs/performance-lab/gpt-oss-20b/a100.md"
)
_GPUSTACK_GPT_OSS_120B_A100 = (
    _GPUSTACK + "1f37f1b8bd79c6b424a0cb55c7abd08a5c2132dc/docs/performance-lab/gpt-oss-120b/a100.md"
)
_GPUSTACK_QWEN3_32B_A100 = (
    _GPUSTACK + "10e9444a07c73556f2ef0d10d2b2766bbf54c9c0/docs/performance-lab/qwen3-32b/a100.md"
)
_A100_STATED = (
    "; the page's hardware line reads 'NVIDIA A100 GPUs'; the published docs of the same page "
    "(https://docs.gpustack.ai/2.3/zh/performance-lab/qwen3-32b/a100/, whose summary table gives the same "
    "figures) name a single NVIDIA A100 SXM 80GB"
)
_SILYBENCH = (
    "https://github.com/tgarg01/silybench-data/blob/93e4887353137e64bd5605fa3d1f4529da0a1dc5/derived/csv/"
    "perf_points.csv"
)
"""Rows of run 20260924T125045Z_h100-80gbx1_qwen3-8b_bf16 (its ``runs/.../result.json`` holds the same figures)."""
_GPUSTACK_QWEN3_235B = (
    _GPUSTACK + "10e9444a07c73556f2ef0d10d2b2766bbf54c9c0/docs/performance-lab/qwen3-235b-a22b/h100.md"
)
_GPUSTACK_DATE = "vLLM v0.11.0 (released 2025-10); the page states no date"
_H100_UNSTATED = (
    "; the page names 'NVIDIA H100 GPUs' (the same lab's Qwen3-8B and Qwen3-14B pages name a single H100 "
    "SXM); the serve command sets no tensor parallel"
)


def _per_request(total: int, requests: int) -> int:
    """A run's token total per request, to the nearest token."""
    return int(total / requests + 0.5)


_LATENCY_NOTE = (
    "ShareGPT, 100 prompts, closed loop at --max-concurrency {c}: tokens = the run's totals (23260 in, 22061 out) "
    "/ 100; TTFT and ITL are the printed medians (median TPOT {tpot} ms)"
)
_BURST_NOTE = (
    "{n} prompts sent at once (no --max-concurrency, request rate inf), so concurrency = {n}; tokens = the run's "
    "totals ({tin} in, {tout} out) / {n}; TTFT and ITL are the printed medians (median TPOT {tpot} ms)"
)

ROWS: tuple[Measurement, ...] = (
    # Qwen3-8B, bf16, 1 x H100 SXM, vLLM v0.11.0, ShareGPT closed loop at concurrency 1, 2, 4 and 8.
    *(
        Measurement(f"qwen3-8b-h100-sharegpt-c{c}", "Qwen/Qwen3-8B", "H100-80GB", 1, _per_request(23260, 100),
                    _per_request(22061, 100), c, tput, ttft, itl, "median", _GPUSTACK_QWEN3_8B, _GPUSTACK_DATE,
                    family="qwen3", requests=100, varied_lengths=True, found_after_fit=1,
                    note=_LATENCY_NOTE.format(c=c, tpot=tpot))
        for c, tput, ttft, itl, tpot in (
            # concurrency, output tok/s, median TTFT ms, median ITL ms, median TPOT ms
            (1, 132.86, 60.38, 7.23, 7.22),
            (2, 257.19, 64.78, 7.28, 7.30),
            (4, 496.88, 60.26, 7.37, 7.40),
            (8, 917.28, 60.77, 7.63, 7.67),
        )
    ),
    # Qwen3-14B and Qwen3-32B (bf16) and gpt-oss-20b (MXFP4 experts) on 1 x H100, and gpt-oss-20b and Qwen3-32B on
    # 1 x A100 80GB, vLLM v0.11.0, all prompts of a run sent at once.
    *(
        Measurement(f"{name}-{label}-{case}-b{n}", model, gpu, 1, _per_request(tin, n), _per_request(tout, n),
                    n, tput, ttft, itl, "median", source, _GPUSTACK_DATE, family=family, requests=n,
                    varied_lengths=case == "sharegpt" or tout != n * nominal_out, found_after_fit=1,
                    note=_BURST_NOTE.format(n=n, tin=tin, tout=tout, tpot=tpot)
                    + ("" if case == "sharegpt" else f"; random dataset, {case.replace('-', ' in / ')} out asked")
                    + hardware[case != "sharegpt"])
        for name, label, model, gpu, family, source, hardware in (
            # name, GPU label, model, GPU, family, source, (note on the hardware for ShareGPT, for random runs)
            ("qwen3-14b", "h100", "Qwen/Qwen3-14B", "H100-80GB", "qwen3", _GPUSTACK_QWEN3_14B, ("", "")),
            ("qwen3-32b", "h100", "Qwen/Qwen3-32B", "H100-80GB", "qwen3", _GPUSTACK_QWEN3_32B,
             (_H100_UNSTATED, _H100_UNSTATED)),
            ("gpt-oss-20b", "h100", "openai/gpt-oss-20b", "H100-80GB", "gpt-oss", _GPUSTACK_GPT_OSS_20B,
             (_H100_UNSTATED, _H100_UNSTATED)),
            ("gpt-oss-20b", "a100", "openai/gpt-oss-20b", "A100-80GB", "gpt-oss", _GPUSTACK_GPT_OSS_20B_A100,
             ("; the page names 'a single NVIDIA A100 SXM 80GB GPU'",) * 2),
            ("qwen3-32b", "a100", "Qwen/Qwen3-32B", "A100-80GB", "qwen3", _GPUSTACK_QWEN3_32B_A100,
             (_A100_STATED + "; served with --max-model-len 32768",
              _A100_STATED + "; served with no flag (so the model's max-model-len, 40960)")),
        )
        for tag, case, n, nominal_out, tin, tout, tput, ttft, itl, tpot in (
            # model/GPU, case, prompts, output tokens asked, total tokens in and out, output tok/s, median TTFT ms,
            # median ITL ms, median TPOT ms
            ("qwen3-14b/h100", "sharegpt", 1000, 0, 217393, 201648, 3173.92, 21872.31, 59.99, 117.46),
            ("qwen3-14b/h100", "32000-100", 100, 100, 3200000, 9855, 25.48, 191051.49, 43.48, 284.52),
            ("qwen3-14b/h100", "4000-200", 500, 200, 1997942, 99803, 438.56, 110734.54, 43.93, 139.68),
            ("qwen3-14b/h100", "2000-100", 500, 100, 998175, 50000, 505.51, 49138.28, 46.01, 231.62),
            ("qwen3-14b/h100", "128-4", 1000, 4, 127698, 4000, 176.06, 18061.13, 581.28, 597.29),
            ("qwen3-32b/h100", "sharegpt", 1000, 0, 217393, 201422, 1131.55, 77291.46, 50.20, 70.72),
            ("qwen3-32b/h100", "32000-100", 100, 100, 3200000, 7681, 6.64, 582757.65, 43.30, 43.36),
            ("qwen3-32b/h100", "4000-200", 500, 200, 1997942, 99790, 102.21, 483375.28, 43.38, 62.08),
            ("qwen3-32b/h100", "2000-100", 500, 100, 998175, 50000, 152.42, 164148.38, 44.80, 84.24),
            ("qwen3-32b/h100", "128-4", 1000, 4, 127698, 4000, 121.66, 21342.36, 1141.11, 1292.78),
            ("qwen3-32b/a100", "sharegpt", 1000, 0, 217393, 201396, 832.43, 105990.93, 61.18, 123.31),
            ("qwen3-32b/a100", "32000-100", 100, 100, 3200000, 7699, 4.32, 892708.86, 48.55, 67.32),
            ("qwen3-32b/a100", "4000-200", 500, 200, 1997942, 99893, 87.48, 564705.97, 51.55, 96.40),
            ("qwen3-32b/a100", "2000-100", 500, 100, 998175, 50000, 120.27, 209108.79, 51.49, 143.96),
            ("qwen3-32b/a100", "128-4", 1000, 4, 127698, 4000, 80.69, 31073.76, 543.22, 544.55),
            ("gpt-oss-20b/a100", "sharegpt", 1000, 0, 215312, 194171, 4620.12, 13063.93, 33.96, 45.15),
            ("gpt-oss-20b/a100", "32000-100", 100, 100, 3200000, 9533, 21.62, 219663.48, 274.32, 278.17),
            ("gpt-oss-20b/a100", "4000-200", 500, 200, 1999249, 53530, 415.64, 61941.78, 129.50, 129.79),
            ("gpt-oss-20b/a100", "2000-100", 500, 100, 999120, 47224, 813.35, 32083.12, 119.09, 119.20),
            ("gpt-oss-20b/a100", "128-4", 1000, 4, 127755, 4000, 735.40, 1971.28, 105.43, 65.44),
            ("gpt-oss-20b/h100", "sharegpt", 1000, 0, 215312, 193979, 7817.03, 4791.97, 31.92, 55.52),
            ("gpt-oss-20b/h100", "32000-100", 100, 100, 3200000, 9350, 86.62, 53539.25, 266.37, 273.86),
            ("gpt-oss-20b/h100", "4000-200", 500, 200, 1999249, 52309, 847.43, 30820.97, 227.42, 225.55),
            ("gpt-oss-20b/h100", "2000-100", 500, 100, 999120, 47022, 1443.44, 16363.96, 220.69, 159.20),
            ("gpt-oss-20b/h100", "128-4", 1000, 4, 127755, 4000, 851.04, 2892.24, 228.45, 208.03),
        )
        if tag == f"{name}/{label}"
    ),
    # Qwen3-235B-A22B-Instruct-2507, mixture of experts, on 8 x H100 at tensor parallel 8 (bf16) and on 4 x H100 at
    # tensor parallel 4 (its FP8 checkpoint), vLLM v0.11.0, all prompts of a run at once. The ShareGPT and 128-token
    # runs report 984 successful requests (and a peak of 984 in flight) for 1000 asked: the rows take 984.
    *(
        Measurement(f"qwen3-235b-a22b-2507-{label}-h100-{case}-b{n}", "Qwen/Qwen3-235B-A22B-Instruct-2507", "H100-80GB",
                    tp, _per_request(tin, n), _per_request(tout, n), n, tput, ttft, itl, "median",
                    _GPUSTACK_QWEN3_235B, _GPUSTACK_DATE, weight_dtype=dtype, family="qwen3-moe", requests=n,
                    varied_lengths=case == "sharegpt" or tout != n * nominal_out, found_after_fit=1,
                    note=(_BURST_NOTE.format(n=n, tin=tin, tout=tout, tpot=tpot) if n != 984 else
                          _BURST_NOTE.format(n=n, tin=tin, tout=tout, tpot=tpot).replace(
                              "984 prompts sent at once",
                              "1000 prompts asked at once, 984 successful and a peak of 984 in flight as printed"))
                    + ("" if case == "sharegpt" else f"; random dataset, {case.replace('-', ' in / ')} out asked")
                    + f"; served with {serve} on 'NVIDIA H100 GPUs'")
        for label, tp, dtype, serve, case, n, nominal_out, tin, tout, tput, ttft, itl, tpot in (
            # layout label, tensor parallel size, weight dtype, serve command, case, prompts, output tokens asked,
            # total tokens in and out, output tok/s, median TTFT ms, median ITL ms, median TPOT ms
            ("tp8", 8, None, "vllm serve Qwen/Qwen3-235B-A22B-Instruct-2507 -tp 8", "sharegpt", 984, 0, 212894,
             193865, 4015.36, 8707.89, 51.14, 114.67),
            ("tp8", 8, None, "vllm serve Qwen/Qwen3-235B-A22B-Instruct-2507 -tp 8", "32000-100", 100, 100, 3200000,
             8191, 57.85, 70737.29, 23.29, 134.49),
            ("tp8", 8, None, "vllm serve Qwen/Qwen3-235B-A22B-Instruct-2507 -tp 8", "4000-200", 500, 200, 1997942,
             92185, 931.21, 48562.54, 30.18, 72.58),
            ("tp8", 8, None, "vllm serve Qwen/Qwen3-235B-A22B-Instruct-2507 -tp 8", "2000-100", 500, 100, 998175,
             49500, 1127.26, 20242.32, 35.94, 108.64),
            ("tp8", 8, None, "vllm serve Qwen/Qwen3-235B-A22B-Instruct-2507 -tp 8", "128-4", 984, 4, 125650, 3936,
             445.53, 6882.45, 235.21, 238.84),
            ("fp8-tp4", 4, "fp8",
             "vllm serve Qwen/Qwen3-235B-A22B-Instruct-2507-FP8 -tp 4 (the model's FP8 checkpoint)", "sharegpt", 984, 0,
             212992, 194446, 3592.57, 9896.14, 57.15, 121.96),
        )
    ),
    # gpt-oss-120b (MXFP4 experts), H100 (vLLM v0.10.2) and A100 80GB (v0.11.0), --max-model-len 32768: at tensor
    # parallel 1 all prompts of a run at once and 100 ShareGPT prompts at concurrency 4; the pages' parallelism runs
    # (ShareGPT burst at tensor parallel 2 and 4 and pipeline parallel 2) and the H100 page's tensor parallel 2
    # concurrency-4 run add --async-scheduling, which the note says.
    *(
        Measurement(f"gpt-oss-120b-{label}-{gpu_label}-{case}-b{n}" if c == n else
                    f"gpt-oss-120b-{label}-{gpu_label}-{case}-c{c}",
                    "openai/gpt-oss-120b", gpu, tp, _per_request(tin, n), _per_request(tout, n), c, tput,
                    ttft, itl, "median", source, date, pipeline_parallel_size=pp, family="gpt-oss", requests=n,
                    varied_lengths=case == "sharegpt" or tout != n * nominal_out, found_after_fit=1,
                    # vLLM of 2025 ran pipeline parallelism without async scheduling whatever the flag said.
                    async_scheduling="--async-scheduling" in flags and pp == 1,
                    note=(_BURST_NOTE.format(n=n, tin=tin, tout=tout, tpot=tpot) if c == n else
                          f"ShareGPT, {n} prompts, closed loop at --max-concurrency {c}: tokens = the run's totals "
                          f"({tin} in, {tout} out) / {n}; TTFT and ITL are the printed medians (median TPOT {tpot} ms)")
                    + ("" if case == "sharegpt" else f"; random dataset, {case.replace('-', ' in / ')} out asked")
                    + f"; served with {flags}" + hardware)
        for gpu_label, gpu, source, date, hardware in (
            ("h100", "H100-80GB", _GPUSTACK_GPT_OSS_120B, "vLLM v0.10.2 (released 2025-09); the page states no date",
             _H100_UNSTATED.replace("; the serve command sets no tensor parallel", "")),
            ("a100", "A100-80GB", _GPUSTACK_GPT_OSS_120B_A100, _GPUSTACK_DATE,
             "; the page names '2 x NVIDIA A100 SXM 80GB GPUs on a single node'"),
        )
        for row_gpu, label, tp, pp, flags, case, n, c, nominal_out, tin, tout, tput, ttft, itl, tpot in (
            # GPU label, layout label, tensor and pipeline parallel sizes, serve flags, case, prompts, concurrency,
            # output tokens asked, total tokens in and out, output tok/s, median TTFT ms, median ITL ms, median TPOT ms
            ("h100", "tp1", 1, 1, "--max-model-len 32768", "sharegpt", 1000, 1000, 0, 215312, 195544, 2901.05,
             25973.43, 37.98, 47.57),
            ("h100", "tp1", 1, 1, "--max-model-len 32768", "32000-100", 100, 100, 100, 3200000, 9877, 49.65,
             99439.56, 7.26, 23.69),
            ("h100", "tp1", 1, 1, "--max-model-len 32768", "4000-200", 500, 500, 200, 1999249, 67205, 463.35, 73023.24,
             12.37, 32.02),
            ("h100", "tp1", 1, 1, "--max-model-len 32768", "2000-100", 500, 500, 100, 999120, 49197, 675.11,
             35662.58, 14.92, 42.86),
            ("h100", "tp1", 1, 1, "--max-model-len 32768", "128-4", 1000, 1000, 4, 127755, 4000, 517.91, 4987.41,
             352.58, 341.94),
            ("h100", "tp1", 1, 1, "--max-model-len 32768", "sharegpt", 100, 4, 0, 22946, 21691, 453.04, 47.49, 7.99,
             8.24),
            ("h100", "tp2-async", 2, 1, "--max-model-len 32768 --async-scheduling -tp 2", "sharegpt", 1000, 1000, 0,
             215312, 196205, 7648.67, 4600.39, 31.37, 51.57),
            ("h100", "tp4-async", 4, 1, "--max-model-len 32768 --async-scheduling -tp 4", "sharegpt", 1000, 1000, 0,
             215312, 196174, 11327.22, 2871.45, 21.75, 34.49),
            ("h100", "pp2-async", 1, 2, "--max-model-len 32768 --async-scheduling -pp 2", "sharegpt", 1000, 1000, 0,
             215312, 196089, 5337.65, 4392.85, 50.83, 69.62),
            ("h100", "tp2-async", 2, 1, "--async-scheduling -tp 2", "sharegpt", 100, 4, 0, 22946, 21691, 645.55, 36.68,
             5.54, 5.74),
            ("a100", "tp1", 1, 1, "--max-model-len 32768", "sharegpt", 1000, 1000, 0, 215312, 196656, 2276.40,
             24822.43, 70.10, 90.70),
            ("a100", "tp1", 1, 1, "--max-model-len 32768", "32000-100", 100, 100, 100, 3200000, 9988, 13.50,
             368713.30, 24.23, 228.19),
            ("a100", "tp1", 1, 1, "--max-model-len 32768", "4000-200", 500, 500, 200, 1999249, 67259, 249.67,
             134006.62, 27.99, 114.77),
            ("a100", "tp1", 1, 1, "--max-model-len 32768", "2000-100", 500, 500, 100, 999120, 48981, 395.21,
             61764.97, 214.02, 138.30),
            ("a100", "tp1", 1, 1, "--max-model-len 32768", "128-4", 1000, 1000, 4, 127755, 4000, 283.95, 7750.58,
             196.02, 189.53),
            ("a100", "tp1", 1, 1, "--max-model-len 32768", "sharegpt", 100, 4, 0, 22946, 21691, 326.09, 61.55, 11.14,
             11.44),
            ("a100", "tp2-async", 2, 1, "--max-model-len 32768 --async-scheduling -tp 2", "sharegpt", 1000, 1000, 0,
             215312, 196156, 3765.02, 15435.84, 40.51, 53.39),
        )
        if row_gpu == gpu_label
    ),
    # DeepSeek-R1-0528 (its own FP8 weights) and GLM-4.6 (bf16), 8 x H200, tensor parallel 8, vLLM v0.11.0: all
    # prompts of a run at once, and 100 ShareGPT prompts at concurrency 4.
    *(
        Measurement(f"{name}-8xh200-{case}-b{n}" if c == n else f"{name}-8xh200-{case}-c{c}", model, "H200", 8,
                    _per_request(tin, n), _per_request(tout, n), c, tput, ttft, itl, "median", source,
                    _GPUSTACK_DATE, weight_dtype=dtype, family=family, requests=n,
                    varied_lengths=case == "sharegpt" or tout != n * nominal_out, found_after_fit=1,
                    note=(_BURST_NOTE.format(n=n, tin=tin, tout=tout, tpot=tpot) if c == n else
                          f"ShareGPT, {n} prompts, closed loop at --max-concurrency {c}: tokens = the run's totals "
                          f"({tin} in, {tout} out) / {n}; TTFT and ITL are the printed medians (median TPOT {tpot} ms)")
                    + ("" if case == "sharegpt" else f"; random dataset, {case.replace('-', ' in / ')} out asked")
                    + f"; served with vllm serve {model} -tp 8 on 'NVIDIA H200 GPUs'")
        for name, model, dtype, family, source in (
            ("deepseek-r1", "deepseek-ai/DeepSeek-R1-0528", "fp8", "deepseek-moe", _GPUSTACK_DEEPSEEK_R1),
            ("glm-4.6", "zai-org/GLM-4.6", None, "glm-moe", _GPUSTACK_GLM_46),
        )
        for row_model, case, n, c, nominal_out, tin, tout, tput, ttft, itl, tpot in (
            # model, case, prompts, concurrency, output tokens asked, total tokens in and out, output tok/s, median
            # TTFT ms, median ITL ms, median TPOT ms
            ("deepseek-ai/DeepSeek-R1-0528", "sharegpt", 1000, 1000, 0, 219171, 200752, 2621.05, 17698.39, 66.09,
             177.90),
            ("deepseek-ai/DeepSeek-R1-0528", "32000-100", 100, 100, 100, 3199900, 10000, 48.33, 101163.80, 459.96,
             400.72),
            ("deepseek-ai/DeepSeek-R1-0528", "4000-200", 500, 500, 200, 1997530, 100000, 753.67, 61952.74, 57.87,
             177.37),
            ("deepseek-ai/DeepSeek-R1-0528", "2000-100", 500, 500, 100, 998393, 50000, 843.71, 27559.21, 357.74,
             276.56),
            ("deepseek-ai/DeepSeek-R1-0528", "128-4", 1000, 1000, 4, 126882, 4000, 181.27, 18992.42, 368.43, 389.74),
            ("deepseek-ai/DeepSeek-R1-0528", "sharegpt", 100, 4, 0, 22836, 21338, 196.81, 117.53, 18.84, 19.13),
            ("zai-org/GLM-4.6", "sharegpt", 1000, 1000, 0, 214465, 199702, 2907.97, 15377.50, 68.98, 145.75),
            ("zai-org/GLM-4.6", "32000-100", 100, 100, 100, 3200000, 9406, 44.16, 104737.57, 529.63, 541.92),
            ("zai-org/GLM-4.6", "4000-200", 500, 500, 200, 1999787, 99801, 794.52, 59379.10, 59.67, 241.12),
            ("zai-org/GLM-4.6", "2000-100", 500, 500, 100, 999429, 50000, 820.20, 29924.42, 402.36, 283.63),
            ("zai-org/GLM-4.6", "128-4", 1000, 1000, 4, 127881, 4000, 288.05, 10707.53, 389.46, 397.14),
            ("zai-org/GLM-4.6", "sharegpt", 100, 4, 0, 22992, 21794, 211.38, 62.63, 17.55, 17.80),
        )
        if row_model == model
    ),
    # Qwen3-8B, bf16, 1 x H100 SXM (GCP a3-highgpu-1g), vLLM 0.30.0, random fixed lengths, closed loops.
    *(
        Measurement(f"qwen3-8b-h100-vllm030-{isl}-{osl}-c{c}", "Qwen/Qwen3-8B", "H100-80GB", 1, isl, osl, c, tput,
                    None, itl, "median", _SILYBENCH, "2026-09-24", family="qwen3", requests=n,
                    found_after_fit=1, async_scheduling=True,
                    note=f"vllm bench serve random {isl} in / {osl} out, {n} prompts, closed loop of {c} (3 repeats); "
                         f"ITL is the median ITL; TTFT is published only as p95 ({ttft_p95:.1f} ms) and p99, so it is "
                         "left out; served with --max-model-len 16384, thinking off")
        for isl, osl, c, n, tput, itl, ttft_p95 in (
            # input and output tokens, users, prompts, output tok/s, median ITL ms, p95 TTFT ms
            (128, 128, 1, 50, 145.31516216298584, 6.825528500002065, 14.233944300013945),
            (128, 128, 4, 50, 548.1721750421502, 6.921668000018144, 24.209916550091748),
            (128, 128, 16, 80, 2156.2036050430975, 7.138771999962046, 57.46893875002568),
            (128, 128, 32, 160, 4030.3051086258856, 7.39723649996904, 80.69987059996606),
            (128, 128, 64, 320, 6957.695752209764, 8.148063000021466, 181.89564990006488),
            (128, 128, 128, 640, 11193.693648774371, 9.338815500029796, 328.97836365005446),
            (1024, 128, 1, 50, 140.99634957631028, 6.88869300006445, 34.30782494999676),
            (1024, 128, 4, 50, 531.5697410810395, 7.116909500041402, 32.24419655003885),
            (1024, 128, 16, 80, 1756.8443617025891, 7.897389500044483, 236.1086561500428),
            (1024, 128, 32, 160, 2697.1436162082123, 8.843989999945734, 265.76351800000566),
            (1024, 128, 64, 320, 2847.317989990015, 10.917659500023547, 1271.3291033999212),
            (1024, 128, 128, 640, 3348.5123362278496, 14.872808000063742, 2497.5243411999713),
            (128, 1024, 1, 50, 145.6631502068836, 6.857942499891578, 14.096497500167969),
            (128, 1024, 4, 50, 547.8523730967751, 7.009242000094673, 24.80837260006865),
            (128, 1024, 16, 80, 2116.787112472226, 7.529770500241284, 49.22231495002052),
            (128, 1024, 32, 160, 3910.2197295383075, 8.110045000194077, 86.02127695075977),
            (128, 1024, 64, 320, 6596.976373742641, 9.494281999195664, 249.16893034978784),
            (128, 1024, 128, 640, 10300.959914188585, 12.00430650033013, 447.00227889989037),
            (2048, 2048, 1, 50, 142.36511581395524, 6.997618500463432, 61.34448784923734),
            (2048, 2048, 4, 50, 506.39290062007683, 7.527142499384354, 203.74610840026432),
            (2048, 2048, 16, 80, 1625.1228540282184, 9.464142999604519, 787.2666905001097),
            (2048, 2048, 32, 160, 2528.523651964338, 11.865481998938776, 1394.670541350115),
            (2048, 2048, 64, 320, 3462.8383333405377, 17.052958000022045, 2484.8276112490566),
            (2048, 2048, 128, 640, 3917.0687135585335, 25.508796999929473, 12391.608357950372),
            (8192, 512, 1, 50, 128.84889006836946, 7.300566499907291, 253.86976210011198),
            (8192, 512, 4, 50, 377.60771910817294, 8.616659499239177, 893.4201958987614),
            (8192, 512, 16, 80, 783.9788816607595, 13.754661000348278, 2921.161357549317),
            (8192, 512, 32, 160, 951.4800865307219, 20.27201800046896, 5619.3786492001855),
            (8192, 512, 64, 320, 981.7854760993135, 25.280438001573202, 23517.792149546585),
            (8192, 512, 128, 640, 994.1080055590254, 25.297854999735137, 47014.26551324965),
        )
    ),
    # Qwen3-0.6B, bf16, 1 x H100 80GB HBM3, vLLM 0.19.0, 512 in / 128 out: 500 prompts at once, and at a
    # Poisson rate of 16 requests/s.
    Measurement("qwen3-0.6b-h100-512-128-b500", "Qwen/Qwen3-0.6B", "H100-80GB", 1, 512, 128, 500,
                11852.101961935648, 2869.831036507094, 4.514993997872807, "median",
                _KVCACHED + "sweep_results/A_vanilla_inf.seed42.json", "2026-05-13", family="qwen3", requests=500,
                found_after_fit=1, async_scheduling=True,
                note="request rate inf, no --max-concurrency, so concurrency = 500 (the JSON's max_concurrent_requests "
                     "500); " + _KVCACHED_NOTE.format(tpot=5.712947661426527)),
    Measurement("qwen3-0.6b-h100-512-128-rate16", "Qwen/Qwen3-0.6B", "H100-80GB", 1, 512, 128, 0,
                2032.4803173306893, 36.027459005708806, 2.0323969947639853, "median",
                _KVCACHED + "sweep_results/F_vanilla_r16.seed42.json", "2026-05-13", family="qwen3",
                request_rate=16.0, requests=500, found_after_fit=1, async_scheduling=True,
                note="Poisson rate 16 requests/s, no --max-concurrency (the JSON's max_concurrent_requests 31); "
                     + _KVCACHED_NOTE.format(tpot=2.39868445671851)),
)
"""The rows found after the model was fixed, to be appended to ``performance_references.REFERENCES``."""
