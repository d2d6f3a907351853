"""What every section of the stack schema shares: the project name, the pinned vLLM release, the
section base model, and the checks of Kubernetes quantities and addresses."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from pulumi_vllm.config.kubernetes_enums import check_value

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


def check_labels(value: dict[str, str]) -> dict[str, str]:
    """Raise ``ValueError`` for the first key or value that is not a valid Kubernetes label."""
    for key, item in value.items():
        if not _LABEL_KEY.match(key) or not isinstance(item, str) or not _LABEL_VALUE.match(item):
            raise ValueError(f"label {key}={item!r} is not a valid Kubernetes label")
    return value


def check_taints(value: list[dict[str, Any]], where: str) -> list[dict[str, Any]]:
    """Raise ``ValueError`` for the first taint that is not ``key`` / ``value`` / ``effect`` as the API accepts them;
    ``where`` is the config key of the list (an effect's message names ``<where>[i].effect``)."""
    for index, taint in enumerate(value):
        unknown = set(taint) - {"key", "value", "effect"}
        if unknown:
            raise ValueError(f"taint {index} has unknown field(s) {sorted(unknown)}; accepted: key, value, effect")
        if not isinstance(taint.get("key"), str) or not _LABEL_KEY.match(taint["key"]):
            raise ValueError(f"taint {index}: key {taint.get('key')!r} is not a valid taint key")
        check_value("io.k8s.api.core.v1.Taint.effect", taint.get("effect"), f"{PROJECT}:{where}[{index}].effect")
    return value
