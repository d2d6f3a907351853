"""The top-level Kubernetes component: model cache, secrets, vLLM server and Service, composed."""

# Real annotations (no ``from __future__ import annotations``): the multi-language schema is inferred from them.

import dataclasses
import hashlib
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from pulumi_vllm.config.component_args import stack_config_from_args
from pulumi_vllm.engine.argv import engine_args_from_config, vllm_command
from pulumi_vllm.engine.container import cache_path
from pulumi_vllm.engine.profiles.stack import serve_spec
from pulumi_vllm.kubernetes.kv_pods import check_kv_flags, kv_container
from pulumi_vllm.kubernetes.model_cache import ModelCache
from pulumi_vllm.kubernetes.operations import VllmOperations, operations_options
from pulumi_vllm.kubernetes.pod import ContainerSettings, SecretKeyRef, object_labels, selector_labels
from pulumi_vllm.kubernetes.pod_resources import model_memory
from pulumi_vllm.kubernetes.safety import LoadTest, ServingSafety
from pulumi_vllm.kubernetes.safety_pods import check_safety, graceful_engine, harden
from pulumi_vllm.kubernetes.secrets import SecretValue
from pulumi_vllm.kubernetes.server import VllmServer
from pulumi_vllm.kubernetes.service import VllmService
from pulumi_vllm.kubernetes.serving_args import VllmServingArgs
from pulumi_vllm.plan import ServingPlan, plan_serving

TOKEN = "pulumi-vllm:index:VllmServing"

SECRET_CHECKSUM_ANNOTATION = "pulumi-vllm/secret-checksum"
"""Pod annotation that changes when the token or API key changes, so a rotation rolls the pods."""


def _checksum(*values: str | None) -> str:
    digest = hashlib.sha256()
    for value in values:
        digest.update(b"\0" + (value or "").encode())
    return digest.hexdigest()[:32]


