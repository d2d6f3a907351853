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
from pulumi_vllm.kubernetes.gpu_quota import GpuQuota
from pulumi_vllm.kubernetes.model_cache import ModelCache
from pulumi_vllm.kubernetes.platform import GpuPlatform
from pulumi_vllm.kubernetes.secrets import SecretValue
from pulumi_vllm.kubernetes.service import VllmService
from pulumi_vllm.kubernetes.serving import VllmServing

PACKAGE = "pulumi-vllm"
"""The package name: every type token is ``pulumi-vllm:index:<Component>``."""

COMPONENTS: list[type[pulumi.ComponentResource]] = [
    VllmServing,
    ModelCache,
    SecretValue,
    VllmService,
    GpuQuota,
    GpuPlatform,
]
"""The components other languages can create. ``VllmServer`` is left out: its Args carry the container
settings the pure builders compute (a dataclass, no schema type); other languages get it through
``VllmServing``."""


def main() -> None:
    """Serve the components until the engine stops the process (arguments: the engine's address)."""
    if len(sys.argv) < 2:
        sys.argv.append("127.0.0.1:0")  # started by hand: no engine to log to
    component_provider_host(COMPONENTS, name=PACKAGE, version=__version__)
