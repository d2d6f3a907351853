"""Published vLLM V1 serving measurements found while the performance model was being changed (second clean test).

Every row carries ``found_after_fit=2`` (``CLEAN_TEST`` of ``bench/performance_references.py``): these sources were
searched for while the model's structure and constants were changed, and are held out whole (rule 6). Figures are
copied as the source saves or prints them; where a row's tokens per request are derived from the run's totals, the
note says how.

Sources:

- IOG Foundation's consumer and enterprise GPU comparison (https://github.com/IOG-Foundation/llm-inference-benchmarks,
  ``results/``): vLLM 0.8.5 (the README pins ``vllm/vllm-openai:v0.8.5`` and copies that release's ``benchmarks/``; V1
  is 0.8.5's default engine), servers started as ``vllm serve <model> --disable-log-requests --dtype float16
  --tensor-parallel-size N`` (the README's example; ``--max-model-len`` and ``--gpu-memory-utilization`` "as needed",
  not recorded per run), on io.net's cloud. ``benchmark_serving.py --backend vllm`` (the completions endpoint, no chat
  template), ShareGPT, 200 prompts (a model's runs all total the same input tokens, so each drew the same prompts; no
  ``--ignore-eos``, so requests stop at end of sequence), at a Poisson ``--request-rate`` of 1, 4, 8, 16 and 32 with
  no ``--max-concurrency``, saved with ``--save-result`` (dated 2025-06-10 in the JSON). The README states no warm-up
  and no prefix caching flag (vLLM's V1 default: on); the saved timestamps show a model's rates run minutes apart, 32
  first; whether on one server is not stated (if so, later runs may hit prefixes cached by earlier ones). The README
  sets the tensor parallel size to the number of GPUs of each run (``gpu_count`` in the JSON). Rows here: one NVIDIA
  GeForce RTX 4090 and, for DeepSeek-R1-Distill-Qwen-14B, two at tensor parallel 2 (its 4 and 8 GPU runs are left
  out). The repository's H100 rows are on "NVIDIA-H100-PCIe", which the GPU catalog does not list, and are left out.
  Some files hold two runs (appended lines); the rows take the first.

- delphinemico/llm-inference-performance, benchmark 01 (https://github.com/delphinemico/llm-inference-performance,
  ``experiments/01_vllm_single_gpu/``): one NVIDIA L40S 48 GB (RunPod Secure Cloud), Qwen/Qwen2.5-7B-Instruct, vLLM
  0.30.0, served by ``scripts/start_vllm.sh off``: ``vllm serve Qwen/Qwen2.5-7B-Instruct --dtype auto --max-model-len
  8192 --gpu-memory-utilization 0.90 --no-enable-prefix-caching`` (prefix caching off). Client on the same host over
  loopback: ``vllm bench serve --backend vllm --endpoint /v1/completions --dataset-name random --seed 42
  --random-range-ratio 0 --ignore-eos --temperature 0 --request-rate inf --max-concurrency C`` (closed loops at fixed
  lengths; every run generated every token asked: output tokens/s over requests/s equals the output length), saved
  with ``--save-result``; results dated 2026-09-26 (``results/L40S_2026-09-26/``). The README states no warm-up for
  these runs (only the prefix-caching-on run, left out here, was preceded by a 10-request warm-up) and one run per
  condition; by the README's reproduction steps the runs of E1 to E4 share one server. Conditions: E1 512 in / 128
  out, 100 prompts, concurrency 1, 4, 8, 16; E2 512 / 64 and 4096 / 64, 80 prompts, concurrency 4; E3 512 / 64 and 512
  / 512, 60 prompts, concurrency 4; E4 (cache off) a 1536-token random prefix shared by all prompts plus 512 random
  tokens (2048 in) / 64 out, 100 prompts, concurrency 4 (``--random-prefix-len 1536``; with prefix caching off the
  shared prefix is recomputed for every request). The E4 run with prefix caching on (a warmed cache hit on 1536 of
  2048 tokens) is left out.

- The same repository's benchmark 02 (``experiments/02_engine_comparison/``, vLLM rows only): the same L40S host
  class, model and vLLM 0.30.0 started as ``vllm serve Qwen/Qwen2.5-7B-Instruct --dtype auto --max-model-len 8192
  --gpu-memory-utilization 0.90 --no-enable-prefix-caching`` (the README's command "matching the recorded
  configuration"), driven by NVIDIA AIPerf 0.13.0 (``scripts/run_vllm.sh``): ``aiperf profile --endpoint-type
  completions --endpoint /v1/completions --streaming``, synthetic prompts of fixed length (stddev 0), fixed output
  (``min_tokens`` = output, ``ignore_eos:true``), ``--concurrency C`` (closed loop), 100 measured requests after
  ``--warmup-request-count 16``, seed 42. Conditions: 512 / 128 at concurrency 4 and 16, 4096 / 64 and 512 / 512 at
  concurrency 4. Not dated (the same vLLM release as benchmark 01). AIPerf's inter-token latency is per request
  (request latency minus TTFT, over output tokens minus one), i.e. vLLM's TPOT, and the saved results keep the warm-up
  and the profiling phase apart (``phases/warmup``, ``phases/profiling``); the rows are the summary's figures.

- ranjeetcao/ai-bench, the AWQ lineup sweep (https://github.com/ranjeetcao/ai-bench, ``run_all_models.sh``,
  ``<model>/results/``): one NVIDIA L40S, each model served alone as ``vllm serve <repo> --max-model-len 8192
  --gpu-memory-utilization 0.90`` (no other flag: prefix caching and chunked prefill at vLLM's defaults, on), after a
  warm-up run of 8 random prompts (128 in / 64 out, concurrency 4). Then ``vllm bench serve --backend vllm --endpoint
  /v1/completions --dataset-name random --random-range-ratio 0 --ignore-eos --seed 12345 --max-concurrency C`` (closed
  loops, ``--request-rate`` left at inf) for the shapes 256 / 256, 1024 / 512 and 4096 / 512 at concurrency 1, 8, 32
  and 64 with 16, 48, 128 and 192 prompts, saved with ``--save-result`` (dated 2026-06-17 in the JSON; every run
  completed with every token asked). The vLLM release of the sweep is not stated (the same repository's
  Qwen3.6-35B-A3B proof of concept names vLLM 0.22). Every run uses seed 12345, so the runs of one shape may draw the
  same leading prompts and hit prefixes cached by the previous run of that shape on the same server. Rows here:
  Qwen/Qwen3-32B-AWQ and stelterlab/phi-4-AWQ (both 4-bit AWQ weights; the lineup's Gemma 4 and Qwen3.6 models are not
  in the model catalog and are left out, as are the ``results_longctx/`` runs of ``run_longctx.sh``, not read); at
  4096 / 512 and concurrency 32 and 64 the saved median TTFTs reach about a minute and more (Qwen3-32B-AWQ 59 s and
  154 s).

TTFT and ITL are the medians the benchmark saves (``median_ttft_ms``, ``median_itl_ms``); for ``vllm bench serve``
rows each note also gives the median TPOT, which, unlike the median ITL, includes the prefills that stall a request's
decode; AIPerf rows carry AIPerf's median inter-token latency, which is a TPOT.

Import this module through ``performance_references``, not before it (it imports ``Measurement`` from there).
"""

