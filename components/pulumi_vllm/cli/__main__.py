"""``python -m pulumi_vllm.cli``: the same as the ``pulumi-vllm`` console script."""

from pulumi_vllm.cli import console_main

console_main()
