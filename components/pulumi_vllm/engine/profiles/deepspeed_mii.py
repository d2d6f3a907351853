"""DeepSpeed-MII's OpenAI-compatible server, ``python3 -m mii.entrypoints.openai_api_server``.

The server starts a persistent MII deployment of ``--model`` (a Hugging Face id) on ``--tensor-parallel`` GPUs,
then serves ``/v1`` with uvicorn. It answers only requests whose ``model`` field is ``--model`` itself, so
``model.servedModelName`` cannot differ from ``model.id``. Its API keys (``--api-keys``) are read from the
environment through Kubernetes' ``$(VAR)`` expansion of container arguments.

DeepSpeed publishes no serving image: :data:`PROFILE` has none and the stack requires ``engine.image`` (an
image with ``deepspeed-mii`` and its dependencies installed on a CUDA PyTorch base, e.g. one built ``FROM
nvcr.io/nvidia/pytorch:25.10-py3`` with ``pip install deepspeed-mii==0.3.3``), checked in
:mod:`pulumi_vllm.engine.profiles.stack` since :class:`ServeSpec` does not carry the image.
"""

from __future__ import annotations

from dataclasses import dataclass

from pulumi_vllm.engine.profiles.base import ContainerCommand, EngineProfile, ServeSpec

MII_VERSION = "0.3.3"
"""The deepspeed-mii release the flags are written for (its ``mii/entrypoints/openai_api_server.py``)."""
MII_PORT = 8000
MII_API_KEY_ENV = "MII_API_KEY"
"""Environment variable holding the API key; MII reads keys from ``--api-keys`` only, so the args expand it."""
MII_MODULE = "mii.entrypoints.openai_api_server"
DEPLOYMENT_NAME = "deepspeed-mii"
"""``--deployment-name``: MII's default, one deployment per pod."""


@dataclass(frozen=True)
class DeepSpeedMiiProfile(EngineProfile):
    """DeepSpeed-MII (its OpenAI-compatible API server)."""

    def command(self, spec: ServeSpec) -> ContainerCommand:
        """``python3 -m mii.entrypoints.openai_api_server --model M --tensor-parallel T --host --port`` and the rest."""
        args: list[str] = [
            "-m", MII_MODULE,
            "--model", spec.model,
            "--deployment-name", DEPLOYMENT_NAME,
            "--host", "0.0.0.0",
            "--port", str(spec.port),
            "--tensor-parallel", str(spec.tensor_parallel_size),
            "--replica-num", "1",
        ]
        if spec.max_model_len is not None:
            # "--max_length": prompt + response (its "--max-length" twin writes the same dest).
            args += ["--max_length", str(spec.max_model_len)]
        if spec.api_key:
            args += ["--api-keys", f"$({MII_API_KEY_ENV})"]
        args += list(spec.extra_args)
        return ContainerCommand(command=("python3",), args=tuple(args))

    def problems(self, spec: ServeSpec) -> list[str]:
        """What MII's server has no option for: another served name, revisions, remote code, model files."""
        problems = super().problems(spec)
        refuse = f"is not accepted with engine.kind {self.kind!r}: DeepSpeed-MII's OpenAI server"
        if spec.served_model_name != spec.model:
            problems.append(
                f"model.servedModelName: {spec.served_model_name!r} {refuse} answers only requests for its --model "
                f"({spec.model!r}); remove model.servedModelName"
            )
        if spec.revision:
            problems.append(f"model.revision: {spec.revision!r} {refuse} has no revision option; remove model.revision")
        if spec.trust_remote_code:
            problems.append(
                f"model.trustRemoteCode: true {refuse} has no trust-remote-code option; use a model whose "
                "architecture MII supports and remove model.trustRemoteCode"
            )
        if spec.model_file is not None:
            problems.append(
                f"engine.modelFile: {spec.model_file!r} {refuse} loads the whole model.id; remove engine.modelFile"
            )
        return problems


PROFILE = DeepSpeedMiiProfile(
    kind="deepspeed-mii",
    title="DeepSpeed-MII",
    image="",
    version=MII_VERSION,
    docs=f"https://github.com/deepspeedai/DeepSpeed-MII/blob/v{MII_VERSION}/mii/entrypoints/openai_api_server.py",
    port=MII_PORT,
    # uvicorn starts after mii.serve() has loaded the model: /health answers only then.
    health_path="/health",
    ready_path="/health",
    metrics_path=None,
    openai_paths=("/v1/chat/completions", "/v1/completions", "/v1/models"),
    model_source="a Hugging Face model id (downloaded into the cache by MII's model loader)",
    parallelism="--tensor-parallel GPUs per replica (one replica, --replica-num 1); no pipeline parallelism",
    splits_heads=True,
    pipeline=False,
    docker=False,
    multi_node=False,
    api_key_env=MII_API_KEY_ENV,
    honours=frozenset({"max_model_len", "extra_args"}),
)
