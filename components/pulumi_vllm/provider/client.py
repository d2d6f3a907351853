"""Run the component provider as the Pulumi engine does, over its ResourceProvider gRPC protocol.

The engine has the Python language host start a source-based plugin as ``python <plugin folder>
<engine address>`` in that folder, reads the port from the plugin's first line of output, then calls
``GetSchema`` (for ``pulumi package add``) and, when a program in any language creates one of the
components, ``Construct`` with the program's project, stack, config and the component's inputs as a
``Struct``. The provider then builds the component and registers each child resource with the
engine's resource monitor, whose address ``Construct`` carries. :class:`ProviderProcess` does the
engine's part; :class:`RecordingMonitor` is the resource monitor (and engine), recording every
registration, so that what a component creates through the provider can be compared with what the
Python class creates, without the Pulumi CLI.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Mapping
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from pulumi_vllm.policy.plugin_process import PluginProcess

SECRET_SIG = "4dabf18193072939515e22adb298388d"
SECRET_VALUE = "1b47061264138c4ac30d75fd1eb44270"
PLUGIN_DIR = Path(__file__).resolve().parents[3] / "plugin"
"""The plugin folder of this checkout (``PulumiPlugin.yaml``, ``__main__.py``)."""


class ProviderError(Exception):
    """The provider could not be started or a call failed; the message says why, with its stderr."""


@dataclass
class RegisteredResource:
    """One resource registered with the recording monitor."""

    type: str
    name: str
    urn: str
    parent: str
    custom: bool
    inputs: dict[str, Any]
    dependencies: list[str] = field(default_factory=list)


def secret(value: Any) -> dict[str, Any]:
    """A value in Pulumi's secret envelope, as the engine sends a secret input."""
    return {SECRET_SIG: SECRET_VALUE, "value": value}


def to_struct(value: Mapping[str, Any]) -> Any:
    """A JSON-like mapping as a protobuf ``Struct`` (numbers become floats, as on the wire)."""
    from google.protobuf import json_format, struct_pb2

    struct = struct_pb2.Struct()
    json_format.ParseDict(json.loads(json.dumps(value)), struct)
    return struct


def from_struct(struct: Any) -> dict[str, Any]:
    """A protobuf ``Struct`` as a plain dict."""
    from google.protobuf import json_format

    return dict(json_format.MessageToDict(struct))


