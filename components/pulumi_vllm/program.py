"""The Pulumi program behind ``__main__.py``: read the stack config, build the serving, export outputs."""

from __future__ import annotations

from typing import Any

import pulumi

from pulumi_vllm.config import StackConfig, load_stack_config
from pulumi_vllm.plan import ServingPlan, plan_serving


def runtime_config() -> dict[str, Any]:
    """Every config value the Pulumi runtime holds for this program (``project:key`` -> value)."""
    from pulumi.runtime import config as runtime

    values: dict[str, Any] = dict(runtime.get_config_env())
    values.update(runtime.CONFIG.get())
    return values


def read_stack_config() -> StackConfig:
    """The validated stack config; raises :class:`~pulumi_vllm.config.ConfigError` on bad input."""
    from pulumi.runtime import config as runtime

    secret = {key for key in runtime_config() if runtime.is_config_secret(key)}
    return load_stack_config(runtime_config(), secret_keys=secret | set(runtime.get_config_secret_keys_env()))


def plan_notes(plan: ServingPlan) -> list[str]:
    """What the plan reports without failing: capacity warnings and rules it could not verify."""
    unverified = [finding.message for finding in plan.findings if not finding.verifiable]
    return [*plan.warnings, *unverified]


def run() -> None:
    """Create the stack's resources and export its outputs."""
    config = read_stack_config()
    # The CLI shows these under the stack in `pulumi preview` / `pulumi up`.
    for note in plan_notes(plan_serving(config)):
        pulumi.log.warn(note)
    if config.target == "docker":
        from pulumi_vllm.docker.serving import build_docker_stack

        outputs = build_docker_stack(config)
    else:
        from pulumi_vllm.kubernetes.serving import VllmServing

        serving = VllmServing(config.name, {"config": config})
        outputs = {
            "baseUrl": serving.base_url,
            "servedModelName": serving.served_model_name,
            "gpus": serving.gpus,
        }
    for key, value in outputs.items():
        pulumi.export(key, value)
