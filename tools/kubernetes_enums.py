"""Write the accepted values of Kubernetes' enumerated fields, taken from the Kubernetes API's definitions.

Usage: .venv/bin/python tools/kubernetes_enums.py [--kubernetes-version X.Y.Z] [--out FILE] [--check] [--report]

The Kubernetes OpenAPI definitions read are those the ``kubernetes-validate`` package ships
(``kubernetes_validate/kubernetes-json-schema/v<release>-local/_definitions.json``, the newest
release unless ``--kubernetes-version`` names another), so this runs offline. Every string field
(or list of strings) of the ``core/v1``, ``apps/v1``, ``batch/v1`` and ``meta/v1`` definitions whose
definition states its accepted values is written to ``components/pulumi_vllm/config/kubernetes_enums.json``
as ``"<definition id>.<field>": [sorted values]``, with a ``"_source"`` entry naming the release,
the file and how the values were read. For a list field the values are those of its items.

Where the values are read from, in order:

1. an ``enum`` in the field's schema;
2. the ``Possible enum values:`` list that Kubernetes' OpenAPI generator appends to the description
   of a field whose Go type is marked ``+enum`` (``- `"NoExecute"` Evict any ...``);
3. the words of the description that state the accepted values, as the API's doc comments write
   them: an inline list after ``Valid values are`` (``allowed``, ``supported``, ``possible``, ...;
   ``values``, ``options``, ``operators``, ``effects``, ...), ``One of``, ``Must be``, ``Can be``,
   ``Supports`` or ``The only possible value is`` (``Valid operators are Exists, Equal, Lt, and Gt``,
   ``Can be "Recreate" or "RollingUpdate"``), or a list of values each with its meaning
   (``- Value: ...``, ``Value - ...``) after such a lead ending in a colon, or, without a lead,
   a ``- Value ...`` list that marks one item ``(default)`` or gives every item a colon.
   A list must end its sentence, so prose that merely mentions values ("If set to "Local", ...")
   gives none; after ``One of``, ``Must be``, ``Can be`` and ``Supports`` only quoted or capitalised
   words count as values.

The OpenAPI files the Kubernetes repository publishes are generated without forms 1 and 2 (an API
server serves them; the published files leave them out), and kubernetes-validate's files are built
from those: its releases carry neither, so everything comes from form 3 today. Fields whose
description states no list (``PersistentVolumeClaimSpec.accessModes`` and ``volumeMode``, for one)
are not written. ``--report`` prints, for every field written, the form and the words its values
came from, for review.

``--check`` writes nothing and exits 1 when FILE differs from what would be written (for CI).
Standard library only; kubernetes-validate is needed only for its data files.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared helper beside this script, however it is loaded
from generated import write_or_check

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "components" / "pulumi_vllm" / "config" / "kubernetes_enums.json"
PACKAGE = "kubernetes-validate"
SCHEMA_FOLDER = "kubernetes-json-schema"
DEFINITIONS_FILE = "_definitions.json"
GROUPS = (
    "io.k8s.api.core.v1.",
    "io.k8s.api.apps.v1.",
    "io.k8s.api.batch.v1.",
    "io.k8s.apimachinery.pkg.apis.meta.v1.",
)
"""Definition id prefixes whose fields are read."""

# --- form 2: the OpenAPI generator's "Possible enum values:" list -----------------------------

_POSSIBLE_ENUM_HEADER = "Possible enum values:"
_POSSIBLE_ENUM_ITEM = re.compile(r'^\s*-\s+`"((?:[^"\\]|\\.)*)"`', re.MULTILINE)

# --- form 3: the words of the description that state the values ------------------------------

# Leads that name the values outright ("Valid values are", "Possible values:", "Options are:");
# after them a bare lower-case word is a value too ("The currently supported values are linux and windows").
_STRONG_LEAD = re.compile(
    r"\b(?:valid|allowed|supported|possible|accepted|acceptable)\s+"
    r"(?:values|options|operators|effects|modes|types|policies|states)(?:\s+for\s+this\s+field)?"
    r"(?:\s+(?:are|include)(?:\s+either)?\s*:?|\s*:)\s*"
    r"|\boptions\s+are\s*:?\s*|\bcan\s+be\s+one\s+of\s*:\s*|\bany\s+of\s+(?:the\s+)?following\s+states\s*:\s*",
    re.IGNORECASE,
)
# Leads that also start ordinary prose ("can be set to", "must be a DNS_LABEL"): after them only
# quoted or capitalised words count as values.
_WEAK_LEAD = re.compile(r"\b(?:one\s+of|must\s+be(?:\s+one\s+of)?|can\s+be(?:\s+one\s+of)?|supports)\s*:?\s+", re.IGNORECASE)
# The one lead after which a single value is a list.
_SINGLE_LEAD = re.compile(r"\bthe\s+only\s+(?:possible|valid|allowed|supported)\s+value\s+is\s+", re.IGNORECASE)

_WORD = r"[A-Za-z0-9][A-Za-z0-9._/-]*"
_QUOTED = rf"""(?:"(?P<dq>{_WORD})"|'(?P<sq>{_WORD})'|`(?P<bq>{_WORD})`)"""
_ITEM_STRONG = re.compile(_QUOTED + r"|(?P<bare>[A-Za-z][A-Za-z0-9]*)\b")
_ITEM_WEAK = re.compile(_QUOTED + r"|(?P<bare>[A-Z][A-Za-z0-9]*)\b")
_PARENTHETICAL = re.compile(r"[ \t]*\([^()]*\)")
_SEPARATOR = re.compile(r",\s*(?:(?:and|or)\s+)?|\s+(?:and|or)\s+")
# A list that a stray full stop interrupts goes on when the next word is itself followed by a
# separator ("Valid operators are In, NotIn, Exists, DoesNotExist. Gt, and Lt.").
_STOP_THEN_ITEM = re.compile(r"\.\s+(?=[A-Z\"'`])")
_LIST_END = re.compile(r"\s*(?:[.;:)]|$|\n)")

# Lists of values each with its meaning, after a lead that ends with a colon:
# "- Value: meaning", "- Value (default) meaning", "- Value means ...", "Value - meaning", "Value: meaning",
# each item beginning a line or following a full stop, colon or semicolon.
_ENTRY_START = r"(?:^|\n|(?<=[.:;])[ \t])[ \t]*"
_ENTRY_VALUE = rf"""(?:"(?P<dq>{_WORD})"|'(?P<sq>{_WORD})'|`(?P<bq>{_WORD})`|(?P<bare>[A-Z][A-Za-z0-9]*)\b)"""
_BULLETED = re.compile(_ENTRY_START + r"-[ \t]+" + _ENTRY_VALUE + r"(?P<mark>[ \t]*\(default\)|:|(?=\s))")
_DEFINED = re.compile(_ENTRY_START + _ENTRY_VALUE + r"(?P<mark>[ \t]*\(default\))?(?:[ \t]*:[ \t]|[ \t]+-[ \t])")


@dataclass(frozen=True)
class Found:
    """The accepted values of one field, and where in its definition they were read."""

    values: tuple[str, ...]
    form: str
    evidence: str


def _item_value(match: re.Match[str]) -> str:
    return next(group for group in match.group("dq", "sq", "bq", "bare") if group)


def _list_after(text: str, start: int, item: re.Pattern[str], least: int) -> tuple[list[str], int] | None:
    """The values of an inline list that begins at ``start``, and where it ends; None if there is none."""
    values: list[str] = []
    position = start
    while True:
        match = item.match(text, position)
        if not match:
            return None
        values.append(_item_value(match))
        position = match.end()
        parenthetical = _PARENTHETICAL.match(text, position)
        if parenthetical:
            position = parenthetical.end()
        separator = _SEPARATOR.match(text, position)
        if separator:
            position = separator.end()
            continue
        stop = _STOP_THEN_ITEM.match(text, position)
        if stop and len(values) >= 2:
            following = item.match(text, stop.end())
            if following and _SEPARATOR.match(text, following.end()):
                position = stop.end()
                continue
        if len(values) < least:
            return None
        # A list of several ends with its sentence; a single value may be followed by its meaning
        # ('The only possible value is "Restart" to restart the container').
        if least > 1 and not _LIST_END.match(text, position):
            return None
        return values, position


def _inline_lists(description: str) -> Iterator[tuple[list[str], str]]:
    for lead, item, least in ((_STRONG_LEAD, _ITEM_STRONG, 2), (_WEAK_LEAD, _ITEM_WEAK, 2), (_SINGLE_LEAD, _ITEM_STRONG, 1)):
        for match in lead.finditer(description):
            found = _list_after(description, match.end(), item, least)
            if found:
                values, end = found
                yield values, " ".join(description[match.start() : end].split())


def _entries(description: str, start: int, pattern: re.Pattern[str]) -> list[re.Match[str]]:
    """The entries of ``pattern``'s form from ``start`` to the end of their paragraph, if the first
    one is right there (after blanks)."""
    first = pattern.search(description, start)
    if first is None or description[start : first.start()].strip():
        return []
    paragraph_end = description.find("\n\n", first.end())
    end = len(description) if paragraph_end < 0 else paragraph_end
    return list(pattern.finditer(description, start, end))


def _entry_lists(description: str) -> Iterator[tuple[list[str], str]]:
    led = False
    for lead in _STRONG_LEAD.finditer(description):
        if ":" not in lead.group(0):
            continue
        for pattern in (_BULLETED, _DEFINED):
            # Start right after the colon, which the entry pattern may need before its first item.
            entries = _entries(description, lead.start() + len(lead.group(0).rstrip()), pattern)
            if entries:
                values = [_item_value(entry) for entry in entries]
                yield values, " ".join((lead.group(0) + " " + " ".join(f"- {v}" for v in values)).split())
                led = True
                break
    if led:
        return
    # Without a lead, a bulleted list counts only when it marks its default or defines every value:
    # "- DoNotSchedule (default) tells the scheduler ... - ScheduleAnyway tells ..."
    bullets = list(_BULLETED.finditer(description))
    marks = [bullet.group("mark").strip() for bullet in bullets]
    if len(bullets) >= 2 and ("(default)" in marks or all(mark == ":" for mark in marks)):
        values = [_item_value(bullet) for bullet in bullets]
        yield values, " ".join(f"- {value}" for value in values)


def values_from_description(description: str) -> Found | None:
    """The accepted values a description states (form 2, else form 3), or None."""
    header = description.find(_POSSIBLE_ENUM_HEADER)
    if header >= 0:
        values = [json.loads(f'"{raw}"') for raw in _POSSIBLE_ENUM_ITEM.findall(description[header:])]
        if values:
            return Found(tuple(sorted(set(values))), "possible-enum-values", _POSSIBLE_ENUM_HEADER)
    stated: set[str] = set()
    evidence: list[str] = []
    for values, words in (*_inline_lists(description), *_entry_lists(description)):
        stated.update(values)
        evidence.append(words)
    if not stated:
        return None
    return Found(tuple(sorted(stated)), "description", " | ".join(evidence))


def _is_string(schema: Mapping[str, Any]) -> bool:
    kind = schema.get("type")
    return kind == "string" or (isinstance(kind, list) and "string" in kind)


def field_values(schema: Mapping[str, Any]) -> Found | None:
    """The accepted values of one field (a string, or a list of strings), or None."""
    items = schema.get("items") if isinstance(schema.get("items"), Mapping) else None
    target = items if items is not None and not _is_string(schema) else schema
    if not _is_string(target):
        return None
    enum = target.get("enum")
    if isinstance(enum, list) and enum and all(isinstance(value, str) for value in enum):
        return Found(tuple(sorted(set(enum))), "enum", "enum")
    for description in (schema.get("description"), target.get("description")):
        if isinstance(description, str):
            found = values_from_description(description)
            if found:
                return found
    return None


def extract(definitions: Mapping[str, Any]) -> dict[str, Found]:
    """Every field of :data:`GROUPS` whose definition states its accepted values, by field id."""
    found: dict[str, Found] = {}
    for definition_id in sorted(definitions):
        if not definition_id.startswith(GROUPS):
            continue
        properties = definitions[definition_id].get("properties") or {}
        for name in sorted(properties):
            if name in ("apiVersion", "kind"):
                continue  # their enums name the definition's own group and kind
            values = field_values(properties[name])
            if values:
                found[f"{definition_id}.{name}"] = values
    return found


# --- where the definitions are ----------------------------------------------------------------


def package_folder() -> Path:
    """The installed kubernetes-validate's schema folder (the package is not imported)."""
    spec = importlib.util.find_spec("kubernetes_validate")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{PACKAGE} is not installed (pip install '.[test]' or make install-test)")
    return Path(next(iter(spec.submodule_search_locations))) / SCHEMA_FOLDER


