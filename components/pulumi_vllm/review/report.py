"""Compare two renders of the same stacks and say what the change does: pure functions, no I/O.

:func:`compare_stack` takes a stack at the base revision and in the working tree (each a
:class:`StackSide`, or ``None`` where the stack does not exist) and returns a :class:`StackReport`:
objects added, removed and changed with unified diffs, the consequences on the cluster, GPUs,
capacity and policy verdicts before and after, and a Mermaid diagram of the topology after.
:func:`format_text` and :func:`format_markdown` write a :class:`DiffReport` for a terminal or a
pull-request comment.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from pulumi_vllm.review.cloud import cloud_subject, is_cloud_document
from pulumi_vllm.review.consequences import (
    IN_PLACE,
    SEVERITIES,
    Consequence,
    ResourceEntry,
    changed_object,
    describe,
    docker_subject,
    index_consequences,
    removed_object,
)
from pulumi_vllm.review.helm import helm_subject, is_helm_document
from pulumi_vllm.review.mermaid import topology_diagram

EXIT_NO_CHANGES = 0
"""Exit code: the rendered stacks are identical at both revisions."""
EXIT_ERRORS = 2
"""Exit code: the command could not run (bad revision, invalid stack config...)."""
EXIT_CHANGES = 3
"""Exit code: at least one stack changes."""
EXIT_MANDATORY_VIOLATION = 4
"""Exit code: after the change, a mandatory policy is violated (takes precedence over 3)."""

COMMENT_MARKER = "<!-- pulumi-vllm-diff -->"
"""First line of the markdown report: how the pull-request workflow finds its comment to update it."""

INDEX_FILE = "_pulumi/resources.txt"
"""The render's index of every Pulumi resource (type, name, parent, protect, retainOnDelete...)."""

MARKDOWN_LIMIT = 60_000
"""Characters a markdown report may take (GitHub refuses comments over 65,536)."""


BLOCKING_LEVELS = ("mandatory", "remediate")
"""Enforcement levels that stop ``pulumi up``."""


@dataclass(frozen=True)
class Verdict:
    """One policy violation reported by the policy pack."""

    policy: str
    level: str
    """``mandatory``, ``advisory`` or ``remediate``."""
    resource: str
    message: str


@dataclass(frozen=True)
class StackSide:
    """A stack rendered at one revision: what the report needs from it."""

    documents: dict[str, Any]
    """Rendered file name -> document (secrets already redacted)."""
    owners: dict[str, str] = field(default_factory=dict)
    """Rendered file name -> the Pulumi resource name that manages the object."""
    total_gpus: int | None = None
    capacity: tuple[str, ...] = ()
    """Capacity lines (KV-cache tokens, concurrency), when the planner is available."""
    verdicts: tuple[Verdict, ...] | None = None
    """Policy violations; ``None`` when no policy pack ran."""
    topology: str = ""
    """One line about the parallel layout, e.g. ``tensor parallel 8 × pipeline parallel 2 ...``."""
    secure_config: dict[str, str] = field(default_factory=dict)
    """Secret config key -> a digest of its ciphertext (values never leave the stack file)."""
    error: str = ""
    """Why the stack could not be rendered at this revision (its documents are then empty)."""


@dataclass(frozen=True)
class ObjectChange:
    """One rendered object that is added, removed or changed."""

    filename: str
    status: str
    """``added``, ``removed`` or ``changed``."""
    subject: str
    """``Deployment llama-8b``."""
    diff: str = ""
    """Unified diff of the manifest (changed objects only)."""


@dataclass(frozen=True)
class StackReport:
    """Everything the change does to one stack."""

    stack: str
    status: str
    """``added``, ``removed``, ``changed`` or ``unchanged``."""
    objects: tuple[ObjectChange, ...] = ()
    consequences: tuple[Consequence, ...] = ()
    gpus: tuple[int | None, int | None] = (None, None)
    capacity: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())
    verdicts: tuple[tuple[Verdict, ...] | None, tuple[Verdict, ...] | None] = (None, None)
    notes: tuple[str, ...] = ()
    diagram: str = ""
    topology: str = ""

    @property
    def changed(self) -> bool:
        """Whether anything differs."""
        return self.status != "unchanged"

    @property
    def mandatory_after(self) -> list[Verdict]:
        """Mandatory violations after the change."""
        return [verdict for verdict in self.verdicts[1] or () if verdict.level in BLOCKING_LEVELS]


