"""The ``batch`` section: offline batch inference as a Kubernetes Job."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from pulumi_vllm.config.base import (
    _Section,
)


class BatchSpec(_Section):
    """Offline batch inference as a Kubernetes Job (vLLM's ``run_batch``: OpenAI batch JSONL in and out)."""

    enabled: bool = False
    input_lines: list[dict[str, Any]] = Field(default_factory=list)
    """Small inputs inline: OpenAI batch request lines (``custom_id``, ``method``, ``url``, ``body``), kept in a ConfigMap."""
    input_path: str | None = None
    """Or a path inside the container to a JSONL file, e.g. on the model cache claim."""
    output_claim: str | None = None
    """Existing claim for the output (mounted at /batch/output); the model cache claim when unset."""
    output_file: str = "batch-output.jsonl"
    """File name of the output inside the output volume."""
    backoff_limit: int = Field(default=1, ge=0, le=10)
    """Retries of a failed run; low, since a failure is rarely transient and each retry reloads the model."""
    ttl_seconds_after_finished: int = Field(default=86400, ge=0)
    """Seconds a finished Job (and its logs) stays before Kubernetes deletes it."""
    active_deadline_seconds: int | None = Field(default=None, ge=60)
    """Hard limit on the Job's run time."""
    wait_for_completion: bool = False
    """Make ``pulumi up`` wait for the Job to finish (otherwise it returns once the Job is created)."""

    @model_validator(mode="after")
    def _one_input(self) -> BatchSpec:
        if self.enabled and bool(self.input_lines) == bool(self.input_path):
            raise ValueError("set exactly one of inputLines or inputPath")
        if "/" in self.output_file:
            raise ValueError(f"outputFile {self.output_file!r} must be a file name, not a path")
        return self
