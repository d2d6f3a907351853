"""Published vLLM V1 serving measurements from sources searched for while the performance model was being changed.

Every row carries ``found_after_fit=4``: these sources are the model's fourth clean test, held out whole (rule 6 of
``bench/performance_references.py``) and read only after the model is committed. Figures are copied as the source
prints them; where a row's figures are derived, its note says how.

Sources:

- CloudRift's server-benchmark repository (https://github.com/cloudrift-ai/server-benchmark), the benchmark
  artifacts behind CloudRift's blog posts, ``experiments/golden-bench-2026/serving_mpk_qwen3_8b_a100/``: the "stock
  vLLM" reference lane of a Mirage persistent-kernel comparison, run 2026-08-14 on one "NVIDIA A100-SXM4-80GB"
  (``RESULTS.md``). The server log (``results/a100x1_stock_serve_r0.log``) prints vLLM 0.23.0 (V1 engine, asynchronous
  scheduling enabled) with the non-default arguments ``dtype bfloat16, max_model_len 4096, enable_prefix_caching
  False`` for ``Qwen/Qwen3-8B``: prefix caching is off. Each of five repeats starts a fresh server and sends
  ``vllm bench serve --backend openai --endpoint /v1/completions`` (no chat template), random dataset 128 tokens in /
  512 out (``random_range_ratio 0``, ``--ignore-eos``), 8 prompts at ``--max-concurrency 1``, after the tool's single
  initial test prompt (``num_warmups 0``). Every run generated all 4096 tokens asked.

- CloudRift's deplodock repository (https://github.com/cloudrift-ai/deplodock), the benchmark tool and artifacts
  behind CloudRift's "Qwen3 Coder on RTX 5090 and PRO 6000" write-up,
  ``experiments/Qwen3-Coder-30B-A3B-Instruct-AWQ/optimal_mcr_rtx5090/2026-03-03_02-07-22_417ad7f8/``: one "NVIDIA
  GeForce RTX 5090" (32607 MiB) per run, image ``vllm/vllm-openai:latest`` pulled 2026-03-03 (the release is not
  printed, so these rows keep ``async_scheduling`` off), ``vllm serve QuantTrio/Qwen3-Coder-30B-A3B-Instruct-AWQ
  --gpu-memory-utilization=0.9 --tensor-parallel-size 1 --max-model-len 114688 --max-num-seqs N`` with N equal to the
  client's ``--max-concurrency`` (so the cap never binds), a fresh container per run (three VMs ran three runs each).
  Client: ``vllm bench serve --max-concurrency N --num-prompts 80 --random-input-len 4000 --random-output-len 4000``
  with no ``--backend``, ``--endpoint``, ``--dataset-name``, ``--ignore-eos`` or seed given: the tool's defaults
  (random dataset, completions endpoint, seed 0); every run printed 320000 tokens in and 320000 out (80 x 4000), so
  lengths were fixed and no request stopped early. Prefix caching is vLLM's default (on); no warm-up run beyond the
  tool's single test prompt is stated. Concurrency 8 to 40 in steps of 4; the median TTFT grows from 0.8 s at 8 to
  2.8 s at 24 and 44 s at 40 while throughput stays near 1150 tok/s from 16 on.

- CloudRift's server-benchmark, ``results/pro6000_l40s_h100_h200/`` (by its name, the runs of the RTX PRO 6000 vs H100
  vs H200 comparison that https://www.cloudrift.ai/blog/benchmarking-b200 cites as its predecessor):
  ``zai-org/GLM-4.6`` (bf16) on one 8 x "NVIDIA H200" node (143771 MiB each, collected 2025-10-15 and 2025-10-16 per
  ``*_system_info.txt``), a single ``vllm/vllm-openai:latest`` instance (release not
  printed) with ``--tensor-parallel-size 8 --gpu-memory-utilization=0.9 --tool-call-parser glm45 --reasoning-parser
  glm45 --max-num-seqs 512 --max-model-len 8192``, started fresh for each run by ``benchmarks/3_vllm_benchmark.sh``.
  Client: ``vllm bench serve --dataset-name random --random-input-len 1000 --random-output-len 1000 --ignore-eos
  --backend openai-chat --endpoint /v1/chat/completions``, 2048 prompts at ``--max-concurrency 512`` and (the
  ``single-query/`` folder) 100 prompts at 1. The printed input totals (2045447 and 99839) are the client's recount of
  the decoded random prompts; the rows take their means rounded (999 and 998), and the chat template's tokens are not
  counted. Prefix caching is vLLM's default (on); no warm-up beyond the tool's test prompt is stated. The same
  directory's other H200 runs (Qwen3-Coder-480B AWQ, GLM-4.5-Air AWQ) serve two tensor-parallel replicas behind
  nginx and are left out.

- CloudRift's server-benchmark, ``results/rtx4900_rtx5900_pro6000_08_10_2025/``, the runs behind "RTX 4090 vs RTX
  5090 vs RTX PRO 6000: Comprehensive LLM Inference Benchmark" (2025-10-09,
  https://www.cloudrift.ai/blog/benchmarking-rtx-gpus-for-llm-inference; folder dated 2025-10-08): the
  single-instance runs of ``QuantTrio/Qwen3-Coder-30B-A3B-Instruct-AWQ`` on one RTX 5090 and one RTX 4090,
  ``vllm/vllm-openai:latest`` (release not printed) with ``--gpu-memory-utilization=0.9 --tensor-parallel-size 1
  --max-model-len 8192``; client as for GLM-4.6 above (random 1000 / 1000, ``--ignore-eos``, ``openai-chat``) with
  1200 prompts at ``--max-concurrency 400``; 1196622 tokens in (997 a prompt, the rows' input), all 1200000 out; the
  median TTFT is 118 s and 306 s, far above one prefill. The folder's multi-GPU runs (two or four replicas behind
  nginx) and its RTX PRO 6000 runs (Server or Workstation edition not stated) are left out.

TTFT and ITL are the medians ``vllm bench serve`` prints ("Median TTFT", "Median ITL"); notes give the means.

Import this module through ``performance_references``, not before it (it imports ``Measurement`` from there).
"""

