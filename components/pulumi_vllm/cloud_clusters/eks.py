"""An EKS cluster for GPU serving, from plain ``pulumi_aws`` resources: the VPC (or given subnets), the control
plane and its IAM, the managed add-ons, managed GPU node groups, Karpenter, EFA and a ReadWriteMany model cache.

Plain resources rather than ``pulumi_eks``: that package's Python SDK drives a Node.js provider plugin whose
children (the roles, the node groups, the aws-auth objects) are created inside the plugin, so the offline render
and the mock tests could not see or check them; here every resource is registered by this program.
"""

import json
from typing import Any, NotRequired, TypedDict

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from pulumi_vllm.cloud_plan.karpenter import (
    DISCOVERY_TAG,
    NAMESPACE,
    NODE_CLASS_API,
    NODE_POOL_API,
    SERVICE_ACCOUNT,
    karpenter_values,
    node_class_spec,
    node_pool_spec,
)
from pulumi_vllm.cloud_plan.kubeconfig import kubeconfig
from pulumi_vllm.config.cloud import CloudSpec, NodeGroupSpec
from pulumi_vllm.config.cluster import ClusterSpec
from pulumi_vllm.config.models import deep_merge
from pulumi_vllm.kubernetes.platform import _helm_release
from pulumi_vllm.platform_plan.charts import EFA_DEVICE_PLUGIN, KARPENTER
from pulumi_vllm.platform_plan.values import image_values

TOKEN = "pulumi-vllm:index:EksCluster"

_EKS_TAINT_EFFECTS = {"NoSchedule": "NO_SCHEDULE", "NoExecute": "NO_EXECUTE", "PreferNoSchedule": "PREFER_NO_SCHEDULE"}
_NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly",
                  "AmazonSSMManagedInstanceCore")
_KARPENTER_ACTIONS = [
    "ec2:CreateFleet", "ec2:CreateLaunchTemplate", "ec2:CreateTags", "ec2:DeleteLaunchTemplate", "ec2:RunInstances",
    "ec2:TerminateInstances", "ec2:DescribeAvailabilityZones", "ec2:DescribeImages", "ec2:DescribeInstances",
    "ec2:DescribeInstanceTypeOfferings", "ec2:DescribeInstanceTypes", "ec2:DescribeLaunchTemplates",
    "ec2:DescribeSecurityGroups", "ec2:DescribeSpotPriceHistory", "ec2:DescribeSubnets",
    "ec2:DescribeCapacityReservations", "ec2:DescribePlacementGroups", "eks:DescribeCluster", "ssm:GetParameter",
    "pricing:GetProducts", "iam:GetInstanceProfile", "iam:CreateInstanceProfile", "iam:TagInstanceProfile",
    "iam:AddRoleToInstanceProfile", "iam:RemoveRoleFromInstanceProfile", "iam:DeleteInstanceProfile",
    "iam:ListInstanceProfiles",
]
"""What the Karpenter controller calls (its documented controller policy, condensed; narrow it by tags if needed)."""


class EksNodeGroupArgs(TypedDict):
    """A managed GPU node group (the ``cloud.nodeGroups`` keys in snake_case)."""

    name: str
    """Node group name."""
    instance_type: str
    """GPU instance type (``p5.48xlarge``)."""
    min_size: NotRequired[int]
    """Fewest nodes (default 0)."""
    desired_size: NotRequired[int]
    """Nodes at creation (default 1)."""
    max_size: NotRequired[int]
    """Most nodes (default 1)."""
    disk_size_gib: NotRequired[int]
    """Root volume in GiB (default 200)."""
    capacity_type: NotRequired[str]
    """``ON_DEMAND`` (default), ``SPOT`` or ``CAPACITY_BLOCK``."""
    capacity_reservation_id: NotRequired[str]
    """The Capacity Block reservation, with ``CAPACITY_BLOCK``."""
    labels: NotRequired[dict[str, str]]
    """Node labels."""
    efa: NotRequired[bool]
    """EFA interfaces, placement group and device plugin (default false)."""


class EksClusterArgs(TypedDict):
    """Arguments of :class:`EksCluster`: the ``cloud`` stack section (provider ``aws``) in snake_case."""

    region: str
    """AWS region."""
    cluster_name: NotRequired[str]
    """Cluster name (default: the component name)."""
    kubernetes_version: NotRequired[str]
    """Kubernetes minor version (default 1.35)."""
    zones: NotRequired[list[str]]
    """Availability zones of the new VPC's subnets (default: the region's a and b)."""
    node_groups: NotRequired[list[EksNodeGroupArgs]]
    """Managed GPU node groups."""


