"""MIG profiles per GPU type: which ``nvidia.com/mig-<profile>`` a stack may request, and the slice it plans on.

With the device plugin's ``mixed`` MIG strategy (``cluster.gpu.sharing.migStrategy``) each MIG partition is its
own extended resource, ``nvidia.com/mig-<profile>`` (``nvidia.com/mig-3g.40gb``; a profile with media
extensions, ``1g.10gb+me``, is advertised as ``nvidia.com/mig-1g.10gb.me``). A profile exists only on the GPU
it was made for: an A100-40GB profile (``3g.20gb``) on an H100-80GB is never advertised, so a pod requesting it
stays Pending. The tables are NVIDIA's MIG user guide, "Supported MIG Profiles"
(https://docs.nvidia.com/datacenter/tesla/mig-user-guide/supported-mig-profiles.html), one per product, keyed
by this project's GPU names (``pulumi_vllm.capacity.gpus``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pulumi_vllm.capacity.gpus import GpuType

MIG_GUIDE = "https://docs.nvidia.com/datacenter/tesla/mig-user-guide/supported-mig-profiles.html"
"""Where every table below comes from."""

MIG_PROFILES: dict[str, tuple[str, ...]] = {
    # "A30 MIG Profiles": the A30-24GB table.
    "A30": ("1g.6gb", "1g.6gb+me", "2g.12gb", "2g.12gb+me", "4g.24gb"),
    # "A100 MIG Profiles": the A100-SXM4-40GB table.
    "A100-40GB": ("1g.5gb", "1g.5gb+me", "1g.10gb", "2g.10gb", "3g.20gb", "4g.20gb", "7g.40gb"),
    # The same section: "For A100-SXM4-80GB, the profile names will change according to the memory proportion".
    "A100-80GB": ("1g.10gb", "1g.10gb+me", "1g.20gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb"),
    # "H100 MIG Profiles": H100-SXM5-80GB and H100-PCIE-80GB.
    "H100-80GB": ("1g.10gb", "1g.10gb+me", "1g.20gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb"),
    # The same section: H100 NVL (94GB).
    "H100-NVL": ("1g.12gb", "1g.12gb+me", "1g.24gb", "2g.24gb", "3g.47gb", "4g.47gb", "7g.94gb"),
    # "H200 MIG Profiles": H200-SXM5-141GB.
    "H200": ("1g.18gb", "1g.18gb+me", "1g.35gb", "2g.35gb", "3g.71gb", "4g.71gb", "7g.141gb"),
    # "B200 MIG Profiles": B200-180GB.
    "B200": ("1g.23gb", "1g.23gb+me", "1g.45gb", "2g.45gb", "3g.90gb", "4g.90gb", "7g.180gb"),
    # "GB200 MIG Profiles": GB200-186GB.
    "GB200": ("1g.23gb", "1g.23gb+me", "1g.47gb", "2g.47gb", "3g.93gb", "4g.93gb", "7g.186gb"),
}
"""MIG profiles of each GPU that has them, as the MIG user guide names them (``<slices>g.<GB>gb[+me]``)."""

_MIG_RESOURCE = re.compile(r"^nvidia\.com/mig-(\d+g\.\d+gb)((?:\.|\+)me)?$")
_PROFILE = re.compile(r"^(\d+)g\.(\d+)gb(\+me)?$")


@dataclass(frozen=True)
class MigSlice:
    """The MIG partition a stack requests: its profile and the share of the card's memory it holds."""

    gpu: str
    """The GPU type (``H100-80GB``)."""
    profile: str
    """The profile as the MIG user guide names it (``3g.40gb``, ``1g.10gb+me``)."""
    memory_fraction: float
    """The profile's memory over the whole card's (its GB over the full ``7g`` profile's GB)."""


def mig_profile(resource_name: str) -> str | None:
    """``nvidia.com/mig-1g.10gb.me`` -> ``1g.10gb+me``; ``None`` for a resource that is not a MIG partition."""
    match = _MIG_RESOURCE.match(resource_name)
    if match is None:
        return None
    return match.group(1) + ("+me" if match.group(2) else "")


