"""Data-centre GPUs as vLLM sees them: the memory the CUDA runtime reports as the device total.

vLLM multiplies ``gpu_memory_utilization`` by ``torch.cuda.mem_get_info()[1]`` (the CUDA total),
which is a little below the marketing size and below what ``nvidia-smi`` prints: an H100 80GB
shows 81559 MiB in ``nvidia-smi`` but 79.18-79.19 GiB to CUDA. Each entry below says where its
number comes from: a published vLLM or PyTorch log line for that GPU, or, where none was found, the
``nvidia-smi`` size less the 0.47 GiB the driver keeps back on an H100 (81559 MiB - 79.18 GiB).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

_HIGH_BATCH_MEMORY_GIB = 70.0
"""vLLM gives GPUs with at least 70 GiB (A100s excepted) larger default batch limits.

Source: ``EngineArgs.get_batch_defaults`` in vllm/engine/arg_utils.py: ``device_memory >= 70 *
GiB_bytes and "a100" not in device_name`` selects max_num_batched_tokens 8192 and max_num_seqs 1024
for ``vllm serve``; other GPUs get 2048 and 256.
"""

_H100_DRIVER_RESERVE_GIB = 81559 / 1024 - 79.18
"""What the driver keeps back on an H100 80GB: nvidia-smi shows 81559 MiB, CUDA 85017493504 bytes
(measured on an H100 80GB HBM3, driver 580.159, CUDA 13.0, PyTorch 2.11)."""


@dataclass(frozen=True)
class GpuType:
    """One GPU model: its name, the memory CUDA reports as total, and where that number comes from."""

    name: str
    """Canonical name, as users write it (``H100-80GB``)."""
    total_memory_gib: float
    """``torch.cuda.mem_get_info()[1]`` in GiB: the total vLLM applies gpu_memory_utilization to."""
    aliases: tuple[str, ...] = ()
    """Other spellings accepted by :func:`lookup_gpu` (compared case-insensitively)."""
    source: str = ""
    """Where ``total_memory_gib`` comes from."""
    device_name: str = field(default="")
    """What CUDA calls the device (vLLM keys some defaults on it, e.g. the A100 exception)."""
    resource: str = "nvidia.com/gpu"
    """The Kubernetes extended resource its device plugin advertises."""
    nvlink: bool = True
    """Whether the GPUs of a node are linked by NVLink (AMD: Infinity Fabric), as vLLM's
    ``is_fully_connected`` asks NVML; false for PCIe-only cards (see ``_PCIE_ONLY``), where vLLM disables
    its custom all-reduce above two GPUs and tensor parallelism costs less memory outside PyTorch."""

    @property
    def large_batch_defaults(self) -> bool:
        """Whether ``vllm serve`` uses the large default batch (8192 tokens, 1024 sequences) here."""
        return (
            self.total_memory_gib >= _HIGH_BATCH_MEMORY_GIB
            and "a100" not in (self.device_name or self.name).lower()
        )

    @property
    def default_max_num_batched_tokens(self) -> int:
        """vLLM's default ``max_num_batched_tokens`` for ``vllm serve`` on this GPU."""
        return 8192 if self.large_batch_defaults else 2048

    @property
    def default_max_num_seqs(self) -> int:
        """vLLM's default ``max_num_seqs`` for ``vllm serve`` on this GPU."""
        return 1024 if self.large_batch_defaults else 256


def _from_nvidia_smi(mib: int) -> float:
    return round(mib / 1024 - _H100_DRIVER_RESERVE_GIB, 2)


