"""The serving performance model: hand-worked cases, published measurements, the objective search, prices."""

from __future__ import annotations

import datetime
import json
import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from pulumi_vllm.capacity import performance
from pulumi_vllm.capacity.performance import ServingLayout, Workload, active_parameters, predict
from pulumi_vllm.cli import size_objective
from pulumi_vllm.models.resolve import resolve_facts

ROOT = Path(__file__).resolve().parent.parent
NEUTRAL = replace(
    performance.fitted_constants(), decode_bandwidth_factor=1.0, kv_bandwidth_factor=1.0, step_overhead_ms=0.0,
    per_sequence_overhead_us=0.0, prefill_efficiency_factor=1.0, request_overhead_ms=0.0, moe_bandwidth_factor=1.0,
)


def facts(model: str):
    found, _ = resolve_facts(model)
    assert found is not None
    return found


def test_dense_decode_step_by_hand() -> None:
    """Llama 3.1 8B, one H100, one sequence of no context: the 8.03B parameters less the embedding (one row is
    gathered, not read), 15.0 GB of bf16, over 129 matrices of about 116 MB, each read at
    0.90 x 116 / (116 + 45) of 3.35 TB/s."""
    from pulumi_vllm.capacity.weights import active_weight_bytes_per_token

    llama = facts("meta-llama/Llama-3.1-8B-Instruct")
    model = performance._derive(llama, ServingLayout("H100"))
    weights = active_weight_bytes_per_token(llama, "bfloat16")
    assert weights == pytest.approx((8.03e9 - 128256 * 4096) * 2, rel=0.01)
    matrix_mb = weights / 129 / 1e6
    share = 0.90 * matrix_mb / (matrix_mb + 45)
    expected = weights / (3350e9 * share)
    assert performance.step_seconds(model, NEUTRAL, 1, 0, 0) == pytest.approx(expected, rel=1e-6)
    assert expected == pytest.approx(6.9e-3, rel=0.02)


def test_moe_active_parameters_by_hand() -> None:
    """Qwen3-30B-A3B: embeddings 2 x 151936 x 2048, attention 48 x (2 x 2048 x 32 x 128 + 2 x 2048 x 4 x 128),
    the rest routed experts of which 8 of 128 are active: 3.34B, against the 3.3B Qwen publishes."""
    always, routed, active = active_parameters(facts("Qwen/Qwen3-30B-A3B"))
    assert always == 2 * 151936 * 2048 + 48 * (2 * 2048 * 32 * 128 + 2 * 2048 * 4 * 128) == 1_528_299_520
    assert routed == pytest.approx(30.5e9 - 1_528_299_520)
    assert active == pytest.approx(1_528_299_520 + routed * 8 / 128)
    assert active == pytest.approx(3.34e9, rel=0.01)


def test_moe_decode_step_by_hand() -> None:
    """Qwen3-30B-A3B on one A100 80GB, one token of no context: the always-read weights as one roofline, the 8 of
    128 experts it is routed to as another (one grouped product over 8 experts' matrices), each bound by its
    reads or its FLOPs, whichever is slower."""
    qwen = facts("Qwen/Qwen3-30B-A3B")
    model = performance._derive(qwen, ServingLayout("A100-80GB"))
    always, routed, _ = active_parameters(qwen)
    expert_active = routed * 8 / 128  # 1.81B
    assert model.expert_active_params == pytest.approx(expert_active)
    assert model.active_params == pytest.approx(always - 151936 * 2048 + expert_active)
    bandwidth, streaming, half_mb = 2039e9, 0.88, 45 * 2039 / 3350
    dense_mb = model.dense_matrix_mb
    dense_read = model.dense_bytes / (bandwidth * streaming * dense_mb / (dense_mb + half_mb))
    dense_compute = 2 * (model.active_params - expert_active) / (312e12 * 0.8 * 1 / (1 + 256))
    grouped_mb = model.expert_matrix_mb * 8
    expert_read = model.expert_bytes * 8 / 128 / (bandwidth * streaming * grouped_mb / (grouped_mb + half_mb))
    expert_compute = 2 * expert_active / (312e12 * 0.8 * NEUTRAL.moe_compute_factor)
    expected = max(dense_read, dense_compute) + max(expert_read, expert_compute)
    assert performance.step_seconds(model, NEUTRAL, 1, 0, 0) == pytest.approx(expected, rel=1e-9)
    assert expert_read > expert_compute  # a decode token is bound by the expert reads


def test_flops_follow_parameters_when_only_the_experts_are_quantised() -> None:
    """gpt-oss-20b keeps attention and embeddings in bf16 beside MXFP4 experts: its FLOPs per token follow the
    3.6B active parameters OpenAI publishes (https://openai.com/index/introducing-gpt-oss/), not its bytes over
    the 4-bit width (7.2B)."""
    oss = facts("openai/gpt-oss-20b")
    model = performance._derive(oss, ServingLayout("H200", model_id="openai/gpt-oss-20b"))
    assert model.weight_dtype == "fp4"
    always, routed, _ = active_parameters(oss)
    assert model.active_params == pytest.approx(always - 201088 * 2880 + routed * 4 / 32)
    assert model.active_params == pytest.approx(3.6e9, rel=0.02)


def test_moe_reads_more_experts_as_the_batch_grows() -> None:
    model = performance._derive(facts("Qwen/Qwen3-30B-A3B"), ServingLayout("A100-80GB"))
    one, many = (performance.step_seconds(model, NEUTRAL, n, 0, 0) for n in (1, 64))
    touched = 1 - (1 - 8 / 128) ** 64  # 98% of the experts for 64 tokens
    assert touched > 0.98
    assert many > 4 * one  # 12x the expert bytes, read in larger grouped products


def test_tensor_parallel_all_reduce_by_hand() -> None:
    """Llama 3.1 8B at tensor parallel 2 on H100s: per token two all-reduces per layer of 4096 bf16 values,
    8 us start-up each plus a ring over 450 GB/s."""
    model = performance._derive(facts("meta-llama/Llama-3.1-8B-Instruct"), ServingLayout("H100", tensor_parallel_size=2))
    expected = 2 * 32 * (8e-6 + 2 * (2 - 1) / 2 * 4096 * 2 / 450e9)
    assert performance._allreduce_s(model, 1) == pytest.approx(expected, rel=1e-9)
    one = performance._derive(facts("meta-llama/Llama-3.1-8B-Instruct"), ServingLayout("H100"))
    # Half the weights per GPU, but smaller matrices read less efficiently: less than twice as fast.
    ratio = performance.step_seconds(one, NEUTRAL, 1, 0, 0) / performance.step_seconds(model, NEUTRAL, 1, 0, 0)
    assert 1.0 < ratio < 2.0


def test_rate_beyond_capacity_is_saturated() -> None:
    llama = facts("meta-llama/Llama-3.1-8B-Instruct")
    light = predict(llama, ServingLayout("H100"), Workload(1024, 128, rate=1))
    heavy = predict(llama, ServingLayout("H100"), Workload(1024, 128, rate=10_000))
    assert not light.saturated and light.requests_per_s == 1
    assert heavy.saturated and heavy.notes
    assert heavy.requests_per_s == pytest.approx(heavy.capacity_requests_per_s)
    assert light.ttft_ms.p50 < light.ttft_ms.p90


def test_workload_names_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="exactly one of rate"):
        Workload(10, 10)
    with pytest.raises(ValueError, match="no performance figures for GPU 'A10G'"):
        predict(facts("meta-llama/Llama-3.1-8B-Instruct"), ServingLayout("A10G"), Workload(10, 10, rate=1))


def _bench():
    sys.path.insert(0, str(ROOT / "bench"))
    import performance_bench

    return performance_bench


def _overall(bench, rows):
    return {entry["split"]: entry for entry in bench.summary(rows, "gpu") if entry["gpu"] == "all"}


