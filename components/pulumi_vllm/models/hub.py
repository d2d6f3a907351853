"""A model's ``config.json`` and tensor inventory read from the Hugging Face Hub, and cached.

For a model the catalog does not know, :func:`fetch_model` reads ``config.json`` and every
safetensors header (the index ``model.safetensors.index.json`` names the shards; each shard's
header is read by an HTTP range request, never the tensors) through ``huggingface_hub``, and keeps
both as one JSON file under ``$XDG_CACHE_HOME/pulumi-vllm/hub/`` (``~/.cache/pulumi-vllm/hub/``).
A commit revision is cached forever (its files never change); a branch or tag for
:data:`BRANCH_CACHE_SECONDS`, after which it is read again (and the stale copy used, with a note,
when the Hub cannot be reached).

The Hub is ``HF_ENDPOINT`` (read on every call, not at import), the token is the caller's (never
logged nor stored), and ``PULUMI_VLLM_OFFLINE=1`` or ``HF_HUB_OFFLINE=1`` keeps every call off the
network (the cache is still read). Every failure is a :class:`HubUnavailable` whose message says
why in one line: no network, offline, gated without a token, not found, no ``config.json``.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pulumi_vllm.models.checkpoint import CheckpointTensors, TensorEntry, entries_from_header

DEFAULT_ENDPOINT = "https://huggingface.co"
"""The Hub when ``HF_ENDPOINT`` is not set."""

BRANCH_CACHE_SECONDS = 24 * 3600
"""How long the files read at a branch or tag (``main``) are reused before the Hub is asked again."""

TIMEOUT_SECONDS = 10.0
"""Per-request timeout: the sizing waits at most a few of these before falling back."""

OFFLINE_VARIABLES = ("PULUMI_VLLM_OFFLINE", "HF_HUB_OFFLINE")
"""Environment variables that, set to 1/true/yes/on, keep every lookup off the network."""

_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_CACHE_FORMAT = 1


class HubUnavailable(Exception):
    """The Hub could not give the model's files; the message says why, in the user's terms."""


@dataclass(frozen=True)
class HubModel:
    """What the Hub holds for one model at one revision."""

    repo_id: str
    revision: str
    """The revision asked for (``main`` when none was)."""
    commit: str
    """The commit that revision resolved to (empty when the Hub did not say)."""
    config: dict[str, Any]
    """The parsed ``config.json``."""
    checkpoint: CheckpointTensors | None
    """Every tensor of the safetensors checkpoint, or ``None`` when the repository has none."""
    from_cache: bool = False
    """Read from the cache folder rather than the Hub."""
    note: str = ""
    """Why a stale cached copy was used, if it was."""

    @property
    def source(self) -> str:
        """Where the files come from: ``hub:<repo>@<commit or revision>``."""
        return f"hub:{self.repo_id}@{self.commit or self.revision}"


def is_offline(env: dict[str, str] | None = None) -> bool:
    """Whether ``PULUMI_VLLM_OFFLINE`` or ``HF_HUB_OFFLINE`` forbids network lookups."""
    values = os.environ if env is None else env
    return any(values.get(name, "").strip().lower() in {"1", "true", "yes", "on"} for name in OFFLINE_VARIABLES)


def endpoint() -> str:
    """The Hub's base URL: ``HF_ENDPOINT`` as set now, else https://huggingface.co."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def looks_like_repo_id(model: str) -> bool:
    """Whether ``model`` reads as a Hub repository id (``org/name``), not a path or another engine's name."""
    return bool(_REPO_ID.match(model)) and ".." not in model and not Path(model).exists()


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/pulumi-vllm/hub`` (``~/.cache/pulumi-vllm/hub`` without it)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pulumi-vllm" / "hub"


def cache_file(repo_id: str, revision: str, hub: str | None = None) -> Path:
    """The cache file of ``repo_id`` at ``revision`` from the Hub at ``hub`` (one folder per Hub host)."""
    host = re.sub(r"[^\w.-]", "_", urlparse(hub or endpoint()).netloc or "hub")
    safe_revision = re.sub(r"[^\w.-]", "_", revision)
    return cache_root() / host / repo_id / f"{safe_revision}.json"


