"""Find the vLLM command in a container's command line and read its flags.

Pure functions over plain dicts in the API's camelCase (a container from a manifest, or from a
Pulumi resource's inputs). The command is found in ``command`` + ``args`` in the forms people
write: ``vllm serve MODEL``, ``python3 -m vllm.entrypoints.openai.api_server --model MODEL``, the
batch runner, ``/bin/sh -c "..."`` scripts (``&&``, ``;``, ``exec``, ``VAR=value`` prefixes, several
lines such as ``ray start --head`` followed by ``vllm serve``), and an empty command on the vLLM
image, whose entrypoint is ``vllm serve``.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

_SHELLS = {"sh", "bash", "dash", "ash", "zsh", "ksh"}
_WRAPPERS = {"exec", "nohup", "command", "time", "env"}
_PYTHON = re.compile(r"^python(\d+(\.\d+)?)?$")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_K8S_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][-._A-Za-z0-9]*)\)")
_SHELL_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")

SERVE_MODULES = ("vllm.entrypoints.openai.api_server", "vllm.entrypoints.api_server")
"""``python -m`` modules that run a vLLM server: the OpenAI-compatible one, and the older demo
server ``vllm.entrypoints.api_server`` (``/generate``) that model-garden images still run; both take
the engine's flags, the model as ``--model``."""
BATCH_MODULES = ("vllm.entrypoints.openai.run_batch", "vllm.entrypoints.launchers.run_batch")
"""``python -m`` modules that run vLLM's offline batch runner."""
VLLM_IMAGE_REPOSITORIES = ("vllm-openai",)
"""Image repositories whose entrypoint is ``vllm serve`` (a container there may give only ``args``)."""

# vLLM's short aliases; everything else is normalised to the dashed long form vLLM itself accepts.
_ALIASES = {
    "-tp": "--tensor-parallel-size",
    "-pp": "--pipeline-parallel-size",
    "-dp": "--data-parallel-size",
    "-dpl": "--data-parallel-size-local",
    "-q": "--quantization",
    "-i": "--input-file",
    "-o": "--output-file",
}
_APPENDED = {"--middleware"}
"""vLLM flags whose values add up instead of replacing each other (argparse ``append``)."""
# Flags that take no value, so that a positional after them is not read as their value. Flags
# named --enable-*, --disable-* and --no-* are switches too.
_SWITCHES = {
    "--trust-remote-code", "--enforce-eager", "--headless", "--skip-tokenizer-init",
    "--return-tokens-as-token-ids", "--fully-sharded-loras", "--async-scheduling",
    "--allow-credentials", "--calculate-kv-scales", "--ray-workers-use-nsight",
}


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else []


def _strings(value: Any) -> list[str]:
    return [str(item) for item in _list(value)]


def count(value: Any, default: int | None = None) -> int | None:
    """A whole number from a manifest value (``2``, ``2.0`` from the wire, ``"2"``); ``default`` when absent.

    ``None`` when the value is present but not a number (for instance unknown during a preview).
    """
    if value is None:
        return default
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return int(value) if float(value).is_integer() else None
    if isinstance(value, str) and re.fullmatch(r"\d+(\.0+)?", value.strip()):
        return int(float(value))
    return None

def canonical_flag(flag: str) -> str:
    """``--tensor_parallel_size`` and ``-tp`` -> ``--tensor-parallel-size`` (vLLM accepts all three)."""
    if flag in _ALIASES:
        return _ALIASES[flag]
    if flag.startswith("--"):
        return "--" + flag[2:].replace("_", "-")
    return flag


def _is_switch(flag: str) -> bool:
    return flag in _SWITCHES or flag.startswith(("--enable-", "--disable-", "--no-"))


def _is_flag(token: str) -> bool:
    return token.startswith("-") and len(token) > 1 and not _NUMBER.match(token)


