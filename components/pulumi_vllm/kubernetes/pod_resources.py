"""What a vLLM pod asks of its node, besides GPUs: CPU and memory sized for the model, and the GPU type it needs.

Pure functions of the serving plan; :mod:`pulumi_vllm.kubernetes.pod` puts them into every pod template
(Deployment, Ray head and workers, LeaderWorkerSet, RayCluster, batch Job).

**CPU.** vLLM's "CPU Resources for GPU Deployments" (docs/configuration/optimization.md, vLLM 0.20 and
later) counts at least ``2 + N`` busy processes for ``N`` GPUs (one API server doing HTTP, tokenization and
detokenization, one engine core running the scheduler's busy loop, one worker per GPU) and asks for
``2 + N`` physical cores, ``2 x (2 + N)`` vCPUs with hyperthreading. Kubernetes counts vCPUs, so a pod of
``N`` GPUs requests ``2 x (2 + N)`` CPUs (6 for one GPU, as the vLLM production-stack chart's tutorials
request with ``requestCPU: 6``).

**Memory.** Each of those processes holds Python, PyTorch and the CUDA host context (about
:data:`HOST_GIB_PER_PROCESS` each). Loading the weights reads the pod's share of the safetensors files
through host memory (vLLM memory-maps them; the page cache is charged to the pod's memory cgroup), so
the checkpoint share is added; so are the CPU offload buffers the command asks for
(``--cpu-offload-gb`` per GPU, ``--kv-offloading-size`` in total, LMCache's ``LMCACHE_MAX_LOCAL_CPU_SIZE``;
the production-stack chart's LMCache example grows ``requestMemory`` with its ``cpuOffloadingBufferSize``
the same way). Never less than :data:`MIN_MEMORY_GIB`, the production-stack chart's ``requestMemory``
of its tutorials. ``resources.cpuRequest`` and ``resources.memoryRequest`` replace the rule.

**On a known node type** (the cloud section's serving group, or a ``resources.nodeSelector`` on
``node.kubernetes.io/instance-type``), both defaults are capped at the pod's share of what the node allocates to
pods (:func:`~pulumi_vllm.cloud_plan.agreement.pod_share`: GPUs per pod / GPUs per node), so the pod is never Pending
for want of CPU or memory. :func:`node_fit_notes` says when the cap lowers what the model would want. Fewer CPUs
than vLLM's guidance slow tokenization and scheduling; less memory than the checkpoint share slows loading only:
the safetensors pages are clean page cache, which the kernel reclaims under the pod's memory limit and reads again,
so loading is slower, not refused. Less memory than the processes and offload buffers themselves need is another
matter (they are anonymous memory): the pod would be OOM-killed, and the note says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pulumi_vllm.capacity.accounting import GIB, resolve_weight_dtype
from pulumi_vllm.capacity.gpus import GKE_ACCELERATORS, GpuType, gpu_from_node_label, lookup_gpu
from pulumi_vllm.cloud_plan.agreement import NodeShare, pod_share
from pulumi_vllm.config.base import PROJECT
from pulumi_vllm.models.facts import ModelFacts

HOST_GIB_PER_PROCESS = 2.0
"""Host memory of one vLLM process (API server, engine core, each GPU worker): interpreter, PyTorch, CUDA context."""
MIN_MEMORY_GIB = 16
"""The smallest memory request: the vLLM production-stack chart tutorials' ``requestMemory: 16Gi``."""

GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
"""NVIDIA GPU feature discovery's label: the NVML device name, spaces as dashes (``NVIDIA-H100-80GB-HBM3``)."""
GKE_ACCELERATOR_LABEL = "cloud.google.com/gke-accelerator"
KARPENTER_GPU_NAME_LABEL = "karpenter.k8s.aws/instance-gpu-name"
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
GPU_TYPE_LABELS = (GPU_PRODUCT_LABEL, GKE_ACCELERATOR_LABEL, KARPENTER_GPU_NAME_LABEL, INSTANCE_TYPE_LABEL)
"""Node labels that say which GPU a node has; a node selector on one of them already pins the GPU type."""

# NVML names of other board versions of a catalog GPU (PCIe and NVL boards), as GPU feature discovery labels them.
_OTHER_PRODUCTS = (
    "NVIDIA-H100-PCIe", "NVIDIA-H100-NVL", "NVIDIA-A100-PCIE-40GB", "NVIDIA-A100-PCIE-80GB", "NVIDIA-A100-80GB-PCIe",
    "NVIDIA-H200-NVL",
)
_DISK_BYTES = {"fp8": 1.0, "int8": 1.0, "int4": 0.5 + 1 / 64, "fp4": 0.5 + 1 / 32}
"""Bytes per parameter of quantized checkpoints on disk (scales and zero points included, roughly)."""


