"""Kubernetes components: model cache, secrets, the vLLM server, its Service, multi-node Ray
topologies, the batch Job, the GPU quota, and the serving stack that ties them together.

Pure pod builders (:mod:`.pod`, :mod:`.ray_pods`) write the pod templates in the API's camelCase;
the component modules turn them into ``pulumi_kubernetes`` resources. They may import the pure core
(the stack schema, the engine, distributed serving, the plan), never render, review or the CLI.
"""

from __future__ import annotations

from typing import Any

import pulumi


def object_name(resource: Any) -> pulumi.Output[str]:
    """The ``metadata.name`` of a Kubernetes resource, as the API server reports it."""
    return resource.metadata.apply(lambda metadata: str(metadata.name))
