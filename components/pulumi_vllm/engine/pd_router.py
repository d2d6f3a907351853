"""vLLM's router in its prefill/decode mode (``vllm-router --vllm-pd-disaggregation``): the command line.

Measured with the pinned wheel (vllm-router 0.1.17) against stand-in servers on loopback: for each request
the router first sends the prefill server the request with ``max_tokens: 1`` and ``kv_transfer_params``
``{"do_remote_decode": true, ...}``, then sends the decode server the original request with the
``kv_transfer_params`` the prefill server answered with, and returns the decode server's answer. That is
the protocol of vLLM's ``NixlConnector``.

In this mode the router refuses workers added at run time (``POST /workers`` answers ``PD router requires
specific add_prefill_server or add_decode_server methods``), so the DNS registration loop of the regular
mode (:mod:`pulumi_vllm.engine.router`) cannot feed it. On Kubernetes it finds the pools' pods itself
(``--service-discovery`` with ``--prefill-selector`` and ``--decode-selector``), which needs read access
to pods in the namespace; elsewhere it takes the servers' URLs (``--prefill URL --decode URL``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pulumi_vllm.engine.router import ROUTER_COMMAND, ROUTER_METRICS_PORT, ROUTER_PORT

PD_MANAGED_FLAGS = frozenset({
    "--vllm-pd-disaggregation", "--prefill", "--decode", "--prefill-selector", "--decode-selector",
    "--service-discovery", "--service-discovery-port", "--service-discovery-namespace", "--policy",
    "--prefill-policy", "--decode-policy", "--kv-connector", "--selector",
})
"""Flags the P/D router command sets itself (refused in ``router.extraArgs`` of a disaggregated stack)."""


def _selector(labels: Mapping[str, str]) -> list[str]:
    return [f"{key}={value}" for key, value in sorted(labels.items())]


def pd_router_args(
    *,
    prefill_policy: str,
    decode_policy: str,
    prefill_selector: Mapping[str, str] | None = None,
    decode_selector: Mapping[str, str] | None = None,
    namespace: str | None = None,
    worker_port: int = 8000,
    prefill_urls: Sequence[str] = (),
    decode_urls: Sequence[str] = (),
    host: str = "0.0.0.0",
    port: int = ROUTER_PORT,
    metrics_port: int = ROUTER_METRICS_PORT,
    extra_args: Sequence[str] = (),
) -> list[str]:
    """The P/D router's command line: discovery by label selectors (Kubernetes) or fixed URLs.

    ``--policy`` is set to the prefill policy as well, since the router's parser fills the unset one from it.
    """
    argv = [
        *ROUTER_COMMAND,
        "--vllm-pd-disaggregation",
        "--kv-connector", "nixl",
        "--host", host,
        "--port", str(port),
        "--policy", prefill_policy,
        "--prefill-policy", prefill_policy,
        "--decode-policy", decode_policy,
        "--prometheus-host", host,
        "--prometheus-port", str(metrics_port),
    ]
    if prefill_selector is not None and decode_selector is not None:
        argv += [
            "--service-discovery",
            "--prefill-selector", *_selector(prefill_selector),
            "--decode-selector", *_selector(decode_selector),
            "--service-discovery-port", str(worker_port),
        ]
        if namespace:
            argv += ["--service-discovery-namespace", namespace]
    else:
        if not prefill_urls or not decode_urls:
            raise ValueError("the P/D router needs label selectors or at least one prefill and one decode URL")
        for url in prefill_urls:
            argv += ["--prefill", url]
        for url in decode_urls:
            argv += ["--decode", url]
    return [*argv, *extra_args]
