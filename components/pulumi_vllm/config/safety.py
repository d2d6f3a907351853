"""The sections about running the serving safely: ``availability``, ``networkPolicy``, ``warmup``,
``security`` and ``loadTest``.

Each section validates only its own keys; the rules that need the rest of the stack (replicas, the
model id, InfiniBand, a multi-node layout) are in :mod:`pulumi_vllm.kubernetes.safety`, run before
anything is created.
"""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, field_validator, model_validator

from pulumi_vllm.config.base import (
    _DNS_LABEL,
    _LABEL_KEY,
    _LABEL_VALUE,
    _check_quantity,
    _Section,
)

PLATFORM_PRIORITY_CLASS = "vllm-inference"
"""The PriorityClass the GPU platform (``cluster`` section) creates for serving pods."""

SHUTDOWN_MARGIN_SECONDS = 5
"""Added to the pre-stop pause and vLLM's drain time in the default grace period (the exit itself)."""


class AvailabilitySpec(_Section):
    """Staying up through node drains, rollouts and node failures."""

    pod_disruption_budget: bool | None = None
    """A PodDisruptionBudget on the serving pods; unset: on whenever more than one replica serves."""
    max_unavailable: int = Field(default=1, ge=1)
    """Serving pods a voluntary disruption (a drain, a cluster upgrade) may take down at once."""
    spread_across_nodes: bool = True
    """Spread the replicas over nodes (``kubernetes.io/hostname``). On even for one replica, where it constrains
    nothing: the pod template then stays the same when replicas change (by hand or by the autoscaler), and a
    changed template would restart every pod."""
    spread_across_zones: bool = False
    """Also spread the replicas over zones (``topology.kubernetes.io/zone``); single-node replicas only."""
    when_unsatisfiable: Literal["ScheduleAnyway", "DoNotSchedule"] = "ScheduleAnyway"
    """``ScheduleAnyway`` prefers spreading but still schedules when GPUs sit on few nodes."""
    priority_class_name: str | None = None
    """PriorityClass of the serving pods, e.g. ``vllm-inference``, which the GPU platform creates."""
    pre_stop_sleep_seconds: int = Field(default=10, ge=0, le=600)
    """Pause before vLLM is stopped, so the Service's endpoints drop the pod before it stops accepting."""
    drain_seconds: int = Field(default=45, ge=0, le=3600)
    """Time vLLM gets after SIGTERM to finish in-flight requests (``--shutdown-timeout``); 0 aborts them."""
    termination_grace_period_seconds: int | None = Field(default=None, ge=1)
    """Pod grace period; unset: the pre-stop pause plus drainSeconds plus 5 s. Must cover both."""

    @field_validator("priority_class_name")
    @classmethod
    def _priority_class(cls, value: str | None) -> str | None:
        if value is not None and (len(value) > 253 or not _DNS_LABEL.match(value.replace(".", "-"))):
            raise ValueError(f"{value!r} is not a PriorityClass name (lower-case letters, digits, '-' and '.')")
        return value

    @model_validator(mode="after")
    def _grace_covers_the_stop(self) -> AvailabilitySpec:
        needed = self.pre_stop_sleep_seconds + self.drain_seconds
        if self.termination_grace_period_seconds is not None and self.termination_grace_period_seconds <= needed:
            raise ValueError(
                f"terminationGracePeriodSeconds {self.termination_grace_period_seconds} does not cover the "
                f"pre-stop pause ({self.pre_stop_sleep_seconds} s) plus drainSeconds ({self.drain_seconds} s): "
                f"the pod would be killed mid-request; use more than {needed}, or leave it unset"
            )
        return self

    def grace_period_seconds(self) -> int:
        """The pod's ``terminationGracePeriodSeconds``: the pause, the drain and a margin for the exit."""
        if self.termination_grace_period_seconds is not None:
            return self.termination_grace_period_seconds
        return self.pre_stop_sleep_seconds + self.drain_seconds + SHUTDOWN_MARGIN_SECONDS


class PodSelector(_Section):
    """Pods of the serving's own namespace, by labels."""

    match_labels: dict[str, str] = Field(min_length=1)

    @field_validator("match_labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        for key, item in value.items():
            if not _LABEL_KEY.match(key) or not _LABEL_VALUE.match(item) or len(item) > 63:
                raise ValueError(f"{key}={item!r} is not a valid Kubernetes label")
        return value


class EgressRule(_Section):
    """Destinations the serving pods may reach when egress is restricted."""

    cidr: str
    """An address block, e.g. ``10.0.0.0/8`` (the Hub for a server that downloads, a proxy, ...)."""
    ports: list[int] = Field(default_factory=list)
    """TCP ports; empty: every port."""

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, value: str) -> str:
        try:
            ipaddress.ip_network(value, strict=True)
        except ValueError:
            raise ValueError(f"{value!r} is not an address block such as 10.0.0.0/8") from None
        return value

    @field_validator("ports")
    @classmethod
    def _ports(cls, value: list[int]) -> list[int]:
        for port in value:
            if not 1 <= port <= 65535:
                raise ValueError(f"port {port} is not in 1-65535")
        return value


