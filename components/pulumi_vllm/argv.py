"""The documented short path of :mod:`pulumi_vllm.engine.argv` (the one builder of vLLM command lines)."""

from pulumi_vllm.engine.argv import *
