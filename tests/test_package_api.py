"""Schema changes as reviews report them: an input added, removed, retyped or made required is an API change."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from pulumi_vllm.review.api import api_changes
from pulumi_vllm.review.report import EXIT_CHANGES, EXIT_NO_CHANGES, DiffReport, format_markdown, format_text

SNAPSHOT = json.loads((Path(__file__).resolve().parents[1] / "plugin" / "schema.json").read_text())
SERVING = "pulumi-vllm:index:VllmServing"


def test_the_same_schema_has_no_api_changes() -> None:
    assert api_changes(SNAPSHOT, copy.deepcopy(SNAPSHOT)) == []


def test_inputs_added_removed_retyped_and_required_are_listed() -> None:
    after = copy.deepcopy(SNAPSHOT)
    serving = after["resources"][SERVING]
    del serving["inputProperties"]["replicas"]
    serving["inputProperties"]["region"] = {"type": "string", "description": "new"}
    serving["requiredInputs"] = ["region"]
    after["types"]["pulumi-vllm:index:ServingEngineArgs"]["properties"]["maxModelLen"]["type"] = "string"
    assert api_changes(SNAPSHOT, after) == [
        "VllmServing input.region: added (string, required)",
        "VllmServing input.replicas: removed",
        "ServingEngineArgs.maxModelLen: type integer -> string",
    ]


def test_a_component_removed_and_the_package_added_are_listed() -> None:
    after = copy.deepcopy(SNAPSHOT)
    del after["resources"]["pulumi-vllm:index:GpuQuota"]
    assert api_changes(SNAPSHOT, after) == ["GpuQuota: component removed"]
    assert api_changes(None, SNAPSHOT) == ["the component package was added"]


def test_the_report_shows_api_changes_and_counts_them_as_changes() -> None:
    quiet = DiffReport(base="main", base_commit="0" * 40, stacks=())
    assert quiet.exit_code == EXIT_NO_CHANGES
    report = DiffReport(base="main", base_commit="0" * 40, stacks=(), api_changes=("VllmServing input.replicas: removed",))
    assert report.exit_code == EXIT_CHANGES
    assert "  - VllmServing input.replicas: removed" in format_text(report)
    assert "- VllmServing input.replicas: removed" in format_markdown(report)
