"""Run a Pulumi policy pack as the Pulumi engine does, over its gRPC Analyzer protocol.

The engine starts a Python pack as ``python -u -m pulumi.policy <engine address> .`` in the pack's
folder (with the interpreter of the virtualenv named in ``PulumiPolicy.yaml``), passes the stack's
identity and config in ``PULUMI_*`` variables, reads the port from the pack's first line of output,
then calls ``ConfigureStack``, ``GetAnalyzerInfo``, ``Configure`` (schema defaults, then the
``--policy-pack-config`` file, validated against each policy's schema), ``Analyze`` for each
resource and ``AnalyzeStack`` for the whole set, and finally stops the process. This module does
the same, so a pack can be run without the Pulumi CLI: ``pulumi-vllm render --policy-pack``, tests.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pulumi_vllm.policy.plugin_process import PluginProcess

ENFORCEMENT_LEVELS = ("advisory", "mandatory", "remediate", "disabled")
ENGINE_ADDRESS = "127.0.0.1:0"
"""Passed where the engine passes its own address; a Python pack never dials it."""


class PolicyPackError(Exception):
    """The pack could not be started, configured or queried; the message says why."""


@dataclass(frozen=True)
class AnalyzedResource:
    """One resource as the engine shows it to a policy pack."""

    urn: str
    type: str
    name: str
    properties: Mapping[str, Any]
    """Inputs on the wire: camelCase, numbers as floats, secrets in Pulumi's secret envelope."""
    parent: str = ""
    protect: bool = False
    custom_timeouts: Mapping[str, str] = field(default_factory=dict)
    additional_secret_outputs: Sequence[str] = ()


@dataclass(frozen=True)
class Violation:
    """One policy violation, as the engine receives it."""

    policy_name: str
    policy_pack: str
    policy_pack_version: str
    enforcement_level: str
    """``advisory``, ``mandatory``, ``remediate`` or ``disabled``."""
    description: str
    message: str
    """The policy's description, a line break, then the specific message."""
    urn: str
    """The resource's URN, or empty for a violation of the whole stack."""

    @property
    def mandatory(self) -> bool:
        """Whether this violation blocks a ``pulumi up``."""
        return self.enforcement_level in ("mandatory", "remediate")

    @property
    def detail(self) -> str:
        """The message without the leading description."""
        prefix = self.description + "\n"
        return self.message.removeprefix(prefix)


def urn_for(project: str, stack: str, resource_type: str, name: str) -> str:
    """A top-level resource URN."""
    return f"urn:pulumi:{stack}::{project}::{resource_type}::{name}"


def resources_from_registrations(registrations: Iterable[Any]) -> list[AnalyzedResource]:
    """Resources of a rendered program run (``pulumi_vllm.render.engine.Registration``), in registration order."""
    return [
        AnalyzedResource(
            urn=reg.urn,
            type=reg.type,
            name=reg.name,
            properties=reg.inputs,
            parent=reg.parent,
            protect=reg.protect,
            custom_timeouts=dict(reg.custom_timeouts),
            additional_secret_outputs=tuple(reg.additional_secret_outputs),
        )
        for reg in registrations
    ]


def resources_from_manifests(
    manifests: Iterable[Mapping[str, Any]], project: str = "manifests", stack: str = "dev"
) -> list[AnalyzedResource]:
    """Kubernetes manifests as the resources Pulumi would register for them (e.g. through ``yaml/v2``)."""
    from pulumi_vllm.engine.workload import pulumi_type

    resources = []
    seen: set[tuple[str, str]] = set()
    for manifest in manifests:
        metadata = manifest.get("metadata") or {}
        resource_type = pulumi_type(str(manifest["apiVersion"]), str(manifest["kind"]))
        name = str(metadata.get("name"))
        if (resource_type, name) in seen:
            name = f"{metadata.get('namespace', 'default')}/{name}"
        seen.add((resource_type, name))
        resources.append(AnalyzedResource(urn_for(project, stack, resource_type, name), resource_type, name, manifest))
    return resources