def test_held_out_medians_meet_the_targets_or_stay_within_todays_figures() -> None:
    """The acceptance targets: held-out median error at most 15% throughput, 20% TTFT and ITL. Over every
    held-out closed-loop and burst row (the 2026-12-07 set, the held-out halves of the first, second and fifth clean
    tests, the third clean test's loops, the fourth's and the sixth's), throughput (13%) and ITL (15%) meet them and
    TTFT (39%) misses; each is held to today's figure. The 2026-12-07 set alone: 11%, 56% (its fixed TTFT part, 7 ms
    in the tenstorrent sweeps, is a quarter of the median host's), 2%."""
    bench = _bench()
    overall = _overall(bench, bench.evaluate_all())
    held = overall["held-out"]
    assert held["n"] == 146
    assert held["throughput"]["median"] <= 0.14 and held["itl"]["median"] <= 0.16
    assert held["ttft"]["median"] <= 0.40  # target 20%: missed
    before = overall["held-out before"]
    assert before["n"] == 28
    assert before["throughput"]["median"] <= 0.12 and before["itl"]["median"] <= 0.03
    assert before["ttft"]["median"] <= 0.57
    new = overall["held-out by source"]
    assert new["n"] >= 10
    assert new["throughput"]["median"] <= 0.16 and new["ttft"]["median"] <= 0.10 and new["itl"]["median"] <= 0.18
    fitted = overall["fitted"]
    assert fitted["n"] == 84
    assert fitted["throughput"]["median"] <= 0.08 and fitted["itl"]["median"] <= 0.05  # 7%, 4%
    assert fitted["ttft"]["median"] <= 0.36  # 35%
    rate = overall["rate mode"]
    assert rate["n"] == 38
    assert rate["throughput"]["median"] <= 0.16 and rate["itl"]["median"] <= 0.16  # 15%, 15%
    assert rate["ttft"]["median"] <= 0.64  # 63%
    loops, bursts = overall["first clean test, held out: loops"], overall["first clean test, held out: bursts"]
    assert loops["n"] == 20 and bursts["n"] == 25 and overall["first clean test, held out"]["n"] == 45
    # 7%, 34%, 10% on its closed loops; 28%, 39%, 23% on its bursts.
    assert loops["throughput"]["median"] <= 0.08 and loops["ttft"]["median"] <= 0.35 and loops["itl"]["median"] <= 0.11
    assert bursts["throughput"]["median"] <= 0.29 and bursts["ttft"]["median"] <= 0.40
    # The second clean test's held-out half (rule 7): 9%, 29%, 11%.
    second = overall["second clean test, held out"]
    assert second["n"] == 33
    assert second["throughput"]["median"] <= 0.10 and second["ttft"]["median"] <= 0.30 and second["itl"]["median"] <= 0.12
    # The third clean test, after the refits that came after its first prediction: its two closed loops 10%, 55%,
    # 15%; its eight rate runs (DeepSeek-R1 on 8 x H200, vLLM 0.8.4) 55%, 72%, 16% (first prediction 9%, 71%, 13%
    # and 80%, 72%, 31%).
    third, third_rate = overall["third clean test, held out"], overall["third clean test, held out: rate"]
    assert third["n"] == 2 and third_rate["n"] == 8
    assert third["throughput"]["median"] <= 0.11 and third["ttft"]["median"] <= 0.56 and third["itl"]["median"] <= 0.16
    assert third_rate["throughput"]["median"] <= 0.56 and third_rate["ttft"]["median"] <= 0.73
    # The fourth clean test (14 closed loops: A100, 8 x H200, RTX 5090 and 4090), first predicted at c859af6 48%,
    # 416%, 13%; after the refit on half of the fifth's rows the 4-bit mixture of experts is slower still: 76%,
    # 414%, 217%.
    fourth = overall["fourth clean test, held out"]
    assert fourth["n"] == 14
    assert fourth["throughput"]["median"] <= 0.77 and fourth["ttft"]["median"] <= 4.15 and fourth["itl"]["median"] <= 2.18
    # The fifth clean test (first predicted at 5c39892: 18%, 33%, 14%), its held-out half after the refit: 14%, no
    # TTFT (its prompts were resent to a warm prefix cache), 11%.
    fifth = overall["fifth clean test, held out"]
    assert fifth["n"] == 9 and fifth["ttft"] is None
    assert fifth["throughput"]["median"] <= 0.15 and fifth["itl"]["median"] <= 0.12
    # The sixth clean test (Qwen3-32B at tensor parallel 8 on H100, H200 and B200), first predicted at b47a2ae with
    # 5c39892's constants: 30%, 40%, 67%; after the refit 31%, 40%, 75%.
    sixth = overall["found after fit"]
    assert sixth["n"] == 15 and "found after fit: rate" not in overall
    assert sixth["throughput"]["median"] <= 0.32 and sixth["ttft"]["median"] <= 0.41 and sixth["itl"]["median"] <= 0.76
    # A user who calibrates the request overhead on one run of their host: the 2026-12-07 set's TTFT at 35%.
    calibrated = _overall(bench, bench.evaluate_calibrated())
    assert calibrated["held-out before"]["ttft"]["median"] <= 0.36


def test_fewer_constants_are_fitted_than_rows() -> None:
    bench = _bench()
    fitted_rows = [row for row in bench.REFERENCES if not row.held_out and not row.v0_engine]
    assert len(bench._BOUNDS) == 11 and len(fitted_rows) == 84 and len(bench._BOUNDS) < len(fitted_rows) / 1.5
    stored = json.loads(performance.DATA_FILE.read_text())["fitted"]
    assert set(stored) - {"fitted_on"} == set(bench._BOUNDS)
    assert "84 fitted rows" in stored["fitted_on"]


def test_each_publisher_has_its_own_request_overhead_and_the_stored_one_is_their_median() -> None:
    """The fixed part of a TTFT is the harness's and the host's: the fit gives each publisher with a published TTFT
    its own, and stores the median for a host not yet measured."""
    import statistics

    data = json.loads(performance.DATA_FILE.read_text())
    own = {key: value for key, value in data["request_overhead_ms_by_publisher"].items() if key != "about"}
    assert len(own) >= 3 and max(own.values()) > 3 * min(own.values())
    assert data["fitted"]["request_overhead_ms"] == pytest.approx(statistics.median(own.values()))
    bench = _bench()
    with_ttft = {bench.publisher(row.source) for row in bench.REFERENCES
                 if not row.held_out and not row.v0_engine and row.request_rate is None and row.ttft_ms is not None}
    assert set(own) == with_ttft


def test_a_4_bit_decode_is_bound_by_its_reads_not_by_a_compute_rate_meant_for_256_tokens() -> None:
    """phi-4 AWQ (14.7B parameters, 8.1 GB of 4-bit weights) decoding one sequence on an L40S: the reads take
    8.1 GB at 864 GB/s times the matrix efficiency (0.88 of streaming for 50 MB matrices against 11.6); 2 x 14.7 GFLOP at the GEMM curve's rate for one token would take
    longer if its half point stayed at the H100's bf16 ridge (256 tokens), but a 4-bit L40S turns compute-bound at
    256 x (362 x 0.92 / 864) / (989 / 3350) x 0.5625 / 2 = 94 tokens (0.92: the L40S's measured matrix-product share
    of its rate, 269 of 362, over the H100's, 798 of 989), where one token's products take less than the reads."""
    phi = facts("stelterlab/phi-4-AWQ")
    model = performance._derive(phi, ServingLayout("L40S", weight_dtype="int4"))
    assert model.gpu.tensor_scale == pytest.approx((269.15 / 362) / (797.51 / 989), rel=1e-9)
    assert model.ridge_scale == pytest.approx((362 * model.gpu.tensor_scale / 864) / (989 / 3350) * 0.5625 / 2,
                                              rel=1e-9)
    h100 = performance._derive(facts("meta-llama/Llama-3.1-8B-Instruct"), ServingLayout("H100"))
    assert h100.ridge_scale == pytest.approx(1.0, rel=1e-9)
    step = performance.step_seconds(model, NEUTRAL, 1, 0, 0)
    share = model.gpu.streaming_fraction * model.dense_matrix_mb / (
        model.dense_matrix_mb + model.gpu.half_efficiency_matrix_mb)
    reads = model.dense_bytes / (864e9 * share)
    assert step == pytest.approx(reads, rel=1e-6)
    unscaled = replace(model, ridge_scale=1.0)
    assert performance.step_seconds(unscaled, NEUTRAL, 1, 0, 0) > 1.5 * step