def releases(folder: Path) -> list[str]:
    """The Kubernetes releases kubernetes-validate ships definitions for, oldest first."""
    found = []
    for child in folder.iterdir():
        match = re.fullmatch(r"v(\d+\.\d+\.\d+)-local", child.name)
        if match and (child / DEFINITIONS_FILE).is_file():
            found.append(match.group(1))
    return sorted(found, key=lambda release: tuple(int(part) for part in release.split(".")))


def load_definitions(path: Path) -> dict[str, Any]:
    """The definitions of a JSON Schema (``$defs``) or OpenAPI v2 (``definitions``) file."""
    document = json.loads(path.read_text(encoding="utf-8"))
    definitions = document.get("$defs", document.get("definitions"))
    if not isinstance(definitions, dict):
        raise SystemExit(f"{path}: no '$defs' or 'definitions' object")
    return definitions


def build(release: str | None = None) -> tuple[dict[str, Any], dict[str, Found]]:
    """The JSON document to write (``_source`` and the fields), and what each field was read from."""
    folder = package_folder()
    shipped = releases(folder)
    if not shipped:
        raise SystemExit(f"{folder}: no v<release>-local/{DEFINITIONS_FILE}")
    release = release or shipped[-1]
    if release not in shipped:
        raise SystemExit(f"{PACKAGE} ships no definitions for Kubernetes {release} (it has {', '.join(shipped)})")
    relative = f"kubernetes_validate/{SCHEMA_FOLDER}/v{release}-local/{DEFINITIONS_FILE}"
    found = extract(load_definitions(folder / f"v{release}-local" / DEFINITIONS_FILE))
    forms = sorted({item.form for item in found.values()})
    source = {
        "kubernetes": release,
        "package": f"{PACKAGE} {metadata.version(PACKAGE)}",
        "file": relative,
        "definitions": [prefix + "*" for prefix in GROUPS],
        "read_from": forms,
        "generator": "tools/kubernetes_enums.py",
    }
    document: dict[str, Any] = {"_source": source}
    document.update({field: list(item.values) for field, item in found.items()})
    return document, found


def render(document: Mapping[str, Any]) -> str:
    """The JSON text: one field per line, so a change of release reads as a short diff."""
    lines = [f"  {json.dumps(key)}: {json.dumps(document[key], sort_keys=True)}" for key in sorted(document)]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--kubernetes-version", help="a release kubernetes-validate ships (default: its newest)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default: {DEFAULT_OUT.relative_to(ROOT)}")
    parser.add_argument("--check", action="store_true", help="exit 1 if --out differs, writing nothing")
    parser.add_argument("--report", action="store_true", help="print each field's form and source words to stderr")
    args = parser.parse_args(argv)
    document, found = build(args.kubernetes_version)
    text = render(document)
    if args.report:
        for field, item in found.items():
            print(f"{field}: {list(item.values)} <- {item.form}: {item.evidence}", file=sys.stderr)
    code = write_or_check(args.out, text, Path(__file__).name, "kubernetes-enums", args.check)
    if args.check or code:
        return code
    print(f"wrote {len(found)} fields of Kubernetes {document['_source']['kubernetes']} to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
