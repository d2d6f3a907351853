"""What every section of the stack schema shares: the project name, the pinned vLLM release, the
section base model, and the checks of Kubernetes quantities and addresses."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict
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


def _check_ip(value: str | None, hint: str) -> str | None:
    import ipaddress

    if value is not None:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address ({hint})") from None
    return value
