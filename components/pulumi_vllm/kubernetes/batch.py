"""Offline batch inference: vLLM's ``run_batch`` as a Kubernetes Job, with the server's cache, token and GPUs."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, NotRequired, TypedDict, cast

import pulumi
import pulumi_kubernetes as k8s

from pulumi_vllm.config import BatchSpec
from pulumi_vllm.engine.argv import EngineArgs, vllm_command
from pulumi_vllm.kubernetes import object_name
from pulumi_vllm.kubernetes.pod import MODEL_CACHE_PATH, ContainerSettings, vllm_pod_spec

TOKEN = "pulumi-vllm:index:BatchInference"

INPUT_DIR = "/batch/input"
OUTPUT_DIR = "/batch/output"


class BatchInferenceArgs(TypedDict):
    """Arguments of :class:`BatchInference`."""

    namespace: str
    job_name: str
    engine: EngineArgs
    """Engine settings, the same as the server's (model, dtype, parallelism, ...)."""
    container: ContainerSettings
    """The server's container settings (image, cache, token, GPUs, shm); command and probes are replaced."""
    batch: BatchSpec
    """Input, output and Job settings."""
    labels: NotRequired[dict[str, str]]


def batch_paths(batch: BatchSpec, cache_path: str = MODEL_CACHE_PATH) -> tuple[str, str]:
    """Where the Job reads its input and writes its output, inside the container (the cache is at ``cache_path``)."""
    input_path = batch.input_path or f"{INPUT_DIR}/input.jsonl"
    output_dir = OUTPUT_DIR if batch.output_claim else cache_path
    return input_path, f"{output_dir}/{batch.output_file}"


def batch_input_jsonl(batch: BatchSpec) -> str:
    """The inline input lines as one JSONL document."""
    return "".join(json.dumps(line, sort_keys=True) + "\n" for line in batch.input_lines)


class BatchInference(pulumi.ComponentResource):
    """A Job that runs vLLM's batch mode once over an OpenAI batch JSONL file."""

    job_name: pulumi.Output[str]
    """Name of the Job."""
    output_path: str
    """Path of the output file inside the output volume's mount."""

    def __init__(self, name: str, args: BatchInferenceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TOKEN, name, None, opts)
        batch = args["batch"]
        labels = args.get("labels", {})
        input_path, output_path = batch_paths(batch, args["container"].cache_path)
        command = vllm_command(args["engine"], mode="batch", batch_input=input_path, batch_output=output_path)
        container = dataclasses.replace(
            args["container"], command=command.command, args=command.args, probes=None, name="vllm-batch",
            # The serving pods' pre-stop pause, priority, spread and grace period are not the Job's.
            lifecycle=None, scheduling={},
        )
        pod = vllm_pod_spec(container, restartPolicy="Never")
        mounts: list[dict[str, Any]] = pod["containers"][0]["volumeMounts"]
        if batch.input_lines:
            self._input = k8s.core.v1.ConfigMap(
                f"{name}-input",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=f"{args['job_name']}-input", namespace=args["namespace"], labels=labels
                ),
                data={"input.jsonl": batch_input_jsonl(batch)},
                opts=pulumi.ResourceOptions(parent=self),
            )
            pod["volumes"].append({"name": "batch-input", "configMap": {"name": self._input.metadata.name}})
            mounts.append({"name": "batch-input", "mountPath": INPUT_DIR, "readOnly": True})
        if batch.output_claim:
            pod["volumes"].append({"name": "batch-output", "persistentVolumeClaim": {"claimName": batch.output_claim}})
            mounts.append({"name": "batch-output", "mountPath": OUTPUT_DIR})
        annotations = {} if batch.wait_for_completion else {"pulumi.com/skipAwait": "true"}
        spec = k8s.batch.v1.JobSpecArgs(
            backoff_limit=batch.backoff_limit,
            ttl_seconds_after_finished=batch.ttl_seconds_after_finished,
            active_deadline_seconds=batch.active_deadline_seconds,
            # The pod template is the camelCase form shared with the server's pods.
            template=cast(Any, {"metadata": {"labels": labels}, "spec": pod}),
        )
        self._job = k8s.batch.v1.Job(
            f"{name}-job",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=args["job_name"], namespace=args["namespace"], labels=labels, annotations=annotations
            ),
            spec=spec,
            opts=pulumi.ResourceOptions(
                parent=self,
                # A Job's pod template is immutable: a changed Job is replaced, the old one deleted first.
                replace_on_changes=["spec"],
                delete_before_replace=True,
            ),
        )
        self.job_name = object_name(self._job)
        self.output_path = output_path
        self.register_outputs({"job_name": self.job_name})
