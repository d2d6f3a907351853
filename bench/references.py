"""Published vLLM start-up figures the capacity planner is measured against.

Every number is copied from a cited source; none is computed here except where a comment says
which two logged figures it is the difference of. Settings a log does not state are vLLM's
defaults and are named in ``defaults``; a release the log does not name is given as the first
release of the accounting era the log's format and date place it in (``version_logged=False``,
the note says why), which is enough because :func:`pulumi_vllm.capacity.planner.accounting_for`
keys on the era, not the release.

Sources of the fitted era (``FITTED_ERA``):

* ``ISSUE``: three H100 reference points (vLLM 0.19, gpu_memory_utilization 0.95, max_model_len
  8192), the same runs as in REPORT's run matrix.
* ``REPORT``: llm-d-incubation/llm-d-planner docs/accuracy/vllm-v0.19.0-accuracy-report.md, vLLM
  0.19.0 start-up logs on H100 80GB (79.19 GiB), gpu_memory_utilization 0.95, max_model_len 8192:
  "Model loading took", "torch peak memory increase", "non-torch forward increase memory",
  "Available KV cache memory" and "GPU KV cache size" as parsed by that report's parse_logs.py.
  Its Part 2 adds Qwen3-14B on 0.16, 0.17 and 0.18.
* ``EMPIRICAL``: llm-d/llm-d-benchmark config_explorer/empirical-vllm-memory-results.md, vLLM V1
  before 0.17 (release not recorded; its activation figures match REPORT's 0.15/0.16 ones) on
  H100 (79.18 GiB), gpu_memory_utilization 0.9, max_model_len 16000.

``NEW_LOGS`` are start-up logs published in GitHub threads (``source`` is the thread), gathered
after every constant of :mod:`pulumi_vllm.capacity.accounting` was fitted. Many cannot be sized
(``unsized`` says why: a model outside the catalog whose config.json the thread does not give, a
GPU outside the GPU catalog whose total the log does not print, a layout the planner does not
model); they are kept so that the bench lists them.

The split, fixed before any number was compared and never changed to improve one:

* ``fitted`` is true only for a reference whose figures a constant was computed from (the
  docstrings in accounting.py name them). Such a reference is in-sample; every other is held-out.
* ``FITTED_ERA``: ``fitted`` as set when the constants were fitted (the activation constants on the
  single-GPU and pipeline runs; the other runs were never used).
* ``NEW_LOGS`` alternate by their order in the tuple: the 1st, 3rd, 5th... (``FIT_POOL``) may be
  used to fit a constant, and become ``fitted`` only when one is; the 2nd, 4th, 6th...
  (``HOLD_OUT``) are never fitted on. Fitted so far: the 1st (the V0 engine's forward copies and single-GPU
  non-torch memory, ``V0_*`` in accounting.py); every other new log is held-out.
  New logs are appended at the end, so the parity of the existing ones never changes.
"""

from __future__ import annotations

from dataclasses import dataclass

from pulumi_vllm.models.facts import ModelFacts

ISSUE = "llm-d-incubation/llm-d-planner docs/accuracy/vllm-v0.19.0-accuracy-report.md (run matrix)"
REPORT = "llm-d-incubation/llm-d-planner docs/accuracy/vllm-v0.19.0-accuracy-report.md"
REPORT_URL = "https://github.com/llm-d-incubation/llm-d-planner/blob/main/docs/accuracy/vllm-v0.19.0-accuracy-report.md"
EMPIRICAL = "llm-d/llm-d-benchmark config_explorer/empirical-vllm-memory-results.md"
EMPIRICAL_URL = "https://github.com/llm-d/llm-d-benchmark/blob/main/config_explorer/empirical-vllm-memory-results.md"

QWEN3_0_6B = ModelFacts(
    # https://huggingface.co/Qwen/Qwen3-0.6B/blob/main/config.json; 0.44B non-embedding parameters
    # plus the tied 151936 x 1024 embedding (model card).
    num_hidden_layers=28, num_attention_heads=16, num_key_value_heads=8, head_dim=128,
    hidden_size=1024, vocab_size=151936, num_parameters=0.44e9 + 151936 * 1024,
    max_position_embeddings=40960, source="https://huggingface.co/Qwen/Qwen3-0.6B/blob/main/config.json",
)

FAMILIES = ("dense", "moe", "fp8", "fp8-moe", "int8", "awq/gptq", "mxfp4", "mla", "vision", "hybrid", "nvfp4")
"""Family labels: how the weights and the attention are laid out, the axes the planner's error
depends on (``fp8-moe``: an FP8 mixture of experts; ``hybrid``: linear-attention or Mamba layers)."""


