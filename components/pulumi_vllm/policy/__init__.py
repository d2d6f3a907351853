"""The policy client: runs a Pulumi policy pack exactly as ``pulumi preview`` does (the pack's own
gRPC Analyzer server on loopback) over rendered resources, for ``render`` and ``diff``.

It may import the engine's workload reader; nothing in the components imports it.
"""
