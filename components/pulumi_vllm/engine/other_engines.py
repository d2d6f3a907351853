"""One neutral view of every serving engine's command, and readers for the engines other than vLLM.

The policy pack checks vLLM's rules (heads divide by the tensor-parallel size, stages fit the
layers, GPUs match the parallel sizes, safe pod defaults) on the other engines' serving containers
too. :class:`EngineCommand` says, for any engine, what the rules need: its name, the model, the
tensor and pipeline sizes and the flags they were written with (so messages use the engine's own
words), and the facts the pod rules depend on (health path, model cache, API key flag). Commands
are found by :mod:`pulumi_vllm.engine.commandline` (shell scripts, wrappers, ``$(VAR)``); this module
reads the simple commands it does not know:

* Hugging Face TGI: ``text-generation-launcher --model-id M --num-shard N`` (or ``MODEL_ID``,
  ``NUM_SHARD``, ``SHARDED`` in the environment; ``args`` alone on the TGI image);
* TensorRT-LLM: ``trtllm-serve [serve] MODEL --tp_size T --pp_size P`` (click declares only the
  underscore forms);
* Megatron-LM's ``torchrun --nproc-per-node N tools/run_text_generation_server.py
  --tensor-model-parallel-size T --pipeline-model-parallel-size P`` (or ``python -m torch.distributed.run``);
* DeepSpeed-MII: ``python -m mii.entrypoints.openai_api_server --model M --tensor-parallel T --replica-num R``;
* llama.cpp's ``llama-server`` and ``ollama serve`` (layers are split, not heads: no head rule);
* Triton: ``tritonserver`` and its OpenAI frontend (``openai_frontend/main.py``); the model is named
  in the model repository, which the pack does not see;
* Ray Serve LLM: the ``llm_configs`` of a KubeRay RayService's ``serveConfigV2``, whose
  ``engine_kwargs`` are vLLM's engine arguments.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import yaml

from pulumi_vllm.engine.commandline import (
    _PYTHON,
    VllmCommand,
    _basename,
    _list,
    _mapping,
    container_argv,
    count,
    find_commands,
    literal_env,
)
from pulumi_vllm.engine.container import MODEL_CACHE_PATH

TGI_IMAGE_REPOSITORIES = ("text-generation-inference",)
"""Image repositories whose entrypoint is ``text-generation-launcher``."""

_FLAG = re.compile(r"^--?[A-Za-z]")


@dataclass(frozen=True)
class EngineCommand:
    """One serving engine's invocation in neutral terms: what the pack's rules read, for any engine."""

    engine: str
    """The engine as ``engine.kind`` names it: ``vllm``, ``tgi``, ``tensorrt-llm``, ``megatron``, ``deepspeed-mii``, ``llama.cpp``, ``ollama``, ``triton`` or ``ray-serve-llm``."""
    title: str
    """The engine's name in messages: ``vLLM``, ``TGI``, ``TensorRT-LLM``, ..."""
    program: tuple[str, ...]
    args: tuple[str, ...]
    model: str | None = None
    """The model served (a Hugging Face id or a path); ``None`` when the command does not name one."""
    mode: Literal["serve", "batch"] = "serve"
    tensor_flag: str | None = None
    """The flag (or variable) that sets the tensor-parallel size, as written; ``None``: the engine does not split heads."""
    tensor_value: str | None = None
    """Its value as written; ``None`` when not given (the size is then ``tensor_default``)."""
    tensor_default: int | None = 1
    pipeline_flag: str | None = None
    pipeline_value: str | None = None
    copies_flag: str | None = None
    """A flag that runs several copies of the model in the server (MII's ``--replica-num``)."""
    copies_value: str | None = None
    launcher: str | None = None
    """The launcher setting that starts one process per GPU, as written (``torchrun --nproc-per-node 4``)."""
    processes: int | None = None
    """Processes the launcher starts per pod (``None``: no launcher, or not a number)."""
    vllm: VllmCommand | None = None
    """The vLLM command behind the view (vLLM, Ray Serve LLM): vLLM's own rules and the capacity planner apply."""
    in_container: bool = True
    """Whether the engine runs in the container it was found in (not for Ray Serve, whose replicas Ray places)."""
    visible_gpus: bool = False
    """The tensor-parallel size, when not given, is the number of GPUs the container sees (TGI)."""
    health_path: str | None = "/health"
    """The path a startupProbe should ask (``None``: the server has none)."""
    cache_env: tuple[str, ...] = ("HF_HUB_CACHE", "HF_HOME")
    """Variables that move the model download cache, first one set wins."""
    cache_default: str = MODEL_CACHE_PATH
    api_key_flag: str | None = None
    """The flag that takes an API key (never to be given literally)."""
    where: str = ""
    """Where the command is when it is not in a container's command line (a RayService application)."""

    @property
    def vllm_based(self) -> bool:
        """Whether vLLM does the serving (vLLM itself, Ray Serve LLM): vLLM's messages, vocabulary rule and capacity apply."""
        return self.vllm is not None

    @property
    def tensor_parallel_size(self) -> int | None:
        """The tensor-parallel size (``tensor_default`` when not given, ``None`` when not a number)."""
        if self.engine == "vllm" and self.vllm is not None:
            return self.vllm.tensor_parallel_size
        return self.tensor_default if self.tensor_value is None else count(self.tensor_value)

    @property
    def pipeline_parallel_size(self) -> int | None:
        """The pipeline-parallel size (1 when not given, ``None`` when not a number)."""
        if self.engine == "vllm" and self.vllm is not None:
            return self.vllm.pipeline_parallel_size
        return 1 if self.pipeline_value is None else count(self.pipeline_value)

    @property
    def copies(self) -> int | None:
        """Copies of the model the server runs (1 unless the engine has a replica flag)."""
        return 1 if self.copies_value is None else count(self.copies_value)

    def setting(self, flag: str | None, size: int | None) -> str:
        """``--num-shard 3``, ``NUM_SHARD=3``, ``engine_kwargs.tensor_parallel_size 3``: a setting as the user wrote it."""
        if flag is None:
            return str(size)
        return f"{flag}={size}" if flag.isupper() else f"{flag} {size}"

    def with_visible_gpus(self, gpus: int | None) -> EngineCommand:
        """The command with its tensor size filled in from the container's GPUs (engines that shard over all of them)."""
        if not self.visible_gpus or self.tensor_value is not None or not gpus:
            return self
        return replace(self, tensor_value=str(gpus), tensor_flag=f"{self.tensor_flag} (unset: every visible GPU)")

    def world_size(self, multi_pod: bool) -> int | None:
        """GPUs the command uses (one copy of a Ray group for vLLM), ``None`` when unknown or not checked."""
        if self.engine == "ray-serve-llm":
            return None  # Ray places each replica's workers anywhere in the cluster
        if self.engine == "vllm" and self.vllm is not None:
            command = self.vllm
            data = command.size("--data-parallel-size") if multi_pod else command.data_parallel_size
            sizes = [command.tensor_parallel_size, command.pipeline_parallel_size, data]
        elif self.tensor_flag is None:
            return None  # no parallel sizes to compare with
        else:
            sizes = [self.tensor_parallel_size, self.pipeline_parallel_size, self.copies]
        if None in sizes:
            return None
        world = 1
        for size in sizes:
            world *= size or 1
        return world

    def layout(self) -> str:
        """The parallel layout for messages: vLLM's sizes, or the engine's own flags (``--tp_size 2 x --pp_size 2``)."""
        if self.engine == "vllm" and self.vllm is not None:
            command = self.vllm
            parts = [f"tensor parallel {command.tensor_parallel_size}", f"pipeline parallel {command.pipeline_parallel_size}"]
            if (command.data_parallel_size or 1) > 1:
                parts.append(f"data parallel {command.data_parallel_size}")
            return " x ".join(parts)
        parts = [self.setting(self.tensor_flag, self.tensor_parallel_size)]
        if self.pipeline_flag and self.pipeline_value is not None:
            parts.append(self.setting(self.pipeline_flag, self.pipeline_parallel_size))
        if self.copies_flag and self.copies_value is not None:
            parts.append(self.setting(self.copies_flag, self.copies))
        return " x ".join(parts)

    def value(self, flag: str) -> str | None:
        """The value of a flag exactly as the engine spells it (``vllm``: any spelling vLLM accepts)."""
        if self.engine == "vllm" and self.vllm is not None:
            return self.vllm.value(flag)
        return _options(self.args)[0].get(flag)

    @staticmethod
    def of_vllm(command: VllmCommand) -> EngineCommand:
        """The neutral view of a vLLM command."""
        return EngineCommand(
            "vllm", "vLLM", command.program, command.args, model=command.model, mode=command.mode,
            tensor_flag="--tensor-parallel-size", tensor_value=command.value("--tensor-parallel-size"),
            pipeline_flag="--pipeline-parallel-size", pipeline_value=command.value("--pipeline-parallel-size"),
            vllm=command, api_key_flag="--api-key",
        )


