"""Published vLLM start-up figures the capacity planner is measured against.

Every number is copied from a cited source; none is computed here. Sources:

* ``ISSUE``: the three H100 reference points of the capacity-planner issue (vLLM 0.19,
  gpu_memory_utilization 0.95, max_model_len 8192); the same runs appear in REPORT's run matrix.
* ``REPORT``: llm-d-incubation/llm-d-planner docs/accuracy/vllm-v0.19.0-accuracy-report.md, vLLM
  0.19.0 start-up logs on H100 80GB (79.19 GiB), gpu_memory_utilization 0.95, max_model_len 8192:
  "Model loading took", "torch peak memory increase", "non-torch forward increase memory",
  "Available KV cache memory" and "GPU KV cache size" as parsed by that report's parse_logs.py.
  Its Part 2 adds Qwen3-14B on 0.16, 0.17 and 0.18.
* ``EMPIRICAL``: llm-d/llm-d-benchmark config_explorer/empirical-vllm-memory-results.md, vLLM V1
  before 0.17 (release not recorded; its activation figures match REPORT's 0.15/0.16 ones) on
  H100 (79.18 GiB), gpu_memory_utilization 0.9, max_model_len 16000.

``fitted`` marks runs whose activation figure was used to fit SAMPLER_LOGIT_COPIES or
FORWARD_HIDDEN_COPIES (pulumi_vllm.capacity.planner); their KV-cache figures are then in-sample.
"""

from __future__ import annotations

from dataclasses import dataclass

from pulumi_vllm.models.facts import ModelFacts

ISSUE = "capacity-planner issue (vLLM 0.19 H100 logs; also REPORT run matrix)"
REPORT = "llm-d-incubation/llm-d-planner docs/accuracy/vllm-v0.19.0-accuracy-report.md"
EMPIRICAL = "llm-d/llm-d-benchmark config_explorer/empirical-vllm-memory-results.md"

QWEN3_0_6B = ModelFacts(
    # https://huggingface.co/Qwen/Qwen3-0.6B/blob/main/config.json; 0.44B non-embedding parameters
    # plus the tied 151936 x 1024 embedding (model card).
    num_hidden_layers=28, num_attention_heads=16, num_key_value_heads=8, head_dim=128,
    hidden_size=1024, vocab_size=151936, num_parameters=0.44e9 + 151936 * 1024,
    max_position_embeddings=40960, source="https://huggingface.co/Qwen/Qwen3-0.6B/blob/main/config.json",
)


@dataclass(frozen=True)
class Reference:
    """One published vLLM start-up: its settings and what vLLM reported (None: not reported)."""

    label: str
    model_id: str
    vllm_version: str
    tensor_parallel_size: int
    pipeline_parallel_size: int
    max_model_len: int
    gpu_memory_utilization: float
    source: str
    weights_gib: float | None = None
    kv_cache_tokens: int | None = None
    kv_cache_gib: float | None = None
    activation_gib: float | None = None
    non_torch_gib: float | None = None
    fits: bool = True
    kv_cache_dtype: str = "auto"
    weight_dtype: str | None = None
    dense: bool = True
    fitted: bool = False
    gpu_total_gib: float = 79.19
    facts: ModelFacts | None = None


LLAMA_8B = "meta-llama/Llama-3.1-8B-Instruct"
QWEN_7B = "Qwen/Qwen2.5-7B-Instruct"
V19 = {"vllm_version": "0.19.0", "max_model_len": 8192, "gpu_memory_utilization": 0.95}
OLD = {"vllm_version": "0.16.0", "max_model_len": 16000, "gpu_memory_utilization": 0.9, "gpu_total_gib": 79.18}

