"""The GPU cards beyond the big clouds' line-up: their names, node labels, memory and vLLM's batch defaults."""

from __future__ import annotations

import pytest

from pulumi_vllm.capacity.gpus import gpu_from_node_label, known_gpus, lookup_gpu
from pulumi_vllm.capacity.planner import plan_capacity
from pulumi_vllm.models import catalog

# (canonical name, nvidia.com/gpu.product as GPU feature discovery writes the CUDA device name, GiB CUDA reports)
CARDS = [
    ("RTX-PRO-6000-Server", "NVIDIA-RTX-PRO-6000-Blackwell-Server-Edition", 94.97),
    ("RTX-PRO-6000-Workstation", "NVIDIA-RTX-PRO-6000-Blackwell-Workstation-Edition", 94.97),
    ("RTX-5090", "NVIDIA-GeForce-RTX-5090", 31.37),
    ("RTX-4080", "NVIDIA-GeForce-RTX-4080", 15.52),
    ("L40", "NVIDIA-L40", 44.52),
    ("A40", "NVIDIA-A40", 44.52),
]


@pytest.mark.parametrize(("name", "product", "gib"), CARDS)
def test_each_card_is_named_by_its_node_label_and_says_where_its_memory_comes_from(
    name: str, product: str, gib: float
) -> None:
    gpu = lookup_gpu(name)
    assert name in known_gpus()
    assert gpu_from_node_label("nvidia.com/gpu.product", product) == gpu
    assert gpu.total_memory_gib == gib
    assert gpu.device_name.replace(" ", "-") == product
    assert gpu.source and ("github.com" in gpu.source or gpu.source.startswith("estimated"))


def test_spellings_users_write() -> None:
    assert lookup_gpu("rtx pro 6000").name == "RTX-PRO-6000-Server"  # the same 96 GB as the Workstation Edition
    assert lookup_gpu("NVIDIA RTX PRO 6000 Blackwell Max-Q Workstation Edition").name == "RTX-PRO-6000-Workstation"
    assert lookup_gpu("GeForce RTX 5090").name == "RTX-5090"
    assert lookup_gpu("4080").name == "RTX-4080"
    assert lookup_gpu("l40").name == "L40" and lookup_gpu("L40S").name == "L40S"
    assert gpu_from_node_label("cloud.google.com/gke-accelerator", "nvidia-rtx-pro-6000").name == "RTX-PRO-6000-Server"


def test_vllm_gives_the_96_gb_cards_the_large_batch_defaults() -> None:
    # EngineArgs.get_batch_defaults: 70 GiB or more and not an A100.
    assert lookup_gpu("RTX-PRO-6000-Server").default_max_num_batched_tokens == 8192
    assert lookup_gpu("RTX-5090").default_max_num_seqs == 256


def test_an_8b_model_fits_a_5090_and_not_a_4080_in_bf16() -> None:
    facts = catalog.lookup("meta-llama/Llama-3.1-8B-Instruct")
    assert facts is not None
    assert plan_capacity(facts, lookup_gpu("RTX-5090"), 1, 1, max_model_len=8192).fits
    assert not plan_capacity(facts, lookup_gpu("RTX-4080"), 1, 1, max_model_len=8192).fits
