"""The cloud clusters under Pulumi's mock runtime: every resource and its inputs, the provider chain (every
Kubernetes object on the new cluster's provider), ordering, outputs; Karpenter's objects against its CRDs and its
values against its chart; the render's cloud/ files and the review's words for replacing changes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from schemas import validate_object
from test_platform import chart_defaults, unknown_paths

from pulumi_vllm.cli.render import render_config, render_stack
from pulumi_vllm.render.engine import REDACTED
from pulumi_vllm.review.consequences import changed_object, removed_object

REPO = Path(__file__).resolve().parents[1]
CLOUD_STACKS = ["eks-p5-llama-70b", "eks-karpenter-two-models", "gke-l4-8b"]


@pytest.fixture(scope="module", params=CLOUD_STACKS)
def rendered(request: Any) -> Any:
    return render_stack(REPO, request.param, env={})


def _by_type(run: Any, type_: str) -> list[Any]:
    return [reg for reg in run.registrations if reg.type == type_]


def _provider(run: Any) -> Any:
    (provider,) = _by_type(run, "pulumi:providers:kubernetes")
    return provider


def test_every_kubernetes_resource_uses_the_new_clusters_provider(rendered: Any) -> None:
    provider = _provider(rendered.run)
    kubernetes = [reg for reg in rendered.run.registrations if reg.custom and reg.type.startswith("kubernetes:")]
    assert any(reg.type == "kubernetes:apps/v1:Deployment" for reg in kubernetes)
    for reg in kubernetes:
        # The provider reference is "<provider urn>::<id>": the new cluster's, never the ambient default one.
        assert reg.provider.startswith(provider.urn + "::"), (reg.type, reg.name, reg.provider)


def test_the_provider_waits_for_the_cluster_nodes_and_add_ons_and_holds_the_kubeconfig_as_a_secret(rendered: Any) -> None:
    run = rendered.run
    provider = _provider(run)
    by_urn = {reg.urn: reg for reg in run.registrations}
    waited = {by_urn[urn].type for urn in provider.dependencies if urn in by_urn}
    if rendered.stack.startswith("eks"):
        assert {"aws:eks/cluster:Cluster", "aws:eks/nodeGroup:NodeGroup", "aws:eks/addon:Addon"} <= waited
    else:
        assert {"gcp:container/cluster:Cluster", "gcp:container/nodePool:NodePool"} <= waited
    kubeconfig = provider.inputs["kubeconfig"]
    assert "4dabf18193072939515e22adb298388d" in kubeconfig  # the secret envelope on the wire
    document = yaml.safe_load(kubeconfig["value"])
    (cluster,) = document["clusters"]
    assert cluster["cluster"]["server"].startswith("https://") and cluster["cluster"]["certificate-authority-data"]
    command = document["users"][0]["user"]["exec"]["command"]
    assert command == ("aws" if rendered.stack.startswith("eks") else "gke-gcloud-auth-plugin")
    assert rendered.run.outputs["kubeconfig"] == REDACTED
    assert rendered.run.outputs["clusterName"] and rendered.run.outputs["baseUrl"].startswith("http://")


def test_cloud_resources_are_rendered_under_cloud_provider_and_kubectl_reads_none(rendered: Any) -> None:
    files = dict(rendered.documents)
    provider = "aws" if rendered.stack.startswith("eks") else "gcp"
    cloud = {name: doc for name, doc in files.items() if name.startswith("cloud/")}
    assert cloud and all(name.startswith(f"cloud/{provider}/") for name in cloud)
    cloud_types = {reg.type for reg in rendered.run.registrations if reg.custom and reg.type.startswith(f"{provider}:")}
    assert {doc["type"] for doc in cloud.values()} == cloud_types
    top = [doc for name, doc in files.items() if "/" not in name]
    assert top and all({"apiVersion", "kind", "metadata"} <= set(doc) for doc in top)
    for document in top:
        validate_object(document)  # NodePool and EC2NodeClass strictly against Karpenter's CRDs


def test_the_eks_stack_creates_the_cluster_its_iam_add_ons_and_a_tainted_nvidia_node_group() -> None:
    run = render_stack(REPO, "eks-p5-llama-70b", env={}).run
    (cluster,) = _by_type(run, "aws:eks/cluster:Cluster")
    assert cluster.inputs["version"] == "1.35" and cluster.inputs["accessConfig"]["authenticationMode"] == "API"
    assert cluster.inputs["vpcConfig"]["endpointPublicAccess"] is True and len(cluster.inputs["vpcConfig"]["subnetIds"]) == 2
    addons = {reg.inputs["addonName"] for reg in _by_type(run, "aws:eks/addon:Addon")}
    assert addons == {"vpc-cni", "kube-proxy", "coredns", "eks-pod-identity-agent", "aws-ebs-csi-driver"}
    groups = {reg.inputs.get("nodeGroupName", "system"): reg for reg in _by_type(run, "aws:eks/nodeGroup:NodeGroup")}
    gpu = groups["h100"]
    assert gpu.inputs["instanceTypes"] == ["p5.48xlarge"] and gpu.inputs["amiType"] == "AL2023_x86_64_NVIDIA"
    assert gpu.inputs["taints"] == [{"key": "nvidia.com/gpu", "effect": "NO_SCHEDULE"}]
    assert gpu.inputs["capacityType"] == "ON_DEMAND"
    assert gpu.inputs["scalingConfig"] == {"minSize": 0.0, "desiredSize": 1.0, "maxSize": 1.0}
    roles = {reg.name for reg in _by_type(run, "aws:iam/role:Role")}
    assert {"llama-70b-cluster-cluster-role", "llama-70b-cluster-node-role"} <= roles
    (deployment,) = _by_type(run, "kubernetes:apps/v1:Deployment")
    pod = deployment.inputs["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"node.kubernetes.io/instance-type": "p5.48xlarge"}
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "8"


def test_efa_adds_a_placement_group_one_interface_per_network_card_one_zone_and_the_device_plugin() -> None:
    values = {
        "model": {"id": "meta-llama/Llama-3.1-405B-Instruct-FP8"},
        "parallelism": {"tensorParallelSize": 8, "pipelineParallelSize": 2, "backend": "leaderworkerset"},
        "cache": {"accessMode": "ReadWriteMany"},
        "cloud": {"provider": "aws", "region": "us-east-2", "zones": ["us-east-2a"], "nodeGroups": [
            {"name": "h100", "instanceType": "p5.48xlarge", "desiredSize": 2, "maxSize": 2, "efa": True}]},
        "cluster": {},
    }
    run = render_config(values).run
    (template,) = [reg for reg in _by_type(run, "aws:ec2/launchTemplate:LaunchTemplate") if "h100" in reg.name]
    interfaces = template.inputs["networkInterfaces"]
    assert len(interfaces) == 32 and {item["interfaceType"] for item in interfaces} == {"efa"}
    assert [item["networkCardIndex"] for item in interfaces] == list(range(32))
    assert interfaces[0]["deviceIndex"] == 0 and {item["deviceIndex"] for item in interfaces[1:]} == {1}
    assert template.inputs["placement"]["groupName"]
    (group,) = [reg for reg in _by_type(run, "aws:eks/nodeGroup:NodeGroup") if reg.inputs.get("nodeGroupName") == "h100"]
    assert len(group.inputs["subnetIds"]) == 1
    releases = {reg.inputs["name"] for reg in _by_type(run, "kubernetes:helm.sh/v3:Release")}
    assert "aws-efa-k8s-device-plugin" in releases and "lws" in releases


def test_karpenter_gets_its_chart_iam_and_node_pools_and_its_values_exist_in_the_chart() -> None:
    rendered = render_stack(REPO, "eks-karpenter-two-models", env={})
    files = dict(rendered.documents)
    chart = files["helm/karpenter.yaml"]
    assert (chart["repository"], chart["chart"], chart["version"], chart["namespace"]) == (
        "oci://public.ecr.aws/karpenter", "karpenter", "1.14.1", "kube-system")
    assert chart["values"]["settings"]["clusterName"] == "qwen-7b-cluster"
    assert unknown_paths(chart["values"], chart_defaults("karpenter")) == []
    run = rendered.run
    (identity,) = _by_type(run, "aws:eks/podIdentityAssociation:PodIdentityAssociation")
    assert (identity.inputs["namespace"], identity.inputs["serviceAccount"]) == ("kube-system", "karpenter")
    (access,) = _by_type(run, "aws:eks/accessEntry:AccessEntry")
    assert access.inputs["type"] == "EC2_LINUX"
    node_pool = files["nodepool-l40s.yaml"]
    assert node_pool["spec"]["template"]["spec"]["taints"] == [{"key": "nvidia.com/gpu", "effect": "NoSchedule"}]
    node_class = files["ec2nodeclass-l40s.yaml"]
    assert node_class["spec"]["role"] == "qwen-7b-cluster-node-role"
    by_urn = {reg.urn: reg for reg in run.registrations}
    (pool_reg,) = [reg for reg in run.registrations if reg.type == "kubernetes:karpenter.sh/v1:NodePool"]
    assert any(by_urn[urn].type == "kubernetes:helm.sh/v3:Release" for urn in pool_reg.dependencies if urn in by_urn)
    # The EFS model cache survives `pulumi destroy`; its StorageClass keeps claims' volumes.
    (efs,) = _by_type(run, "aws:efs/fileSystem:FileSystem")
    assert efs.retain_on_delete and files["storageclass-model-cache.yaml"]["reclaimPolicy"] == "Retain"


def test_a_misspelt_karpenter_value_fails_the_chart_check() -> None:
    assert unknown_paths({"settings": {"clustername": "x"}}, chart_defaults("karpenter")) == ["settings.clustername"]


def test_the_gke_stack_creates_a_zonal_cluster_and_an_l4_pool_with_the_driver() -> None:
    run = render_stack(REPO, "gke-l4-8b", env={}).run
    (cluster,) = _by_type(run, "gcp:container/cluster:Cluster")
    assert cluster.inputs["location"] == "us-central1-a" and cluster.inputs["minMasterVersion"] == "1.35"
    assert cluster.inputs["removeDefaultNodePool"] is True
    pools = {reg.inputs.get("name", "system"): reg for reg in _by_type(run, "gcp:container/nodePool:NodePool")}
    (accelerator,) = pools["l4"].inputs["nodeConfig"]["guestAccelerators"]
    assert accelerator["type"] == "nvidia-l4" and accelerator["count"] == 1.0
    assert accelerator["gpuDriverInstallationConfig"] == {"gpuDriverVersion": "LATEST"}
    assert pools["l4"].inputs["nodeConfig"]["machineType"] == "g2-standard-8"
    assert not _by_type(run, "kubernetes:helm.sh/v3:Release")  # GKE brings the driver and device plugin


def test_gke_sharing_spot_compact_placement_and_filestore() -> None:
    values = {
        "model": {"id": "meta-llama/Llama-3.1-8B-Instruct"},
        "engine": {"maxModelLen": 8192},  # an L4 holds the weights and 26,912 tokens of KV cache, not 131,072
        "cache": {"accessMode": "ReadWriteMany", "storageClass": "model-cache"},
        "cloud": {"provider": "gcp", "project": "p", "region": "us-central1", "storage": {"type": "filestore"},
                  "nodePools": [{"name": "l4", "machineType": "g2-standard-24", "spot": True, "compactPlacement": True,
                                 "gpuSharing": "TIME_SHARING", "maxSharedClientsPerGpu": 2}]},
    }
    rendered = render_config(values)
    (pool,) = [reg for reg in _by_type(rendered.run, "gcp:container/nodePool:NodePool") if reg.inputs.get("name") == "l4"]
    config = pool.inputs["nodeConfig"]
    assert config["spot"] is True and pool.inputs["placementPolicy"] == {"type": "COMPACT"}
    assert config["guestAccelerators"][0]["gpuSharingConfig"] == {"gpuSharingStrategy": "TIME_SHARING", "maxSharedClientsPerGpu": 2.0}
    (cluster,) = _by_type(rendered.run, "gcp:container/cluster:Cluster")
    assert cluster.inputs["addonsConfig"]["gcpFilestoreCsiDriverConfig"] == {"enabled": True}
    classes = [doc for _, doc in rendered.documents if isinstance(doc, dict) and doc.get("kind") == "StorageClass"]
    assert [doc["provisioner"] for doc in classes] == ["filestore.csi.storage.gke.io"]


def test_a_misspelt_sdk_argument_is_a_type_error() -> None:
    import pulumi_aws as aws

    with pytest.raises(TypeError):
        aws.eks.NodeGroupScalingConfigArgs(desired_size=1, max_size=1, min_sise=0)  # type: ignore[call-arg]


def _cloud_file(rendered: Any, prefix: str) -> dict[str, Any]:
    (document,) = [doc for name, doc in rendered.documents if name.startswith(prefix)]
    return document


def test_the_review_names_node_group_and_cluster_replacements() -> None:
    base = {"model": {"id": "meta-llama/Llama-3.1-8B-Instruct"}, "engine": {"maxModelLen": 8192}}
    old = render_config({**base, "cloud": {"provider": "aws", "region": "us-east-2",
                                           "nodeGroups": [{"name": "gpu", "instanceType": "g6e.xlarge"}]}})
    new = render_config({**base, "cloud": {"provider": "aws", "region": "us-east-2", "kubernetesVersion": "1.36",
                                           "nodeGroups": [{"name": "gpu", "instanceType": "g6e.2xlarge"}]}})
    prefix = "cloud/aws/eks-nodegroup-vllm-cluster-gpu"
    texts = [(c.severity, c.text) for c in changed_object(_cloud_file(old, prefix), _cloud_file(new, prefix))]
    expected = "instance type change replaces the node group: its nodes are drained and recreated (g6e.xlarge -> g6e.2xlarge)"
    assert texts == [("replaced", expected)]
    cluster = "cloud/aws/eks-cluster-vllm-cluster-eks"
    texts = [c.text for c in changed_object(_cloud_file(old, cluster), _cloud_file(new, cluster))]
    assert any(text.startswith("Kubernetes 1.35 -> 1.36: the control plane upgrades in place") for text in texts)
    renamed = {**_cloud_file(new, cluster)}
    renamed["inputs"] = {**renamed["inputs"], "name": "other"}
    worst = changed_object(_cloud_file(old, cluster), renamed)
    assert worst[0].severity == "data loss" and "the cluster is deleted and created again" in worst[0].text
    assert removed_object(_cloud_file(old, prefix))[0].text.startswith("the node group is deleted")