@dataclass(frozen=True)
class Reference:
    """One published vLLM start-up: its settings and what vLLM reported (None: not reported)."""

    label: str
    model_id: str
    vllm_version: str
    tensor_parallel_size: int
    pipeline_parallel_size: int
    max_model_len: int
    """0 when the log does not state it and the default cannot be told (unsized logs only)."""
    gpu_memory_utilization: float
    source: str
    weights_gib: float | None = None
    """"Model loading took N GiB" (V0: "Loading model weights took N GB", which is GiB), per GPU."""
    kv_cache_tokens: int | None = None
    """"GPU KV cache size: N tokens" (V0 errors: "maximum number of tokens ... in KV cache (N)")."""
    kv_cache_gib: float | None = None
    """"Available KV cache memory: N GiB" (V0: kv_cache_size / "the rest ... reserved for KV Cache")."""
    activation_gib: float | None = None
    non_torch_gib: float | None = None
    fits: bool | None = True
    """Whether the server started (None: the thread does not say)."""
    kv_cache_dtype: str = "auto"
    weight_dtype: str | None = None
    family: str = "dense"
    fitted: bool = False
    gpu: str = "H100-80GB"
    """GPU catalog name (pulumi_vllm.capacity.gpus), or what the log calls it when outside the catalog."""
    gpu_total_gib: float | None = 79.19
    """Total memory the log prints for the GPU; None: not printed, the catalog's figure is used."""
    facts: ModelFacts | None = None
    facts_model_id: str = ""
    """A catalog model whose architecture the source states this one has (facts looked up under that id)."""
    kv_cache_blocks: int | None = None
    """V0's "# GPU blocks: N" (16 tokens each)."""
    max_concurrency: float | None = None
    """"Maximum concurrency for L tokens per request: Xx"."""
    request_kv_gib: float | None = None
    """KV cache one max_model_len request needs, from vLLM's error ("(N GiB KV cache is needed, ...")."""
    max_num_seqs: int | None = None
    max_num_batched_tokens: int | None = None
    data_parallel_size: int = 1
    """``--data-parallel-size``: engine replicas; the figures are those of one rank."""
    enable_expert_parallel: bool = False
    """``--enable-expert-parallel``: routed experts spread over the tensor x data parallel ranks."""
    version_logged: bool = True
    defaults: tuple[str, ...] = ()
    """Settings the log does not state, taken as vLLM's defaults."""
    notes: str = ""
    unsized: str = ""
    """Why the planner cannot size this log; empty when it can."""

    @property
    def split(self) -> str:
        """``fitted`` (in-sample) or ``held-out``."""
        return "fitted" if self.fitted else "held-out"

    @property
    def version_label(self) -> str:
        """The release as logged, or the era's first release with ``*`` when the log names none."""
        return self.vllm_version if self.version_logged else f"{self.vllm_version}*"


LLAMA_8B = "meta-llama/Llama-3.1-8B-Instruct"
QWEN_7B = "Qwen/Qwen2.5-7B-Instruct"
V19 = {"vllm_version": "0.19.0", "max_model_len": 8192, "gpu_memory_utilization": 0.95}
OLD = {"vllm_version": "0.16.0", "max_model_len": 16000, "gpu_memory_utilization": 0.9, "gpu_total_gib": 79.18,
       "version_logged": False}

FITTED_ERA: tuple[Reference, ...] = (
    Reference("Llama-3.1-8B TP1", LLAMA_8B, tensor_parallel_size=1, pipeline_parallel_size=1, source=ISSUE,
              weights_gib=14.99, kv_cache_tokens=476_016, kv_cache_gib=58.11, activation_gib=1.89,
              non_torch_gib=0.25, fitted=True, **V19),
    Reference("Mixtral-8x7B TP2", "mistralai/Mixtral-8x7B-Instruct-v0.1", tensor_parallel_size=2,
              pipeline_parallel_size=1, source=ISSUE, weights_gib=43.51, kv_cache_tokens=465_936,
              activation_gib=1.21, family="moe", fitted=True, **V19),
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
    Reference("Qwen3-8B TP1", "Qwen/Qwen3-8B", tensor_parallel_size=1, pipeline_parallel_size=1, source=REPORT,
              weights_gib=15.27, activation_gib=2.21, non_torch_gib=0.25, fitted=True, **V19),
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
              source=REPORT, weights_gib=8.49, kv_cache_gib=64.60, weight_dtype="int8", family="int8", **V19),
    Reference("Llama-3.1-8B w4a16 (GPTQ)", LLAMA_8B, tensor_parallel_size=1, pipeline_parallel_size=1,
              source=REPORT, weights_gib=5.38, kv_cache_gib=67.71, weight_dtype="int4", family="awq/gptq", **V19),
    Reference("Llama-3.1-8B --quantization fp8", LLAMA_8B, tensor_parallel_size=1, pipeline_parallel_size=1,
              source=REPORT, weights_gib=8.49, kv_cache_gib=64.61, weight_dtype="fp8", family="fp8", **V19),
    Reference("Qwen2.5-7B FP8-dynamic", "RedHatAI/Qwen2.5-7B-Instruct-FP8-dynamic", tensor_parallel_size=1,
              pipeline_parallel_size=1, source=REPORT, weights_gib=8.14, kv_cache_gib=64.64, family="fp8", **V19),
    Reference("Llama-3.3-70B FP8-dynamic TP2", "RedHatAI/Llama-3.3-70B-Instruct-FP8-dynamic",
              tensor_parallel_size=2, pipeline_parallel_size=1, source=REPORT, weights_gib=33.88,
              kv_cache_gib=37.28, family="fp8", **V19),
    Reference("Llama-3.3-70B FP8-dynamic TP4", "RedHatAI/Llama-3.3-70B-Instruct-FP8-dynamic",
              tensor_parallel_size=4, pipeline_parallel_size=1, source=REPORT, weights_gib=16.96,
              kv_cache_gib=54.09, family="fp8", **V19),
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
              kv_cache_gib=32.0, activation_gib=4.84, non_torch_gib=0.55, family="fp8", **OLD),
    Reference("Llama-3.3-70B FP8 TP1 (<0.17)", "RedHatAI/Llama-3.3-70B-Instruct-FP8-dynamic",
              tensor_parallel_size=1, pipeline_parallel_size=1, source=EMPIRICAL, weights_gib=67.72,
              kv_cache_gib=-1.44, fits=False, family="fp8", **OLD),
)

