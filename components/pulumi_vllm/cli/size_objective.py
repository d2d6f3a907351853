"""``pulumi-vllm size --rate R``: the cheapest layout that serves a traffic target within latency objectives.

With ``--rate`` (requests/s) or ``--concurrency`` and a ``--gpu``, predicts that load on the given layout
(:mod:`pulumi_vllm.capacity.performance`). With ``--rate`` and no ``--gpu``, weighs every GPU instance or
machine type (EC2, Compute Engine, Azure) of :mod:`pulumi_vllm.cloud_plan.instances` whose GPU has performance
figures, every tensor-parallel size that fits its node and the model, and as many replicas as the objective needs;
prices come from ``cloud_plan/prices.json`` (or ``--price-file``), each with its region, source and date.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pulumi_vllm.capacity.gpus import lookup_gpu
from pulumi_vllm.capacity.layout import NoLayoutError
from pulumi_vllm.capacity.measured_run import calibrate_from_file
from pulumi_vllm.capacity.objective import MAX_REPLICAS, TrafficObjective, hit_rate_words, size_replicas
from pulumi_vllm.capacity.performance import (
    Constants,
    Prediction,
    ServingLayout,
    Workload,
    autoscaling_targets,
    fitted_constants,
    gpu_performance,
    known_performance_gpus,
    predict,
)
from pulumi_vllm.capacity.planner import plan_capacity
from pulumi_vllm.cli.size_plan import plan_for_flags
from pulumi_vllm.cloud_plan.instances import INSTANCE_TYPE_LABEL, INSTANCES, InstanceType
from pulumi_vllm.distributed.parallelism import plan_topology
from pulumi_vllm.errors import UserError
from pulumi_vllm.models.facts import ModelFacts

PRICES_FILE = Path(__file__).resolve().parent.parent / "cloud_plan" / "prices.json"
STALE_AFTER_DAYS = 180
"""Days after ``as_of`` from which the search warns that the prices may be out of date."""
PRICE_FIELDS = ("on_demand_usd_per_hour", "spot_usd_per_hour", "capacity_block_usd_per_hour")
"""The hourly figures a price row may carry (each optional; a row without any has no price)."""
SHOWN = 25
"""Candidates the table prints (cheapest first); ``--json`` has them all."""
NO_FEASIBLE_LAYOUT = 1
NAME_WIDTH = max(len(name) for name in INSTANCES)
"""Width of the table's instance column (Azure's VM size names are the longest)."""


@dataclass(frozen=True)
class PriceTable:
    """Hourly prices by instance type, their date, and warnings about them."""

    prices: dict[str, dict[str, Any]]
    as_of: datetime.date
    source: str
    warnings: tuple[str, ...]

    def region(self, instance: str) -> str | None:
        """The region a type's price is for (``None``: the row does not say, as in files written before rows had
        a ``region``)."""
        region = self.prices.get(instance, {}).get("region")
        return None if region is None else str(region)

    def hourly(self, instance: str) -> tuple[float | None, float | None, str]:
        """``(on-demand or reservation $/h, spot $/h, what the first figure is)`` of one instance type."""
        row = self.prices.get(instance, {})
        if "on_demand_usd_per_hour" in row:
            return float(row["on_demand_usd_per_hour"]), row.get("spot_usd_per_hour"), "on-demand"
        if "capacity_block_usd_per_hour" in row:
            return float(row["capacity_block_usd_per_hour"]), row.get("spot_usd_per_hour"), "capacity block"
        return None, None, "no sourced price"


def load_prices(path: Path | None = None, today: datetime.date | None = None) -> PriceTable:
    """The price table (``path`` or the built-in one), with a warning when it is older than 180 days.

    Raises:
        UserError: a price file that cannot be read or lacks ``as_of`` or ``prices``.
    """
    where = path or PRICES_FILE
    try:
        data = json.loads(where.read_text(encoding="utf-8"))
        as_of = datetime.date.fromisoformat(str(data["as_of"]))
        prices = dict(data["prices"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UserError(
            f"--price-file {where}: cannot read it ({error}); expected JSON with \"as_of\" (YYYY-MM-DD) and "
            "\"prices\" ({instance type: {\"on_demand_usd_per_hour\": ..., \"spot_usd_per_hour\": ..., "
            "\"region\": ..., \"source\": ..., \"date\": ...}})"
        ) from None
    for instance, row in prices.items():
        for key in PRICE_FIELDS:
            value = row.get(key) if isinstance(row, dict) else None
            if isinstance(row, dict) and key in row and (
                    isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
                raise UserError(f"--price-file {where}: prices.{instance}.{key}: {value!r} is not accepted; expected "
                                "a number of USD per hour, 0 or more")
        if not isinstance(row, dict):
            raise UserError(f"--price-file {where}: prices.{instance}: {row!r} is not accepted; expected an object "
                            "such as {\"on_demand_usd_per_hour\": 1.0}")
    today = today or datetime.date.today()
    warnings = []
    age = (today - as_of).days
    if age > STALE_AFTER_DAYS:
        dated_by = ("the file's as_of" if path else "the built-in table's as_of, the oldest date of its on-demand "
                    "rows; each row's date is the newest its prices can be, and its source and date_basis say how "
                    "that date was set")
        warnings.append(
            f"prices are {age} days old (as of {as_of}, more than {STALE_AFTER_DAYS}; {dated_by}, in {where}): "
            "pass --price-file FILE with current or negotiated prices"
        )
    return PriceTable(prices, as_of, str(where), tuple(warnings))


@dataclass(frozen=True)
class Objective(TrafficObjective):
    """What the search must meet: the traffic objective and a budget."""

    budget_usd_per_hour: float | None = None


@dataclass(frozen=True)
class Candidate:
    """One layout weighed by the search."""

    instance: InstanceType
    tensor_parallel_size: int
    replicas: int
    nodes: int
    prediction: Prediction
    usd_per_hour: float | None
    spot_usd_per_hour: float | None
    price_kind: str
    price_region: str | None
    """The region the price is for, as the price table says."""
    meets_latency: bool
    meets_budget: bool
    binding: str
    """What set the replica count: throughput, ttft_p90 or itl_p90."""

    @property
    def meets_objective(self) -> bool:
        """Latency objectives met at the rate, within the budget."""
        return self.meets_latency and self.meets_budget

    @property
    def usd_per_million_output_tokens(self) -> float | None:
        """Hourly cost over the output tokens an hour at the predicted throughput."""
        if self.usd_per_hour is None or self.prediction.output_tokens_per_s <= 0:
            return None
        return self.usd_per_hour / (self.prediction.output_tokens_per_s * 3600) * 1e6

    def as_json(self) -> dict[str, Any]:
        """The candidate under the names ``size --json`` prints."""
        return {
            "gpu": self.instance.gpu,
            "instance": self.instance.name,
            "provider": self.instance.provider,
            "tensor_parallel_size": self.tensor_parallel_size,
            "pipeline_parallel_size": 1,
            "data_parallel_size": 1,
            "replicas": self.replicas,
            "nodes": self.nodes,
            "predicted": self.prediction.as_json(),
            "usd_per_hour": None if self.usd_per_hour is None else round(self.usd_per_hour, 2),
            "spot_usd_per_hour": None if self.spot_usd_per_hour is None else round(self.spot_usd_per_hour, 2),
            "price_kind": self.price_kind,
            "price_region": self.price_region,
            "usd_per_million_output_tokens": (
                None if self.usd_per_million_output_tokens is None else round(self.usd_per_million_output_tokens, 4)
            ),
            "meets_objective": self.meets_objective,
            "binding": self.binding,
        }


def _binding(prediction: Prediction, objective: Objective) -> str:
    """The constraint closest to its limit at one replica fewer (what forced the last replica), or at the chosen
    count when the first count tried met the objective: the rate's share of the capacity against the latencies'
    shares of their objectives."""
    if prediction.saturated:
        return "throughput"
    capacity = prediction.capacity_requests_per_s
    shares = {"throughput": objective.rate / capacity if capacity > 0 else math.inf}
    if objective.ttft_p90_ms is not None:
        shares["ttft_p90"] = prediction.ttft_ms.p90 / objective.ttft_p90_ms
    if objective.itl_p90_ms is not None:
        shares["itl_p90"] = prediction.itl_ms.p90 / objective.itl_p90_ms
    return max(shares, key=lambda key: shares[key])


def _weigh(
    facts: ModelFacts, model_id: str, instance: InstanceType, tp: int, objective: Objective, prices: PriceTable,
    kv_cache_tokens: int, constants: Constants | None = None,
) -> Candidate:
    per_node = instance.gpus // tp
    gpu = instance.gpu_type

    def layout(replicas: int) -> ServingLayout:
        return ServingLayout(
            gpu.name, tensor_parallel_size=tp, replicas=replicas, model_id=model_id, kv_cache_tokens=kv_cache_tokens,
            max_num_seqs=gpu.default_max_num_seqs, max_num_batched_tokens=gpu.default_max_num_batched_tokens,
        )

    sizing = size_replicas(facts, layout, objective, constants=constants)
    replicas, prediction = sizing.replicas, sizing.prediction
    binding = _binding(sizing.previous, objective)
    nodes = math.ceil(replicas / per_node)
    hourly, spot, kind = prices.hourly(instance.name)
    cost = None if hourly is None else hourly * nodes
    within = objective.budget_usd_per_hour is None or (cost is not None and cost <= objective.budget_usd_per_hour)
    return Candidate(instance, tp, replicas, nodes, prediction, cost,
                     None if spot is None else float(spot) * nodes, kind, prices.region(instance.name), sizing.meets,
                     within, binding)


def workload_max_model_len(input_tokens: int, output_tokens: int) -> int:
    """The ``--max-model-len`` a deployment for this load sets: its requests' length rounded up to a power of two,
    at least 2048 (a KV cache planned at the model's whole context would hold fewer of them)."""
    return max(2048, 1 << (input_tokens + output_tokens - 1).bit_length())


def search(
    facts: ModelFacts, model_id: str, objective: Objective, prices: PriceTable, constants: Constants | None = None,
) -> tuple[list[Candidate], int | None]:
    """Every layout weighed (cheapest first, unpriced last) and the index of the cheapest that meets the objective."""
    known = set(known_performance_gpus())
    candidates: list[Candidate] = []
    max_model_len = workload_max_model_len(objective.input_tokens, objective.output_tokens)
    for instance in INSTANCES.values():
        if instance.gpu not in known:
            continue
        for tp in (1, 2, 4, 8):
            if tp > instance.gpus or facts.num_attention_heads % tp:
                continue
            plan = plan_capacity(facts, instance.gpu_type, tp, 1, max_model_len=max_model_len, model_id=model_id)
            if not plan.fits:
                continue
            candidates.append(_weigh(facts, model_id, instance, tp, objective, prices, plan.kv_cache_tokens, constants))
    candidates.sort(key=lambda c: (not c.meets_objective, c.usd_per_hour is None, c.usd_per_hour or 0.0, c.nodes))
    chosen = next((index for index, c in enumerate(candidates) if c.meets_objective and c.usd_per_hour is not None),
                  None)
    return candidates, chosen


def _why_none(candidates: list[Candidate], objective: Objective) -> str:
    latency_ok = [c for c in candidates if c.meets_latency]
    if not candidates:
        return "no GPU instance type with performance figures fits the model"
    if not latency_ok:
        messages = []
        if objective.ttft_p90_ms is not None:
            best = min(c.prediction.ttft_ms.p90 for c in candidates)
            if best > objective.ttft_p90_ms:
                messages.append(f"--ttft-p90 {objective.ttft_p90_ms:g} ms: the best layout reaches {best:.1f} ms "
                                f"({(best / objective.ttft_p90_ms - 1) * 100:.0f}% over)")
        if objective.itl_p90_ms is not None:
            best = min(c.prediction.itl_ms.p90 for c in candidates)
            if best > objective.itl_p90_ms:
                messages.append(f"--itl-p90 {objective.itl_p90_ms:g} ms: the best layout reaches {best:.1f} ms "
                                f"({(best / objective.itl_p90_ms - 1) * 100:.0f}% over)")
        return "; ".join(messages) or f"no layout serves {objective.rate:g} requests/s within {MAX_REPLICAS} replicas"
    priced = [c for c in latency_ok if c.usd_per_hour is not None]
    unpriced = sorted({c.instance.name for c in latency_ok if c.usd_per_hour is None},
                      key=lambda name: (INSTANCES[name].gpus, name))
    unpriced_note = ""
    if unpriced:
        shown = ", ".join(unpriced[:4]) + (f" and {len(unpriced) - 4} more" if len(unpriced) > 4 else "")
        unpriced_note = (f"; {len(unpriced)} instance type(s) meet the latency objectives but have no sourced price "
                         f"({shown}): pass --price-file with their prices to weigh them")
    if not priced:
        return "the layouts that meet the latency objectives have no sourced price" + (
            unpriced_note or " (pass --price-file)")
    cheapest = min(priced, key=lambda c: c.usd_per_hour or 0.0)
    assert objective.budget_usd_per_hour is not None and cheapest.usd_per_hour is not None
    return (f"--budget {objective.budget_usd_per_hour:g} USD/h: the cheapest priced layout meeting the latency "
            f"objectives ({cheapest.nodes} x {cheapest.instance.name}) costs {cheapest.usd_per_hour:.2f} USD/h "
            f"({(cheapest.usd_per_hour / objective.budget_usd_per_hour - 1) * 100:.0f}% over, {cheapest.price_kind})"
            + unpriced_note)


def _row(index: int, candidate: Candidate, chosen: int | None) -> str:
    p = candidate.prediction
    cost = "-" if candidate.usd_per_hour is None else f"{candidate.usd_per_hour:.2f}"
    per_million = candidate.usd_per_million_output_tokens
    mark = "chosen" if index == chosen else ("yes" if candidate.meets_objective else "no")
    return (f"  {candidate.instance.name:{NAME_WIDTH}} {candidate.instance.gpu:10} tp={candidate.tensor_parallel_size} "
            f"x{candidate.replicas:<4} {p.requests_per_s:8.2f} {p.output_tokens_per_s:10.0f} "
            f"{p.ttft_ms.p90:9.1f} {p.itl_ms.p90:8.1f} {cost:>9} {'-' if per_million is None else f'{per_million:.3f}':>8}"
            f"  {mark}")


def _calibrated(args: argparse.Namespace) -> Constants | None:
    """The fitted constants with the request overhead of the user's own run (``--calibration FILE``), or ``None``."""
    if not getattr(args, "calibration", None):
        return None
    try:
        constants, run = calibrate_from_file(Path(args.calibration))
    except ValueError as error:
        raise UserError(f"--calibration {args.calibration}: {error}") from None
    print(f"calibrated:   request overhead {constants.request_overhead_ms:.1f} ms (fitted "
          f"{fitted_constants().request_overhead_ms:.1f}) from {run.model} on {run.gpu}, {run.input_tokens} in / "
          f"{run.output_tokens} out, median TTFT {run.ttft_ms:g} ms", file=sys.stderr)
    return constants


def _predict_layout(args: argparse.Namespace, facts: ModelFacts) -> int:
    """Predict the load on the layout ``size`` plans for these flags (the given parallel sizes, or the one
    suggested for ``--gpus``), with its KV cache; exit 1, saying why, when that layout does not fit."""
    gpu = gpu_performance(args.gpu)
    workload = Workload(args.input_tokens, args.output_tokens, rate=args.rate, concurrency=args.concurrency,
                        prefix_hit_rate=args.prefix_hit_rate)
    catalog = lookup_gpu(args.gpu)
    planning = argparse.Namespace(**vars(args))
    if planning.max_model_len is None:
        planning.max_model_len = workload_max_model_len(args.input_tokens, args.output_tokens)
    try:
        plan, _ = plan_for_flags(planning, facts)
    except NoLayoutError as error:
        if error.closest is None:
            raise UserError(str(error)) from None
        # The closest layout tried may fit memory yet fall short of --min-concurrency: as size, it does not fit.
        plan = dataclasses.replace(error.closest, fits=False, message=str(error))
    if not plan.fits:
        where = f"{plan.tensor_parallel_size * plan.pipeline_parallel_size} x {plan.gpu}"
        if args.json:
            print(json.dumps({"model": args.model, "gpu": gpu.name, "fits": False, "message": plan.message}, indent=2))
        else:
            print(f"does not fit: {args.model} on {where} (tensor {plan.tensor_parallel_size} x pipeline "
                  f"{plan.pipeline_parallel_size}, max_model_len {plan.max_model_len}): {plan.message}")
            if args.gpus is None:
                print("no prediction: give --tensor-parallel-size, or --gpus to have a layout suggested")
        return 1
    layout = ServingLayout(
        gpu.name, tensor_parallel_size=plan.tensor_parallel_size,
        pipeline_parallel_size=plan.pipeline_parallel_size, replicas=args.replicas, model_id=args.model,
        kv_cache_dtype=args.kv_cache_dtype, weight_dtype=args.weight_dtype,
        max_num_seqs=catalog.default_max_num_seqs, max_num_batched_tokens=catalog.default_max_num_batched_tokens,
        kv_cache_tokens=plan.kv_cache_tokens,
    )
    prediction = predict(facts, layout, workload, _calibrated(args))
    # --gpus is GPUs per node: a layout of more spans nodes, one pod of whole tensor-parallel groups on each.
    nodes = (plan_topology(plan.tensor_parallel_size, plan.pipeline_parallel_size, gpus_per_node=args.gpus).pods
             if args.gpus else 1)
    if args.json:
        print(json.dumps({"model": args.model, "gpu": gpu.name, "tensor_parallel_size": plan.tensor_parallel_size,
                          "pipeline_parallel_size": plan.pipeline_parallel_size, "nodes_per_replica": nodes,
                          "kv_cache_tokens": plan.kv_cache_tokens, "prefix_hit_rate": args.prefix_hit_rate,
                          "predicted": prediction.as_json()}, indent=2))
    else:
        load = f"{args.rate:g} requests/s" if args.rate is not None else f"{args.concurrency} concurrent clients"
        spread = f" over {nodes} nodes of {args.gpus} GPUs" if nodes > 1 else ""
        print(f"model:        {args.model} on {layout.gpus} x {gpu.name} (tensor {layout.tensor_parallel_size} x "
              f"pipeline {layout.pipeline_parallel_size}{spread}, {layout.replicas} replica(s))")
        print(f"workload:     {args.input_tokens} in / {args.output_tokens} out at {load}"
              f"{hit_rate_words(args.prefix_hit_rate)}; KV cache "
              f"{plan.kv_cache_tokens:,} tokens per replica (max_model_len {plan.max_model_len})")
        print(f"predicted:    {prediction.requests_per_s:.2f} requests/s, {prediction.output_tokens_per_s:.0f} output "
              f"tokens/s; TTFT p50 {prediction.ttft_ms.p50:.1f} / p90 {prediction.ttft_ms.p90:.1f} ms; ITL p50 "
              f"{prediction.itl_ms.p50:.1f} / p90 {prediction.itl_ms.p90:.1f} ms")
        for note in prediction.notes:
            print(f"note:         {note}")
    return 1 if prediction.saturated else 0


def _check_load_flags(args: argparse.Namespace) -> None:
    """Refuse a request shape or load the model cannot take, naming the flag as written."""
    for flag, value in (("--input-tokens", args.input_tokens), ("--output-tokens", args.output_tokens)):
        if value < 1:
            raise UserError(f"{flag} {value}: a request needs at least 1 token")
    if args.concurrency is not None and args.concurrency < 1:
        raise UserError(f"--concurrency {args.concurrency}: at least 1 client")
    if args.rate is not None and not args.rate > 0:
        raise UserError(f"--rate {args.rate:g}: above 0 requests/s")
    if not 0 <= args.prefix_hit_rate < 1:
        raise UserError(f"--prefix-hit-rate {args.prefix_hit_rate:g}: a share of each prompt, at least 0 and below 1 "
                        "(0.4 for 40% of its tokens found in the prefix cache)")


def run(args: argparse.Namespace, facts: ModelFacts) -> int:
    """Predict one layout (``--gpu``) or search (no ``--gpu``); exit 1 when no layout meets the objective."""
    _check_load_flags(args)
    if args.gpu is not None:
        try:
            return _predict_layout(args, facts)
        except ValueError as error:
            raise UserError(str(error)) from None
    if args.rate is None:
        raise UserError("--concurrency needs --gpu (a layout to predict); the search takes --rate")
    prices = load_prices(Path(args.price_file) if args.price_file else None)
    objective = Objective(args.rate, args.input_tokens, args.output_tokens, args.ttft_p90, args.itl_p90,
                          args.prefix_hit_rate, args.budget)
    candidates, chosen = search(facts, args.model, objective, prices, _calibrated(args))
    best = candidates[chosen] if chosen is not None else None
    binding = best.binding if best is not None else None
    reason = "" if best is not None else _why_none(candidates, objective)
    if args.json:
        print(json.dumps({
            "model": args.model, "objective": objective.__dict__, "candidates": [c.as_json() for c in candidates],
            "chosen": chosen, "binding": binding, "reason": reason or None,
            "autoscaling": None if best is None else autoscaling_targets(
                best.prediction, best.replicas, objective.rate, objective.ttft_p90_ms).as_config(),
            "prices": {"as_of": prices.as_of.isoformat(), "source": prices.source, "warnings": list(prices.warnings)},
        }, indent=2))
    else:
        print(f"objective:    {objective.rate:g} requests/s of {objective.input_tokens} in / {objective.output_tokens} "
              f"out" + (f", TTFT p90 <= {objective.ttft_p90_ms:g} ms" if objective.ttft_p90_ms else "")
              + (f", ITL p90 <= {objective.itl_p90_ms:g} ms" if objective.itl_p90_ms else "")
              + (f", at most {objective.budget_usd_per_hour:g} USD/h" if objective.budget_usd_per_hour else "")
              + hit_rate_words(objective.prefix_hit_rate))
        print(f"  {'instance':{NAME_WIDTH}} gpu        layout     req/s  out tok/s  TTFT p90  ITL p90    USD/h  USD/Mtok")
        for index, candidate in enumerate(candidates[:SHOWN]):
            print(_row(index, candidate, chosen))
        if len(candidates) > SHOWN:
            print(f"  ... {len(candidates) - SHOWN} more (--json lists every candidate)")
        if best is not None:
            where = f" in {best.price_region}" if best.price_region else ""
            print(f"chosen:       {best.nodes} x {best.instance.name} ({best.replicas} replica(s) of tensor parallel "
                  f"{best.tensor_parallel_size}), {best.usd_per_hour:.2f} USD/h {best.price_kind}{where}; "
                  f"binding: {binding}")
            price = prices.prices.get(best.instance.name, {})
            dated = f"dated {price.get('date', prices.as_of)}"
            if price.get("date_basis"):
                dated += f", {price['date_basis']}"
            print(f"price:        {str(price.get('source', prices.source)).split(' ', 1)[0]} ({dated})")
            if best.instance.provider == "azure":
                print(f"note:         {best.instance.name} is an Azure VM size: this project does not create AKS "
                      "clusters, so a written stack deploys to an existing cluster (the kubeconfig's context) with a "
                      "node pool of that size")
            targets = autoscaling_targets(best.prediction, best.replicas, objective.rate, objective.ttft_p90_ms)
            print(f"autoscaling:  replicas {targets.min_replicas}-{targets.max_replicas}, waiting requests per replica "
                  f"{targets.waiting_requests_per_replica:g}, KV-cache usage {targets.kv_cache_usage_percent or '-'}%, "
                  f"{targets.running_requests_per_replica:g} running per replica at the target")
        else:
            print(f"no layout:    {reason}")
        for warning in prices.warnings:
            print(f"warning:      {warning}")
    if args.write_stack and best is not None:
        path = write_stack(args.write_stack, args.model, best, objective, args.price_file or "cloud_plan/prices.json")
        print(f"wrote:        {path}")
    return 0 if best is not None else NO_FEASIBLE_LAYOUT


def stack_config(name: str, model: str, candidate: Candidate, objective: Objective) -> dict[str, Any]:
    """The ``pulumi-vllm:*`` keys of a stack for the chosen layout, with KEDA's targets from the model."""
    tp = candidate.tensor_parallel_size
    targets = autoscaling_targets(candidate.prediction, candidate.replicas, objective.rate, objective.ttft_p90_ms)
    context = objective.input_tokens + objective.output_tokens
    resources: dict[str, Any] = {"gpuType": candidate.instance.gpu}
    if candidate.instance.provider == "azure":
        # No cloud section creates AKS node pools: the pods find the chosen VM size by the kubelet's label.
        resources["nodeSelector"] = {INSTANCE_TYPE_LABEL: candidate.instance.name}
    config: dict[str, Any] = {
        "pulumi-vllm:name": name,
        "pulumi-vllm:namespace": "vllm",
        "pulumi-vllm:model": {"id": model},
        "pulumi-vllm:engine": {"maxModelLen": max(2048, 1 << (context - 1).bit_length())},
        "pulumi-vllm:resources": resources,
        "pulumi-vllm:replicas": targets.min_replicas,
        "pulumi-vllm:autoscaling": targets.as_config(),
        "pulumi-vllm:monitoring": {"enabled": True, "monitor": "podMonitor",
                                   "labels": {"release": "kube-prometheus-stack"}},
        # Replicas on several nodes share the weights.
        "pulumi-vllm:cache": {"accessMode": "ReadWriteMany"},
    }
    if tp > 1:
        config["pulumi-vllm:parallelism"] = {"tensorParallelSize": tp, "gpusPerNode": candidate.instance.gpus}
    return config


def write_stack(
    name: str, model: str, candidate: Candidate, objective: Objective, prices_from: str = "cloud_plan/prices.json",
) -> Path:
    """Write ``Pulumi.<name>.yaml`` for the chosen layout in the current folder; its header names the price and
    where it came from (``prices_from``: the built-in table or the ``--price-file``).

    Raises:
        UserError: ``name`` is not a stack name (letters, digits, ``-``, ``_``, ``.``).
    """
    import re

    import yaml

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise UserError(f"--write-stack {name!r}: a stack name is letters, digits, '-', '_' and '.'")
    path = Path(f"Pulumi.{name}.yaml")
    header = (f"# Written by pulumi-vllm size for {objective.rate:g} requests/s of {objective.input_tokens} in / "
              f"{objective.output_tokens} out{hit_rate_words(objective.prefix_hit_rate)}: {candidate.nodes} x "
              f"{candidate.instance.name}"
              + ("" if candidate.usd_per_hour is None else
                 f", {candidate.usd_per_hour:.2f} USD/h ({candidate.price_kind} rate"
                 + (f" in {candidate.price_region}" if candidate.price_region else "") + f", {prices_from})")
              + ".\n"
              + ("" if candidate.instance.provider != "azure" else
                 f"# {candidate.instance.name} is an Azure VM size: the AKS cluster and a node pool of it must exist "
                 "(this project does not create them); the stack deploys through the kubeconfig's context.\n")
              + "# The autoscaling targets come from the predicted per-replica capacity (docs/capacity.md).\n")
    body = yaml.safe_dump({"config": stack_config(name, model, candidate, objective)}, sort_keys=False)
    path.write_text(header + body, encoding="utf-8")
    return path


def wanted(args: argparse.Namespace) -> bool:
    """Whether the arguments ask for a traffic prediction or search rather than the memory plan."""
    return getattr(args, "rate", None) is not None or getattr(args, "concurrency", None) is not None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The traffic-target arguments of ``size``."""
    group = parser.add_argument_group("traffic target (predicted throughput, latency and cost)")
    group.add_argument("--rate", type=float, default=None,
                       help="requests/s over the deployment (Poisson); without --gpu, search the cheapest layout")
    group.add_argument("--concurrency", type=int, default=None,
                       help="closed-loop clients, like vllm bench serve --max-concurrency (with --gpu)")
    group.add_argument("--input-tokens", type=int, default=1024, help="prompt tokens per request (default 1024)")
    group.add_argument("--output-tokens", type=int, default=128, help="output tokens per request (default 128)")
    group.add_argument("--prefix-hit-rate", type=float, default=0.0, metavar="SHARE",
                       help="share of each prompt found in vLLM's prefix cache, 0 to below 1 (a shared system prompt "
                            "or conversation history; vLLM's prefix cache hit rate); default 0")
    group.add_argument("--ttft-p90", type=float, default=None, help="objective: 90th percentile TTFT in ms")
    group.add_argument("--itl-p90", type=float, default=None, help="objective: 90th percentile ITL in ms")
    group.add_argument("--budget", type=float, default=None, help="objective: at most this many USD per hour")
    group.add_argument("--replicas", type=int, default=1, help="with --gpu: replicas the load is spread over")
    group.add_argument("--price-file", default=None,
                       help="JSON of negotiated prices, in cloud_plan/prices.json's shape (docs/capacity.md)")
    group.add_argument("--calibration", default=None, metavar="FILE",
                       help="the JSON pulumi-vllm bench --calibration-json wrote on your deployment: predict with "
                            "the request overhead (front end, client, proxy) measured there")
    group.add_argument("--write-stack", default=None, metavar="NAME",
                       help="write Pulumi.NAME.yaml for the chosen layout")


REFERENCE_WORKLOAD = (1024, 128)
"""Input and output tokens of the workload ``pulumi-vllm diff`` predicts each revision at."""


def predicted_lines(rendered: Any) -> tuple[str, ...]:
    """One line for ``pulumi-vllm diff`` beside the capacity line: what the stack's layout serves at the
    reference workload (full-batch throughput, single-request TTFT and ITL); empty where the planner did not run
    or the GPU has no performance figures."""
    plan = getattr(rendered, "plan", None)
    capacity = getattr(plan, "capacity", None)
    facts = getattr(plan, "facts", None)
    if plan is None or capacity is None or facts is None:
        return ()
    try:
        gpu = lookup_gpu(capacity.gpu)
        layout = ServingLayout(
            capacity.gpu, tensor_parallel_size=capacity.tensor_parallel_size,
            pipeline_parallel_size=capacity.pipeline_parallel_size, replicas=max(1, plan.config.replicas),
            weight_dtype=capacity.weight_dtype, kv_cache_dtype=capacity.kv_cache_dtype,
            kv_cache_tokens=capacity.kv_cache_tokens, model_id=capacity.model_id,
            max_num_seqs=gpu.default_max_num_seqs, max_num_batched_tokens=gpu.default_max_num_batched_tokens,
        )
        inputs, outputs = REFERENCE_WORKLOAD
        single = predict(facts, layout, Workload(inputs, outputs, concurrency=1))
    except ValueError:
        return ()
    full_rate = single.capacity_requests_per_s
    line = (
        f"predicted at {inputs} in / {outputs} out: {full_rate:.2f} requests/s ({full_rate * outputs:.0f} output "
        f"tokens/s) over {layout.replicas} replica(s) at full batch; one request TTFT {single.ttft_ms.p50:.0f} ms, "
        f"ITL {single.itl_ms.p50:.1f} ms"
    )
    return (line,)