from __future__ import annotations

from performance_references import Measurement

_FOUND = 2
"""The clean test these sources were found for (``CLEAN_TEST`` when they were added)."""

_IOG = (
    "https://github.com/IOG-Foundation/llm-inference-benchmarks/blob/{commit}/results/"
    "vllm_200prompts{qps}qps_{name}_sharegpt_{tp}xNVIDIA-GeForce-RTX-4090.json"
)
_IOG_NOTE = (
    "vLLM 0.8.5, benchmark_serving.py --backend vllm (/v1/completions), ShareGPT, 200 prompts at --request-rate "
    "{qps} (Poisson, no --max-concurrency), no --ignore-eos; tokens = the run's totals ({tin} in, {tout} out) / 200; "
    "output tokens/s is the saved output_throughput; TTFT and ITL are the saved medians (median TPOT {tpot} ms); "
    "server flags per the README's example (--dtype float16); no warm-up or prefix caching flag stated{extra}"
)


_C1 = "1ffd7960d341d7ff15e962af098ca5b08d9f253e"
_C8 = "834d4bd5224e0700efebf3f9eb28c6d97d420344"
_IOG_RUNS = (
    # key, qps, commit of the stored file, total input tokens, total output tokens, output tok/s, median TTFT ms,
    # median ITL ms, median TPOT ms
    ("r1-qwen-7b", 1, _C8, 41650, 43453, 226.66, 33.86, 17.85, 17.90),
    ("r1-qwen-7b", 4, _C8, 41650, 43541, 754.04, 39.28, 20.14, 20.25),
    ("r1-qwen-7b", 8, _C8, 41650, 43550, 1189.53, 44.79, 21.65, 21.94),
    ("r1-qwen-7b", 16, _C1, 41650, 43517, 1613.38, 49.75, 23.55, 24.07),
    ("r1-qwen-7b", 32, _C8, 41650, 43589, 1572.29, 150.03, 25.29, 36.05),
    ("llama-3-8b", 1, _C1, 41169, 40351, 210.09, 43.50, 19.24, 19.45),
    ("llama-3-8b", 4, _C1, 41169, 40382, 685.45, 50.02, 21.31, 22.56),
    ("llama-3-8b", 8, _C8, 41169, 40351, 1063.13, 60.99, 24.09, 26.87),
    ("llama-3-8b", 16, _C8, 41169, 40377, 1407.71, 74.37, 26.73, 32.53),
    ("llama-3-8b", 32, _C1, 41169, 40351, 1645.95, 162.92, 28.41, 38.62),
    ("r1-qwen-1.5b", 1, _C8, 41650, 43065, 226.67, 18.70, 11.45, 11.42),
    ("r1-qwen-1.5b", 4, _C1, 41650, 43074, 817.24, 21.08, 11.71, 11.62),
    ("r1-qwen-1.5b", 8, _C1, 41650, 43065, 1395.97, 22.74, 12.29, 12.12),
    ("r1-qwen-1.5b", 16, _C1, 41650, 43074, 2135.64, 26.38, 12.78, 12.55),
    ("r1-qwen-1.5b", 32, _C1, 41650, 43065, 2593.04, 37.14, 13.66, 14.23),
    ("r1-qwen-14b", 1, _C8, 41650, 41704, 215.40, 300.75, 20.00, 25.29),
    ("r1-qwen-14b", 8, _C8, 41650, 41704, 750.66, 311.47, 51.74, 75.82),
    ("r1-qwen-14b", 32, _C8, 41650, 41704, 772.18, 5042.32, 59.02, 106.33),
)
"""Runs of ``_IOG``, copied from the saved JSON (rounded to 2 decimals)."""