V0_DEC_2024 = (
    "release not logged: V0 engine lines ('Memory profiling results', '# GPU blocks'), thread of 2024-12, "
    "so a release before 0.8 (one accounting era)"
)
V1_BEFORE_0_17 = "V1 engine lines ('Model loading took', 'Available KV cache memory'), release not logged"
GPT_OSS = "openai/gpt-oss-120b"
GPT_OSS_DEFAULTS = ("max_model_len: the model's 131072",)
H20_141 = (
    "the log prints no GPU total; its two starts differ by 55.65 - 48.66 = 6.99 GiB of KV cache for 0.05 of "
    "gpu_memory_utilization, a 139.8 GiB GPU: the 141 GB H20, not the catalog's 96 GB one"
)

NEW_LOGS: tuple[Reference, ...] = (
    Reference("Llama-3.1-8B RTX 3090 len 20000 (V0)", LLAMA_8B, vllm_version="0.6.0", version_logged=False,
              tensor_parallel_size=1, pipeline_parallel_size=1, max_model_len=20000, gpu_memory_utilization=0.90,
              source="https://github.com/vllm-project/vllm/issues/10517", weights_gib=14.99, kv_cache_gib=3.81,
              kv_cache_blocks=1952, max_concurrency=1.56, activation_gib=17.06 - 14.99, non_torch_gib=0.35,
              gpu="RTX-3090", gpu_total_gib=23.58, max_num_batched_tokens=20000, max_num_seqs=256,
              defaults=("max_num_batched_tokens = max_model_len (V0 without chunked prefill)", "max_num_seqs 256"),
              fitted=True,
              notes=f"{V0_DEC_2024}; activation is peak_torch_memory 17.06 less the weights; fitted: "
                    "V0_FORWARD_HIDDEN_COPIES from its activation, V0_SINGLE_GPU_NON_TORCH_GIB from its non-torch "
                    "memory"),
    Reference("Llama-3.1-8B RTX 3090 len 29000 (V0)", LLAMA_8B, vllm_version="0.6.0", version_logged=False,
              tensor_parallel_size=1, pipeline_parallel_size=1, max_model_len=29000, gpu_memory_utilization=0.90,
              source="https://github.com/vllm-project/vllm/issues/10517", weights_gib=14.99, kv_cache_gib=2.89,
              kv_cache_blocks=1478, kv_cache_tokens=23648, max_concurrency=0.82, activation_gib=17.98 - 14.99,
              non_torch_gib=0.35, fits=False, gpu="RTX-3090", gpu_total_gib=23.58, max_num_batched_tokens=29000,
              max_num_seqs=256,
              defaults=("max_num_batched_tokens = max_model_len (V0 without chunked prefill)", "max_num_seqs 256"),
              notes=f"{V0_DEC_2024}; 'maximum number of tokens that can be stored in KV cache (23648)'"),
    Reference("R1-Distill-Qwen-14B 2x RTX 4090 TP2 (V0)", "deepseek-ai/DeepSeek-R1-Distill-Qwen-14B",
              vllm_version="0.7.0", version_logged=False, tensor_parallel_size=2, pipeline_parallel_size=1,
              max_model_len=131072, gpu_memory_utilization=0.98,
              source="https://github.com/vllm-project/vllm/issues/13061", weights_gib=13.95, non_torch_gib=0.25,
              activation_gib=0.19, kv_cache_gib=8.69, kv_cache_tokens=81536, fits=False, gpu="RTX-4090",
              gpu_total_gib=None, defaults=("max_model_len: the model's 131072", "max_num_batched_tokens", "max_num_seqs"),
              notes="release not logged: V0 lines ('Loading model weights took', 'non_torch_memory takes'), "
                    "thread of 2025-02 (0.7); GPU total not printed"),
    Reference("Qwen3-30B-A3B 4x A10 TP4", "Qwen/Qwen3-30B-A3B", vllm_version="0.8.5", tensor_parallel_size=4,
              pipeline_parallel_size=1, max_model_len=8192, gpu_memory_utilization=0.9,
              source="https://github.com/vllm-project/vllm/issues/17469", weights_gib=14.25, kv_cache_tokens=198_784,
              max_concurrency=24.27, fits=False, family="moe", gpu="A10", gpu_total_gib=None,
              defaults=("gpu_memory_utilization 0.9",),
              notes="the cache was sized, then CUDA graph capture ran out of memory (starts with --enforce-eager; "
                    "the thread says it fails the same with --max-model-len 1024 --max-num-seqs 1, so not from the "
                    "number of graphs, and 0.8's graphs, about 1.3 GiB for 48 layers, fit in the 2.2 GiB outside "
                    "the 0.9 budget: the planner does not predict it); GPU total not printed; A10s have no NVLink, "
                    "so vLLM's custom all-reduce is off at TP4"),
    Reference("Qwen3-235B-A22B-FP8 4x H100 TP4", "Qwen/Qwen3-235B-A22B-FP8", vllm_version="0.8.0",
              version_logged=False, tensor_parallel_size=4, pipeline_parallel_size=1, max_model_len=40960,
              gpu_memory_utilization=0.9, source="https://github.com/vllm-project/vllm/issues/21348",
              kv_cache_gib=8.11, kv_cache_tokens=178_880, family="fp8-moe", gpu_total_gib=None,
              defaults=("gpu_memory_utilization 0.9", "max_model_len: the model's 40960"),
              notes=f"{V1_BEFORE_0_17}, thread of 2025-07 (0.9-0.10); launched with an LMCache KV connector",
              unsized="launched with the LMCache KV connector (--kv-transfer-config), which the planner does not "
                      "model, and the log gives neither the release, the weights nor the batch limits; sized as if "
                      "without it the planner leaves 9.89 GiB of KV cache against 8.11 logged (+23 %)"),
    Reference("gpt-oss-120b H100 PCIe", GPT_OSS, vllm_version="0.10.0", version_logged=False,
              tensor_parallel_size=1, pipeline_parallel_size=1, max_model_len=131072, gpu_memory_utilization=0.9,
              source="https://github.com/vllm-project/vllm/issues/23278", weights_gib=65.97, kv_cache_gib=-2.14,
              fits=False, family="mxfp4", gpu_total_gib=None,
              defaults=("gpu_memory_utilization 0.9", *GPT_OSS_DEFAULTS),
              notes=f"{V1_BEFORE_0_17}; collect_env shows PyTorch 2.7.1 (vLLM 0.10.0-0.10.1); Marlin weight-only "
                    "FP4 on Hopper; the launch command is not in the thread's log"),
    Reference("gpt-oss-120b H100 util 0.95, 1024 batched", GPT_OSS, vllm_version="0.11.0", version_logged=False,
              tensor_parallel_size=1, pipeline_parallel_size=1, max_model_len=131072, gpu_memory_utilization=0.95,
              source="https://github.com/vllm-project/vllm/issues/27508", kv_cache_gib=1.71, request_kv_gib=4.54,
              fits=False,
              family="mxfp4", gpu_total_gib=None, max_num_batched_tokens=1024, defaults=GPT_OSS_DEFAULTS,
              notes=f"{V1_BEFORE_0_17}; collect_env shows PyTorch 2.8.0 and transformers 4.57.1 (vLLM "
                    "0.10.2-0.11.0); H100 80GB HBM3 (nvidia-smi 81559 MiB); the cache cannot hold one request"),
    Reference("gpt-oss-120b H100 0.14.1 len 5120", GPT_OSS, vllm_version="0.14.1", tensor_parallel_size=1,
              pipeline_parallel_size=1, max_model_len=5120, gpu_memory_utilization=0.97,
              source="https://github.com/vllm-project/vllm/issues/33155", weights_gib=64.38, fits=False,
              family="mxfp4", gpu_total_gib=None, max_num_seqs=1,
              notes="CUDA out of memory after loading (no KV-cache figure logged); -O3, async scheduling"),
    # Logs the planner cannot size, kept so that the bench lists them and why.
    Reference("fp8 KV len 100000 (model, GPU not given)", "", vllm_version="?", version_logged=False,
              tensor_parallel_size=1, pipeline_parallel_size=1, max_model_len=100000, gpu_memory_utilization=0.9,
              source="https://github.com/vllm-project/vllm/issues/25350", weights_gib=29.09, kv_cache_gib=10.55,
              kv_cache_tokens=230_528, max_concurrency=2.31, kv_cache_dtype="fp8", gpu="?", gpu_total_gib=None,
              unsized="the log names neither the model nor the GPU"),
    Reference("Llama-3.1-70B w8a8 len 2048 (V1 on 0.7)", "neuralmagic/Meta-Llama-3.1-70B-Instruct-quantized.w8a8",
              vllm_version="0.7.0", version_logged=False, tensor_parallel_size=1, pipeline_parallel_size=1,
              max_model_len=2048, gpu_memory_utilization=0.98, source="https://github.com/vllm-project/vllm/pull/12569",
              weights_gib=67.72, kv_cache_blocks=1381, max_concurrency=10.79, family="int8", gpu="?",
              gpu_total_gib=None,
              unsized="the GPU is not named; VLLM_USE_V1=1 on a 0.7 build, an accounting no era models"),
    Reference("Qwen2.5-7B 4-bit RTX 4060 8GB (V0)", "", vllm_version="0.7.0", version_logged=False,
              tensor_parallel_size=1, pipeline_parallel_size=1, max_model_len=4096, gpu_memory_utilization=0.70,
              source="https://github.com/vllm-project/vllm/issues/13882", weights_gib=5.20, non_torch_gib=0.03,
              activation_gib=1.42, kv_cache_gib=-1.05, fits=False, family="awq/gptq", gpu="RTX-4060",
              gpu_total_gib=8.00, unsized="the checkpoint's id is not in the log (5.20 GiB of weights: a 4-bit 7B)"),
    Reference("Qwen3-4B Radeon 8060S (Strix Halo)", "Qwen/Qwen3-4B", vllm_version="0.8.0", version_logged=False,
              tensor_parallel_size=1, pipeline_parallel_size=1, max_model_len=0, gpu_memory_utilization=0.9,
              source="https://github.com/kyuz0/amd-strix-halo-vllm-toolboxes/pull/5", weights_gib=7.68,
              kv_cache_gib=18.38, gpu="Radeon-8060S", gpu_total_gib=None,
              unsized="an integrated GPU sharing system memory, not in the GPU catalog; the log prints no total"),
    Reference("Qwen3.6-35B-A3B NVFP4 RTX 5090 (a)", "qwen3.6-35b-a3b-nvfp4 (local checkpoint)", vllm_version="0.24.0",
              tensor_parallel_size=1, pipeline_parallel_size=1, max_model_len=131072, gpu_memory_utilization=0.9,
              source="https://github.com/noonghunna/club-3090/issues/652", kv_cache_gib=6.01,
              kv_cache_tokens=569_878, max_concurrency=4.35, kv_cache_dtype="fp8", family="hybrid", gpu="RTX-5090",
              gpu_total_gib=None, max_num_seqs=1, max_num_batched_tokens=8192,
              unsized="a local NVFP4 checkpoint of a hybrid model outside the catalog (config.json not in the "
                      "thread)"),
    Reference("Qwen3.6-35B-A3B NVFP4 RTX 5090 (b)", "qwen3.6-35b-a3b-nvfp4 (local checkpoint)", vllm_version="0.24.0",
              tensor_parallel_size=1, pipeline_parallel_size=1, max_model_len=131072, gpu_memory_utilization=0.9,
              source="https://github.com/noonghunna/club-3090/issues/612", kv_cache_gib=5.98,
              kv_cache_tokens=567_978, max_concurrency=4.33, kv_cache_dtype="fp8", family="hybrid", gpu="RTX-5090",
              gpu_total_gib=None, max_num_seqs=1, max_num_batched_tokens=8192,
              unsized="a local NVFP4 checkpoint of a hybrid model outside the catalog"),
    Reference("Qwen3.8-27B FP8 2x RTX 5090 len 65536", "qwen3.8-27b-fp8 (local checkpoint)", vllm_version="?",
              version_logged=False, tensor_parallel_size=2, pipeline_parallel_size=1, max_model_len=65536,
              gpu_memory_utilization=0.9, source="https://github.com/noonghunna/club-3090/issues/1086",
              kv_cache_gib=11.15, kv_cache_tokens=214_135, max_concurrency=3.27, family="hybrid", gpu="RTX-5090",
              gpu_total_gib=None, unsized="a hybrid (Gated DeltaNet) model outside the catalog; release not logged"),
    Reference("Qwen3.8-27B FP8 2x RTX 5090 util 0.92", "qwen3.8-27b-fp8 (local checkpoint)", vllm_version="?",
              version_logged=False, tensor_parallel_size=2, pipeline_parallel_size=1, max_model_len=0,
              gpu_memory_utilization=0.92, source="https://github.com/noonghunna/club-3090/issues/1087",
              activation_gib=1.59, kv_cache_gib=12.26, family="hybrid", gpu="RTX-5090", gpu_total_gib=31.4,
              notes="'15.03 GiB for consumed memory (weights + non-torch)', CUDA graphs 0.09 GiB actual, 0.13 estimated",
              unsized="a hybrid (Gated DeltaNet) model outside the catalog"),
    Reference("Qwen3.6-27B int4 2x RTX 3090 len 262144", "qwen3.6-27b-autoround-int4 (local checkpoint)",
              vllm_version="?", version_logged=False, tensor_parallel_size=2, pipeline_parallel_size=1,
              max_model_len=262144, gpu_memory_utilization=0.9, source="https://github.com/noonghunna/club-3090/issues/295",
              kv_cache_tokens=620_944, max_concurrency=2.37, kv_cache_dtype="fp8_e5m2", family="hybrid",
              gpu="RTX-3090", gpu_total_gib=None, max_num_seqs=2, max_num_batched_tokens=8192,
              unsized="a hybrid model outside the catalog, with MTP speculative decoding; RTX 3090 not in the catalog"),
    Reference("Qwen3-Coder-30B-A3B-FP8 PP2 RTX 5070 Ti + 5090 D", "Qwen/Qwen3-Coder-30B-A3B-Instruct-FP8",
              vllm_version="0.15.2", tensor_parallel_size=1, pipeline_parallel_size=2, max_model_len=262144,
              gpu_memory_utilization=0.9, source="https://github.com/vllm-project/vllm/issues/34076", kv_cache_gib=3.18,
              fits=False, family="fp8-moe", gpu="RTX-5070-Ti + RTX-5090-D", gpu_total_gib=None,
              notes="'24.0 GiB KV cache is needed ... estimated maximum model length is 34736'",
              unsized="two different GPUs with VLLM_PP_LAYER_PARTITION=16,32; the planner splits layers evenly "
                      "over identical GPUs"),
    Reference("Qwen3-Coder-480B-FP8 8x H20 DP8+EP util 0.9", "Qwen/Qwen3-Coder-480B-A35B-Instruct-FP8",
              vllm_version="0.10.1", tensor_parallel_size=1, pipeline_parallel_size=1, max_model_len=262144,
              gpu_memory_utilization=0.9, source="https://github.com/vllm-project/recipes/pull/12", kv_cache_gib=48.66,
              fits=False, family="fp8-moe", gpu="H20", gpu_total_gib=None,
              notes="'(62.00 GiB KV cache is needed ...) the estimated maximum model length is 205728'",
              data_parallel_size=8, enable_expert_parallel=True, request_kv_gib=62.00,
              unsized=f"{H20_141}; sized on a GPU of that total the planner leaves 52.43 GiB (+7.7 %) and needs the "
                      "62.00 GiB logged for one request"),
    Reference("Qwen3-Coder-480B-FP8 8x H20 DP8+EP util 0.95", "Qwen/Qwen3-Coder-480B-A35B-Instruct-FP8",
              vllm_version="0.10.1", tensor_parallel_size=1, pipeline_parallel_size=1, max_model_len=262144,
              gpu_memory_utilization=0.95, source="https://github.com/vllm-project/recipes/pull/12", kv_cache_gib=55.65,
              fits=False, family="fp8-moe", gpu="H20", gpu_total_gib=None,
              notes="'the estimated maximum model length is 235296'",
              data_parallel_size=8, enable_expert_parallel=True, request_kv_gib=62.00,
              unsized=f"{H20_141}; sized on a GPU of that total the planner leaves 59.42 GiB (+6.8 %)"),
    Reference("Qwen2.5-VL-72B 4x A100 40GB TP4", "Qwen/Qwen2.5-VL-72B-Instruct", vllm_version="0.8.3",
              tensor_parallel_size=4, pipeline_parallel_size=1, max_model_len=8192, gpu_memory_utilization=0.95,
              source="https://github.com/vllm-project/vllm/issues/16570", fits=False, family="vision",
              gpu="A100-40GB", gpu_total_gib=None, max_num_seqs=2,
              notes="CUDA out of memory; collect_env lists 39.38 GB per GPU",
              unsized="a vision-language model outside the catalog (config.json not in the thread)"),
    Reference("Qwen2.5-VL-3B A100 80GB util 0.3", "Qwen/Qwen2.5-VL-3B-Instruct", vllm_version="0.8.0",
              version_logged=False, tensor_parallel_size=1, pipeline_parallel_size=1, max_model_len=0,
              gpu_memory_utilization=0.3, source="https://github.com/vllm-project/vllm/issues/18124", fits=False,
              family="vision", gpu="A100-80GB", gpu_total_gib=None,
              notes="'No available memory for the cache blocks'",
              unsized="a vision-language model outside the catalog (config.json not in the thread)"),
    Reference("Qwen3-VL-235B-A22B-FP8 8x A100 TP8+EP", "Qwen/Qwen3-VL-235B-A22B-Instruct-FP8", vllm_version="0.11.0",
              tensor_parallel_size=8, pipeline_parallel_size=1, max_model_len=100000, gpu_memory_utilization=0.9,
              source="https://github.com/QwenLM/Qwen3-VL/issues/1684", fits=False, family="vision", gpu="A100-80GB",
              gpu_total_gib=None, notes="CUDA out of memory",
              unsized="a vision-language mixture of experts outside the catalog, with expert parallelism"),
    Reference("Kimi-Linear-48B-A3B AWQ 2x RTX 3090 TP2", "cyankiwi/Kimi-Linear-48B-A3B-Instruct-AWQ-4bit",
              vllm_version="?", version_logged=False, tensor_parallel_size=2, pipeline_parallel_size=1,
              max_model_len=120000, gpu_memory_utilization=0.95, source="https://github.com/vllm-project/vllm/issues/28228",
              kv_cache_gib=2.30, family="hybrid", gpu="RTX-3090", gpu_total_gib=None, max_num_seqs=8,
              max_num_batched_tokens=64000,
              unsized="an MLA + linear-attention hybrid outside the catalog; RTX 3090 not in the catalog"),
    Reference("DeepSeek-V4-Flash 2x GH200 TP2+EP", "DeepSeek-V4-Flash", vllm_version="?", version_logged=False,
              tensor_parallel_size=2, pipeline_parallel_size=1, max_model_len=30000, gpu_memory_utilization=0.95,
              source="https://github.com/vllm-project/vllm/issues/44376", kv_cache_gib=5.44, fits=False,
              kv_cache_dtype="fp8", family="mla", gpu="GH200", gpu_total_gib=None,
              notes="'6.66 GiB KV cache is needed ... estimated maximum model length is 13528'",
              unsized="a sparse-MLA model outside the catalog; GH200 not in the GPU catalog"),
    Reference("DeepSeek-V2-Lite len 32000 (0.5)", "deepseek-ai/DeepSeek-V2-Lite", vllm_version="0.5.0",
              tensor_parallel_size=1, pipeline_parallel_size=1, max_model_len=32000, gpu_memory_utilization=0.9,
              source="https://github.com/vllm-project/vllm/pull/4650", weights_gib=29.30, kv_cache_blocks=5549,
              family="mla", gpu="?", gpu_total_gib=None, defaults=("gpu_memory_utilization 0.9",),
              unsized="the GPU is not named; the model is outside the catalog, and 0.5 cached MLA keys and values "
                      "in full rather than the latent"),
    Reference("gpt-oss-20b A100 util 0.65 len 131072", "openai/gpt-oss-20b", vllm_version="0.19.0",
              tensor_parallel_size=1, pipeline_parallel_size=1, max_model_len=131072, gpu_memory_utilization=0.65,
              source="https://myoceane.fr/index.php/ai-vllm-a100-gemma-4/", weights_gib=13.72, kv_cache_gib=36.56,
              family="mxfp4", gpu="A100-80GB", gpu_total_gib=None,
              notes="the post says A100; 13.72 + 36.56 GiB exceed 65 % of a 40 GB card, so the 80 GB one"),
    Reference("Gemma-4-26B-A4B A100 util 0.9 eager", "google/gemma-4-26B-A4B", vllm_version="0.19.0",
              version_logged=False, tensor_parallel_size=1, pipeline_parallel_size=1, max_model_len=131072,
              gpu_memory_utilization=0.9, source="https://myoceane.fr/index.php/ai-vllm-a100-gemma-4/",
              weights_gib=48.5, kv_cache_gib=21.5, family="moe", gpu="A100-80GB", gpu_total_gib=None,
              notes="--enforce-eager", unsized="Gemma 4 is outside the catalog (config.json not in the post)"),
    Reference("Gemma-4-31B NVFP4 H100 len 262144", "nvidia/Gemma-4-31B-IT-NVFP4", vllm_version="?",
              version_logged=False, tensor_parallel_size=1, pipeline_parallel_size=1, max_model_len=262144,
              gpu_memory_utilization=0.9, source="https://www.robotmunki.com/pages/vllm-startup-log-annotated.html",
              weights_gib=31.18, kv_cache_tokens=1_563_739, max_concurrency=5.97, family="nvfp4", gpu_total_gib=None,
              max_num_batched_tokens=4096,
              unsized="Gemma 4 is outside the catalog; NVFP4 on Hopper; release not in the annotated log"),
    Reference("Qwen3.6-27B AWQ MTP 2 GPUs TP2 0.27.1", "shawnw3i/Qwen3.6-27B-AWQ-MTP", vllm_version="0.27.1",
              tensor_parallel_size=2, pipeline_parallel_size=1, max_model_len=262144, gpu_memory_utilization=0.82,
              source="https://github.com/gpustack/runner/pull/251", kv_cache_gib=6.87, family="hybrid", gpu="?",
              gpu_total_gib=None, max_num_seqs=6, max_num_batched_tokens=8192,
              notes="'Estimated CUDA graph memory: 0.36 GiB total'; MTP speculative decoding, -O3",
              unsized="a hybrid model outside the catalog with speculative decoding; the GPU is not named"),
    Reference("Qwen3.6-35B-A3B preview 1x RTX 3090 util 0.95", "qwen3.6-35b-a3b preview (local checkpoint)",
              vllm_version="0.22.0", tensor_parallel_size=1, pipeline_parallel_size=1, max_model_len=0,
              gpu_memory_utilization=0.95, source="https://github.com/noonghunna/club-3090/pull/323",
              kv_cache_gib=0.78, kv_cache_tokens=31_129, family="hybrid", gpu="RTX-3090", gpu_total_gib=None,
              notes="the same start at 0.92 left 0.07 GiB", unsized="a hybrid model outside the catalog; RTX 3090 "
              "not in the GPU catalog"),
    Reference("DeepSeek-V3 8x MI308 len 32768", "deepseek-ai/DeepSeek-V3", vllm_version="0.8.0", version_logged=False,
              tensor_parallel_size=8, pipeline_parallel_size=1, max_model_len=32768, gpu_memory_utilization=0.9,
              source="https://github.com/vllm-project/vllm/issues/15928", kv_cache_tokens=107_824,
              max_concurrency=3.29, family="mla", gpu="MI308X", gpu_total_gib=None,
              notes="V1 engine, 2025-04; the ranks logged 107,312-107,824 tokens",
              unsized="MI308X is not in the GPU catalog and the log prints no total; the excerpt gives neither "
                      "the launch command nor gpu_memory_utilization"),
    # Runs of EMPIRICAL's later revision that FITTED_ERA does not hold (same H100, release and settings as OLD).
    Reference("gpt-oss-20b H100 len 16000 (<0.17)", "openai/gpt-oss-20b", tensor_parallel_size=1,
              pipeline_parallel_size=1, source=EMPIRICAL_URL, weights_gib=13.47, kv_cache_gib=50.28,
              activation_gib=7.38, non_torch_gib=0.13, family="mxfp4", **OLD),
    Reference("gpt-oss-120b H100 len 16000 (<0.17)", GPT_OSS, tensor_parallel_size=1, pipeline_parallel_size=1,
              source=EMPIRICAL_URL, weights_gib=64.38, kv_cache_gib=3.33, activation_gib=7.38, non_torch_gib=0.13,
              family="mxfp4",
              unsized="the page states no setting for this run, and its figures do not add up at the page's 0.9 "
                      "(71.89 GiB of weights, activation and non-torch memory against 71.26 requested, yet 3.33 "
                      "GiB available); they would at 0.95",
              **OLD),
    Reference("Qwen3-32B TP2 len 16000 (<0.17)", "Qwen/Qwen3-32B", tensor_parallel_size=2, pipeline_parallel_size=1,
              source=EMPIRICAL_URL, weights_gib=30.59, kv_cache_gib=34.49, activation_gib=5.64, non_torch_gib=0.54,
              defaults=("gpu_memory_utilization 0.9, the page's setting for its runs",), **OLD),
    Reference("Mistral-Small-3.2-24B (vision) H100 0.11.0", "mistralai/Mistral-Small-3.2-24B-Instruct-2506",
              vllm_version="0.11.0", tensor_parallel_size=1, pipeline_parallel_size=1, max_model_len=16000,
              gpu_memory_utilization=0.95, source=EMPIRICAL_URL, weights_gib=44.76, kv_cache_gib=28.20,
              kv_cache_tokens=184_832, max_concurrency=11.55, activation_gib=2.12, non_torch_gib=0.14,
              family="vision", gpu_total_gib=79.19, facts_model_id="mistralai/Mistral-Small-3.1-24B-Instruct-2503",
              notes="--block-size 128; the page lists the architecture (40 layers, 32 heads, 8 KV heads of 128, "
                    "hidden 5120, vocabulary 131072, 131072 positions), that of Mistral-Small-3.1-24B"),
    Reference("Qwen3-0.6B len 32000 (<0.17)", "Qwen/Qwen3-0.6B", tensor_parallel_size=1, pipeline_parallel_size=1,
              source=EMPIRICAL_URL, weights_gib=1.12, kv_cache_gib=64.45, activation_gib=5.56, non_torch_gib=0.13,
              facts=QWEN3_0_6B, **{**OLD, "max_model_len": 32000}),
    Reference("DeepSeek-R1 FP8 H100 TP1 (<0.17)", "deepseek-ai/DeepSeek-R1", tensor_parallel_size=1,
              pipeline_parallel_size=1, source=EMPIRICAL_URL, fits=False, family="mla",
              notes="out of memory while loading the weights", **OLD),
    Reference("Qwen3-8B PP3 (rank 0)", "Qwen/Qwen3-8B", tensor_parallel_size=1, pipeline_parallel_size=3,
              source=REPORT_URL, weights_gib=5.48, activation_gib=0.96, non_torch_gib=0.07,
              notes="36 layers, 12 per stage", **V19),
)

FIT_POOL: frozenset[str] = frozenset(ref.label for ref in NEW_LOGS[0::2])
"""New logs a constant may be fitted on (1st, 3rd, 5th... of NEW_LOGS)."""
HOLD_OUT: frozenset[str] = frozenset(ref.label for ref in NEW_LOGS[1::2])
"""New logs never fitted on (2nd, 4th, 6th... of NEW_LOGS)."""

REFERENCES: tuple[Reference, ...] = FITTED_ERA + NEW_LOGS