from __future__ import annotations

from performance_references import Measurement

_FOUND = 4

_CLOUDRIFT_A100 = (
    "https://github.com/cloudrift-ai/server-benchmark/blob/87f8f31c829b4349693e59c02aed62a64ba79f08/"
    "experiments/golden-bench-2026/serving_mpk_qwen3_8b_a100/results/a100x1_stock_r0.txt"
)

_DEPLODOCK_5090 = (
    "https://github.com/cloudrift-ai/deplodock/blob/{commit}/experiments/"
    "Qwen3-Coder-30B-A3B-Instruct-AWQ/optimal_mcr_rtx5090/2026-03-03_02-07-22_417ad7f8/"
    "rtx5090x1_mc{c}_np80_mcr{c}_vllm_benchmark.txt"
)
_DEPLODOCK_5090_COMMITS = {
    8: "421ffd6c16e15c3d0f3bcdfa99bacd1cfd8f0457", 12: "b3fca48ba401aec158d832ae18d27b2320f2efd8",
    16: "744fabb0c342f578332ead2eed40c50c78d4735a", 20: "500c40a223369b8dd628322c4b00b9d9b6310253",
    24: "421ffd6c16e15c3d0f3bcdfa99bacd1cfd8f0457", 28: "421ffd6c16e15c3d0f3bcdfa99bacd1cfd8f0457",
    32: "5791a9db9d5cd35f90820245b8ff4ec1d9a15385", 36: "97c7d9e18c5a6d255d2dc692f6ac328657dfac06",
    40: "2aa2788a12fcda72bfd5207f479a9beb9d8578ab",
}
"""The stored commit of each run's result file."""

_CLOUDRIFT_GLM = (
    "https://github.com/cloudrift-ai/server-benchmark/blob/{commit}/results/pro6000_l40s_h100_h200/{sub}"
    "h200_x_8_zai-org_GLM-4.6_vllm_benchmark.txt"
)
_GLM_NOTE = (
    "vllm bench serve --backend openai-chat, /v1/chat/completions, random, --ignore-eos (all tokens generated); "
    "image vllm/vllm-openai:latest of 2025-10, release not printed; prefix caching default (on); --reasoning-parser "
    "glm45; input = printed total / prompts, rounded; "
)

_CLOUDRIFT_RTX = (
    "https://github.com/cloudrift-ai/server-benchmark/blob/5af039c512c105c9a6827711319c3f0d1af9cfdf/results/"
    "rtx4900_rtx5900_pro6000_08_10_2025/{gpu}_x_1_QuantTrio_Qwen3-Coder-30B-A3B-Instruct-AWQ_vllm_benchmark.txt"
)