def mig_resource(profile: str) -> str:
    """``1g.10gb+me`` -> ``nvidia.com/mig-1g.10gb.me``, the resource name the device plugin advertises."""
    return "nvidia.com/mig-" + profile.replace("+me", ".me")


def check_mig(resource_name: str, gpu_type: str | None) -> MigSlice | None:
    """The MIG slice ``resource_name`` requests on ``gpu_type`` (``None``: not a MIG resource).

    Raises:
        ValueError: the profile does not exist on that GPU (the message lists the ones that do), the GPU has no
            MIG, or ``gpu_type`` is unset (the profile cannot be checked nor the slice planned without it).
    """
    profile = mig_profile(resource_name)
    if resource_name.startswith("nvidia.com/mig-") and profile is None:
        raise ValueError(
            f"{resource_name!r} is not a MIG resource name: the device plugin advertises nvidia.com/mig-<profile>, "
            "e.g. nvidia.com/mig-3g.40gb or nvidia.com/mig-1g.10gb.me"
        )
    if profile is None:
        return None
    with_mig = ", ".join(MIG_PROFILES)
    if gpu_type is None:
        raise ValueError(
            f"{resource_name!r} is a MIG partition; set resources.gpuType to the GPU it is cut from ({with_mig}) so "
            "that the profile is checked and the capacity planned on the slice"
        )
    gpu = _gpu_name(gpu_type)
    if gpu is None:
        return None  # an unknown resources.gpuType is refused under its own key
    profiles = MIG_PROFILES.get(gpu)
    if profiles is None:
        raise ValueError(f"{resource_name!r} is a MIG partition, and the {gpu} has no MIG; GPUs with MIG: {with_mig}")
    if profile not in profiles:
        accepted = ", ".join(mig_resource(item) for item in profiles)
        owners = [name for name, items in MIG_PROFILES.items() if profile in items]
        elsewhere = f" ({profile} is a profile of the {', '.join(owners)})" if owners else ""
        raise ValueError(
            f"{resource_name!r} is not a MIG profile of the {gpu}{elsewhere}; the {gpu} has: {accepted} "
            f"(NVIDIA's MIG user guide, {MIG_GUIDE})"
        )
    full = max(int(_gb(item)) for item in profiles)
    return MigSlice(gpu, profile, int(_gb(profile)) / full)


def _gpu_name(gpu_type: str) -> str | None:
    """The catalog's name of ``gpu_type`` (``h100`` -> ``H100-80GB``), or a MIG table's key; ``None`` if unknown."""
    from pulumi_vllm.capacity.gpus import lookup_gpu

    try:
        return lookup_gpu(gpu_type).name
    except ValueError:
        return next((name for name in MIG_PROFILES if name.lower() == gpu_type.strip().lower()), None)


def _gb(profile: str) -> str:
    match = _PROFILE.match(profile)
    assert match is not None, profile  # every table entry has the guide's form
    return match.group(2)


def planned_gpu(resource_name: str, gpu_type: str) -> GpuType | str:
    """What the capacity planner plans on: ``gpu_type`` itself, or, for a MIG partition, a GPU holding the slice's
    share of the card's memory (named ``H100-80GB MIG 3g.40gb``), since vLLM sees only the slice."""
    mig = check_mig(resource_name, gpu_type)
    if mig is None:
        return gpu_type
    from dataclasses import replace

    from pulumi_vllm.capacity.gpus import lookup_gpu

    card = lookup_gpu(gpu_type)
    return replace(
        card,
        name=f"{card.name} MIG {mig.profile}",
        total_memory_gib=round(card.total_memory_gib * mig.memory_fraction, 2),
        aliases=(),
        source=f"{card.source}; times {mig.profile}'s share of the card's memory ({MIG_GUIDE})",
        resource=mig_resource(mig.profile),
    )
