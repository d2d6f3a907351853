"""The values the Kubernetes API accepts for its enumerated fields, so config can refuse others first.

The API server refuses an enumerated field with a value outside its list
(``spec.template.spec.tolerations[0].effect: Unsupported value: "NoSchedul": supported values:
"NoSchedule", "PreferNoSchedule", "NoExecute"``), but the OpenAPI schemas that schema checks use
carry these lists only as prose, so such a value passes them. The lists here are read from the
Kubernetes API's own definitions by ``tools/kubernetes_enums.py`` (``make kubernetes-enums``) into
``kubernetes_enums.json`` beside this module; its ``_source`` entry names the release and the file.

Field ids are the OpenAPI definition id and the field name, as in
``io.k8s.api.core.v1.Toleration.effect``; for a list field (``ServiceSpec.ipFamilies``) the values
are those of its items. Only fields whose definition states its values are present:
:func:`accepted_values` raises :class:`KeyError` for any other.

The message of a refused value is the API server's, with the config key in place of the object path::

    <key>: Unsupported value: <value>: supported values: "<a>", "<b>", ...

``<value>`` is quoted like the API server quotes it (a JSON string for a string; ``5``, ``true`` or
``null`` otherwise), the supported values are in sorted order. For example
``pulumi-vllm:resources.tolerations[0].effect: Unsupported value: "NoSchedul": supported values:
"NoExecute", "NoSchedule", "PreferNoSchedule"``. Comparisons are exact (case matters, as for the API
server) and the empty string is refused like any other value not listed: a field the API lets one
leave empty is one the caller does not check while unset.

Standard library only; the data file is read once, at import.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import resources
from types import MappingProxyType
from typing import Any

DATA_FILE = "kubernetes_enums.json"
"""The generated data, a package data file of :mod:`pulumi_vllm.config`."""


def _load() -> tuple[dict[str, tuple[str, ...]], dict[str, Any]]:
    text = resources.files(__package__ or "pulumi_vllm.config").joinpath(DATA_FILE).read_text(encoding="utf-8")
    document = json.loads(text)
    source = document.pop("_source")
    return {field: tuple(values) for field, values in document.items()}, source


_ENUMS, _SOURCE = _load()

KUBERNETES_ENUMS_SOURCE: Mapping[str, Any] = MappingProxyType(_SOURCE)
"""Where the lists come from: the Kubernetes release, the package and file read, and how."""

KUBERNETES_ENUMS_VERSION: str = _SOURCE["kubernetes"]
"""The Kubernetes release whose API definitions the lists were read from (e.g. ``1.37.0``)."""


class UnsupportedValueError(ValueError):
    """A value outside an enumerated field's list; ``str()`` is the whole message (see the module doc).

    ``reason`` is the message without the leading ``<key>: ``, for code that names the key itself.
    """

    def __init__(self, field_id: str, key: str, value: object, supported: tuple[str, ...]) -> None:
        self.field_id = field_id
        self.key = key
        self.value = value
        self.supported = supported
        self.reason = f"Unsupported value: {_quote(value)}: supported values: {', '.join(_quote(v) for v in supported)}"
        super().__init__(f"{key}: {self.reason}")


def _quote(value: object) -> str:
    # The API server prints values with Go's %q / %v: a quoted string, bare numbers and booleans.
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def field_ids() -> tuple[str, ...]:
    """Every field id that has a list, sorted."""
    return tuple(sorted(_ENUMS))


def accepted_values(field_id: str) -> tuple[str, ...]:
    """The sorted values the Kubernetes API accepts for ``field_id`` (e.g. ``io.k8s.api.core.v1.Toleration.effect``).

    Raises :class:`KeyError` when the API's definitions state no list for that field.
    """
    try:
        return _ENUMS[field_id]
    except KeyError:
        raise KeyError(
            f"{field_id!r}: the Kubernetes {KUBERNETES_ENUMS_VERSION} API definitions state no accepted values for it "
            f"(known: {DATA_FILE} in pulumi_vllm.config; regenerate with make kubernetes-enums)"
        ) from None


def check_value(field_id: str, value: object, key: str) -> None:
    """Return if ``value`` is one the Kubernetes API accepts for ``field_id``; else raise :class:`UnsupportedValueError`.

    ``key`` is how the message names the value: the config key path users write, e.g.
    ``pulumi-vllm:resources.tolerations[0].effect``.
    """
    supported = accepted_values(field_id)
    if isinstance(value, str) and value in supported:
        return
    raise UnsupportedValueError(field_id, key, value, supported)
