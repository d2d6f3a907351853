"""Stack configuration: a pydantic model of every ``pulumi-vllm:*`` key, validated before anything is created.

Keys are camelCase in ``Pulumi.<stack>.yaml`` (Pulumi's convention) and snake_case in Python.
Unknown keys are errors: a typo must never be silently ignored. :func:`load_stack_config` turns a
flat ``{"pulumi-vllm:key": "value"}`` map (what the Pulumi runtime hands a program) into a
:class:`StackConfig`, or raises :class:`ConfigError` with one message naming the key path, the value
given and what is accepted.

The schema is split by section (:mod:`.model`, :mod:`.resources`, :mod:`.docker`, :mod:`.batch`,
:mod:`.network`) under one root model (:mod:`.stack`); :mod:`.base` holds what they share. It is
the bottom of the package: pure pydantic, importing nothing else of ``pulumi_vllm``.
"""

from pulumi_vllm.config.base import DEFAULT_IMAGE, PROJECT, SECRET_KEYS, VLLM_VERSION, ConfigError
from pulumi_vllm.config.batch import BatchSpec
from pulumi_vllm.config.cluster import ClusterSpec
from pulumi_vllm.config.docker import DockerHostSpec, DockerSpec
from pulumi_vllm.config.model import EngineSpec, ModelSpec
from pulumi_vllm.config.network import NetworkSpec
from pulumi_vllm.config.operations import AlertThresholds, AutoscalingSpec, MonitoringSpec, PrometheusSource
from pulumi_vllm.config.resources import (
    CacheSpec,
    CapacitySpec,
    ParallelismSpec,
    ProbesSpec,
    QuotaSpec,
    ResourcesSpec,
    SecretRef,
    ServiceSpec,
)
from pulumi_vllm.config.safety import (
    AvailabilitySpec,
    LoadTestSpec,
    NetworkPolicySpec,
    SecuritySpec,
    WarmupSpec,
)
from pulumi_vllm.config.stack import (
    StackConfig,
    format_validation_error,
    load_program_config,
    load_stack_config,
    parse_stack_config,
)

__all__ = [
    "DEFAULT_IMAGE",
    "PROJECT",
    "SECRET_KEYS",
    "VLLM_VERSION",
    "AlertThresholds",
    "AutoscalingSpec",
    "AvailabilitySpec",
    "BatchSpec",
    "CacheSpec",
    "CapacitySpec",
    "ClusterSpec",
    "ConfigError",
    "DockerHostSpec",
    "DockerSpec",
    "EngineSpec",
    "LoadTestSpec",
    "ModelSpec",
    "MonitoringSpec",
    "NetworkPolicySpec",
    "NetworkSpec",
    "ParallelismSpec",
    "ProbesSpec",
    "PrometheusSource",
    "QuotaSpec",
    "ResourcesSpec",
    "SecretRef",
    "SecuritySpec",
    "ServiceSpec",
    "StackConfig",
    "WarmupSpec",
    "format_validation_error",
    "load_program_config",
    "load_stack_config",
    "parse_stack_config",
]
