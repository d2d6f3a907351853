"""The documented short path of :mod:`pulumi_vllm.distributed.parallelism` (vLLM's parallelism rules)."""

from pulumi_vllm.distributed.parallelism import *
