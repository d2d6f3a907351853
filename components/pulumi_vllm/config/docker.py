"""The ``docker`` section: Docker GPU hosts instead of a Kubernetes cluster."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from pulumi_vllm.config.base import (
    _DNS_LABEL,
    _check_ip,
    _check_quantity,
    _Section,
)


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
