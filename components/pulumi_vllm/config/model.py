"""The ``model`` and ``engine`` sections: which model vLLM serves, and how."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from pulumi_vllm.config.base import (
    DEFAULT_IMAGE,
    PROJECT,
    _Section,
)
from pulumi_vllm.engine.flags import check_extra_args, flag_name
from pulumi_vllm.engine.plan_flags import HF_OVERRIDES, check_plan_flags, find_settings
from pulumi_vllm.models.rope import check_hf_overrides


class ModelSpec(_Section):
    """Which model to serve."""

    id: str = Field(min_length=1)
    """Hugging Face model id (``org/name``) or an absolute path inside the container."""
    revision: str | None = None
    """Branch, tag or commit of the model repository (pin a commit for reproducible rollouts)."""
    served_model_name: str | None = None
    """Name clients use in the ``model`` field; defaults to the model id."""
    trust_remote_code: bool = False
    """Allow the model repository's own Python code to run (only for models you trust)."""
    facts: dict[str, Any] | None = None
    """Explicit architecture facts (ModelFacts fields), overriding config.json and the catalog."""
    config_json: str | None = None
    """Path on this machine to the model's ``config.json``, read for architecture facts."""

    @field_validator("id")
    @classmethod
    def _no_spaces(cls, value: str) -> str:
        if value.strip() != value or " " in value:
            raise ValueError(f"{value!r} is not a model id or path (no spaces allowed)")
        return value


EngineKind = Literal[
    "vllm", "llama.cpp", "ollama", "tgi", "tensorrt-llm", "triton", "ray-serve-llm", "deepspeed-mii", "megatron"
]
"""The engines a stack can serve with (see :mod:`pulumi_vllm.engine.profiles`)."""


