"""The GPU platform, decided without Pulumi: the pinned Helm charts, the values each chart gets from the
``cluster`` section, and whether serving pods fit the platform's GPU nodes.

:mod:`.charts` pins every chart (name, repository, version, namespace) in one place; :mod:`.values`
builds each release's values; :mod:`.agreement` checks a serving stack against the GPU nodes. The
component that turns these into Helm releases is :mod:`pulumi_vllm.kubernetes.platform`.
"""
