"""The vLLM engine: everything about vLLM itself, independent of where it runs.

The one builder of vLLM command lines (:mod:`.argv`), what every vLLM container has
(:mod:`.container`), the reader of vLLM commands in other people's manifests (:mod:`.commandline`,
:mod:`.workload`, used by the policy pack), vLLM's own argument parser as a check (:mod:`.check`,
which imports vLLM lazily) and offline inference (:mod:`.offline`). Pure code: it may import the
stack schema (:mod:`pulumi_vllm.config`) and nothing that creates resources.
"""