class RecordingMonitor:
    """A resource monitor and engine served over gRPC on loopback, recording every registration.

    Custom resources get their inputs back as outputs (``id`` = name), as a preview shows them.
    """

    def __init__(self, project: str, stack: str) -> None:
        self.project, self.stack = project, stack
        self.stack_urn = f"urn:pulumi:{stack}::{project}::pulumi:pulumi:Stack::{project}-{stack}"
        self.resources: list[RegisteredResource] = []
        self.outputs: dict[str, dict[str, Any]] = {}
        self.logs: list[str] = []
        self._types: dict[str, str] = {self.stack_urn: "pulumi:pulumi:Stack"}
        self._lock = threading.Lock()
        self._server: Any = None
        self.port = 0

    def urn_for(self, resource_type: str, name: str, parent: str) -> str:
        """The URN the engine gives a resource: its type qualified by its ancestors' types."""
        qualified = resource_type
        if parent and parent != self.stack_urn:
            qualified = f"{self._types[parent]}${resource_type}"
        return f"urn:pulumi:{self.stack}::{self.project}::{qualified}::{name}"

    def start(self) -> None:
        """Serve on a free loopback port (:attr:`port`)."""
        import grpc
        from google.protobuf import empty_pb2
        from pulumi.runtime.proto import engine_pb2, engine_pb2_grpc, resource_pb2, resource_pb2_grpc

        recorder = self

        class Monitor(resource_pb2_grpc.ResourceMonitorServicer):  # type: ignore[misc]
            def SupportsFeature(self, request: Any, context: Any) -> Any:
                # The features a current engine has; no output values (the SDK then sends plain values).
                supported = request.id in {"secrets", "resourceReferences", "aliasSpecs", "deletedWith"}
                return resource_pb2.SupportsFeatureResponse(hasSupport=supported)

            def RegisterResource(self, request: Any, context: Any) -> Any:
                with recorder._lock:
                    urn = recorder.urn_for(request.type, request.name, request.parent)
                    parent_type = recorder._types.get(request.parent, "")
                    recorder._types[urn] = (
                        f"{parent_type}${request.type}" if parent_type and request.parent != recorder.stack_urn
                        else request.type
                    )
                    inputs = from_struct(request.object)
                    recorder.resources.append(
                        RegisteredResource(
                            type=request.type,
                            name=request.name,
                            urn=urn,
                            parent=request.parent,
                            custom=request.custom,
                            inputs=inputs,
                            dependencies=list(request.dependencies),
                        )
                    )
                return resource_pb2.RegisterResourceResponse(
                    urn=urn, id=request.name if request.custom else "", object=request.object
                )

            def RegisterResourceOutputs(self, request: Any, context: Any) -> Any:
                with recorder._lock:
                    recorder.outputs[request.urn] = from_struct(request.outputs)
                return empty_pb2.Empty()

        class Engine(engine_pb2_grpc.EngineServicer):  # type: ignore[misc]
            def Log(self, request: Any, context: Any) -> Any:
                recorder.logs.append(request.message)
                return empty_pb2.Empty()

            def GetRootResource(self, request: Any, context: Any) -> Any:
                return engine_pb2.GetRootResourceResponse(urn=recorder.stack_urn)

            def SetRootResource(self, request: Any, context: Any) -> Any:
                return engine_pb2.SetRootResourceResponse()

        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        resource_pb2_grpc.add_ResourceMonitorServicer_to_server(Monitor(), self._server)
        engine_pb2_grpc.add_EngineServicer_to_server(Engine(), self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()

    @property
    def address(self) -> str:
        """``127.0.0.1:<port>``."""
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.stop(grace=None)
            self._server = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ProviderProcess(PluginProcess):
    """The component provider started as the engine starts a Python plugin (a context manager)."""

    def __init__(
        self,
        plugin_dir: Path = PLUGIN_DIR,
        *,
        engine_address: str = "127.0.0.1:0",
        python: str | None = None,
        startup_timeout: float = 60.0,
        call_timeout: float = 120.0,
    ) -> None:
        self.plugin_dir = Path(plugin_dir).resolve()
        self.engine_address = engine_address
        self.python = python or sys.executable
        super().__init__()
        self.startup_timeout, self.call_timeout = startup_timeout, call_timeout

    def start(self) -> None:
        """``python <plugin folder> <engine address>`` in the plugin folder; connect to the port it prints."""
        from pulumi.runtime.proto import provider_pb2_grpc

        self._spawn([self.python, str(self.plugin_dir), self.engine_address], self.plugin_dir, os.environ)
        port = self._read_port(f"provider {self.plugin_dir}", ProviderError)
        self._stub = provider_pb2_grpc.ResourceProviderStub(self._connect(port))

    def _call(self, method: str, request: Any) -> Any:
        import grpc

        try:
            return getattr(self._stub, method)(request, timeout=self.call_timeout)
        except grpc.RpcError as error:
            raise ProviderError(f"provider {method} failed: {error.details()}\n{self.stderr()}") from None

    def get_schema(self) -> dict[str, Any]:
        """The package schema the provider infers (``GetSchema``), parsed."""
        from pulumi.runtime.proto import provider_pb2

        response = self._call("GetSchema", provider_pb2.GetSchemaRequest(version=0))
        schema: dict[str, Any] = json.loads(response.schema)
        return schema

    def construct(
        self,
        monitor: RecordingMonitor,
        resource_type: str,
        name: str,
        inputs: Mapping[str, Any],
        *,
        config: Mapping[str, str] | None = None,
        dry_run: bool = True,
    ) -> dict[str, Any]:
        """``Construct`` one component, its children registered with ``monitor``; its outputs (``state``)."""
        from pulumi.runtime.proto import provider_pb2

        request = provider_pb2.ConstructRequest(
            project=monitor.project,
            stack=monitor.stack,
            config=dict(config or {}),
            dryRun=dry_run,
            parallel=1,
            monitorEndpoint=monitor.address,
            type=resource_type,
            name=name,
            parent=monitor.stack_urn,
            inputs=to_struct(inputs),
        )
        response = self._call("Construct", request)
        state = from_struct(response.state)
        state["urn"] = response.urn
        return state


def provider_schema(plugin_dir: Path = PLUGIN_DIR) -> dict[str, Any]:
    """Start the provider, ask for its schema, stop it."""
    with ProviderProcess(plugin_dir) as provider:
        return provider.get_schema()