def test_async_scheduling_overlaps_the_cpu_part_of_a_step_by_hand() -> None:
    """One sequence of Llama 3.1 8B on an H100 with 5 ms of CPU per step: added to the GPU's 6.9 ms without async
    scheduling, hidden under it with; with pipeline parallelism vLLM does not schedule asynchronously."""
    llama = facts("meta-llama/Llama-3.1-8B-Instruct")
    cpu = replace(NEUTRAL, step_overhead_ms=5.0)
    device = performance.step_seconds(performance._derive(llama, ServingLayout("H100")), NEUTRAL, 1, 0, 0)
    overlapped = performance.step_seconds(performance._derive(llama, ServingLayout("H100")), cpu, 1, 0, 0)
    serial = performance.step_seconds(
        performance._derive(llama, ServingLayout("H100", async_scheduling=False)), cpu, 1, 0, 0)
    assert overlapped == pytest.approx(max(device, 5e-3), rel=1e-9)
    assert serial == pytest.approx(device + 5e-3, rel=1e-9)
    slow_cpu = replace(NEUTRAL, step_overhead_ms=20.0)
    assert performance.step_seconds(performance._derive(llama, ServingLayout("H100")), slow_cpu, 1, 0, 0) == (
        pytest.approx(20e-3, rel=1e-9))
    assert not performance._derive(llama, ServingLayout("H100", pipeline_parallel_size=2)).overlapped


def test_split_follows_the_written_rule() -> None:
    """The rule of bench/performance_references.py's docstring, restated: V0 rows in neither split; rate rows held
    out; the two H200 sources held out whole; a source with fewer than 3 closed-loop rows held out whole; the rest
    alternate fitted / held out by key, starting with fitted."""
    bench = _bench()
    import performance_references

    doc = performance_references.__doc__ or ""
    flat = " ".join(doc.split())
    assert "2026-12-07" in flat and "30% TTFT, 0% ITL; held out (40 rows) 17%, 36%, 12%" in flat
    rows = bench.REFERENCES
    whole = {
        "https://buildkite.com/vllm/performance-benchmark/builds/9515",
        "https://github.com/sariekr/gpu_conc/blob/main/H200/benchmark_summary_20250814_182107.json",
    }
    assert set(performance_references.HELD_OUT_WHOLE) == whole
    groups: dict[str, list] = {}
    for row in rows:
        if row.v0_engine:
            assert not row.held_out
        elif row.request_rate is not None:
            assert row.held_out
        else:
            groups.setdefault(row.source, []).append(row)
    assert whole <= set(groups)
    for source, members in groups.items():
        ordered = sorted(members, key=lambda row: row.key)
        latest = any(row.found_after_fit == performance_references.CLEAN_TEST for row in ordered)
        if source in whole or len(ordered) < 3 or latest:
            assert all(row.held_out for row in ordered), source
        else:
            assert [row.held_out for row in ordered] == [index % 2 == 1 for index in range(len(ordered))], source
    # No row module sets the flag by hand.
    for name in ("performance_references.py", "performance_references_more.py", "performance_references_nvidia.py",
                 "performance_references_fresh.py", "performance_references_fresh2.py",
                 "performance_references_fresh2a.py", "performance_references_fresh3.py",
                 "performance_references_fresh3a.py"):
        assert "held_out=True" not in (ROOT / "bench" / name).read_text()


def test_v0_rows_carry_their_evidence_and_are_reported_apart() -> None:
    bench = _bench()
    v0 = [row for row in bench.REFERENCES if row.v0_engine]
    assert {row.source for row in v0} == {
        "https://blogs.oracle.com/cloud-infrastructure/serving-llama-31-405b-model-with-amd-mi300x-gpus",
        "https://github.com/dstackai/benchmarks/blob/main/amd/inference/raw_data/vllm_raw.txt",
        "https://github.com/dstackai/benchmarks/blob/main/amd/inference/vllm/data/result_vllm_QPS_high.csv",
    }
    for row in v0:
        assert "V0 engine" in row.note, row.key
        assert row.published < "2025-01-27" or "0.6.3" in row.note, row.key
    rows = bench.evaluate_all()
    overall = _overall(bench, rows)
    assert overall["V0 engine"]["n"] == len(v0) == 12
    others = sum(overall[split]["n"] for split in ("fitted", "held-out", "rate mode"))
    assert others + len(v0) == len(rows)  # every row is reported once, none dropped
    assert all(row.error["throughput"] is not None for row in rows if row.mode == "v0")


def test_rate_rows_are_finite_runs_when_their_request_count_is_known() -> None:
    bench = _bench()
    rate_rows = [row for row in bench.REFERENCES if row.request_rate is not None and not row.v0_engine]
    assert rate_rows and all(row.concurrency == 0 and row.requests in (50, 200, 500, None) for row in rate_rows)
    # GuideLLM's constant-rate runs are bounded by time, not a request count: a steady rate.
    steady = [row for row in rate_rows if row.requests is None]
    assert steady and all("guidellm" in row.key for row in steady)
    burst = next(row for row in rate_rows if row.key == "llama-3.3-70b-8xa100-40gb-sharegpt-rate16")
    result = bench.evaluate(burst)
    assert result.mode == "rate"
    # 200 requests within the batch limit of 256: vLLM admits them all, nothing queues without bound.
    assert math.isfinite(result.predicted["ttft"])
    assert result.predicted["throughput"] < burst.request_rate * burst.output_tokens


def test_finite_run_throughput_is_output_over_the_makespan_by_hand() -> None:
    """200 requests at 1/s arrive over 199 s, each alone in the engine (it serves one in well under a second); the
    last finishes one latency later: its TTFT (the request's overhead and one prefill step) and 127 decode steps of
    one sequence."""
    llama = facts("meta-llama/Llama-3.1-8B-Instruct")
    layout = ServingLayout("H100")
    constants = replace(NEUTRAL, request_overhead_ms=10.0, frontend_ms_per_request=2.0)
    finite = predict(llama, layout, Workload(1024, 128, rate=1.0, requests=200), constants)
    model = performance._derive(llama, layout)
    prefill = performance.step_seconds(model, constants, 0, 0, 1024, 1, 1024 * 1024 / 2)
    decode = [performance.step_seconds(model, constants, 1, 1024 + generated, 0) for generated in range(1, 128)]
    assert finite.ttft_ms.p50 == pytest.approx(10.0 + prefill * 1e3, rel=1e-9)
    # The decode steps are taken together at the mean context of the stretch (the step is linear in it).
    latency_s = 10e-3 + prefill + sum(decode)
    assert not finite.saturated
    assert finite.output_tokens_per_s == pytest.approx(200 * 128 / (199 + latency_s), rel=1e-9)
    assert finite.itl_ms.p50 == pytest.approx(sum(decode) / 127 * 1e3, rel=1e-9)
    steady = predict(llama, layout, Workload(1024, 128, rate=1.0))
    assert steady.output_tokens_per_s == pytest.approx(128.0)
    # Far above the steady capacity, 100 requests still fit one batch: finite latency, not saturation.
    burst = predict(llama, layout, Workload(1024, 128, rate=10_000, requests=100))
    assert not burst.saturated and math.isfinite(burst.ttft_ms.p50)
    assert predict(llama, layout, Workload(1024, 128, rate=10_000)).saturated
    with pytest.raises(ValueError, match="requests"):
        Workload(10, 10, concurrency=2, requests=0)