_L40S_01 = (
    "https://github.com/delphinemico/llm-inference-performance/blob/bc4921576db72026740cfbbc16ae471ddc2b7609/"
    "experiments/01_vllm_single_gpu/results/L40S_2026-09-26/summary.csv"
)
"""The summary of the run JSON files of benchmark 01 (``e1_concurrency_C.json``, ``e2_prefill_IxO.json``...)."""
_L40S_01_NOTE = (
    "vLLM 0.30.0, vllm bench serve --backend vllm (/v1/completions), random {tin} in / {tout} out fixed "
    "(--random-range-ratio 0{prefix}), --ignore-eos, {n} prompts at --max-concurrency {c} (--request-rate inf), "
    "seed 42; prefix caching off (--no-enable-prefix-caching), --max-model-len 8192, --gpu-memory-utilization 0.90; "
    "no warm-up stated; TTFT and ITL are the saved medians (median TPOT {tpot} ms, mean TTFT {mttft} ms); run {run}"
)

_L40S_02 = (
    "https://github.com/delphinemico/llm-inference-performance/blob/9fc5a27861e21f943d808e4bcd0f37e39f981053/"
    "experiments/02_engine_comparison/results/summary.csv"
)
_L40S_02_NOTE = (
    "vLLM 0.30.0 (--no-enable-prefix-caching, --max-model-len 8192), NVIDIA AIPerf 0.13.0, /v1/completions streaming, "
    "synthetic {tin} in / {tout} out fixed (stddev 0, min_tokens {tout}, ignore_eos), --concurrency {c}, 100 measured "
    "requests after 16 warm-up requests, seed 42; TTFT is AIPerf's median; ITL is AIPerf's median inter-token "
    "latency, a per-request TPOT; output tokens/s is AIPerf's output throughput; run {run} (vLLM row of the summary)"
)