class EngineSpec(_Section):
    """Engine settings: vLLM by default, or another engine's profile."""

    kind: EngineKind = "vllm"
    """The inference engine: vllm (default), llama.cpp, ollama, tgi, tensorrt-llm, triton, ray-serve-llm, deepspeed-mii
    or megatron; each runs on the same cache, token Secret, Deployment, Service and probes."""
    image: str | None = None
    """Container image, pinned to a release tag or digest (never ``latest``); defaults to the engine's pinned image."""
    model_file: str | None = None
    """A file or folder inside the model the engine loads: the ``.gguf`` file of a llama.cpp model repository, or a
    Megatron checkpoint folder in the cache."""
    dtype: Literal["auto", "half", "float16", "bfloat16", "float", "float32"] = "auto"
    """Weight and activation dtype (vLLM's ``--dtype``)."""
    max_model_len: int | None = Field(default=None, gt=0)
    """Longest context (prompt + output) in tokens; defaults to the model's own limit."""
    gpu_memory_utilization: float = Field(default=0.9, gt=0, le=1)
    """Fraction of each GPU's memory vLLM may use (weights, activations and KV cache)."""
    kv_cache_dtype: Literal[
        "auto", "bfloat16", "float16", "fp8", "fp8_ds_mla", "fp8_e4m3", "fp8_e5m2", "fp8_inc", "fp8_per_token_head",
        "int4_per_token_head", "int8_per_token_head", "nvfp4", "nvfp4_4over6", "nvfp4_ds_mla", "turboquant_3bit_nc",
        "turboquant_4bit_nc", "turboquant_k3v4_nc", "turboquant_k8v4", "ultraquant_4bit",
    ] = "auto"
    """KV-cache dtype (``--kv-cache-dtype``); fp8 roughly doubles the cache in tokens, 4-bit formats nearly quadruple it."""
    quantization: str | None = None
    """Weight quantization method passed as ``--quantization`` (e.g. fp8, awq); usually detected."""
    extra_args: list[str] = Field(default_factory=list)
    """Escape hatch: further flags of the engine's server (``vllm serve`` for vLLM), appended verbatim."""
    env: dict[str, str] = Field(default_factory=dict)
    """Extra environment variables for the engine's container (non-secret values only)."""
    hf_overrides: dict[str, Any] = Field(default_factory=dict)
    """Keys of the model's ``config.json`` vLLM replaces (``--hf-overrides``), e.g. ``rope_parameters`` for a longer
    context by RoPE scaling; a ``--hf-overrides`` flag in ``extraArgs`` is moved here."""
    runner: Literal["generate", "pooling"] = "generate"
    """vLLM's ``--runner``: ``generate`` (chat and completions) or ``pooling`` (embedding, reranking, scoring and
    classification models: ``/v1/embeddings``, ``/score``, ``/rerank``, ``/pooling``)."""
    convert: Literal["embed", "classify"] | None = None
    """vLLM's ``--convert`` for ``runner: pooling``: serve a generative checkpoint as an embedding (``embed``) or a
    classification (``classify``) model; unset: the model's own head."""

    @property
    def pinned_image(self) -> str:
        """The image that runs: ``image``, which defaults to the engine's pinned image (empty when it publishes none)."""
        return self.image or ""

    @model_validator(mode="before")
    @classmethod
    def _default_image(cls, data: Any) -> Any:
        # The engine's pinned image when none is given, so that ``image`` always says what runs.
        if isinstance(data, dict) and data.get("image") is None:
            kind = data.get("kind", "vllm")
            if kind == "vllm":
                return {**data, "image": DEFAULT_IMAGE}
            from pulumi_vllm.engine.profiles import ENGINE_MODULES, profile

            if kind in ENGINE_MODULES and profile(kind).image:
                return {**data, "image": profile(kind).image}
        return data

    @field_validator("image")
    @classmethod
    def _pinned(cls, value: str | None) -> str | None:
        if value is None or "@sha256:" in value:
            return value
        name, _, tag = value.rpartition(":")
        if not name or "/" in tag or not tag:
            raise ValueError(
                f"{value!r} has no tag; pin a vLLM release, e.g. {DEFAULT_IMAGE}"
            )
        if tag == "latest":
            raise ValueError(f"{value!r} uses 'latest'; pin a vLLM release, e.g. {DEFAULT_IMAGE}")
        return value

    @field_validator("quantization")
    @classmethod
    def _quantization(cls, value: str | None, info: ValidationInfo) -> str | None:
        # vLLM-based engines pass it as --quantization: the pinned release's own list and wording
        # (engine/quantization_methods.json); TGI checks its --quantize values in its profile.
        if value is None or info.data.get("kind", "vllm") not in ("vllm", "triton", "ray-serve-llm"):
            return value
        from pulumi_vllm.engine.quantization import check_quantization

        return check_quantization(value, allow_deprecated=True)

    @model_validator(mode="after")
    def _deprecated_quantization(self) -> EngineSpec:
        from pulumi_vllm.engine.quantization import DEPRECATED_QUANTIZATION_METHODS

        if self.quantization in DEPRECATED_QUANTIZATION_METHODS and self.kind == "vllm" and not any(
            arg.split("=", 1)[0].replace("_", "-") == "--allow-deprecated-quantization" for arg in self.extra_args
        ):
            raise ValueError(
                f"{PROJECT}:engine.quantization: {self.quantization!r} is not accepted: the quantization method "
                f"{self.quantization} is deprecated and will be removed in future versions of vLLM. To bypass, set "
                "`--allow-deprecated-quantization` (add it to engine.extraArgs)"
            )
        return self

    @field_validator("extra_args")
    @classmethod
    def _flags(cls, value: list[str], info: ValidationInfo) -> list[str]:
        if info.data.get("kind", "vllm") != "vllm":
            # Another engine's own flags: passed verbatim, its profile says which it sets itself.
            return value
        managed = {"--host", "--port", "--api-key", "--model"}
        for arg in value:
            # vLLM reads --api_key as --api-key: compare the flag vLLM would see.
            flag = flag_name(arg) or arg.split("=", 1)[0]
            if flag in managed:
                raise ValueError(
                    f"{arg!r} is set by pulumi-vllm itself; use the matching config key instead"
                )
        # The pinned release's own flags, without vLLM installed (vLLM's wording).
        check_extra_args(value)
        # Flags the plan reads from its own keys: one flag per setting on the command line.
        check_plan_flags(value)
        return value

    @field_validator("hf_overrides")
    @classmethod
    def _rope(cls, value: dict[str, Any]) -> dict[str, Any]:
        check_hf_overrides(value)
        return value

    @model_validator(mode="after")
    def _fold_hf_overrides(self) -> EngineSpec:
        """``--hf-overrides JSON`` in ``extraArgs`` becomes ``hfOverrides`` (the one place the plan reads)."""
        if self.kind != "vllm":
            given = [
                key for key, value in (("engine.hfOverrides", self.hf_overrides), ("engine.convert", self.convert),
                                       ("engine.runner", self.runner != "generate")) if value
            ]
            if given:
                raise ValueError(
                    f"{', '.join(given)} is not accepted with engine.kind {self.kind!r}: these are vLLM's "
                    "--hf-overrides, --convert and --runner; use engine.kind vllm, or remove them"
                )
            return self
        if self.runner == "generate" and self.convert is not None:
            raise ValueError(
                f"engine.convert: {self.convert!r} is not accepted with engine.runner 'generate': vLLM converts "
                "a model for the pooling runner only; set engine.runner: pooling"
            )
        settings = [setting for setting in find_settings(self.extra_args) if setting.dest == HF_OVERRIDES]
        if not settings:
            return self
        written = ", ".join(repr(setting.written) for setting in settings)
        if self.hf_overrides:
            raise ValueError(
                f"engine.extraArgs gives {written} and engine.hfOverrides is set too: vLLM would keep only the "
                "flag given last; put every override in engine.hfOverrides"
            )
        if len(settings) > 1 or settings[0].dotted:
            raise ValueError(
                f"engine.extraArgs gives {written}: write the overrides as one JSON object in engine.hfOverrides"
            )
        setting = settings[0]
        try:
            overrides = json.loads(setting.value or "")
        except ValueError:
            overrides = None
        if not isinstance(overrides, dict):
            raise ValueError(  # noqa: TRY004 - pydantic reports ValueError as the key's error
                f"engine.extraArgs: --hf-overrides {setting.value!r} is not accepted: a JSON object is "
                "(e.g. '{\"rope_parameters\": {...}}'); or set engine.hfOverrides"
            )
        try:
            check_hf_overrides(overrides)
        except ValueError as error:
            raise ValueError(f"engine.extraArgs: --hf-overrides is not accepted: {error}") from None
        kept = [*self.extra_args[: setting.start], *self.extra_args[setting.stop :]]
        return self.model_copy(update={"extra_args": kept, "hf_overrides": overrides})

    @field_validator("env")
    @classmethod
    def _no_secret_env(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if name in {"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "VLLM_API_KEY"}:
                raise ValueError(
                    f"{name} must not be a plain value; set the hfToken / apiKey secret instead"
                )
        return value
