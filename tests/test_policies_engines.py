"""The policy pack on the other engines' serving containers, written as each engine's own docs write them."""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pulumi_policy.proxy import UnknownValueError

from pulumi_vllm.engine.other_engines import engine_commands, ray_serve_commands, read_other_engine
from pulumi_vllm.engine.workload import engine_containers, pulumi_type, read_workload

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "policies"))

from test_policies_unit import run

from vllm_policies.capacity import capacity
from vllm_policies.gpus import gpus_match_parallelism
from vllm_policies.parallelism import pipeline_parallel_fits_layers, tensor_parallel_divides_heads
from vllm_policies.pods import (
    image_pinned,
    model_cache_persistent,
    secrets_not_plaintext,
    service_links_disabled,
    shm_for_tensor_parallel,
    startup_probe,
)

LLAMA_8B = "meta-llama/Llama-3.1-8B-Instruct"  # 32 attention heads, 8 key/value heads, 32 layers


def deployment(name: str, container: dict[str, Any], gpus: int, **pod: Any) -> dict[str, Any]:
    """A Deployment as the engines' Kubernetes guides write one: one container, GPUs as limits."""
    container = {**container, "name": name, "resources": {"limits": {"nvidia.com/gpu": gpus}}}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "llm"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}}, "template": {
            "metadata": {"labels": {"app": name}}, "spec": {"containers": [container], **pod}}},
    }


def tgi(num_shard: int | None, gpus: int) -> dict[str, Any]:
    args = ["--model-id", LLAMA_8B] + (["--num-shard", str(num_shard)] if num_shard is not None else [])
    return deployment("tgi", {
        "image": "ghcr.io/huggingface/text-generation-inference:3.3.4", "args": args,
        "env": [{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}}],
        "ports": [{"containerPort": 80}], "volumeMounts": [{"name": "data", "mountPath": "/data"}],
    }, gpus, volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": "tgi-data"}}])


def messages(policy: Any, target: Any, config: dict[str, Any] | None = None) -> list[str]:
    return [message for message, _ in run(policy, target, config)]


def test_tgi_num_shard_that_does_not_divide_the_heads_is_a_violation() -> None:
    (message,) = messages(tensor_parallel_divides_heads, tgi(3, 3))
    assert message == (
        f"Deployment llm/tgi, container 'tgi': --num-shard 3 does not divide the 32 attention heads and the 8 "
        f"key/value heads of {LLAMA_8B}: TGI splits them evenly across its tensor-parallel GPUs. "
        "Valid --num-shard values up to 8: 1, 2, 4, 8. (model facts from the catalog)"
    )
    assert messages(tensor_parallel_divides_heads, tgi(2, 2)) == []
    assert messages(pipeline_parallel_fits_layers, tgi(3, 3)) == []  # TGI has no pipeline stages


def test_tgi_shards_over_the_visible_gpus_without_num_shard_and_reads_its_env() -> None:
    (message,) = messages(tensor_parallel_divides_heads, tgi(None, 6))
    assert "--num-shard (unset: every visible GPU) 6 does not divide the 32 attention heads" in message
    document = tgi(None, 3)
    container = document["spec"]["template"]["spec"]["containers"][0]
    container["args"] = []
    container["env"] += [{"name": "MODEL_ID", "value": LLAMA_8B}, {"name": "NUM_SHARD", "value": "2"}]
    assert messages(tensor_parallel_divides_heads, document) == []
    (message,) = messages(gpus_match_parallelism, [document])
    assert "each pod request 3 GPU(s), but NUM_SHARD=2 needs 2" in message


def test_tgi_gpus_must_equal_num_shard() -> None:
    assert messages(gpus_match_parallelism, [tgi(2, 2)]) == []
    (message,) = messages(gpus_match_parallelism, [tgi(2, 4)])
    assert message == (
        "Deployment llm/tgi, container 'tgi': each pod request 4 GPU(s), but --num-shard 2 needs 2. "
        "Request 2 GPU(s) in total, or change the parallel sizes."
    )


