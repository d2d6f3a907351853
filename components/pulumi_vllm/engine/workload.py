"""Read any Kubernetes workload: its pods, their GPUs, and the containers that run vLLM.

Pure functions over plain dicts in the API's camelCase: a manifest, or a Pulumi resource's inputs.
Nothing here knows how this package builds its own workloads, so a Deployment written after vLLM's
Kubernetes guide, a LeaderWorkerSet from its multi-node guide and a KubeRay RayCluster are read the
same way. The vLLM command itself is found and parsed by :mod:`pulumi_vllm.engine.commandline`; its public
names are importable from here too. The other engines' commands (TGI, TensorRT-LLM, Megatron-LM, MII,
llama.cpp, Ollama, Triton, and Ray Serve LLM in a KubeRay RayService) are read by
:mod:`pulumi_vllm.engine.other_engines` into the same neutral view as vLLM's (:func:`engine_containers`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pulumi_vllm.engine.commandline import (
    BATCH_MODULES,
    SERVE_MODULES,
    VLLM_IMAGE_REPOSITORIES,
    ContainerCommands,
    VllmCommand,
    _list,
    _mapping,
    canonical_flag,
    container_argv,
    container_commands,
    count,
    expand_kubernetes,
    find_commands,
    literal_env,
    split_script,
)
from pulumi_vllm.engine.other_engines import EngineCommand, engine_commands, ray_serve_commands

__all__ = [
    "BATCH_MODULES", "SERVE_MODULES", "VLLM_IMAGE_REPOSITORIES", "WORKLOAD_TYPES", "ContainerCommands", "EngineCommand",
    "EngineContainer", "PodGroup", "VllmCommand", "VllmContainer", "Workload", "canonical_flag", "container_argv",
    "container_commands", "container_gpus", "count", "engine_containers", "expand_kubernetes", "find_commands",
    "is_gpu_resource", "literal_env", "pod_gpus",
    "pulumi_type", "ray_roles", "read_workload", "split_script", "vllm_containers",
]

WORKLOAD_TYPES: dict[str, str] = {
    "kubernetes:apps/v1:Deployment": "Deployment",
    "kubernetes:apps/v1:StatefulSet": "StatefulSet",
    "kubernetes:apps/v1:ReplicaSet": "ReplicaSet",
    "kubernetes:batch/v1:Job": "Job",
    "kubernetes:batch/v1:CronJob": "CronJob",
    "kubernetes:core/v1:Pod": "Pod",
    "kubernetes:leaderworkerset.x-k8s.io/v1:LeaderWorkerSet": "LeaderWorkerSet",
    "kubernetes:ray.io/v1:RayCluster": "RayCluster",
    "kubernetes:ray.io/v1:RayService": "RayService",
}
"""Pulumi type tokens of the workloads that are read, and their Kubernetes kind."""


def pulumi_type(api_version: str, kind: str) -> str:
    """The Pulumi type token of a Kubernetes kind: ``("apps/v1", "Deployment")`` -> ``kubernetes:apps/v1:Deployment``."""
    group_version = api_version if "/" in api_version else f"core/{api_version}"
    return f"kubernetes:{group_version}:{kind}"


def is_gpu_resource(name: str) -> bool:
    """Whether an extended resource name counts GPUs: ``<vendor>/gpu`` (``nvidia.com/gpu``, ``amd.com/gpu``)."""
    vendor, slash, resource = name.partition("/")
    return bool(vendor) and bool(slash) and resource.startswith("gpu")


def container_gpus(container: Mapping[str, Any]) -> int | None:
    """GPUs one container asks for: its GPU limits, else its GPU requests (they must be equal when both are set)."""
    resources = _mapping(container.get("resources"))
    for section in ("limits", "requests"):
        values = {key: value for key, value in _mapping(resources.get(section)).items() if is_gpu_resource(key)}
        if values:
            counts = [count(value) for value in values.values()]
            return None if None in counts else sum(c for c in counts if c is not None)
    return 0


def pod_gpus(pod_spec: Mapping[str, Any]) -> int | None:
    """GPUs one pod holds: the sum over its containers, or its largest init container if larger (as the scheduler counts)."""
    main = [container_gpus(_mapping(c)) for c in _list(pod_spec.get("containers"))]
    init = [container_gpus(_mapping(c)) for c in _list(pod_spec.get("initContainers"))]
    if None in main or None in init:
        return None
    return max(sum(c for c in main if c), max((c for c in init if c), default=0))


@dataclass(frozen=True)
class PodGroup:
    """The pods of one pod template inside a workload."""

    role: str
    """``pod`` for plain workloads; ``leader``/``worker`` (LeaderWorkerSet); ``head``/``worker group <name>`` (RayCluster)."""
    pods: int | None
    """Pods of this template in one copy of the workload (``None``: not a number, e.g. unknown in a preview)."""
    spec: Mapping[str, Any]
    """The pod spec."""
    labels: Mapping[str, Any] = field(default_factory=dict)
    annotations: Mapping[str, Any] = field(default_factory=dict)
    max_pods: int | None = None
    """Most pods an autoscaler may run (RayCluster with in-tree autoscaling); ``None``: same as ``pods``."""
    claim_templates: tuple[str, ...] = ()
    """Names of a StatefulSet's volumeClaimTemplates (volumes backed by a claim per pod)."""

    @property
    def containers(self) -> list[Mapping[str, Any]]:
        """The app containers of the pod."""
        return [_mapping(c) for c in _list(self.spec.get("containers"))]

    @property
    def gpus_per_pod(self) -> int | None:
        """GPUs each pod of the group holds."""
        return pod_gpus(self.spec)