def test_a_kv_cache_of_one_request_serves_a_burst_one_by_one_by_hand() -> None:
    """A cache that holds one request (1024 + 64 tokens) of four sent at once: the scheduler admits the next only
    when the last finishes, so the run is four times one request's service (a prefill step and 63 decode steps),
    the k-th request's TTFT waits for k - 1 of them, and nothing ever decodes beside a prompt."""
    llama = facts("meta-llama/Llama-3.1-8B-Instruct")
    layout = ServingLayout("H100", kv_cache_tokens=1088)
    constants = replace(NEUTRAL, request_overhead_ms=0.0, frontend_ms_per_request=0.0)
    model = performance._derive(llama, layout)
    prefill = performance.step_seconds(model, constants, 0, 0, 1024, 1, 1024 * 1024 / 2)
    decode = [performance.step_seconds(model, constants, 1, 1024 + generated, 0) for generated in range(1, 64)]
    service = prefill + sum(decode)
    run = predict(llama, layout, Workload(1024, 64, rate=math.inf, requests=4), constants)
    assert run.saturated  # the others waited for room
    assert run.requests_per_s == pytest.approx(4 / (4 * service), rel=1e-9)
    ttfts = [prefill + k * service for k in range(4)]
    # NumPy's percentiles, as vllm bench serve takes them: the median of four the mean of the middle two, the 90th
    # percentile 0.7 of the way from the third to the fourth.
    assert run.ttft_ms.p50 == pytest.approx((ttfts[1] + ttfts[2]) / 2 * 1e3, rel=1e-9)
    assert run.ttft_ms.p90 == pytest.approx((ttfts[2] + 0.7 * (ttfts[3] - ttfts[2])) * 1e3, rel=1e-9)
    assert run.itl_ms.p90 == pytest.approx(max(decode) * 1e3, rel=1e-2)


def test_a_cache_that_runs_out_preempts_the_latest_sequence_and_finds_its_freed_cache_again_by_hand() -> None:
    """Two requests of 1000 + 100 tokens sent at once to a cache of 2100: both prompts fit (vLLM allocates a
    sequence's cache as it grows), so both prefill in the first step and decode together for 49 steps, until the
    cache is full at 1050 tokens each. The next step preempts the later one (its 1050 tokens freed); the first
    decodes its last 50 tokens alone, growing into 50 of the freed tokens; then the second finds the other 1000 in
    the prefix cache, recomputes 50 tokens in one step and decodes its last 49."""
    llama = facts("meta-llama/Llama-3.1-8B-Instruct")
    layout = ServingLayout("H100", kv_cache_tokens=2100)
    constants = replace(NEUTRAL, request_overhead_ms=0.0, frontend_ms_per_request=0.0)
    model = performance._derive(llama, layout)
    prefill = performance.step_seconds(model, constants, 0, 0, 2000, 2, 2 * 1000 * 1000 / 2)
    # Decode stretches are taken together at their mean context (the step is linear in it).
    together = 49 * performance.step_seconds(model, constants, 2, 1001 + 48 / 2, 0)
    first_alone = 50 * performance.step_seconds(model, constants, 1, 1050 + 49 / 2, 0)
    recompute = performance.step_seconds(model, constants, 0, 0, 50, 1, 50 * (1000 + 50 / 2))
    second_alone = 49 * performance.step_seconds(model, constants, 1, 1051 + 48 / 2, 0)
    makespan = prefill + together + first_alone + recompute + second_alone
    run = predict(llama, layout, Workload(1000, 100, rate=math.inf, requests=2), constants)
    assert run.output_tokens_per_s == pytest.approx(200 / makespan, rel=1e-9)
    assert run.ttft_ms.p50 == pytest.approx(prefill * 1e3, rel=1e-9)
    assert run.saturated  # the preempted request waited for room
    assert any("1 preemptions" in note for note in run.notes)
    # Admitting only whole requests (1100 tokens each) would have run them one after the other, more slowly.
    whole = predict(llama, replace(layout, kv_cache_tokens=1100), Workload(1000, 100, rate=math.inf, requests=2),
                    constants)
    assert whole.output_tokens_per_s < run.output_tokens_per_s
    assert not any("preemptions" in note for note in whole.notes)


def test_a_prefix_cache_hit_prefills_only_the_rest_of_the_prompt_by_hand() -> None:
    """Half of a 2048-token prompt found in the prefix cache: one request alone prefills its last 1024 tokens, each
    attending to the 1024 before it and to those of its own chunk before it (1024 x (1024 + 512) pairs), so its TTFT
    is the request overhead and that one step; a steady rate of such requests does the same, and with the hit its
    TTFT is far below a cold prompt's. A hit rate of 1 or more, or below 0, is refused."""
    llama = facts("meta-llama/Llama-3.1-8B-Instruct")
    layout = ServingLayout("H100")
    constants = replace(NEUTRAL, request_overhead_ms=10.0, frontend_ms_per_request=0.0)
    model = performance._derive(llama, layout)
    half = performance.step_seconds(model, constants, 0, 0, 1024, 1, 1024 * (1024 + 512))
    run = predict(llama, layout, Workload(2048, 64, rate=math.inf, requests=1, prefix_hit_rate=0.5), constants)
    assert run.ttft_ms.p50 == pytest.approx(10.0 + half * 1e3, rel=1e-9)
    steady = predict(llama, layout, Workload(2048, 64, rate=0.01, prefix_hit_rate=0.5), constants)
    cold = predict(llama, layout, Workload(2048, 64, rate=0.01), constants)
    full = performance.step_seconds(model, constants, 0, 0, 2048, 1, 2048 * 2048 / 2)
    assert steady.ttft_ms.p50 == pytest.approx(run.ttft_ms.p50, rel=0.02)
    assert cold.ttft_ms.p50 == pytest.approx(10.0 + full * 1e3, rel=0.02)
    assert Workload(2048, 64, rate=1.0, prefix_hit_rate=0.9999).cached_tokens == 2047  # one token is computed
    for share in (1.0, -0.1):
        with pytest.raises(ValueError, match="prefix_hit_rate"):
            Workload(2048, 64, rate=1.0, prefix_hit_rate=share)


def test_size_refuses_a_load_it_cannot_take_naming_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    from pulumi_vllm.cli import main

    for flags, said in ((["--prefix-hit-rate", "1.2"], "--prefix-hit-rate 1.2: a share of each prompt"),
                        (["--input-tokens", "0"], "--input-tokens 0: a request needs at least 1 token"),
                        (["--concurrency", "0"], "--concurrency 0: at least 1 client")):
        load = [] if "--concurrency" in flags else ["--concurrency", "4"]
        code = main(["size", "--model", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "H100", *load, *flags])
        assert code == 2
        assert said in capsys.readouterr().err
    code = main(["size", "--model", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "H100", "--concurrency", "4",
                 "--input-tokens", "4000", "--prefix-hit-rate", "0.75"])
    out = capsys.readouterr().out
    assert code == 0 and "4000 in / 128 out at 4 concurrent clients, 75% of each prompt in the prefix cache" in out


def test_a_burst_longer_than_the_budget_decodes_beside_prompt_chunks() -> None:
    """100 prompts of 2000 tokens at once, 8192 tokens a step: about four prompts start per step for 25 steps
    while those admitted earlier decode beside them (about 1,200 of the run's 10,000 gaps between tokens, so more
    than a tenth: the 90th percentile is such a step, 8,000 prompt tokens long); the other gaps are decode steps of
    up to 100 sequences (the median). The last prompt waits for the chunks of all the others."""
    llama = facts("meta-llama/Llama-3.1-8B-Instruct")
    layout = ServingLayout("H100", max_num_batched_tokens=8192)
    constants = replace(NEUTRAL, request_overhead_ms=0.0, frontend_ms_per_request=0.0)
    model = performance._derive(llama, layout)
    run = predict(llama, layout, Workload(2000, 100, rate=math.inf, requests=100), constants)
    decode_alone = performance.step_seconds(model, constants, 100, 2050, 0)
    chunk_step = performance.step_seconds(model, constants, 0, 0, 8000, 4, 4 * 2000 * 2000 / 2)
    assert run.itl_ms.p50 == pytest.approx(decode_alone * 1e3, rel=0.05)
    assert run.itl_ms.p90 > 0.9 * chunk_step * 1e3 > 5 * run.itl_ms.p50
    assert run.ttft_ms.p90 > 20 * chunk_step * 1e3
    assert not run.saturated


