"""Replicas and KEDA targets for a traffic objective: the pure search that ``size --rate`` and a stack's
``autoscaling.objective`` share.

:func:`size_replicas` finds the fewest replicas of one layout that serve a rate within the latency objectives
(:mod:`pulumi_vllm.capacity.performance` predicts each count); :func:`autoscaling_targets` turns that count and
its prediction into KEDA's thresholds and replica bounds. ``size --write-stack`` writes the targets into a
stack file; the serving plan derives the same targets from a stack's objective at render time.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from pulumi_vllm.capacity.performance import (
    AutoscalingTargets,
    Constants,
    Prediction,
    ServingLayout,
    Workload,
    autoscaling_targets,
    predict,
)
from pulumi_vllm.models.facts import ModelFacts

MAX_REPLICAS = 512
"""Most replicas the search tries when nothing else bounds it."""

CAPACITY_SHARE = 0.9
"""Share of a replica's full-batch capacity the first guess loads it to (queueing grows steeply above)."""


def hit_rate_words(share: float) -> str:
    """``", 60% of each prompt in the prefix cache"`` for a workload line, or nothing at a hit rate of 0."""
    return f", {share:.0%} of each prompt in the prefix cache" if share else ""


@dataclass(frozen=True)
class TrafficObjective:
    """A request rate of one request shape, and the latency it must be served within."""

    rate: float
    """Requests/s over the whole deployment (``size --rate``, ``autoscaling.objective.requestsPerSecond``)."""
    input_tokens: int
    output_tokens: int
    ttft_p90_ms: float | None = None
    itl_p90_ms: float | None = None
    prefix_hit_rate: float = 0.0
    """Share of each prompt found in vLLM's prefix cache (``Workload.prefix_hit_rate``)."""

    @property
    def workload(self) -> Workload:
        """The objective as the performance model's Poisson workload."""
        return Workload(self.input_tokens, self.output_tokens, rate=self.rate, prefix_hit_rate=self.prefix_hit_rate)


@dataclass(frozen=True)
class ReplicaSizing:
    """What the search found for one layout."""

    replicas: int
    """The fewest replicas tried that meet the objective (the last tried when none did)."""
    prediction: Prediction
    """The prediction at ``replicas``."""
    previous: Prediction
    """The prediction at the count tried before (``prediction`` itself when the first guess met it)."""
    meets: bool
    """The objective holds at ``replicas``."""


def meets(prediction: Prediction, objective: TrafficObjective) -> bool:
    """The prediction serves the rate (not saturated) within the latency objectives."""
    if prediction.saturated:
        return False
    if objective.ttft_p90_ms is not None and prediction.ttft_ms.p90 > objective.ttft_p90_ms:
        return False
    return objective.itl_p90_ms is None or prediction.itl_ms.p90 <= objective.itl_p90_ms


def size_replicas(
    facts: ModelFacts, layout: Callable[[int], ServingLayout], objective: TrafficObjective,
    max_replicas: int = MAX_REPLICAS, constants: Constants | None = None,
) -> ReplicaSizing:
    """Replicas of ``layout(replicas)`` that serve ``objective``: from the capacity at 90% load, then up
    (doubling below 8, a quarter more above) until the latency objectives hold or ``max_replicas`` is reached.

    Raises:
        ValueError: the layout has no performance figures (its GPU) or the objective is not a workload.
    """
    workload = objective.workload
    first = predict(facts, layout(1), workload, constants)
    replicas = max(1, math.ceil(objective.rate / (first.capacity_requests_per_s * CAPACITY_SHARE)))
    replicas = min(replicas, max_replicas)
    prediction = predict(facts, layout(replicas), workload, constants)
    previous = prediction
    while not meets(prediction, objective) and replicas < max_replicas:
        previous = prediction
        replicas = min(max_replicas, replicas * 2 if replicas < 8 else replicas + max(1, replicas // 4))
        prediction = predict(facts, layout(replicas), workload, constants)
    return ReplicaSizing(replicas, prediction, previous, meets(prediction, objective))


def targets_for(sizing: ReplicaSizing, objective: TrafficObjective) -> AutoscalingTargets:
    """KEDA's targets for the replicas the search found (what ``size --write-stack`` writes)."""
    return autoscaling_targets(sizing.prediction, sizing.replicas, objective.rate, objective.ttft_p90_ms)


def shortfall(sizing: ReplicaSizing, objective: TrafficObjective) -> str:
    """Why the objective is missed at the most replicas tried, and by how much (for a refusal)."""
    prediction = sizing.prediction
    if prediction.saturated:
        served = prediction.capacity_requests_per_s
        return (f"{sizing.replicas} replica(s) serve at most {served:.3g} requests/s, "
                f"{(1 - served / objective.rate) * 100:.0f}% short of {objective.rate:g}")
    misses = []
    if objective.ttft_p90_ms is not None and prediction.ttft_ms.p90 > objective.ttft_p90_ms:
        misses.append(f"TTFT p90 {prediction.ttft_ms.p90:.1f} ms against {objective.ttft_p90_ms:g} "
                      f"({(prediction.ttft_ms.p90 / objective.ttft_p90_ms - 1) * 100:.0f}% over)")
    if objective.itl_p90_ms is not None and prediction.itl_ms.p90 > objective.itl_p90_ms:
        misses.append(f"ITL p90 {prediction.itl_ms.p90:.1f} ms against {objective.itl_p90_ms:g} "
                      f"({(prediction.itl_ms.p90 / objective.itl_p90_ms - 1) * 100:.0f}% over)")
    return f"at {sizing.replicas} replica(s) the predicted " + "; ".join(misses)
