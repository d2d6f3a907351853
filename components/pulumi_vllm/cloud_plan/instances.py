"""GPU instance types (EC2), machine types (Compute Engine) and VM sizes (Azure): GPUs per node, the GPU (a name of the GPU catalog in
:mod:`pulumi_vllm.capacity.gpus`), the memory each GPU has as the cloud lists it, the node's vCPUs and memory, and
where each row comes from.

The table is what a stack that names its node type derives ``parallelism.gpusPerNode``, ``resources.gpuType`` and
the node selector from, and what the node-group checks compare serving pods with.

**Allocatable.** The kubelet keeps part of a node for itself and the system; pods share the rest
(:func:`allocatable`). CPU, on both clouds: 6% of the first core, 1% of the second, 0.5% of the third and fourth,
0.25% of every further core (the EKS AMI's kube-reserved formula, https://github.com/awslabs/amazon-eks-ami, and
GKE's table, :data:`GKE_RESERVATIONS`). Memory on EKS: ``11 MiB x maxPods + 255 MiB`` kube-reserved and the
kubelet's 100 MiB hard eviction threshold, after the share of the nominal memory the instance does not report to
the kernel, which Karpenter estimates as 7.5% (``VM_MEMORY_OVERHEAD_PERCENT``, :data:`KARPENTER_SETTINGS`) and
this table uses for managed node groups too. ``maxPods`` depends on the ENIs of the type; the table approximates
it with 110 below 30 vCPUs and 250 from 30 vCPUs up (the EKS max-pods calculator's recommended ceilings): more than
the ENI limit of the small G sizes (58), so their reservation is, if anything, overestimated. Memory on GKE: 25% of
the first 4 GiB, 20% of the next 4, 10% of the next 8, 6% of the next 112, 2% above 128 GiB, plus the 100 MiB
eviction threshold (:data:`GKE_RESERVATIONS`). Compute Engine lists memory in GB of 2^30 bytes, read here as GiB.
Azure VM sizes use the same memory tiers, which AKS documents for its kube-reserved memory (:data:`AKS_RESERVATIONS`),
and the 100 MiB threshold: AKS clusters are not created by this project, so no node group check reads them today.

Azure sizes are spelled as Azure spells them (``Standard_NC24ads_A100_v4``, also the node's instance-type label);
:func:`lookup_instance` reads every name case-insensitively.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from pulumi_vllm.capacity.gpus import GpuType, lookup_gpu

Provider = Literal["aws", "gcp", "azure"]

INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
"""The well-known label the kubelet sets on every node from the cloud's instance or machine type."""

_AWS_EFA_DOCS = "https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/efa.html#efa-instance-types"
_GCP_GPUS = "https://cloud.google.com/compute/docs/gpus"
_GKE_GPUS = "https://cloud.google.com/kubernetes-engine/docs/how-to/gpus"
_AWS_ACCELERATED = "https://docs.aws.amazon.com/ec2/latest/instancetypes/ac.html"
"""AWS's accelerated computing instance specifications: vCPUs and memory (GiB) of every P and G size."""
_GCP_ACCELERATOR_MACHINES = "https://cloud.google.com/compute/docs/accelerator-optimized-machines"
"""Compute Engine's accelerator-optimized machine types (A3, A2, G2): vCPUs and memory of each."""
GKE_RESERVATIONS = "https://cloud.google.com/kubernetes-engine/docs/concepts/plan-node-sizes#memory_and_cpu_reservations"
"""GKE's CPU and memory reservations and eviction threshold, by machine size."""
KARPENTER_SETTINGS = "https://karpenter.sh/docs/reference/settings/"
"""Karpenter's settings, among them ``VM_MEMORY_OVERHEAD_PERCENT`` (default 0.075)."""
AKS_RESERVATIONS = "https://learn.microsoft.com/en-us/azure/aks/node-resource-reservations"
"""AKS's kube-reserved CPU and memory: the memory tiers are GKE's."""
_AZURE_SIZES = "https://learn.microsoft.com/en-us/azure/virtual-machines/sizes/gpu-accelerated/"
"""Azure's GPU-accelerated VM size series pages: vCPUs, memory (GiB), GPUs and GPU memory of each size."""
EKS_AMI = "https://github.com/awslabs/amazon-eks-ami"
"""The EKS optimized AMI: its kubelet's kube-reserved CPU and memory formulas."""

