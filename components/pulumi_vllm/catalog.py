"""The documented short path of :mod:`pulumi_vllm.models.catalog` (the built-in model catalog)."""

from pulumi_vllm.models.catalog import *