def test_a_burst_waits_in_the_front_end_by_hand() -> None:
    """100 one-token requests sent at once through a front end of 10 ms of serial work per request reach the
    engine over 1 s, as a run at 100 requests/s does (each is one prefill step, shorter than 10 ms, so the engine
    serves them one by one either way); the burst's k-th request also waits k x 10 ms before the front end takes
    it, so its median TTFT (the mean of the 50th and 51st of 100) is 495 ms above the paced run's and its throughput
    the same."""
    llama = facts("meta-llama/Llama-3.1-8B-Instruct")
    constants = replace(NEUTRAL, request_overhead_ms=10.0, frontend_ms_per_request=10.0)
    layout = ServingLayout("H100")
    burst = predict(llama, layout, Workload(256, 1, rate=math.inf, requests=100), constants)
    paced = predict(llama, layout, Workload(256, 1, rate=100.0, requests=100), constants)
    assert burst.ttft_ms.p50 - paced.ttft_ms.p50 == pytest.approx(495.0, rel=1e-6)
    assert burst.requests_per_s == pytest.approx(paced.requests_per_s, rel=1e-9)


def test_lockstep_closed_loop_prefills_its_prompts_together() -> None:
    """Equal lengths: the clients finish together and their eight 1024-token prompts are one prefill (8192 tokens,
    the H100's budget); varied lengths: the clients drift apart and each prompt comes alone, beside the others'
    decodes."""
    llama = facts("meta-llama/Llama-3.1-8B-Instruct")
    together = predict(llama, ServingLayout("H100"), Workload(1024, 128, concurrency=8))
    apart = predict(llama, ServingLayout("H100"), Workload(1024, 128, concurrency=8, varied_lengths=True))
    alone = predict(llama, ServingLayout("H100"), Workload(1024, 128, concurrency=1))
    assert together.ttft_ms.p50 > 3 * alone.ttft_ms.p50
    assert alone.ttft_ms.p50 < apart.ttft_ms.p50 < together.ttft_ms.p50


def test_moe_prompt_chunk_reads_experts_faster_than_decode() -> None:
    """A decode token gives each expert it touches one row; a 1024-token chunk gives Qwen3-30B-A3B's 128 experts
    64 rows each, so its expert reads and products run far nearer the dense rate."""
    model = performance._derive(facts("Qwen/Qwen3-30B-A3B"), ServingLayout("A100-80GB"))
    # The expert products' compute bound at the dense rate, so that the chunk's expert reads are what binds.
    constants = replace(performance.fitted_constants(), moe_compute_factor=1.0)
    assert constants.moe_half_tokens_per_expert > 0
    decode = performance.step_seconds(model, constants, 64, 0, 0)  # 64 tokens touch nearly every expert
    chunk = performance.step_seconds(model, constants, 0, 0, 1024)
    assert chunk < 16 * decode  # 16x the tokens for less than 16x the time
    slow = replace(constants, moe_half_tokens_per_expert=0.0)
    assert performance.step_seconds(model, slow, 0, 0, 1024) > chunk


def test_a_prompt_waits_for_the_step_in_flight_only_when_others_decode() -> None:
    llama = facts("meta-llama/Llama-3.1-8B-Instruct")
    constants = performance.fitted_constants()
    assert constants.ttft_decode_steps > 0
    alone = predict(llama, ServingLayout("H100"), Workload(256, 128, concurrency=1), constants)
    no_wait = replace(constants, ttft_decode_steps=0.0)
    assert predict(llama, ServingLayout("H100"), Workload(256, 128, concurrency=1), no_wait).ttft_ms.p50 == (
        pytest.approx(alone.ttft_ms.p50))
    # At a steady rate a prompt arrives while the others decode. (A simulated run waits for the step in flight
    # step by step, without this constant.)
    busy = predict(llama, ServingLayout("H100"), Workload(256, 128, rate=20.0), constants)
    busy_no_wait = predict(llama, ServingLayout("H100"), Workload(256, 128, rate=20.0), no_wait)
    assert busy.ttft_ms.p50 > busy_no_wait.ttft_ms.p50


def test_fit_never_reads_held_out_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    bench = _bench()
    before = bench._loss(performance.fitted_constants())
    changed = tuple(replace(row, output_tokens_per_s=row.output_tokens_per_s * 10) if row.held_out else row
                    for row in bench.REFERENCES)
    monkeypatch.setattr(bench, "REFERENCES", changed)
    assert bench._loss(performance.fitted_constants()) == before
    # A fitted row does move it.
    fitted_changed = tuple(replace(row, output_tokens_per_s=row.output_tokens_per_s * 10) if not row.held_out else row
                           for row in bench.REFERENCES)
    monkeypatch.setattr(bench, "REFERENCES", fitted_changed)
    assert bench._loss(performance.fitted_constants()) > before


def _size(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pulumi_vllm", "size", "--model", "meta-llama/Llama-3.1-8B-Instruct", *args],
        capture_output=True, text=True, timeout=120, check=False, cwd=ROOT,
    )


