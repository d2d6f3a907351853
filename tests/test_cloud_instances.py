"""The GPU instance and machine types table against the GPU catalog the capacity planner uses."""

from __future__ import annotations

import re

import pytest

from pulumi_vllm.capacity.gpus import GKE_ACCELERATORS, INSTANCE_TYPE_GPUS, lookup_gpu
from pulumi_vllm.cloud_plan.instances import (
    INSTANCE_TYPE_LABEL,
    INSTANCES,
    known_instances,
    lookup_instance,
    node_labels,
)


@pytest.mark.parametrize("name", sorted(INSTANCES))
def test_each_row_names_a_catalog_gpu_whose_memory_matches_the_clouds_figure(name: str) -> None:
    row = INSTANCES[name]
    gpu = lookup_gpu(row.gpu)
    assert gpu.name == row.gpu  # the canonical name, not an alias
    # NVIDIA GPUs everywhere but Azure's ND MI300X v5 (AMD's device plugin advertises amd.com/gpu).
    assert gpu.resource == ("amd.com/gpu" if row.gpu == "MI300X" else "nvidia.com/gpu")
    # Clouds list HBM cards in binary units (an H100's "80 GB" is 81559 MiB in nvidia-smi) and GDDR cards in
    # decimal ones (an L4's "24 GB" is 23034 MiB); CUDA reports a little less than either. So the catalog's figure
    # lies below the listed number read as GiB, and within 12% of it.
    listed = float(row.gpu_memory_gb)
    assert 0.88 * listed <= gpu.total_memory_gib <= listed, (row.gpu, gpu.total_memory_gib, row.gpu_memory_gb)
    assert row.gpus >= 1 and row.source.startswith("https://")


@pytest.mark.parametrize("name", known_instances("gcp"))
def test_gcp_machine_names_carry_their_gpu_count_and_accelerator(name: str) -> None:
    row = INSTANCES[name]
    suffix = re.search(r"-(\d+)g$", name)
    if suffix:  # a2-*/a3-*: "-8g" is eight GPUs
        assert row.gpus == int(suffix.group(1))
    # GKE's accelerator label maps to the same GPU in the catalog's table of node labels.
    assert GKE_ACCELERATORS.get(row.accelerator, None) == row.gpu, row.accelerator


@pytest.mark.parametrize("name", known_instances("aws"))
def test_aws_families_agree_with_the_catalogs_instance_family_map(name: str) -> None:
    row = INSTANCES[name]
    assert INSTANCE_TYPE_GPUS[row.family] == row.gpu
    assert row.accelerator == ""
    if row.family.startswith("p"):
        assert row.gpus == 8 and row.efa_interfaces >= 4  # multi-node p4d/p5 groups use EFA


def test_eight_gpu_sizes_are_the_largest_of_each_family() -> None:
    # EC2 and Compute Engine families; Azure's NC series top out at 2 or 4 GPUs a VM.
    for row in (row for row in INSTANCES.values() if row.provider != "azure"):
        family = [other for other in INSTANCES.values() if other.family == row.family]
        assert max(other.gpus for other in family) in (8, 16)


def test_unknown_types_are_refused_with_the_accepted_ones() -> None:
    with pytest.raises(ValueError) as raised:
        lookup_instance("p5.24xlarge", "aws")
    assert "'p5.24xlarge' is not a known EC2 instance type with GPUs" in str(raised.value)
    assert "p5.48xlarge" in str(raised.value) and "a3-highgpu-8g" not in str(raised.value)
    with pytest.raises(ValueError):
        lookup_instance("g2-standard-8", "aws")  # a GKE machine type is not an EC2 one
    assert lookup_instance("P5.48XLARGE").name == "p5.48xlarge"


def test_node_labels_are_the_ones_each_cloud_sets() -> None:
    p5 = INSTANCES["p5.48xlarge"]
    assert node_labels("aws", p5, "h100", capacity_type="SPOT") == {
        INSTANCE_TYPE_LABEL: "p5.48xlarge", "eks.amazonaws.com/nodegroup": "h100", "eks.amazonaws.com/capacityType": "SPOT",
    }
    karpenter = node_labels("aws", p5, "gpu", karpenter=True)
    assert karpenter["karpenter.sh/nodepool"] == "gpu" and karpenter["karpenter.k8s.aws/instance-gpu-count"] == "8"
    l4 = INSTANCES["g2-standard-8"]
    assert node_labels("gcp", l4, "l4", spot=True)["cloud.google.com/gke-accelerator"] == "nvidia-l4"
    assert node_labels("gcp", l4, "l4", spot=True)["cloud.google.com/gke-spot"] == "true"


@pytest.mark.parametrize("name", known_instances("azure"))
def test_azure_sizes_resolve_case_insensitively_and_label_like_aks(name: str) -> None:
    row = lookup_instance(name.lower(), "azure")
    assert row.name == name and row.provider == "azure" and row.accelerator == ""
    assert row.source.startswith("https://learn.microsoft.com/")
    labels = node_labels("azure", row, "gpu", spot=True)
    assert labels == {INSTANCE_TYPE_LABEL: name, "kubernetes.azure.com/agentpool": "gpu",
                      "kubernetes.azure.com/scalesetpriority": "spot"}
    with pytest.raises(ValueError, match="not a known EC2 instance type"):
        lookup_instance(name, "aws")  # an Azure size is not an EKS node group's instance type