class NetworkPolicySpec(_Section):
    """NetworkPolicies around the serving pods (off by default: they need a CNI that enforces them)."""

    enabled: bool = False
    allow_from_namespaces: list[str] = Field(default_factory=list)
    """Namespaces whose pods may call the API port (a router, the applications)."""
    allow_from_pods: list[PodSelector] = Field(default_factory=list)
    """Pods of the serving's own namespace that may call the API port."""
    monitoring_namespace: str | None = "monitoring"
    """Namespace of Prometheus, which scrapes ``/metrics`` on the API port; null: none."""
    egress: list[EgressRule] | None = None
    """Unset: egress is not restricted. A list: only these destinations, DNS and the Ray group's own pods."""

    @field_validator("allow_from_namespaces")
    @classmethod
    def _namespaces(cls, value: list[str]) -> list[str]:
        for name in value:
            if len(name) > 63 or not _DNS_LABEL.match(name):
                raise ValueError(f"{name!r} is not a namespace name")
        return value

    @field_validator("monitoring_namespace")
    @classmethod
    def _monitoring(cls, value: str | None) -> str | None:
        if value is not None and (len(value) > 63 or not _DNS_LABEL.match(value)):
            raise ValueError(f"{value!r} is not a namespace name")
        return value


class WarmupSpec(_Section):
    """Fill the model cache once before the servers start; the servers then never reach the Hub."""

    enabled: bool = False
    adapters: list[str] = Field(default_factory=list)
    """Further repositories to download into the cache (LoRA adapters), as ``org/name`` or ``org/name@revision``."""
    timeout_seconds: int = Field(default=3600, ge=60)
    """How long the download may take (the Job's deadline, and how long ``pulumi up`` waits for it)."""
    backoff_limit: int = Field(default=3, ge=0, le=10)
    """Retries of a failed download (a retry resumes where the last one stopped)."""
    cpu_request: str = "1"
    memory_request: str = "2Gi"

    @field_validator("adapters")
    @classmethod
    def _repos(cls, value: list[str]) -> list[str]:
        for repo in value:
            name = repo.split("@", 1)[0]
            if name.count("/") != 1 or " " in repo or name.startswith("/"):
                raise ValueError(f"{repo!r} is not a repository id such as org/name (or org/name@revision)")
        return value

    @field_validator("cpu_request", "memory_request")
    @classmethod
    def _quantities(cls, value: str) -> str:
        return _check_quantity(value, "the download Job") or value


class SecuritySpec(_Section):
    """The containers' security settings: hardened by default."""

    hardened: bool = True
    """seccomp ``RuntimeDefault``, no privilege escalation, every capability dropped (IPC_LOCK kept with InfiniBand)."""
    run_as_non_root: bool = False
    """Run as ``runAsUser`` instead of root: the cache moves to /cache/huggingface, HOME and /tmp to an emptyDir."""
    run_as_user: int = Field(default=1000, ge=1)
    """User id of the containers when runAsNonRoot (any id: the image needs no entry for it)."""
    run_as_group: int = Field(default=1000, ge=0)
    """Group id, also the pod's fsGroup, so the cache claim is writable."""
    tmp_size: str = "8Gi"
    """Size limit of the writable /tmp (compile caches, Triton kernels) when runAsNonRoot."""

    @field_validator("tmp_size")
    @classmethod
    def _tmp(cls, value: str) -> str:
        return _check_quantity(value, "/tmp") or value


class LoadTestSpec(_Section):
    """A Job that runs vLLM's own ``vllm bench serve`` against the Service once the servers are ready."""

    enabled: bool = False
    dataset: Literal["random"] = "random"
    """Prompts of random tokens (no dataset to download)."""
    request_rate: float | Literal["inf"] = 4.0
    """Requests per second (Poisson arrivals); ``inf`` sends them all at once."""
    max_concurrency: int | None = Field(default=None, ge=1)
    """Most requests in flight at once; unset: no limit."""
    input_len: int = Field(default=512, ge=1)
    """Prompt length in tokens (``--random-input-len``)."""
    output_len: int = Field(default=128, ge=1)
    """Output length in tokens (``--random-output-len``)."""
    num_prompts: int = Field(default=200, ge=1)
    """Requests in the run."""
    seed: int = 0
    """Seed of the random prompts, so runs compare."""
    result_claim: str | None = None
    """Existing claim that keeps the result JSON (mounted at /results); unset: the JSON is in the Job's log."""
    wait_for_completion: bool = False
    """Make ``pulumi up`` wait for the run to finish."""

    @field_validator("request_rate")
    @classmethod
    def _rate(cls, value: float | str) -> float | str:
        if value != "inf" and float(value) <= 0:
            raise ValueError("the request rate must be greater than 0 (or inf)")
        return value