VM_MEMORY_OVERHEAD = 0.075
"""Share of an EC2 instance's nominal memory the node does not report (Karpenter's ``VM_MEMORY_OVERHEAD_PERCENT``)."""
EVICTION_MIB = 100
"""The kubelet's hard eviction threshold ``memory.available<100Mi`` (EKS AMI and GKE)."""


@dataclass(frozen=True)
class InstanceType:
    """One GPU instance or machine type."""

    name: str
    """As the cloud spells it (``p5.48xlarge``, ``a3-highgpu-8g``, ``Standard_NC24ads_A100_v4``)."""
    provider: Provider
    gpus: int
    """GPUs per node."""
    gpu: str
    """The GPU, as the GPU catalog names it (``H100-80GB``)."""
    gpu_memory_gb: int
    """Memory of each GPU as the cloud lists it (GB); CUDA reports a little less (the catalog's figure)."""
    source: str
    """Where the GPU count, GPU and memory come from."""
    efa_interfaces: int = 0
    """EC2 only: EFA network interfaces the node group attaches (one per network card; 0: no EFA)."""
    accelerator: str = ""
    """GKE only: the accelerator type (``nvidia-h100-80gb``), also the ``cloud.google.com/gke-accelerator`` label."""
    vcpus: int = 0
    """vCPUs of the node, as the cloud lists them."""
    memory_gib: float = 0.0
    """Memory of the node (GiB), as the cloud lists it."""

    @property
    def family(self) -> str:
        """``p5`` of ``p5.48xlarge``, ``a3-highgpu`` of ``a3-highgpu-8g``, ``NCads_A100_v4`` of
        ``Standard_NC24ads_A100_v4`` (the series, the size's digits dropped)."""
        if self.provider == "aws":
            return self.name.split(".")[0]
        if self.provider == "azure":
            return re.sub(r"\d+", "", self.name.removeprefix("Standard_").split("_", 1)[0], count=1) + "_" + (
                self.name.removeprefix("Standard_").split("_", 1)[1])
        return self.name.rsplit("-", 1)[0]

    @property
    def gpu_type(self) -> GpuType:
        """The catalog entry of the GPU (memory as CUDA reports it, for the capacity planner)."""
        return lookup_gpu(self.gpu)


Size = tuple[int, int, float]
"""(GPUs, vCPUs, memory GiB) of one size of a family."""


def _aws(family: str, gpu: str, memory_gb: int, sizes: dict[str, Size], source: str, efa: dict[str, int]) -> list[InstanceType]:
    source = f"{source}; vCPUs and memory: {_AWS_ACCELERATED}"
    return [
        InstanceType(f"{family}.{size}", "aws", gpus, gpu, memory_gb, source, efa.get(size, 0), vcpus=vcpus, memory_gib=memory)
        for size, (gpus, vcpus, memory) in sizes.items()
    ]


def _gcp(family: str, gpu: str, memory_gb: int, accelerator: str, sizes: dict[str, Size]) -> list[InstanceType]:
    source = (
        f"{_GCP_GPUS} ({family} machine types); vCPUs and memory: {_GCP_ACCELERATOR_MACHINES}; "
        f"accelerator label: {_GKE_GPUS}"
    )
    return [
        InstanceType(f"{family}-{size}", "gcp", gpus, gpu, memory_gb, source, 0, accelerator, vcpus, memory)
        for size, (gpus, vcpus, memory) in sizes.items()
    ]


