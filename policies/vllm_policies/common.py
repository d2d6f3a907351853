"""What every policy shares: plain resource properties, engine containers (vLLM and others), model facts, GPU types."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pulumi_policy import ResourceValidationArgs, StackValidationArgs
from pulumi_policy.proxy import UnknownValueError

from pulumi_vllm.capacity.gpus import GpuType, gpu_from_node_label
from pulumi_vllm.engine.workload import (
    EngineContainer,
    PodGroup,
    VllmContainer,
    Workload,
    engine_containers,
    read_workload,
    vllm_containers,
)
from pulumi_vllm.models.catalog import lookup
from pulumi_vllm.models.facts import ModelFacts
from pulumi_vllm.plan import FACTS_ANNOTATION_PREFIX

GPU_TYPE_ANNOTATION = f"{FACTS_ANNOTATION_PREFIX}gpu-type"
"""Workload (or pod template) annotation naming the GPU model, e.g. ``H100-80GB``."""

GPU_TYPE_LABELS = (
    "nvidia.com/gpu.product",
    "cloud.google.com/gke-accelerator",
    "node.kubernetes.io/instance-type",
    "karpenter.k8s.aws/instance-gpu-name",
)
"""Node labels whose values in a nodeSelector or required node affinity say which GPU a pod gets."""

# Annotation suffix -> ModelFacts field, as stamped by ServingPlan.facts_annotations().
FACT_ANNOTATIONS = {
    "num-hidden-layers": "num_hidden_layers",
    "num-attention-heads": "num_attention_heads",
    "num-key-value-heads": "num_key_value_heads",
    "head-dim": "head_dim",
    "hidden-size": "hidden_size",
    "vocab-size": "vocab_size",
    "use-mla": "use_mla",
}

UNKNOWN_MODEL_SCHEMA = {
    "type": "string",
    "enum": ["advisory", "mandatory"],
    "default": "advisory",
    "description": (
        "How to report a workload whose model has no known facts (not in the catalog, no "
        "vllm.pulumi.com/* annotations): 'advisory' (a warning whatever this policy's level) or "
        "'mandatory' (reported at this policy's level)."
    ),
}

Report = Callable[..., None]


def plain(value: Any) -> Any:
    """Policy SDK properties as plain dicts and lists; values unknown during a preview stay as their marker strings.

    The SDK wraps properties in proxies that raise on unknown values; walking the raw values instead
    lets a policy check everything that is known and treat the rest as opaque strings.
    """
    if isinstance(value, Mapping):
        try:
            raw = value["__target"]  # the SDK's proxies hand out their raw dict under this key
        except KeyError:
            raw = value
        return {key: plain(raw[key]) for key in raw}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        try:
            raw = value["__target"]  # type: ignore[call-overload]
        except (KeyError, TypeError, IndexError):
            raw = value
        return [plain(item) for item in raw]
    return value


def workload_of(resource_type: str, props: Any) -> Workload | None:
    """The workload a resource describes, or ``None``."""
    if not resource_type.startswith("kubernetes:"):
        return None
    return read_workload(resource_type, plain(props))


def resource_workload(args: ResourceValidationArgs) -> Workload | None:
    """The workload of a resource policy's resource, or ``None``."""
    return workload_of(args.resource_type, args.props)


def stack_workloads(args: StackValidationArgs) -> list[tuple[str, Workload]]:
    """``(urn, workload)`` for every workload of the stack."""
    found = []
    for resource in args.resources:
        workload = workload_of(resource.resource_type, resource.props)
        if workload is not None:
            found.append((resource.urn, workload))
    return found


def vllm_targets(args: ResourceValidationArgs) -> list[VllmContainer]:
    """The vLLM containers of a resource policy's resource (empty when it runs no vLLM)."""
    workload = resource_workload(args)
    return vllm_containers(workload) if workload is not None else []


def engine_targets(args: ResourceValidationArgs) -> list[EngineContainer]:
    """The serving-engine containers of a resource policy's resource, vLLM's and the other engines' alike."""
    workload = resource_workload(args)
    return engine_containers(workload) if workload is not None else []


def config_value(args: Any, key: str, default: Any) -> Any:
    """A policy config value (the engine fills schema defaults; direct calls may not)."""
    value = args.get_config().get(key) if args.get_config() else None
    return default if value is None else value


def annotations_of(target: VllmContainer) -> dict[str, str]:
    """Workload annotations, overridden by the pod template's."""
    merged = {**target.workload.annotations, **target.group.annotations}
    return {str(key): str(value) for key, value in merged.items()}


