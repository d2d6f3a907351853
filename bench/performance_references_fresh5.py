"""Published vLLM V1 serving measurements from sources searched for while the performance model was being changed.

Every row carries ``found_after_fit=5``: these sources are the model's fifth clean test, held out whole (rule 6 of
``bench/performance_references.py``) and read only after the model was committed (5c39892). Figures are copied as
the source prints them; where a row's figures are derived, its note says how.

Sources:

- dennislee22's vLLM-benchmarking write-up
  (https://github.com/dennislee22/vLLM-benchmarking, ``README.md`` and the server start-up logs in ``log/``): a study
  of how ``--gpu-memory-utilization`` bounds the KV cache, on "NVIDIA A100 80GB" GPUs in Kubernetes pods, runs of
  2025-09-03 to 2025-09-09 (the pasted log lines' dates). The start-up logs print vLLM 0.10.1.1 (V1 engine; async
  scheduling off, as before 0.14.0), bf16, ``max_model_len`` 16384, chunked prefill at ``max_num_batched_tokens``
  2048 (vLLM's default on an A100), prefix caching on, and the KV cache: 464,848 tokens at a memory utilisation of
  0.5 on one GPU, 93,872 at 0.25, 1,192,160 at 0.5 on two GPUs at tensor parallel 2 (``logged_kv_cache_tokens``).
  The client is ``benchmark_serving.py`` (vLLM's repository) with ``--backend vllm``, ``/v1/completions``, the
  random dataset of 1024 tokens in and 1024 (or 128) out, no ``--max-concurrency`` and the default infinite request
  rate: every prompt at once (``concurrency`` = ``requests``). ``--ignore-eos`` is not passed (the printed generated
  totals of the 7B runs are a little under the asked lengths; the rows keep the asked ones). TTFT and ITL are the
  printed medians. The pasted log lines show prefix-cache hits (seed-0 prompts resent to a long-lived server), so,
  as for other sources that resend their prompts, the rows leave their TTFT out (each note keeps the printed figure;
  the first prediction, in docs/capacity.md, was made with it). Said by the source and kept: the tensor-parallel log disables custom all-reduce for want of GPU
  peer-to-peer access, so the A100s may be the PCIe model (the source does not say; the rows name the SXM entry of
  the GPU catalog). Qwen2.5-32B (the base model) has no linked start-up log: its section gives "available KV cache
  9.70 GiB", which at 256 KiB a token (64 layers x 2 x 8 heads x 128 x 2 bytes) is 39,731 tokens; its release and
  memory utilisation are not printed (async scheduling taken as off, as in the other runs of that week).
- SemiAnalysis InferenceX, pull request 1061 (https://github.com/SemiAnalysisAI/InferenceX/pull/1061, 2026-04-17,
  the same text as 1053): "single MI300X, vllm v0.17.0, ISL/OSL=1024", gpt-oss-120b (MXFP4 experts) at tensor
  parallel 1, a closed loop (``--max-concurrency``) at 64, 96, 128 and 256 clients; output tokens/s printed as whole
  numbers and the median TPOT, taken as the ITL (no TTFT printed). vLLM 0.17.0: async scheduling on. InferenceX's
  fixed-length sweeps draw lengths with a range ratio of 0.8 (``varied_lengths``); its current server script passes
  ``--gpu-memory-utilization 0.95`` and no prefix caching, and sends 10 prompts per client, which the pull request's
  version may not have (the rows give no request count).

Left out: Vultr's Inference Cookbook sweep of NVIDIA-Nemotron-3-Nano-30B-A3B-FP8 on 2 x B200 (a hybrid of Mamba-2
and attention layers that neither the model catalog nor the performance model describes, and TTFT and TPOT whose
statistic the table does not name); the write-up's runs across two nodes, its runs with failed requests, and those
with no start-up log of their own.

Import this module through ``performance_references``, not before it (it imports ``Measurement`` from there).
"""

from __future__ import annotations

from performance_references import Measurement

_FOUND = 5

_DENNISLEE = (
    "https://github.com/dennislee22/vLLM-benchmarking/blob/00dac23d9f923d478a676dfbb7d7d01f6fc63c64/README.md"
)
_DENNISLEE_NOTE = (
    "benchmark_serving.py --backend vllm, /v1/completions, random {tin} in / {tout} out, {n} prompts at once (no "
    "--max-concurrency, request rate inf), no --ignore-eos; vLLM 0.10.1.1, bf16, max_model_len 16384, "
    "max_num_batched_tokens 2048, prefix caching on; {test}; " + "{cached}"
)
_CACHED = (
    "printed median TTFT {ttft} ms, left out: the runs resent seed-0 prompts to a long-lived server whose logs show "
    "prefix-cache hits (the first prediction, in docs/capacity.md, included it)"
)

