"""Published vLLM V1 serving measurements found for the third clean test of the performance model (its first half).

Every row carries ``found_after_fit=3``: these sources were searched for while the model's structure and constants
were being changed, and are held out whole (rule 6 of ``bench/performance_references.py``). Figures are copied as
the source prints them; where a row's tokens per request come from the run's totals, the note says how.

Sources:

- llm-ie-benchmarks (https://github.com/Michaelvll/llm-ie-benchmarks, ``sgl/``): SkyPilot jobs on one node of 8 x
  H200 (``accelerators: H200:8``; the repository's README says the runs were on Nebius H200 machines).
  ``sgl/benchmark.yaml`` installs ``vllm==0.8.4`` (V1 by default from 0.8.0; no ``VLLM_USE_V1`` is set) and starts
  ``VLLM_USE_FLASHINFER_SAMPLER=1 vllm serve deepseek-ai/DeepSeek-R1 --tensor-parallel-size 8 --trust-remote-code
  --no-enable-prefix-caching --disable-log-requests`` (prefix caching stated off; the checkpoint's own FP8 weights),
  once per job. The load is SGLang's ``python -m sglang.bench_serving --backend vllm`` (the completions endpoint, no
  chat template), random dataset with ``--random-range-ratio 1`` (every prompt exactly the asked length, built from
  ShareGPT text; the printed totals equal prompts x length), ``ignore_eos`` on (``disable_ignore_eos=False`` in the
  printed arguments; every run generated all the tokens asked), ``--request-rate 10`` (Poisson, no concurrency
  cap) and ``seed=1``, one warm-up request before each run, for 1000 in / 2000 out, 5000 / 1000, 10000 / 500 and
  30000 / 100, one after another on the same server. Two jobs: ``NUM_PROMPTS`` 50 (``sgl/logs/vllm-deepseek-r1.log``)
  and 200 (``sgl/logs/vllm-deepseek-r1-200.log``; the index holds no ``benchmark.yaml`` at that log's commit, but
  the version at the 50-prompt log's commit and the latest stored one both install 0.8.4 and pass
  ``--no-enable-prefix-caching``, and the log's printed arguments match). The output prints mean and median TTFT
  and ITL; rows carry the medians (the notes give the means). The results were discussed in sgl-project/sglang pull
  request 5611 and the repository's issue 3, both of 2025-04-22.

Sources read and not used: the same repository's ``vllm/`` runs (vLLM's own
``benchmark_serving.py``, but the serve flags live in another repository the index does not hold, and prompts drawn
with seed 0 share their first tokens across input lengths, so prefix-cache hits cannot be ruled out); an A100 80GB
PCIe TP1/TP2 study (cssnoeasy/a100-vllm-benchmark-blog: three repeats with one seed and prefix caching on, repeat 1
far slower than 2 and 3, and only means over repeats published); a Qwen3-32B-FP8 single-server run on an RTX PRO 6000
(lukaLLM/AI_Inference_Benchmarks_RTX600PRO_L40S: its vLLM compose file and version are not in the repository);
systalyze/vllm-benchmarks (only summary ratios published, no per-run TTFT); and Gemma-4, Qwen3.6, Nemotron and MI100
runs (not in the catalog).

Import this module through ``performance_references``, not before it (it imports ``Measurement`` from there).
"""

from __future__ import annotations

from performance_references import Measurement

_FOUND = 3
"""The clean test these rows were found for (``CLEAN_TEST`` once they are added)."""

_LLM_IE = "https://github.com/Michaelvll/llm-ie-benchmarks/blob/"
_LLM_IE_50 = _LLM_IE + "decfb3815be6f61a6752241dbe4863d2884e534a/sgl/logs/vllm-deepseek-r1.log"
_LLM_IE_200 = _LLM_IE + "d553e2aa5dd1dc2ed9cd2ab7a0a87f6dda8fdc9d/sgl/logs/vllm-deepseek-r1-200.log"
_LLM_IE_DATE = "2025-04 (vLLM 0.8.4, released 2025-04-14; the results are quoted in sglang PR 5611 of 2025-04-22)"
_LLM_IE_NOTE = (
    "sglang.bench_serving --backend vllm (/v1/completions), random {isl} in / {osl} out, --random-range-ratio 1, "
    "ignore_eos on, {n} prompts at --request-rate 10 (Poisson, no --max-concurrency), seed 1, 1 warm-up request; "
    "vLLM 0.8.4, --no-enable-prefix-caching (stated), VLLM_USE_FLASHINFER_SAMPLER=1; all {tout} tokens asked were "
    "generated; TTFT and ITL are the printed medians (means {mttft} and {mitl} ms; printed mean concurrency {conc})"
)

ROWS: tuple[Measurement, ...] = (
    # DeepSeek-R1 (FP8 weights), 8 x H200, tensor parallel 8, vLLM 0.8.4, 50 and 200 prompts at 10 requests/s.
    *(
        Measurement(f"deepseek-r1-8xh200-rate10-n{n}-{isl}-{osl}", "deepseek-ai/DeepSeek-R1", "H200", 8, isl, osl,
                    0, tput, ttft, itl, "median", source, _LLM_IE_DATE, weight_dtype="fp8", family="deepseek-moe",
                    request_rate=10.0, requests=n, found_after_fit=_FOUND,
                    note=_LLM_IE_NOTE.format(isl=isl, osl=osl, n=n, tout=n * osl, mttft=mttft, mitl=mitl, conc=conc))
        for n, source, isl, osl, tput, ttft, itl, mttft, mitl, conc in (
            # prompts, source, input and output tokens, output tok/s, median TTFT ms, median ITL ms, mean TTFT ms,
            # mean ITL ms, printed mean concurrency
            (50, _LLM_IE_50, 1000, 2000, 1052.20, 314.12, 45.14, 328.06, 46.12, 48.51),
            (50, _LLM_IE_50, 5000, 1000, 799.60, 5924.34, 47.88, 5793.65, 54.32, 47.89),
            (50, _LLM_IE_50, 10000, 500, 436.70, 14881.48, 51.01, 14620.56, 79.45, 47.16),
            (50, _LLM_IE_50, 30000, 100, 37.82, 63173.23, 495.43, 62988.26, 371.47, 37.64),
            (200, _LLM_IE_200, 1000, 2000, 2683.27, 326.31, 63.21, 343.04, 67.17, 180.10),
            (200, _LLM_IE_200, 5000, 1000, 1117.89, 20816.75, 58.91, 47140.98, 83.32, 145.44),
            (200, _LLM_IE_200, 10000, 500, 347.77, 104144.38, 53.16, 114520.34, 145.26, 129.88),
            (200, _LLM_IE_200, 30000, 100, 33.65, 286814.85, 616.68, 284684.26, 527.34, 113.29),
        )
    ),
)
"""Every row of this module (all held out: ``found_after_fit`` is the latest clean test)."""
