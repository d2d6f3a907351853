"""GPU policies over the whole stack: GPUs versus parallelism (Ray groups included), and GPU quotas."""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)

from pulumi_vllm.capacity.gpus import lookup_gpu
from pulumi_vllm.engine.workload import (
    EngineCommand,
    Workload,
    count,
    engine_containers,
    is_gpu_resource,
    ray_roles,
    vllm_containers,
)
from vllm_policies.common import config_value, gpu_choices, plain, stack_workloads

PAIRING_LABELS = ("app.kubernetes.io/instance", "app.kubernetes.io/part-of", "app")
"""Pod labels that tie Ray worker pods to their head: the first of these the head's pods carry must match."""


def _pairing(labels: Any) -> tuple[str, str] | None:
    for key in PAIRING_LABELS:
        if key in labels:
            return key, str(labels[key])
    return None


def _ray_workers(head: Workload, workloads: list[tuple[str, Workload]]) -> list[Workload]:
    """Workloads in the head's namespace whose pods join a Ray cluster, run no vLLM and carry the head's pairing label."""
    head_group = next((g for g in head.groups if ray_roles(g)[0]), head.groups[0])
    pairing = _pairing(head_group.labels)
    if pairing is None:
        return []
    key, value = pairing
    found = []
    for _, other in workloads:
        if other is head or other.namespace != head.namespace or vllm_containers(other):
            continue
        if any(ray_roles(group)[1] and str(group.labels.get(key)) == value for group in other.groups):
            found.append(other)
    return found


def _check_group(workload: Workload, workloads: list[tuple[str, Workload]]) -> list[str]:
    problems: list[str] = []
    for target in engine_containers(workload):
        for command in target.engines:
            problems += _conflicting_flags(target.label, command)
            is_head = target.commands.ray_head
            world = command.world_size(workload.multi_pod or is_head)
            if world is None:
                continue
            problems += _launcher_problems(target.label, command, world)
            if workload.multi_pod:
                gpus, what = workload.gpus_per_copy(), f"the {workload.kind} group's pods"
                pods = [(g.role, g.gpus_per_pod) for g in workload.groups if g.gpus_per_pod]
            elif is_head and (workers := _ray_workers(workload, workloads)):
                gpus = target.group.gpus_per_pod
                pods = [(target.group.role, gpus)]
                for worker in workers:
                    worker_gpus = worker.total_gpus()
                    gpus = None if gpus is None or worker_gpus is None else gpus + worker_gpus
                    pods += [(worker.label, g.gpus_per_pod) for g in worker.groups if g.gpus_per_pod]
                names = ", ".join(worker.label for worker in workers)
                what = f"the Ray head pod and its workers ({names})"
            else:
                gpus, what, pods = target.group.gpus_per_pod, "each pod", []
            if gpus is None:
                continue
            if gpus != world:
                problems.append(
                    f"{target.label}: {what} request {gpus} GPU(s), but {command.layout()} needs "
                    f"{world}. Request {world} GPU(s) in total, or change the parallel sizes."
                )
            tensor = command.tensor_parallel_size or 1
            for role, pod_gpus in pods:
                if pod_gpus and pod_gpus % tensor:
                    problems.append(
                        f"{target.label}: {role} pods hold {pod_gpus} GPU(s), not a multiple of tensor parallel "
                        f"size {tensor}: a tensor-parallel group must not span pods."
                    )
    return problems


def _conflicting_flags(label: str, command: EngineCommand) -> list[str]:
    """A vLLM flag given twice with different values: vLLM keeps the last, whatever the pod was sized for."""
    if command.vllm is None:
        return []
    return [
        f"{label}: {flag} is given {len(values)} times ({', '.join(repr(value) for value in values)}): vLLM keeps the "
        f"last ({values[-1]!r}); give it once, with the value the pod is sized for."
        for flag, values in command.vllm.conflicting_flags.items()
    ]