def _annotation_facts(annotations: Mapping[str, str]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for suffix, field in FACT_ANNOTATIONS.items():
        raw = annotations.get(FACTS_ANNOTATION_PREFIX + suffix)
        if raw is None:
            continue
        if field == "use_mla":
            fields[field] = raw.strip().lower() == "true"
        elif raw.strip().isdigit() and int(raw) > 0:
            fields[field] = int(raw)
    return fields


def model_facts(target: VllmContainer, command_index: int = 0) -> tuple[ModelFacts | None, str, str]:
    """``(facts, origin, model)``: the facts the rules use for a vLLM container.

    Annotations ``vllm.pulumi.com/<fact>`` on the workload or pod template come first (field by
    field), then the catalog entry of the served model (or of ``vllm.pulumi.com/model`` when the
    command names a path). ``origin`` says which.
    """
    return facts_for(target, target.commands.vllm[command_index].model)


def facts_for(target: VllmContainer, served: str | None) -> tuple[ModelFacts | None, str, str]:
    """``(facts, origin, model)`` for the model ``served`` by an engine of ``target`` (see :func:`model_facts`)."""
    annotations = annotations_of(target)
    model = served or annotations.get(f"{FACTS_ANNOTATION_PREFIX}model", "")
    fields = _annotation_facts(annotations)
    candidates = [name for name in (served, annotations.get(f"{FACTS_ANNOTATION_PREFIX}model")) if name]
    base = next((found for found in (lookup(name) for name in candidates) if found is not None), None)
    try:
        if base is not None:
            origin = "annotations and catalog" if fields else "catalog"
            return ModelFacts(**{**base.model_dump(), **fields}), origin, model
        return ModelFacts(**fields), "annotations", model
    except ValueError:  # incomplete or inconsistent annotations and no catalog entry
        return None, "", model


def node_selections(group: PodGroup) -> dict[str, set[str]]:
    """Node label -> values a pod may be placed on: its nodeSelector and required node affinity (``In``)."""
    spec = group.spec
    chosen: dict[str, set[str]] = {}
    for key, value in dict(spec.get("nodeSelector") or {}).items():
        chosen.setdefault(str(key), set()).add(str(value))
    affinity = ((spec.get("affinity") or {}).get("nodeAffinity") or {})
    required = affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    for term in required.get("nodeSelectorTerms") or []:
        for expression in (term or {}).get("matchExpressions") or []:
            if expression.get("operator") == "In":
                chosen.setdefault(str(expression.get("key")), set()).update(str(v) for v in expression.get("values") or [])
    return chosen


def gpu_types(workload: Workload, group: PodGroup) -> set[str]:
    """The GPU types a pod group may run on: the gpu-type annotation, else GPU node labels it selects."""
    return set(gpu_choices(workload, group))


def gpu_choices(workload: Workload, group: PodGroup) -> dict[str, GpuType | None]:
    """Each GPU type value a pod group may run on (annotation or node label value), with the
    catalog GPU it names (``None`` when the catalog does not know it)."""
    annotation = {**workload.annotations, **group.annotations}.get(GPU_TYPE_ANNOTATION)
    if annotation:
        return {str(annotation): gpu_from_node_label(GPU_TYPE_ANNOTATION, str(annotation))}
    selections = node_selections(group)
    return {
        value: gpu_from_node_label(label, value)
        for label in GPU_TYPE_LABELS for value in sorted(selections.get(label, set()))
    }


class CannotVerify(UnknownValueError):
    """Raised to report an advisory "cannot verify" message from a policy of any level.

    The SDK gives each policy one enforcement level for all its violations. The only diagnostic it
    emits at advisory level regardless is the one for values it cannot see during a preview, which
    is what an unknown model is to a rule: the engine shows it as an advisory violation of this
    policy, prefixed "can't run policy ...".
    """

    def __init__(self, messages: Sequence[str]) -> None:
        Exception.__init__(self, "; ".join(messages))
        self.unknown_type_sentinel = ""
        self.props: list[str] = []
        self.message = "; ".join(messages)


def report_unverifiable(args: Any, report: Report, messages: list[str]) -> None:
    """Report "cannot verify" messages: at the policy's level when ``unknownModel`` is mandatory, else advisory."""
    if not messages:
        return
    if config_value(args, "unknownModel", "advisory") == "mandatory":
        for message in messages:
            report(message)
        return
    raise CannotVerify(messages)
