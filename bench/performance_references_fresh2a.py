"""Published vLLM V1 serving measurements found while the performance model was being changed (second clean test,
vLLM-project and Kubernetes-stack sources).

Every row carries ``found_after_fit=2`` (``CLEAN_TEST`` of ``bench/performance_references.py`` when these sources were
searched for): held out whole (rule 6). The search ran beside the one of ``performance_references_fresh2.py``, but
its rows were read only after the model of 767f9f2 was committed, so they were first predicted by that model. Figures are copied as the source prints them; where a row's load or tokens
are derived, the note says how.

Sources:

- GuideLLM's "Finding Your Server's Optimal Concurrency Limit" example (https://github.com/vllm-project/guidellm,
  ``docs/examples/optimal_concurrency.md``): "meta-llama/Llama-3.1-8B-Instruct on a single NVIDIA A100 80GB GPU,
  served by vLLM with chunked prefill enabled", synthetic prompts of 1000 tokens in and 1000 out, a GuideLLM sweep
  (``--profile kind=sweep``; the page's commands set ``--constraint kind=max_duration,seconds=120`` per strategy and
  ``--seed 42``): a synchronous strategy (one request at a time: a closed loop of 1), eight ``constant`` strategies
  (requests sent at a fixed rate, evenly spaced rather than Poisson) and a ``throughput`` strategy (left out: its
  load, a mean concurrency of 509.8, is not a stated concurrency). The table gives mean concurrency, requests/s to
  one decimal, output tokens/s, TTFT and ITL at p50 and p95. The page states no vLLM release, no date, no endpoint,
  no warm-up and no prefix caching flag (vLLM's V1 default: on; synthetic prompts are random, so hits are unlikely).
  It links vLLM's benchmark-sweep documentation (``docs.vllm.ai/en/stable/benchmarking/sweeps``, a page of vLLM's
  late-2025 releases), so it is later than 2025-03: V1 engine. GuideLLM's ITL is a per-request mean gap after the
  first token (vLLM's TPOT). The constant rows' request
  rate is the printed output tokens/s over the 1000 output tokens (the printed requests/s has one decimal); each
  row's printed mean concurrency agrees with that rate times its latency (TTFT + 999 ITL) within 5% (Little's
  law), so the rate derived is the rate served. GuideLLM's constant arrivals are evenly spaced,
  not Poisson, and the runs are bounded by time, so their request counts are unknown (``requests`` is left unset).

- vLLM pull request 23151 (https://github.com/vllm-project/vllm/pull/23151, 2025-08-19, closed unmerged; its
  baseline only, "WO tuned configs (TP=1, EP=1, on H100)", i.e. vLLM's main branch of the day with its default
  fused-MoE kernel configuration): ``VLLM_USE_DEEP_GEMM=1 vllm serve Qwen/Qwen3-30B-A3B`` (no other flag: prefix
  caching and chunked prefill at their defaults, on; vLLM uses DeepGEMM for FP8 block-quantized weights, and this
  checkpoint is bf16), then ``benchmarks/benchmark_serving.py --backend vllm --endpoint /v1/completions
  --dataset-name random --random-input 2048 --random-output 1024 --max-concurrency 10 --num-prompt 100`` (no
  ``--ignore-eos``: 101576 tokens out of 102400 asked; the script's one test prompt runs before the measured run, no
  other warm-up). The H100 variant is not stated (the row takes the SXM H100-80GB); no vLLM release is stated (the
  v0.10.1 release is of 2025-08-18). The printed block was read up to the median TPOT (the ITL lines were not
  read), so the row's ITL is the median TPOT.

- vLLM pull request 27323 (https://github.com/vllm-project/vllm/pull/27323, 2025-10-22, merged; the "Before"
  column only): zai-org/GLM-4.6 (bf16) on 8 x MI300X, tensor parallel 8, ROCm 7.0.0, "Benchmarking on v0.11.0",
  ``vllm serve zai-org/GLM-4.6 --no-enable-prefix-caching --tensor-parallel-size 8 --gpu-memory-utilization 0.85``;
  ``vllm bench serve --backend openai-chat --endpoint /v1/chat/completions --dataset-name random --ignore-eos``
  (the chat template's tokens are added to each prompt and not counted), 1000 prompts at ``--max-concurrency 64``,
  1024 in / 128 out (the printed total token throughput is exactly 9 times the output throughput, so every prompt
  counted 1024 tokens) and 128 in / 1024 out. No warm-up stated. The 1024 / 128 table was read only as far as its
  throughput lines, so the row carries the output throughput only (TTFT and ITL
  ``None``: published, but not read) and the 128 / 1024 case is left out.

Import this module through ``performance_references``, not before it (it imports ``Measurement`` from there).
"""

from __future__ import annotations

from performance_references import Measurement

_FOUND = 2
"""The clean test these sources were found for (``CLEAN_TEST`` when they were added)."""

_GUIDELLM_SWEEP = (
    "https://github.com/vllm-project/guidellm/blob/5f30affc7a55895ab1e21564e4b5f76f6e3f7348/docs/examples/"
    "optimal_concurrency.md"
)
_GUIDELLM_NOTE = (
    "GuideLLM sweep on 1 x A100 80GB, Llama-3.1-8B-Instruct (the page names no dtype: the checkpoint's bf16 at vLLM's "
    "default --dtype auto), synthetic 1000 in / 1000 out; TTFT and ITL are the printed p50s (GuideLLM's ITL is per request, a TPOT); "
    "endpoint, vLLM release, warm-up and "
    "prefix caching not stated (V1 defaults: prefix caching and chunked prefill on)"
)

