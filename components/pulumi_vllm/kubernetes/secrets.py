"""A Kubernetes Secret holding one secret value (the Hugging Face token, the API key)."""

from typing import NotRequired, TypedDict

import pulumi
import pulumi_kubernetes as k8s

from pulumi_vllm.kubernetes import object_name

TOKEN = "pulumi-vllm:index:SecretValue"


class SecretValueArgs(TypedDict):
    """Arguments of :class:`SecretValue`."""

    namespace: str
    """Namespace of the Secret."""
    secret_name: str
    """Name of the Secret."""
    value: pulumi.Input[str]
    """The secret value; it is kept secret in state and outputs whether or not it arrives as one."""
    key: NotRequired[str]
    """Key under which the value is stored (default ``token``)."""
    labels: NotRequired[dict[str, str]]
    """Labels of the Secret."""


class SecretValue(pulumi.ComponentResource):
    """An Opaque Secret with one key, whose value never appears in plaintext in state or outputs."""

    secret_name: pulumi.Output[str]
    """Name of the Secret, for a ``secretKeyRef``."""
    key: str
    """Key of the value inside the Secret."""

    def __init__(self, name: str, args: SecretValueArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TOKEN, name, None, opts)
        self.key = args.get("key", "token")
        value = pulumi.Output.secret(args["value"])
        self._secret = k8s.core.v1.Secret(
            f"{name}-secret",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=args["secret_name"], namespace=args["namespace"], labels=args.get("labels", {})
            ),
            type="Opaque",
            string_data={self.key: value},
            opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["data", "stringData"]),
        )
        self.secret_name = object_name(self._secret)
        self.register_outputs({"secret_name": self.secret_name})
