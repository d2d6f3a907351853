"""Offline render: run a stack's Pulumi program under the mock runtime and write what it would create.

:mod:`.engine` runs the program with a recording mock monitor, :mod:`.manifests` writes one file per
Kubernetes object (secrets redacted), :mod:`.docker_files` the Docker target's files and Compose file,
:mod:`.checks` runs the policy pack and vLLM's parser over the result, :mod:`.summary` prints the
stack's summary. It sits above the components (it runs them) and below the command line
(:mod:`pulumi_vllm.cli.render`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# Writers of target-specific files beside the Kubernetes manifests (e.g. the Docker target's
# resource files and Compose file): each takes a ProgramRun and returns (filename, document) pairs.
extra_documents: list[Callable[[Any], list[tuple[str, Any]]]] = []
