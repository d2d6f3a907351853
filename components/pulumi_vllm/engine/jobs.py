"""Command lines of the helper Jobs around a vLLM server: the model pre-download and the load test.

Pure functions, no Pulumi. The download is the Hugging Face CLI's own ``hf download`` (shipped in the
vLLM image with ``huggingface_hub``): it fills the hub cache under ``HF_HOME`` exactly where vLLM looks
for the model, resumes an interrupted download and skips files already there, so running it again is
harmless. The token is never a flag: ``hf`` reads ``HF_TOKEN`` from the environment, which the Job fills
from the Secret. The load test is vLLM's own ``vllm bench serve``; it reads the API key from
``OPENAI_API_KEY``.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from pulumi_vllm.config import LoadTestSpec

HF_DOWNLOAD_COMMAND: tuple[str, ...] = ("hf", "download")
BENCH_COMMAND: tuple[str, ...] = ("vllm", "bench", "serve")

BENCH_API_KEY_ENV = "OPENAI_API_KEY"
"""Where ``vllm bench serve`` reads the bearer token it sends."""


@dataclass(frozen=True)
class Repository:
    """A Hugging Face repository to download, at a revision (``None``: the default branch)."""

    repo_id: str
    revision: str | None = None


def parse_repository(text: str) -> Repository:
    """``org/name`` or ``org/name@revision``."""
    repo_id, _, revision = text.partition("@")
    return Repository(repo_id, revision or None)


def hf_download_argv(repository: Repository) -> list[str]:
    """``hf download <repo> [--revision <rev>]``: the whole repository, into the cache under ``HF_HOME``."""
    argv = [*HF_DOWNLOAD_COMMAND, repository.repo_id]
    if repository.revision:
        argv += ["--revision", repository.revision]
    return argv


def warmup_repositories(model_id: str, revision: str | None, adapters: Sequence[str] = ()) -> list[Repository]:
    """What the pre-download fetches: the model at its revision, then each adapter."""
    return [Repository(model_id, revision), *(parse_repository(item) for item in adapters)]


def download_command(repositories: Sequence[Repository]) -> list[str]:
    """The container command of the pre-download: one ``hf download``, or a shell running each in turn."""
    if len(repositories) == 1:
        return hf_download_argv(repositories[0])
    script = "set -e\n" + "\n".join(shlex.join(hf_download_argv(repo)) for repo in repositories)
    return ["/bin/sh", "-c", script]


def bench_serve_argv(
    spec: LoadTestSpec,
    *,
    base_url: str,
    model: str,
    served_model_name: str | None,
    result_dir: str,
    result_filename: str,
    ready_check_timeout_seconds: int = 600,
) -> list[str]:
    """``vllm bench serve`` against ``base_url`` (the server root, without ``/v1``), saving its JSON result.

    ``model`` is the model id or path: the client loads its tokenizer from it to make prompts of exact
    token lengths; ``served_model_name`` is what requests name in their ``model`` field.
    """
    argv = [
        *BENCH_COMMAND,
        "--backend", "openai",
        "--base-url", base_url,
        "--endpoint", "/v1/completions",
        "--model", model,
    ]
    if served_model_name:
        argv += ["--served-model-name", served_model_name]
    argv += [
        "--dataset-name", spec.dataset,
        "--random-input-len", str(spec.input_len),
        "--random-output-len", str(spec.output_len),
        "--num-prompts", str(spec.num_prompts),
        "--request-rate", str(spec.request_rate),
        "--seed", str(spec.seed),
    ]
    if spec.max_concurrency is not None:
        argv += ["--max-concurrency", str(spec.max_concurrency)]
    argv += [
        "--ready-check-timeout-sec", str(ready_check_timeout_seconds),
        "--save-result",
        "--result-dir", result_dir,
        "--result-filename", result_filename,
    ]
    return argv


def bench_job_command(argv: Sequence[str], result_path: str) -> list[str]:
    """Run the benchmark, then print its JSON result, so the Job's log keeps it without a volume."""
    return ["/bin/sh", "-c", f"set -e\n{shlex.join(argv)}\ncat {shlex.quote(result_path)}"]