def _options(args: Sequence[str], switches: frozenset[str] = frozenset()) -> tuple[dict[str, str | None], list[str]]:
    """Flags exactly as written (``--flag value`` or ``--flag=value``; the last one wins) and the positionals."""
    options: dict[str, str | None] = {}
    positionals: list[str] = []
    index = 0
    while index < len(args):
        token = args[index]
        if not _FLAG.match(token):
            positionals.append(token)
        else:
            name, equals, value = token.partition("=")
            is_switch = name in switches or name.startswith(("--enable", "--disable", "--no-", "--no_"))
            if equals:
                options[name] = value
            elif not is_switch and index + 1 < len(args) and not _FLAG.match(args[index + 1]):
                options[name] = args[index + 1]
                index += 1
            else:
                options[name] = None
        index += 1
    return options, positionals


def _first(options: Mapping[str, str | None], *flags: str) -> tuple[str | None, str | None]:
    """``(flag, value)`` of the first of ``flags`` given, ``(None, None)`` if none is."""
    for flag in flags:
        if flag in options:
            return flag, options[flag]
    return None, None


def _tgi(words: Sequence[str], env: Mapping[str, str]) -> EngineCommand:
    options, _ = _options(words[1:], frozenset({"--trust-remote-code", "--disable-custom-kernels", "--json-output"}))
    model = options.get("--model-id") or env.get("MODEL_ID") or "bigscience/bloom-560m"  # the launcher's default
    flag, value = _first(options, "--num-shard")
    if flag is None and "NUM_SHARD" in env:
        flag, value = "NUM_SHARD", env["NUM_SHARD"]
    sharded = (options.get("--sharded") or env.get("SHARDED") or "").lower()
    if flag is None and sharded == "false":
        value = "1"  # TGI: sharded false without num-shard runs one shard
    return EngineCommand(
        "tgi", "TGI", tuple(words[:1]), tuple(words[1:]), model=model, tensor_flag=flag or "--num-shard",
        tensor_value=value, tensor_default=None, visible_gpus=True,
        cache_env=("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME"), cache_default="/data", api_key_flag="--api-key",
    )


