"""Pod settings vLLM (and the other engines the pack reads) depend on: shared memory, secrets, the model cache,
probes, images, service links."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from pulumi_vllm.engine.other_engines import EngineCommand, engine_commands
from pulumi_vllm.engine.workload import (
    EngineContainer,
    PodGroup,
    container_gpus,
    count,
    engine_containers,
    literal_env,
)
from vllm_policies.common import config_value, engine_targets, plain, resource_workload

SECRET_ENV_NAMES = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "VLLM_API_KEY", "LLAMA_API_KEY")
"""Environment variables that hold credentials and must come from a Secret."""


def _volume(group: PodGroup, name: str) -> Mapping[str, Any]:
    for volume in group.spec.get("volumes") or []:
        if volume.get("name") == name:
            return volume
    return {}


def _mount_for(container: Mapping[str, Any], path: str) -> Mapping[str, Any] | None:
    """The volume mount whose path holds ``path`` (the longest such mount path)."""
    best: Mapping[str, Any] | None = None
    for mount in container.get("volumeMounts") or []:
        mount_path = str(mount.get("mountPath", "")).rstrip("/") or "/"
        holds = path == mount_path or path.startswith(mount_path.rstrip("/") + "/")
        if holds and (best is None or len(mount_path) > len(str(best.get("mountPath", "")))):
            best = mount
    return best


def _has_memory_shm(group: PodGroup, container: Mapping[str, Any]) -> bool:
    mount = _mount_for(container, "/dev/shm")
    if mount is None or str(mount.get("mountPath")).rstrip("/") != "/dev/shm":
        return False
    return (_volume(group, str(mount.get("name"))).get("emptyDir") or {}).get("medium") == "Memory"


def validate_shm(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Tensor parallelism above 1 needs a memory-backed /dev/shm (or the host's IPC) in every GPU container."""
    workload = resource_workload(args)
    targets = engine_containers(workload) if workload is not None else []
    sizes = [command.tensor_parallel_size or 1 for target in targets for command in target.engines if command.tensor_flag]
    tensor = max(sizes, default=1)
    if workload is None or tensor <= 1:
        return
    # In a Ray group the GPUs (and NCCL) sit in every pod of the group, not only the one running vLLM.
    groups = list(workload.groups) if workload.multi_pod else list({id(t.group): t.group for t in targets}.values())
    for group in groups:
        if group.gpus_per_pod == 0 or group.spec.get("hostIPC") is True:
            continue
        for container in group.containers:
            if container_gpus(container) == 0 and not any(t.container is container for t in targets):
                continue
            if _has_memory_shm(group, container):
                continue
            role = "" if group.role == "pod" else f", {group.role}"
            report(
                f"{workload.label}{role}, container '{container.get('name', '')}': tensor parallel size {tensor} "
                "without a memory-backed /dev/shm. NCCL exchanges data through shared memory and the container "
                "default is 64Mi: mount an emptyDir with medium: Memory at /dev/shm (or set hostIPC: true)."
            )


shm_for_tensor_parallel = ResourceValidationPolicy(
    name="vllm-shm-for-tensor-parallel",
    description=(
        "vLLM (or TGI, TensorRT-LLM, Megatron-LM, MII, Ray Serve LLM) with tensor parallelism above 1 needs a large "
        "/dev/shm: mount an emptyDir with medium: Memory at /dev/shm in the engine's container, or run the pod with "
        "hostIPC: true."
    ),
    validate=validate_shm,
    enforcement_level=EnforcementLevel.MANDATORY,
)


