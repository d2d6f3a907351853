"""Rules on the KV-cache tiers and the prefill/decode transfer (plain data, no Pulumi).

Every name is vLLM 0.32's, read in its sources:

- ``vllm:prompt_tokens_cached_by_source`` (``vllm/v1/metrics/loggers.py``, the counter registered at line 781):
  prompt tokens whose KV a cache supplied, by ``source``: ``device`` (the GPU's prefix cache), ``host`` (the
  CPU tier), ``disk`` (a secondary ``fs`` tier), ``p2p`` (another vLLM server: NIXL), ``external_unspecified``
  (a connector that does not say, such as LMCache) (``vllm/v1/metrics/cache_hit_source.py``). vLLM creates
  the series of every source at 0 when the server starts (loggers.py, lines 792-796), so a tier that never
  hits is a flat series, not a missing one. The CPU tier's manager reports ``host``
  (``vllm/v1/kv_offload/cpu/manager.py``), the ``fs`` tier ``disk`` (``vllm/v1/kv_offload/tiering/base.py``),
  ``NixlConnector`` ``p2p`` (``vllm/distributed/kv_transfer/kv_connector/v1/nixl/connector.py``), and a
  ``MultiConnector`` the source of the child that supplied the request's tokens (``multi_connector.py``).
- ``vllm:external_prefix_cache_queries`` / ``vllm:external_prefix_cache_hits`` (loggers.py, lines 686 and
  698): prompt tokens asked of the KV connector, and those it supplied.
- ``vllm:prompt_tokens_by_source`` (loggers.py, line 758) with ``source`` ``local_compute``,
  ``local_cache_hit`` or ``external_kv_transfer`` (``PromptTokenStats.ALL_SOURCES``, ``vllm/v1/metrics/stats.py``),
  next to ``vllm:prompt_tokens``.
- ``vllm:nixl_num_failed_transfers`` and ``vllm:nixl_num_kv_expired_reqs``
  (``vllm/distributed/kv_transfer/kv_connector/v1/nixl/stats.py``, lines 244 and 266), registered with
  ``NixlConnector`` (also inside a ``MultiConnector``, whose ``build_prom_metrics`` builds its children's):
  failed transfers (handshakes and notifications included) and, on a prefill server, requests whose KV
  expired before a decode server read it.

A pool of a disaggregated stack serves the same model name as the other pool, so these rules also select
the pods' ``app_kubernetes_io_instance`` (the pool's name): the decode pool's prompt tokens are not mixed
with the prefill pool's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pulumi_vllm.engine.metrics import (
    INSTANCE_SERIES_LABEL,
    PROMPT_TOKENS,
    RATE_WINDOW,
    Metric,
    StackSeries,
    _quote,
)

CACHED_BY_SOURCE = Metric(
    "vllm:prompt_tokens_cached_by_source", "counter",
    "Prompt tokens whose KV a cache supplied, by tier (device, host, disk, p2p, external_unspecified).", "short",
)
EXTERNAL_QUERIES = Metric(
    "vllm:external_prefix_cache_queries", "counter", "Prompt tokens asked of the KV connector (tiers, P/D).", "short"
)
EXTERNAL_HITS = Metric(
    "vllm:external_prefix_cache_hits", "counter", "Prompt tokens the KV connector supplied (tiers, P/D).", "short"
)
PROMPT_BY_SOURCE = Metric(
    "vllm:prompt_tokens_by_source", "counter",
    "Prompt tokens by source: local_compute, local_cache_hit, external_kv_transfer.", "short",
)

NIXL_FAILED = Metric(
    "vllm:nixl_num_failed_transfers", "counter", "Failed NIXL KV transfers (handshakes, notifications).", "short"
)
NIXL_EXPIRED = Metric(
    "vllm:nixl_num_kv_expired_reqs", "counter", "Requests whose KV expired on a prefill server unread.", "short"
)

KV_METRICS: tuple[Metric, ...] = (CACHED_BY_SOURCE, EXTERNAL_QUERIES, EXTERNAL_HITS, PROMPT_BY_SOURCE)
"""The metrics these rules read (besides ``vllm:prompt_tokens``) on any server with a KV connector."""
NIXL_METRICS: tuple[Metric, ...] = (NIXL_FAILED, NIXL_EXPIRED)
"""The metrics of ``NixlConnector``, read on the pools of a P/D stack over NIXL."""

TIER_SOURCES = ("host", "disk", "external_unspecified")
"""The ``source`` values of ``vllm:prompt_tokens_cached_by_source`` a stack's own tiers report under."""

