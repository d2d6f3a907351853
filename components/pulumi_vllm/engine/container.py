"""What every vLLM container has on any target: where the model cache is mounted, the health path,
the size of its shared memory, and the memory quantities those sizes are written in."""

from __future__ import annotations

import re
from dataclasses import dataclass

MODEL_CACHE_PATH = "/root/.cache/huggingface"
"""Where the model cache is mounted; ``HF_HOME`` points here."""

NON_ROOT_CACHE_PATH = "/cache/huggingface"
"""Where the cache is mounted for a non-root container (an arbitrary uid cannot enter /root)."""

HEALTH_PATH = "/health"
"""vLLM's liveness and readiness endpoint (200 once the engine has loaded the model)."""

@dataclass(frozen=True)
class VllmCommand:
    """A container's ``command`` and ``args`` (vLLM's, or another engine's)."""

    command: tuple[str, ...]
    args: tuple[str, ...]

    @property
    def argv(self) -> list[str]:
        """The whole command line."""
        return [*self.command, *self.args]


_QUANTITY = re.compile(r"^([0-9.]+)(Ki|Mi|Gi|Ti|k|M|G|T)?$")
_FACTORS = {None: 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def quantity_bytes(quantity: str) -> float:
    """Bytes in a Kubernetes memory quantity such as ``16Gi`` or ``500M``."""
    match = _QUANTITY.match(quantity)
    if not match:
        raise ValueError(f"{quantity!r} is not a memory quantity")
    return float(match.group(1)) * _FACTORS[match.group(2)]


def default_shm_size(gpus: int) -> str:
    """Default /dev/shm of a vLLM container: 2Gi per GPU (NCCL's intra-node buffers), at least 2Gi."""
    return f"{max(2, 2 * gpus)}Gi"


def cache_path(run_as_non_root: bool) -> str:
    """Where the model cache is mounted (``HF_HOME``): under /root, or :data:`NON_ROOT_CACHE_PATH` for non-root."""
    return NON_ROOT_CACHE_PATH if run_as_non_root else MODEL_CACHE_PATH
