"""A measured ``vllm bench serve`` run as the performance model sees it, and calibration from it.

A run is described by the fields of the published measurements the model is judged on
(``bench/performance_references.Measurement``) and of the row ``pulumi-vllm bench --calibration-json`` writes:
the model and layout, the request shape and the load (a closed loop of ``concurrency`` clients; every request
at once, ``concurrency`` equal to ``requests`` and no rate; or a Poisson ``request_rate``). :meth:`MeasuredRun.setting`
gives the model's facts, the layout at vLLM's defaults for the GPU and the workload, so the bench of published
measurements and ``pulumi-vllm size --calibration`` predict a run alike; :func:`calibrate_from_file` sets the
request overhead from a user's own run.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from pulumi_vllm.capacity.performance import Constants, ServingLayout, Workload, calibrate_request_overhead
from pulumi_vllm.models.facts import ModelFacts


@dataclass(frozen=True)
class MeasuredRun:
    """One measured run: what the model needs to predict it, and its measured median TTFT."""

    model: str
    gpu: str
    tensor_parallel_size: int
    input_tokens: int
    output_tokens: int
    concurrency: int
    request_rate: float | None = None
    requests: int | None = None
    pipeline_parallel_size: int = 1
    weight_dtype: str | None = None
    varied_lengths: bool = False
    offline: bool = False
    ttft_ms: float | None = None
    async_scheduling: bool = True
    """vLLM's async scheduling was on (its default since 0.14.0, as in this project's pinned release)."""
    logged_kv_cache_tokens: int | None = None
    """The KV-cache tokens per engine the server's start-up log printed, where the run gives them; ``None``: planned."""

    @classmethod
    def from_fields(cls, values: Mapping[str, Any]) -> MeasuredRun:
        """The run from a mapping with (at least) these fields' names; other keys are ignored."""
        names = {field.name for field in fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in names})

    @property
    def is_burst(self) -> bool:
        """All of the run's requests sent at once: a known request count no larger than the concurrency, no rate."""
        return self.request_rate is None and self.requests is not None and self.concurrency >= self.requests

    def engine_budget(self) -> int:
        """The ``max_num_batched_tokens`` the run's engine had: vLLM's default, as no run here sets it.

        ``EngineArgs.get_batch_defaults`` (vllm/engine/arg_utils.py): ``vllm serve`` takes 8192 on GPUs of 70 GiB or
        more but A100s, else 2048 (``GpuType.default_max_num_batched_tokens``); the ``LLM`` class of the offline
        benchmarks 16384, else 8192. A prompt longer than the budget is prefilled in chunks of it.
        """
        from pulumi_vllm.capacity.gpus import lookup_gpu

        gpu = lookup_gpu(self.gpu)
        if self.offline:
            return 16384 if gpu.large_batch_defaults else 8192
        return gpu.default_max_num_batched_tokens

    def kv_cache_tokens(self, facts: ModelFacts) -> int | None:
        """The KV-cache tokens the run's engine holds: those its server's log printed, or as ``pulumi-vllm size``
        plans them (``plan_capacity`` at vLLM's default memory utilisation and the model's own context length): the
        batch limit when long requests fill the cache before ``max_num_seqs`` does. Where the cache cannot hold one
        request of the model's full context, vLLM refuses to start until ``--max-model-len`` is lowered, which leaves
        the cache as large, so its tokens still bound the batch. ``None`` where the planner finds no room for a cache at all (the server must
        have run with settings the run does not state)."""
        from pulumi_vllm.capacity.planner import plan_capacity

        if self.logged_kv_cache_tokens is not None:
            return self.logged_kv_cache_tokens
        plan = plan_capacity(facts, self.gpu, self.tensor_parallel_size, self.pipeline_parallel_size,
                             weight_dtype=self.weight_dtype, model_id=self.model)
        return plan.kv_cache_tokens if plan.kv_cache_tokens > 0 else None

    def setting(self) -> tuple[ModelFacts, ServingLayout, Workload]:
        """The model's facts, the layout (vLLM's default ``max_num_seqs`` and budget for the GPU, the planned KV
        cache) and the workload of the run.

        Raises:
            ValueError: the model has no facts (not in the catalog, no local config.json), the GPU is unknown, or
                the load is not one the model describes (a rate under a concurrency cap).
        """
        from pulumi_vllm.capacity.gpus import lookup_gpu
        from pulumi_vllm.models.resolve import resolve_facts

        facts, _ = resolve_facts(self.model)
        if facts is None:
            raise ValueError(f"model {self.model!r}: no model facts (catalog or a local folder with config.json)")
        layout = ServingLayout(
            gpu=self.gpu, tensor_parallel_size=self.tensor_parallel_size,
            pipeline_parallel_size=self.pipeline_parallel_size, weight_dtype=self.weight_dtype, model_id=self.model,
            max_num_seqs=lookup_gpu(self.gpu).default_max_num_seqs, max_num_batched_tokens=self.engine_budget(),
            kv_cache_tokens=self.kv_cache_tokens(facts), async_scheduling=self.async_scheduling,
        )
        if self.request_rate is not None:
            if self.concurrency:
                raise ValueError(f"a run at {self.request_rate:g} requests/s under a cap of {self.concurrency} clients: "
                                 "the model has no rate with a client cap")
            workload = Workload(self.input_tokens, self.output_tokens, rate=self.request_rate, requests=self.requests,
                                varied_lengths=self.varied_lengths)
        elif self.is_burst:
            # Every prompt sent at once (no --max-concurrency, an infinite --request-rate): a finite run whose
            # arrival window is nil.
            workload = Workload(self.input_tokens, self.output_tokens, rate=math.inf, requests=self.requests,
                                varied_lengths=self.varied_lengths)
        else:
            workload = Workload(self.input_tokens, self.output_tokens, concurrency=self.concurrency,
                                requests=self.requests, varied_lengths=self.varied_lengths)
        return facts, layout, workload

    def calibrate(self, constants: Constants | None = None) -> Constants:
        """The constants with the request overhead that makes this run's predicted median TTFT its measured one.

        Raises:
            ValueError: the run has no measured TTFT, or :meth:`setting` fails.
        """
        if self.ttft_ms is None or not self.ttft_ms > 0:
            raise ValueError(f"the run has no measured median TTFT (ttft_ms: {self.ttft_ms!r})")
        facts, layout, workload = self.setting()
        return calibrate_request_overhead(facts, layout, workload, float(self.ttft_ms), constants)


def calibrate_from_file(path: Path, constants: Constants | None = None) -> tuple[Constants, MeasuredRun]:
    """Calibrate on the run in ``path``: the JSON ``pulumi-vllm bench --calibration-json`` writes (its
    ``measurement``), or one measurement's fields alone.

    Raises:
        ValueError: the file cannot be read, is not such a run, or the run cannot be predicted (the message says
            which field).
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read {path}: {error}") from None
    values = data.get("measurement", data) if isinstance(data, dict) else None
    if not isinstance(values, dict):
        raise ValueError(  # noqa: TRY004 - the caller reports a bad file as the option's error
            f"{path}: not a measurement (a JSON object with the fields pulumi-vllm bench writes)")
    required = ("model", "gpu", "tensor_parallel_size", "input_tokens", "output_tokens", "concurrency", "ttft_ms")
    missing = [name for name in required if values.get(name) is None]
    if missing:
        raise ValueError(f"{path}: the measurement has no {', '.join(missing)}")
    run = MeasuredRun.from_fields(values)
    return run.calibrate(constants), run