def load_policy_config(path: Path) -> dict[str, dict[str, Any]]:
    """A ``--policy-pack-config`` JSON file, read as the Pulumi CLI reads it.

    Each entry is a level (``"advisory"``) or an object with an optional ``enforcementLevel`` and
    the policy's properties. Returns ``{policy: {"enforcementLevel": level or None, "properties": {...}}}``.
    """
    try:
        text = path.read_text()
    except OSError as error:
        raise PolicyPackError(f"cannot read policy pack config {path}: {error.strerror}") from None
    if not text.strip():
        return {}
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise PolicyPackError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise PolicyPackError(f"{path}: expected a JSON object of policy names")
    config: dict[str, dict[str, Any]] = {}
    for name, value in document.items():
        if isinstance(value, str):
            level, properties = value, {}
        elif isinstance(value, dict):
            properties = dict(value)
            level = properties.pop("enforcementLevel", None)
        else:
            raise PolicyPackError(f"parsing {name!r}: {value!r} is not a valid value; must be a string or object")
        if level is not None and level not in ENFORCEMENT_LEVELS:
            raise PolicyPackError(f"parsing enforcement level for {name!r}: {level!r} is not a valid enforcement level")
        if level is None and not properties:
            continue
        config[name] = {"enforcementLevel": level, "properties": properties}
    return config