def _read_cache(path: Path) -> tuple[HubModel, float] | None:
    """``(model, age in seconds)`` from a cache file, or ``None`` when absent or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != _CACHE_FORMAT:
            return None
        tensors = data.get("tensors")
        checkpoint = None
        if tensors is not None:
            checkpoint = CheckpointTensors(
                tensors=tuple(TensorEntry(name=n, dtype=d, shape=tuple(s)) for n, d, s in tensors),
                source=str(data["checkpoint_source"]),
            )
        model = HubModel(
            repo_id=str(data["repo_id"]), revision=str(data["revision"]), commit=str(data.get("commit") or ""),
            config=dict(data["config"]), checkpoint=checkpoint, from_cache=True,
        )
        return model, time.time() - float(data["fetched_at"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_cache(path: Path, model: HubModel) -> None:
    """Store ``model`` (never a token) atomically; a cache that cannot be written is skipped."""
    data = {
        "format": _CACHE_FORMAT,
        "repo_id": model.repo_id,
        "revision": model.revision,
        "commit": model.commit,
        "fetched_at": time.time(),
        "config": model.config,
        "checkpoint_source": model.checkpoint.source if model.checkpoint else None,
        "tensors": (
            [[t.name, t.dtype, list(t.shape)] for t in model.checkpoint.tensors] if model.checkpoint else None
        ),
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False, encoding="utf-8") as out:
            json.dump(data, out)
        Path(out.name).replace(path)
    except OSError:
        pass


def fetch_model(
    repo_id: str,
    revision: str | None = None,
    token: str | None = None,
    *,
    timeout: float = TIMEOUT_SECONDS,
) -> HubModel:
    """``config.json`` and the safetensors tensors of ``repo_id`` at ``revision``, from the cache or the Hub.

    Raises:
        HubUnavailable: offline with nothing cached, the Hub unreachable, the repository gated
            (and no token, or one without access), not found, or without a ``config.json``.
    """
    wanted = revision or "main"
    hub = endpoint()
    path = cache_file(repo_id, wanted, hub)
    cached = _read_cache(path)
    pinned = bool(_COMMIT.match(wanted))
    if cached is not None and (pinned or cached[1] < BRANCH_CACHE_SECONDS):
        return cached[0]
    where = f"{repo_id}" + (f" at revision {revision}" if revision else "")
    if is_offline():
        if cached is not None:
            return cached[0]
        set_by = next(name for name in OFFLINE_VARIABLES if is_offline({name: os.environ.get(name, "")}))
        raise HubUnavailable(f"offline ({set_by} is set) and {where} is not in the cache ({cache_root()})")
    try:
        model = _download(repo_id, wanted, token, hub, timeout)
    except HubUnavailable as error:
        if cached is not None:
            age = cached[1] / 3600
            return _with_note(cached[0], f"{error}; used the copy cached {age:.0f} h ago")
        raise
    _write_cache(path, model)
    if model.commit and model.commit != wanted:
        # The same files under their commit: a later run pinned to it needs no network.
        _write_cache(cache_file(repo_id, model.commit, hub), model)
    return model


def _with_note(model: HubModel, note: str) -> HubModel:
    return HubModel(model.repo_id, model.revision, model.commit, model.config, model.checkpoint, True, note)


def _download(repo_id: str, revision: str, token: str | None, hub: str, timeout: float) -> HubModel:
    """Read the files from the Hub at ``hub``; every failure becomes a one-line :class:`HubUnavailable`."""
    try:
        from huggingface_hub import HfApi
    except ImportError:
        raise HubUnavailable("huggingface_hub is not installed (pip install huggingface_hub)") from None
    # token=False: only the token given is sent, never one saved on this machine by another tool.
    api = HfApi(endpoint=hub, token=token or False)
    try:
        info = api.model_info(repo_id, revision=revision, timeout=timeout)
        commit = str(info.sha or "")
        files = {sibling.rfilename for sibling in info.siblings or ()}
        at = commit or revision
        with tempfile.TemporaryDirectory(prefix="pulumi-vllm-hub-") as scratch:
            if files and "config.json" not in files:
                raise HubUnavailable(f"{repo_id} has no config.json on {hub}")
            config = _json_file(api, repo_id, "config.json", at, scratch, timeout)
            checkpoint = _tensors(api, repo_id, at, files, scratch, timeout)
    except HubUnavailable:
        raise
    except Exception as error:  # noqa: BLE001 - every transport or HTTP error becomes one message
        raise HubUnavailable(_explain(error, repo_id, revision, hub, bool(token))) from None
    if not isinstance(config, dict):
        raise HubUnavailable(f"config.json of {repo_id} on {hub} is not a JSON object")
    return HubModel(repo_id=repo_id, revision=revision, commit=commit, config=config, checkpoint=checkpoint)


def _json_file(api: Any, repo_id: str, filename: str, revision: str, scratch: str, timeout: float) -> Any:
    """One small JSON file of the repository, downloaded into ``scratch`` and parsed."""
    local = api.hf_hub_download(repo_id, filename, revision=revision, cache_dir=scratch, etag_timeout=timeout)
    return json.loads(Path(local).read_text(encoding="utf-8"))


def _tensors(api: Any, repo_id: str, revision: str, files: set[str], scratch: str, timeout: float) -> CheckpointTensors | None:
    """The tensors of every safetensors shard (named by the index, or the single ``model.safetensors``)."""
    if "model.safetensors.index.json" in files:
        index = _json_file(api, repo_id, "model.safetensors.index.json", revision, scratch, timeout)
        weight_map = index.get("weight_map") if isinstance(index, dict) else None
        shards = sorted(set(weight_map.values())) if isinstance(weight_map, dict) else []
    elif "model.safetensors" in files:
        shards = ["model.safetensors"]
    else:
        return None
    tensors: list[TensorEntry] = []
    for shard in shards:
        header = api.parse_safetensors_file_metadata(repo_id, shard, revision=revision, timeout=timeout)
        raw = {
            name: {"dtype": info.dtype, "shape": list(info.shape)} for name, info in header.tensors.items()
        }
        tensors.extend(entries_from_header(raw))
    if not tensors:
        return None
    return CheckpointTensors(tensors=tuple(tensors), source=f"hub:{repo_id}@{revision}")


def _explain(error: Exception, repo_id: str, revision: str, hub: str, with_token: bool) -> str:
    """One line saying why the Hub gave nothing, without the token or a traceback."""
    from huggingface_hub import errors

    where = repo_id if revision == "main" else f"{repo_id} at revision {revision}"
    if isinstance(error, errors.GatedRepoError):
        if with_token:
            return f"{where} is gated and the token given has no access to it (accept its licence on {hub})"
        return f"{where} is gated: set the hfToken secret (or HF_TOKEN) to a token with access"
    if isinstance(error, errors.RevisionNotFoundError):
        return f"{repo_id} has no revision {revision!r} on {hub}"
    if isinstance(error, errors.RemoteEntryNotFoundError):
        return f"{where} has no config.json on {hub}"
    if isinstance(error, errors.RepositoryNotFoundError):
        hint = "" if with_token else " (or is private or gated: set the hfToken secret or HF_TOKEN)"
        return f"{repo_id} was not found on {hub}{hint}"
    if isinstance(error, errors.OfflineModeIsEnabled):
        return "offline (HF_HUB_OFFLINE is set)"
    if isinstance(error, errors.HfHubHTTPError):
        status = getattr(getattr(error, "response", None), "status_code", "")
        return f"{hub} answered HTTP {status} for {where}"
    if isinstance(error, (json.JSONDecodeError, UnicodeDecodeError)):
        return f"a file of {where} on {hub} is not valid JSON"
    if isinstance(error, errors.SafetensorsParsingError):
        return f"a safetensors header of {where} on {hub} could not be parsed"
    return f"could not connect to {hub} ({type(error).__name__})"