LOCAL_COMPUTE = "local_compute"


@dataclass(frozen=True)
class KvThresholds:
    """The thresholds of the tier and transfer alerts (see ``monitoring.alerts``)."""

    tier_no_hit_minutes: int
    decode_recompute_percent: float
    transfer_failures_per_minute: float


def _selector(stack: StackSeries, extra: str = "") -> str:
    instance = f"{INSTANCE_SERIES_LABEL}={_quote(stack.instance)}"
    return stack.model(f"{instance},{extra}" if extra else instance)


def tier_hits(stack: StackSeries, source: str, window: str) -> str:
    """Tokens one tier supplied over ``window``, all the server's replicas together."""
    return f"sum(increase({CACHED_BY_SOURCE.series}{_selector(stack, f'source={_quote(source)}')}[{window}]))"


def connector_queries(stack: StackSeries, window: str) -> str:
    """Tokens asked of the KV connector over ``window``."""
    return f"sum(increase({EXTERNAL_QUERIES.series}{_selector(stack)}[{window}]))"


def locally_computed_percent(stack: StackSeries) -> str:
    """Share of the prompt tokens the servers computed themselves (neither cached nor transferred), in percent."""
    local = f"sum(rate({PROMPT_BY_SOURCE.series}{_selector(stack, f'source={_quote(LOCAL_COMPUTE)}')}[{RATE_WINDOW}]))"
    total = f"sum(rate({PROMPT_TOKENS.series}{_selector(stack)}[{RATE_WINDOW}]))"
    return f"{local} / {total} * 100"


def nixl_failures_per_minute(stack: StackSeries) -> str:
    """Failed NIXL transfers and expired KV leases per minute, all the pool's replicas together."""
    parts = [f"sum(rate({metric.series}{_selector(stack)}[{RATE_WINDOW}]))" for metric in NIXL_METRICS]
    return f"({' + '.join(parts)}) * 60"


TIER_NAMES = {"host": "CPU", "disk": "disk", "external_unspecified": "LMCache"}


