"""Cloud regions and zones a ``cloud`` section may name, from the provider SDKs' own lists where they have one.

- AWS: ``pulumi_aws``'s ``Region`` enum (``pulumi_aws/_enums.py``), every region the SDK can target; an
  Availability Zone is its region's name plus one letter (``us-east-2a``), or a Local or Wavelength Zone
  (``us-west-2-lax-1a``, ``us-east-1-wl1-bos-wlz-1``) whose name starts with its region's.
- Google Cloud: ``pulumi_gcp`` ships no list of regions (its docstrings only show examples), so the table
  :data:`GCP_REGIONS` is Google's "Available regions and zones"
  (https://cloud.google.com/compute/docs/regions-zones#available); a zone is its region's name, ``-`` and one
  letter (``us-central1-a``). Which letters a region has is not checked here.
"""

from __future__ import annotations

import ast
import importlib.util
import re
from functools import cache
from pathlib import Path

GCP_REGIONS_SOURCE = "https://cloud.google.com/compute/docs/regions-zones#available"

GCP_REGIONS = (
    "africa-south1", "asia-east1", "asia-east2", "asia-northeast1", "asia-northeast2", "asia-northeast3",
    "asia-south1", "asia-south2", "asia-southeast1", "asia-southeast2", "australia-southeast1",
    "australia-southeast2", "europe-central2", "europe-north1", "europe-north2", "europe-southwest1",
    "europe-west1", "europe-west2", "europe-west3", "europe-west4", "europe-west6", "europe-west8",
    "europe-west9", "europe-west10", "europe-west12", "me-central1", "me-central2", "me-west1",
    "northamerica-northeast1", "northamerica-northeast2", "northamerica-south1", "southamerica-east1",
    "southamerica-west1", "us-central1", "us-east1", "us-east4", "us-east5", "us-south1", "us-west1", "us-west2",
    "us-west3", "us-west4",
)
"""Google Cloud's regions, from :data:`GCP_REGIONS_SOURCE`."""


@cache
def aws_regions() -> tuple[str, ...] | None:
    """Every region of ``pulumi_aws``'s ``Region`` enum; ``None`` when the ``aws`` extra is not installed.

    The enum is read from the SDK's ``_enums.py`` source rather than imported: the stack schema is pure and
    imports no Pulumi package (importing ``pulumi_aws`` would start Pulumi's runtime machinery).
    """
    spec = importlib.util.find_spec("pulumi_aws")
    if spec is None or not spec.submodule_search_locations:
        return None
    source = Path(next(iter(spec.submodule_search_locations))) / "_enums.py"
    if not source.is_file():
        return None
    tree = ast.parse(source.read_text())
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "Region":
            return tuple(
                statement.value.value
                for statement in node.body
                if isinstance(statement, ast.Assign)
                and isinstance(statement.value, ast.Constant)
                and isinstance(statement.value.value, str)
            )
    return None


def regions(provider: str) -> tuple[str, ...] | None:
    """The regions ``provider`` (``aws`` or ``gcp``) accepts; ``None`` when they cannot be known here."""
    return aws_regions() if provider == "aws" else GCP_REGIONS


def check_region(provider: str, region: str) -> None:
    """Raise ``ValueError`` when ``region`` is not one of the provider's regions (the message lists them)."""
    known = regions(provider)
    if known is None or region in known:
        return
    source = "pulumi_aws's Region enum" if provider == "aws" else f"Google Cloud's list, {GCP_REGIONS_SOURCE}"
    close = [name for name in known if name.split("-")[0] == region.split("-")[0]] or list(known)
    cloud = "an AWS" if provider == "aws" else "a Google Cloud"
    raise ValueError(f"{region!r} is not {cloud} region ({source}); accepted: {', '.join(close)}")


def check_zone(provider: str, region: str, zone: str) -> None:
    """Raise ``ValueError`` when ``zone`` is not a zone of ``region`` (``us-east-2a`` on AWS, ``us-central1-a`` on GCP)."""
    if provider == "aws":
        if re.fullmatch(rf"{re.escape(region)}[a-z]", zone) or re.fullmatch(rf"{re.escape(region)}-[a-z0-9-]+[a-z0-9]", zone):
            return
        raise ValueError(
            f"{zone!r} is not a zone of {region}: an Availability Zone there is {region} and one letter "
            f"(e.g. {region}a; see aws ec2 describe-availability-zones --region {region})"
        )
    if re.fullmatch(rf"{re.escape(region)}-[a-z]", zone):
        return
    raise ValueError(
        f"{zone!r} is not a zone of {region}: a zone there is {region}, '-' and one letter (e.g. {region}-a; see "
        f"gcloud compute zones list --filter=region:{region})"
    )
