"""The model cache: a PersistentVolumeClaim holding the Hugging Face cache (downloaded weights)."""

from typing import NotRequired, TypedDict

import pulumi
import pulumi_kubernetes as k8s

from pulumi_vllm.kubernetes import object_name

TOKEN = "pulumi-vllm:index:ModelCache"


class ModelCacheArgs(TypedDict):
    """Arguments of :class:`ModelCache`."""

    namespace: str
    """Namespace of the claim."""
    claim_name: str
    """Name of the claim. Changing it creates a new, empty claim."""
    size: NotRequired[str]
    """Requested capacity (default 100Gi). Growing it is an in-place update where the StorageClass allows expansion."""
    storage_class: NotRequired[str | None]
    """StorageClass (the cluster default when unset). Immutable: a change replaces the claim."""
    access_mode: NotRequired[str]
    """ReadWriteOnce (default), ReadWriteMany or ReadWriteOncePod. Immutable."""
    labels: NotRequired[dict[str, str]]
    """Labels of the claim."""
    protect: NotRequired[bool]
    """Refuse to delete the claim (Pulumi ``protect``)."""
    retain_on_delete: NotRequired[bool]
    """Leave the claim and its data in the cluster when the stack is destroyed (default true)."""


class ModelCache(pulumi.ComponentResource):
    """A PersistentVolumeClaim for the Hugging Face cache that outlives model changes and restarts.

    The claim depends only on its own settings, so changing the model, the image or any engine flag
    never touches it. It is retained on delete by default: a ``pulumi destroy`` leaves the weights in
    the cluster rather than silently dropping hundreds of gigabytes.
    """

    claim_name: pulumi.Output[str]
    """Name of the claim to mount."""

    def __init__(self, name: str, args: ModelCacheArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TOKEN, name, None, opts)
        spec = k8s.core.v1.PersistentVolumeClaimSpecArgs(
            access_modes=[args.get("access_mode", "ReadWriteOnce")],
            resources=k8s.core.v1.VolumeResourceRequirementsArgs(requests={"storage": args.get("size", "100Gi")}),
            storage_class_name=args.get("storage_class") or None,
        )
        self._claim = k8s.core.v1.PersistentVolumeClaim(
            f"{name}-claim",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=args["claim_name"], namespace=args["namespace"], labels=args.get("labels", {})
            ),
            spec=spec,
            opts=pulumi.ResourceOptions(
                parent=self,
                protect=args.get("protect", False),
                retain_on_delete=args.get("retain_on_delete", True),
            ),
        )
        self.claim_name = object_name(self._claim)
        self.register_outputs({"claim_name": self.claim_name})
