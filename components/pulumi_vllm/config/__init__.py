"""Stack configuration: a pydantic model of every ``pulumi-vllm:*`` key, validated before anything is created.

Keys are camelCase in ``Pulumi.<stack>.yaml`` (Pulumi's convention) and snake_case in Python.
Unknown keys are errors: a typo must never be silently ignored. :func:`load_stack_config` turns a
flat ``{"pulumi-vllm:key": "value"}`` map (what the Pulumi runtime hands a program) into a
:class:`StackConfig`, or raises :class:`ConfigError` with one message naming the key path, the value
given and what is accepted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

PROJECT = "pulumi-vllm"
"""Pulumi project name, and so the namespace of every stack config key."""

VLLM_VERSION = "0.32.0"
"""The vLLM release this project pins: the default image tag and the vLLM package its tests parse with."""

DEFAULT_IMAGE = f"vllm/vllm-openai:v{VLLM_VERSION}"

SECRET_KEYS = ("hfToken", "apiKey")
"""Top-level keys that hold secret values (set them with ``pulumi config set --secret``)."""

_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti|P|Pi|E|Ei)?$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_KEY = re.compile(r"^([a-z0-9.-]{1,253}/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")


class ConfigError(ValueError):
    """Invalid stack configuration; the message names the key, the value and what is accepted."""


class _Section(BaseModel):
    """Common settings: camelCase keys, unknown keys rejected, values validated on assignment."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


def _check_quantity(value: str | None, what: str) -> str | None:
    if value is not None and not _QUANTITY.match(str(value)):
        raise ValueError(f"{value!r} is not a Kubernetes quantity for {what} (e.g. 500m, 4, 16Gi)")
    return value


class ModelSpec(_Section):
    """Which model to serve."""

    id: str = Field(min_length=1)
    """Hugging Face model id (``org/name``) or an absolute path inside the container."""
    revision: str | None = None
    """Branch, tag or commit of the model repository (pin a commit for reproducible rollouts)."""
    served_model_name: str | None = None
    """Name clients use in the ``model`` field; defaults to the model id."""
    trust_remote_code: bool = False
    """Allow the model repository's own Python code to run (only for models you trust)."""
    facts: dict[str, Any] | None = None
    """Explicit architecture facts (ModelFacts fields), overriding config.json and the catalog."""
    config_json: str | None = None
    """Path on this machine to the model's ``config.json``, read for architecture facts."""

    @field_validator("id")
    @classmethod
    def _no_spaces(cls, value: str) -> str:
        if value.strip() != value or " " in value:
            raise ValueError(f"{value!r} is not a model id or path (no spaces allowed)")
        return value


