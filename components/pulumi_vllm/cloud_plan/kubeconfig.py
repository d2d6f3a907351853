"""The kubeconfig of a new EKS or GKE cluster: its endpoint, its certificate authority, and the cloud's own
credential plugin (``aws eks get-token``, ``gke-gcloud-auth-plugin``), so no token is stored in it."""

from __future__ import annotations

from typing import Any, Literal

import yaml


def kubeconfig(provider: Literal["aws", "gcp"], cluster_name: str, endpoint: str, certificate_authority: str, region: str) -> str:
    """A kubeconfig for ``cluster_name``; ``certificate_authority`` is base64 PEM, as both clouds return it."""
    server = endpoint if endpoint.startswith("https://") else f"https://{endpoint}"
    user: dict[str, Any]
    if provider == "aws":
        user = {
            "exec": {
                "apiVersion": "client.authentication.k8s.io/v1beta1",
                "command": "aws",
                "args": ["eks", "get-token", "--cluster-name", cluster_name, "--region", region, "--output", "json"],
                "interactiveMode": "Never",
            }
        }
    else:
        user = {
            "exec": {
                "apiVersion": "client.authentication.k8s.io/v1beta1",
                "command": "gke-gcloud-auth-plugin",
                "provideClusterInfo": True,
                "interactiveMode": "Never",
            }
        }
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster_name, "cluster": {"server": server, "certificate-authority-data": certificate_authority}}],
        "users": [{"name": cluster_name, "user": user}],
        "contexts": [{"name": cluster_name, "context": {"cluster": cluster_name, "user": cluster_name}}],
        "current-context": cluster_name,
    }
    return yaml.safe_dump(document, sort_keys=False)
