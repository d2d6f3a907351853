"""The ``network`` section: NCCL/Gloo interfaces and InfiniBand of multi-node models."""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from pulumi_vllm.config.base import (
    _LABEL_KEY,
    _Section,
)

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