def _azure(series: str, gpu: str, memory_gb: int, sizes: dict[str, Size]) -> list[InstanceType]:
    return [
        InstanceType(name, "azure", gpus, gpu, memory_gb, f"{_AZURE_SIZES}{series} (GPUs and GPU memory; vCPUs and memory: "
                     f"{_AZURE_SIZES}{series})", vcpus=vcpus, memory_gib=memory)
        for name, (gpus, vcpus, memory) in sizes.items()
    ]


# G-family sizes: 1 GPU up to 16xlarge, 4 at 12xlarge and 24xlarge, 8 at 48xlarge; EFA from 8xlarge up. The vCPUs are
# the same in g5, g6 and g6e; g5 and g6 have 4 GiB per vCPU, g6e 8.
_G_SHAPES = {
    "xlarge": (1, 4), "2xlarge": (1, 8), "4xlarge": (1, 16), "8xlarge": (1, 32), "16xlarge": (1, 64),
    "12xlarge": (4, 48), "24xlarge": (4, 96), "48xlarge": (8, 192),
}
_G_EFA = {size: 1 for size in ("8xlarge", "12xlarge", "16xlarge", "24xlarge", "48xlarge")}


def _g_sizes(gib_per_vcpu: int) -> dict[str, Size]:
    return {size: (gpus, vcpus, float(vcpus * gib_per_vcpu)) for size, (gpus, vcpus) in _G_SHAPES.items()}