def test_search_feasible_names_the_cheapest_and_what_binds() -> None:
    done = _size("--rate", "20", "--ttft-p90", "500", "--itl-p90", "50", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    chosen = result["candidates"][result["chosen"]]
    assert chosen["meets_objective"] and chosen["usd_per_hour"] is not None
    assert result["binding"] in ("throughput", "ttft_p90", "itl_p90")
    assert set(chosen) >= {"gpu", "instance", "tensor_parallel_size", "pipeline_parallel_size", "replicas",
                           "predicted", "usd_per_hour", "usd_per_million_output_tokens", "meets_objective"}
    assert set(chosen["predicted"]["ttft_ms"]) == {"p50", "p90"}
    priced = [c["usd_per_hour"] for c in result["candidates"] if c["meets_objective"] and c["usd_per_hour"]]
    assert chosen["usd_per_hour"] == min(priced)


def test_search_infeasible_says_which_objective_fails_and_by_how_much() -> None:
    done = _size("--rate", "5", "--itl-p90", "1")
    assert done.returncode == 1
    assert "--itl-p90 1 ms: the best layout reaches" in done.stdout and "% over" in done.stdout


def test_search_budget_cap() -> None:
    done = _size("--rate", "20", "--ttft-p90", "500", "--budget", "3")
    assert done.returncode == 1
    assert "--budget 3 USD/h" in done.stdout
    assert "no sourced price" in done.stdout and "--price-file" in done.stdout  # unpriced types are named


def test_given_layout_prediction_json() -> None:
    done = _size("--gpu", "H100", "--concurrency", "8", "--json")
    assert done.returncode == 0, done.stderr
    predicted = json.loads(done.stdout)["predicted"]
    assert {"output_tokens_per_s", "requests_per_s", "ttft_ms", "itl_ms"} <= set(predicted)


def test_given_layout_is_the_planned_one_and_a_layout_that_does_not_fit_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Gemma 3 27B in bf16 (51 GiB of weights) on an L40S (44.5 GiB usable): one GPU does not fit, so a load on it
    exits 1 with the reason instead of a prediction; ``--gpus 2`` suggests tensor parallel 2 and predicts that, with
    the KV cache ``size`` plans for it at the workload's length (3400 tokens: a max_model_len of 4096) bounding the
    batch."""
    from pulumi_vllm.capacity.gpus import lookup_gpu
    from pulumi_vllm.capacity.planner import plan_capacity
    from pulumi_vllm.cli import main

    common = ["size", "--model", "google/gemma-3-27b-it", "--gpu", "L40S", "--concurrency", "12",
              "--input-tokens", "3000", "--output-tokens", "400"]
    assert main(common) == 1
    out = capsys.readouterr().out
    assert "does not fit: google/gemma-3-27b-it on 1 x L40S" in out and "predicted:" not in out
    assert main([*common, "--gpus", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    plan = plan_capacity(facts("google/gemma-3-27b-it"), lookup_gpu("L40S"), 2, 1, max_model_len=4096,
                         model_id="google/gemma-3-27b-it")
    assert result["tensor_parallel_size"] == 2 and result["kv_cache_tokens"] == plan.kv_cache_tokens
    expected = predict(facts("google/gemma-3-27b-it"),
                       ServingLayout("L40S", tensor_parallel_size=2, model_id="google/gemma-3-27b-it",
                                     max_num_seqs=lookup_gpu("L40S").default_max_num_seqs,
                                     max_num_batched_tokens=lookup_gpu("L40S").default_max_num_batched_tokens,
                                     kv_cache_tokens=plan.kv_cache_tokens),
                       Workload(3000, 400, concurrency=12))
    assert result["predicted"]["output_tokens_per_s"] == round(expected.output_tokens_per_s, 2)


def test_size_gpu_with_a_load_says_when_its_layout_spans_nodes(capsys: pytest.CaptureFixture[str]) -> None:
    """``--gpus`` is GPUs per node: Qwen3-30B-A3B in bf16 leaves no KV cache at tensor parallel 2 on one node of two
    RTX 5090s, so the layout ``size`` plans is pipeline parallel 2 over two such nodes, and the prediction says so
    rather than a bare four GPUs; the FP8 checkpoint fits one node."""
    from pulumi_vllm.cli import main

    common = ["size", "--gpu", "RTX-5090", "--gpus", "2", "--concurrency", "16", "--input-tokens", "2000",
              "--output-tokens", "500"]
    assert main([*common, "--model", "Qwen/Qwen3-30B-A3B"]) == 0
    out = capsys.readouterr().out
    assert "on 4 x RTX-5090 (tensor 2 x pipeline 2 over 2 nodes of 2 GPUs, 1 replica(s))" in out
    assert main([*common, "--model", "Qwen/Qwen3-30B-A3B-FP8", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["tensor_parallel_size"], result["pipeline_parallel_size"], result["nodes_per_replica"]) == (2, 1, 1)


def test_prices_have_sources_and_go_stale(tmp_path: Path) -> None:
    table = size_objective.load_prices(today=datetime.date(2026, 12, 6))
    for row in table.prices.values():
        assert row["source"].startswith("https://") and row["date"]
    stale = size_objective.load_prices(today=table.as_of + datetime.timedelta(days=181))
    assert stale.warnings and "181 days old" in stale.warnings[0]
    bad = tmp_path / "prices.json"
    bad.write_text("{}")
    with pytest.raises(Exception, match="--price-file"):
        size_objective.load_prices(bad)


def test_write_stack_renders_and_passes_the_policy_pack(tmp_path: Path) -> None:
    """The chosen layout as a stack file: it validates, renders, carries the model's autoscaling targets, and the
    policy pack (over gRPC, as a preview runs it) finds nothing mandatory."""
    from pulumi_vllm.cli.render import render_stack
    from pulumi_vllm.policy.client import resources_from_registrations, run_policy_pack

    for name in ("Pulumi.yaml", "__main__.py"):
        (tmp_path / name).write_text((ROOT / name).read_text())
    done = subprocess.run(
        [sys.executable, "-m", "pulumi_vllm", "size", "--model", "meta-llama/Llama-3.1-8B-Instruct", "--rate", "20",
         "--ttft-p90", "500", "--itl-p90", "50", "--write-stack", "planned"],
        capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path,
        env={**__import__("os").environ, "PYTHONPATH": str(ROOT / "components")},
    )
    assert done.returncode == 0, done.stderr
    stack = yaml.safe_load((tmp_path / "Pulumi.planned.yaml").read_text())["config"]
    autoscaling = stack["pulumi-vllm:autoscaling"]
    assert autoscaling["minReplicas"] == stack["pulumi-vllm:replicas"] >= 1
    assert autoscaling["maxReplicas"] > autoscaling["minReplicas"]
    rendered = render_stack(tmp_path, "planned", env={})
    manifests = [doc for name, doc in rendered.documents
                 if name.endswith(".yaml") and isinstance(doc, dict) and "kind" in doc]
    assert {"Deployment", "ScaledObject"} <= {doc["kind"] for doc in manifests}
    scaled = next(doc for doc in manifests if doc["kind"] == "ScaledObject")
    assert scaled["spec"]["minReplicaCount"] == autoscaling["minReplicas"]
    violations = run_policy_pack(ROOT / "policies", resources_from_registrations(rendered.run.registrations))
    assert [v for v in violations if v.enforcement_level == "mandatory"] == []


def test_autoscaling_targets_follow_the_predicted_capacity() -> None:
    llama = facts("meta-llama/Llama-3.1-8B-Instruct")
    layout = ServingLayout("H100", replicas=2, kv_cache_tokens=400_000)
    prediction = predict(llama, layout, Workload(1024, 128, rate=20))
    targets = performance.autoscaling_targets(prediction, 2, 20, ttft_p90_objective_ms=prediction.ttft_ms.p90 + 500)
    assert targets.replica_requests_per_s == 10
    assert targets.waiting_requests_per_replica == pytest.approx(10 * 0.5, abs=0.1)  # arrivals in the headroom
    assert targets.kv_cache_usage_percent is not None
    assert targets.kv_cache_usage_percent == pytest.approx(min(95, round(prediction.kv_cache_usage * 100 + 10)))
    assert (targets.min_replicas, targets.max_replicas) == (2, 3)


def test_diff_shows_the_predicted_serving_beside_the_capacity() -> None:
    from pulumi_vllm.cli.render import render_stack

    rendered = render_stack(ROOT, "ops-autoscaling", env={})
    (line,) = size_objective.predicted_lines(rendered)
    assert line.startswith("predicted at 1024 in / 128 out: ") and "over 1 replica(s)" in line
    assert "requests/s" in line and "ITL" in line


def test_bench_compares_the_result_json_with_the_prediction() -> None:
    from pulumi_vllm.cli.bench_predicted import compare

    prediction = predict(facts("meta-llama/Llama-3.1-8B-Instruct"), ServingLayout("H100"),
                         Workload(1024, 128, concurrency=8))
    measured = {"output_throughput": prediction.output_tokens_per_s / 2, "request_throughput": None,
                "median_ttft_ms": prediction.ttft_ms.p50 * 2, "mean_tpot_ms": prediction.itl_ms.p50}
    rows = {row["quantity"]: row for row in compare(measured, prediction)}
    assert rows["output tokens/s"]["miss_percent"] == pytest.approx(100.0, abs=0.1)
    assert rows["TTFT p50 (ms)"]["miss_percent"] == pytest.approx(-50.0, abs=0.1)
    assert rows["ITL (ms)"]["miss_percent"] == pytest.approx(0.0, abs=0.1)
    assert rows["requests/s"]["miss_percent"] is None


def _llama_prefill_by_hand(tokens: int, prompts: int, pairs: float) -> float:
    """Llama 3.1 8B on one H100 prefilling ``tokens`` prompt tokens of ``prompts`` prompts, compute-bound: every
    weight but the LM head (128256 x 4096) twice per token, the LM head twice per prompt (its last position),
    attention 4 x 32 heads x 128 x 32 layers FLOPs per (query, key) pair, at 0.8 x tokens / (tokens + 256) of
    989 TFLOP/s."""
    model = performance._derive(facts("meta-llama/Llama-3.1-8B-Instruct"), ServingLayout("H100"))
    head = 128256 * 4096
    flops = 2 * (model.active_params - head) * tokens + 2 * head * prompts + 4 * 32 * 128 * 32 * pairs
    return flops / (989e12 * 0.8 * tokens / (tokens + 256))


def test_prefill_step_by_hand_counts_the_lm_head_once_per_prompt() -> None:
    """vLLM scores the vocabulary at one position per request of a step (``logits_indices``), not at every prompt
    token: a 4096-token prompt multiplies the LM head once. The step is compute-bound (about 80 ms against about
    7 ms of weight reads)."""
    model = performance._derive(facts("meta-llama/Llama-3.1-8B-Instruct"), ServingLayout("H100"))
    expected = _llama_prefill_by_hand(4096, 1, 4096 * 4096 / 2)
    assert performance.step_seconds(model, NEUTRAL, 0, 0, 4096) == pytest.approx(expected, rel=1e-9)
    every_token = expected + 2 * 128256 * 4096 * 4095 / (989e12 * 0.8 * 4096 / (4096 + 256))
    assert every_token > 1.06 * expected  # what counting the LM head per prompt token would add


def test_lockstep_prompts_attend_each_to_itself() -> None:
    """Eight clients in lockstep send eight 512-token prompts prefilled in one step of 4096 tokens (within the
    H100's budget of 8192): 8 x 512 ** 2 / 2 attention pairs, not 4096 ** 2 / 2, and eight LM-head positions. With
    the neutral constants the TTFT is that one step."""
    llama = facts("meta-llama/Llama-3.1-8B-Instruct")
    expected = _llama_prefill_by_hand(4096, 8, 8 * 512 * 512 / 2)
    ttft = predict(llama, ServingLayout("H100"), Workload(512, 2, concurrency=8), NEUTRAL).ttft_ms.p50
    assert ttft == pytest.approx(expected * 1e3, rel=1e-6)


def test_a_prompt_longer_than_the_budget_is_prefilled_in_chunks() -> None:
    """A 3072-token prompt at ``max_num_batched_tokens`` 2048 (vLLM's ``vllm serve`` default on an A100 or L4) is a
    chunk of 2048 and one of 1024, each on the rate curve of its own tokens; each chunk's tokens attend to the
    prompt's tokens up to themselves: the first chunk 2048 x 1024 pairs, the second 1024 x (2048 + 512), together
    the prompt's 3072 ** 2 / 2. Not two chunks of 2048."""
    llama = facts("meta-llama/Llama-3.1-8B-Instruct")
    pairs = 3072 * 3072 / 2
    first, second = 2048 * 1024, 1024 * (2048 + 512)
    assert first + second == pairs
    expected = _llama_prefill_by_hand(2048, 1, first) + _llama_prefill_by_hand(1024, 1, second)
    layout = ServingLayout("H100", max_num_batched_tokens=2048)
    ttft = predict(llama, layout, Workload(3072, 2, concurrency=1), NEUTRAL).ttft_ms.p50
    assert ttft == pytest.approx(expected * 1e3, rel=1e-6)
    whole = predict(llama, ServingLayout("H100"), Workload(3072, 2, concurrency=1), NEUTRAL).ttft_ms.p50
    assert whole == pytest.approx(_llama_prefill_by_hand(3072, 1, pairs) * 1e3, rel=1e-6)
    assert whole < ttft  # one larger chunk runs nearer the peak rate


def test_bench_runs_each_row_at_vllms_default_budget() -> None:
    """``EngineArgs.get_batch_defaults``: ``vllm serve`` 8192 on an H100, 2048 on an A100 or L4; the offline ``LLM``
    class 16384 on an H200 or MI300X."""
    bench = _bench()
    by_key = {row.key: row for row in bench.REFERENCES}
    assert bench.engine_budget(by_key["qwen2.5-72b-2xh100-3072-128"]) == 8192
    assert bench.engine_budget(by_key["qwen3-30b-a3b-a100-3072-128"]) == 2048
    assert bench.engine_budget(by_key["qwen2.5-0.5b-l4-c32"]) == 2048
    assert bench.engine_budget(by_key["llama-3.1-8b-h200-b8-32-128"]) == 16384
    assert bench.engine_budget(by_key["llama-70b-fp8-8xmi300x-2048-2048-b128"]) == 16384


def test_mla_attention_flops_follow_its_prefill_and_decode_paths() -> None:
    """DeepSeek-R1 (128 heads, 61 layers): a prompt token runs unabsorbed on up-projected keys of 192 dims and
    values of 128, 2 x 128 x (192 + 128) FLOPs per layer per pair; a decoded token runs absorbed over the 512-dim
    latent and the 64-dim rope key, 2 x 128 x (512 + 64 + 512). A dense model's two are equal, 4 x heads x head_dim."""
    model = performance._derive(facts("deepseek-ai/DeepSeek-R1-0528"),
                                ServingLayout("H100", tensor_parallel_size=8, weight_dtype="int4"))
    assert model.attention_flops_per_token_context == 2 * 128 * (192 + 128) * 61 / 8
    assert model.decode_attention_flops_per_token_context == 2 * 128 * (512 + 64 + 512) * 61 / 8
    llama = performance._derive(facts("meta-llama/Llama-3.1-8B-Instruct"), ServingLayout("H100"))
    assert llama.attention_flops_per_token_context == llama.decode_attention_flops_per_token_context == (
        4 * 32 * 128 * 32)


def test_binding_compares_the_rate_share_of_capacity_with_the_latency_shares() -> None:
    """One replica that meets the objective at once: what binds is the constraint closest to its limit, not
    throughput by default (the rate's share of capacity was counted as 1 whatever the load)."""
    llama = facts("meta-llama/Llama-3.1-8B-Instruct")
    prediction = predict(llama, ServingLayout("H100"), Workload(1024, 128, rate=1.0))
    assert not prediction.saturated and prediction.capacity_requests_per_s > 2
    tight_itl = size_objective.Objective(1.0, 1024, 128, itl_p90_ms=prediction.itl_ms.p90 * 1.05)
    assert size_objective._binding(prediction, tight_itl) == "itl_p90"
    loose = size_objective.Objective(1.0, 1024, 128, itl_p90_ms=prediction.itl_ms.p90 * 100)
    assert size_objective._binding(prediction, loose) == "throughput"


def test_bench_workload_is_a_burst_without_a_concurrency_cap() -> None:
    import argparse

    from pulumi_vllm.cli import bench_predicted

    def args(rate: str, cap: int | None) -> argparse.Namespace:
        return argparse.Namespace(request_rate=rate, max_concurrency=cap, num_prompts=40, input_len=64, output_len=8)

    capped = bench_predicted.workload(args("inf", 4))
    assert capped.concurrency == 4 and capped.rate is None
    burst = bench_predicted.workload(args("inf", None))
    assert burst.rate == math.inf and burst.requests == 40 and burst.concurrency is None
    paced = bench_predicted.workload(args("2.5", None))
    assert paced.rate == 2.5 and paced.requests == 40  # a finite run of --num-prompts


def test_bench_calibration_row_is_a_measurement_the_bench_reads_alike() -> None:
    import argparse

    from pulumi_vllm.cli import bench_predicted

    bench = _bench()
    from performance_references import Measurement

    measured = {"output_throughput": 900.0, "median_ttft_ms": 40.0, "mean_tpot_ms": 9.0}
    for rate, cap, kind in (("inf", None, "burst"), ("inf", 4, "loop"), ("2.0", None, "rate")):
        args = argparse.Namespace(request_rate=rate, max_concurrency=cap, num_prompts=40, input_len=64, output_len=8,
                                  model="meta-llama/Llama-3.1-8B-Instruct", gpu="H100", tensor_parallel_size=1)
        row = Measurement(**bench_predicted.calibration_row(args, measured, bench_predicted.workload(args)))
        assert bench.is_burst(row) == (kind == "burst")
        assert (row.request_rate is not None) == (kind == "rate")
        assert bench.evaluate(row).mode == ("rate" if kind == "rate" else "closed")


def test_size_calibration_takes_the_request_overhead_of_the_users_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """The file ``pulumi-vllm bench --calibration-json`` writes sets the request overhead so that the same run is
    predicted at its measured TTFT; another load on the same host takes that overhead, and a search too."""
    import argparse

    from pulumi_vllm.cli import bench_predicted, main

    args = argparse.Namespace(request_rate="inf", max_concurrency=1, num_prompts=20, input_len=1024, output_len=128,
                              model="meta-llama/Llama-3.1-8B-Instruct", gpu="H100", tensor_parallel_size=1)
    measured = {"output_throughput": 120.0, "median_ttft_ms": 95.0, "mean_tpot_ms": 7.5}
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps({"measurement": bench_predicted.calibration_row(
        args, measured, bench_predicted.workload(args))}))
    common = ["size", "--model", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "H100", "--input-tokens", "1024",
              "--output-tokens", "128", "--json"]

    def ttft(*extra: str) -> float:
        assert main([*common, *extra]) == 0
        out, err = capsys.readouterr()
        assert ("calibrated:" in err) == ("--calibration" in extra)
        return float(json.loads(out)["predicted"]["ttft_ms"]["p50"])

    assert ttft("--concurrency", "1", "--calibration", str(path)) == pytest.approx(95.0, abs=0.05)
    uncalibrated = ttft("--concurrency", "1")
    assert uncalibrated < 95.0 - 20
    # Eight clients on the same host: the host's overhead moves their TTFT too, by at least what it added alone.
    shift = 95.0 - uncalibrated
    assert ttft("--concurrency", "8", "--calibration", str(path)) - ttft("--concurrency", "8") >= shift * 0.99
    assert main(["size", "--model", "meta-llama/Llama-3.1-8B-Instruct", "--rate", "2", "--input-tokens", "1024",
                 "--output-tokens", "128", "--calibration", str(path), "--json"]) == 0
    assert "calibrated:" in capsys.readouterr().err
    # A run without a TTFT calibrates nothing: one message naming the option, the file and the field.
    bad = tmp_path / "no-ttft.json"
    bad.write_text(json.dumps({"measurement": {**bench_predicted.calibration_row(
        args, {"output_throughput": 120.0}, bench_predicted.workload(args))}}))
    assert main([*common, "--concurrency", "1", "--calibration", str(bad)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("error: --calibration ") and str(bad) in err and "ttft_ms" in err


def test_varied_output_lengths_spread_around_their_mean_and_the_longest_ends_the_run() -> None:
    """Requests that stop at end of sequence: 200 lengths of mean 200 spread as an exponential distribution (the
    shortest about 0.5 % of the mean, the longest about ln(400) = 6 times it), mixed in order; a run of them lasts
    until its longest request is done, so it serves fewer tokens/s than 200 equal requests."""
    lengths = performance._output_lengths(200, 200, varied=True)
    assert sum(lengths) == pytest.approx(200 * 200, rel=0.01)
    assert min(lengths) <= 2 and 5.5 * 200 < max(lengths) < 6.5 * 200
    assert lengths.index(max(lengths)) not in (0, 199)  # not sorted
    assert performance._output_lengths(200, 200, varied=False) == [200] * 200
    llama = facts("meta-llama/Llama-3.1-8B-Instruct")
    equal = predict(llama, ServingLayout("H100"), Workload(256, 200, rate=math.inf, requests=200))
    varied = predict(llama, ServingLayout("H100"), Workload(256, 200, rate=math.inf, requests=200,
                                                            varied_lengths=True))
    assert varied.output_tokens_per_s < 0.8 * equal.output_tokens_per_s


def test_a_closed_loop_of_long_prompts_queues_them_by_hand() -> None:
    """Four clients send 4096-token prompts for one output token each, at a budget of 2048: every prompt is two
    chunks and the scheduler runs them in arrival order. The first round's TTFTs are 2, 4, 6 and 8 chunk steps;
    each client's next request arrives as its previous one finishes and waits for the other three clients'
    prompts, so every later request takes 8. Eight requests: 2, 4, 6, 8, 8, 8, 8, 8; the median (the mean of the
    middle two) is 8 chunk steps. With the neutral constants (no request overhead) a chunk step is its compute."""
    llama = facts("meta-llama/Llama-3.1-8B-Instruct")
    chunks = _llama_prefill_by_hand(2048, 1, 2048 * 1024) + _llama_prefill_by_hand(2048, 1, 2048 * (2048 + 1024))
    layout = ServingLayout("H100", max_num_batched_tokens=2048)
    run = predict(llama, layout, Workload(4096, 1, concurrency=4, requests=8), NEUTRAL)
    assert run.ttft_ms.p50 == pytest.approx(4 * chunks * 1e3, rel=1e-6)
    assert run.requests_per_s == pytest.approx(8 / (8 * chunks), rel=1e-6)
    # The lockstep a steady-state solution assumed (all four prompts in each one's TTFT) is the same 8 chunk steps
    # here; the first round is faster, and a loop whose prompts fit one step stays in lockstep.
    short = predict(llama, ServingLayout("H100"), Workload(512, 1, concurrency=4, requests=8), NEUTRAL)
    assert short.ttft_ms.p50 == pytest.approx(_llama_prefill_by_hand(2048, 4, 4 * 512 * 512 / 2) * 1e3, rel=1e-6)


def test_an_fp8_models_attention_runs_at_the_16_bit_rate_by_hand() -> None:
    """Llama 3.1 8B with FP8 weights prefilling 4096 tokens on an H100: its products (weights but the LM head twice a
    token, the head once) run at the FP8 rate, 1979 TFLOP/s, its attention (4 x 32 heads x 128 x 32 layers FLOPs per
    pair, 4096 ** 2 / 2 pairs) on bf16 queries and keys at 989; both on the rate curve of the step's 4096 tokens."""
    model = performance._derive(facts("meta-llama/Llama-3.1-8B-Instruct"), ServingLayout("H100", weight_dtype="fp8"))
    assert model.compute_tflops == 1979 and model.attention_tflops == 989
    head = 128256 * 4096
    products = 2 * (model.active_params - head) * 4096 + 2 * head
    attention = 4 * 32 * 128 * 32 * 4096 * 4096 / 2
    half = 256 * model.ridge_scale
    expected = (products / 1979e12 + attention / 989e12) / (0.8 * 4096 / (4096 + half))
    assert performance.step_seconds(model, NEUTRAL, 0, 0, 4096) == pytest.approx(expected, rel=1e-9)
    bf16 = performance._derive(facts("meta-llama/Llama-3.1-8B-Instruct"), ServingLayout("H100"))
    assert bf16.attention_tflops == bf16.compute_tflops == 989


def test_the_oracle_fits_each_publishers_own_held_out_rows_and_never_does_worse_than_the_stored_constants(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``--oracle`` picks, per publisher, the grid point with the lowest median TTFT error on its held-out rows; with
    the stored constants on the grid it can only match or beat them, publisher by publisher and overall."""
    import statistics

    bench = _bench()
    stored = performance.fitted_constants()
    monkeypatch.setattr(bench, "ORACLE_OVERHEADS_MS", (stored.request_overhead_ms, 5.0))
    monkeypatch.setattr(bench, "ORACLE_PREFILL_FACTORS", (1.0,))
    found, overall = bench.oracle(stored)
    rows = [row for row in bench.evaluate_all(stored)
            if bench._split_of(row, set(), "held-out") and row.error["ttft"] is not None]
    assert sum(count for *_, count in found.values()) == len(rows)
    for name, (median, overhead, factor, _count) in found.items():
        own = [abs(row.error["ttft"]) for row in rows if bench.publisher(row.source) == name]
        assert median <= statistics.median(own) + 1e-12
        assert overhead in (stored.request_overhead_ms, 5.0) and factor == 1.0
    assert overall <= statistics.median(abs(row.error["ttft"]) for row in rows) + 1e-12