def _trtllm(words: Sequence[str]) -> EngineCommand:
    options, positionals = _options(words[1:], frozenset({"--trust_remote_code"}))
    if positionals[:1] == ["serve"]:
        positionals = positionals[1:]
    tensor, tensor_value = _first(options, "--tp_size")
    pipeline, pipeline_value = _first(options, "--pp_size")
    return EngineCommand(
        "tensorrt-llm", "TensorRT-LLM", tuple(words[:1]), tuple(words[1:]), model=positionals[0] if positionals else None,
        tensor_flag=tensor or "--tp_size", tensor_value=tensor_value,
        pipeline_flag=pipeline or "--pp_size", pipeline_value=pipeline_value,
    )


_TORCHRUN_SWITCHES = frozenset({"--standalone", "--no-python", "--no_python", "--module", "-m", "--run-path", "--run_path"})


def _megatron(launcher: Sequence[str], script_at: int, words: Sequence[str], program: str = "") -> EngineCommand | None:
    """Megatron-LM's text generation server; ``launcher``: the words before the script (``program``'s options)."""
    if not words[script_at].endswith("run_text_generation_server.py"):
        return None
    options, _ = _options(words[script_at + 1:])
    tensor, tensor_value = _first(options, "--tensor-model-parallel-size")
    pipeline, pipeline_value = _first(options, "--pipeline-model-parallel-size")
    launch, _ = _options(launcher, _TORCHRUN_SWITCHES) if program else ({}, [])
    nproc, processes = _first(launch, "--nproc-per-node", "--nproc_per_node")
    return EngineCommand(
        "megatron", "Megatron-LM", tuple(words[: script_at + 1]), tuple(words[script_at + 1:]),
        model=options.get("--load"), tensor_flag=tensor or "--tensor-model-parallel-size", tensor_value=tensor_value,
        pipeline_flag=pipeline or "--pipeline-model-parallel-size", pipeline_value=pipeline_value,
        launcher=f"{program} {nproc} {processes}" if nproc else None,
        processes=count(processes) if nproc else None, health_path=None,
    )


