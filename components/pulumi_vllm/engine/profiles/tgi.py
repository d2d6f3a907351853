"""Hugging Face Text Generation Inference (TGI): ``text-generation-launcher`` and its flags, for TGI 3.3.7.

The launcher downloads the weights into the Hugging Face hub cache, starts one shard per GPU
(``--num-shard``: tensor parallelism, attention heads split) and then the router, which serves
TGI's own API and the OpenAI-compatible routes on one port. TGI has been in maintenance mode
since December 2025 (3.3.7 is its last release); the flags below are those of 3.3.7's launcher.
"""

from __future__ import annotations

from dataclasses import dataclass

from pulumi_vllm.engine.profiles.base import ContainerCommand, EngineProfile, ServeSpec

TGI_VERSION = "3.3.7"
"""The TGI release the flags are written for (its last release: TGI is in maintenance mode)."""

TGI_IMAGE = f"ghcr.io/huggingface/text-generation-inference:{TGI_VERSION}"
"""TGI's CUDA image; its entrypoint is ``text-generation-launcher``."""

TGI_PORT = 8080
"""The port the router listens on here (the image's default, ``PORT=80``, needs root)."""

TGI_DTYPES: dict[str, str] = {"half": "float16", "float16": "float16", "bfloat16": "bfloat16"}
"""``engine.dtype`` values and TGI's ``--dtype`` for each (TGI accepts float16 and bfloat16 only)."""

TGI_QUANTIZE: tuple[str, ...] = (
    "awq", "compressed-tensors", "eetq", "exl2", "gptq", "marlin",
    "bitsandbytes", "bitsandbytes-nf4", "bitsandbytes-fp4", "fp8",
)
"""The values of TGI's ``--quantize`` (``engine.quantization`` is passed as written)."""

TGI_KV_CACHE_DTYPES: dict[str, str] = {"fp8": "fp8_e4m3fn", "fp8_e4m3": "fp8_e4m3fn", "fp8_e5m2": "fp8_e5m2"}
"""``engine.kvCacheDtype`` values and TGI's ``--kv-cache-dtype`` for each (vLLM's ``fp8`` is e4m3)."""

# Flags this profile sets from the stack: given again in engine.extraArgs, clap stops the launcher
# ("cannot be used multiple times"). --api-key is never given literally: the launcher reads API_KEY.
_STACK_FLAGS: dict[str, str] = {
    "--model-id": "model.id",
    "--revision": "model.revision",
    "--hostname": "the Service",
    "--port": "the Service",
    "-p": "the Service",
    "--num-shard": "parallelism.tensorParallelSize",
    "--sharded": "parallelism.tensorParallelSize",
    "--max-total-tokens": "engine.maxModelLen",
    "--dtype": "engine.dtype",
    "--kv-cache-dtype": "engine.kvCacheDtype",
    "--quantize": "engine.quantization",
    "--trust-remote-code": "model.trustRemoteCode",
    "--cuda-memory-fraction": "engine.gpuMemoryUtilization",
    "--huggingface-hub-cache": "the model cache",
}


def _flag_name(arg: str) -> str:
    return arg.split("=", 1)[0]


def _given(extra_args: tuple[str, ...], flag: str) -> bool:
    return any(_flag_name(arg) == flag for arg in extra_args)


def _number(value: float) -> str:
    return f"{value:g}"


