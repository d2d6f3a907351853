"""GPUs and the capacity planner: will a model start, and how much KV cache will vLLM keep.

The GPU types and their memory (:mod:`.gpus`), vLLM's own memory accounting per release range and
its error wording (:mod:`.accounting`), the planner (:mod:`.planner`) and the layout advice built
on it (:mod:`.layout`). Pure code: it may import the model facts (:mod:`pulumi_vllm.models`) and
the parallelism rules (:mod:`pulumi_vllm.distributed.parallelism`), never Pulumi.
"""