@dataclass(frozen=True)
class Workload:
    """A workload: its identity, how many copies run, and its pod groups."""

    kind: str
    name: str
    namespace: str
    replicas: int | None
    """Copies of the whole workload: Deployment/StatefulSet replicas, Job parallelism, LeaderWorkerSet groups."""
    groups: tuple[PodGroup, ...]
    labels: Mapping[str, Any] = field(default_factory=dict)
    annotations: Mapping[str, Any] = field(default_factory=dict)
    services: tuple[EngineCommand, ...] = ()
    """The engines a RayService's Serve config runs (Ray Serve LLM's ``llm_configs``)."""

    @property
    def multi_pod(self) -> bool:
        """Whether the pods of one copy form one model instance together (LeaderWorkerSet, RayCluster, RayService)."""
        return self.kind in ("LeaderWorkerSet", "RayCluster", "RayService")

    @property
    def label(self) -> str:
        """``Deployment vllm/llama-8b``: how messages name the workload."""
        return f"{self.kind} {self.namespace}/{self.name}"

    def gpus_per_copy(self, autoscaled: bool = False) -> int | None:
        """GPUs of one copy (one group for LeaderWorkerSet/RayCluster); ``autoscaled``: at the autoscaler's maximum."""
        total = 0
        for group in self.groups:
            pods = (group.max_pods or group.pods) if autoscaled else group.pods
            gpus = group.gpus_per_pod
            if pods is None or gpus is None:
                return None
            total += pods * gpus
        return total

    def total_gpus(self) -> int | None:
        """GPUs the workload requests at most: every pod of every copy (an autoscaled RayCluster at its maximum)."""
        per_copy = self.gpus_per_copy(autoscaled=True)
        if per_copy is None or self.replicas is None:
            return None
        return per_copy * self.replicas


def _template_group(role: str, pods: int | None, template: Any, claims: tuple[str, ...] = ()) -> PodGroup:
    template = _mapping(template)
    metadata = _mapping(template.get("metadata"))
    return PodGroup(
        role=role,
        pods=pods,
        spec=_mapping(template.get("spec")),
        labels=_mapping(metadata.get("labels")),
        annotations=_mapping(metadata.get("annotations")),
        claim_templates=claims,
    )


def _ray_groups(spec: Mapping[str, Any]) -> tuple[PodGroup, ...]:
    head = _template_group("head", 1, _mapping(spec.get("headGroupSpec")).get("template"))
    groups = [head]
    autoscaling = spec.get("enableInTreeAutoscaling") is True
    for index, worker in enumerate(_list(spec.get("workerGroupSpecs"))):
        worker = _mapping(worker)
        hosts = count(worker.get("numOfHosts"), 1)
        replicas = count(worker.get("replicas"), count(worker.get("minReplicas"), 1))
        maximum = count(worker.get("maxReplicas")) if autoscaling else None
        pods = None if hosts is None or replicas is None else hosts * replicas
        group = _template_group(f"worker group {worker.get('groupName') or index}", pods, worker.get("template"))
        max_pods = None if maximum is None or hosts is None else maximum * hosts
        groups.append(PodGroup(group.role, pods, group.spec, group.labels, group.annotations, max_pods))
    return tuple(groups)