@dataclass(frozen=True)
class DiffReport:
    """The reports of every selected stack, against one base revision."""

    base: str
    """The revision as the user named it (``origin/main``)."""
    base_commit: str
    stacks: tuple[StackReport, ...]
    policy_note: str = ""
    """Why policy verdicts are missing, when they are."""
    api_changes: tuple[str, ...] = ()
    """Changes of the component package's schema (``plugin/schema.json``): inputs and outputs in every language."""

    @property
    def exit_code(self) -> int:
        """0 no changes, 3 changes, 4 a mandatory policy violation after the change."""
        if any(stack.mandatory_after for stack in self.stacks):
            return EXIT_MANDATORY_VIOLATION
        changed = self.api_changes or any(stack.changed for stack in self.stacks)
        return EXIT_CHANGES if changed else EXIT_NO_CHANGES


def dump(document: Any) -> str:
    """A document as YAML text (strings as they are) for diffing."""
    import yaml

    if isinstance(document, str):
        return document
    return yaml.safe_dump(document, sort_keys=False, default_flow_style=False, width=120)


def unified_diff(filename: str, old: Any, new: Any) -> str:
    """``--- a/<file>`` / ``+++ b/<file>`` diff of two documents."""
    lines = difflib.unified_diff(
        dump(old).splitlines(keepends=True),
        dump(new).splitlines(keepends=True),
        fromfile=f"a/{filename}",
        tofile=f"b/{filename}",
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


_SUBJECTS = {INDEX_FILE: "Pulumi resources (names and options)", "_pulumi/outputs.txt": "stack outputs"}


def _subject(filename: str, document: Any) -> str:
    if filename in _SUBJECTS:
        return _SUBJECTS[filename]
    if isinstance(document, dict) and "kind" in document:
        return describe(document)
    if is_helm_document(document):
        return helm_subject(document)
    if is_cloud_document(document):
        return cloud_subject(document)
    if isinstance(document, dict) and str(document.get("type", "")).startswith(("docker:", "pulumi:providers:docker")):
        return docker_subject(document)
    return filename


def _index(side: StackSide | None) -> list[ResourceEntry]:
    rows = side.documents.get(INDEX_FILE) if side else None
    return [ResourceEntry.from_index(row) for row in rows or [] if isinstance(row, dict)]


def compare_stack(stack: str, before: StackSide | None, after: StackSide | None) -> StackReport:
    """What changes in ``stack`` from ``before`` (base revision) to ``after`` (working tree)."""
    old_docs = before.documents if before else {}
    new_docs = after.documents if after else {}
    old_index, new_index = _index(before), _index(after)
    old_entries = {entry.name: entry for entry in old_index}
    new_entries = {entry.name: entry for entry in new_index}
    objects: list[ObjectChange] = []
    consequences: list[Consequence] = []
    for filename in [*old_docs, *(name for name in new_docs if name not in old_docs)]:
        old, new = old_docs.get(filename), new_docs.get(filename)
        if old == new:
            continue
        if old is None:
            objects.append(ObjectChange(filename, "added", _subject(filename, new)))
        elif new is None:
            objects.append(ObjectChange(filename, "removed", _subject(filename, old)))
            if after is not None:
                # A removed stack file deletes nothing: its resources stay until `pulumi destroy`.
                entry = old_entries.get((before.owners if before else {}).get(filename, ""))
                consequences += removed_object(old, entry)
        else:
            objects.append(ObjectChange(filename, "changed", _subject(filename, new), unified_diff(filename, old, new)))
            entry = new_entries.get((after.owners if after else {}).get(filename, ""))
            consequences += changed_object(old, new, entry)
    subjects = {
        owner: _subject(filename, (new_docs.get(filename) or old_docs.get(filename)))
        for side in (before, after)
        if side
        for filename, owner in side.owners.items()
    }
    if before is not None and after is not None:
        consequences += index_consequences(old_index, new_index, subjects)
    notes: list[str] = []
    # A new stack requests no GPUs before; a removed stack file leaves its GPUs requested (no figure after).
    gpus = (before.total_gpus if before else 0, after.total_gpus if after else None)
    if gpus[0] != gpus[1] and None not in gpus:
        consequences.append(Consequence(IN_PLACE, "stack", f"GPUs requested {gpus[0]} -> {gpus[1]}"))
    if before and after:
        rotated = sorted(
            key
            for key in set(before.secure_config) | set(after.secure_config)
            if before.secure_config.get(key) != after.secure_config.get(key)
        )
        if rotated:
            notes.append(f"secret config set again: {', '.join(rotated)} (values are never shown)")
    if before is not None and before.error:
        notes.append(f"could not render at the base revision ({before.error}): every object is shown as added")
    if before is None:
        status = "added"
        notes.append("new stack: nothing of it exists yet")
    elif after is None:
        status = "removed"
        notes.append("stack file removed: its resources stay in the cluster until `pulumi destroy` is run for it")
    else:
        status = "changed" if objects or consequences or notes else "unchanged"
    order = {severity: rank for rank, severity in enumerate(SEVERITIES)}
    consequences.sort(key=lambda item: order.get(item.severity, len(order)))
    return StackReport(
        stack=stack,
        status=status,
        objects=tuple(objects),
        consequences=tuple(consequences),
        gpus=gpus,
        capacity=(before.capacity if before else (), after.capacity if after else ()),
        verdicts=(before.verdicts if before else None, after.verdicts if after else None),
        notes=tuple(notes),
        diagram=topology_diagram(new_docs.items()) if after is not None and status != "unchanged" else "",
        topology=after.topology if after else "",
    )


def _counts(stack: StackReport) -> str:
    if stack.status == "added":
        return f"new stack, {len(stack.objects)} objects"
    if stack.status == "removed":
        return "stack removed"
    parts = []
    for status in ("added", "removed", "changed"):
        count = sum(1 for item in stack.objects if item.status == status)
        if count:
            parts.append(f"{count} {status}")
    return ", ".join(parts) or ("no object changes" if stack.changed else "no changes")


def _verdict_summary(verdicts: tuple[Verdict, ...] | None) -> str:
    if verdicts is None:
        return "not run"
    mandatory = sum(1 for verdict in verdicts if verdict.level in BLOCKING_LEVELS)
    return f"{mandatory} mandatory, {len(verdicts) - mandatory} advisory"


def _new_verdicts(stack: StackReport) -> list[tuple[Verdict, bool]]:
    before = set(stack.verdicts[0] or ())
    return [(verdict, verdict not in before) for verdict in stack.verdicts[1] or ()]


def _gpus(stack: StackReport) -> str:
    before, after = stack.gpus
    if before == after:
        return f"{after}" if after is not None else "-"
    return f"{'-' if before is None else before} -> {'-' if after is None else after}"


def _capacity(stack: StackReport) -> str:
    before, after = ("; ".join(lines) or "-" for lines in stack.capacity)
    return f"{after} (unchanged)" if before == after else f"before {before} → after {after}"


def format_text(report: DiffReport) -> str:
    """The report for a terminal."""
    out = [f"pulumi-vllm diff: working tree against {report.base} ({report.base_commit[:12]})"]
    if report.api_changes:
        out += ["", "component API (plugin/schema.json, the SDK of every language):"]
        out += [f"  - {line}" for line in report.api_changes]
    unchanged = [stack.stack for stack in report.stacks if not stack.changed]
    for stack in report.stacks:
        if not stack.changed:
            continue
        out += ["", f"stack {stack.stack}: {_counts(stack)}"]
        out += [f"  note: {note}" for note in stack.notes]
        out += [f"  {item.status:<8} {item.subject} ({item.filename})" for item in stack.objects]
        if stack.consequences:
            out.append("  on the cluster:")
            out += [f"    - [{item.severity}] {item.subject}: {item.text}" for item in stack.consequences]
        out.append(f"  GPUs requested: {_gpus(stack)}")
        if stack.capacity[0] or stack.capacity[1]:
            out.append(f"  capacity: {_capacity(stack)}")
        if stack.verdicts[1] is not None or stack.verdicts[0] is not None:
            out.append(
                f"  policy: before {_verdict_summary(stack.verdicts[0])}; after {_verdict_summary(stack.verdicts[1])}"
            )
            for verdict, new in _new_verdicts(stack):
                out.append(
                    f"    - {'NEW ' if new else ''}[{verdict.level}] {verdict.policy} on {verdict.resource}: {verdict.message}"
                )
        elif report.policy_note:
            out.append(f"  policy verdicts: {report.policy_note}")
        for item in stack.objects:
            if item.diff:
                out += ["", *("  " + line for line in item.diff.rstrip("\n").splitlines())]
    if unchanged:
        out += ["", f"unchanged: {', '.join(unchanged)}"]
    return "\n".join(out) + "\n"


def _markdown_diffs(stack: StackReport, budget: int, base: str) -> str:
    diffs = [item for item in stack.objects if item.diff]
    if not diffs:
        return ""
    parts = [f"<details><summary>Manifest diffs ({len(diffs)})</summary>\n"]
    for item in diffs:
        text = item.diff
        if len(text) > budget:
            # Room for the note saying where the rest is.
            kept = text[: max(budget - 150, 0)].rsplit("\n", 1)[0]
            dropped = text.count("\n") - kept.count("\n")
            text = kept + f"\n... {dropped} more lines: run `pulumi-vllm diff --base {base} --stack {stack.stack}`\n"
        budget -= len(text)
        parts.append(f"\n```diff\n{text}```\n")
    parts.append("\n</details>\n")
    return "".join(parts)


def _markdown_stack(stack: StackReport, report: DiffReport) -> list[str]:
    out = [f"### Stack `{stack.stack}`: {_counts(stack)}", ""]
    out += [f"> {note}" for note in stack.notes]
    if stack.notes:
        out.append("")
    if stack.consequences:
        out += ["**What happens on the cluster**", ""]
        out += [f"- **{item.severity}** · {item.subject}: {item.text}" for item in stack.consequences]
        out.append("")
    if stack.objects:
        out += ["| object | file | change |", "| --- | --- | --- |"]
        out += [f"| {item.subject} | `{item.filename}` | {item.status} |" for item in stack.objects]
        out.append("")
    out.append(f"**GPUs requested:** {_gpus(stack)}")
    if stack.capacity[0] or stack.capacity[1]:
        out += ["", f"**Capacity:** {_capacity(stack)}"]
    if stack.verdicts[0] is not None or stack.verdicts[1] is not None:
        out += [
            "",
            f"**Policy:** before {_verdict_summary(stack.verdicts[0])} → after {_verdict_summary(stack.verdicts[1])}",
        ]
        for verdict, new in _new_verdicts(stack):
            mark = " (new)" if new else ""
            out.append(f"- `{verdict.policy}` **{verdict.level}**{mark} on {verdict.resource}: {verdict.message}")
    elif report.policy_note:
        out += ["", f"**Policy verdicts:** {report.policy_note}"]
    if stack.diagram:
        heading = "**Serving topology after the change**" + (f" ({stack.topology})" if stack.topology else "")
        out += ["", heading, "", "```mermaid", stack.diagram, "```"]
    return out + [""]


_NO_CONSEQUENCE = {"unchanged": "-", "added": "created", "removed": "removed"}


def format_markdown(report: DiffReport, limit: int = MARKDOWN_LIMIT) -> str:
    """The report as a pull-request comment: summary table, a section per changed stack, diffs folded."""
    changed = [stack for stack in report.stacks if stack.changed]
    head = [
        COMMENT_MARKER,
        f"## pulumi-vllm diff against `{report.base}` (`{report.base_commit[:12]}`)",
        "",
    ]
    if report.api_changes:
        head += ["**Component API changes** (`plugin/schema.json`, the SDK of every language):", ""]
        head += [f"- {line}" for line in report.api_changes] + [""]
    if not changed:
        head.append(f"No rendered changes in {', '.join(f'`{s.stack}`' for s in report.stacks) or 'any stack'}.")
        return "\n".join(head) + "\n"
    head += [
        "| stack | objects | on the cluster | GPUs | mandatory violations after |",
        "| --- | --- | --- | --- | --- |",
    ]
    for stack in report.stacks:
        worst = stack.consequences[0].severity if stack.consequences else _NO_CONSEQUENCE.get(stack.status, "no effect")
        violations = "-" if stack.verdicts[1] is None else str(len(stack.mandatory_after))
        head.append(f"| `{stack.stack}` | {_counts(stack)} | {worst} | {_gpus(stack)} | {violations} |")
    head.append("")
    sections = [_markdown_stack(stack, report) for stack in changed]
    text = "\n".join(head + [line for section in sections for line in section])
    wrappers = sum(60 for stack in changed for item in stack.objects if item.diff) + 60 * len(changed)
    budget = limit - len(text) - 400 - wrappers
    folded = []
    for stack, section in zip(changed, sections):
        diffs = _markdown_diffs(stack, budget // max(len(changed), 1), report.base)
        folded += section + ([diffs] if diffs else [])
    text = "\n".join(head + folded)
    if len(text) > limit - 300:
        # Sections themselves too long (hundreds of objects): cut at a line and say where the rest is.
        text = text[: limit - 300].rsplit("\n", 1)[0]
        if text.count("```") % 2:
            text += "\n```"
        text += f"\n\n**Report cut to fit a comment:** run `pulumi-vllm diff --base {report.base}` for all of it."
    footer = [
        "",
        f"<sub>Rendered offline by `pulumi-vllm diff --base {report.base}`; secrets are shown as `[secret]`.</sub>",
    ]
    return "\n".join([text, *footer]) + "\n"