INSTANCES: dict[str, InstanceType] = {
    row.name: row
    for row in [
        *_aws("p5", "H100-80GB", 80, {"48xlarge": (8, 192, 2048)}, f"https://aws.amazon.com/ec2/instance-types/p5/; {_AWS_EFA_DOCS}", {"48xlarge": 32}),
        *_aws("p5e", "H200", 141, {"48xlarge": (8, 192, 2048)}, f"https://aws.amazon.com/ec2/instance-types/p5/; {_AWS_EFA_DOCS}", {"48xlarge": 32}),
        *_aws("p5en", "H200", 141, {"48xlarge": (8, 192, 2048)}, f"https://aws.amazon.com/ec2/instance-types/p5/; {_AWS_EFA_DOCS}", {"48xlarge": 16}),
        *_aws("p4d", "A100-40GB", 40, {"24xlarge": (8, 96, 1152)}, f"https://aws.amazon.com/ec2/instance-types/p4/; {_AWS_EFA_DOCS}", {"24xlarge": 4}),
        *_aws("p4de", "A100-80GB", 80, {"24xlarge": (8, 96, 1152)}, f"https://aws.amazon.com/ec2/instance-types/p4/; {_AWS_EFA_DOCS}", {"24xlarge": 4}),
        *_aws("g6e", "L40S", 48, _g_sizes(8), f"https://aws.amazon.com/ec2/instance-types/g6e/; {_AWS_EFA_DOCS}", _G_EFA),
        *_aws("g6", "L4", 24, _g_sizes(4), f"https://aws.amazon.com/ec2/instance-types/g6/; {_AWS_EFA_DOCS}", _G_EFA),
        *_aws("g5", "A10G", 24, _g_sizes(4), f"https://aws.amazon.com/ec2/instance-types/g5/; {_AWS_EFA_DOCS}", _G_EFA),
        *_gcp("a3-highgpu", "H100-80GB", 80, "nvidia-h100-80gb", {"1g": (1, 26, 234), "2g": (2, 52, 468), "4g": (4, 104, 936), "8g": (8, 208, 1872)}),
        *_gcp("a3-megagpu", "H100-80GB", 80, "nvidia-h100-mega-80gb", {"8g": (8, 208, 1872)}),
        *_gcp("a3-ultragpu", "H200", 141, "nvidia-h200-141gb", {"8g": (8, 224, 2952)}),
        *_gcp("a2-highgpu", "A100-40GB", 40, "nvidia-tesla-a100", {"1g": (1, 12, 85), "2g": (2, 24, 170), "4g": (4, 48, 340), "8g": (8, 96, 680)}),
        *_gcp("a2-megagpu", "A100-40GB", 40, "nvidia-tesla-a100", {"16g": (16, 96, 1360)}),
        *_gcp("a2-ultragpu", "A100-80GB", 80, "nvidia-a100-80gb", {"1g": (1, 12, 170), "2g": (2, 24, 340), "4g": (4, 48, 680), "8g": (8, 96, 1360)}),
        *_gcp("g2-standard", "L4", 24, "nvidia-l4", {
            "4": (1, 4, 16), "8": (1, 8, 32), "12": (1, 12, 48), "16": (1, 16, 64), "32": (1, 32, 128), "24": (2, 24, 96),
            "48": (4, 48, 192), "96": (8, 96, 384),
        }),
        # Azure: every size of these series with whole GPUs (the fractional NVadsA10 v5 sizes share one A10).
        *_azure("nca100v4-series", "A100-80GB", 80, {
            "Standard_NC24ads_A100_v4": (1, 24, 220), "Standard_NC48ads_A100_v4": (2, 48, 440),
            "Standard_NC96ads_A100_v4": (4, 96, 880),
        }),
        *_azure("nda100v4-series", "A100-40GB", 40, {"Standard_ND96asr_v4": (8, 96, 900)}),
        *_azure("ndma100v4-series", "A100-80GB", 80, {"Standard_ND96amsr_A100_v4": (8, 96, 1900)}),
        # NC H100 v5: H100 NVL, 94 GB each.
        *_azure("nch100v5-series", "H100-NVL", 94, {
            "Standard_NC40ads_H100_v5": (1, 40, 320), "Standard_NC80adis_H100_v5": (2, 80, 640),
        }),
        *_azure("ndh100v5-series", "H100-80GB", 80, {"Standard_ND96isr_H100_v5": (8, 96, 1900)}),
        *_azure("nd-h200-v5-series", "H200", 141, {"Standard_ND96isr_H200_v5": (8, 96, 1850)}),
        *_azure("nvadsa10v5-series", "A10", 24, {
            "Standard_NV36ads_A10_v5": (1, 36, 440), "Standard_NV72ads_A10_v5": (2, 72, 880),
        }),
        *_azure("ncast4v3-series", "T4", 16, {
            "Standard_NC4as_T4_v3": (1, 4, 28), "Standard_NC8as_T4_v3": (1, 8, 56), "Standard_NC16as_T4_v3": (1, 16, 110),
            "Standard_NC64as_T4_v3": (4, 64, 440),
        }),
        *_azure("nd-mi300x-v5-series", "MI300X", 192, {"Standard_ND96isr_MI300X_v5": (8, 96, 1850)}),
    ]
}
"""Every GPU instance, machine and VM type this project knows, by name."""

_BY_LOWER = {name.lower(): row for name, row in INSTANCES.items()}


def known_instances(provider: Provider | None = None) -> list[str]:
    """Names of the known types (of one cloud), sorted."""
    return sorted(name for name, row in INSTANCES.items() if provider is None or row.provider == provider)


def lookup_instance(name: str, provider: Provider | None = None) -> InstanceType:
    """The row of ``name``; raises :class:`ValueError` naming the accepted types (of ``provider``)."""
    row = _BY_LOWER.get(name.strip().lower())
    if row is not None and (provider is None or row.provider == provider):
        return row
    where = {"aws": "EC2 instance", "gcp": "Compute Engine machine", "azure": "Azure VM"}.get(
        provider or "", "GPU instance, machine or VM")
    raise ValueError(
        f"{name!r} is not a known {where} type with GPUs; accepted: {', '.join(known_instances(provider))}"
    )