ROWS: tuple[Measurement, ...] = (
    # Qwen3-30B-A3B (bf16, mixture of experts), 1 x H100, vLLM main of 2025-08-19, 2048 in / 1024 out at 10.
    Measurement("qwen3-30b-a3b-h100-2042-1016-c10", "Qwen/Qwen3-30B-A3B", "H100-80GB", 1, 2042, 1016, 10, 739.79,
                300.05, 13.17, "median", "https://github.com/vllm-project/vllm/pull/23151", "2025-08-19",
                family="qwen3-moe", requests=100, varied_lengths=True, found_after_fit=_FOUND,
                note="baseline (untuned fused-MoE config) of the pull request; benchmark_serving.py --backend vllm "
                     "(/v1/completions), random 2048 in / 1024 out asked, no --ignore-eos; tokens = the run's totals "
                     "(204169 in, 101576 out) / 100; 100 prompts at --max-concurrency 10; TTFT is the printed median "
                     "(mean 267.22 ms); ITL is the printed median TPOT (mean 13.18 ms; the ITL lines were not read)"
                     "; server VLLM_USE_DEEP_GEMM=1 vllm serve Qwen/Qwen3-30B-A3B, no other flag "
                     "(prefix caching on by default); 'on H100', variant not stated; vLLM release not stated"),
    # GLM-4.6 (bf16, mixture of experts), 8 x MI300X, tensor parallel 8, vLLM v0.11.0, 1024 in / 128 out at 64.
    Measurement("glm-4.6-8xmi300x-1024-128-c64", "zai-org/GLM-4.6", "MI300X", 8, 1024, 128, 64, 794.73, None,
                None, "median", "https://github.com/vllm-project/vllm/pull/27323", "2025-10-22", family="glm-moe",
                requests=1000, found_after_fit=_FOUND,
                note="'Before' column of the pull request (vLLM v0.11.0, ROCm 7.0.0, untuned fused-MoE config); "
                     "vllm bench serve --backend openai-chat (/v1/chat/completions), random 1024 in / 128 out, "
                     "--ignore-eos, 1000 prompts at --max-concurrency 64; server --no-enable-prefix-caching "
                     "--gpu-memory-utilization 0.85; no warm-up stated; TTFT and ITL published but not read, so "
                     "None"),
    # Llama 3.1 8B Instruct, 1 x A100 80GB, GuideLLM sweep at 1000 in / 1000 out.
    Measurement("llama-8b-a100-80gb-guidellm-1000-1000-c1", "meta-llama/Llama-3.1-8B-Instruct", "A100-80GB", 1,
                1000, 1000, 1, 90.2, 79.5, 11.0, "median", _GUIDELLM_SWEEP, "undated (after 2025-03)",
                family="llama-3.1", found_after_fit=_FOUND,
                note="synchronous strategy (one request at a time, a closed loop of 1; printed mean concurrency 1.0, "
                     "0.1 requests/s, TTFT p95 115.2 ms, ITL p95 11.1 ms); " + _GUIDELLM_NOTE),
    *(
        Measurement(f"llama-8b-a100-80gb-guidellm-1000-1000-rate{index}", "meta-llama/Llama-3.1-8B-Instruct",
                    "A100-80GB", 1, 1000, 1000, 0, tput, ttft, itl, "median", _GUIDELLM_SWEEP,
                    "undated (after 2025-03)", family="llama-3.1", request_rate=round(tput / 1000, 4),
                    found_after_fit=_FOUND,
                    note=f"constant strategy (evenly spaced arrivals, not Poisson; no concurrency cap; run bounded by "
                         f"120 s, request count not stated): request rate = output tokens/s {tput} / 1000 output "
                         f"tokens (printed {rps} requests/s, mean concurrency {conc}); TTFT p95 {ttft95} ms, ITL p95 "
                         f"{itl95} ms; the page calls it {zone}; " + _GUIDELLM_NOTE)
        for index, conc, rps, tput, ttft, ttft95, itl, itl95, zone in (
            # strategy, mean concurrency, printed req/s, output tok/s, TTFT p50 and p95 ms, ITL p50 and p95 ms, zone
            (1, 3.8, 0.3, 327.7, 95.0, 100.1, 11.5, 11.6, "under-utilized"),
            (2, 7.1, 0.5, 569.7, 97.7, 102.8, 12.3, 12.4, "under-utilized"),
            (3, 10.8, 0.8, 809.4, 100.4, 105.8, 13.3, 13.4, "under-utilized"),
            (4, 14.7, 1.0, 1047.9, 100.4, 108.4, 14.0, 14.1, "the sweet spot"),
            (5, 21.0, 1.2, 1274.9, 107.8, 115.9, 16.6, 16.7, "the sweet spot"),
            (6, 27.8, 1.4, 1496.5, 117.7, 126.6, 19.2, 19.3, "the sweet spot"),
            (7, 33.7, 1.6, 1728.6, 123.5, 133.9, 19.8, 19.9, "the sweet spot"),
            (8, 46.0, 1.7, 1911.7, 132.6, 146.6, 25.0, 25.5, "over-saturated"),
        )
    ),
)
"""The rows found for the second clean test from vLLM-project and Kubernetes-stack sources."""
