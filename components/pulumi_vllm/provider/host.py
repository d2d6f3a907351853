"""The component provider: the public components, served to every Pulumi language with an inferred schema.

``pulumi package add`` runs ``plugin/__main__.py`` (at the repository root) as the language host runs a
Python plugin: ``python plugin/ <engine address>``. That calls :func:`main`, which infers the schema
from the components' type hints (``pulumi.provider.experimental``) and serves ``GetSchema`` and
``Construct`` on a port it prints on its first line of output.
"""

import sys

import pulumi
from pulumi.provider.experimental import component_provider_host

from pulumi_vllm import __version__
from pulumi_vllm.cloud_clusters.eks import EksCluster
from pulumi_vllm.cloud_clusters.gke import GkeCluster
from pulumi_vllm.kubernetes.gpu_quota import GpuQuota
from pulumi_vllm.kubernetes.model_cache import ModelCache
from pulumi_vllm.kubernetes.platform import GpuPlatform
from pulumi_vllm.kubernetes.router import VllmRouter
from pulumi_vllm.kubernetes.secrets import SecretValue
from pulumi_vllm.kubernetes.service import VllmService
from pulumi_vllm.kubernetes.serving import VllmServing

PACKAGE = "pulumi-vllm"
"""The package name: every type token is ``pulumi-vllm:index:<Component>``."""

COMPONENTS: list[type[pulumi.ComponentResource]] = [
    VllmServing,
    VllmRouter,
    ModelCache,
    SecretValue,
    VllmService,
    GpuQuota,
    GpuPlatform,
    EksCluster,
    GkeCluster,
]
"""The components other languages can create (the cloud clusters need the ``aws`` and ``gcp`` extras, which
the plugin's requirements install)."""

PYTHON_ONLY: dict[str, str] = {
    "VllmServer": "its Args carry the container settings the serving plan computes (a dataclass)",
    "MultiNodeServer": "its Args carry the serving plan, the engine arguments and the container settings (dataclasses)",
    "RayServeLlm": "its Args carry the serving plan and the container settings (dataclasses)",
    "BatchInference": "its Args carry the engine arguments and container settings (dataclasses) and the batch section",
    "VllmOperations": "its Args carry the serving plan (a dataclass)",
    "ServingSafety": "its Args carry the serving plan and the container settings (dataclasses)",
    "LoadTest": "its Args carry the serving plan and the container settings (dataclasses)",
    "DockerVllmServer": "its Args take a StackConfig or a mapping (a union); the Docker target is chosen in the "
    "stack file (target: docker)",
    "DockerRayCluster": "its Args are DockerVllmServer's (a union of StackConfig and a mapping)",
    "PdRouter": "its Args carry a disaggregated stack's validated StackConfig with its two pools (a pydantic model); "
    "the stack program creates it with the pools (disaggregation in the stack file)",
    "EndpointPicker": "VllmRouter creates it for each InferencePool from the validated router section "
    "(router.gateway.deployEndpointPicker)",
}
"""The components kept out of the package, with the reason: building blocks that :class:`VllmServing` (or the
Docker target) creates from the validated plan. Other languages reach each of them through ``VllmServing``'s
inputs; Python programs may import them directly."""


def main() -> None:
    """Serve the components until the engine stops the process (arguments: the engine's address)."""
    if len(sys.argv) < 2:
        sys.argv.append("127.0.0.1:0")  # started by hand: no engine to log to
    component_provider_host(COMPONENTS, name=PACKAGE, version=__version__)