def _launcher_problems(label: str, command: EngineCommand, world: int) -> list[str]:
    """A launcher (torchrun) must start one process per GPU the parallel sizes use."""
    if command.launcher is None or command.processes is None or command.processes == world:
        return []
    message = (
        f"{label}: {command.launcher} starts {command.processes} process(es), but {command.layout()} use "
        f"{world}: {command.title} needs one process per GPU. Set them to the same number."
    )
    return [message]


def validate_gpus_match_parallelism(args: StackValidationArgs, report: ReportViolation) -> None:
    """Every serving workload (vLLM or another engine with parallel sizes) requests exactly the GPUs they use."""
    workloads = stack_workloads(args)
    for urn, workload in workloads:
        for problem in _check_group(workload, workloads):
            report(problem, urn)


gpus_match_parallelism = StackValidationPolicy(
    name="vllm-gpus-match-parallelism",
    description=(
        "A vLLM pod must request as many GPUs as tensor x pipeline (x data) parallel size; across a Ray "
        "group (LeaderWorkerSet, RayCluster, or a head plus worker StatefulSet sharing the "
        "app.kubernetes.io/instance label) the pods together must: fewer GPUs fail at start-up, more sit idle. "
        "TGI (--num-shard), TensorRT-LLM, Megatron-LM (and its torchrun --nproc-per-node) and MII likewise."
    ),
    validate=validate_gpus_match_parallelism,
    enforcement_level=EnforcementLevel.MANDATORY,
)


def canonical_gpu_type(name: str) -> str:
    """A GPU type as the catalog names it (``NVIDIA-H100-80GB-HBM3`` -> ``H100-80GB``), else lower-cased."""
    try:
        return lookup_gpu(name).name
    except ValueError:
        return re.sub(r"^nvidia[-_ ]*", "", name.strip().lower())


def _gpu_counts(workload: Workload) -> dict[str, int]:
    """GPUs the workload requests at most, by extended resource name (unknown counts left out)."""
    counts: dict[str, int] = defaultdict(int)
    copies = workload.replicas or 0
    for group in workload.groups:
        pods = (group.max_pods or group.pods or 0) * copies
        for container in group.containers:
            limits = {**dict(container.get("resources", {}).get("requests") or {}),
                      **dict(container.get("resources", {}).get("limits") or {})}
            for key, value in limits.items():
                if is_gpu_resource(key):
                    counts[key] += (count(value) or 0) * pods
    return dict(counts)


def _quota_limits(args: StackValidationArgs) -> list[tuple[str, str, str, int]]:
    """``(urn, namespace, gpu resource, hard limit)`` of every unscoped ResourceQuota in the stack."""
    quotas = []
    for resource in args.resources:
        if resource.resource_type != "kubernetes:core/v1:ResourceQuota":
            continue
        props = plain(resource.props)
        spec = props.get("spec") or {}
        if spec.get("scopes") or spec.get("scopeSelector"):
            continue  # scoped quotas count only some pods; not evaluated here
        namespace = (props.get("metadata") or {}).get("namespace") or "default"
        for key, value in (spec.get("hard") or {}).items():
            limit = count(value)
            if key.startswith("requests.") and is_gpu_resource(key[len("requests."):]) and limit is not None:
                quotas.append((resource.urn, namespace, key[len("requests."):], limit))
    return quotas


