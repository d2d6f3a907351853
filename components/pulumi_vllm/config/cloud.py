"""The ``cloud`` section: the Kubernetes cluster itself, created on EKS or GKE before the platform and the serving
(control plane version, endpoint access, GPU node groups or node pools, Karpenter NodePools, EFA, model-cache storage)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from pulumi_vllm.cloud_plan.instances import InstanceType, lookup_instance
from pulumi_vllm.config.base import PROJECT, _Section, check_labels, check_taints

EKS_VERSION = "1.35"
"""Kubernetes minor version of a new EKS cluster (EKS released 1.35 on 2026-01-28; standard support 14 months:
https://docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions.html)."""
GKE_VERSION = "1.35"
"""Kubernetes minor version of a new GKE cluster (a prefix: GKE picks the newest 1.35 patch of the channel)."""

CapacityType = Literal["on-demand", "spot", "reserved"]
"""Karpenter's ``karpenter.sh/capacity-type`` values."""

GPU_TAINT = {"key": "nvidia.com/gpu", "effect": "NoSchedule"}
"""The taint of GPU nodes that this project's node groups carry, so only pods that ask for GPUs land there."""


class EndpointAccessSpec(_Section):
    """Who reaches the cluster's API server."""

    public: bool = True
    """Reachable from the internet (restricted to ``publicCidrs``); ``pulumi up`` from a laptop needs it."""
    private: bool = True
    """Reachable from inside the VPC (nodes use it)."""
    public_cidrs: list[str] = Field(default_factory=lambda: ["0.0.0.0/0"])
    """Address ranges allowed on the public endpoint (narrow it to your office or CI)."""

    @model_validator(mode="after")
    def _some_access(self) -> EndpointAccessSpec:
        if not self.public and not self.private:
            raise ValueError("public and private are both false: the API server would be reachable from nowhere")
        return self


class CloudNetworkSpec(_Section):
    """Where the nodes live: a new VPC (EKS) or network (GKE), or existing subnets."""

    vpc_cidr: str = "10.0.0.0/16"
    """EKS: address range of the new VPC (unused with ``subnetIds``)."""
    subnet_ids: list[str] = Field(default_factory=list)
    """EKS: existing private subnets (at least two zones) instead of a new VPC."""
    network: str | None = None
    """GKE: an existing VPC network (default: the project's ``default`` network)."""
    subnetwork: str | None = None
    """GKE: an existing subnetwork."""


class SystemNodesSpec(_Section):
    """The CPU nodes for the cluster's own pods (CoreDNS, the GPU stack's controllers, Karpenter)."""

    instance_type: str | None = None
    """EC2 instance type (default m6i.xlarge) or GKE machine type (default e2-standard-4)."""
    count: int = Field(default=2, ge=1)


class _GpuNodeLabels(_Section):
    """The labels and taints a group of GPU nodes carries (a node group, a NodePool, a GKE node pool)."""

    taints_key: ClassVar[str]
    """The config key of the subclass's taints, for messages."""
    labels: dict[str, str] = Field(default_factory=dict)
    taints: list[dict[str, Any]] = Field(default_factory=lambda: [dict(GPU_TAINT)])
    """Default ``nvidia.com/gpu:NoSchedule``."""

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        return check_labels(value)

    @field_validator("taints")
    @classmethod
    def _taints(cls, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return check_taints(value, cls.taints_key)


class NodeGroupSpec(_GpuNodeLabels):
    """An EKS managed GPU node group."""

    taints_key = "cloud.nodeGroups.taints"

    name: str
    instance_type: str
    """A GPU instance type (``p5.48xlarge``, ``g6e.12xlarge``, ...)."""
    min_size: int = Field(default=0, ge=0)
    desired_size: int = Field(default=1, ge=0)
    max_size: int = Field(default=1, ge=1)
    disk_size_gib: int = Field(default=200, ge=20)
    """Root volume (container images of vLLM are large)."""
    capacity_type: Literal["ON_DEMAND", "SPOT", "CAPACITY_BLOCK"] = "ON_DEMAND"
    """``CAPACITY_BLOCK``: EC2 Capacity Blocks for ML (needs ``capacityReservationId``)."""
    capacity_reservation_id: str | None = None
    """The Capacity Block's reservation (``cr-...``)."""
    ami_type: Literal["AL2023_x86_64_NVIDIA", "BOTTLEROCKET_x86_64_NVIDIA"] = "AL2023_x86_64_NVIDIA"
    """EKS-optimized accelerated AMI: NVIDIA driver and container toolkit included."""
    efa: bool = False
    """Attach EFA interfaces (one per network card), a cluster placement group, one zone, the EFA device plugin."""

    @field_validator("instance_type")
    @classmethod
    def _instance(cls, value: str) -> str:
        lookup_instance(value, "aws")
        return value

    @model_validator(mode="after")
    def _sizes(self) -> NodeGroupSpec:
        if not self.min_size <= self.desired_size <= self.max_size:
            raise ValueError(f"minSize {self.min_size} <= desiredSize {self.desired_size} <= maxSize {self.max_size} does not hold")
        if self.capacity_type == "CAPACITY_BLOCK" and not self.capacity_reservation_id:
            raise ValueError("capacityType CAPACITY_BLOCK needs capacityReservationId (the block's cr-... id)")
        if self.efa and not self.instance.efa_interfaces:
            raise ValueError(f"efa: true is not accepted: {self.instance_type} has no EFA interface")
        return self

    @property
    def instance(self) -> InstanceType:
        """The instance type's row of the facts table."""
        return lookup_instance(self.instance_type, "aws")


class KarpenterNodePoolSpec(_GpuNodeLabels):
    """A Karpenter NodePool (with its EC2NodeClass) that launches GPU nodes on demand."""

    taints_key = "cloud.karpenter.nodePools.taints"

    name: str
    instance_types: list[str] = Field(min_length=1)
    """GPU instance types Karpenter may launch (``g6e.xlarge``, ``g6e.12xlarge``, ...)."""
    capacity_types: list[CapacityType] = Field(default_factory=lambda: list[CapacityType](["on-demand"]))
    gpu_limit: int = Field(default=16, ge=1)
    """Most GPUs this NodePool may hold at once (``limits: {nvidia.com/gpu}``)."""
    disk_size_gib: int = Field(default=200, ge=20)
    consolidate_after: str = "10m"
    """How long an empty GPU node stays before Karpenter removes it."""

    @field_validator("instance_types")
    @classmethod
    def _instances(cls, value: list[str]) -> list[str]:
        for item in value:
            lookup_instance(item, "aws")
        return value

    @property
    def instances(self) -> list[InstanceType]:
        """The rows of its instance types."""
        return [lookup_instance(item, "aws") for item in self.instance_types]


class KarpenterSpec(_Section):
    """Karpenter on EKS: its chart, its IAM, and GPU NodePools."""

    node_pools: list[KarpenterNodePoolSpec] = Field(min_length=1)
    ami_alias: str = "al2023@latest"
    """EC2NodeClass ``amiSelectorTerms`` alias; Karpenter picks the NVIDIA variant for GPU types. Pin a dated
    release (``al2023@v20260101``) to control node image upgrades."""


class NodePoolSpec(_GpuNodeLabels):
    """A GKE GPU node pool."""

    taints_key = "cloud.nodePools.taints"

    name: str
    machine_type: str
    """An accelerator-optimized machine type (``a3-highgpu-8g``, ``g2-standard-8``, ...)."""
    node_count: int = Field(default=1, ge=0)
    """Nodes at creation (per zone)."""
    min_nodes: int | None = Field(default=None, ge=0)
    """With ``maxNodes``: the cluster autoscaler resizes the pool between them."""
    max_nodes: int | None = Field(default=None, ge=1)
    disk_size_gb: int = Field(default=200, ge=20)
    driver_version: Literal["DEFAULT", "LATEST", "INSTALLATION_DISABLED"] = "LATEST"
    """The NVIDIA driver GKE installs; ``INSTALLATION_DISABLED`` leaves it to the GPU Operator."""
    gpu_sharing: Literal["none", "TIME_SHARING", "MPS"] = "none"
    max_shared_clients_per_gpu: int = Field(default=2, ge=2, le=48)
    """With ``gpuSharing``: containers that share one GPU."""
    spot: bool = False
    compact_placement: bool = False
    """A compact placement policy: the pool's nodes close together (multi-node models)."""
    taints: list[dict[str, Any]] = Field(default_factory=list)
    """Extra taints; GKE taints GPU pools ``nvidia.com/gpu=present:NoSchedule`` itself."""

    @field_validator("machine_type")
    @classmethod
    def _machine(cls, value: str) -> str:
        lookup_instance(value, "gcp")
        return value

    @model_validator(mode="after")
    def _autoscaling(self) -> NodePoolSpec:
        if (self.min_nodes is None) != (self.max_nodes is None):
            raise ValueError("set both minNodes and maxNodes (autoscaling), or neither")
        if self.min_nodes is not None and self.max_nodes is not None and self.min_nodes > self.max_nodes:
            raise ValueError(f"minNodes {self.min_nodes} is above maxNodes {self.max_nodes}")
        return self

    @property
    def instance(self) -> InstanceType:
        """The machine type's row of the facts table."""
        return lookup_instance(self.machine_type, "gcp")

    @property
    def gke_taints(self) -> list[dict[str, Any]]:
        """The taints its nodes carry: GKE's own GPU taint, then the configured ones."""
        own = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
        return [own, *[taint for taint in self.taints if taint != own]]


class StorageSpec(_Section):
    """A ReadWriteMany file system for the model cache, with its StorageClass."""

    type: Literal["efs", "fsx-lustre", "filestore"]
    """EKS: ``efs`` (EFS CSI, access points) or ``fsx-lustre`` (FSx for Lustre CSI, a file system per claim of
    the claim's size: 1200Gi or a multiple of 2400Gi); GKE: ``filestore``."""
    storage_class_name: str = "model-cache"
    """Name of the StorageClass to create; set ``cache.storageClass`` to it."""
    retain_on_delete: bool = True
    """Keep the file system (and the weights on it) when the stack is destroyed."""
    filestore_tier: Literal["standard", "premium", "BASIC_HDD", "BASIC_SSD", "enterprise", "zonal"] = "BASIC_SSD"
    """GKE Filestore tier (the CSI driver's ``tier`` parameter)."""


class CloudSpec(_Section):
    """Every ``pulumi-vllm:cloud`` key: the cluster itself (see docs/clouds.md)."""

    provider: Literal["aws", "gcp"]
    region: str
    """AWS region (``us-east-2``) or Google Cloud region (``us-central1``)."""
    zones: list[str] = Field(default_factory=list)
    """Zones of the nodes; GKE: one zone makes a zonal cluster there. GPUs are often in a few zones only."""
    project: str | None = None
    """GKE: the Google Cloud project."""
    cluster_name: str | None = None
    """Default: the stack's ``name`` plus ``-cluster``."""
    kubernetes_version: str | None = None
    """Default 1.35 on both clouds (pinned here, upgraded by editing it)."""
    endpoint_access: EndpointAccessSpec = Field(default_factory=EndpointAccessSpec)
    network: CloudNetworkSpec = Field(default_factory=CloudNetworkSpec)
    system_nodes: SystemNodesSpec = Field(default_factory=SystemNodesSpec)
    node_groups: list[NodeGroupSpec] = Field(default_factory=list)
    """EKS managed GPU node groups."""
    karpenter: KarpenterSpec | None = None
    """EKS: Karpenter and its GPU NodePools."""
    node_pools: list[NodePoolSpec] = Field(default_factory=list)
    """GKE GPU node pools."""
    storage: StorageSpec | None = None
    serving_node_group: str | None = None
    """The node group, node pool or Karpenter NodePool the serving runs on (default: the only GPU one)."""
    deletion_protection: bool = False
    """GKE deletion protection (on: ``pulumi destroy`` refuses to delete the cluster until it is turned off)."""

    @model_validator(mode="after")
    def _region_and_zones(self) -> CloudSpec:
        from pulumi_vllm.config.regions import check_region, check_zone

        try:
            check_region(self.provider, self.region)
        except ValueError as error:
            raise ValueError(f"{PROJECT}:cloud.region: {error}") from None
        for index, zone in enumerate(self.zones):
            try:
                check_zone(self.provider, self.region, zone)
            except ValueError as error:
                raise ValueError(f"{PROJECT}:cloud.zones[{index}]: {error}") from None
        return self

    @model_validator(mode="after")
    def _per_provider(self) -> CloudSpec:
        if self.provider == "aws":
            gke_keys: tuple[tuple[str, object], ...] = (("nodePools", self.node_pools), ("project", self.project))
            for key, value in gke_keys:
                if value:
                    raise ValueError(f"{key} is a GKE key: not accepted with provider 'aws' (EKS uses nodeGroups and karpenter)")
            if not self.node_groups and self.karpenter is None:
                raise ValueError("provider 'aws' needs GPU capacity: nodeGroups, karpenter.nodePools, or both")
            if self.storage is not None and self.storage.type == "filestore":
                raise ValueError("storage.type 'filestore' is GKE's; on EKS use efs or fsx-lustre")
        else:
            eks_keys: tuple[tuple[str, object], ...] = (("nodeGroups", self.node_groups), ("karpenter", self.karpenter))
            for key, value in eks_keys:
                if value:
                    raise ValueError(f"{key} is an EKS key: not accepted with provider 'gcp' (GKE uses nodePools)")
            if not self.project:
                raise ValueError("provider 'gcp' needs project (the Google Cloud project id)")
            if not self.node_pools:
                raise ValueError("provider 'gcp' needs at least one GPU node pool in nodePools")
            if self.storage is not None and self.storage.type != "filestore":
                raise ValueError(f"storage.type {self.storage.type!r} is EKS's; on GKE use filestore")
        names = self.group_names()
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"node group / node pool name(s) {', '.join(repeated)} used more than once")
        if self.serving_node_group is not None and self.serving_node_group not in names:
            raise ValueError(
                f"servingNodeGroup {self.serving_node_group!r} names no node group here; accepted: {', '.join(names)}"
            )
        efa_groups = [group for group in self.node_groups if group.efa]
        if efa_groups and len(self.zones) > 1:
            raise ValueError("nodeGroups with efa: true run in one zone (a cluster placement group); list one zone in zones")
        return self

    def group_names(self) -> list[str]:
        """Every GPU node group, node pool and Karpenter NodePool name."""
        karpenter = [pool.name for pool in self.karpenter.node_pools] if self.karpenter else []
        return [*(group.name for group in self.node_groups), *karpenter, *(pool.name for pool in self.node_pools)]

    @property
    def version(self) -> str:
        """The pinned Kubernetes minor version."""
        return self.kubernetes_version or (EKS_VERSION if self.provider == "aws" else GKE_VERSION)

    def name_of_cluster(self, stack_name: str) -> str:
        """The cluster's name."""
        return self.cluster_name or f"{stack_name}-cluster"