@dataclass(frozen=True)
class ModelMemory:
    """What one pod of the model loads through host memory."""

    checkpoint_gib: float = 0.0
    """The pod's share of the checkpoint (GiB): all of it on one node, a pipeline stage's share across nodes."""
    offload_gib: float = 0.0
    """CPU offload buffers the command asks for in this pod (GiB)."""
    node: NodeShare | None = None
    """The pod's share of its node type, which caps the default requests; ``None``: no node type is known."""


def wanted_cpus(gpus: int) -> int:
    """vCPUs vLLM's guidance wants for a pod of ``gpus`` GPUs: ``2 x (2 + gpus)``."""
    return 2 * (2 + gpus)


def cpu_request(gpus: int, memory: ModelMemory | None = None) -> str:
    """CPUs for a vLLM pod of ``gpus`` GPUs: ``2 x (2 + gpus)`` vCPUs, at most the pod's share of its node."""
    wanted = wanted_cpus(gpus) * 1000
    share = memory.node if memory is not None and gpus else None
    milli = min(wanted, share.cpu_milli) if share is not None else wanted
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"


def wanted_memory_gib(gpus: int, memory: ModelMemory) -> int:
    """Memory (whole GiB) the rule of the module docstring wants for a pod of ``gpus`` GPUs loading ``memory``."""
    loaded = memory.checkpoint_gib if gpus else 0.0  # a pod without GPUs (a Ray Serve head) loads no weights
    total = HOST_GIB_PER_PROCESS * (2 + gpus) + loaded + memory.offload_gib
    return max(MIN_MEMORY_GIB, math.ceil(total))


def memory_request(gpus: int, memory: ModelMemory) -> str:
    """Memory for a vLLM pod of ``gpus`` GPUs loading ``memory`` (see the module docstring), in whole GiB, at most the
    pod's share of its node (in whole GiB, or MiB below 1 GiB)."""
    wanted = wanted_memory_gib(gpus, memory)
    share = memory.node if gpus else None
    if share is None or wanted * 1024 <= share.memory_mib:
        return f"{wanted}Gi"
    return f"{share.memory_mib // 1024}Gi" if share.memory_mib >= 1024 else f"{share.memory_mib}Mi"


def node_fit_notes(plan: Any) -> list[str]:
    """Warnings when the node type's share lowers the default CPU or memory request of ``plan``'s GPU pods below
    what the model would want (the module docstring says what each costs)."""
    memory = model_memory(plan)
    share, gpus = memory.node, plan.gpus_per_pod
    resources = plan.config.resources
    if share is None or not gpus:
        return []
    notes: list[str] = []
    where = f"{share.node_type} ({share.where})"
    if resources.cpu_request is None and wanted_cpus(gpus) * 1000 > share.cpu_milli:
        notes.append(
            f"{PROJECT}:resources.cpuRequest: the default is lowered from {wanted_cpus(gpus)} CPUs (vLLM's 2 + N cores "
            f"for N GPUs, in vCPUs) to {cpu_request(gpus, memory)}, the pod's share of {where}: the API server, "
            "engine core and GPU workers share fewer cores, so tokenization and scheduling may slow down under load; "
            "a larger node type gives them their own"
        )
    wanted = wanted_memory_gib(gpus, memory)
    if resources.memory_request is None and wanted * 1024 > share.memory_mib:
        given = memory_request(gpus, memory)
        processes = HOST_GIB_PER_PROCESS * (2 + gpus) + memory.offload_gib
        if processes * 1024 > share.memory_mib:
            notes.append(
                f"{PROJECT}:resources.memoryRequest: the default is lowered from {wanted}Gi to {given}, the pod's "
                f"share of {where}, below what the vLLM processes and CPU offload buffers hold themselves "
                f"({processes:.1f}Gi): the pod is likely to be OOM-killed; use a larger node type or less offload"
            )
        else:
            notes.append(
                f"{PROJECT}:resources.memoryRequest: the default is lowered from {wanted}Gi to {given}, the pod's "
                f"share of {where}, below the processes plus the pod's share of the checkpoint "
                f"({memory.checkpoint_gib:.1f}Gi): loading reads the safetensors through the page cache, which the "
                "kernel reclaims under the pod's limit, so the weights load more slowly but still load"
            )
    return notes


def checkpoint_gib(facts: ModelFacts | None, model_id: str = "", quantization: str | None = None) -> float:
    """Size of the model's checkpoint in GiB: its safetensors headers when read, else parameters x bytes on
    disk; 0 when the model's facts are unknown."""
    if facts is None:
        return 0.0
    if facts.checkpoint is not None and facts.checkpoint.total_bytes:
        return facts.checkpoint.total_bytes / GIB
    if not facts.num_parameters:
        return 0.0
    try:
        dtype = resolve_weight_dtype(facts, quantization, model_id)
    except ValueError:
        dtype = ""
    per_parameter = _DISK_BYTES.get(dtype, 4.0 if facts.torch_dtype in ("float32", "float") else 2.0)
    return facts.num_parameters * per_parameter / GIB