def read_workload(resource_type: str, props: Mapping[str, Any]) -> Workload | None:
    """The workload described by a resource's inputs, or ``None`` when the type is not a workload."""
    kind = WORKLOAD_TYPES.get(resource_type)
    if kind is None:
        return None
    metadata = _mapping(props.get("metadata"))
    spec = _mapping(props.get("spec"))
    replicas: int | None = 1
    if kind in ("Deployment", "ReplicaSet", "StatefulSet"):
        claims = tuple(
            str(_mapping(_mapping(t).get("metadata")).get("name", "")) for t in _list(spec.get("volumeClaimTemplates"))
        )
        groups: tuple[PodGroup, ...] = (_template_group("pod", 1, spec.get("template"), claims),)
        replicas = count(spec.get("replicas"), 1)
    elif kind in ("Job", "CronJob"):
        job = _mapping(_mapping(spec.get("jobTemplate")).get("spec")) if kind == "CronJob" else spec
        groups = (_template_group("pod", 1, job.get("template")),)
        replicas = count(job.get("parallelism"), 1)
    elif kind == "Pod":
        groups = (_template_group("pod", 1, {"metadata": metadata, "spec": spec}),)
    elif kind == "LeaderWorkerSet":
        template = _mapping(spec.get("leaderWorkerTemplate"))
        size = count(template.get("size"), 1)
        worker = template.get("workerTemplate")
        groups = (_template_group("leader", 1, template.get("leaderTemplate") or worker),)
        if size is None or size > 1:
            groups += (_template_group("worker", None if size is None else size - 1, worker),)
        replicas = count(spec.get("replicas"), 1)
    elif kind == "RayService":
        groups = _ray_groups(_mapping(spec.get("rayClusterConfig")))
    else:
        groups = _ray_groups(spec)
    return Workload(
        kind=kind,
        name=str(metadata.get("name") or ""),
        namespace=str(metadata.get("namespace") or "default"),
        replicas=replicas,
        groups=groups,
        labels=_mapping(metadata.get("labels")),
        annotations=_mapping(metadata.get("annotations")),
        services=tuple(ray_serve_commands(spec.get("serveConfigV2"))) if kind == "RayService" else (),
    )


@dataclass(frozen=True)
class VllmContainer:
    """A container that runs vLLM, with the workload and pod group it belongs to."""

    workload: Workload
    group: PodGroup
    container: Mapping[str, Any]
    commands: ContainerCommands

    @property
    def name(self) -> str:
        """The container's name."""
        return str(self.container.get("name") or "")

    @property
    def label(self) -> str:
        """``Deployment vllm/llama-8b, container 'vllm'`` (the pod group is named for multi-pod workloads)."""
        role = "" if self.group.role == "pod" else f", {self.group.role}"
        return f"{self.workload.label}{role}, container '{self.name}'"


def vllm_containers(workload: Workload) -> list[VllmContainer]:
    """Every container of the workload that runs vLLM."""
    found: list[VllmContainer] = []
    for group in workload.groups:
        for container in group.containers:
            commands = container_commands(container, image_entrypoint=not _kuberay(workload))
            if commands.vllm:
                found.append(VllmContainer(workload, group, container, commands))
    return found


def _kuberay(workload: Workload) -> bool:
    # KubeRay replaces the entrypoint of its pods with `ray start`.
    return workload.kind in ("RayCluster", "RayService")


@dataclass(frozen=True)
class EngineContainer(VllmContainer):
    """A container that runs a serving engine (vLLM or another), with its commands in neutral terms.

    For a RayService the engines come from its Serve config: the container is the head's (whose image
    runs them), and ``where`` names the application and model.
    """

    engines: tuple[EngineCommand, ...] = ()
    where: str = ""

    @property
    def label(self) -> str:
        """As :attr:`VllmContainer.label`; for a RayService: ``RayService llm/qwen, application 'llms', model 'qwen'``."""
        return f"{self.workload.label}, {self.where}" if self.where else super().label


def engine_containers(workload: Workload) -> list[EngineContainer]:
    """Every container of the workload that runs a serving engine, and the engines of a RayService's Serve config."""
    found: list[EngineContainer] = []
    for group in workload.groups:
        for container in group.containers:
            engines = engine_commands(container, image_entrypoint_applies=not _kuberay(workload))
            if engines:
                gpus = container_gpus(container)
                commands = container_commands(container, image_entrypoint=not _kuberay(workload))
                found.append(EngineContainer(
                    workload, group, container, commands, tuple(e.with_visible_gpus(gpus) for e in engines)))
    head = next((g for g in workload.groups if g.role == "head"), None)
    if head is not None and head.containers:
        for service in workload.services:
            found.append(EngineContainer(
                workload, head, head.containers[0], ContainerCommands(), (service,), service.where))
    return found


def ray_roles(group: PodGroup) -> tuple[bool, bool]:
    """Whether the group's pods start a Ray head, and whether they join a Ray cluster as workers."""
    head = worker = False
    for container in group.containers:
        commands = container_commands(container)
        head = head or commands.ray_head
        worker = worker or commands.ray_worker
    return head, worker
