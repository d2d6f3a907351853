"""Multi-node serving: one model over several pods that form a Ray cluster, with three backends.

``parallelism.backend`` chooses who manages the pods; the pods themselves are the same everywhere
(:mod:`pulumi_vllm.kubernetes.ray_pods`):

- ``plain`` (default, no operator): a StatefulSet of one for the Ray head, a StatefulSet of
  ``pods - 1`` workers and a headless Service giving the head a stable DNS name for the workers.
- ``leaderworkerset``: a LeaderWorkerSet whose groups are one Ray cluster each (``size`` = pods);
  LWS injects the leader's address, and recreates the whole group when one of its pods restarts.
- ``kuberay``: a RayCluster with a head group and one worker group; KubeRay generates the
  ``ray start`` commands, which the pods run themselves (the ``ray.io/overwrite-container-cmd``
  annotation) so that the head can start vLLM once the cluster is complete.

The client Service (created by the caller) selects :attr:`MultiNodeServer.head_selector`.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict, cast

import pulumi
import pulumi_kubernetes as k8s

from pulumi_vllm.distributed import ray
from pulumi_vllm.distributed.multinode import check_multinode
from pulumi_vllm.engine.argv import EngineArgs
from pulumi_vllm.kubernetes.pod import ContainerSettings
from pulumi_vllm.kubernetes.ray_pods import (
    RayPodTemplates,
    group_workload,
    group_workload_name,
    head_selector,
    head_service_name,
    ray_pod_templates,
    worker_selector,
    worker_workload_name,
)
from pulumi_vllm.kubernetes.server import ROLLOUT_MARGIN_SECONDS
from pulumi_vllm.plan import ServingPlan

TOKEN = "pulumi-vllm:index:MultiNodeServer"


class MultiNodeServerArgs(TypedDict):
    """Arguments of :class:`MultiNodeServer`."""

    plan: ServingPlan
    """The validated plan: topology (pods, GPUs per pod), names, backend and network settings."""
    engine: EngineArgs
    """The engine settings; the head serves ``vllm_command(engine)`` with the Ray executor backend."""
    container: ContainerSettings
    """The vLLM container every pod starts from (cache, token, shared memory, GPUs, probes)."""
    labels: NotRequired[dict[str, str]]
    """Labels of the objects and pods; the component label is set per role."""
    pod_annotations: NotRequired[dict[str, pulumi.Input[str]]]
    """Pod-template annotations; a change restarts the pods (used for secret rotation)."""


class MultiNodeServer(pulumi.ComponentResource):
    """vLLM across several GPU pods joined into a Ray cluster (plain StatefulSets, LeaderWorkerSet or KubeRay)."""

    head_selector: dict[str, str]
    """Labels of the Ray head pods, which alone serve the OpenAI API (for the client Service)."""
    gpus: int
    """GPUs requested by every pod of every replica together."""
    backend: str
    """The backend that manages the pods: ``plain``, ``leaderworkerset`` or ``kuberay``."""
    pods_per_replica: int
    """Pods of one model replica (one Ray cluster): the head and its workers."""
    workload_names: pulumi.Output[list[str]]
    """Names of the workload objects: the head and worker StatefulSets, the LeaderWorkerSet or the RayCluster."""

    def __init__(self, name: str, args: MultiNodeServerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        plan = args["plan"]
        config = plan.config
        check_multinode(config)
        templates = ray_pod_templates(
            plan, args["engine"], args["container"], args.get("labels"), args.get("pod_annotations")
        )
        super().__init__(TOKEN, name, None, opts)
        labels = args.get("labels", {})
        self.backend = config.parallelism.backend
        self.head_selector = head_selector(config)
        self.pods_per_replica = plan.topology.pods
        self.gpus = plan.total_gpus
        timeout = f"{config.probes.startup_timeout_seconds + ROLLOUT_MARGIN_SECONDS}s"
        workload_opts = pulumi.ResourceOptions(
            parent=self, custom_timeouts=pulumi.CustomTimeouts(create=timeout, update=timeout)
        )
        facts = plan.facts_annotations()
        if self.backend == "plain":
            self._plain(name, plan, templates, labels, facts, workload_opts)
        else:
            group = group_workload(plan, templates)
            self._group = k8s.apiextensions.CustomResource(
                f"{name}-{group.kind.lower()}",
                api_version=group.api_version,
                kind=group.kind,
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=group_workload_name(plan),
                    namespace=config.namespace,
                    labels=labels,
                    annotations={**facts, **group.annotations},
                ),
                spec=group.spec,
                opts=workload_opts
                if group.kind != "RayCluster"
                else pulumi.ResourceOptions.merge(
                    workload_opts,
                    # KubeRay does not replace running pods when a RayCluster's templates change: a new
                    # spec replaces the cluster, the old one first (same name, and its GPUs are needed).
                    pulumi.ResourceOptions(replace_on_changes=["spec"], delete_before_replace=True),
                ),
            )
            metadata: pulumi.Output[Any] = self._group.metadata  # type: ignore[attr-defined] # set at runtime
            self.workload_names = pulumi.Output.all(metadata.apply(_name))
        self.register_outputs(
            {
                "head_selector": self.head_selector,
                "gpus": self.gpus,
                "backend": self.backend,
                "pods_per_replica": self.pods_per_replica,
                "workload_names": self.workload_names,
            }
        )

    def _plain(
        self,
        name: str,
        plan: ServingPlan,
        templates: RayPodTemplates,
        labels: dict[str, str],
        facts: dict[str, str],
        opts: pulumi.ResourceOptions,
    ) -> None:
        config = plan.config
        service = head_service_name(plan)
        # Headless, and listing the head before it is ready: it is ready only once the workers,
        # which find it through this name, have joined.
        self._head_service = k8s.core.v1.Service(
            f"{name}-ray-head",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=service, namespace=config.namespace, labels={**labels, **head_selector(config)}
            ),
            spec=k8s.core.v1.ServiceSpecArgs(
                cluster_ip="None",
                publish_not_ready_addresses=True,
                selector=head_selector(config),
                ports=[k8s.core.v1.ServicePortArgs(name="gcs", port=ray.RAY_PORT, target_port=ray.RAY_PORT)],
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        roles = (
            ("head", service, 1, head_selector(config), templates.head),
            ("workers", worker_workload_name(plan), plan.topology.pods - 1, worker_selector(config), templates.worker),
        )
        self._statefulsets = [
            k8s.apps.v1.StatefulSet(
                f"{name}-{role}",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=object_name, namespace=config.namespace, labels={**labels, **selector}, annotations=facts
                ),
                spec=k8s.apps.v1.StatefulSetSpecArgs(
                    replicas=replicas,
                    service_name=service,
                    selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector),
                    # All at once: the head waits for the workers, the workers for the head.
                    pod_management_policy="Parallel",
                    template=cast(k8s.core.v1.PodTemplateSpecArgs, template),  # camelCase, sent verbatim
                ),
                opts=opts,
            )
            for role, object_name, replicas, selector, template in roles
        ]
        self.workload_names = pulumi.Output.all(
            *(statefulset.metadata.apply(_name) for statefulset in self._statefulsets)
        )


def _name(metadata: Any) -> str:
    # Typed resources resolve metadata to an object, custom resources to a plain dict.
    return str(metadata["name"] if isinstance(metadata, dict) else metadata.name)