REFERENCES: tuple[Reference, ...] = (
    Reference("Llama-3.1-8B TP1", LLAMA_8B, tensor_parallel_size=1, pipeline_parallel_size=1, source=ISSUE,
              weights_gib=14.99, kv_cache_tokens=476_016, kv_cache_gib=58.11, activation_gib=1.89,
              non_torch_gib=0.25, fitted=True, **V19),
    Reference("Mixtral-8x7B TP2", "mistralai/Mixtral-8x7B-Instruct-v0.1", tensor_parallel_size=2,
              pipeline_parallel_size=1, source=ISSUE, weights_gib=43.51, kv_cache_tokens=465_936,
              activation_gib=1.21, dense=False, fitted=True, **V19),
    Reference("Qwen2.5-72B TP2", "Qwen/Qwen2.5-72B-Instruct", tensor_parallel_size=2, pipeline_parallel_size=1,
              source=ISSUE, weights_gib=67.80, kv_cache_tokens=19_920, **V19),
    Reference("Llama-3.1-8B TP1 fp8 KV", LLAMA_8B, tensor_parallel_size=1, pipeline_parallel_size=1,
              source=REPORT, weights_gib=14.99, kv_cache_tokens=952_032, kv_cache_gib=58.11, kv_cache_dtype="fp8",
              **V19),
    Reference("Llama-3.1-8B TP1 float32", LLAMA_8B, tensor_parallel_size=1, pipeline_parallel_size=1,
              source=REPORT, weights_gib=29.98, kv_cache_tokens=175_296, kv_cache_gib=42.80, activation_gib=2.21,
              weight_dtype="float32", **V19),
    Reference("Llama-3.1-8B TP2", LLAMA_8B, tensor_parallel_size=2, pipeline_parallel_size=1, source=REPORT,
              weights_gib=7.51, activation_gib=1.89, non_torch_gib=2.07, **V19),
    Reference("Llama-3.1-8B TP4", LLAMA_8B, tensor_parallel_size=4, pipeline_parallel_size=1, source=REPORT,
              weights_gib=3.77, activation_gib=1.89, non_torch_gib=2.13, **V19),
    Reference("Llama-3.1-8B PP2 (rank 0)", LLAMA_8B, tensor_parallel_size=1, pipeline_parallel_size=2,
              source=REPORT, weights_gib=7.51, activation_gib=1.10, non_torch_gib=0.07, fitted=True, **V19),
    Reference("Llama-3.1-8B PP4 (rank 0)", LLAMA_8B, tensor_parallel_size=1, pipeline_parallel_size=4,
              source=REPORT, weights_gib=4.26, activation_gib=1.05, non_torch_gib=0.07, fitted=True, **V19),
    Reference("Qwen2.5-7B TP1", QWEN_7B, tensor_parallel_size=1, pipeline_parallel_size=1, source=REPORT,
              weights_gib=14.25, kv_cache_tokens=1_096_000, kv_cache_gib=58.53, activation_gib=2.21,
              non_torch_gib=0.24, fitted=True, **V19),
    Reference("Qwen2.5-7B TP1 fp8 KV", QWEN_7B, tensor_parallel_size=1, pipeline_parallel_size=1, source=REPORT,
              kv_cache_tokens=2_192_000, kv_cache_gib=58.53, kv_cache_dtype="fp8", **V19),
    Reference("Qwen2.5-7B TP2", QWEN_7B, tensor_parallel_size=2, pipeline_parallel_size=1, source=REPORT,
              weights_gib=7.12, activation_gib=2.21, non_torch_gib=2.06, **V19),
    Reference("Qwen2.5-7B TP4", QWEN_7B, tensor_parallel_size=4, pipeline_parallel_size=1, source=REPORT,
              weights_gib=3.55, activation_gib=2.21, non_torch_gib=2.13, **V19),
    Reference("Llama-3.1-8B w8a8 (int8)", LLAMA_8B, tensor_parallel_size=1, pipeline_parallel_size=1,
              source=REPORT, weights_gib=8.49, kv_cache_gib=64.60, weight_dtype="int8", **V19),
    Reference("Llama-3.1-8B w4a16 (GPTQ)", LLAMA_8B, tensor_parallel_size=1, pipeline_parallel_size=1,
              source=REPORT, weights_gib=5.38, kv_cache_gib=67.71, weight_dtype="int4", **V19),
    Reference("Llama-3.1-8B --quantization fp8", LLAMA_8B, tensor_parallel_size=1, pipeline_parallel_size=1,
              source=REPORT, weights_gib=8.49, kv_cache_gib=64.61, weight_dtype="fp8", **V19),
    Reference("Qwen2.5-7B FP8-dynamic", "RedHatAI/Qwen2.5-7B-Instruct-FP8-dynamic", tensor_parallel_size=1,
              pipeline_parallel_size=1, source=REPORT, weights_gib=8.14, kv_cache_gib=64.64, **V19),
    Reference("Llama-3.3-70B FP8-dynamic TP2", "RedHatAI/Llama-3.3-70B-Instruct-FP8-dynamic",
              tensor_parallel_size=2, pipeline_parallel_size=1, source=REPORT, weights_gib=33.88,
              kv_cache_gib=37.28, **V19),
    Reference("Llama-3.3-70B FP8-dynamic TP4", "RedHatAI/Llama-3.3-70B-Instruct-FP8-dynamic",
              tensor_parallel_size=4, pipeline_parallel_size=1, source=REPORT, weights_gib=16.96,
              kv_cache_gib=54.09, **V19),
    Reference("Qwen3-14B v0.18", "Qwen/Qwen3-14B", vllm_version="0.18.0", tensor_parallel_size=1,
              pipeline_parallel_size=1, max_model_len=8192, gpu_memory_utilization=0.95, source=REPORT,
              weights_gib=27.52, kv_cache_gib=45.23, activation_gib=2.23, non_torch_gib=0.25, fitted=True),
    Reference("Qwen3-14B v0.17", "Qwen/Qwen3-14B", vllm_version="0.17.0", tensor_parallel_size=1,
              pipeline_parallel_size=1, max_model_len=8192, gpu_memory_utilization=0.95, source=REPORT,
              weights_gib=27.52, kv_cache_gib=45.34, activation_gib=2.23, non_torch_gib=0.13, fitted=True),
    Reference("Qwen3-14B v0.16", "Qwen/Qwen3-14B", vllm_version="0.16.0", tensor_parallel_size=1,
              pipeline_parallel_size=1, max_model_len=8192, gpu_memory_utilization=0.95, source=REPORT,
              weights_gib=27.52, kv_cache_gib=41.94, activation_gib=5.64, non_torch_gib=0.13, fitted=True),
    Reference("Llama-3.1-8B (<0.17)", LLAMA_8B, tensor_parallel_size=1, pipeline_parallel_size=1, source=EMPIRICAL,
              weights_gib=14.99, kv_cache_gib=51.38, activation_gib=4.76, non_torch_gib=0.13, fitted=True, **OLD),
    Reference("Qwen3-0.6B (<0.17)", "Qwen/Qwen3-0.6B", tensor_parallel_size=1, pipeline_parallel_size=1,
              source=EMPIRICAL, weights_gib=1.12, kv_cache_gib=64.45, activation_gib=5.56, non_torch_gib=0.13,
              fitted=True, facts=QWEN3_0_6B, **OLD),
    Reference("Qwen3-32B len 16000 (<0.17)", "Qwen/Qwen3-32B", tensor_parallel_size=1, pipeline_parallel_size=1,
              source=EMPIRICAL, weights_gib=61.03, kv_cache_gib=4.45, activation_gib=5.64, non_torch_gib=0.14,
              fitted=True, **OLD),
    # EMPIRICAL lists this start as FAILED without the error; the same model's cache at 16000 (4.45 GiB,
    # about 18k tokens of 256 KiB) cannot hold one 32000-token request.
    Reference("Qwen3-32B len 32000 (<0.17)", "Qwen/Qwen3-32B", tensor_parallel_size=1, pipeline_parallel_size=1,
              source=EMPIRICAL, weights_gib=61.03, fits=False,
              **{**OLD, "max_model_len": 32000}),
    Reference("Llama-3.3-70B FP8 TP2 (<0.17)", "RedHatAI/Llama-3.3-70B-Instruct-FP8-dynamic",
              tensor_parallel_size=2, pipeline_parallel_size=1, source=EMPIRICAL, weights_gib=33.88,
              kv_cache_gib=32.0, activation_gib=4.84, non_torch_gib=0.55, **OLD),
    Reference("Llama-3.3-70B FP8 TP1 (<0.17)", "RedHatAI/Llama-3.3-70B-Instruct-FP8-dynamic",
              tensor_parallel_size=1, pipeline_parallel_size=1, source=EMPIRICAL, weights_gib=67.72,
              kv_cache_gib=-1.44, fits=False, **OLD),
)