def cloud_spec(args: EksClusterArgs) -> CloudSpec:
    """The validated section from the component's arguments."""
    raw = {key: value for key, value in dict(args).items()}
    return CloudSpec.model_validate({"provider": "aws", **raw})


def _role(name: str, service: str, policies: list[str], opts: pulumi.ResourceOptions) -> aws.iam.Role:
    actions = ["sts:AssumeRole", "sts:TagSession"] if service == "pods.eks.amazonaws.com" else ["sts:AssumeRole"]
    role = aws.iam.Role(
        name,
        assume_role_policy=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": actions}],
        }),
        opts=opts,
    )
    for policy in policies:
        aws.iam.RolePolicyAttachment(
            f"{name}-{policy.lower().replace('_', '-')}", role=role.name,
            policy_arn=f"arn:aws:iam::aws:policy/{policy}", opts=opts,
        )
    return role


class EksCluster(pulumi.ComponentResource):
    """An EKS cluster with GPU capacity, and a Kubernetes provider for it (see docs/clouds.md)."""

    cluster_name: pulumi.Output[str]
    """The EKS cluster's name."""
    endpoint: pulumi.Output[str]
    """The API server URL."""
    kubeconfig: pulumi.Output[str]
    """A kubeconfig using ``aws eks get-token`` (a secret output)."""
    provider: k8s.Provider
    """The Kubernetes provider of the new cluster; pass it to the platform and the serving."""

    def __init__(
        self, name: str, args: EksClusterArgs, opts: pulumi.ResourceOptions | None = None, spec: CloudSpec | None = None,
        platform: ClusterSpec | None = None,
    ) -> None:
        cloud = spec or cloud_spec(args)
        super().__init__(TOKEN, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        cluster_name = cloud.cluster_name or name
        self._spec = cloud
        # The charts installed here follow the platform's mirrors (cluster.chartSource, cluster.imageRegistry).
        self._chart_source = platform.chart_source if platform else None
        self._image_registry = platform.image_registry if platform else None
        private_subnets = self._network(name, cloud, cluster_name, child)
        cluster_role = _role(f"{name}-cluster-role", "eks.amazonaws.com", ["AmazonEKSClusterPolicy"], child)
        self._node_role = _role(f"{name}-node-role", "ec2.amazonaws.com", list(_NODE_POLICIES), child)
        endpoint = cloud.endpoint_access
        cluster = aws.eks.Cluster(
            f"{name}-eks",
            name=cluster_name,
            version=cloud.version,
            role_arn=cluster_role.arn,
            vpc_config=aws.eks.ClusterVpcConfigArgs(
                subnet_ids=private_subnets,
                endpoint_public_access=endpoint.public,
                endpoint_private_access=endpoint.private,
                public_access_cidrs=list(endpoint.public_cidrs) if endpoint.public else None,
            ),
            # Access entries, not the aws-auth ConfigMap; whoever runs `pulumi up` is the first admin.
            access_config=aws.eks.ClusterAccessConfigArgs(
                authentication_mode="API", bootstrap_cluster_creator_admin_permissions=True
            ),
            # The add-ons below are EKS-managed, so their versions follow the cluster's.
            bootstrap_self_managed_addons=False,
            opts=child,
        )
        self._cluster = cluster
        security_group = cluster.vpc_config.cluster_security_group_id
        ready: list[pulumi.Resource] = []
        early = [self._addon(name, cluster, addon) for addon in ("vpc-cni", "kube-proxy", "eks-pod-identity-agent")]
        system = aws.eks.NodeGroup(
            f"{name}-system",
            cluster_name=cluster.name,
            node_role_arn=self._node_role.arn,
            subnet_ids=private_subnets,
            instance_types=[cloud.system_nodes.instance_type or "m6i.xlarge"],
            ami_type="AL2023_x86_64_STANDARD",
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=cloud.system_nodes.count, desired_size=cloud.system_nodes.count, max_size=cloud.system_nodes.count
            ),
            labels={"node-role/system": "true"},
            opts=pulumi.ResourceOptions(parent=self, depends_on=early),
        )
        ready += [system, *early, self._addon(name, cluster, "coredns", after=[system])]
        ready.append(self._csi_addon(name, cluster, "aws-ebs-csi-driver", "ebs-csi-controller-sa", "AmazonEBSCSIDriverPolicy", system))
        storage = cloud.storage
        if storage is not None and storage.type == "efs":
            ready.append(self._csi_addon(name, cluster, "aws-efs-csi-driver", "efs-csi-controller-sa", "AmazonEFSCSIDriverPolicy", system))
        if storage is not None and storage.type == "fsx-lustre":
            ready.append(self._csi_addon(name, cluster, "aws-fsx-csi-driver", "fsx-csi-controller-sa", "AmazonFSxFullAccess", system))
        self._node_groups = [
            self._gpu_node_group(name, cluster, group, private_subnets, security_group) for group in cloud.node_groups
        ]
        ready += self._node_groups
        self.cluster_name = cluster.name
        self.endpoint = cluster.endpoint
        self.kubeconfig = pulumi.Output.secret(
            pulumi.Output.all(cluster.name, cluster.endpoint, cluster.certificate_authority.data).apply(
                lambda values: kubeconfig("aws", values[0], values[1], values[2], cloud.region)
            )
        )
        # Every Kubernetes object of the program goes through this provider, so each waits for the nodes and
        # add-ons here, and `pulumi destroy` deletes them before any of the cluster's own resources.
        self.provider = k8s.Provider(
            f"{name}-k8s", kubeconfig=self.kubeconfig, opts=pulumi.ResourceOptions(parent=self, depends_on=ready)
        )
        in_cluster = pulumi.ResourceOptions(parent=self, provider=self.provider)
        if any(group.efa for group in cloud.node_groups):
            _helm_release(
                f"{name}-efa-device-plugin", EFA_DEVICE_PLUGIN,
                deep_merge({"tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                        "nodeSelector": {"vpc.amazonaws.com/efa.present": "true"}},
                       image_values(EFA_DEVICE_PLUGIN, self._image_registry)),
                in_cluster, self._chart_source,
            )
        if cloud.karpenter is not None:
            self._karpenter(name, cloud, cluster, security_group, in_cluster)
        if storage is not None:
            self._storage(name, cloud, private_subnets, security_group, in_cluster)
        self.register_outputs({"cluster_name": self.cluster_name, "endpoint": self.endpoint, "kubeconfig": self.kubeconfig})

    def _network(self, name: str, cloud: CloudSpec, cluster_name: str, child: pulumi.ResourceOptions) -> list[Any]:
        """Private subnets for the nodes: the given ones, or a new VPC with one public and one private subnet per zone."""
        if cloud.network.subnet_ids:
            return list(cloud.network.subnet_ids)
        zones = list(cloud.zones) or [f"{cloud.region}a", f"{cloud.region}b"]
        if len(zones) == 1:
            zones.append(f"{cloud.region}{'b' if zones[0].endswith('a') else 'a'}")  # EKS needs two zones
        vpc = aws.ec2.Vpc(f"{name}-vpc", cidr_block=cloud.network.vpc_cidr, enable_dns_hostnames=True,
                          enable_dns_support=True, tags={"Name": f"{cluster_name}-vpc"}, opts=child)
        gateway = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, opts=child)
        public_routes = aws.ec2.RouteTable(
            f"{name}-public-routes", vpc_id=vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=gateway.id)], opts=child,
        )
        octets = cloud.network.vpc_cidr.split("/")[0].split(".")
        private: list[Any] = []
        nat = None
        for index, zone in enumerate(zones):
            public = aws.ec2.Subnet(
                f"{name}-public-{zone}", vpc_id=vpc.id, availability_zone=zone, map_public_ip_on_launch=True,
                cidr_block=f"{octets[0]}.{octets[1]}.{index * 16}.0/20",
                tags={"kubernetes.io/role/elb": "1", "Name": f"{cluster_name}-public-{zone}"}, opts=child,
            )
            aws.ec2.RouteTableAssociation(f"{name}-public-{zone}", subnet_id=public.id, route_table_id=public_routes.id, opts=child)
            if nat is None:
                address = aws.ec2.Eip(f"{name}-nat-ip", domain="vpc", opts=child)
                nat = aws.ec2.NatGateway(f"{name}-nat", allocation_id=address.id, subnet_id=public.id, opts=child)
            subnet = aws.ec2.Subnet(
                f"{name}-private-{zone}", vpc_id=vpc.id, availability_zone=zone,
                cidr_block=f"{octets[0]}.{octets[1]}.{128 + index * 32}.0/19",
                tags={"kubernetes.io/role/internal-elb": "1", DISCOVERY_TAG: cluster_name, "Name": f"{cluster_name}-private-{zone}"},
                opts=child,
            )
            routes = aws.ec2.RouteTable(
                f"{name}-private-routes-{zone}", vpc_id=vpc.id,
                routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", nat_gateway_id=nat.id)], opts=child,
            )
            aws.ec2.RouteTableAssociation(f"{name}-private-{zone}", subnet_id=subnet.id, route_table_id=routes.id, opts=child)
            private.append(subnet.id)
        return private

    def _addon(self, name: str, cluster: aws.eks.Cluster, addon: str, after: list[pulumi.Resource] | None = None,
               identity: list[aws.eks.AddonPodIdentityAssociationArgs] | None = None) -> aws.eks.Addon:
        return aws.eks.Addon(
            f"{name}-{addon}", cluster_name=cluster.name, addon_name=addon, pod_identity_associations=identity,
            resolve_conflicts_on_create="OVERWRITE", resolve_conflicts_on_update="OVERWRITE",
            opts=pulumi.ResourceOptions(parent=self, depends_on=after or []),
        )

    def _csi_addon(self, name: str, cluster: aws.eks.Cluster, addon: str, account: str, policy: str,
                   system: pulumi.Resource) -> aws.eks.Addon:
        """A CSI driver add-on whose controller gets its IAM role through EKS Pod Identity."""
        role = _role(f"{name}-{addon}-role", "pods.eks.amazonaws.com", [policy], pulumi.ResourceOptions(parent=self))
        identity = [aws.eks.AddonPodIdentityAssociationArgs(role_arn=role.arn, service_account=account)]
        return self._addon(name, cluster, addon, after=[system], identity=identity)

    def _gpu_node_group(self, name: str, cluster: aws.eks.Cluster, group: NodeGroupSpec, subnets: list[Any],
                        security_group: pulumi.Output[str]) -> aws.eks.NodeGroup:
        """A managed GPU node group on the NVIDIA AMI, tainted and labelled, with EFA or a Capacity Block when asked."""
        child = pulumi.ResourceOptions(parent=self)
        instance = group.instance
        interfaces = None
        placement = None
        if group.efa:
            placement_group = aws.ec2.PlacementGroup(f"{name}-{group.name}-placement", strategy="cluster", opts=child)
            placement = aws.ec2.LaunchTemplatePlacementArgs(group_name=placement_group.name)
            # One EFA per network card: card 0 carries the primary interface (device 0), the others device 1.
            interfaces = [
                aws.ec2.LaunchTemplateNetworkInterfaceArgs(
                    device_index=0 if card == 0 else 1, network_card_index=card, interface_type="efa",
                    delete_on_termination="true", security_groups=[security_group],
                )
                for card in range(instance.efa_interfaces)
            ]
        block = group.capacity_type == "CAPACITY_BLOCK"
        template = aws.ec2.LaunchTemplate(
            f"{name}-{group.name}-template",
            block_device_mappings=[aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                device_name="/dev/xvda",
                ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                    volume_size=group.disk_size_gib, volume_type="gp3", encrypted="true", delete_on_termination="true"
                ),
            )],
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(http_tokens="required", http_put_response_hop_limit=2),
            network_interfaces=interfaces,
            placement=placement,
            instance_market_options=aws.ec2.LaunchTemplateInstanceMarketOptionsArgs(market_type="capacity-block") if block else None,
            capacity_reservation_specification=aws.ec2.LaunchTemplateCapacityReservationSpecificationArgs(
                capacity_reservation_target=aws.ec2.LaunchTemplateCapacityReservationSpecificationCapacityReservationTargetArgs(
                    capacity_reservation_id=group.capacity_reservation_id
                )
            ) if block else None,
            opts=child,
        )
        return aws.eks.NodeGroup(
            f"{name}-{group.name}",
            cluster_name=cluster.name,
            node_group_name=group.name,
            node_role_arn=self._node_role.arn,
            # EFA and a placement group need one zone; a Capacity Block lives in one too.
            subnet_ids=subnets[:1] if group.efa or block else subnets,
            instance_types=[group.instance_type],
            ami_type=group.ami_type,
            capacity_type=group.capacity_type,
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=group.min_size, desired_size=group.desired_size, max_size=group.max_size
            ),
            labels=dict(group.labels) or None,
            taints=[
                aws.eks.NodeGroupTaintArgs(key=taint["key"], value=taint.get("value"), effect=_EKS_TAINT_EFFECTS[taint["effect"]])
                for taint in group.taints
            ],
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(id=template.id, version=template.latest_version.apply(str)),
            opts=child,
        )

    def _karpenter(self, name: str, cloud: CloudSpec, cluster: aws.eks.Cluster, security_group: pulumi.Output[str],
                   in_cluster: pulumi.ResourceOptions) -> None:
        """Karpenter: its controller role (Pod Identity), the node role's access entry, the chart, the GPU NodePools."""
        assert cloud.karpenter is not None
        child = pulumi.ResourceOptions(parent=self)
        controller = _role(f"{name}-karpenter-role", "pods.eks.amazonaws.com", [], child)
        aws.iam.RolePolicy(
            f"{name}-karpenter-policy", role=controller.name,
            policy=self._node_role.arn.apply(lambda arn: json.dumps({
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": _KARPENTER_ACTIONS, "Resource": "*"},
                    {"Effect": "Allow", "Action": "iam:PassRole", "Resource": arn},
                ],
            })),
            opts=child,
        )
        identity = aws.eks.PodIdentityAssociation(
            f"{name}-karpenter-identity", cluster_name=cluster.name, namespace=NAMESPACE,
            service_account=SERVICE_ACCOUNT, role_arn=controller.arn, opts=child,
        )
        access = aws.eks.AccessEntry(
            f"{name}-karpenter-nodes", cluster_name=cluster.name, principal_arn=self._node_role.arn, type="EC2_LINUX",
            opts=child,
        )
        tag = aws.ec2.Tag(f"{name}-cluster-sg-discovery", resource_id=security_group, key=DISCOVERY_TAG,
                          value=cluster.name, opts=child)
        cluster_name = cloud.cluster_name or name
        release = _helm_release(
            f"{name}-karpenter", KARPENTER,
            deep_merge(karpenter_values(cluster_name), image_values(KARPENTER, self._image_registry)),
            pulumi.ResourceOptions.merge(in_cluster, pulumi.ResourceOptions(depends_on=[identity, access, tag])),
            self._chart_source,
        )
        after_chart = pulumi.ResourceOptions.merge(in_cluster, pulumi.ResourceOptions(depends_on=[release]))
        for pool in cloud.karpenter.node_pools:
            k8s.apiextensions.CustomResource(
                f"{name}-nodeclass-{pool.name}", api_version=NODE_CLASS_API, kind="EC2NodeClass",
                metadata={"name": pool.name},
                spec=node_class_spec(pool, cluster_name, self._node_role.name, cloud.karpenter.ami_alias),
                opts=after_chart,
            )
            k8s.apiextensions.CustomResource(
                f"{name}-nodepool-{pool.name}", api_version=NODE_POOL_API, kind="NodePool",
                metadata={"name": pool.name}, spec=node_pool_spec(pool), opts=after_chart,
            )

    def _storage(self, name: str, cloud: CloudSpec, subnets: list[Any], security_group: pulumi.Output[str],
                 in_cluster: pulumi.ResourceOptions) -> None:
        """The model cache's file system and its StorageClass (EFS with access points, or FSx for Lustre)."""
        storage = cloud.storage
        assert storage is not None
        reclaim = "Retain" if storage.retain_on_delete else "Delete"
        if storage.type == "efs":
            keep = pulumi.ResourceOptions(parent=self, retain_on_delete=storage.retain_on_delete)
            file_system = aws.efs.FileSystem(
                f"{name}-model-cache", encrypted=True, throughput_mode="elastic",
                tags={"Name": f"{cloud.cluster_name or name}-model-cache"}, opts=keep,
            )
            for index, subnet in enumerate(subnets):
                # Every node carries the cluster security group, which admits traffic from its own members.
                aws.efs.MountTarget(f"{name}-model-cache-{index}", file_system_id=file_system.id, subnet_id=subnet,
                                    security_groups=[security_group], opts=pulumi.ResourceOptions(parent=self))
            provisioner = "efs.csi.aws.com"
            parameters: dict[str, Any] = {"provisioningMode": "efs-ap", "fileSystemId": file_system.id,
                                          "directoryPerms": "775", "basePath": "/model-cache"}
        else:
            provisioner = "fsx.csi.aws.com"
            parameters = {"subnetId": subnets[0], "securityGroupIds": security_group,
                          "deploymentType": "PERSISTENT_2", "perUnitStorageThroughput": "125"}
        k8s.storage.v1.StorageClass(
            f"{name}-storage-class", metadata={"name": storage.storage_class_name}, provisioner=provisioner,
            parameters=parameters, reclaim_policy=reclaim, volume_binding_mode="Immediate", opts=in_cluster,
        )