def _torchrun(words: Sequence[str], start: int) -> EngineCommand | None:
    """``words[start:]`` are torchrun's options then the script and its arguments."""
    index = start
    while index < len(words) and _FLAG.match(words[index]):
        name = words[index].split("=", 1)[0]
        takes_value = "=" not in words[index] and name not in _TORCHRUN_SWITCHES
        index += 2 if takes_value else 1
    if index >= len(words):
        return None
    program = " ".join([_basename(words[0]), *words[1:start]])
    return _megatron(list(words[start:index]), index, words, program)


def _mii(words: Sequence[str], at: int) -> EngineCommand:
    options, _ = _options(words[at + 2:], frozenset({"--allow-credentials", "--ssl"}))
    tensor, tensor_value = _first(options, "--tensor-parallel")
    copies, copies_value = _first(options, "--replica-num")
    return EngineCommand(
        "deepspeed-mii", "DeepSpeed-MII", tuple(words[: at + 2]), tuple(words[at + 2:]),
        model=options.get("--model") or "mistralai/Mistral-7B-Instruct-v0.1",  # the server's default
        tensor_flag=tensor or "--tensor-parallel", tensor_value=tensor_value,
        copies_flag=copies or "--replica-num", copies_value=copies_value, api_key_flag="--api-keys",
    )


def _llama_server(words: Sequence[str], env: Mapping[str, str]) -> EngineCommand:
    options, _ = _options(words[1:])
    _, model = _first(options, "-hf", "-hfr", "--hf-repo", "-m", "--model", "-mu", "--model-url")
    return EngineCommand(
        "llama.cpp", "llama.cpp", tuple(words[:1]), tuple(words[1:]),
        model=model or env.get("LLAMA_ARG_HF_REPO") or env.get("LLAMA_ARG_MODEL"),
        cache_env=("LLAMA_CACHE",), cache_default="/root/.cache/llama.cpp", api_key_flag="--api-key",
    )


def _python_command(words: Sequence[str]) -> EngineCommand | None:
    if "-m" in words:
        at = words.index("-m")
        module = words[at + 1] if at + 1 < len(words) else ""
        if module == "mii.entrypoints.openai_api_server":
            return _mii(words, at)
        if module in ("torch.distributed.run", "torch.distributed.launch"):
            return _torchrun(words, at + 2)
        return None
    script = next((index for index, word in enumerate(words[1:], 1) if not word.startswith("-")), None)
    if script is None:
        return None
    if words[script].endswith("openai_frontend/main.py"):
        return EngineCommand("triton", "Triton", tuple(words[: script + 1]), tuple(words[script + 1:]),
                             health_path="/health/ready")
    return _megatron([], script, words)


def read_other_engine(words: Sequence[str], env: Mapping[str, str] | None = None) -> EngineCommand | None:
    """The engine a simple command runs (not vLLM), or ``None`` when it runs none the pack knows."""
    env = env or {}
    if not words:
        return None
    program = _basename(words[0])
    if program == "text-generation-launcher":
        return _tgi(words, env)
    if program == "trtllm-serve" and words[1:2] != ["disaggregated"]:
        return _trtllm(words)
    if program == "torchrun":
        return _torchrun(words, 1)
    if program == "llama-server":
        return _llama_server(words, env)
    if program == "ollama" and words[1:2] == ["serve"]:
        return EngineCommand("ollama", "Ollama", tuple(words[:2]), tuple(words[2:]), health_path="/",
                             cache_env=("OLLAMA_MODELS",), cache_default="/root/.ollama")
    if program == "tritonserver":
        return EngineCommand("triton", "Triton", tuple(words[:1]), tuple(words[1:]), health_path="/v2/health/ready")
    if _PYTHON.match(program):
        return _python_command(words)
    return None