def alert_rules(
    stack: StackSeries, tier_sources: tuple[str, ...], pool_role: str | None, thresholds: KvThresholds,
    nixl: bool = False,
) -> list[dict[str, Any]]:
    """``VllmKvTierNoHits`` per tier (not on a decode pool), on a decode pool ``VllmDecodeRecomputingPrompts``,
    and on a pool over NIXL (``nixl``) ``VllmKvTransferFailures``.

    A decode pool's connector is asked for the whole prompt, which the prefill pool sends; vLLM assigns a
    request to the first connector of a ``MultiConnector`` that matches tokens, the P/D one, so a decode
    server's tier serves only preempted requests and staying unused there is normal.
    """
    labels: dict[str, str] = {"namespace": stack.namespace, "model_name": stack.model_name}
    if pool_role:
        labels["pool"] = pool_role
    target = f"{stack.model_name} in {stack.namespace}" + (f", {pool_role} pool" if pool_role else "")
    rules: list[dict[str, Any]] = []
    if pool_role != "decode":
        window = f"{thresholds.tier_no_hit_minutes}m"
        for source in tier_sources:
            name = TIER_NAMES[source]
            rules.append({
                "alert": "VllmKvTierNoHits",
                # Queries first: an `a > 0 and on() b == 0` alert's $value is a's, the tokens asked for.
                "expr": f"{connector_queries(stack, window)} > 0 and on() {tier_hits(stack, source, window)} == 0",
                "for": "10m",
                "labels": {"severity": "warning", "tier": source, **labels},
                "annotations": {
                    "summary": f"The {name} KV-cache tier supplied no tokens for {window} ({target})",
                    "description": (
                        f"The KV connector was asked for {{{{ $value | humanize }}}} prompt tokens over {window} and "
                        f"the {name} tier (source {source}) supplied none: the tier is misconfigured, too small to "
                        "keep prefixes until they come back, or the prompts share no prefix beyond what the GPU "
                        "holds (then the tier only costs host memory)."
                    ),
                },
            })
    if pool_role == "decode":
        percent = thresholds.decode_recompute_percent
        rules.append({
            "alert": "VllmDecodeRecomputingPrompts",
            "expr": f"{locally_computed_percent(stack)} > {percent:g}",
            "for": "10m",
            "labels": {"severity": "warning", **labels},
            "annotations": {
                "summary": f"Decode servers compute prompts themselves ({target})",
                "description": (
                    f"{{{{ $value | humanize }}}}% of the decode pool's prompt tokens were computed locally "
                    f"(threshold {percent:g}%): their KV did not come from the prefill pool (requests that "
                    "bypassed the P/D router or came without the prefill server's kv_transfer_params, or failed "
                    "loads under kv_load_failure_policy recompute), so the decode GPUs run prefill."
                ),
            },
        })
    if nixl and pool_role:
        limit = thresholds.transfer_failures_per_minute
        rules.append({
            "alert": "VllmKvTransferFailures",
            "expr": f"{nixl_failures_per_minute(stack)} > {limit:g}",
            "for": "5m",
            "labels": {"severity": "warning", **labels},
            "annotations": {
                "summary": f"NIXL KV transfers fail ({target})",
                "description": (
                    f"{{{{ $value | humanize }}}} failed NIXL transfers or expired KV leases per minute (threshold "
                    f"{limit:g}): those requests fail (vLLM's default kv_load_failure_policy) or are recomputed; "
                    "check the UCX / libfabric transport between the pools and the side-channel port."
                ),
            },
        })
    return rules


def recording_rules(stack: StackSeries) -> list[dict[str, Any]]:
    """Tokens per second each cache tier supplied, and the share of the tokens asked of the connector it supplied."""
    by = f"namespace, model_name, {INSTANCE_SERIES_LABEL}"
    hits = f"sum by ({by}) (rate({EXTERNAL_HITS.series}{_selector(stack)}[{RATE_WINDOW}]))"
    queries = f"sum by ({by}) (rate({EXTERNAL_QUERIES.series}{_selector(stack)}[{RATE_WINDOW}]))"
    return [
        {
            "record": f"namespace_model_name_instance_source:vllm_prompt_tokens_cached_by_source_total:rate{RATE_WINDOW}",
            "expr": f"sum by ({by}, source) (rate({CACHED_BY_SOURCE.series}{_selector(stack)}[{RATE_WINDOW}]))",
        },
        {
            "record": f"namespace_model_name_instance:vllm_external_prefix_cache_hits:ratio_rate{RATE_WINDOW}",
            "expr": f"{hits} / {queries}",
        },
    ]


def rule_groups(
    stack: StackSeries, tier_sources: tuple[str, ...], pool_role: str | None, thresholds: KvThresholds,
    nixl: bool = False,
) -> list[dict[str, Any]]:
    """The KV-cache groups of a server with tiers or in a P/D pool; none for any other."""
    unknown = set(tier_sources) - set(TIER_SOURCES)
    if unknown:
        raise ValueError(f"not a tier's source: {sorted(unknown)}; one of {TIER_SOURCES}")
    if not tier_sources and pool_role is None:
        return []
    groups: list[dict[str, Any]] = []
    alerts = alert_rules(stack, tier_sources, pool_role, thresholds, nixl)
    if alerts:
        groups.append({"name": f"vllm-{stack.instance}.kv-cache-alerts", "rules": alerts})
    groups.append({"name": f"vllm-{stack.instance}.kv-cache", "interval": "30s", "rules": recording_rules(stack)})
    return groups