def trtllm(script: str, gpus: int) -> dict[str, Any]:
    return deployment("trtllm", {
        "image": "nvcr.io/nvidia/tensorrt-llm/release:1.0.0", "command": ["/bin/bash", "-c"], "args": [script],
    }, gpus)


def test_trtllm_tensor_and_pipeline_sizes() -> None:
    good = trtllm(f"trtllm-serve {LLAMA_8B} --host 0.0.0.0 --port 8000 --backend pytorch --tp_size 2 --pp_size 2", 4)
    assert messages(tensor_parallel_divides_heads, good) == []
    assert messages(pipeline_parallel_fits_layers, good) == []
    assert messages(gpus_match_parallelism, [good]) == []
    (message,) = messages(gpus_match_parallelism, [trtllm(f"trtllm-serve serve {LLAMA_8B} --tp_size 2 --pp_size 2", 2)])
    assert "each pod request 2 GPU(s), but --tp_size 2 x --pp_size 2 needs 4" in message
    bad = trtllm(f"trtllm-serve {LLAMA_8B} --tp_size=6", 6)
    (message,) = messages(tensor_parallel_divides_heads, bad)
    assert "--tp_size 6 does not divide the 32 attention heads and the 8 key/value heads" in message
    (message,) = messages(pipeline_parallel_fits_layers, trtllm(f"trtllm-serve {LLAMA_8B} --pp_size 40", 40))
    assert f"--pp_size 40 exceeds the 32 hidden layers of {LLAMA_8B}" in message


def test_megatron_server_started_by_torchrun() -> None:
    script = (
        "torchrun --nproc-per-node 4 --nnodes 1 tools/run_text_generation_server.py "
        "--tensor-model-parallel-size 2 --pipeline-model-parallel-size 2 --load /checkpoints/llama3-8b "
        "--tokenizer-type HuggingFaceTokenizer --tokenizer-model meta-llama/Llama-3.1-8B-Instruct"
    )
    document = deployment("megatron", {"image": "nvcr.io/nvidia/pytorch:24.07-py3", "command": ["bash", "-c", script]},
                          4)
    document["metadata"]["annotations"] = {"vllm.pulumi.com/model": LLAMA_8B}  # the checkpoint is a path
    for policy in (tensor_parallel_divides_heads, pipeline_parallel_fits_layers):
        assert messages(policy, document) == []
    assert messages(gpus_match_parallelism, [document]) == []
    container = document["spec"]["template"]["spec"]["containers"][0]
    container["command"][2] = script.replace("--tensor-model-parallel-size 2", "--tensor-model-parallel-size 1")
    found = messages(gpus_match_parallelism, [document])
    assert any("torchrun --nproc-per-node 4 starts 4 process(es), but --tensor-model-parallel-size 1 x "
               "--pipeline-model-parallel-size 2 use 2" in m for m in found)
    assert any("each pod request 4 GPU(s), but" in m for m in found)
    container["command"][2] = script.replace("--tensor-model-parallel-size 2", "--tensor-model-parallel-size 3")
    (message,) = messages(tensor_parallel_divides_heads, document)
    assert "--tensor-model-parallel-size 3 does not divide the 32 attention heads" in message


def test_mii_flags_from_its_own_parser() -> None:
    (command,) = engine_commands({"command": ["python", "-m", "mii.entrypoints.openai_api_server", "--model", LLAMA_8B,
                                              "--tensor-parallel", "2", "--replica-num", "2"]})
    assert (command.engine, command.model, command.tensor_parallel_size, command.world_size(False)) == (
        "deepspeed-mii", LLAMA_8B, 2, 4)
    document = deployment("mii", {"image": "registry.example.com/mii:0.3.3", "command": [
        "python", "-m", "mii.entrypoints.openai_api_server", "--model", LLAMA_8B, "--tensor-parallel", "3"]}, 3)
    (message,) = messages(tensor_parallel_divides_heads, document)
    assert "--tensor-parallel 3 does not divide the 32 attention heads" in message
    assert messages(gpus_match_parallelism, [document]) == []
    assert messages(capacity, document, {"minConcurrency": 1e9}) == []  # no vLLM verdict for MII


