"""Tensor parallelism on GPUs without NVLink: vLLM's custom all-reduce is off above two PCIe-only GPUs
(CustomAllreduce.__init__, vllm/distributed/device_communicators/custom_all_reduce.py), so the planner counts
NCCL's PCIe buffers (and the custom all-reduce's at two GPUs) rather than the NVLink H100 figures."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pulumi_vllm.capacity.accounting import (
    PCIE_CUSTOM_ALL_REDUCE_GIB,
    PIPELINE_STAGE_NON_TORCH_GIB,
    accounting_for,
    non_torch_gib,
)
from pulumi_vllm.capacity.gpus import _PCIE_ONLY, custom_gpu, known_gpus, lookup_gpu
from pulumi_vllm.capacity.planner import plan_capacity
from pulumi_vllm.models import catalog


@pytest.mark.parametrize("name", ["L40S", "L4", "A10", "A10G", "RTX-4090", "RTX-5090"])
def test_pcie_cards_have_no_nvlink(name: str) -> None:
    assert lookup_gpu(name).nvlink is False


@pytest.mark.parametrize("name", ["H100-80GB", "H200", "A100-80GB", "B200", "MI300X"])
def test_nvlink_cards_keep_it(name: str) -> None:
    assert lookup_gpu(name).nvlink is True


def test_every_pcie_entry_is_in_the_catalog_and_cites_its_specification() -> None:
    assert set(_PCIE_ONLY) <= set(known_gpus())
    assert all(reason.strip() for reason in _PCIE_ONLY.values())
    # A GPU the user describes by its memory alone keeps the larger (NVLink) non-torch memory.
    assert custom_gpu(40.0).nvlink is True


@pytest.mark.parametrize("version", ["0.8.5", "0.19.0", "0.32.0"])
def test_pcie_non_torch_memory(version: str) -> None:
    era = accounting_for(version)
    assert non_torch_gib(era, 2, 1, nvlink=False) == pytest.approx(
        PIPELINE_STAGE_NON_TORCH_GIB + PCIE_CUSTOM_ALL_REDUCE_GIB)
    # Above two GPUs vLLM sets no custom all-reduce up on PCIe.
    assert non_torch_gib(era, 4, 1, nvlink=False) == pytest.approx(PIPELINE_STAGE_NON_TORCH_GIB)
    assert non_torch_gib(era, 4, 1, nvlink=False) < non_torch_gib(era, 4, 1)
    assert non_torch_gib(era, 1, 1, nvlink=False) == non_torch_gib(era, 1, 1)


def test_the_plan_gives_pcie_cards_more_kv_cache_than_nvlink_ones_of_the_same_size() -> None:
    facts = catalog.lookup("Qwen/Qwen3-30B-A3B")
    assert facts is not None
    a10 = lookup_gpu("A10")
    linked = replace(a10, nvlink=True)
    kwargs = {"tensor_parallel_size": 4, "max_model_len": 8192, "vllm_version": "0.8.5",
              "model_id": "Qwen/Qwen3-30B-A3B"}
    pcie = plan_capacity(facts, a10, **kwargs)
    nvlink = plan_capacity(facts, linked, **kwargs)
    assert pcie.stages[0].non_torch_gib == pytest.approx(PIPELINE_STAGE_NON_TORCH_GIB)
    assert pcie.kv_cache_tokens > nvlink.kv_cache_tokens