def _repository_and_tag(image: Any) -> tuple[str, str]:
    path = str(image or "").split("@", 1)[0]
    last = path.rsplit("/", 1)[-1]
    repository, _, tag = last.partition(":")
    return repository, tag


def image_entrypoint(image: Any) -> list[str] | None:
    """The engine entrypoint of an image other than vLLM's, for a container that gives no ``command``."""
    repository, tag = _repository_and_tag(image)
    if repository in TGI_IMAGE_REPOSITORIES:
        return ["text-generation-launcher"]
    if repository == "ollama":
        return ["ollama"]
    if repository == "llama.cpp" and tag.startswith("server"):
        return ["llama-server"]  # ggml-org/llama.cpp:server, :server-cuda, ... run /app/llama-server
    return None


def engine_commands(container: Mapping[str, Any], image_entrypoint_applies: bool = True) -> list[EngineCommand]:
    """Every engine command a container runs, vLLM's included, in neutral terms."""
    env = literal_env(container)
    argv = container_argv(container, image_entrypoint_applies)
    entrypoint = image_entrypoint(container.get("image")) if image_entrypoint_applies else None
    if entrypoint is not None and not container.get("command"):
        args = argv
        if entrypoint == ["ollama"] and not args:
            args = ["serve"]  # the image's CMD
        argv = entrypoint + args
    found = find_commands(argv, env)
    views = [EngineCommand.of_vllm(command) for command in found.vllm]
    for words in found.other:
        view = read_other_engine(list(words), env)
        if view is not None:
            views.append(view)
    return views


def _kwarg_args(engine_kwargs: Mapping[str, Any]) -> list[str]:
    """Ray Serve LLM's ``engine_kwargs`` (vLLM's engine arguments) as vLLM command-line flags."""
    args: list[str] = []
    for key, value in engine_kwargs.items():
        flag = "--" + str(key).replace("_", "-")
        if value is True:
            args.append(flag)
        elif value is None or value is False:
            continue
        elif isinstance(value, (Mapping, list)):
            args += [flag, json.dumps(value)]
        else:
            args += [flag, str(value)]
    return args


def _llm_model(config: Mapping[str, Any]) -> str | None:
    loading = _mapping(config.get("model_loading_config"))
    source = loading.get("model_source")
    if isinstance(source, str) and source:
        return source
    model_id = loading.get("model_id")
    return str(model_id) if model_id else None


def ray_serve_commands(serve_config: Any) -> list[EngineCommand]:
    """The vLLM engines a RayService's ``serveConfigV2`` runs through Ray Serve LLM (``llm_configs`` given inline)."""
    if isinstance(serve_config, str):
        try:
            serve_config = yaml.safe_load(serve_config)
        except yaml.YAMLError:
            return []
    views: list[EngineCommand] = []
    for application in _list(_mapping(serve_config).get("applications")):
        application = _mapping(application)
        args = _mapping(application.get("args"))
        configs = _list(args.get("llm_configs")) or ([args["llm_config"]] if "llm_config" in args else [])
        for config in configs:
            if not isinstance(config, Mapping):
                continue  # a path to a config file inside the image
            kwargs = _mapping(config.get("engine_kwargs"))
            model = _llm_model(config)
            program = (str(application.get("import_path") or "ray.serve.llm"),)
            command = VllmCommand("serve", program, tuple((["--model", model] if model else []) + _kwarg_args(kwargs)))
            name = _mapping(config.get("model_loading_config")).get("model_id") or model
            views.append(EngineCommand(
                "ray-serve-llm", "Ray Serve LLM", program, command.args, model=model,
                tensor_flag="engine_kwargs.tensor_parallel_size", tensor_value=command.value("--tensor-parallel-size"),
                pipeline_flag="engine_kwargs.pipeline_parallel_size",
                pipeline_value=command.value("--pipeline-parallel-size"), vllm=command, in_container=False,
                where=f"application '{application.get('name') or ''}', model '{name}'",
            ))
    return views
