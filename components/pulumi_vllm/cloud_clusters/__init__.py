"""The cloud cluster components: an EKS cluster (:mod:`.eks`, ``pulumi_aws``) or a GKE cluster (:mod:`.gke`,
``pulumi_gcp``) with GPU capacity, each with a Kubernetes provider built from the new cluster's kubeconfig that
the GPU platform and the serving use. Their SDKs are optional extras (``pulumi-vllm[aws]``, ``pulumi-vllm[gcp]``),
imported only when a stack has a ``cloud`` section; the decisions they wire are in :mod:`pulumi_vllm.cloud_plan`.
"""

from __future__ import annotations

from typing import Any

import pulumi

from pulumi_vllm.config import ConfigError
from pulumi_vllm.config.cloud import CloudSpec
from pulumi_vllm.config.cluster import ClusterSpec

_EXTRAS = {"aws": ("pulumi_aws", "pulumi-vllm[aws]"), "gcp": ("pulumi_gcp", "pulumi-vllm[gcp]")}


def cloud_cluster(
    stack_name: str, spec: CloudSpec, opts: pulumi.ResourceOptions | None = None, platform: ClusterSpec | None = None
) -> Any:
    """The :class:`~.eks.EksCluster` or :class:`~.gke.GkeCluster` of the ``cloud`` section (the EKS charts follow the
    ``cluster`` section's ``chartSource`` and ``imageRegistry``)."""
    module, extra = _EXTRAS[spec.provider]
    try:
        __import__(module)
    except ImportError:
        raise ConfigError(
            f"pulumi-vllm:cloud.provider: {spec.provider!r} needs the {module} SDK: pip install '{extra}'"
        ) from None
    name = spec.name_of_cluster(stack_name)
    if spec.provider == "aws":
        from pulumi_vllm.cloud_clusters.eks import EksCluster

        return EksCluster(name, {"region": spec.region}, opts, spec=spec, platform=platform)
    from pulumi_vllm.cloud_clusters.gke import GkeCluster

    return GkeCluster(name, {"project": spec.project or "", "region": spec.region, "node_pools": []}, opts, spec=spec)