RAY_SERVICE = f"""
apiVersion: ray.io/v1
kind: RayService
metadata:
  name: ray-serve-llm
  namespace: llm
spec:
  serveConfigV2: |
    applications:
    - name: llms
      import_path: ray.serve.llm:build_openai_app
      route_prefix: "/"
      args:
        llm_configs:
        - model_loading_config:
            model_id: llama-8b
            model_source: {LLAMA_8B}
          engine_kwargs:
            tensor_parallel_size: 3
            max_model_len: 8192
          deployment_config:
            autoscaling_config:
              min_replicas: 1
              max_replicas: 2
  rayClusterConfig:
    rayVersion: "2.46.0"
    headGroupSpec:
      rayStartParams: {{}}
      template:
        spec:
          containers:
          - name: ray-head
            image: rayproject/ray-llm:2.46.0-py311-cu124
    workerGroupSpecs:
    - groupName: gpu-group
      replicas: 1
      minReplicas: 1
      maxReplicas: 2
      rayStartParams: {{}}
      template:
        spec:
          containers:
          - name: llm
            image: rayproject/ray-llm:2.46.0-py311-cu124
            resources:
              limits:
                nvidia.com/gpu: "4"
          nodeSelector:
            nvidia.com/gpu.product: NVIDIA-L4
"""


def ray_service() -> dict[str, Any]:
    return copy.deepcopy(yaml.safe_load(RAY_SERVICE))


def test_ray_serve_llm_engine_kwargs_are_checked_with_vllms_rules() -> None:
    document = ray_service()
    (message,) = [m for m in messages(tensor_parallel_divides_heads, document) if "attention heads" in m]
    assert message.startswith("RayService llm/ray-serve-llm, application 'llms', model 'llama-8b': Total number of "
                              "attention heads (32) must be divisible by tensor parallel size (3).")
    document["spec"]["serveConfigV2"] = document["spec"]["serveConfigV2"].replace(
        "tensor_parallel_size: 3", "tensor_parallel_size: 2\n        pipeline_parallel_size: 33")
    assert messages(tensor_parallel_divides_heads, document) == []
    (message,) = messages(pipeline_parallel_fits_layers, document)
    assert "Pipeline parallel size (33) must not exceed the number of hidden layers (32)" in message


def test_ray_serve_llm_gets_vllms_capacity_verdict() -> None:
    document = ray_service()
    document["spec"]["serveConfigV2"] = document["spec"]["serveConfigV2"].replace(
        "tensor_parallel_size: 3", "tensor_parallel_size: 1")
    (message,) = messages(capacity, document, {"minConcurrency": 10_000})
    assert "on L4, tensor parallel 1 x pipeline parallel 1 the KV cache holds" in message
    assert messages(startup_probe, document) == []  # KubeRay runs the pods; Ray places the replicas


def test_ray_service_is_a_workload_with_its_llm_configs() -> None:
    workload = read_workload(pulumi_type("ray.io/v1", "RayService"), ray_service())
    assert workload is not None and workload.multi_pod and workload.total_gpus() == 4
    (target,) = engine_containers(workload)
    assert target.engines[0].model == LLAMA_8B and target.engines[0].tensor_parallel_size == 3
    assert ray_serve_commands("applications: [{args: {llm_configs: [/home/ray/llama.yaml]}}]") == []


def llama_server(image: str) -> dict[str, Any]:
    return deployment("llama-cpp", {
        "image": image, "args": ["-hf", "bartowski/Llama-3.2-3B-Instruct-GGUF", "--host", "0.0.0.0", "-ngl", "99"],
    }, 1, enableServiceLinks=False)


