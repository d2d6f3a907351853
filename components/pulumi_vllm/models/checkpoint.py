"""The tensors of a checkpoint as stored: name, dtype and shape of each, read from safetensors headers.

A ``*.safetensors`` file starts with an 8-byte little-endian header length and a JSON header that
maps each tensor name to its ``dtype`` (``"BF16"``, ``"F8_E4M3"``, ``"U8"``...), ``shape`` and byte
offsets; only that header is read here, never the tensors. Packed quantized formats store several
weights per element (``U8`` FP4 pairs, ``I32`` GPTQ/AWQ words), so :attr:`CheckpointTensors.num_elements`
counts stored elements, not parameters; turning them into weights as vLLM loads them is the weight
accounting's job.

Reference: https://huggingface.co/docs/safetensors/index (format) and
https://github.com/huggingface/safetensors/blob/main/safetensors/src/tensor.rs (the dtype names).
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

HEADER_LIMIT = 100 * 1024 * 1024
"""Largest safetensors header read (the format caps headers at 100 MB)."""

DTYPE_BITS: dict[str, int] = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8,
    "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
    "I16": 16, "U16": 16, "F16": 16, "BF16": 16,
    "I32": 32, "U32": 32, "F32": 32,
    "I64": 64, "U64": 64, "F64": 64, "C64": 64,
}
"""Bits per element of each safetensors dtype name."""


class TensorEntry(BaseModel):
    """One tensor of a checkpoint as its safetensors header describes it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    """Tensor name (``model.layers.0.self_attn.q_proj.weight``)."""
    dtype: str
    """Dtype as safetensors writes it: ``BF16``, ``F16``, ``F32``, ``F8_E4M3``, ``U8``, ``I8``, ``I32``..."""
    shape: tuple[int, ...]
    """Dimensions (empty for a scalar)."""

    @property
    def num_elements(self) -> int:
        """Elements stored (1 for a scalar)."""
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        """Bytes the tensor takes in the file (sub-byte dtypes rounded up to whole bytes)."""
        bits = DTYPE_BITS.get(self.dtype.upper(), 16)
        return (self.num_elements * bits + 7) // 8


class CheckpointTensors(BaseModel):
    """Every tensor of a checkpoint, in file order, and where the list was read."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tensors: tuple[TensorEntry, ...]
    """The tensors of all shards."""
    source: str
    """Where the headers were read (a local folder, or ``hub:<repo>@<revision>``)."""

    @property
    def total_bytes(self) -> int:
        """Bytes of tensor data in the checkpoint (headers excluded)."""
        return sum(tensor.nbytes for tensor in self.tensors)

    @property
    def num_elements(self) -> int:
        """Elements stored over all tensors (packed formats hold several weights per element)."""
        return sum(tensor.num_elements for tensor in self.tensors)


def entries_from_header(header: Mapping[str, Any]) -> tuple[TensorEntry, ...]:
    """The tensors of one parsed safetensors header (``__metadata__`` and malformed entries skipped)."""
    entries = []
    for name, entry in header.items():
        if name == "__metadata__" or not isinstance(entry, Mapping):
            continue
        shape = entry.get("shape")
        dtype = entry.get("dtype")
        if not isinstance(shape, list) or not all(isinstance(n, int) and n >= 0 for n in shape):
            continue
        entries.append(TensorEntry(name=name, dtype=str(dtype or "BF16"), shape=tuple(shape)))
    return tuple(entries)


def read_header(path: Path) -> dict[str, Any] | None:
    """The JSON header of one ``*.safetensors`` file, or ``None`` when it cannot be read."""
    try:
        with path.open("rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            if length > HEADER_LIMIT:
                return None
            header = json.loads(handle.read(length))
    except (OSError, ValueError, struct.error):
        return None
    return header if isinstance(header, dict) else None


def read_safetensors_headers(folder: Path) -> CheckpointTensors | None:
    """The tensors of the ``*.safetensors`` files of a local model folder, read from their headers.

    ``None`` when the folder has no safetensors files, when any of them cannot be read (a partial
    list would undercount the model), or when they hold no tensors.
    """
    files = sorted(Path(folder).glob("*.safetensors"))
    tensors: list[TensorEntry] = []
    for path in files:
        header = read_header(path)
        if header is None:
            return None
        tensors.extend(entries_from_header(header))
    if not tensors:
        return None
    return CheckpointTensors(tensors=tuple(tensors), source=str(folder))
