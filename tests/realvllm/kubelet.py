"""Turn a rendered pod's container into a local process, doing what the kubelet would do.

From a stack rendered by ``render_config``/``render_stack``: the container's ``command`` + ``args``
(with Kubernetes' ``$(VAR)`` expansion), its environment (literal values as written,
``secretKeyRef`` entries read from the rendered Secret with the secret revealed, as the kubelet
reads the real Secret), its probe paths, and its volumes. Each volume becomes a local folder, and
paths under a mount point in the arguments and environment are moved under that folder; a
``configMap`` volume holds one file per key of the rendered ConfigMap. Nothing else changes, apart
from ``--port`` when the caller picks a free port.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pulumi_vllm.cli.render import RenderedStack
from pulumi_vllm.engine.workload import expand_kubernetes
from pulumi_vllm.render.engine import SECRET_SIG

PROBES = ("startupProbe", "readinessProbe", "livenessProbe")


def reveal(value: Any) -> Any:
    """A registration's wire value with every secret unwrapped (what the provider would send to the cluster)."""
    if isinstance(value, dict):
        if SECRET_SIG in value:
            return reveal(value.get("value"))
        return {key: reveal(item) for key, item in value.items()}
    if isinstance(value, list):
        return [reveal(item) for item in value]
    return value


def _registered(rendered: RenderedStack, resource_type: str) -> dict[tuple[str, str], dict[str, Any]]:
    """Objects of one type by (namespace, name), secrets revealed."""
    found = {}
    for registration in rendered.run.registrations:
        if registration.type == resource_type:
            inputs = reveal(registration.inputs)
            metadata = inputs.get("metadata") or {}
            found[(metadata.get("namespace") or "default", metadata["name"])] = inputs
    return found


def secret_value(rendered: RenderedStack, namespace: str, name: str, key: str) -> str:
    """One key of a rendered Secret, as a pod reading it would see it."""
    secret = _registered(rendered, "kubernetes:core/v1:Secret")[(namespace, name)]
    if key in (secret.get("stringData") or {}):
        return str(secret["stringData"][key])
    return base64.b64decode(secret["data"][key]).decode()


def workload_manifest(rendered: RenderedStack, kind: str) -> dict[str, Any]:
    """The one rendered object of ``kind`` (redacted, as written to files)."""
    found = [doc for _, doc in rendered.documents if isinstance(doc, dict) and doc.get("kind") == kind]
    assert len(found) == 1, f"expected one {kind}, the render has {len(found)}"
    return found[0]


@dataclass
class LocalContainer:
    """What a rendered container runs, mapped onto this machine."""

    argv: list[str]
    """``command`` + ``args``, paths under mount points moved to the volumes' local folders."""
    env: dict[str, str]
    """The container's environment, secrets resolved."""
    probe_paths: dict[str, str]
    """HTTP path of each probe (``startupProbe``, ``readinessProbe``, ``livenessProbe``) the container has."""
    container_port: int
    """The port the probes address (the named container port)."""
    volumes: dict[str, Path] = field(default_factory=dict)
    """Mount path in the container -> the local folder standing in for the volume."""

    def local_path(self, container_path: str) -> Path:
        """Where a path inside the container is on this machine."""
        return Path(_localize(container_path, self.volumes))

    def option(self, flag: str) -> str:
        """The value following ``flag`` in the command line."""
        return self.argv[self.argv.index(flag) + 1]


def _localize(text: str, volumes: Mapping[str, Path]) -> str:
    for mount_path, local in sorted(volumes.items(), key=lambda item: -len(item[0])):
        if text == mount_path or text.startswith(mount_path.rstrip("/") + "/"):
            return str(local) + text[len(mount_path.rstrip("/")) :]
    return text


def _volumes(rendered: RenderedStack, pod: Mapping[str, Any], container: Mapping[str, Any], root: Path,
             namespace: str) -> dict[str, Path]:
    config_maps = _registered(rendered, "kubernetes:core/v1:ConfigMap")
    by_name = {volume["name"]: volume for volume in pod.get("volumes") or []}
    mounted: dict[str, Path] = {}
    for mount in container.get("volumeMounts") or []:
        volume = by_name[mount["name"]]
        local = root / mount["name"]
        local.mkdir(parents=True, exist_ok=True)
        if "configMap" in volume:
            data = config_maps[(namespace, volume["configMap"]["name"])].get("data") or {}
            for key, content in data.items():
                (local / key).write_text(content)
        mounted[mount["mountPath"]] = local
    return mounted


def local_container(rendered: RenderedStack, kind: str, volumes_root: Path, port: int | None = None) -> LocalContainer:
    """The single container of the rendered ``kind`` (Deployment, Job, ...) as a local command.

    Args:
        rendered: the rendered stack.
        kind: the workload kind; the render must hold exactly one object of it.
        volumes_root: folder under which each mounted volume gets a folder of its own.
        port: a port to listen on instead of the rendered ``--port`` (the only argument changed).
    """
    manifest = workload_manifest(rendered, kind)
    namespace = manifest["metadata"].get("namespace") or "default"
    pod = manifest["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    volumes = _volumes(rendered, pod, container, volumes_root, namespace)

    env: dict[str, str] = {}
    for item in container.get("env") or []:
        if "value" in item:
            env[item["name"]] = _localize(str(item["value"]), volumes)
        elif item["valueFrom"].get("fieldRef", {}).get("fieldPath") == "status.podIP":
            env[item["name"]] = "127.0.0.1"  # the pod's own address, here loopback
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = secret_value(rendered, namespace, ref["name"], ref["key"])

    argv = [expand_kubernetes(str(word), env) for word in [*container.get("command", []), *container.get("args", [])]]
    argv = [_localize(word, volumes) for word in argv]
    ports = {item.get("name"): int(item["containerPort"]) for item in container.get("ports") or []}
    probe_paths = {name: container[name]["httpGet"]["path"] for name in PROBES if name in container}
    probe_ports = {container[name]["httpGet"]["port"] for name in PROBES if name in container}
    assert len(probe_ports) <= 1, f"probes address several ports: {probe_ports}"
    probe_port = next(iter(probe_ports), None)
    container_port = ports.get(probe_port, probe_port) if probe_port is not None else next(iter(ports.values()), 0)
    if port is not None:
        at = argv.index("--port")
        assert int(argv[at + 1]) == container_port, "the server listens on another port than the probes address"
        argv[at + 1] = str(port)
    return LocalContainer(argv, env, probe_paths, int(container_port), volumes)