@dataclass(frozen=True)
class TgiProfile(EngineProfile):
    """TGI (``text-generation-launcher``): tensor parallelism over the pod's GPUs, no pipeline parallelism."""

    def command(self, spec: ServeSpec) -> ContainerCommand:
        """``text-generation-launcher --model-id MODEL --hostname 0.0.0.0 --port PORT --num-shard TP`` and the engine flags."""
        args: list[str] = ["--model-id", spec.model]
        if spec.revision:
            args += ["--revision", spec.revision]
        # --num-shard always: without it the launcher shards over every GPU it sees.
        args += ["--hostname", "0.0.0.0", "--port", str(spec.port), "--num-shard", str(spec.tensor_parallel_size)]
        if spec.max_model_len is not None:
            # vLLM's max-model-len is prompt plus output: TGI's max-total-tokens. Its default for
            # max-input-tokens is one less; say so, unless engine.extraArgs sets it.
            args += ["--max-total-tokens", str(spec.max_model_len)]
            if not _given(spec.extra_args, "--max-input-tokens") and not _given(spec.extra_args, "--max-input-length"):
                args += ["--max-input-tokens", str(max(spec.max_model_len - 1, 1))]
        if spec.dtype in TGI_DTYPES:
            args += ["--dtype", TGI_DTYPES[spec.dtype]]
        if spec.kv_cache_dtype in TGI_KV_CACHE_DTYPES:
            args += ["--kv-cache-dtype", TGI_KV_CACHE_DTYPES[spec.kv_cache_dtype]]
        if spec.quantization:
            args += ["--quantize", spec.quantization]
        if spec.trust_remote_code:
            args.append("--trust-remote-code")
        args += ["--cuda-memory-fraction", _number(spec.gpu_memory_utilization)]
        if not _given(spec.extra_args, "--usage-stats"):
            # TGI reports anonymous usage to Hugging Face by default; a cluster's serving does not phone home
            # unless the stack says so (engine.extraArgs: ["--usage-stats", "on"]).
            args += ["--usage-stats", "off"]
        args += list(spec.extra_args)
        return ContainerCommand(("text-generation-launcher",), tuple(args))

    def env(self, spec: ServeSpec) -> dict[str, str]:
        """The hub cache under ``HF_HOME`` (the image sets ``HF_HOME=/data``; the pod's ``HF_HOME`` wins).

        The launcher reads ``HUGGINGFACE_HUB_CACHE`` and hands it to the download and shard processes;
        ``HF_HUB_CACHE`` is huggingface_hub's current name for it. Both point where the stack's
        pre-download puts the weights (``$HF_HOME/hub``).
        """
        hub = f"{spec.cache_path.rstrip('/')}/hub"
        return {"HUGGINGFACE_HUB_CACHE": hub, "HF_HUB_CACHE": hub}

    def http_check(self, url: str) -> tuple[str, ...]:
        """``curl -fsS URL``: curl is in TGI's image (python3 lives in its virtual environment)."""
        return ("curl", "-fsS", "-o", "/dev/null", url)

    def problems(self, spec: ServeSpec) -> list[str]:
        """Settings TGI 3.3.7 has no value for, in the stack's keys."""
        problems = super().problems(spec)
        kind = f"with engine.kind {self.kind!r}"
        if spec.served_model_name != spec.model:
            problems.append(
                f"model.servedModelName: {spec.served_model_name!r} is not accepted {kind}: TGI has no served-name "
                f"setting (/v1/models lists the model.id, {spec.model!r}); remove model.servedModelName"
            )
        if spec.dtype not in TGI_DTYPES and spec.dtype != "auto":
            problems.append(
                f"engine.dtype: {spec.dtype!r} is not accepted {kind}: TGI's --dtype takes float16 or bfloat16; "
                "use one of auto, half, float16, bfloat16"
            )
        if spec.quantization and spec.quantization not in TGI_QUANTIZE:
            problems.append(
                f"engine.quantization: {spec.quantization!r} is not accepted {kind}: use one of "
                f"{', '.join(TGI_QUANTIZE)} (pre-quantized models need none: TGI reads the method from their config)"
            )
        if spec.quantization and spec.dtype != "auto":
            problems.append(
                f"engine.dtype: {spec.dtype!r} is not accepted with engine.quantization {spec.quantization!r} {kind}: "
                "TGI's --dtype \"cannot be used with `--quantize`\"; keep engine.dtype auto"
            )
        if spec.quantization == "exl2" and spec.tensor_parallel_size > 1:
            problems.append(
                f"parallelism.tensorParallelSize: {spec.tensor_parallel_size} is not accepted with engine.quantization "
                f"'exl2' {kind}: \"Sharding is currently not supported with `exl2` quantization\"; use 1"
            )
        if spec.max_model_len is not None and spec.max_model_len < 2:
            problems.append(
                f"engine.maxModelLen: {spec.max_model_len} is not accepted {kind}: TGI needs max-input-tokens "
                "< max-total-tokens; use at least 2"
            )
        if not 0 < spec.gpu_memory_utilization <= 1:
            problems.append(
                f"engine.gpuMemoryUtilization: {spec.gpu_memory_utilization} is not accepted {kind}: TGI's "
                "--cuda-memory-fraction is a fraction of each GPU's memory; use a value in (0, 1]"
            )
        for arg in spec.extra_args:
            name = _flag_name(arg)
            if name == "--api-key":
                problems.append(
                    f"engine.extraArgs: {name!r} is not accepted {kind}: it would put the key in the pod spec; "
                    "set apiKey (TGI reads it from API_KEY)"
                )
            elif name in _STACK_FLAGS:
                problems.append(
                    f"engine.extraArgs: {name!r} is not accepted {kind}: it is set from {_STACK_FLAGS[name]} "
                    "(TGI's launcher refuses a flag given twice); remove it from engine.extraArgs"
                )
        return problems


PROFILE = TgiProfile(
    kind="tgi",
    title="TGI",
    image=TGI_IMAGE,
    version=TGI_VERSION,
    docs="https://huggingface.co/docs/text-generation-inference/reference/launcher",
    port=TGI_PORT,
    health_path="/health",
    # The router starts (and /health answers) only after every shard has loaded and warmed up.
    ready_path="/health",
    metrics_path="/metrics",
    openai_paths=("/v1/chat/completions", "/v1/completions", "/v1/models"),
    model_source="a Hugging Face model id (downloaded by the launcher into the Hugging Face cache) or a path inside "
    "the container",
    parallelism="parallelism.tensorParallelSize -> --num-shard (one shard per GPU, attention heads split); no "
    "pipeline parallelism",
    splits_heads=True,
    pipeline=False,
    docker=True,
    api_key_env="API_KEY",
    honours=frozenset(
        {"dtype", "max_model_len", "gpu_memory_utilization", "kv_cache_dtype", "quantization", "extra_args"}
    ),
)
