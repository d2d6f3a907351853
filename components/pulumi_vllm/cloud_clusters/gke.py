"""A GKE cluster for GPU serving: the control plane (version pinned, endpoint access), a system node pool, GPU node
pools (accelerator type and count, the driver GKE installs, GPU sharing, spot, compact placement) and a Filestore
StorageClass for a ReadWriteMany model cache."""

from typing import Any, NotRequired, TypedDict

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s

from pulumi_vllm.cloud_plan.kubeconfig import kubeconfig
from pulumi_vllm.config.cloud import CloudSpec, NodePoolSpec

TOKEN = "pulumi-vllm:index:GkeCluster"

_GKE_TAINT_EFFECTS = {"NoSchedule": "NO_SCHEDULE", "NoExecute": "NO_EXECUTE", "PreferNoSchedule": "PREFER_NO_SCHEDULE"}


class GkeNodePoolArgs(TypedDict):
    """A GPU node pool (the ``cloud.nodePools`` keys in snake_case)."""

    name: str
    """Node pool name."""
    machine_type: str
    """Accelerator-optimized machine type (``g2-standard-8``)."""
    node_count: NotRequired[int]
    """Nodes per zone at creation (default 1)."""
    spot: NotRequired[bool]
    """Spot VMs (default false)."""
    compact_placement: NotRequired[bool]
    """Compact placement policy (default false)."""
    driver_version: NotRequired[str]
    """``LATEST`` (default), ``DEFAULT`` or ``INSTALLATION_DISABLED``."""


class GkeClusterArgs(TypedDict):
    """Arguments of :class:`GkeCluster`: the ``cloud`` stack section (provider ``gcp``) in snake_case."""

    project: str
    """Google Cloud project id."""
    region: str
    """Region; the cluster is regional unless one zone is listed."""
    zones: NotRequired[list[str]]
    """Zones of the nodes (one zone: a zonal cluster there)."""
    cluster_name: NotRequired[str]
    """Cluster name (default: the component name)."""
    kubernetes_version: NotRequired[str]
    """Kubernetes minor version (default 1.35)."""
    node_pools: list[GkeNodePoolArgs]
    """GPU node pools."""


def cloud_spec(args: GkeClusterArgs) -> CloudSpec:
    """The validated section from the component's arguments."""
    return CloudSpec.model_validate({"provider": "gcp", **dict(args)})


