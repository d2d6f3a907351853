"""The quantization methods the pinned vLLM release accepts, as data (no vLLM needed).

``engine/quantization_methods.json`` is written by ``tools/vllm_quantization.py`` from vLLM's own
``QUANTIZATION_METHODS``; a test regenerates it and checks that it is current. vLLM refuses other
names in ``ModelConfig._verify_quantization`` (vllm/config/model.py); that wording is reused here.
"""

from __future__ import annotations

import json
from pathlib import Path

_DATA = json.loads(Path(__file__).with_name("quantization_methods.json").read_text(encoding="utf-8"))

QUANTIZATION_METHODS: tuple[str, ...] = tuple(_DATA["methods"])
"""Every ``--quantization`` value the pinned release accepts, in vLLM's order."""
DEPRECATED_QUANTIZATION_METHODS: tuple[str, ...] = tuple(_DATA["deprecated"])
"""Methods vLLM refuses unless ``--allow-deprecated-quantization`` is given."""
QUANTIZATION_METHODS_VERSION: str = _DATA["vllm_version"]
"""The vLLM release the lists were read from."""


def check_quantization(method: str, allow_deprecated: bool = False) -> str:
    """``method`` if the pinned vLLM accepts it as ``--quantization``.

    Raises:
        ValueError: an unknown method, in vLLM's words, or a deprecated one without
            ``allow_deprecated``.
    """
    if method not in QUANTIZATION_METHODS:
        raise ValueError(f"Unknown quantization method: {method}. Must be one of {list(QUANTIZATION_METHODS)}.")
    if method in DEPRECATED_QUANTIZATION_METHODS and not allow_deprecated:
        raise ValueError(
            f"The quantization method {method} is deprecated and will be removed in future versions of vLLM. "
            "To bypass, add `--allow-deprecated-quantization` to engine.extraArgs."
        )
    return method