def _flag(args: Sequence[str], flag: str) -> float:
    """The number after ``flag`` (``--flag N`` or ``--flag=N``) in ``args``; 0 when absent or not a number."""
    for index, arg in enumerate(args):
        value: str | None = None
        if arg == flag and index + 1 < len(args):
            value = args[index + 1]
        elif arg.startswith(flag + "="):
            value = arg.split("=", 1)[1]
        if value is not None:
            try:
                return max(float(value), 0.0)
            except ValueError:
                return 0.0
    return 0.0


def offload_gib(extra_args: Sequence[str], env: Mapping[str, str], gpus: int) -> float:
    """Host memory the engine's CPU offload takes in one pod of ``gpus`` GPUs (GiB).

    ``--cpu-offload-gb`` is per GPU and ``--kv-offloading-size`` the total across the tensor parallel ranks
    (vLLM's help texts); LMCache's ``LMCACHE_MAX_LOCAL_CPU_SIZE`` is per process, one per GPU.
    """
    total = _flag(extra_args, "--cpu-offload-gb") * gpus + _flag(extra_args, "--kv-offloading-size")
    try:
        total += max(float(env.get("LMCACHE_MAX_LOCAL_CPU_SIZE", 0) or 0), 0.0) * gpus
    except ValueError:
        pass
    return total


def _maps_to(gpu: GpuType, key: str, value: str) -> bool:
    found = gpu_from_node_label(key, value)
    return found is not None and found.name == gpu.name


def gpu_node_terms(gpu_type: str) -> list[dict[str, Any]]:
    """Required node affinity terms (ORed) that admit only nodes with ``gpu_type``: GPU feature discovery's
    product label, and the labels GKE, Karpenter and the kubelet put on cloud GPU nodes; empty for a GPU no
    label names (a ``custom:`` size, or an AMD GPU).

    Every value maps back to ``gpu_type`` through :func:`~pulumi_vllm.capacity.gpus.gpu_from_node_label`, the
    reading the policy pack and the capacity planner use.
    """
    from pulumi_vllm.cloud_plan.instances import INSTANCES

    try:
        gpu = lookup_gpu(gpu_type)
    except ValueError:
        return []
    if gpu.resource != "nvidia.com/gpu" or not gpu.device_name:
        return []
    # Karpenter provisions for the first term it can satisfy (aws/karpenter-provider-aws#3569): its own label goes
    # first; GPU feature discovery labels a node only once it runs, so its term comes last. The kube-scheduler ORs
    # the terms whatever their order.
    candidates: dict[str, list[str]] = {
        # Karpenter's lower-case GPU names (h100, l40s, l4, a10g); A100s are told apart by instance type only.
        KARPENTER_GPU_NAME_LABEL: [gpu.name.lower().split("-")[0]],
        GKE_ACCELERATOR_LABEL: [
            *GKE_ACCELERATORS, *(row.accelerator for row in INSTANCES.values() if row.accelerator),
        ],
        INSTANCE_TYPE_LABEL: sorted(row.name for row in INSTANCES.values() if row.gpu == gpu.name),
        GPU_PRODUCT_LABEL: [gpu.device_name.replace(" ", "-"), *_OTHER_PRODUCTS],
    }
    terms = []
    for key, values in candidates.items():
        kept = sorted({value for value in values if _maps_to(gpu, key, value)})
        if kept:
            terms.append({"matchExpressions": [{"key": key, "operator": "In", "values": kept}]})
    return terms


def gpu_node_affinity(
    gpu_type: str | None, node_selector: Mapping[str, str], gpus: int, pin: bool = True
) -> dict[str, Any] | None:
    """The pod's ``affinity`` pinning it to nodes of ``gpu_type``, or ``None``: not asked (``pin`` false), no
    GPU type, a pod without GPUs, or a node selector that already names the GPU (the cloud section's
    instance type, for example)."""
    if not pin or not gpu_type or not gpus or any(key in node_selector for key in GPU_TYPE_LABELS):
        return None
    terms = gpu_node_terms(gpu_type)
    if not terms:
        return None
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}}


def model_memory(plan: Any) -> ModelMemory:
    """What each GPU pod of ``plan`` (a :class:`~pulumi_vllm.plan.ServingPlan`) loads through host memory: its
    share of the checkpoint (the pods of a replica split the layers), the CPU offload its flags ask for, and its
    share of the node type it runs on."""
    config = plan.config
    total = checkpoint_gib(plan.facts, config.model.id, config.engine.quantization)
    return ModelMemory(
        checkpoint_gib=total / max(plan.pods_per_replica, 1),
        offload_gib=offload_gib(config.engine.extra_args, config.engine.env, plan.gpus_per_pod),
        node=pod_share(config, plan.gpus_per_pod) if config.target == "kubernetes" else None,
    )