_CATALOG: tuple[GpuType, ...] = (
    GpuType(
        "H100-80GB", 79.19, ("H100", "H100-SXM", "H100-SXM5", "H100-PCIe", "H100-80G"),
        "vLLM 0.19 start-up logs on H100 80GB (llm-d-incubation/llm-d-planner "
        "docs/accuracy/vllm-v0.19.0-accuracy-report.md); 79.18 GiB measured (85017493504 bytes, "
        "driver 580.159, CUDA 13.0)",
        "NVIDIA H100 80GB HBM3",
    ),
    GpuType(
        "H100-NVL", _from_nvidia_smi(95830), ("H100-94GB", "H100NVL"),
        "estimated: nvidia-smi 95830 MiB less the H100 driver reserve", "NVIDIA H100 NVL",
    ),
    GpuType(
        "H200", 139.80, ("H200-141GB", "H200-SXM", "H200-NVL"),
        "measured on an H200: torch.cuda.mem_get_info total 139.80 GiB (driver 580, CUDA 13); an "
        "older driver's vLLM start-up error shows 'Free memory on device (7.34/139.72 GiB)' "
        "(github.com/vllm-project/vllm/issues/23192)", "NVIDIA H200",
    ),
    GpuType(
        "H20", _from_nvidia_smi(97871), ("H20-96GB",),
        "estimated: nvidia-smi 97871 MiB (as H20 nodes report it; not measured here) less the H100 "
        "driver reserve", "NVIDIA H20",
    ),
    GpuType(
        "GB200", _from_nvidia_smi(189471), ("GB200-186GB", "B200-GB200"),
        "estimated: nvidia-smi 189471 MiB per Blackwell GPU of a GB200 superchip (as reported; "
        "not measured here) less the H100 driver reserve", "NVIDIA GB200",
    ),
    GpuType(
        "B200", 178.35, ("B200-180GB", "B200-192GB"),
        "PyTorch out-of-memory report 'total capacity of 178.35 GiB' and vLLM's 'Free memory on "
        "device (177.66/178.36 GiB)' (github.com/vllm-project/vllm/pull/21489)", "NVIDIA B200",
    ),
    GpuType(
        "A100-80GB", 79.10, ("A100-SXM4-80GB", "A100-PCIe-80GB", "A100-80G"),
        "PyTorch out-of-memory report 'total capacity of 79.10 GiB' on one A100 80G; vLLM shows "
        "79.32 GiB in github.com/vllm-project/vllm-omni/issues/276 (varies by driver; the lower "
        "one is kept)", "NVIDIA A100-SXM4-80GB",
    ),
    GpuType(
        "A100-40GB", 39.39, ("A100-SXM4-40GB", "A100-PCIe-40GB", "A100-40G"),
        "PyTorch's out-of-memory message on A100-SXM4-40GB ('39.39 GiB total capacity'), widely "
        "quoted in issue reports",
        "NVIDIA A100-SXM4-40GB",
    ),
    GpuType(
        "L40S", 44.53, ("L40S-48GB",),
        "PyTorch out-of-memory report on L40S machines 'total capacity of 44.53 GiB' "
        "(github.com/vllm-project/vllm/issues/15598)", "NVIDIA L40S",
    ),
    GpuType(
        "L20", _from_nvidia_smi(46068), ("L20-48GB",),
        "estimated: nvidia-smi 46068 MiB (the L40S's size, same 48 GB GDDR6; not measured here) "
        "less the H100 driver reserve", "NVIDIA L20",
    ),
    GpuType(
        "RTX-6000-Ada", _from_nvidia_smi(49140), ("RTX6000-Ada", "RTX-6000-Ada-Generation", "RTX-6000-Ada-48GB"),
        "estimated: nvidia-smi 49140 MiB (as reported; not measured here) less the H100 driver reserve",
        "NVIDIA RTX 6000 Ada Generation",
    ),
    GpuType(
        "L4", 22.04, ("L4-24GB",),
        "vLLM start-up error 'Free memory on device cuda:0 (15.32/22.04 GiB)' on an L4; "
        "22.05 GiB in github.com/pytorch/pytorch/issues/175666", "NVIDIA L4",
    ),
    GpuType(
        "A10G", _from_nvidia_smi(23028), ("A10G-24GB",),
        "estimated: nvidia-smi 23028 MiB less the H100 driver reserve", "NVIDIA A10G",
    ),
    GpuType(
        "A10", 22.18, ("A10-24GB",),
        "PyTorch out-of-memory report on one A10 'total capacity of 22.18 GiB' "
        "(github.com/OpenBMB/MiniCPM-V/issues/640)", "NVIDIA A10",
    ),
    GpuType(
        "T4", 14.75, ("T4-16GB", "Tesla-T4"),
        "PyTorch out-of-memory reports on a Tesla T4 'GPU 0; 14.75 GiB total capacity' (Google Colab's T4, widely "
        "quoted; not measured here)", "Tesla T4",
    ),
    GpuType(
        "RTX-4090", 23.52, ("RTX4090", "4090", "GeForce-RTX-4090"),
        "PyTorch out-of-memory report on an RTX 4090 'total capacity of 23.52 GiB' "
        "(github.com/Soul-AILab/SoulX-FlashTalk/issues/5)", "NVIDIA GeForce RTX 4090",
    ),
    # Cards teams serve on outside the big clouds' data-centre line-up. GPU feature discovery labels a
    # node nvidia.com/gpu.product with the CUDA device name, spaces as dashes ("NVIDIA-GeForce-RTX-5090"),
    # which lookup_gpu reads through device_name.
    GpuType(
        "RTX-PRO-6000-Server", 94.97,
        ("RTX-PRO-6000", "RTX-PRO-6000-Blackwell", "RTX-PRO-6000-Blackwell-Server", "RTX-PRO-6000-SE",
         "RTXPRO6000BW-SE", "RTX-PRO-6000-96GB"),
        "CUDA device total 'total=94.97 GiB' on a 96 GB RTX PRO 6000 Blackwell whose nvidia-smi shows 97887 MiB "
        "(github.com/antirez/ds4/issues/431); the Server and Workstation editions carry the same 96 GB GDDR7 "
        "(not measured here)",
        "NVIDIA RTX PRO 6000 Blackwell Server Edition",
    ),
    GpuType(
        "RTX-PRO-6000-Workstation", 94.97,
        ("RTX-PRO-6000-Blackwell-Workstation", "RTX-PRO-6000-WS", "RTXPRO6000BW",
         "RTX-PRO-6000-Max-Q", "NVIDIA RTX PRO 6000 Blackwell Max-Q Workstation Edition"),
        "CUDA device total 'total=94.97 GiB' on a 96 GB RTX PRO 6000 Blackwell, nvidia-smi 97887 MiB "
        "(github.com/antirez/ds4/issues/431); llama.cpp lists the Workstation Edition at 97886 MiB "
        "(github.com/ggml-org/llama.cpp/issues/22319)",
        "NVIDIA RTX PRO 6000 Blackwell Workstation Edition",
    ),
    GpuType(
        "RTX-5090", 31.37, ("RTX5090", "5090", "GeForce-RTX-5090", "RTX-5090-32GB"),
        "vLLM start-up log on an RTX 5090 'total_gpu_memory (31.37GiB)' (github.com/vllm-project/vllm/issues/14452); "
        "nvidia-smi shows 32607 MiB (github.com/noonghunna/club-3090/issues/1322)",
        "NVIDIA GeForce RTX 5090",
    ),
    GpuType(
        "RTX-4080", _from_nvidia_smi(16376), ("RTX4080", "4080", "GeForce-RTX-4080", "RTX-4080-16GB"),
        "estimated: nvidia-smi 16376 MiB (as 16 GB GeForce cards report it; not measured here) less the H100 "
        "driver reserve; the 16 GB RTX 5080 shows 'total capacity of 15.48 GiB' to PyTorch "
        "(github.com/vllm-project/vllm/issues/14452)",
        "NVIDIA GeForce RTX 4080",
    ),
    GpuType(
        "L40", _from_nvidia_smi(46068), ("L40-48GB",),
        "estimated: nvidia-smi 46068 MiB (the same 48 GB GDDR6 as the L40S, whose CUDA total is 44.53 GiB; not "
        "measured here) less the H100 driver reserve",
        "NVIDIA L40",
    ),
    GpuType(
        "A40", _from_nvidia_smi(46068), ("A40-48GB",),
        "estimated: nvidia-smi 46068 MiB (48 GB GDDR6 with ECC on, as A40 nodes report it; not measured here) "
        "less the H100 driver reserve",
        "NVIDIA A40",
    ),
)