class VllmServing(pulumi.ComponentResource):
    """vLLM's OpenAI-compatible server on Kubernetes GPU nodes, with its cache, secrets and Service."""

    base_url: pulumi.Output[str]
    """In-cluster base URL of the OpenAI API: ``http://<service>.<namespace>.svc.cluster.local/v1``."""
    served_model_name: pulumi.Output[str]
    """Name clients use in the ``model`` field of requests."""
    gpus: pulumi.Output[int]
    """GPUs the serving requests in total."""

    def __init__(self, name: str, args: VllmServingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        # Validation comes before registration so bad input creates nothing, not even this component.
        config = stack_config_from_args(args)
        plan = plan_serving(config)
        check_safety(plan)
        check_kv_flags(config)
        # Autoscaling and monitoring refusals; with KEDA on, the workload's replicas are left to KEDA.
        opts = operations_options(plan, opts)
        super().__init__(TOKEN, name, None, opts)
        # The validated plan the resources were built from (not an output: it is no schema type).
        self.plan: ServingPlan = plan
        child = pulumi.ResourceOptions(parent=self)
        labels = object_labels(config)
        # Pods created before a ResourceQuota exists are not counted against it: the quota comes first and
        # every workload depends on it.
        workload = child
        if plan.quota_gpus is not None:
            from pulumi_vllm.kubernetes.gpu_quota import GpuQuota

            self._quota = GpuQuota(
                f"{name}-gpu-quota",
                {
                    "namespace": config.namespace,
                    "gpus": plan.quota_gpus,
                    "gpu_resource_name": config.resources.gpu_resource_name,
                },
                child,
            )
            workload = pulumi.ResourceOptions(parent=self, depends_on=[self._quota])

        hf_token = args.get("hf_token") or (config.hf_token.get_secret_value() if config.hf_token else None)
        api_key = args.get("api_key") or (config.api_key.get_secret_value() if config.api_key else None)

        if config.cache.existing_claim:
            claim: Any = config.cache.existing_claim
        else:
            self._cache = ModelCache(
                f"{name}-cache",
                {
                    "namespace": config.namespace,
                    "claim_name": plan.cache_claim_name,
                    "size": config.cache.size,
                    "storage_class": config.cache.storage_class,
                    "access_mode": config.cache.access_mode,
                    "labels": object_labels(config, "model-cache"),
                    "protect": config.cache.protect,
                    "retain_on_delete": config.cache.retain_on_delete,
                },
                child,
            )
            claim = self._cache.claim_name

        token_ref: SecretKeyRef | None = None
        if config.hf_token_secret is not None:
            token_ref = SecretKeyRef(config.hf_token_secret.name, config.hf_token_secret.key)
        elif hf_token is not None:
            self._hf_token = SecretValue(
                f"{name}-hf-token",
                {
                    "namespace": config.namespace,
                    "secret_name": plan.hf_token_secret_name,
                    "value": hf_token,
                    "labels": labels,
                },
                child,
            )
            token_ref = SecretKeyRef(self._hf_token.secret_name, self._hf_token.key)

        api_key_ref: SecretKeyRef | None = None
        if api_key is not None:
            self._api_key = SecretValue(
                f"{name}-api-key",
                {
                    "namespace": config.namespace,
                    "secret_name": plan.api_key_secret_name,
                    "value": api_key,
                    "key": "api-key",
                    "labels": labels,
                },
                child,
            )
            api_key_ref = SecretKeyRef(self._api_key.secret_name, self._api_key.key)

        engine = graceful_engine(engine_args_from_config(config, multi_node=plan.topology.multi_node), config)
        command = vllm_command(engine)
        container = ContainerSettings(
            image=config.engine.pinned_image,
            command=command.command,
            args=command.args,
            gpus=plan.gpus_per_pod,
            resources=config.resources,
            cache_claim=claim,
            hf_token=token_ref,
            api_key=api_key_ref,
            env=dict(config.engine.env),
            probes=config.probes,
            model_memory=model_memory(plan),
        )
        if config.engine.kind != "vllm":
            container = self._other_engine(name, plan, container, labels)
        # Hardening, graceful stop, spread, and the pre-download Job, PDB and NetworkPolicies the servers wait for.
        container = harden(container, plan)
        container = kv_container(container, config)  # the KV connector's network and the KV tiers' memory and disk
        self._safety = ServingSafety(f"{name}-safety", {"plan": plan, "container": container}, child)
        workload = pulumi.ResourceOptions.merge(workload, pulumi.ResourceOptions(depends_on=[self._safety]))
        annotations: dict[str, pulumi.Input[str]] = {}
        if hf_token is not None or api_key is not None:
            # A digest of secrets is itself secret: it stays encrypted in state like the values.
            annotations[SECRET_CHECKSUM_ANNOTATION] = pulumi.Output.secret(
                pulumi.Output.all(hf_token, api_key).apply(lambda values: _checksum(*values))
            )
        service_selector = selector_labels(config.name)
        target_port: dict[str, str] = {}
        self._server: pulumi.ComponentResource
        if config.engine.kind == "ray-serve-llm":
            from pulumi_vllm.kubernetes.ray_service import RayServeLlm

            self._server = RayServeLlm(
                f"{name}-server",
                {"plan": plan, "container": container, "labels": labels, "pod_annotations": annotations},
                workload,
            )
            service_selector = self._server.serve_selector  # type: ignore[attr-defined]
            target_port = {"target_port": self._server.port_name}  # type: ignore[attr-defined]
        elif plan.topology.multi_node:
            from pulumi_vllm.kubernetes.multinode import MultiNodeServer

            self._server = MultiNodeServer(
                f"{name}-server",
                {
                    "plan": plan,
                    "engine": engine,
                    "container": container,
                    "labels": labels,
                    "pod_annotations": annotations,
                },
                workload,
            )
            # Only the Ray head serves the OpenAI API.
            service_selector = self._server.head_selector  # type: ignore[attr-defined]
        else:
            self._server = VllmServer(
                f"{name}-server",
                {
                    "namespace": config.namespace,
                    "deployment_name": plan.deployment_name,
                    "container": container,
                    "selector": service_selector,
                    "labels": labels,
                    "annotations": plan.facts_annotations(),
                    "replicas": config.replicas,
                    "pod_annotations": annotations,
                    "strategy": "RollingUpdate" if config.cache.access_mode == "ReadWriteMany" else "Recreate",
                    "startup_timeout_seconds": config.probes.startup_timeout_seconds,
                },
                workload,
            )
        if config.batch.enabled:
            from pulumi_vllm.kubernetes.batch import BatchInference

            self._batch = BatchInference(
                f"{name}-batch",
                {
                    "namespace": config.namespace,
                    "job_name": f"{config.name}-batch",
                    "engine": engine_args_from_config(config),
                    "container": container,
                    "batch": config.batch,
                    "labels": object_labels(config, "batch"),
                },
                workload,
            )
        self._service = VllmService(
            f"{name}-service",
            {
                "namespace": config.namespace,
                "service_name": plan.service_name,
                "selector": service_selector,
                "port": config.service.port,
                "type": config.service.type,
                "labels": labels,
                **target_port,  # type: ignore[typeddict-item]
            },
            pulumi.ResourceOptions(parent=self, depends_on=[self._server]),
        )
        if config.autoscaling.enabled or config.monitoring.enabled:
            self._operations = VllmOperations(
                f"{name}-operations", {"plan": plan}, pulumi.ResourceOptions(parent=self, depends_on=[self._server])
            )
        if config.load_test.enabled:
            self._load_test = LoadTest(
                f"{name}-load-test", {"plan": plan, "container": container},
                pulumi.ResourceOptions(parent=self, depends_on=[self._server, self._service]),
            )
        self.base_url = pulumi.Output.from_input(plan.base_url)
        self.served_model_name = pulumi.Output.from_input(plan.served_model_name)
        self.gpus = pulumi.Output.from_input(plan.total_gpus)
        self.register_outputs(
            {"base_url": self.base_url, "served_model_name": self.served_model_name, "gpus": self.gpus}
        )

    def _other_engine(
        self, name: str, plan: ServingPlan, container: ContainerSettings, labels: dict[str, str]
    ) -> ContainerSettings:
        """The container of an engine other than vLLM: its profile's command, port, probes, env and files."""
        config = plan.config
        engine = plan.engine
        spec = serve_spec(config, gpus=plan.gpus_per_pod, cache_path=cache_path(config.security.run_as_non_root))
        command = engine.command(spec) if config.engine.kind != "ray-serve-llm" else None
        files = engine.files(spec)
        settings = dataclasses.replace(
            container,
            name=config.engine.kind.replace(".", ""),
            command=command.command if command else (),
            args=command.args if command else (),
            env={**engine.env(spec), **container.env},
            container_port=engine.port,
            health_path=engine.health_path,
            ready_path=engine.ready_path,
            ready_command=engine.ready_command(spec),
            api_key_env=engine.api_key_env or "VLLM_API_KEY",
        )
        if not files:
            return settings
        items = tuple((path.replace("/", "--"), path) for path in sorted(files))
        self._engine_files = k8s.core.v1.ConfigMap(
            f"{name}-engine-files",
            metadata={"name": f"{config.name}-engine-files", "namespace": config.namespace, "labels": labels},
            data={key: files[path] for key, path in items},
            opts=pulumi.ResourceOptions(parent=self),
        )
        return dataclasses.replace(
            settings,
            engine_files=self._engine_files.metadata.apply(lambda metadata: metadata["name"]),
            engine_file_items=items,
        )