class GkeCluster(pulumi.ComponentResource):
    """A GKE cluster with GPU node pools, and a Kubernetes provider for it (see docs/clouds.md)."""

    cluster_name: pulumi.Output[str]
    """The GKE cluster's name."""
    endpoint: pulumi.Output[str]
    """The API server address."""
    kubeconfig: pulumi.Output[str]
    """A kubeconfig using ``gke-gcloud-auth-plugin`` (a secret output)."""
    provider: k8s.Provider
    """The Kubernetes provider of the new cluster; pass it to the platform and the serving."""

    def __init__(
        self, name: str, args: GkeClusterArgs, opts: pulumi.ResourceOptions | None = None, spec: CloudSpec | None = None
    ) -> None:
        cloud = spec or cloud_spec(args)
        super().__init__(TOKEN, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        cluster_name = cloud.cluster_name or name
        location = cloud.zones[0] if len(cloud.zones) == 1 else cloud.region
        endpoint = cloud.endpoint_access
        cluster = gcp.container.Cluster(
            f"{name}-gke",
            name=cluster_name,
            project=cloud.project,
            location=location,
            min_master_version=cloud.version,
            release_channel=gcp.container.ClusterReleaseChannelArgs(channel="REGULAR"),
            # Node pools are managed below, one resource each, so a change to one replaces only that pool.
            remove_default_node_pool=True,
            initial_node_count=1,
            deletion_protection=cloud.deletion_protection,
            network=cloud.network.network,
            subnetwork=cloud.network.subnetwork,
            networking_mode="VPC_NATIVE",
            ip_allocation_policy=gcp.container.ClusterIpAllocationPolicyArgs(),
            workload_identity_config=gcp.container.ClusterWorkloadIdentityConfigArgs(workload_pool=f"{cloud.project}.svc.id.goog"),
            addons_config=gcp.container.ClusterAddonsConfigArgs(
                gcp_filestore_csi_driver_config=gcp.container.ClusterAddonsConfigGcpFilestoreCsiDriverConfigArgs(
                    enabled=cloud.storage is not None
                ),
            ),
            master_authorized_networks_config=gcp.container.ClusterMasterAuthorizedNetworksConfigArgs(
                cidr_blocks=[gcp.container.ClusterMasterAuthorizedNetworksConfigCidrBlockArgs(cidr_block=cidr)
                             for cidr in endpoint.public_cidrs],
            ) if endpoint.public and endpoint.public_cidrs != ["0.0.0.0/0"] else None,
            private_cluster_config=gcp.container.ClusterPrivateClusterConfigArgs(
                enable_private_endpoint=True, enable_private_nodes=True, master_ipv4_cidr_block="172.16.0.0/28",
            ) if not endpoint.public else None,
            opts=child,
        )
        system = gcp.container.NodePool(
            f"{name}-system",
            cluster=cluster.name, project=cloud.project, location=location, node_count=cloud.system_nodes.count,
            node_config=gcp.container.NodePoolNodeConfigArgs(
                machine_type=cloud.system_nodes.instance_type or "e2-standard-4",
                oauth_scopes=["https://www.googleapis.com/auth/cloud-platform"],
                workload_metadata_config=gcp.container.NodePoolNodeConfigWorkloadMetadataConfigArgs(mode="GKE_METADATA"),
            ),
            opts=child,
        )
        self._node_pools = [self._gpu_pool(name, cloud, cluster, pool, location) for pool in cloud.node_pools]
        self.cluster_name = cluster.name
        self.endpoint = cluster.endpoint
        self.kubeconfig = pulumi.Output.secret(
            pulumi.Output.all(cluster.name, cluster.endpoint, cluster.master_auth.cluster_ca_certificate).apply(
                lambda values: kubeconfig("gcp", values[0], values[1], values[2] or "", cloud.region)
            )
        )
        self.provider = k8s.Provider(
            f"{name}-k8s", kubeconfig=self.kubeconfig,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[system, *self._node_pools]),
        )
        storage = cloud.storage
        if storage is not None:
            parameters: dict[str, Any] = {"tier": storage.filestore_tier}
            if cloud.network.network:
                parameters["network"] = cloud.network.network
            k8s.storage.v1.StorageClass(
                f"{name}-storage-class", metadata={"name": storage.storage_class_name},
                provisioner="filestore.csi.storage.gke.io", parameters=parameters,
                reclaim_policy="Retain" if storage.retain_on_delete else "Delete",
                volume_binding_mode="WaitForFirstConsumer", allow_volume_expansion=True,
                opts=pulumi.ResourceOptions(parent=self, provider=self.provider),
            )
        self.register_outputs({"cluster_name": self.cluster_name, "endpoint": self.endpoint, "kubeconfig": self.kubeconfig})

    def _gpu_pool(self, name: str, cloud: CloudSpec, cluster: gcp.container.Cluster, pool: NodePoolSpec,
                  location: str) -> gcp.container.NodePool:
        """A GPU node pool: its accelerators with the driver GKE installs, sharing, spot, placement, labels, taints."""
        instance = pool.instance
        sharing = None
        if pool.gpu_sharing != "none":
            sharing = gcp.container.NodePoolNodeConfigGuestAcceleratorGpuSharingConfigArgs(
                gpu_sharing_strategy=pool.gpu_sharing, max_shared_clients_per_gpu=pool.max_shared_clients_per_gpu
            )
        autoscaling = None
        if pool.min_nodes is not None and pool.max_nodes is not None:
            autoscaling = gcp.container.NodePoolAutoscalingArgs(min_node_count=pool.min_nodes, max_node_count=pool.max_nodes)
        return gcp.container.NodePool(
            f"{name}-{pool.name}",
            name=pool.name,
            cluster=cluster.name,
            project=cloud.project,
            location=location,
            node_locations=list(cloud.zones) or None,
            node_count=pool.node_count if autoscaling is None else None,
            initial_node_count=pool.node_count if autoscaling is not None else None,
            autoscaling=autoscaling,
            placement_policy=gcp.container.NodePoolPlacementPolicyArgs(type="COMPACT") if pool.compact_placement else None,
            management=gcp.container.NodePoolManagementArgs(auto_repair=True, auto_upgrade=True),
            node_config=gcp.container.NodePoolNodeConfigArgs(
                machine_type=pool.machine_type,
                disk_size_gb=pool.disk_size_gb,
                disk_type="pd-ssd",
                spot=pool.spot,
                labels=dict(pool.labels) or None,
                # GKE adds nvidia.com/gpu=present:NoSchedule to GPU pools itself; only the extra taints are sent.
                taints=[
                    gcp.container.NodePoolNodeConfigTaintArgs(key=taint["key"], value=taint.get("value", ""),
                                                              effect=_GKE_TAINT_EFFECTS[taint["effect"]])
                    for taint in pool.taints
                ] or None,
                guest_accelerators=[gcp.container.NodePoolNodeConfigGuestAcceleratorArgs(
                    type=instance.accelerator,
                    count=instance.gpus,
                    gpu_driver_installation_config=gcp.container.NodePoolNodeConfigGuestAcceleratorGpuDriverInstallationConfigArgs(
                        gpu_driver_version=pool.driver_version
                    ),
                    gpu_sharing_config=sharing,
                )],
                oauth_scopes=["https://www.googleapis.com/auth/cloud-platform"],
                workload_metadata_config=gcp.container.NodePoolNodeConfigWorkloadMetadataConfigArgs(mode="GKE_METADATA"),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
