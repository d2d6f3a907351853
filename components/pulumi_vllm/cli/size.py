"""``pulumi-vllm size``: KV-cache capacity and vLLM's start-up verdict for a model on a GPU type."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any

from pulumi_vllm.capacity import planner as capacity
from pulumi_vllm.capacity.gpus import known_gpus
from pulumi_vllm.capacity.layout import LayoutAdvice, LayoutCandidate, NoLayoutError
from pulumi_vllm.capacity.planner import CapacityPlan
from pulumi_vllm.capacity.remedies import Refusal, explain, prefer_one_node
from pulumi_vllm.cli.size_plan import plan_for_flags
from pulumi_vllm.distributed.parallelism import TopologyError
from pulumi_vllm.errors import UserError
from pulumi_vllm.models.checkpoint import read_safetensors_headers
from pulumi_vllm.models.facts import ModelFacts
from pulumi_vllm.models.resolve import resolve_model_facts


def parameters_in_checkpoint(folder: Path) -> float | None:
    """Elements in the ``*.safetensors`` files of a local model folder, read from their headers.

    Only each file's JSON header (tensor shapes) is read, never the tensors. ``None`` when the
    folder has no readable safetensors files.
    """
    tensors = read_safetensors_headers(folder)
    return float(tensors.num_elements) if tensors is not None and tensors.num_elements else None


def _facts(model: str, revision: str | None = None) -> tuple[ModelFacts, str]:
    """The model's facts: a local folder, the catalog, or the model's files on the Hub (token from HF_TOKEN).

    Why the Hub gave nothing (no network, offline, gated...) is part of the error; a stale cached copy
    used instead of the Hub is a note on stderr.
    """
    try:
        resolved = resolve_model_facts(model, revision=revision, token=os.environ.get("HF_TOKEN") or None, hub=True)
    except ValueError as error:
        raise UserError(str(error)) from None
    facts, origin = resolved.facts, resolved.origin
    if facts is not None:
        for note in resolved.notes:
            print(f"note: {note}", file=sys.stderr)
    else:
        from pulumi_vllm.models.catalog import known_models

        tried = f" ({resolved.notes[0]})" if resolved.notes else ""
        raise UserError(
            f"unknown model {model!r}: not in the built-in catalog, not a local folder with a "
            f"config.json, and not read from the Hub{tried}. Catalog models: {', '.join(known_models())}"
        )
    if facts.num_parameters is None and Path(model).is_dir():
        counted = parameters_in_checkpoint(Path(model))
        if counted:
            facts = facts.model_copy(update={"num_parameters": counted})
    return facts, origin


def _human(plan: CapacityPlan, origin: str, how: str = "") -> list[str]:
    """The plan in aligned lines; ``how`` says where the layout comes from (empty: the user's)."""
    worst = min(plan.stages, key=lambda stage: stage.kv_cache_blocks)
    gpus = plan.tensor_parallel_size * plan.pipeline_parallel_size
    lines = [
        f"model:        {plan.model_id} (facts: {origin}), weights {plan.weight_dtype}",
        (
            f"layout:       tensor_parallel_size={plan.tensor_parallel_size}, "
            f"pipeline_parallel_size={plan.pipeline_parallel_size} ({gpus} x {plan.gpu})"
            + (f", {how}" if how else "")
        ),
        (
            f"vLLM:         {plan.vllm_version} accounting, gpu_memory_utilization={plan.gpu_memory_utilization}, "
            f"max_model_len={plan.max_model_len}, kv_cache_dtype={plan.kv_cache_dtype}"
        ),
        (
            f"per GPU:      {plan.requested_gib_per_gpu:.2f} GiB requested = weights {worst.weights_gib:.2f}"
            f" + activation {worst.activation_gib:.2f} + non-torch {worst.non_torch_gib:.2f}"
            f" + CUDA graphs {worst.cuda_graph_gib:.2f} + KV cache {worst.kv_cache_gib:.2f} GiB"
            + (f" (tightest of {len(plan.stages)} pipeline stages)" if len(plan.stages) > 1 else "")
        ),
        (
            f"KV cache:     {plan.kv_cache_tokens:,} tokens, {plan.max_concurrency:.2f}x concurrency at "
            f"{plan.max_model_len:,} tokens per request"
        ),
        f"verdict:      {'fits' if plan.fits else 'does not fit'}: {plan.message}",
    ]
    lines += [f"note:         {note}" for note in plan.notes]
    return lines


def _is_chosen(plan: CapacityPlan, candidate: LayoutCandidate) -> bool:
    return plan.fits and (candidate.tensor_parallel_size, candidate.pipeline_parallel_size) == (
        plan.tensor_parallel_size, plan.pipeline_parallel_size,
    )


def _weighed(plan: CapacityPlan, candidates: tuple[LayoutCandidate, ...], args: argparse.Namespace) -> list[str]:
    """The layouts weighed, one table row each, in the order they were weighed."""
    header = ("TP x PP", "GPUs", "nodes", "KV-cache tokens", "concurrency", "fits")
    rows = [header]
    for candidate in candidates:
        sized = candidate.plan
        verdict = f"no: {candidate.reason}"
        if candidate.fits:
            verdict = "yes, chosen" if _is_chosen(plan, candidate) else "yes"
        rows.append((
            f"{candidate.tensor_parallel_size} x {candidate.pipeline_parallel_size}",
            str(candidate.gpus),
            str(candidate.nodes) if candidate.nodes is not None else "-",
            f"{sized.kv_cache_tokens:,}" if sized else "-",
            f"{sized.max_concurrency:.2f}x" if sized else "-",
            verdict,
        ))
    widths = [max(len(row[column]) for row in rows) for column in range(len(header) - 1)]
    title = (
        f"weighed:      nodes of {args.gpus} {plan.gpu} GPUs, at least {args.min_concurrency:g}x concurrency at "
        f"{plan.max_model_len:,} tokens per request"
    )
    lines = [title]
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [cell.rjust(width) for cell, width in zip(row[1:-1], widths[1:])]
        lines.append("  " + "  ".join([*cells, row[-1]]))
    return lines


NOT_ESTIMATED = 3
"""Exit status of ``size`` for an engine whose memory use the planner does not estimate."""


def _not_estimated(args: argparse.Namespace) -> int | None:
    from pulumi_vllm.engine.profiles import profile

    engine = profile(args.engine)
    if engine.vllm_based:
        return None
    reason = (
        f"the planner follows vLLM's memory accounting; {engine.title} ({engine.kind}) allocates its memory its "
        "own way"
    )
    if args.json:
        print(json.dumps({"model": args.model, "engine": engine.kind, "estimated": False, "reason": reason}, indent=2))
    else:
        print(f"model:        {args.model}\nengine:       {engine.kind}\nverdict:      not estimated: {reason}")
    return NOT_ESTIMATED


def _with_hf_overrides(text: str, facts: ModelFacts, origin: str) -> tuple[ModelFacts, str]:
    """The facts with the context vLLM derives under ``--hf-overrides`` (RoPE scaling), and the origin saying so."""
    import json

    from pulumi_vllm.models.rope import apply_rope, check_hf_overrides, effective_context

    try:
        overrides = json.loads(text)
    except ValueError as error:
        raise UserError(f"--hf-overrides {text!r} is not accepted: {error}") from None
    if not isinstance(overrides, dict):
        raise UserError(f"--hf-overrides {text!r} is not accepted: a JSON object is")
    try:
        check_hf_overrides(overrides)
    except ValueError as error:
        raise UserError(f"--hf-overrides {text!r} is not accepted: {error}") from None
    tokens, how = effective_context(facts, overrides)
    return apply_rope(facts, overrides) or facts, f"{origin}; context {tokens}: {how}"


def run_size(args: argparse.Namespace) -> int:
    """Print the plan; 0 when the model fits, 1 when it does not, 3 when the engine's memory is not estimated."""
    skipped = _not_estimated(args)
    if skipped is not None:
        return skipped
    facts, origin = _facts(args.model, args.revision)
    if args.hf_overrides:
        facts, origin = _with_hf_overrides(args.hf_overrides, facts, origin)
    from pulumi_vllm.cli import size_objective

    if size_objective.wanted(args):
        return size_objective.run(args, facts)
    if args.gpu is None:
        raise UserError("--gpu is required (or give --rate to search every GPU type for a traffic target)")
    advice: LayoutAdvice | None = None
    candidates: tuple[LayoutCandidate, ...] = ()
    reason = ""
    refusal: Refusal | None = None
    except_closest: CapacityPlan | None = None
    try:
        plan, advice = plan_for_flags(args, facts)
    except NoLayoutError as error:
        if error.closest is None:
            raise UserError(str(error)) from None
        except_closest = error.closest
        plan = dataclasses.replace(error.closest, fits=False, message=str(error))
        candidates, reason = error.candidates, str(error)
    except (ValueError, TopologyError) as error:
        raise UserError(str(error)) from None
    if advice is not None:
        candidates, reason = advice.candidates, advice.reason
        # Several nodes only when one node's GPUs are not enough: not when a quantized variant or a larger GPU fits one.
        one_node = prefer_one_node(advice, facts, args.gpu, args.gpus, args.min_concurrency)
        if one_node is not None:
            closest, refusal = one_node
            plan = dataclasses.replace(closest, fits=False, message=closest.message if not closest.fits else (
                f"{closest.max_concurrency:.2f}x concurrency, below the required {args.min_concurrency:g}x"))
            reason = (
                f"a quantized variant or a larger GPU fits one node of {args.gpus} GPU(s), so pipeline stages across "
                f"nodes come last; without them: {advice.reason}"
            )
            advice = None
    if not plan.fits and refusal is None:
        refusal = explain(except_closest or plan, facts, args.gpu, gpus_per_node=args.gpus,
                          min_concurrency=args.min_concurrency)
    suggested = bool(candidates)
    if args.json:
        figures = plan.as_json()
        if suggested:
            figures["layout_reason"] = reason
            figures["layouts"] = [candidate.as_json(_is_chosen(plan, candidate)) for candidate in candidates]
        if refusal is not None:
            figures["reason"] = refusal.reason
            figures["remedies"] = list(refusal.remedies)
        print(json.dumps(figures, indent=2))
    else:
        how = "suggested" if advice else "the closest of the layouts weighed" if suggested else ""
        lines = _human(plan, origin, how)
        if advice:  # without a fitting layout the verdict says why
            lines.insert(2, f"why:          {reason}")
        if refusal is not None:
            verdict = next(index for index, line in enumerate(lines) if line.startswith("verdict:"))
            lines.insert(verdict, f"reason:       {refusal.reason}")
            lines[verdict + 2:verdict + 2] = [f"remedy {index}:     {text}" for index, text in
                                              enumerate(refusal.remedies, 1)] or ["remedy:       none found"]
        if suggested:
            lines += _weighed(plan, candidates, args)
        print("\n".join(lines))
    return 0 if plan.fits else 1


def _utilization(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def _positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    return parse


def add_parser(subparsers: Any) -> None:
    """Register ``size``."""
    parser = subparsers.add_parser(
        "size",
        help="KV-cache capacity of a model on a GPU type, and whether vLLM will start",
        description=(
            "Follow vLLM's own memory accounting to size the KV cache per GPU, the tokens it holds and "
            "the requests of max_model_len it serves at once. With --gpus (GPUs per node) and no "
            "parallel sizes, suggest a layout as vLLM advises: tensor parallelism over one node's GPUs "
            "(the largest size the model's heads allow), pipeline stages only across nodes when one node "
            "is not enough; the layouts weighed are listed. Exit 0 if it fits, 1 if not, 3 when --engine names an "
            "engine not built on vLLM (not estimated)."
        ),
    )
    parser.add_argument("--model", required=True,
                        help="Hugging Face id (a model outside the catalog is read from the Hub), or a local folder "
                        "with config.json")
    parser.add_argument("--revision", default=None,
                        help="branch, tag or commit of a model read from the Hub (default main); HF_TOKEN is its token")
    parser.add_argument("--gpu", default=None,
                        help=f"GPU type (case-insensitive): {', '.join(known_gpus())}, or custom:<GiB> "
                        "(optional with --rate: search)")
    parser.add_argument("--gpus", type=_positive(int), default=None, help="GPUs per node (suggests a layout)")
    parser.add_argument("--tensor-parallel-size", type=_positive(int), default=None)
    parser.add_argument("--pipeline-parallel-size", type=_positive(int), default=None)
    parser.add_argument("--max-model-len", type=_positive(int), default=None, help="default: the model's")
    parser.add_argument("--hf-overrides", default=None, metavar="JSON",
                        help="vLLM's --hf-overrides (e.g. a YaRN rope_parameters map): the context it derives is sized")
    parser.add_argument("--gpu-memory-utilization", type=_utilization, default=0.9)
    parser.add_argument("--kv-cache-dtype", default="auto", choices=capacity.KV_CACHE_DTYPES)
    parser.add_argument("--data-parallel-size", type=_positive(int), default=1,
                        help="engine replicas; the MoE layers split over tensor x data parallel ranks")
    parser.add_argument("--enable-expert-parallel", action="store_true",
                        help="whole routed experts per rank (over tensor x data parallel ranks) instead of split ones")
    parser.add_argument("--weight-dtype", default=None, help="weight precision (default: from the model)")
    parser.add_argument("--vllm-version", default=capacity.PINNED_VLLM_VERSION,
                        help=f"accounting of this vLLM release (default {capacity.PINNED_VLLM_VERSION})")
    parser.add_argument("--min-concurrency", type=_positive(float), default=1.0,
                        help="with --gpus: requests of max_model_len the suggestion must hold at once")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    from pulumi_vllm.engine.profiles import ENGINE_KINDS

    parser.add_argument("--engine", default="vllm", choices=ENGINE_KINDS,
                        help="the stack's engine.kind; only vLLM-based engines (vllm, triton, ray-serve-llm) are estimated")
    from pulumi_vllm.cli.size_objective import add_arguments

    add_arguments(parser)
    parser.set_defaults(func=run_size)