# AMD Instinct GPUs are scheduled as amd.com/gpu; ROCm's HIP reports the whole VRAM as the total.
_CATALOG += (
    GpuType(
        "MI300X", round(205822885888 / (1 << 30), 2), ("MI300X-192GB", "Instinct-MI300X", "AMD-Instinct-MI300X"),
        "rocm-smi 'VRAM Total Memory (B): 205822885888' on an MI300X (as reported; not measured "
        "here), which HIP returns as the device total", "AMD Instinct MI300X", "amd.com/gpu",
    ),
    GpuType(
        "MI325X", 256.0, ("MI325X-256GB", "Instinct-MI325X", "AMD-Instinct-MI325X"),
        "AMD's specification: 256 GB HBM3E (taken as 256 GiB as rocm-smi reports the MI325X; not "
        "measured here)", "AMD Instinct MI325X", "amd.com/gpu",
    ),
)

_PCIE_ONLY: dict[str, str] = {
    # Cards without NVLink, each with the specification that says so. A100 and H100 PCIe cards take an
    # optional NVLink bridge between two cards, so their entries keep NVLink (the larger non-torch memory).
    "L40S": "https://www.nvidia.com/en-us/data-center/l40s/ (NVLink support: no; PCIe Gen4 x16)",
    "L40": "https://www.nvidia.com/en-us/data-center/l40/ (NVLink support: no)",
    "L20": "NVIDIA L20 product brief: PCIe Gen4 x16, no NVLink (the L40S's board)",
    "L4": "https://www.nvidia.com/en-us/data-center/l4/ (interconnect: PCIe Gen4 x16)",
    "A10": "https://www.nvidia.com/en-us/data-center/products/a10-gpu/ (interconnect: PCIe Gen4 64 GB/s)",
    "A10G": "https://aws.amazon.com/ec2/instance-types/g5/ (A10G on PCIe; g5 lists no GPU interconnect)",
    "T4": "https://www.nvidia.com/en-us/data-center/tesla-t4/ (interconnect: PCIe Gen3 x16)",
    "RTX-4090": "https://www.nvidia.com/en-us/geforce/graphics-cards/40-series/rtx-4090/ (no NVLink on Ada GeForce)",
    "RTX-4080": "https://www.nvidia.com/en-us/geforce/graphics-cards/40-series/rtx-4080-family/ (no NVLink)",
    "RTX-5090": "https://www.nvidia.com/en-us/geforce/graphics-cards/50-series/rtx-5090/ (no NVLink)",
    "RTX-6000-Ada": "https://www.nvidia.com/en-us/design-visualization/rtx-6000/ (NVLink: not supported)",
    "RTX-PRO-6000-Server": "https://www.nvidia.com/en-us/data-center/rtx-pro-6000-blackwell-server-edition/ "
                           "(PCIe Gen5 x16, no NVLink)",
    "RTX-PRO-6000-Workstation": "https://www.nvidia.com/en-us/products/workstations/professional-desktop-gpus/"
                                "rtx-pro-6000/ (PCIe Gen5 x16, no NVLink)",
}
"""GPUs on PCIe only, and where their specification says there is no NVLink."""
_CATALOG = tuple(replace(gpu, nvlink=False) if gpu.name in _PCIE_ONLY else gpu for gpu in _CATALOG)