def node_labels(
    provider: Provider, instance: InstanceType, group: str, *, spot: bool = False, capacity_type: str = "ON_DEMAND",
    karpenter: bool = False,
) -> dict[str, str]:
    """The labels the cloud (or Karpenter) puts on a node of ``group`` by itself, without being asked.

    EKS managed node groups: eks.amazonaws.com/nodegroup and capacityType
    (https://docs.aws.amazon.com/eks/latest/userguide/managed-node-groups.html); Karpenter: karpenter.sh/nodepool,
    capacity-type and the karpenter.k8s.aws/instance-* labels (https://karpenter.sh/docs/reference/instance-types/);
    GKE: cloud.google.com/gke-nodepool, gke-accelerator and gke-spot (:data:`_GKE_GPUS`); AKS:
    kubernetes.azure.com/agentpool and, on Spot node pools, kubernetes.azure.com/scalesetpriority
    (https://learn.microsoft.com/en-us/azure/aks/spot-node-pool).
    """
    labels = {INSTANCE_TYPE_LABEL: instance.name}
    if provider == "aws" and karpenter:
        labels.update({
            "karpenter.sh/nodepool": group,
            "karpenter.sh/capacity-type": "spot" if spot else "on-demand",
            "karpenter.k8s.aws/instance-family": instance.family,
            "karpenter.k8s.aws/instance-gpu-count": str(instance.gpus),
        })
    elif provider == "aws":
        labels.update({"eks.amazonaws.com/nodegroup": group, "eks.amazonaws.com/capacityType": capacity_type})
    elif provider == "azure":
        labels["kubernetes.azure.com/agentpool"] = group
        if spot:
            labels["kubernetes.azure.com/scalesetpriority"] = "spot"
    else:
        labels.update({"cloud.google.com/gke-nodepool": group, "cloud.google.com/gke-accelerator": instance.accelerator})
        if spot:
            labels["cloud.google.com/gke-spot"] = "true"
    return labels


@dataclass(frozen=True)
class Allocatable:
    """What the kubelet of one node leaves for pods (the node's ``status.allocatable``), as estimated here."""

    cpu_milli: int
    """CPU in millicores."""
    memory_mib: int
    """Memory in MiB."""


def _tiered(amount: float, tiers: tuple[tuple[float, float], ...], rest: float) -> float:
    """``amount`` reserved at ``rate`` per ``(size, rate)`` tier in order, ``rest`` beyond the last tier."""
    reserved = 0.0
    for size, rate in tiers:
        step = min(amount, size)
        reserved += step * rate
        amount -= step
    return reserved + max(amount, 0.0) * rest


def reserved_cpu_milli(vcpus: int) -> int:
    """kube-reserved CPU: 6% of the first core, 1% of the second, 0.5% of the next two, 0.25% beyond (EKS AMI, GKE)."""
    return math.ceil(_tiered(vcpus * 1000, ((1000, 0.06), (1000, 0.01), (2000, 0.005)), 0.0025))


def eks_max_pods(vcpus: int) -> int:
    """The ``maxPods`` the memory reservation is estimated with: 110 below 30 vCPUs, 250 from 30 up (module docstring)."""
    return 110 if vcpus < 30 else 250


def allocatable(row: InstanceType) -> Allocatable:
    """CPU and memory pods may request on a node of ``row`` (the module docstring says how it is estimated)."""
    cpu = row.vcpus * 1000 - reserved_cpu_milli(row.vcpus)
    total_mib = row.memory_gib * 1024
    if row.provider == "aws":
        reserved = total_mib * VM_MEMORY_OVERHEAD + 11 * eks_max_pods(row.vcpus) + 255
    else:
        gib = 1024
        reserved = _tiered(total_mib, ((4 * gib, 0.25), (4 * gib, 0.20), (8 * gib, 0.10), (112 * gib, 0.06)), 0.02)
    return Allocatable(cpu, math.floor(total_mib - reserved - EVICTION_MIB))