def validate_gpu_quota(args: StackValidationArgs, report: ReportViolation) -> None:
    """The stack's GPUs within the configured limits, the allowed GPU types, and its own ResourceQuotas."""
    workloads = [(urn, w, _gpu_counts(w)) for urn, w in stack_workloads(args)]
    workloads = [(urn, w, counts) for urn, w, counts in workloads if sum(counts.values())]
    per_workload = config_value(args, "maxGpusPerWorkload", None)
    per_namespace: dict[str, Any] = config_value(args, "maxGpusPerNamespace", {}) or {}
    per_stack = config_value(args, "maxGpusPerStack", None)
    allowed = [str(name) for name in config_value(args, "allowedGpuTypes", None) or []]
    namespaces: dict[str, int] = defaultdict(int)
    by_resource: dict[tuple[str, str], int] = defaultdict(int)
    for urn, workload, counts in workloads:
        total = sum(counts.values())
        namespaces[workload.namespace] += total
        for name, gpus in counts.items():
            by_resource[(workload.namespace, name)] += gpus
        if per_workload is not None and total > per_workload:
            report(f"{workload.label} requests {total} GPU(s); maxGpusPerWorkload is {int(per_workload)}.", urn)
        if allowed:
            accepted = {canonical_gpu_type(name) for name in allowed}
            for group in workload.groups:
                if not group.gpus_per_pod:
                    continue
                choices = gpu_choices(workload, group)
                types = set(choices)
                role = "" if group.role == "pod" else f" ({group.role})"
                if not types:
                    report(
                        f"{workload.label}{role} requests GPUs without selecting a GPU type; allowedGpuTypes is "
                        f"{', '.join(allowed)}. Add a nodeSelector on nvidia.com/gpu.product (or another GPU "
                        "node label) or a vllm.pulumi.com/gpu-type annotation.",
                        urn,
                    )
                elif not all(
                    canonical_gpu_type(t) in accepted or (gpu is not None and gpu.name in accepted)
                    for t, gpu in choices.items()
                ):
                    report(
                        f"{workload.label}{role} may run on {', '.join(sorted(types))}; allowedGpuTypes is "
                        f"{', '.join(allowed)}.",
                        urn,
                    )
    for namespace, total in sorted(namespaces.items()):
        limit = per_namespace.get(namespace)
        if limit is not None and total > limit:
            report(f"namespace {namespace} gets {total} GPU(s) from this stack; maxGpusPerNamespace allows {int(limit)}.")
    stack_total = sum(namespaces.values())
    if per_stack is not None and stack_total > per_stack:
        parts = ", ".join(f"{w.label}: {sum(c.values())}" for _, w, c in workloads)
        report(f"the stack requests {stack_total} GPU(s) ({parts}); maxGpusPerStack is {int(per_stack)}.")
    for urn, namespace, name, limit in _quota_limits(args):
        wanted = by_resource.get((namespace, name), 0)
        if wanted > limit:
            report(
                f"the stack's workloads request {wanted} {name} in namespace {namespace}, above its "
                f"ResourceQuota (requests.{name}: {limit}): pods beyond the quota are refused.",
                urn,
            )


gpu_quota = StackValidationPolicy(
    name="vllm-gpu-quota",
    description=(
        "GPUs requested by the stack (GPU limit x pods, Ray and LeaderWorkerSet groups counted) must stay within "
        "the configured maxGpusPerStack, maxGpusPerNamespace and maxGpusPerWorkload, on allowedGpuTypes only, "
        "and within the stack's own GPU ResourceQuotas."
    ),
    validate=validate_gpu_quota,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=PolicyConfigSchema(
        properties={
            "maxGpusPerStack": {
                "type": "integer", "minimum": 0,
                "description": "Most GPUs all workloads of the stack may request together (unset: no limit).",
            },
            "maxGpusPerNamespace": {
                "type": "object", "additionalProperties": {"type": "integer", "minimum": 0},
                "description": "Namespace -> most GPUs the stack's workloads in it may request (unset: no limit).",
            },
            "maxGpusPerWorkload": {
                "type": "integer", "minimum": 0,
                "description": "Most GPUs one workload may request, all its replicas and group pods counted.",
            },
            "allowedGpuTypes": {
                "type": "array", "items": {"type": "string"},
                "description": (
                    "GPU types workloads may select (catalog names such as H100-80GB, or node label values "
                    "such as an instance type); unset: any. A GPU workload that selects none is reported."
                ),
            },
        }
    ),
)
