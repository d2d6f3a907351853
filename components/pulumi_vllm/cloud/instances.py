"""GPU instance types (EC2) and machine types (Compute Engine): GPUs per node, the GPU (a name of the GPU catalog in
:mod:`pulumi_vllm.capacity.gpus`), the memory each GPU has as the cloud lists it, and where each row comes from.

The table is what a stack that names its node type derives ``parallelism.gpusPerNode``, ``resources.gpuType`` and
the node selector from, and what the node-group checks compare serving pods with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pulumi_vllm.capacity.gpus import GpuType, lookup_gpu

Provider = Literal["aws", "gcp"]

INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
"""The well-known label the kubelet sets on every node from the cloud's instance or machine type."""

_AWS_EFA_DOCS = "https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/efa.html#efa-instance-types"
_GCP_GPUS = "https://cloud.google.com/compute/docs/gpus"
_GKE_GPUS = "https://cloud.google.com/kubernetes-engine/docs/how-to/gpus"


@dataclass(frozen=True)
class InstanceType:
    """One GPU instance or machine type."""

    name: str
    """As the cloud spells it (``p5.48xlarge``, ``a3-highgpu-8g``)."""
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

    @property
    def family(self) -> str:
        """``p5`` of ``p5.48xlarge``, ``a3-highgpu`` of ``a3-highgpu-8g``."""
        return self.name.split(".")[0] if self.provider == "aws" else self.name.rsplit("-", 1)[0]

    @property
    def gpu_type(self) -> GpuType:
        """The catalog entry of the GPU (memory as CUDA reports it, for the capacity planner)."""
        return lookup_gpu(self.gpu)


def _aws(family: str, gpu: str, memory_gb: int, sizes: dict[str, int], source: str, efa: dict[str, int]) -> list[InstanceType]:
    return [
        InstanceType(f"{family}.{size}", "aws", gpus, gpu, memory_gb, source, efa.get(size, 0))
        for size, gpus in sizes.items()
    ]


def _gcp(family: str, gpu: str, memory_gb: int, accelerator: str, sizes: dict[str, int]) -> list[InstanceType]:
    source = f"{_GCP_GPUS} ({family} machine types); accelerator label: {_GKE_GPUS}"
    return [InstanceType(f"{family}-{size}", "gcp", gpus, gpu, memory_gb, source, 0, accelerator) for size, gpus in sizes.items()]


# G-family sizes: 1 GPU up to 16xlarge, 4 at 12xlarge and 24xlarge, 8 at 48xlarge; EFA from 8xlarge up.
_G_SIZES = {"xlarge": 1, "2xlarge": 1, "4xlarge": 1, "8xlarge": 1, "16xlarge": 1, "12xlarge": 4, "24xlarge": 4, "48xlarge": 8}
_G_EFA = {size: 1 for size in ("8xlarge", "12xlarge", "16xlarge", "24xlarge", "48xlarge")}

INSTANCES: dict[str, InstanceType] = {
    row.name: row
    for row in [
        *_aws("p5", "H100-80GB", 80, {"48xlarge": 8}, f"https://aws.amazon.com/ec2/instance-types/p5/; {_AWS_EFA_DOCS}", {"48xlarge": 32}),
        *_aws("p5e", "H200", 141, {"48xlarge": 8}, f"https://aws.amazon.com/ec2/instance-types/p5/; {_AWS_EFA_DOCS}", {"48xlarge": 32}),
        *_aws("p5en", "H200", 141, {"48xlarge": 8}, f"https://aws.amazon.com/ec2/instance-types/p5/; {_AWS_EFA_DOCS}", {"48xlarge": 16}),
        *_aws("p4d", "A100-40GB", 40, {"24xlarge": 8}, f"https://aws.amazon.com/ec2/instance-types/p4/; {_AWS_EFA_DOCS}", {"24xlarge": 4}),
        *_aws("p4de", "A100-80GB", 80, {"24xlarge": 8}, f"https://aws.amazon.com/ec2/instance-types/p4/; {_AWS_EFA_DOCS}", {"24xlarge": 4}),
        *_aws("g6e", "L40S", 48, _G_SIZES, f"https://aws.amazon.com/ec2/instance-types/g6e/; {_AWS_EFA_DOCS}", _G_EFA),
        *_aws("g6", "L4", 24, _G_SIZES, f"https://aws.amazon.com/ec2/instance-types/g6/; {_AWS_EFA_DOCS}", _G_EFA),
        *_aws("g5", "A10G", 24, _G_SIZES, f"https://aws.amazon.com/ec2/instance-types/g5/; {_AWS_EFA_DOCS}", _G_EFA),
        *_gcp("a3-highgpu", "H100-80GB", 80, "nvidia-h100-80gb", {"1g": 1, "2g": 2, "4g": 4, "8g": 8}),
        *_gcp("a3-megagpu", "H100-80GB", 80, "nvidia-h100-mega-80gb", {"8g": 8}),
        *_gcp("a3-ultragpu", "H200", 141, "nvidia-h200-141gb", {"8g": 8}),
        *_gcp("a2-highgpu", "A100-40GB", 40, "nvidia-tesla-a100", {"1g": 1, "2g": 2, "4g": 4, "8g": 8}),
        *_gcp("a2-megagpu", "A100-40GB", 40, "nvidia-tesla-a100", {"16g": 16}),
        *_gcp("a2-ultragpu", "A100-80GB", 80, "nvidia-a100-80gb", {"1g": 1, "2g": 2, "4g": 4, "8g": 8}),
        *_gcp("g2-standard", "L4", 24, "nvidia-l4", {"4": 1, "8": 1, "12": 1, "16": 1, "32": 1, "24": 2, "48": 4, "96": 8}),
    ]
}
"""Every GPU instance and machine type this project knows, by name."""


def known_instances(provider: Provider | None = None) -> list[str]:
    """Names of the known types (of one cloud), sorted."""
    return sorted(name for name, row in INSTANCES.items() if provider is None or row.provider == provider)


def lookup_instance(name: str, provider: Provider | None = None) -> InstanceType:
    """The row of ``name``; raises :class:`ValueError` naming the accepted types (of ``provider``)."""
    row = INSTANCES.get(name.strip().lower())
    if row is not None and (provider is None or row.provider == provider):
        return row
    where = {"aws": "EC2 instance", "gcp": "Compute Engine machine"}.get(provider or "", "GPU instance or machine")
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
    GKE: cloud.google.com/gke-nodepool, gke-accelerator and gke-spot (:data:`_GKE_GPUS`).
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
    else:
        labels.update({"cloud.google.com/gke-nodepool": group, "cloud.google.com/gke-accelerator": instance.accelerator})
        if spot:
            labels["cloud.google.com/gke-spot"] = "true"
    return labels