@dataclass(frozen=True)
class VllmCommand:
    """One vLLM invocation: which entrypoint, and the arguments that follow it."""

    mode: Literal["serve", "batch"]
    """``serve`` (the OpenAI-compatible server) or ``batch`` (the offline batch runner)."""
    program: tuple[str, ...]
    """The entrypoint as written: ``("vllm", "serve")``, ``("python3", "-m", "vllm.entrypoints.openai.api_server")``."""
    args: tuple[str, ...]
    """Everything after the entrypoint, as vLLM's own parser would receive it."""

    @cached_property
    def _parsed(self) -> tuple[dict[str, str | None], tuple[str, ...]]:
        options: dict[str, str | None] = {}
        positionals: list[str] = []
        args = list(self.args)
        index = 0
        while index < len(args):
            token = args[index]
            if token == "--":
                positionals += args[index + 1:]
                break
            if not _is_flag(token):
                positionals.append(token)
            elif token.startswith("-O") and len(token) > 2 and not token.startswith("--"):
                options["-O"] = token[2:]  # -O3: the value is attached
            else:
                name, equals, value = token.partition("=")
                flag = canonical_flag(name)
                if equals:
                    options[flag] = value
                elif not _is_switch(flag) and index + 1 < len(args) and not _is_flag(args[index + 1]):
                    options[flag] = args[index + 1]
                    index += 1
                else:
                    options[flag] = None
            index += 1
        return options, tuple(positionals)

    @cached_property
    def conflicting_flags(self) -> dict[str, tuple[str | None, ...]]:
        """Flags given more than once with different values, in canonical form, with every value in order.

        vLLM's parser (argparse) keeps the last value, and so does :attr:`options`; a command line that gives
        ``--tensor-parallel-size 1 ... --tensor-parallel-size 2`` runs with 2, whatever its pod was sized for.
        """
        seen: dict[str, list[str | None]] = {}
        args = list(self.args)
        index = 0
        while index < len(args):
            token = args[index]
            if token == "--":
                break
            if _is_flag(token) and not (token.startswith("-O") and not token.startswith("--")):
                name, equals, value = token.partition("=")
                flag = canonical_flag(name)
                given: str | None = value if equals else None
                if not equals and not _is_switch(flag) and index + 1 < len(args) and not _is_flag(args[index + 1]):
                    given = args[index + 1]
                    index += 1
                seen.setdefault(flag, []).append(given)
            index += 1
        # --middleware appends (action "append"): several are several middlewares, not a conflict.
        return {
            flag: tuple(values) for flag, values in seen.items() if len(set(values)) > 1 and flag not in _APPENDED
        }

    @property
    def options(self) -> dict[str, str | None]:
        """Flags in their canonical long form, each with its (last) value; ``None`` for a bare switch."""
        return dict(self._parsed[0])

    @property
    def model(self) -> str | None:
        """The model served: the positional model of ``vllm serve``, else ``--model``; ``None`` when not given."""
        positionals = self._parsed[1]
        if self.mode == "serve" and self.program[-1] == "serve" and positionals:
            return positionals[0]
        return self._parsed[0].get("--model") or None

    def value(self, flag: str) -> str | None:
        """The value of ``flag`` (any spelling vLLM accepts), or ``None``."""
        return self._parsed[0].get(canonical_flag(flag))

    def has(self, flag: str) -> bool:
        """Whether ``flag`` is given at all."""
        return canonical_flag(flag) in self._parsed[0]

    def size(self, flag: str) -> int | None:
        """A size flag as a number: 1 when absent, ``None`` when its value is not a number (e.g. ``$(TP)``)."""
        if not self.has(flag):
            return 1
        return count(self.value(flag))

    @property
    def tensor_parallel_size(self) -> int | None:
        """``--tensor-parallel-size`` (1 when absent)."""
        return self.size("--tensor-parallel-size")

    @property
    def pipeline_parallel_size(self) -> int | None:
        """``--pipeline-parallel-size`` (1 when absent)."""
        return self.size("--pipeline-parallel-size")

    @property
    def data_parallel_size(self) -> int | None:
        """Data-parallel ranks in this pod: ``--data-parallel-size-local``, else ``--data-parallel-size`` (1 when absent)."""
        if self.has("--data-parallel-size-local"):
            return self.size("--data-parallel-size-local")
        return self.size("--data-parallel-size")

    def describe(self) -> str:
        """The command line for messages, with any ``--api-key`` value masked."""
        words = list(self.program)
        hide = False
        for arg in self.args:
            name = arg.split("=", 1)[0]
            if hide:
                words.append("REDACTED")
                hide = False
            elif canonical_flag(name) == "--api-key":
                words.append(f"{name}=REDACTED" if "=" in arg else arg)
                hide = "=" not in arg
            else:
                words.append(arg)
        return shlex.join(words)


