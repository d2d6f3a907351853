"""Published vLLM V1 serving measurements found for the third clean test of the performance model (its second half).

Every row carries ``found_after_fit=3``: these sources were searched for while the model's structure and constants
were being changed, and are held out whole (rule 6 of ``bench/performance_references.py``). Figures are copied as
the source prints them; where a row's tokens per request come from the run's totals, the note says how.

Sources:

- EvalScope's comparison of its load tester with ``vllm bench serve``
  (https://github.com/modelscope/evalscope, ``docs/zh/user_guides/stress_test/vs_vllm_bench.md``): one "A100 80G"
  (form factor not stated), vLLM v0.11.0, ``python -m vllm.entrypoints.openai.api_server --model
  Qwen/Qwen2.5-0.5B-Instruct --gpu-memory-utilization 0.5 --no-enable-prefix-caching`` (prefix caching stated off).
  Load: ``vllm bench serve --backend openai-chat --endpoint /v1/chat/completions``, random 100 in / 100 out,
  ``--ignore-eos``, 500 prompts at ``--max-concurrency 50`` (default seed). Before it the page runs one 1-prompt
  check with each tool (a warm-up in effect). The printed block gives mean/median TTFT, TPOT and ITL; the row
  takes the medians. Run on 2025-10-20 (the date in the page's EvalScope log).

- A speculative-decoding and FP8 course project (https://github.com/NnamdiOdozi/spec_dec_quant_hw): one "NVIDIA
  H100 80GB HBM3" (``outputs/nvidia_smi.txt``), vLLM 0.20.0 (``outputs/env_vllm_freeze.txt``), ``vllm serve
  Qwen/Qwen3-8B --gpu-memory-utilization 0.90 --max-model-len 2048`` (``scripts/serve_vllm.sh.bak_20260702_101427``;
  prefix caching not set, so vLLM's default, on). Load (``scripts/bench_vllm.sh``): ``vllm bench serve`` with its
  default ``--backend openai`` (``/v1/completions``), ``--dataset-name hf --dataset-path philschmid/mt-bench``, 80
  prompts at ``--max-concurrency 8``, no ``--ignore-eos``, the tool's output length of 256 (the printed arguments:
  ``custom_output_len=256``), seed 0, no warm-ups beyond the tool's initial single-prompt test. The only row is
  the first baseline run (``outputs/benchmarks/manual_baseline_bench_20260702_083751.txt``, 2026-07-02): a second
  baseline run 8 minutes later sent the same 80 prompts with prefix caching on and is left out; so are the FP8
  (a local llmcompressor FP8-dynamic checkpoint: its first run's throughput is dominated by a 7 s cold first
  request, its second run repeats the prompts) and the EAGLE-3 speculative runs (speculative decoding is outside
  the model).

Sources read and not used: an RTX 4090 Mistral-7B-Instruct-v0.3 sweep (mushfiqrahman.dev: 256 / 128, 300 prompts
at concurrency 4 to 48, mean and median TTFT, but no vLLM release, no date and no ITL in the stored text); Database
Mart's A40 page (100 in / 600 out, bursts of 50 and 100, median TTFT and TPOT, but no vLLM release and no date);
dennislee22/vLLM-benchmarking (A100 80GB; its own server logs print prefix-cache hit rates of 39-54 % across runs);
ree2raz/inference-bench (L4 and A100, vLLM 0.8.5: custom client on /v1/chat/completions, templated prompts reused by
the warm-up, the three repeats and runs of up to 1920 requests over 100 prompts with prefix caching on); an L4
Mistral-7B C1-C8 study (custom harness, mixed S/M/L buckets with no stated mean lengths, p50/p95 only); the docs of
ngkore (no GPU named) and crazyguitar/pysheeet (commands only); kikijiki/poot (vLLM runs errored on L40S and A40); an
A10G TensorRT-LLM vs vLLM summary (no vLLM release, no mean prompt length); Red Hat's MLPerf v5.1 L40S and H100 results
(MLPerf harness, no concurrency); an MI325X paper (arXiv 2603.10031: abstract only, KV offloading and block-size
changes); Dynamo issues 2437, 2552 and 3774 (disaggregated or Dynamo-frontend serving); BBuf/AI-Infra-Auto-Driven-SKILLS
PR 18 (P99 TTFT only).

Import this module through ``performance_references``, not before it (it imports ``Measurement`` from there).
"""

