"""Distributed serving: how one model is split over GPUs and nodes, and how those nodes meet.

vLLM's parallelism rules and the pod topology (:mod:`.parallelism`), the Ray head and worker
scripts (:mod:`.ray`), the NCCL/Gloo network settings (:mod:`.network`), and the rules a stack must
meet on several Kubernetes pods (:mod:`.multinode`) or Docker hosts (:mod:`.hosts`). Pure code: it
may import the stack schema and the model facts, never Pulumi.
"""