_AIBENCH = (
    "https://github.com/ranjeetcao/ai-bench/blob/d4e8ba7623bca82cb111b1839533de1f5334f253/{sub}/results/"
    "in{tin}_out{tout}_c{c}.json"
)
_AIBENCH_NOTE = (
    "vLLM release not stated (2026-06), vllm bench serve --backend vllm (/v1/completions), random {tin} in / {tout} "
    "out fixed (--random-range-ratio 0), --ignore-eos, {n} prompts at --max-concurrency {c} (--request-rate inf), seed "
    "12345 (shared by the runs of a shape: leading prompts may repeat); prefix caching at vLLM's default (on); "
    "--max-model-len 8192 --gpu-memory-utilization 0.90; one 8-prompt warm-up per server; TTFT and ITL are the saved "
    "medians (median TPOT {tpot} ms, mean TTFT {mttft} ms)"
)


def _per_request(total: int, requests: int) -> int:
    """A run's token total per request, to the nearest token."""
    return int(total / requests + 0.5)


ROWS: tuple[Measurement, ...] = (
    # RTX 4090 (24 GB), ShareGPT at Poisson rates of 1 to 32 requests/s, 200 prompts each: three models at tensor
    # parallel 1 (rates 1, 4, 8, 16, 32) and DeepSeek-R1-Distill-Qwen-14B on two RTX 4090s at tensor parallel 2
    # (rates 1, 8, 32; PCIe, no NVLink on the RTX 4090).
    *(
        Measurement(f"iog-{key}-{tp}xrtx4090-rate{qps}", model, "RTX-4090", tp, _per_request(tin, 200),
                    _per_request(tout, 200), 0, tput, ttft, itl, "median",
                    _IOG.format(commit=commit, qps=qps, name=name, tp=tp), "2025-06-10", family=family,
                    request_rate=float(qps), requests=200, varied_lengths=True, found_after_fit=_FOUND,
                    note=_IOG_NOTE.format(qps=qps, tin=tin, tout=tout, tpot=tpot, extra=extra))
        for key, model, name, tp, family, extra in (
            ("r1-qwen-7b", "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", "DeepSeek-R1-Distill-Qwen-7B", 1, "qwen2.5", ""),
            ("llama-3-8b", "meta-llama/Meta-Llama-3-8B-Instruct", "Meta-Llama-3-8B-Instruct", 1, "llama-3", ""),
            ("r1-qwen-1.5b", "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", "DeepSeek-R1-Distill-Qwen-1.5B", 1,
             "qwen2.5", "; the file holds two runs of the same rate, this is the first"),
            ("r1-qwen-14b", "deepseek-ai/DeepSeek-R1-Distill-Qwen-14B", "DeepSeek-R1-Distill-Qwen-14B", 2, "qwen2.5",
             "; tensor parallel 2 over two RTX 4090s (gpu_count 2 in the JSON)"),
        )
        for row_key, qps, commit, tin, tout, tput, ttft, itl, tpot in _IOG_RUNS
        if row_key == key
    ),
    # Qwen2.5-7B-Instruct, bf16, 1 x L40S, vLLM 0.30.0, random fixed lengths, closed loops, prefix caching off.
    *(
        Measurement(f"delphinemico-qwen2.5-7b-l40s-{run}", "Qwen/Qwen2.5-7B-Instruct", "L40S", 1, tin, tout, c, tput,
                    ttft, itl, "median", _L40S_01, "2026-09-26", family="qwen2.5", requests=n,
                    found_after_fit=_FOUND,
                    note=_L40S_01_NOTE.format(tin=tin, tout=tout, n=n, c=c, tpot=tpot, mttft=mttft, run=run,
                                              prefix=", --random-prefix-len 1536 shared by every prompt"
                                              if run == "e4-cache-off" else ""))
        for run, tin, tout, n, c, tput, ttft, itl, tpot, mttft in (
            # run, input, output, prompts, concurrency, output tok/s, median TTFT ms, median ITL ms, median TPOT ms,
            # mean TTFT ms
            ("e1-c1", 512, 128, 100, 1, 49.02, 53.35, 20.12, 20.12, 56.01),
            ("e1-c4", 512, 128, 100, 4, 180.28, 163.72, 21.03, 21.03, 142.58),
            ("e1-c8", 512, 128, 100, 8, 333.21, 226.65, 21.00, 21.53, 210.09),
            ("e1-c16", 512, 128, 100, 16, 567.63, 365.38, 21.51, 22.91, 336.75),
            ("e2-512x64", 512, 64, 80, 4, 171.99, 135.20, 21.03, 21.44, 130.92),
            ("e2-4096x64", 4096, 64, 80, 4, 99.02, 791.43, 22.01, 28.32, 776.33),
            ("e3-512x64", 512, 64, 60, 4, 171.29, 153.64, 21.03, 21.42, 140.94),
            ("e3-512x512", 512, 512, 60, 4, 187.04, 158.27, 21.10, 21.10, 140.89),
            ("e4-cache-off", 2048, 64, 100, 4, 130.48, 463.95, 21.47, 23.43, 469.47),
        )
    ),
    # The same layout under AIPerf, 16 warm-up requests, prefix caching off.
    *(
        Measurement(f"delphinemico-aiperf-qwen2.5-7b-l40s-{run}", "Qwen/Qwen2.5-7B-Instruct", "L40S", 1, tin, tout, c,
                    tput, ttft, itl, "median", _L40S_02, "undated (vLLM 0.30.0)", family="qwen2.5", requests=100,
                    found_after_fit=_FOUND, note=_L40S_02_NOTE.format(tin=tin, tout=tout, c=c, run=run))
        for run, tin, tout, c, tput, ttft, itl in (
            # run, input, output, concurrency, output tok/s, median TTFT ms, median inter-token latency ms
            ("interactive_c4", 512, 128, 4, 179.92, 133.04, 21.28),
            ("high_concurrency_c16", 512, 128, 16, 568.97, 297.03, 23.27),
            ("prefill_heavy", 4096, 64, 4, 99.22, 776.13, 28.50),
            ("decode_heavy", 512, 512, 4, 186.55, 145.60, 21.19),
        )
    ),
    # Qwen3-32B-AWQ (4-bit), 1 x L40S, random fixed lengths, closed loops at 1, 8, 32, 64.
    *(
        Measurement(f"aibench-qwen3-32b-awq-l40s-{tin}x{tout}-c{c}", "Qwen/Qwen3-32B-AWQ", "L40S", 1, tin, tout, c,
                    tput, ttft, itl, "median", _AIBENCH.format(sub="qwen3-32b-awq", tin=tin, tout=tout, c=c),
                    "2026-06-17", weight_dtype="int4", family="qwen3", requests=n, found_after_fit=_FOUND,
                    note=_AIBENCH_NOTE.format(tin=tin, tout=tout, n=n, c=c, tpot=tpot, mttft=mttft))
        for tin, tout, c, n, tput, ttft, itl, tpot, mttft in (
            # input, output, concurrency, prompts, output tok/s, median TTFT ms, median ITL ms, median TPOT ms,
            # mean TTFT ms
            (256, 256, 1, 16, 37.41, 102.67, 26.42, 26.43, 103.07),
            (256, 256, 8, 48, 268.58, 871.68, 27.35, 27.47, 565.89),
            (256, 256, 32, 128, 781.02, 1094.38, 32.57, 36.49, 1270.35),
            (256, 256, 64, 192, 1228.63, 542.00, 42.00, 43.36, 1475.49),
            (1024, 512, 1, 16, 36.32, 398.89, 26.81, 26.80, 398.05),
            (1024, 512, 8, 48, 232.92, 860.99, 29.99, 31.58, 1184.19),
            (1024, 512, 32, 128, 545.92, 2117.74, 42.74, 54.88, 2558.60),
            (1024, 512, 64, 192, 461.78, 9197.70, 60.35, 109.89, 10928.59),
            (4096, 512, 1, 16, 32.04, 1638.97, 27.99, 28.01, 1660.61),
            (4096, 512, 8, 48, 139.67, 3254.14, 38.81, 57.27, 3180.55),
            (4096, 512, 32, 128, 143.53, 59161.06, 55.94, 110.18, 51368.22),
            (4096, 512, 64, 192, 144.78, 154031.94, 55.98, 112.79, 144642.65),
        )
    ),
    # phi-4-AWQ (4-bit), 1 x L40S, the same sweep, run before Qwen3-32B-AWQ on its own server.
    *(
        Measurement(f"aibench-phi-4-awq-l40s-{tin}x{tout}-c{c}", "stelterlab/phi-4-AWQ", "L40S", 1, tin, tout, c,
                    tput, ttft, itl, "median", _AIBENCH.format(sub="phi-4-awq", tin=tin, tout=tout, c=c),
                    "2026-06-17", weight_dtype="int4", family="phi", requests=n, found_after_fit=_FOUND,
                    note=_AIBENCH_NOTE.format(tin=tin, tout=tout, n=n, c=c, tpot=tpot, mttft=mttft))
        for tin, tout, c, n, tput, ttft, itl, tpot, mttft in (
            (256, 256, 1, 16, 79.83, 50.23, 12.38, 12.38, 50.13),
            (256, 256, 8, 48, 563.01, 205.59, 13.20, 13.44, 187.85),
            (256, 256, 32, 128, 1580.24, 428.14, 16.65, 17.96, 565.20),
            (256, 256, 64, 192, 2431.78, 230.98, 22.03, 23.06, 606.05),
            (1024, 512, 1, 16, 77.29, 130.18, 12.70, 12.71, 130.30),
            (1024, 512, 8, 48, 477.82, 293.42, 15.20, 15.58, 425.28),
            (1024, 512, 32, 128, 997.03, 915.88, 24.85, 30.30, 1137.41),
            (1024, 512, 64, 192, 1028.68, 1599.36, 38.68, 58.76, 3038.28),
            (4096, 512, 1, 16, 66.62, 722.23, 13.61, 13.61, 729.11),
            (4096, 512, 8, 48, 266.44, 1420.66, 22.04, 29.85, 1414.57),
            (4096, 512, 32, 128, 309.65, 2204.67, 53.21, 97.60, 5143.63),
            (4096, 512, 64, 192, 295.69, 56972.36, 56.97, 110.97, 47490.54),
        )
    ),
)
