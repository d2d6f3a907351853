"""Review a change: render stacks at a git revision and in the working tree, and say what the change does.

``pulumi-vllm diff`` (:mod:`~pulumi_vllm.cli.diff`) drives it. The rest is pure: :mod:`~.report`
compares two renders and writes the text and markdown reports, :mod:`~.consequences` says what a
changed object does on the cluster, :mod:`~.fields` finds the changed fields, :mod:`~.mermaid` draws
the topology. :mod:`~.gitrev` reads a revision without touching the working tree or the index. It
reads renders (plain data) and imports neither the components nor the command line.
"""