def test_llama_server_gets_the_safe_defaults_but_no_head_rule() -> None:
    document = llama_server("ghcr.io/ggml-org/llama.cpp:server-cuda")
    (command,) = engine_commands(document["spec"]["template"]["spec"]["containers"][0])
    assert (command.engine, command.model, command.tensor_flag) == ("llama.cpp", "bartowski/Llama-3.2-3B-Instruct-GGUF",
                                                                    None)
    assert messages(image_pinned, document) == []
    latest = llama_server("ghcr.io/ggml-org/llama.cpp:latest")
    latest["spec"]["template"]["spec"]["containers"][0]["command"] = ["/app/llama-server"]
    (message,) = messages(image_pinned, latest)
    assert message.startswith("Deployment llm/llama-cpp, container 'llama-cpp': image "
                              "ghcr.io/ggml-org/llama.cpp:latest has 'latest': a restart may pull another llama.cpp")
    (message,) = messages(model_cache_persistent, document)
    assert "the llama.cpp model cache (/root/.cache/llama.cpp) is on the container's own disk" in message
    (message,) = messages(startup_probe, document)
    assert "restarts llama.cpp before it is up. Add a startupProbe on /health" in message
    for policy in (tensor_parallel_divides_heads, pipeline_parallel_fits_layers, service_links_disabled):
        assert messages(policy, document) == []
    assert messages(gpus_match_parallelism, [document]) == []


def test_ollama_image_without_command_runs_ollama_serve() -> None:
    document = deployment("ollama", {"image": "ollama/ollama", "ports": [{"containerPort": 11434}],
                                     "env": [{"name": "LLAMA_API_KEY", "value": "sk-1"}]}, 1)
    assert "no tag (so 'latest')" in messages(image_pinned, document)[0]
    assert "Ollama model cache (/root/.ollama)" in messages(model_cache_persistent, document)[0]
    assert "enableServiceLinks is not false" in messages(service_links_disabled, document)[0]
    assert "Add a startupProbe on / " in messages(startup_probe, document)[0]
    assert "LLAMA_API_KEY has a literal value" in messages(secrets_not_plaintext, document)[0]
    assert messages(image_pinned, deployment("web", {"image": "nginx"}, 0)) == []  # no engine: not read


def test_triton_gets_the_safe_defaults_only() -> None:
    document = deployment("triton", {"image": "nvcr.io/nvidia/tritonserver:24.08-vllm-python-py3",
                                     "command": ["tritonserver", "--model-repository=/models"]}, 2)
    assert "no startupProbe" in messages(startup_probe, document)[0]
    assert "enableServiceLinks is not false" in messages(service_links_disabled, document)[0]
    assert messages(tensor_parallel_divides_heads, document) == []
    assert messages(gpus_match_parallelism, [document]) == []
    (frontend,) = engine_commands({"command": ["python3", "/opt/tritonserver/python/openai/openai_frontend/main.py",
                                               "--model-repository", "/models", "--tokenizer", LLAMA_8B]})
    assert frontend.engine == "triton" and frontend.tensor_flag is None


def test_shm_and_literal_api_keys_for_other_engines() -> None:
    document = tgi(2, 2)
    (message,) = messages(shm_for_tensor_parallel, document)
    assert "tensor parallel size 2 without a memory-backed /dev/shm" in message
    document["spec"]["template"]["spec"]["containers"][0]["args"] += ["--api-key", "sk-literal"]
    (message,) = messages(secrets_not_plaintext, document)
    assert "--api-key is given literally" in message and "sk-literal" not in message


def test_unknown_model_of_another_engine_cannot_be_verified() -> None:
    document = trtllm("trtllm-serve /engines/in-house --tp_size 3", 3)
    with pytest.raises(UnknownValueError) as raised:
        run(tensor_parallel_divides_heads, document)
    assert "cannot verify tensor parallel size 3: no model facts for '/engines/in-house' (TensorRT-LLM --tp_size 3)" in (
        raised.value.message)


@pytest.mark.parametrize(
    ("argv", "engine"),
    [(["text-generation-launcher", "--model-id", "m"], "tgi"), (["trtllm-serve", "m"], "tensorrt-llm"),
     (["ollama", "serve"], "ollama"), (["/usr/bin/llama-server", "-m", "/m.gguf"], "llama.cpp"),
     (["tritonserver"], "triton"), (["ollama", "pull", "llama3"], None), (["trtllm-serve", "disaggregated"], None),
     (["python3", "-m", "torch.distributed.run", "--nproc_per_node=2", "run_text_generation_server.py"], "megatron"),
     (["python3", "train.py"], None)],
)
def test_engine_recognised(argv: list[str], engine: str | None) -> None:
    found = read_other_engine(argv)
    assert (found.engine if found else None) == engine