def _all_containers(spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [c for key in ("initContainers", "containers") for c in spec.get(key) or []]


def _literal_api_key(argv_value: str | None) -> bool:
    # A value still holding "$" is a reference to a variable (from a Secret), not the key itself.
    return bool(argv_value) and "$" not in str(argv_value)


def validate_secrets(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Tokens and API keys come from Secrets: no literal env value, ConfigMap or --api-key argument."""
    if args.resource_type == "kubernetes:core/v1:ConfigMap":
        props = plain(args.props)
        data = props.get("data") or {}
        config_map = (props.get("metadata") or {}).get("name") or args.name
        for name in SECRET_ENV_NAMES:
            if name in data:
                report(f"ConfigMap {config_map} holds {name}: ConfigMaps are not secret; put it in a Secret.")
        return
    workload = resource_workload(args)
    if workload is None:
        return
    for group in workload.groups:
        for container in _all_containers(group.spec):
            where = f"{workload.label}, container '{container.get('name', '')}'"
            for item in container.get("env") or []:
                name = item.get("name")
                if name not in SECRET_ENV_NAMES:
                    continue
                if "value" in item:
                    report(f"{where}: {name} has a literal value; set it with valueFrom.secretKeyRef.")
                elif (item.get("valueFrom") or {}).get("configMapKeyRef"):
                    report(f"{where}: {name} comes from a ConfigMap; use valueFrom.secretKeyRef.")
            for command in engine_commands(container):
                flag = command.api_key_flag
                if flag is None or not _literal_api_key(command.value(flag)):
                    continue
                instead = "set VLLM_API_KEY from a Secret instead" if command.engine == "vllm" else (
                    f"pass {flag} $(VAR) with VAR set from a Secret instead")
                report(
                    f"{where}: {flag} is given literally on the command line (visible to anyone who can read "
                    f"the pod); {instead}."
                )


secrets_not_plaintext = ResourceValidationPolicy(
    name="vllm-secrets-not-plaintext",
    description=(
        "HF_TOKEN, HUGGING_FACE_HUB_TOKEN, VLLM_API_KEY, LLAMA_API_KEY and API key flags (--api-key, MII's "
        "--api-keys) must come from a Kubernetes Secret "
        "(env valueFrom.secretKeyRef), never a literal value, a ConfigMap or a command-line argument."
    ),
    validate=validate_secrets,
    enforcement_level=EnforcementLevel.MANDATORY,
)


def _cache_dir(container: Mapping[str, Any], command: EngineCommand) -> str:
    """Where the engine keeps downloaded models: the first of its cache variables set, else its default."""
    env = literal_env(container)
    chosen = next((env[name] for name in command.cache_env if env.get(name)), None)
    return posixpath.normpath(chosen or command.cache_default)


def _cache_name(command: EngineCommand) -> str:
    return "Hugging Face cache" if "HF_HOME" in command.cache_env else f"{command.title} model cache"


def _in_container(target: EngineContainer) -> list[EngineCommand]:
    return [command for command in target.engines if command.in_container]


def validate_model_cache(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """The Hugging Face cache lives on a PersistentVolumeClaim, so weights survive pod restarts."""
    for target in engine_targets(args):
        commands = _in_container(target)
        if all(command.model and command.model.startswith("/") for command in commands):
            continue  # weights loaded from a path (or the engine runs elsewhere): nothing is downloaded here
        path = _cache_dir(target.container, commands[0])
        cache = _cache_name(commands[0])
        mount = _mount_for(target.container, path)
        if mount is None:
            report(
                f"{target.label}: the {cache} ({path}) is on the container's own disk: every restart "
                "downloads the weights again. Mount a PersistentVolumeClaim there."
            )
            continue
        name = str(mount.get("name"))
        volume = _volume(target.group, name)
        if volume.get("persistentVolumeClaim") or name in target.group.claim_templates:
            continue
        kind = next((key for key in volume if key != "name"), "an unknown volume")
        if kind in ("emptyDir", "ephemeral") or not volume:
            report(
                f"{target.label}: the {cache} ({path}) is on a {kind} volume, lost with the pod: mount "
                "a PersistentVolumeClaim there."
            )


model_cache_persistent = ResourceValidationPolicy(
    name="vllm-model-cache-persistent",
    description=(
        "Keep the Hugging Face cache (HF_HOME, default /root/.cache/huggingface; TGI's /data), Ollama's models "
        "(/root/.ollama) or llama.cpp's LLAMA_CACHE on a PersistentVolumeClaim so a restarted pod does not download "
        "the weights again."
    ),
    validate=validate_model_cache,
    enforcement_level=EnforcementLevel.ADVISORY,
)


def validate_startup_probe(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """A vLLM server has a startup probe whose budget covers downloading and loading the model."""
    minimum = int(config_value(args, "minStartupSeconds", 600))
    for target in engine_targets(args):
        servers = [command for command in _in_container(target) if command.mode == "serve"]
        if not servers:
            continue
        probe = target.container.get("startupProbe")
        if not probe:
            health = servers[0].health_path
            on = f"on {health}" if health else "(a tcpSocket probe on the server's port)"
            report(
                f"{target.label}: no startupProbe. Loading a model takes minutes; without one the liveness probe "
                f"restarts {servers[0].title} before it is up. Add a startupProbe {on} allowing at least {minimum} s."
            )
            continue
        delay, period, failures = (
            count(probe.get(key), default)
            for key, default in (("initialDelaySeconds", 0), ("periodSeconds", 10), ("failureThreshold", 3))
        )
        if delay is None or period is None or failures is None:
            continue  # not known before the update
        budget = delay + period * failures
        if budget < minimum:
            report(
                f"{target.label}: the startupProbe allows {budget:g} s (initialDelaySeconds + periodSeconds x "
                f"failureThreshold), below minStartupSeconds {minimum}; raise failureThreshold."
            )


startup_probe = ResourceValidationPolicy(
    name="vllm-startup-probe",
    description=(
        "Give the vLLM server a startupProbe whose budget (initialDelaySeconds + periodSeconds x failureThreshold) "
        "covers downloading and loading the model."
    ),
    validate=validate_startup_probe,
    enforcement_level=EnforcementLevel.ADVISORY,
    config_schema=PolicyConfigSchema(
        properties={
            "minStartupSeconds": {
                "type": "integer", "minimum": 0, "default": 600,
                "description": "Smallest startup budget accepted, in seconds.",
            }
        }
    ),
)


def image_tag(image: str) -> str | None:
    """The tag of an image reference, ``None`` without one; a digest counts as pinned (returned as ``@digest``)."""
    if "@" in image:
        return "@" + image.split("@", 1)[1]
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def validate_image_pinned(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Engine images name a release tag or digest, never ``latest`` or nothing."""
    seen: set[int] = set()
    for target in engine_targets(args):
        if id(target.container) in seen:
            continue
        seen.add(id(target.container))
        image = str(target.container.get("image") or "")
        tag = image_tag(image)
        if tag is None or tag == "latest":
            problem = "no tag (so 'latest')" if tag is None else "'latest'"
            title = target.engines[0].title
            example = " (e.g. vllm/vllm-openai:v0.32.0)" if target.engines[0].engine == "vllm" else ""
            report(
                f"{target.label}: image {image} has {problem}: a restart may pull another {title} release. Pin a "
                f"release tag{example} or a digest."
            )


image_pinned = ResourceValidationPolicy(
    name="vllm-image-pinned",
    description="Pin the vLLM (or other engine's) image to a release tag or digest so every pod runs the same release.",
    validate=validate_image_pinned,
    enforcement_level=EnforcementLevel.ADVISORY,
)


def validate_service_links(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Pods running vLLM (or another engine) set enableServiceLinks: false."""
    seen: set[int] = set()
    for target in engine_targets(args):
        if id(target.group) in seen or target.group.spec.get("enableServiceLinks") is False:
            continue
        seen.add(id(target.group))
        if any(command.vllm_based for command in target.engines):
            why = ("A Service named 'vllm' in the namespace injects VLLM_PORT=tcp://... into the pod, which vLLM "
                   "reads as its own setting and fails on.")
        else:
            why = (f"Every Service in the namespace injects <NAME>_PORT=tcp://... variables into the pod, which can "
                   f"collide with the settings {target.engines[0].title} reads from its environment.")
        report(f"{target.label}: enableServiceLinks is not false. {why}")


service_links_disabled = ResourceValidationPolicy(
    name="vllm-service-links-disabled",
    description=(
        "Set enableServiceLinks: false on pods running vLLM (or another engine): Kubernetes' service environment "
        "variables (VLLM_PORT, ...) collide with vLLM's own VLLM_* settings."
    ),
    validate=validate_service_links,
    enforcement_level=EnforcementLevel.ADVISORY,
)