ROWS: tuple[Measurement, ...] = (
    Measurement(
        "cloudrift-qwen3-8b-a100-128-512-c1", "Qwen/Qwen3-8B", "A100-80GB", 1, 128, 512, 1, 92.64, 24.85, 10.75,
        "median", _CLOUDRIFT_A100, "2026-08-14", family="qwen3", async_scheduling=True, requests=8,
        found_after_fit=_FOUND,
        note=(
            "repeat r0 of five (fresh server each; r1 prints 92.78 tok/s, median TTFT 23.72 ms, median ITL 10.73 ms); "
            "vllm bench serve --backend openai, /v1/completions; vLLM 0.23.0; prefix caching off (server log); "
            "--ignore-eos stated; no warm-up beyond the tool's single test prompt; 8 prompts at --max-concurrency 1; "
            "means: TTFT 30.14 ms, ITL 10.76 ms, TPOT 10.76 ms; max_model_len 4096"
        ),
    ),
    # Qwen3-Coder-30B-A3B-Instruct AWQ (4-bit weights), mixture of experts, 1 x RTX 5090, 4000 in / 4000 out.
    *(
        Measurement(f"deplodock-qwen3-coder-30b-awq-rtx5090-4000-4000-c{c}",
                    "QuantTrio/Qwen3-Coder-30B-A3B-Instruct-AWQ", "RTX-5090", 1, 4000, 4000, c, tput, ttft, itl,
                    "median",
                    _DEPLODOCK_5090.format(commit=_DEPLODOCK_5090_COMMITS[c], c=c), "2026-03-03",
                    weight_dtype="int4", family="qwen3-moe", requests=80, found_after_fit=_FOUND,
                    note=("vllm bench serve defaults (no --backend: completions endpoint; random dataset; no "
                          "--ignore-eos, all 320000 tokens generated); image vllm/vllm-openai:latest, release not "
                          f"printed; prefix caching default (on); --max-num-seqs {c}; fresh container; means: TTFT "
                          f"{mttft} ms, ITL {mitl} ms; median TPOT {tpot} ms"))
        for c, tput, ttft, itl, mttft, mitl, tpot in (
            (8, 869.30, 843.73, 8.81, 753.15, 9.02, 8.97),
            (12, 910.48, 775.62, 12.37, 805.74, 12.54, 12.77),
            (16, 1157.45, 814.95, 12.99, 956.15, 13.58, 13.57),
            (20, 1045.34, 1791.44, 15.93, 2064.43, 17.16, 16.99),
            (24, 1185.90, 2786.80, 15.36, 4956.54, 17.94, 17.15),
            (28, 1132.39, 4501.88, 16.04, 10471.12, 20.04, 18.28),
            (32, 1147.30, 6095.14, 15.84, 19298.51, 20.22, 18.21),
            (36, 1125.60, 13132.45, 16.32, 30388.28, 20.69, 18.98),
            (40, 1148.12, 44220.21, 15.80, 38886.71, 20.17, 18.19),
        )
    ),
    # GLM-4.6 (bf16), mixture of experts, 8 x H200, tensor parallel 8, 1000 in / 1000 out.
    Measurement("cloudrift-glm-4.6-8xh200-1000-1000-c512", "zai-org/GLM-4.6", "H200", 8, 999, 1000, 512, 4759.15,
                4155.46, 76.43, "median",
                _CLOUDRIFT_GLM.format(commit="9152dc094855d42f7a2818691be3549e3e21ed8f", sub=""), "2025-10-15",
                family="glm-moe", requests=2048, found_after_fit=_FOUND,
                note=_GLM_NOTE + "2045447 / 2048 prompts; peak concurrent requests 537; means: TTFT 7415.30 ms, "
                "ITL 96.56 ms; median TPOT 98.47 ms"),
    Measurement("cloudrift-glm-4.6-8xh200-1000-1000-c1", "zai-org/GLM-4.6", "H200", 8, 998, 1000, 1, 74.56, 197.81,
                13.21, "median",
                _CLOUDRIFT_GLM.format(commit="2568aac3993bf6bb74f5cca55b25a4254b9658e6", sub="single-query/"),
                "2025-10-16", family="glm-moe", requests=100, found_after_fit=_FOUND,
                note=_GLM_NOTE + "99839 / 100 prompts; means: TTFT 196.38 ms, ITL 13.25 ms; median TPOT 13.23 ms"),
    # Qwen3-Coder-30B-A3B-Instruct AWQ, 1 x RTX 5090 and 1 x RTX 4090, 1000 in / 1000 out, 400 clients.
    *(
        Measurement(f"cloudrift-qwen3-coder-30b-awq-{gpu}-1000-1000-c400",
                    "QuantTrio/Qwen3-Coder-30B-A3B-Instruct-AWQ", name, 1, 997, 1000, 400, tput, ttft, itl, "median",
                    _CLOUDRIFT_RTX.format(gpu=gpu), "2025-10-08", weight_dtype="int4", family="qwen3-moe",
                    requests=1200, found_after_fit=_FOUND,
                    note=("vllm bench serve --backend openai-chat, /v1/chat/completions, random, --ignore-eos (all "
                          "1200000 tokens generated); image vllm/vllm-openai:latest, release not printed; prefix "
                          "caching default (on); --max-model-len 8192; input = 1196622 / 1200 prompts, rounded; "
                          f"{note}"))
        for gpu, name, tput, ttft, itl, note in (
            ("rtx5090", "RTX-5090", 2288.09, 117530.70, 28.12,
             "peak concurrent requests 418; means: TTFT 108756.59 ms, ITL 42.24 ms; median TPOT 35.47 ms"),
            ("rtx4090", "RTX-4090", 1131.16, 305613.29, 25.41,
             "peak concurrent requests 414; means: TTFT 262205.54 ms, ITL 36.63 ms; median TPOT 29.80 ms"),
        )
    ),
)
"""The rows found for the fourth clean test."""
