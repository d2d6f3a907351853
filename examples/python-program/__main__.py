"""A team's own program: the serving component with the program's own config keys."""

import pulumi

from pulumi_vllm.kubernetes.serving import VllmServing

config = pulumi.Config()
serving = VllmServing(
    "chat",
    {
        "name": "chat",
        "namespace": "acme",
        "model": {"id": config.require("modelId")},
        "engine": {"max_model_len": config.require_int("maxModelLen")},
        "resources": {"gpu_type": config.get("gpuType") or "L40S"},
    },
)
pulumi.export("chat_url", serving.base_url)