from __future__ import annotations

from performance_references import Measurement

_FOUND = 3
"""The clean test these rows were found for (``CLEAN_TEST`` once they are added)."""

_EVALSCOPE = (
    "https://github.com/modelscope/evalscope/blob/9057a00bb66b3f68bf635c7e8f4ba9dbb5eda8c0/docs/zh/user_guides/"
    "stress_test/vs_vllm_bench.md"
)
_SPEC_DEC = (
    "https://github.com/NnamdiOdozi/spec_dec_quant_hw/blob/132c4e9c4d327809775ad4811f74c4092c76ef55/outputs/"
    "benchmarks/manual_baseline_bench_20260702_083751.txt"
)

ROWS: tuple[Measurement, ...] = (
    # Qwen2.5-0.5B-Instruct, bf16, 1 x A100 80GB, vLLM v0.11.0, random 100 / 100, 500 prompts at concurrency 50.
    Measurement("qwen2.5-0.5b-a100-80gb-100-100-c50", "Qwen/Qwen2.5-0.5B-Instruct", "A100-80GB", 1, 100, 100, 50,
                9802.05, 23.82, 4.58, "median", _EVALSCOPE, "2025-10-20 (run date in the page's log)",
                family="qwen2.5", requests=500, found_after_fit=_FOUND,
                note="vllm bench serve --backend openai-chat --endpoint /v1/chat/completions (the server applies the "
                     "chat template, so the prompts the engine sees are longer than the 100 tokens counted: 49932 in "
                     "total / 500), random 100 in / 100 out, --ignore-eos (50000 tokens out in total), 500 prompts "
                     "at --max-concurrency 50; vLLM v0.11.0, --gpu-memory-utilization 0.5, "
                     "--no-enable-prefix-caching (stated); the page first shows a 1-prompt run of each tool; GPU named "
                     "'A100 80G'; TTFT and ITL are the printed medians (means 33.14 and 4.69 ms; median TPOT "
                     "4.73 ms; printed peak concurrent requests 154)"),
    # Qwen3-8B, bf16, 1 x H100 SXM, vLLM 0.20.0, MT-Bench prompts (76 tokens on average) / 256 out, concurrency 8.
    Measurement("qwen3-8b-h100-mtbench-c8", "Qwen/Qwen3-8B", "H100-80GB", 1, 76, 256, 8,
                1066.12, 31.36, 7.00, "median", _SPEC_DEC, "2026-07-02", family="qwen3", requests=80,
                async_scheduling=True, found_after_fit=_FOUND,
                note="vllm bench serve --backend openai (/v1/completions), --dataset-name hf philschmid/mt-bench, 80 "
                     "prompts at --max-concurrency 8: tokens = the run's totals (6078 in, 20480 out) / 80 (every "
                     "request generated the 256 tokens asked, so output lengths do not vary; prompt lengths do, and "
                     "all fit one step; no --ignore-eos); vLLM 0.20.0 (async scheduling on by "
                     "default), served with --gpu-memory-utilization 0.90 --max-model-len 2048, prefix caching not "
                     "set (default on) and the first run on this server; no warm-up but the tool's initial "
                     "single-prompt test (mean TTFT 130.50 ms and P99 843.91 ms reflect the cold first requests); "
                     "TTFT and ITL are the printed medians (median TPOT 7.01 ms)"),
)
"""Every row of this module (all held out: ``found_after_fit`` is the latest clean test)."""