def reconcile_config(
    policies: Sequence[Mapping[str, Any]], given: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Schema defaults, then ``given`` on top (``all`` sets every level), validated as the engine does.

    ``policies`` are the pack's policy infos: ``name``, ``enforcementLevel`` and ``configSchema``
    (``properties``, ``required``). Raises :class:`PolicyPackError` listing every invalid value.
    """
    import jsonschema

    result: dict[str, dict[str, Any]] = {}
    for policy in policies:
        schema = policy.get("configSchema") or {}
        defaults = {key: prop["default"] for key, prop in (schema.get("properties") or {}).items() if "default" in prop}
        result[policy["name"]] = {"enforcementLevel": policy["enforcementLevel"], "properties": defaults}
    everything = given.get("all", {}).get("enforcementLevel")
    if everything:
        for entry in result.values():
            entry["enforcementLevel"] = everything
    unknown = sorted(set(given) - set(result) - {"all"})
    if unknown:
        raise PolicyPackError(
            f"policy pack config names no policy of this pack: {', '.join(unknown)} (policies: {', '.join(result)})"
        )
    for name, override in given.items():
        if name == "all":
            continue
        current = result[name]
        if override.get("enforcementLevel"):
            current["enforcementLevel"] = override["enforcementLevel"]
        current["properties"] = {**current["properties"], **(override.get("properties") or {})}
    errors = []
    for policy in policies:
        schema = policy.get("configSchema") or {}
        if not schema:
            continue
        document_schema = {"type": "object", "properties": schema.get("properties") or {}}
        if schema.get("required"):
            document_schema["required"] = list(schema["required"])
        validator = jsonschema.Draft7Validator(document_schema)
        for error in validator.iter_errors(result[policy["name"]]["properties"]):
            where = ".".join(str(part) for part in error.absolute_path)
            errors.append(f"{policy['name']}: {where + ': ' if where else ''}{error.message}")
    if errors:
        raise PolicyPackError("invalid policy pack config:\n  " + "\n  ".join(errors))
    return result


def _seconds(duration: str) -> float:
    """A Go duration (``2400s``, ``40m``, ``1h30m``) in seconds, as the engine sends custom timeouts."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    return sum(float(number) * units[unit] for number, unit in re.findall(r"([\d.]+)(ms|h|m|s)", duration))


def _struct(value: Mapping[str, Any]) -> Any:
    from google.protobuf import json_format, struct_pb2

    struct = struct_pb2.Struct()
    json_format.ParseDict(json.loads(json.dumps(value)), struct)
    return struct


def pack_python(pack_dir: Path) -> str:
    """The interpreter the engine would use: the pack's virtualenv when it exists, else this one."""
    try:
        project = yaml.safe_load((pack_dir / "PulumiPolicy.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise PolicyPackError(f"{pack_dir} is not a policy pack (no readable PulumiPolicy.yaml): {error}") from None
    runtime = project.get("runtime")
    options = runtime.get("options") or {} if isinstance(runtime, dict) else {}
    venv = options.get("virtualenv")
    if venv:
        candidate = (pack_dir / str(venv) / "bin" / "python").resolve()
        if candidate.is_file():
            return str(candidate)
    return sys.executable


class PolicyPackProcess(PluginProcess):
    """A running policy pack: start it, configure it, analyze resources, stop it (a context manager)."""

    def __init__(
        self,
        pack_dir: Path,
        *,
        project: str = "pulumi-vllm",
        stack: str = "dev",
        stack_config: Mapping[str, str] | None = None,
        dry_run: bool = True,
        python: str | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        self.pack_dir = Path(pack_dir).resolve()
        self.project, self.stack, self.dry_run = project, stack, dry_run
        self.stack_config = dict(stack_config or {})
        self.python = python or pack_python(self.pack_dir)
        super().__init__()
        self.startup_timeout = startup_timeout
        self.version = self._pack_version()
        self._info: Any = None

    def _pack_version(self) -> str:
        project = yaml.safe_load((self.pack_dir / "PulumiPolicy.yaml").read_text()) or {}
        return str(project.get("version") or "")

    def start(self) -> None:
        """Start the pack and connect to the port it prints."""
        from pulumi.runtime.proto import analyzer_pb2_grpc

        env = dict(os.environ)
        # As the engine's constructEnv: only non-empty values are set.
        settings = {
            "PULUMI_CONFIG": json.dumps(self.stack_config) if self.stack_config else "",
            "PULUMI_PROJECT": self.project,
            "PULUMI_STACK": self.stack,
            "PULUMI_DRY_RUN": "true" if self.dry_run else "false",
        }
        env.update({key: value for key, value in settings.items() if value})
        self._spawn([self.python, "-u", "-m", "pulumi.policy", ENGINE_ADDRESS, "."], self.pack_dir, env)
        port = self._read_port(f"policy pack {self.pack_dir}", PolicyPackError)
        self._stub = analyzer_pb2_grpc.AnalyzerStub(self._connect(port))
        self._call("ConfigureStack", self._configure_stack_request(), allow_unimplemented=True)

    def _configure_stack_request(self) -> Any:
        from pulumi.runtime.proto import analyzer_pb2

        return analyzer_pb2.AnalyzerStackConfigureRequest(
            stack=self.stack, project=self.project, dry_run=self.dry_run, config=self.stack_config
        )

    def _call(self, method: str, request: Any, allow_unimplemented: bool = False) -> Any:
        import grpc

        try:
            return getattr(self._stub, method)(request)
        except grpc.RpcError as error:
            if allow_unimplemented and error.code() == grpc.StatusCode.UNIMPLEMENTED:
                return None
            raise PolicyPackError(f"policy pack {method} failed: {error.details()}\n{self.stderr()}") from None

    def info(self) -> Any:
        """The pack's ``AnalyzerInfo`` (name, policies, their levels and config schemas)."""
        if self._info is None:
            from google.protobuf import empty_pb2

            self._info = self._call("GetAnalyzerInfo", empty_pb2.Empty())
        return self._info

    def policy_infos(self) -> list[dict[str, Any]]:
        """The pack's policies as plain dicts (``name``, ``enforcementLevel``, ``configSchema``, ...)."""
        from google.protobuf import json_format

        infos = []
        for policy in self.info().policies:
            entry = json_format.MessageToDict(policy, preserving_proto_field_name=False)
            entry["enforcementLevel"] = entry.get("enforcementLevel", "ADVISORY").lower()
            infos.append(entry)
        return infos

    def configure(self, config: Path | Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
        """Send the reconciled config (defaults, then ``config``: a file or an already parsed mapping)."""
        from pulumi.runtime.proto import analyzer_pb2

        given = load_policy_config(config) if isinstance(config, Path) else dict(config or {})
        reconciled = reconcile_config(self.policy_infos(), given)
        request = analyzer_pb2.ConfigureAnalyzerRequest()
        for name, entry in reconciled.items():
            level = getattr(analyzer_pb2, str(entry["enforcementLevel"]).upper())
            request.policyConfig[name].CopyFrom(
                analyzer_pb2.PolicyConfig(enforcementLevel=level, properties=_struct(entry["properties"]))
            )
        self._call("Configure", request)
        return reconciled

    def _options(self, resource: AnalyzedResource) -> Any:
        from pulumi.runtime.proto import analyzer_pb2

        timeouts = {key: _seconds(value) for key, value in resource.custom_timeouts.items() if key != "read"}
        return analyzer_pb2.AnalyzerResourceOptions(
            protect=resource.protect,
            additionalSecretOutputs=list(resource.additional_secret_outputs),
            customTimeouts=analyzer_pb2.AnalyzerResourceOptions.CustomTimeouts(**timeouts),
            parent=resource.parent,
        )

    def _violations(self, response: Any, default_urn: str) -> list[Violation]:
        from pulumi.runtime.proto import analyzer_pb2

        names = {value: name.lower() for name, value in analyzer_pb2.EnforcementLevel.items()}
        return [
            Violation(
                policy_name=diagnostic.policyName,
                policy_pack=diagnostic.policyPackName,
                # As the engine: the version in PulumiPolicy.yaml wins over the one the SDK reports.
                policy_pack_version=self.version or diagnostic.policyPackVersion,
                enforcement_level=names[diagnostic.enforcementLevel],
                description=diagnostic.description,
                message=diagnostic.message,
                urn=diagnostic.urn or default_urn,
            )
            for diagnostic in response.diagnostics
        ]

    def analyze(self, resource: AnalyzedResource) -> list[Violation]:
        """Violations of the resource policies for one resource (attributed to it, as the engine does)."""
        from pulumi.runtime.proto import analyzer_pb2

        request = analyzer_pb2.AnalyzeRequest(
            urn=resource.urn,
            type=resource.type,
            name=resource.name,
            properties=_struct(resource.properties),
            options=self._options(resource),
        )
        return self._violations(self._call("Analyze", request), resource.urn)

    def analyze_stack(self, resources: Sequence[AnalyzedResource]) -> list[Violation]:
        """Violations of the stack policies for the whole set of resources."""
        from pulumi.runtime.proto import analyzer_pb2

        request = analyzer_pb2.AnalyzeStackRequest(
            resources=[
                analyzer_pb2.AnalyzerResource(
                    urn=r.urn,
                    type=r.type,
                    name=r.name,
                    properties=_struct(r.properties),
                    options=self._options(r),
                    parent=r.parent,
                )
                for r in resources
            ]
        )
        return self._violations(self._call("AnalyzeStack", request), "")

    def analyze_all(self, resources: Sequence[AnalyzedResource]) -> list[Violation]:
        """``Analyze`` each resource, then ``AnalyzeStack``: what a preview runs."""
        found: list[Violation] = []
        for resource in resources:
            found += self.analyze(resource)
        return found + self.analyze_stack(resources)


def run_policy_pack(
    pack_dir: Path,
    resources: Sequence[AnalyzedResource],
    config: Path | Mapping[str, Mapping[str, Any]] | None = None,
    *,
    project: str = "pulumi-vllm",
    stack: str = "dev",
) -> list[Violation]:
    """Start the pack, configure it, analyze ``resources`` as a preview does, stop it; the violations."""
    with PolicyPackProcess(pack_dir, project=project, stack=stack) as pack:
        pack.configure(config)
        return pack.analyze_all(resources)
