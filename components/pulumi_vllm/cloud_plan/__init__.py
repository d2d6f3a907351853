"""Cloud GPU clusters decided without Pulumi: the GPU instance and machine types of EKS and GKE, the labels each
cloud puts on their nodes, the Karpenter objects and chart values, and whether serving pods fit a node group.

:mod:`.instances` is the facts table (each row with its source); :mod:`.agreement` checks a serving stack against
the cluster's node groups, node pools and Karpenter NodePools; :mod:`.karpenter` builds Karpenter's custom
resources and Helm values; :mod:`.kubeconfig` writes the kubeconfig of a new cluster; :mod:`.placeholders` holds the
outputs a cloud provider computes, as stand-ins for offline runs. The components are in :mod:`pulumi_vllm.cloud_clusters`.
"""