_TEST5 = "Test 5, --gpu-memory-utilization 0.5, KV cache 24.83 GiB = 464,848 tokens (its start-up log)"
_TEST4 = "Test 4, --gpu-memory-utilization 0.25, KV cache 5.01 GiB = 93,872 tokens (its start-up log)"
_WAITING = "; about 55 requests running, the rest waiting, by the pasted log lines"
_TEST3 = (
    "Test 3, two GPUs of one node at tensor parallel 2, --gpu-memory-utilization 0.5, KV cache 31.83 GiB a GPU = "
    "1,192,160 tokens; custom all-reduce disabled (no GPU peer-to-peer access)"
)

_INFERENCEX = "https://github.com/SemiAnalysisAI/InferenceX/pull/1061"

ROWS: tuple[Measurement, ...] = (
    # Qwen2-7B-Instruct (bf16) on one A100 80GB and at tensor parallel 2, every prompt at once.
    *(
        Measurement(f"dennislee22-qwen2-7b-a100-tp{tp}-gmu{gmu}-1024-{tout}-n{n}", "Qwen/Qwen2-7B-Instruct",
                    "A100-80GB", tp, 1024, tout, n, tput, None, itl, "median", _DENNISLEE, date, family="qwen2",
                    requests=n, logged_kv_cache_tokens=cache, found_after_fit=_FOUND,
                    note=_DENNISLEE_NOTE.format(tin=1024, tout=tout, n=n, test=test,
                                                cached=_CACHED.format(ttft=ttft)))
        for tp, gmu, tout, n, tput, ttft, itl, date, cache, test in (
            (1, "05", 1024, 1, 84.95, 36.23, 11.64, "2025-09-09", 464_848, _TEST5),
            (1, "05", 1024, 10, 715.92, 511.95, 13.09, "2025-09-09", 464_848, _TEST5),
            (1, "05", 1024, 30, 1967.9, 240.32, 14.8, "2025-09-09", 464_848, _TEST5),
            (1, "05", 1024, 50, 2356.12, 2490.45, 17.04, "2025-09-09", 464_848, _TEST5),
            (1, "05", 1024, 100, 3352.15, 3896.62, 21.76, "2025-09-04", 464_848, _TEST5),
            (1, "05", 1024, 200, 4442.73, 1179.16, 34.84, "2025-09-04", 464_848, _TEST5),
            (1, "05", 1024, 500, 4215.38, 10041.3, 39.53, "2025-09-04", 464_848, _TEST5),
            (1, "025", 1024, 100, 2124.52, 4105.02, 18.11, "2025-09-04", 93_872, _TEST4 + _WAITING),
            (1, "025", 1024, 200, 2057.51, 30624.81, 18.9, "2025-09-04", 93_872, _TEST4),
            (2, "05", 1024, 500, 3541.34, 18233.81, 49.63, "2025-09-03", 1_192_160, _TEST3),
            (2, "05", 128, 1000, 1097.47, 57269.96, 215.65, "2025-09-03", 1_192_160, _TEST3),
        )
    ),
    # Qwen2.5-32B (the base model, bf16) on one A100 80GB, every prompt at once.
    *(
        Measurement(f"dennislee22-qwen2.5-32b-a100-tp1-1024-1024-n{n}", "Qwen/Qwen2.5-32B", "A100-80GB", 1, 1024,
                    1024, n, tput, None, itl, "median", _DENNISLEE, "2025-09-09", family="qwen2.5", requests=n,
                    logged_kv_cache_tokens=39_731, found_after_fit=_FOUND,
                    note=("benchmark_serving.py --backend vllm, /v1/completions, random 1024 in / 1024 out, "
                          f"{n} prompts at once, no --ignore-eos (all asked tokens generated); Test 7: no start-up "
                          "log linked (release, memory utilisation and max_model_len not printed); KV cache = the "
                          "section's 'available KV cache 9.70 GiB' / 256 KiB a token = 39,731 tokens (derived); "
                          + _CACHED.format(ttft=ttft)))
        for n, tput, ttft, itl in ((10, 186.31, 2187.82, 50.97), (50, 319.41, 5747.7, 55.95),
                                   (100, 362.73, 98670.42, 55.94))
    ),
    # gpt-oss-120b (MXFP4 experts) on one MI300X, closed loops, 1024 in / 1024 out.
    *(
        Measurement(f"inferencex-gpt-oss-120b-mi300x-tp1-1024-1024-c{c}", "openai/gpt-oss-120b", "MI300X", 1, 1024,
                    1024, c, tput, None, tpot, "median", _INFERENCEX, "2026-04-17", family="gpt-oss",
                    async_scheduling=True, varied_lengths=True, found_after_fit=_FOUND,
                    note=("InferenceX's vLLM benchmark client, --max-concurrency; vLLM 0.17.0; output tokens/s "
                          "printed rounded; the ITL is the printed median TPOT (no TTFT printed); random lengths at "
                          "a range ratio of 0.8"))
        for c, tput, tpot in ((64, 2008.0, 31.4), (96, 2561.0, 36.6), (128, 2990.0, 41.3), (256, 4271.0, 58.3))
    ),
)
"""The rows found for the fifth clean test."""