_AMBIGUOUS: dict[str, tuple[str, ...]] = {
    "a100": ("A100-40GB", "A100-80GB"),
}

# "custom:47.5" or "47.5GiB": GiB as CUDA reports them ("48GB" is rejected: a 48 GB card shows less).
_CUSTOM = re.compile(r"^(custom[:=]?)?(\d+(?:\.\d+)?)(gib)?$")


def _normalise(name: str) -> str:
    """Lower case, 'NVIDIA'/'GeForce' dropped, spaces and underscores as dashes."""
    text = name.strip().lower()
    text = re.sub(r"^nvidia[\s_-]*", "", text)
    text = re.sub(r"[\s_]+", "-", text)
    return re.sub(r"-+", "-", text).strip("-")


_INDEX: dict[str, GpuType] = {}
for _gpu in _CATALOG:
    for _spelling in (_gpu.name, *_gpu.aliases, _gpu.device_name):
        if not _spelling:
            continue
        _INDEX[_normalise(_spelling)] = _gpu
        _INDEX[_normalise(_spelling).replace("-", "")] = _gpu


def known_gpus() -> list[str]:
    """Canonical names of every GPU in the catalog, in catalog order."""
    return [gpu.name for gpu in _CATALOG]


def custom_gpu(memory_gib: float, name: str = "") -> GpuType:
    """A GPU the catalog does not list, given the memory CUDA reports as its total (GiB).

    Raises:
        ValueError: ``memory_gib`` is not positive.
    """
    if not memory_gib > 0:
        raise ValueError(f"GPU memory must be positive, got {memory_gib} GiB")
    label = name or f"custom-{memory_gib:g}GiB"
    return GpuType(label, float(memory_gib), source="given by the user")