@dataclass(frozen=True)
class ContainerCommands:
    """What one container runs, as far as vLLM and Ray are concerned."""

    vllm: tuple[VllmCommand, ...] = ()
    """The vLLM invocations found (usually one)."""
    ray_head: bool = False
    """The container starts a Ray head node (``ray start --head``, or vLLM's multi-node script as leader)."""
    ray_worker: bool = False
    """The container joins a Ray cluster (``ray start --address ...``, or vLLM's multi-node script as worker)."""
    other: tuple[tuple[str, ...], ...] = ()
    """The other simple commands found (neither vLLM nor Ray), as words: what :mod:`pulumi_vllm.engine.other_engines` reads."""


def literal_env(container: Mapping[str, Any]) -> dict[str, str]:
    """The container's environment variables that have a literal ``value`` (not a Secret or ConfigMap reference).

    As the kubelet does, a value's ``$(VAR)`` references to variables defined earlier in the list
    are expanded (``$$`` escapes, other references stay as written).
    """
    values: dict[str, str] = {}
    for item in _list(container.get("env")):
        item = _mapping(item)
        if isinstance(item.get("name"), str) and isinstance(item.get("value"), (str, int, float)):
            values[item["name"]] = expand_kubernetes(str(item["value"]), values)
    return values


def expand_kubernetes(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' own expansion of ``$(VAR)`` in command and args (``$$`` escapes); unknown names stay as written."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))

    return _K8S_REFERENCE.sub(replace, text)


def _expand_shell(text: str, env: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return env.get(name, match.group(0))

    return _SHELL_REFERENCE.sub(replace, text)


def _strip_comments(script: str) -> str:
    """The script without ``#`` comments (outside quotes, at the start of a word), keeping its line breaks."""
    out: list[str] = []
    quote = ""
    skipping = False
    previous = "\n"
    for char in script:
        if skipping:
            if char == "\n":
                skipping = False
                out.append(char)
            continue
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "#" and previous in " \t\n;&|":
            skipping = True
            continue
        out.append(char)
        previous = char
    return "".join(out)


def split_script(script: str) -> list[list[str]]:
    """A shell script as its simple commands, split at line breaks, ``;``, ``&&``, ``||``, ``|`` and ``&``."""
    text = _strip_comments(script.replace("\\\n", " "))
    lexer = shlex.shlex(text, posix=True, punctuation_chars=";&|\n")
    lexer.whitespace = " \t\r"
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        tokens = list(lexer)
    except ValueError:  # unbalanced quotes: fall back to plain words
        tokens = re.findall(r"[;&|\n]+|[^\s;&|]+", text)
    commands: list[list[str]] = [[]]
    for token in tokens:
        if token and set(token) <= set(";&|\n"):
            commands.append([])
        else:
            commands[-1].append(token)
    return [command for command in commands if command]


def _unwrap(words: list[str]) -> list[str]:
    """Drop ``VAR=value`` prefixes and wrappers such as ``exec``, ``env -i`` and ``nohup``."""
    while words:
        head = words[0]
        if _ASSIGNMENT.match(head):
            words = words[1:]
        elif head in _WRAPPERS:
            words = words[1:]
            while head == "env" and words and words[0].startswith("-"):
                words = words[1:]
        else:
            return words
    return words


def _basename(word: str) -> str:
    return word.rsplit("/", 1)[-1]


def _scan(words: list[str], env: Mapping[str, str], found: dict[str, Any], depth: int = 0) -> None:
    words = _unwrap(words)
    if not words or depth > 4:
        return
    program = _basename(words[0])
    if program in _SHELLS:
        for index, word in enumerate(words[1:], start=1):
            if word.startswith("-") and not word.startswith("--") and "c" in word[1:]:
                script_at = index + 2 if words[index + 1:index + 2] == ["--"] else index + 1
                if script_at < len(words):
                    for command in split_script(_expand_shell(words[script_at], env)):
                        _scan(command, env, found, depth + 1)
                return
            if not word.startswith("-"):
                _scan(words[index:], env, found, depth + 1)  # `bash script.sh args`
                return
        return
    if program == "vllm" and len(words) > 1 and words[1] in ("serve", "run-batch"):
        mode: Literal["serve", "batch"] = "serve" if words[1] == "serve" else "batch"
        found["vllm"].append(VllmCommand(mode, tuple(words[:2]), tuple(words[2:])))
    elif _PYTHON.match(program) and "-m" in words:
        at = words.index("-m")
        module = words[at + 1] if at + 1 < len(words) else ""
        rest = words[at + 2:]
        if module in SERVE_MODULES:
            found["vllm"].append(VllmCommand("serve", tuple(words[: at + 2]), tuple(rest)))
        elif module in BATCH_MODULES:
            found["vllm"].append(VllmCommand("batch", tuple(words[: at + 2]), tuple(rest)))
        elif module == "vllm.entrypoints.cli.main" and rest[:1] in (["serve"], ["run-batch"]):
            mode = "serve" if rest[0] == "serve" else "batch"
            found["vllm"].append(VllmCommand(mode, tuple(words[: at + 3]), tuple(rest[1:])))
        else:
            found["other"].append(tuple(words))
    elif program == "ray" and words[1:2] == ["start"]:
        if "--head" in words:
            found["ray_head"] = True
        elif any(word == "--address" or word.startswith("--address=") for word in words):
            found["ray_worker"] = True
    elif program.endswith("multi-node-serving.sh") and len(words) > 1:
        # vLLM's example script for LeaderWorkerSet: `leader` starts the Ray head, `worker` joins it.
        found["ray_head"] = found["ray_head"] or words[1] == "leader"
        found["ray_worker"] = found["ray_worker"] or words[1] == "worker"
    else:
        found["other"].append(tuple(words))


def find_commands(argv: Sequence[str], env: Mapping[str, str] | None = None) -> ContainerCommands:
    """The vLLM invocations and Ray roles in one command line (``command`` followed by ``args``)."""
    found: dict[str, Any] = {"vllm": [], "ray_head": False, "ray_worker": False, "other": []}
    _scan(list(argv), env or {}, found)
    return ContainerCommands(tuple(found["vllm"]), found["ray_head"], found["ray_worker"], tuple(found["other"]))


def _runs_vllm_image(image: Any) -> bool:
    if not isinstance(image, str):
        return False
    path = image.split("@", 1)[0]
    repository = path.rsplit("/", 1)[-1].split(":", 1)[0]
    return repository in VLLM_IMAGE_REPOSITORIES


def container_argv(container: Mapping[str, Any], image_entrypoint: bool = True) -> list[str]:
    """The container's command line after Kubernetes' ``$(VAR)`` expansion.

    A container of the vLLM image with ``args`` but no ``command`` runs the image's entrypoint,
    ``vllm serve``, with them (unless ``image_entrypoint`` is false: KubeRay replaces the
    entrypoint of RayCluster pods with ``ray start``).
    """
    env = literal_env(container)
    command = [expand_kubernetes(item, env) for item in _strings(container.get("command"))]
    args = [expand_kubernetes(item, env) for item in _strings(container.get("args"))]
    if image_entrypoint and not command and args and _runs_vllm_image(container.get("image")):
        command = ["vllm", "serve"]
    return command + args


def container_commands(container: Mapping[str, Any], image_entrypoint: bool = True) -> ContainerCommands:
    """What a container runs: its vLLM invocations and whether it is a Ray head or worker."""
    return find_commands(container_argv(container, image_entrypoint), literal_env(container))