class EngineSpec(_Section):
    """vLLM engine settings."""

    image: str = DEFAULT_IMAGE
    """Container image, pinned to a vLLM release tag or digest (never ``latest``)."""
    dtype: Literal["auto", "half", "float16", "bfloat16", "float", "float32"] = "auto"
    """Weight and activation dtype (vLLM's ``--dtype``)."""
    max_model_len: int | None = Field(default=None, gt=0)
    """Longest context (prompt + output) in tokens; defaults to the model's own limit."""
    gpu_memory_utilization: float = Field(default=0.9, gt=0, le=1)
    """Fraction of each GPU's memory vLLM may use (weights, activations and KV cache)."""
    kv_cache_dtype: Literal["auto", "fp8", "fp8_e4m3", "fp8_e5m2"] = "auto"
    """KV-cache dtype; fp8 roughly doubles the cache in tokens."""
    quantization: str | None = None
    """Weight quantization method passed as ``--quantization`` (e.g. fp8, awq); usually detected."""
    extra_args: list[str] = Field(default_factory=list)
    """Escape hatch: further ``vllm serve`` flags, appended verbatim."""
    env: dict[str, str] = Field(default_factory=dict)
    """Extra environment variables for the vLLM container (non-secret values only)."""

    @field_validator("image")
    @classmethod
    def _pinned(cls, value: str) -> str:
        if "@sha256:" in value:
            return value
        name, _, tag = value.rpartition(":")
        if not name or "/" in tag or not tag:
            raise ValueError(
                f"{value!r} has no tag; pin a vLLM release, e.g. {DEFAULT_IMAGE}"
            )
        if tag == "latest":
            raise ValueError(f"{value!r} uses 'latest'; pin a vLLM release, e.g. {DEFAULT_IMAGE}")
        return value

    @field_validator("extra_args")
    @classmethod
    def _flags(cls, value: list[str]) -> list[str]:
        managed = {"--host", "--port", "--api-key", "--model"}
        for arg in value:
            flag = arg.split("=", 1)[0]
            if flag in managed:
                raise ValueError(
                    f"{arg!r} is set by pulumi-vllm itself; use the matching config key instead"
                )
        return value

    @field_validator("env")
    @classmethod
    def _no_secret_env(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if name in {"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "VLLM_API_KEY"}:
                raise ValueError(
                    f"{name} must not be a plain value; set the hfToken / apiKey secret instead"
                )
        return value


class ParallelismSpec(_Section):
    """How the model is split across GPUs."""

    tensor_parallel_size: int = Field(default=1, ge=1)
    """GPUs one copy of the model is split across inside a node (``--tensor-parallel-size``)."""
    pipeline_parallel_size: int = Field(default=1, ge=1)
    """Pipeline stages across nodes (``--pipeline-parallel-size``)."""
    gpus_per_node: int | None = Field(default=None, ge=1)
    """GPUs on each GPU node of the cluster; bounds the GPUs of one pod."""
    gpus_per_pod: int | None = Field(default=None, ge=1)
    """GPUs each pod requests; defaults to the whole world size when it fits in a node."""
    backend: Literal["plain", "leaderworkerset", "kuberay"] = "plain"
    """Multi-node backend: plain StatefulSet, LeaderWorkerSet, or a KubeRay RayCluster."""
    ray_wait_timeout_seconds: int = Field(default=600, ge=30)
    """Multi-node: how long the Ray head waits for every pod to join (and a worker for the head) before
    its container fails with a message naming what is missing; counts against probes.startupTimeoutSeconds."""


class ResourcesSpec(_Section):
    """Compute resources and scheduling of the vLLM pods."""

    gpu_count: int | None = Field(default=None, ge=1)
    """GPUs per pod (same as parallelism.gpusPerPod); defaults to tensor x pipeline parallel size on one node."""
    gpu_resource_name: str = "nvidia.com/gpu"
    """Extended resource name of the GPUs (``amd.com/gpu`` for AMD)."""
    gpu_type: str | None = None
    """GPU model (e.g. H100-80GB, A100-40GB, L4) for the capacity planner; optional."""
    cpu_request: str = "4"
    memory_request: str = "32Gi"
    cpu_limit: str | None = None
    """CPU limit; unset by default so tokenization and scheduling are not throttled."""
    memory_limit: str | None = None
    """Memory limit; defaults to the request plus the shared-memory size."""
    shm_size: str | None = None
    """Size of the memory-backed /dev/shm; defaults to 2Gi per GPU (at least 2Gi)."""
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[dict[str, Any]] = Field(default_factory=list)
    """Pod tolerations in Kubernetes form (``key``, ``operator``, ``value``, ``effect``)."""
    runtime_class_name: str | None = None
    """RuntimeClass of the pods (e.g. ``nvidia`` when the GPU runtime is not the default)."""

    @field_validator("cpu_request", "memory_request", "cpu_limit", "memory_limit", "shm_size")
    @classmethod
    def _quantities(cls, value: str | None) -> str | None:
        return _check_quantity(value, "a resource")

    @field_validator("gpu_resource_name")
    @classmethod
    def _resource_name(cls, value: str) -> str:
        if not _LABEL_KEY.match(value) or "/" not in value:
            raise ValueError(f"{value!r} is not an extended resource name such as nvidia.com/gpu")
        return value

    @field_validator("tolerations")
    @classmethod
    def _tolerations(cls, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        allowed = {"key", "operator", "value", "effect", "tolerationSeconds"}
        for index, item in enumerate(value):
            unknown = set(item) - allowed
            if unknown:
                raise ValueError(
                    f"toleration {index} has unknown field(s) {sorted(unknown)}; accepted: {sorted(allowed)}"
                )
        return value


class CacheSpec(_Section):
    """The model cache: a PersistentVolumeClaim holding the Hugging Face cache."""

    size: str = "100Gi"
    """Requested capacity; room for the weights of every model this stack will serve."""
    storage_class: str | None = None
    """StorageClass; the cluster default when unset."""
    access_mode: Literal["ReadWriteOnce", "ReadWriteMany", "ReadWriteOncePod"] = "ReadWriteOnce"
    """ReadWriteMany lets replicas on several nodes share one cache."""
    existing_claim: str | None = None
    """Use this existing claim instead of creating one (nothing is created or deleted)."""
    protect: bool = False
    """Pulumi ``protect``: refuse to delete the claim at all until unset."""
    retain_on_delete: bool = True
    """Keep the claim (and its data) in the cluster when the stack is destroyed."""

    @field_validator("size")
    @classmethod
    def _size(cls, value: str) -> str:
        return _check_quantity(value, "the cache size") or value


class SecretRef(_Section):
    """A key of an existing Kubernetes Secret."""

    name: str
    key: str = "token"


class ProbesSpec(_Section):
    """Health checking of the vLLM server (all on ``/health``)."""

    startup_timeout_seconds: int = Field(default=1800, ge=60)
    """Time allowed for the first download and load of the model before the pod is restarted."""
    readiness_period_seconds: int = Field(default=5, ge=1)
    liveness_period_seconds: int = Field(default=10, ge=1)
    liveness_failure_threshold: int = Field(default=3, ge=1)


class ServiceSpec(_Section):
    """The Service in front of the vLLM pods."""

    port: int = Field(default=80, ge=1, le=65535)
    type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = "ClusterIP"


def _check_ip(value: str | None, hint: str) -> str | None:
    import ipaddress

    if value is not None:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address ({hint})") from None
    return value


class DockerHostSpec(_Section):
    """One Docker host: a machine with GPUs and a Docker engine (with the NVIDIA container toolkit)."""

    name: str
    """Short name of the host (a DNS label); names its containers and its Compose file."""
    docker_host: str = "unix:///var/run/docker.sock"
    """Docker daemon address: ``unix:///var/run/docker.sock`` on this machine, or ``ssh://user@host``."""
    address: str | None = None
    """IP address the other hosts reach this one at (Ray and NCCL traffic); required with several hosts."""
    gpus: Literal["all"] | list[str] = "all"
    """GPUs given to vLLM: ``all``, or a list of device indexes or UUIDs (e.g. ``["0", "1"]``)."""

    @field_validator("name")
    @classmethod
    def _host_name(cls, value: str) -> str:
        if len(value) > 63 or not _DNS_LABEL.match(value):
            raise ValueError(f"{value!r} is not a host name for pulumi-vllm (a DNS label, e.g. gpu-1)")
        return value

    @field_validator("docker_host")
    @classmethod
    def _daemon(cls, value: str) -> str:
        if not re.match(r"^(unix:///\S+|ssh://\S+)$", value):
            raise ValueError(f"{value!r} is not a Docker host; use unix:///var/run/docker.sock or ssh://user@host")
        return value

    @field_validator("address")
    @classmethod
    def _ip(cls, value: str | None) -> str | None:
        return _check_ip(value, "Ray and vLLM need the host's IP, not a name")

    @field_validator("gpus", mode="before")
    @classmethod
    def _gpu_ids(cls, value: Any) -> Any:
        # YAML reads `gpus: [0, 1]` as integers; device ids are strings to Docker.
        if isinstance(value, list):
            return [str(item) if isinstance(item, int) and not isinstance(item, bool) else item for item in value]
        return value

    @field_validator("gpus")
    @classmethod
    def _gpu_list(cls, value: Any) -> Any:
        if isinstance(value, list) and (not value or len(set(value)) != len(value)):
            raise ValueError(f"{value!r} is not a GPU list; give distinct device ids (e.g. ['0', '1']) or 'all'")
        return value


class DockerSpec(_Section):
    """The Docker target: the GPU hosts and how vLLM's containers run on them (``target: docker``)."""

    hosts: list[DockerHostSpec] = Field(min_length=1)
    """The hosts; one runs the server, several form a Ray cluster whose first host is the head."""
    cache_volume: str | None = None
    """Named volume holding the Hugging Face cache on each host (default ``<name>-hf-cache``)."""
    cache_host_path: str | None = None
    """Absolute host directory for the Hugging Face cache instead of a named volume."""
    publish_address: str = "127.0.0.1"
    """Host address the API port is published on; loopback by default, ``0.0.0.0`` for every interface."""
    port: int = Field(default=8000, ge=1, le=65535)
    """Host port of the OpenAI-compatible API."""
    ipc_host: bool = True
    """Share the host's IPC namespace (``--ipc=host``), as vLLM's Docker guide advises for tensor parallelism."""
    shm_size: str | None = None
    """Size of /dev/shm when ``ipcHost`` is false (a quantity such as 16Gi; default 2Gi per GPU)."""
    restart: Literal["no", "always", "on-failure", "unless-stopped"] = "unless-stopped"
    """Docker restart policy of the containers."""
    log_max_size: str = "100m"
    """json-file log rotation: size of one log file (``max-size``, e.g. 100m)."""
    log_max_file: int = Field(default=5, ge=1)
    """json-file log rotation: log files kept per container (``max-file``)."""
    ray_port: int = Field(default=6379, ge=1, le=65535)
    """Port of the Ray head (GCS) on the head host, with several hosts."""

    @field_validator("cache_volume")
    @classmethod
    def _volume_name(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$", value):
            raise ValueError(f"{value!r} is not a Docker volume name (letters, digits, '_', '.', '-')")
        return value

    @field_validator("cache_host_path")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise ValueError(f"{value!r} is not an absolute path on the host (e.g. /data/hf-cache)")
        return value

    @field_validator("publish_address")
    @classmethod
    def _publish_ip(cls, value: str) -> str:
        return _check_ip(value, "e.g. 127.0.0.1, or 0.0.0.0 for every interface") or value

    @field_validator("shm_size")
    @classmethod
    def _shm(cls, value: str | None) -> str | None:
        return _check_quantity(value, "the shared memory size")

    @field_validator("log_max_size")
    @classmethod
    def _log_size(cls, value: str) -> str:
        if not re.match(r"^[0-9]+[kmg]$", value):
            raise ValueError(f"{value!r} is not a json-file max-size; use a number with k, m or g (e.g. 100m)")
        return value

    @model_validator(mode="after")
    def _hosts(self) -> DockerSpec:
        names = [host.name for host in self.hosts]
        if len(set(names)) != len(names):
            raise ValueError(f"host names {names} repeat; give every host its own name")
        if self.cache_volume is not None and self.cache_host_path is not None:
            raise ValueError("set either cacheVolume or cacheHostPath, not both")
        if self.ipc_host and self.shm_size is not None:
            raise ValueError("shmSize applies only without host IPC; set ipcHost: false to use it")
        if len(self.hosts) > 1:
            missing = [host.name for host in self.hosts if host.address is None]
            if missing:
                raise ValueError(
                    f"hosts {missing} have no address; with several hosts each needs the IP the others reach it at"
                )
            addresses = [host.address for host in self.hosts]
            if len(set(addresses)) != len(addresses):
                raise ValueError(f"host addresses {addresses} repeat; every host needs its own IP")
        return self


class BatchSpec(_Section):
    """Offline batch inference as a Kubernetes Job (vLLM's ``run_batch``: OpenAI batch JSONL in and out)."""

    enabled: bool = False
    input_lines: list[dict[str, Any]] = Field(default_factory=list)
    """Small inputs inline: OpenAI batch request lines (``custom_id``, ``method``, ``url``, ``body``), kept in a ConfigMap."""
    input_path: str | None = None
    """Or a path inside the container to a JSONL file, e.g. on the model cache claim."""
    output_claim: str | None = None
    """Existing claim for the output (mounted at /batch/output); the model cache claim when unset."""
    output_file: str = "batch-output.jsonl"
    """File name of the output inside the output volume."""
    backoff_limit: int = Field(default=1, ge=0, le=10)
    """Retries of a failed run; low, since a failure is rarely transient and each retry reloads the model."""
    ttl_seconds_after_finished: int = Field(default=86400, ge=0)
    """Seconds a finished Job (and its logs) stays before Kubernetes deletes it."""
    active_deadline_seconds: int | None = Field(default=None, ge=60)
    """Hard limit on the Job's run time."""
    wait_for_completion: bool = False
    """Make ``pulumi up`` wait for the Job to finish (otherwise it returns once the Job is created)."""

    @model_validator(mode="after")
    def _one_input(self) -> BatchSpec:
        if self.enabled and bool(self.input_lines) == bool(self.input_path):
            raise ValueError("set exactly one of inputLines or inputPath")
        if "/" in self.output_file:
            raise ValueError(f"outputFile {self.output_file!r} must be a file name, not a path")
        return self


class CapacitySpec(_Section):
    """The capacity check at validation (needs ``resources.gpuType`` and known model facts)."""

    check: Literal["error", "warning", "off"] = "error"
    """``error``: a config that cannot fit fails validation; ``warning``: it is reported only."""
    min_concurrency: float = Field(default=1.0, ge=0)
    """Minimum predicted concurrency at maxModelLen below which the check reports."""


_INTERFACES = re.compile(r"^[\^=]?[A-Za-z0-9_.:@-]+(,[A-Za-z0-9_.:@-]+)*$")
_HCAS = re.compile(r"^[\^=]?[A-Za-z0-9_.-]+(:[0-9]+)?(,[A-Za-z0-9_.-]+(:[0-9]+)?)*$")


class NetworkSpec(_Section):
    """How the pods of a multi-node model talk to each other (NCCL, Gloo and, as an opt-in, InfiniBand).

    The defaults work on any cluster network: NCCL and Gloo pick an interface themselves and NCCL uses
    TCP sockets. Set the interface names when pods have several (e.g. a secondary RDMA network).
    """

    nccl_socket_ifname: str | None = None
    """Interfaces NCCL's socket transport may use (``NCCL_SOCKET_IFNAME``, e.g. ``eth0`` or ``^lo,docker``)."""
    gloo_socket_ifname: str | None = None
    """Interface of the Gloo (CPU) process group (``GLOO_SOCKET_IFNAME``); defaults to ncclSocketIfname."""
    infiniband: bool = False
    """Use InfiniBand/RoCE for NCCL: requests the RDMA resource on every pod and adds the IPC_LOCK capability."""
    ib_hca: str | None = None
    """HCAs NCCL may use over InfiniBand (``NCCL_IB_HCA``, e.g. ``mlx5_0,mlx5_1`` or ``=mlx5_0:1``); all when unset."""
    rdma_resource_name: str = "rdma/ib"
    """Extended resource that exposes the RDMA devices to a pod (set by your RDMA device plugin)."""
    rdma_resource_count: int = Field(default=1, ge=1)
    """How many of the RDMA resource each pod requests."""

    @field_validator("nccl_socket_ifname", "gloo_socket_ifname")
    @classmethod
    def _interfaces(cls, value: str | None) -> str | None:
        if value is not None and not _INTERFACES.match(value):
            raise ValueError(
                f"{value!r} is not an interface list (names or prefixes separated by commas, e.g. eth0 or ^lo,docker)"
            )
        return value

    @field_validator("ib_hca")
    @classmethod
    def _hcas(cls, value: str | None) -> str | None:
        if value is not None and not _HCAS.match(value):
            raise ValueError(f"{value!r} is not an HCA list (e.g. mlx5_0,mlx5_1 or =mlx5_0:1)")
        return value

    @field_validator("rdma_resource_name")
    @classmethod
    def _rdma_resource(cls, value: str) -> str:
        if not _LABEL_KEY.match(value) or "/" not in value:
            raise ValueError(f"{value!r} is not an extended resource name such as rdma/ib")
        return value

    @model_validator(mode="after")
    def _infiniband_opt_in(self) -> NetworkSpec:
        if self.ib_hca is not None and not self.infiniband:
            raise ValueError("ibHca selects InfiniBand adapters; set infiniband: true to use them")
        return self


class QuotaSpec(_Section):
    """A ResourceQuota on GPUs for the namespace, so the cluster enforces the ceiling outside Pulumi too."""

    enabled: bool = False
    gpus: int | None = Field(default=None, ge=0)
    """GPUs the namespace may request in total; defaults to what this stack requests."""


class StackConfig(_Section):
    """Every ``pulumi-vllm:*`` stack config key."""

    name: str = "vllm"
    """Base name of every object (Deployment, Service, claim); a DNS label."""
    target: Literal["kubernetes", "docker"] = "kubernetes"
    namespace: str = "default"
    model: ModelSpec
    engine: EngineSpec = Field(default_factory=EngineSpec)
    parallelism: ParallelismSpec = Field(default_factory=ParallelismSpec)
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    cache: CacheSpec = Field(default_factory=CacheSpec)
    probes: ProbesSpec = Field(default_factory=ProbesSpec)
    service: ServiceSpec = Field(default_factory=ServiceSpec)
    network: NetworkSpec = Field(default_factory=NetworkSpec)
    """Pod-to-pod networking of a multi-node model (NCCL/Gloo interfaces, InfiniBand opt-in)."""
    replicas: int = Field(default=1, ge=0)
    quota: QuotaSpec = Field(default_factory=QuotaSpec)
    """GPU ResourceQuota of the namespace (off by default: namespaces are often shared)."""
    capacity: CapacitySpec = Field(default_factory=CapacitySpec)
    """Capacity planning of the stack's layout (see ``pulumi-vllm size``)."""
    batch: BatchSpec = Field(default_factory=BatchSpec)
    """Offline batch inference Job (off by default)."""
    labels: dict[str, str] = Field(default_factory=lambda: {"app": "vllm", "tier": "backend"})
    """Extra labels on every object and pod: the usual ``app`` / ``tier`` labels of vLLM manifests."""
    hf_token: SecretStr | None = None
    """Hugging Face token (a Pulumi secret) for gated models; the value never reaches the state in plaintext."""
    hf_token_secret: SecretRef | None = None
    """Use this existing Secret for the Hugging Face token instead of ``hfToken``."""
    api_key: SecretStr | None = None
    """API key (a Pulumi secret); clients must send ``Authorization: Bearer <key>``."""
    docker: DockerSpec | None = None
    """Docker GPU hosts to run on when ``target`` is ``docker`` (see the README's Docker section)."""

    @field_validator("name", "namespace")
    @classmethod
    def _dns_label(cls, value: str) -> str:
        if len(value) > 63 or not _DNS_LABEL.match(value):
            raise ValueError(
                f"{value!r} is not a DNS label (lower-case letters, digits and '-', at most 63 characters)"
            )
        return value

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        for key, item in value.items():
            if not _LABEL_KEY.match(key):
                raise ValueError(f"label key {key!r} is not a valid Kubernetes label key")
            if not isinstance(item, str) or not _LABEL_VALUE.match(item) or len(item) > 63:
                raise ValueError(f"label {key}={item!r}: the value is not a valid Kubernetes label value")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> StackConfig:
        if self.hf_token is not None and self.hf_token_secret is not None:
            raise ValueError("set either hfToken or hfTokenSecret, not both")
        if (
            self.replicas > 1
            and self.cache.existing_claim is None
            and self.cache.access_mode != "ReadWriteMany"
        ):
            raise ValueError(
                f"replicas {self.replicas} cannot share a {self.cache.access_mode} model cache across "
                "nodes; set cache.accessMode to ReadWriteMany (or replicas to 1)"
            )
        return self

    @model_validator(mode="after")
    def _docker_target(self) -> StackConfig:
        if self.target != "docker":
            return self
        if self.docker is None:
            raise ValueError(
                "target 'docker' needs the docker section with at least one host, e.g. "
                "docker: {hosts: [{name: gpu-1, dockerHost: unix:///var/run/docker.sock}]}"
            )
        if self.hf_token_secret is not None:
            raise ValueError("hfTokenSecret names a Kubernetes Secret; on target 'docker' set the hfToken secret")
        if self.replicas != 1:
            raise ValueError(f"replicas {self.replicas}: target 'docker' runs one server per stack; use 1")
        return self


def _format_location(loc: tuple[Any, ...]) -> str:
    parts = [str(part) for part in loc]
    if not parts:
        return PROJECT
    top = parts[0]
    rest = "".join(f"[{part}]" if part.isdigit() else f".{part}" for part in parts[1:])
    return f"{PROJECT}:{top}{rest}"


def _lookup(data: Any, loc: tuple[Any, ...]) -> Any:
    for part in loc:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def format_validation_error(error: ValidationError, raw: Mapping[str, Any]) -> str:
    """One message per problem, each naming the key path, the value given and what is accepted."""
    lines = []
    for item in error.errors():
        loc = tuple(item["loc"])
        key = _format_location(loc)
        given = _lookup(raw, loc)
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            lines.append(f"{key}: unknown key (check the spelling; see the README's config table)")
        elif item["type"] == "missing":
            lines.append(f"{key}: required but not set")
        elif not loc or loc[-1] in SECRET_KEYS or isinstance(given, dict):
            # Whole-config rules and secrets: never echo values back (they may hold a token).
            lines.append(f"{key}: {message}")
        else:
            lines.append(f"{key}: {given!r} is not accepted: {message}")
    return "invalid stack configuration:\n  " + "\n  ".join(lines)


def parse_stack_config(raw: Mapping[str, Any]) -> StackConfig:
    """Validate already-decoded config (top-level keys without the project prefix)."""
    try:
        return StackConfig.model_validate(dict(raw))
    except ValidationError as error:
        raise ConfigError(format_validation_error(error, raw)) from None


def _decode(value: Any) -> Any:
    # The Pulumi runtime hands every value over as a string; objects and lists arrive as JSON.
    # Scalars stay strings: pydantic converts "2" or "true" where the field wants a number or bool.
    if isinstance(value, str) and value.strip()[:1] in "{[":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def load_stack_config(flat: Mapping[str, Any], secret_values: Mapping[str, str] | None = None) -> StackConfig:
    """Build a :class:`StackConfig` from ``{"pulumi-vllm:key": value}`` (other namespaces ignored).

    Secret keys keep their string value (a token that looks like a number stays a string).
    """
    prefix = f"{PROJECT}:"
    raw: dict[str, Any] = {}
    for full_key, value in flat.items():
        if not full_key.startswith(prefix):
            continue
        key = full_key[len(prefix):]
        raw[key] = value if key in SECRET_KEYS else _decode(value)
    for key, value in (secret_values or {}).items():
        raw[key] = value
    return parse_stack_config(raw)