def lookup_gpu(name: str) -> GpuType:
    """The catalog entry for ``name`` (case-insensitive, e.g. ``h100``, ``A100-80GB``, ``L40S``).

    ``custom:<GiB>`` or ``<GiB>GiB`` (e.g. ``custom:47.5``, ``40GiB``) names a GPU the catalog does
    not list, by the memory CUDA reports as its total.

    Raises:
        ValueError: the name is unknown or ambiguous; the message lists the accepted names.
    """
    key = _normalise(name)
    if not key:
        raise ValueError(f"no GPU type given. Accepted: {', '.join(known_gpus())}")
    gpu = _INDEX.get(key) or _INDEX.get(key.replace("-", ""))
    if gpu is not None:
        return gpu
    if key in _AMBIGUOUS:
        choices = " or ".join(_AMBIGUOUS[key])
        raise ValueError(f"GPU type {name!r} is ambiguous: say {choices}")
    custom = _CUSTOM.match(key.replace("-", ""))
    if custom and (custom.group(1) or custom.group(3)):
        return custom_gpu(float(custom.group(2)))
    raise ValueError(
        f"unknown GPU type {name!r}. Accepted (case-insensitive): {', '.join(known_gpus())}; "
        "or custom:<GiB> for another GPU, giving the total memory CUDA reports"
    )


# Node labels that name a GPU, and how their values map to the catalog. GKE's
# cloud.google.com/gke-accelerator values (cloud.google.com/kubernetes-engine/docs/how-to/gpus)
# drop "nvidia-" in lookup_gpu; the ones whose remainder is not a catalog name are listed here.
GKE_ACCELERATORS: dict[str, str] = {
    "nvidia-tesla-a100": "A100-40GB",
    "nvidia-a100-80gb": "A100-80GB",
    "nvidia-h100-80gb": "H100-80GB",
    "nvidia-h100-mega-80gb": "H100-80GB",
    "nvidia-h200-141gb": "H200",
    "nvidia-b200": "B200",
    "nvidia-gb200": "GB200",
    "nvidia-l4": "L4",
    "nvidia-rtx-pro-6000": "RTX-PRO-6000-Server",  # G4 machines: RTX PRO 6000 Blackwell Server Edition
}
INSTANCE_TYPE_GPUS: dict[str, str] = {
    # EKS / EC2 (node.kubernetes.io/instance-type): the GPU of each accelerated instance family.
    # A small mapping for the common GPU families; the cloud instance table extends it.
    "p4d": "A100-40GB",
    "p4de": "A100-80GB",
    "p5": "H100-80GB",
    "p5e": "H200",
    "p5en": "H200",
    "p6-b200": "B200",
    "g6e": "L40S",
    "g6": "L4",
    "g5": "A10G",
}


def gpu_from_node_label(key: str, value: str) -> GpuType | None:
    """The GPU a node label names, or ``None``.

    ``nvidia.com/gpu.product`` (NVIDIA GPU feature discovery, e.g. ``NVIDIA-H100-80GB-HBM3``),
    ``cloud.google.com/gke-accelerator`` (``nvidia-l4``, ``nvidia-h100-80gb``, ``nvidia-tesla-a100``),
    ``karpenter.k8s.aws/instance-gpu-name`` (``h100``) and ``node.kubernetes.io/instance-type``
    (``p5.48xlarge``: by instance family).
    """
    name = str(value).strip()
    if key == "cloud.google.com/gke-accelerator" and name.lower() in GKE_ACCELERATORS:
        return lookup_gpu(GKE_ACCELERATORS[name.lower()])
    if key in ("node.kubernetes.io/instance-type", "beta.kubernetes.io/instance-type"):
        family = name.lower().split(".", 1)[0]
        mapped = INSTANCE_TYPE_GPUS.get(family)
        return lookup_gpu(mapped) if mapped else None
    try:
        return lookup_gpu(name)
    except ValueError:
        return None
