"""The GPU platform: Helm values against the charts' own defaults, pinned versions, ordering under the mock
runtime, parts switched off, serving pods against the GPU nodes, and the review's words for chart changes."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemas import require_schema, validate_object
from stacks import PLATFORM_STACKS, stack_file

from pulumi_vllm.cli.render import render_config, render_stack
from pulumi_vllm.config import ConfigError
from pulumi_vllm.config.cluster import ClusterSpec
from pulumi_vllm.platform_plan.charts import CHARTS
from pulumi_vllm.platform_plan.values import PlatformNeeds, device_plugin_config, platform_releases
from pulumi_vllm.review.consequences import changed_object, removed_object

REPO = Path(__file__).resolve().parents[1]
LLAMA_8B = {"model": {"id": "meta-llama/Llama-3.1-8B-Instruct"}}


# 1. Every values key we set exists in the chart's own values.yaml (Helm ignores a misspelt key silently)


@cache
def chart_defaults(chart: str) -> dict[str, Any]:
    """The chart's published ``values.yaml`` (from ../shared/charts, or the schema cache)."""
    return yaml.safe_load(require_schema(f"charts/{chart}/values.yaml").read_text())


def unknown_paths(ours: Any, defaults: Any, path: str = "") -> list[str]:
    """Key paths of ``ours`` that the chart does not declare.

    A key is declared when the chart's defaults have it; below a key whose default is an empty map (``{}``)
    or null the chart takes any keys (free-form: ``nodeSelector: {}``, ``config.map: {}``).
    """
    if not isinstance(ours, dict):
        return []
    if defaults is None or defaults == {}:
        return []
    if not isinstance(defaults, dict):
        return [f"{path} (the chart's default is {defaults!r}, not a map)"]
    found = []
    for key, value in ours.items():
        where = f"{path}.{key}" if path else key
        if key not in defaults:
            found.append(where)
        else:
            found += unknown_paths(value, defaults[key], where)
    return found


def test_the_path_check_catches_a_misspelt_key() -> None:
    defaults = {"driver": {"enabled": True}, "nodeSelector": {}, "gfd": {"enabled": False}}
    assert unknown_paths({"driver": {"enable": False}}, defaults) == ["driver.enable"]
    assert unknown_paths({"drivers": {"enabled": False}}, defaults) == ["drivers"]
    assert unknown_paths({"nodeSelector": {"anything": "x"}, "gfd": {"enabled": True}}, defaults) == []


def _helm_documents(rendered: Any) -> list[dict[str, Any]]:
    return [document for filename, document in rendered.documents if filename.startswith("helm/")]


@pytest.mark.parametrize("stack", PLATFORM_STACKS)
def test_every_example_release_sets_only_keys_its_chart_declares(stack: str) -> None:
    releases = _helm_documents(render_stack(REPO, stack, env={}))
    # A platform may install no chart (GKE brings its GPU stack); these two examples install several.
    assert releases or stack not in {"gpu-platform", "platform-and-serving"}
    for release in releases:
        assert unknown_paths(release["values"], chart_defaults(release["chart"])) == [], release["release"]


CLUSTERS = st.fixed_dictionaries(
    {
        "gpu": st.one_of(
            st.fixed_dictionaries(
                {
                    "enablement": st.just("gpu-operator"),
                    "driver": st.booleans(),
                    "toolkit": st.booleans(),
                    "dcgmExporter": st.booleans(),
                    "sharing": st.fixed_dictionaries(
                        {"timeSlicingReplicas": st.integers(1, 8), "migStrategy": st.sampled_from(["none", "single", "mixed"])}
                    ),
                }
            ),
            st.fixed_dictionaries(
                {
                    "enablement": st.just("device-plugin"),
                    "dcgmExporter": st.booleans(),
                    "runtimeClass": st.booleans(),
                    "sharing": st.fixed_dictionaries(
                        {"timeSlicingReplicas": st.integers(1, 8), "migStrategy": st.sampled_from(["none", "single", "mixed"])}
                    ),
                }
            ),
            st.fixed_dictionaries({"enablement": st.just("none")}),
        ),
        "gpuNodes": st.fixed_dictionaries(
            {
                "taints": st.lists(
                    st.fixed_dictionaries(
                        {
                            "key": st.sampled_from(["nvidia.com/gpu", "dedicated", "sku"]),
                            "value": st.sampled_from(["present", "gpu", "llm"]),
                            "effect": st.sampled_from(["NoSchedule", "NoExecute", "PreferNoSchedule"]),
                        }
                    ),
                    max_size=2,
                )
            }
        ),
        "operators": st.fixed_dictionaries({name: st.sampled_from(["auto", "on", "off"]) for name in ("kuberay", "leaderworkerset", "keda")}),
        "monitoring": st.fixed_dictionaries({"prometheus": st.sampled_from(["kube-prometheus-stack", "external", "none"])}),
    }
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cluster=CLUSTERS, needs=st.builds(PlatformNeeds, st.booleans(), st.booleans(), st.booleans()))
def test_generated_platforms_set_only_declared_keys(cluster: dict[str, Any], needs: PlatformNeeds) -> None:
    spec = ClusterSpec.model_validate(cluster)
    for release in platform_releases(spec, needs):
        assert unknown_paths(release.values, chart_defaults(release.chart.chart)) == [], (release.chart.key, release.values)
        # The device plugin's config is a file of its own format, inside a free-form map: it must parse.
        for text in (release.values.get("config", {}).get("map", {}) or {}).values():
            assert yaml.safe_load(text)["version"] == "v1"


def test_time_slicing_is_written_as_the_device_plugin_reads_it() -> None:
    spec = ClusterSpec.model_validate({"gpu": {"sharing": {"timeSlicingReplicas": 4, "migStrategy": "single"}}})
    (plugin,) = [release for release in platform_releases(spec) if release.chart.key == "nvidia-device-plugin"]
    document = yaml.safe_load(plugin.values["config"]["map"]["default"])
    assert document == {
        "version": "v1",
        "flags": {"migStrategy": "single"},
        "sharing": {"timeSlicing": {"resources": [{"name": "nvidia.com/gpu", "replicas": 4}]}},
    }
    assert plugin.values["config"]["default"] == "default"
    assert yaml.safe_load(device_plugin_config(ClusterSpec().gpu.sharing)) == {"version": "v1", "flags": {"migStrategy": "none"}}


# 2. Pinned versions are the charts' current releases, and the chart names are the charts' own


def _readme_versions() -> dict[str, str]:
    text = require_schema("charts/README.md").read_text()
    versions = {}
    for line in text.splitlines():
        cells = [cell.strip().strip("`") for cell in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0].endswith("/values.yaml"):
            # "chart v26.7.0 / app v26.7.0 (...)" -> "v26.7.0"
            versions[cells[0].split("/")[0]] = cells[4].split()[1]
    return versions


@pytest.mark.parametrize("key", sorted(CHARTS))
def test_each_pinned_chart_is_the_release_users_pin(key: str) -> None:
    chart = CHARTS[key]
    published = _readme_versions()[chart.chart]
    assert chart.version.lstrip("v") == published.lstrip("v")
    # OCI charts (lws) are published without the tag's "v"; the GPU Operator's chart keeps it.
    assert chart.version == (published if chart.chart == "gpu-operator" else published.lstrip("v"))
    chart_file = yaml.safe_load(require_schema(f"charts/{chart.chart}/Chart.yaml").read_text())
    assert chart_file["name"] == chart.chart


# 3. Under the mock runtime: what is created, in what order, and what goes when a part is switched off


def _types(rendered: Any) -> set[tuple[str, str]]:
    return {(reg.type, reg.name) for reg in rendered.run.registrations}


def test_operators_come_before_the_custom_resources_that_need_them() -> None:
    rendered = render_config(
        {
            "name": "big",
            "model": {"id": "meta-llama/Llama-3.1-405B-Instruct-FP8"},
            "parallelism": {"tensorParallelSize": 8, "pipelineParallelSize": 2, "gpusPerNode": 8, "backend": "leaderworkerset"},
            "cache": {"accessMode": "ReadWriteMany"},
            "cluster": {"gpu": {"enablement": "gpu-operator"}},
        }
    )
    by_urn = {reg.urn: reg for reg in rendered.run.registrations}
    (lws_release,) = [reg for reg in rendered.run.registrations if reg.type == "kubernetes:helm.sh/v3:Release" and reg.name.endswith("-lws")]
    for reg in rendered.run.registrations:
        if reg.custom and reg.parent and "VllmServing" not in reg.type and not reg.name.startswith("big-platform"):
            # Every serving resource (the LeaderWorkerSet included) waits for the LWS controller and the GPU stack.
            assert lws_release.urn in reg.dependencies, (reg.type, reg.name, [by_urn[d].name for d in reg.dependencies if d in by_urn])
    kinds = {by_urn[d].name for d in next(r for r in rendered.run.registrations if r.type.endswith(":LeaderWorkerSet")).dependencies if d in by_urn}
    assert {"big-platform-lws", "big-platform-gpu-operator"} <= kinds


def test_auto_operators_follow_the_serving_backend() -> None:
    base = {**LLAMA_8B, "cluster": {}}
    plain = {reg.name for reg in render_config(base).run.registrations if reg.type.endswith(":Release")}
    assert plain == {"vllm-platform-nvidia-device-plugin", "vllm-platform-dcgm-exporter"}
    forced = render_config({**LLAMA_8B, "cluster": {"operators": {"kuberay": "on", "keda": "on"}}})
    added = {reg.name for reg in forced.run.registrations if reg.type.endswith(":Release")} - plain
    assert added == {"vllm-platform-kuberay-operator", "vllm-platform-keda"}


@pytest.mark.parametrize(
    ("switch", "expected"),
    [
        ({"gpu": {"dcgmExporter": False}}, {("kubernetes:helm.sh/v3:Release", "gpu-platform-dcgm-exporter")}),
        ({"gpu": {"runtimeClass": False}}, {("kubernetes:node.k8s.io/v1:RuntimeClass", "gpu-platform-runtime-class")}),
        ({"priorityClass": {"enabled": False}}, {("kubernetes:scheduling.k8s.io/v1:PriorityClass", "gpu-platform-priority-class")}),
        ({"operators": {"kuberay": "off"}}, {("kubernetes:helm.sh/v3:Release", "gpu-platform-kuberay-operator")}),
        ({"monitoring": {"prometheus": "none"}}, {("kubernetes:helm.sh/v3:Release", "gpu-platform-kube-prometheus-stack")}),
        (
            {"namespaces": []},
            {
                ("kubernetes:core/v1:Namespace", "gpu-platform-ns-vllm"),
                ("kubernetes:core/v1:LimitRange", "gpu-platform-ns-vllm-limits"),
                ("pulumi-vllm:index:GpuQuota", "gpu-platform-ns-vllm-gpu-quota"),
                ("kubernetes:core/v1:ResourceQuota", "gpu-platform-ns-vllm-gpu-quota-quota"),
            },
        ),
        ({"storageClass": None}, {("kubernetes:storage.k8s.io/v1:StorageClass", "gpu-platform-storage-class")}),
    ],
)
def test_switching_a_part_off_removes_exactly_its_resources(switch: dict[str, Any], expected: set[tuple[str, str]]) -> None:
    stack = yaml.safe_load(stack_file("gpu-platform").read_text())["config"]
    values = {key.split(":", 1)[1]: value for key, value in stack.items()}
    full = render_config(values)
    cluster = dict(values["cluster"])
    for key, value in switch.items():
        if isinstance(value, dict):
            cluster[key] = {**(cluster.get(key) or {}), **value}
        elif value is None:
            cluster.pop(key, None)
        else:
            cluster[key] = value
    reduced = render_config({**values, "cluster": cluster})
    assert _types(full) - _types(reduced) == expected
    assert _types(reduced) <= _types(full)


def test_a_platform_only_stack_creates_no_serving_and_objects_are_schema_valid() -> None:
    rendered = render_stack(REPO, "gpu-platform", env={})
    assert rendered.config is None
    assert not any("VllmServing" in reg.type for reg in rendered.run.registrations)
    objects = [document for _, document in rendered.documents if isinstance(document, dict) and "kind" in document]
    assert {document["kind"] for document in objects} >= {"RuntimeClass", "PriorityClass", "Namespace", "LimitRange", "ResourceQuota", "StorageClass"}
    for document in objects:
        validate_object(document)
    assert rendered.run.outputs["prometheusUrl"] == "http://kube-prometheus-stack-prometheus.monitoring.svc:9090"


def test_rendered_release_files_carry_the_pinned_chart() -> None:
    rendered = render_stack(REPO, "gpu-platform", env={})
    files = dict(rendered.documents)
    lws = files["helm/lws.yaml"]
    assert (lws["chart"], lws["repository"], lws["version"], lws["namespace"]) == ("lws", "oci://registry.k8s.io/lws/charts", "0.10.0", "lws-system")
    plugin = files["helm/nvidia-device-plugin.yaml"]
    assert plugin["repository"] == "https://nvidia.github.io/k8s-device-plugin" and plugin["values"]["gfd"] == {"enabled": True}


# 4. Serving pods against the GPU nodes, refused before anything is created


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            {"resources": {"tolerations": []}, "cluster": {}},
            "resources.tolerations: the GPU nodes' taint nvidia.com/gpu=present:NoSchedule (cluster.gpuNodes.taints) is not tolerated",
        ),
        (
            {"cluster": {"gpuNodes": {"taints": [{"key": "dedicated", "value": "llm", "effect": "NoExecute"}]}}},
            "the GPU nodes' taint dedicated=llm:NoExecute",
        ),
        (
            {"resources": {"nodeSelector": {"pool": "cpu"}}, "cluster": {"gpuNodes": {"labels": {"pool": "gpu"}}}},
            "resources.nodeSelector.pool: 'cpu' is not accepted: the GPU nodes carry pool=gpu",
        ),
        (
            {"resources": {"nodeSelector": {"team": "a"}}, "cluster": {"gpuNodes": {"labels": {"pool": "gpu"}}}},
            "resources.nodeSelector.team: no GPU node carries the label team",
        ),
        (
            {"parallelism": {"tensorParallelSize": 2}, "cluster": {"gpu": {"sharing": {"timeSlicingReplicas": 4}}}},
            "cluster.gpu.sharing.timeSlicingReplicas: 4 is not accepted with 2 GPUs per pod",
        ),
        (
            {"namespace": "vllm", "replicas": 2, "cache": {"accessMode": "ReadWriteMany"}, "cluster": {"namespaces": [{"name": "vllm", "gpus": 1}]}},
            "cluster.namespaces.vllm.gpus: 1 is not accepted: the serving stack in that namespace requests 2 GPU(s)",
        ),
        (
            {"resources": {"gpuResourceName": "amd.com/gpu"}, "cluster": {}},
            "resources.gpuResourceName: 'amd.com/gpu' is not advertised by the platform",
        ),
        (
            {"cluster": {"gpu": {"enablement": "device-plugin", "driver": True}}},
            "cluster.gpu.driver: true is not accepted with enablement 'device-plugin'",
        ),
    ],
)
def test_serving_pods_that_no_gpu_node_could_take_are_refused(values: dict[str, Any], expected: str) -> None:
    from pulumi_vllm.config import parse_stack_config
    from pulumi_vllm.plan import plan_serving

    with pytest.raises(ConfigError) as raised:
        plan_serving(parse_stack_config({**LLAMA_8B, **values}))
    assert expected in str(raised.value)
    assert str(raised.value).count("pulumi-vllm:") >= 1


def test_the_default_toleration_fits_the_default_taint() -> None:
    rendered = render_config({**LLAMA_8B, "cluster": {}})
    assert rendered.plan is not None and rendered.config is not None and rendered.config.cluster is not None


def test_a_platform_stack_with_a_misspelt_key_names_it() -> None:
    from pulumi_vllm.config import load_program_config

    with pytest.raises(ConfigError) as raised:
        load_program_config({"pulumi-vllm:cluster": '{"gpu": {"enablment": "gpu-operator"}}'})
    assert "pulumi-vllm:cluster.gpu.enablment: unknown key" in str(raised.value)


# 5. The review's words for chart changes


def _release(values: dict[str, Any], version: str = "0.20.0") -> dict[str, Any]:
    return {"release": "nvidia-device-plugin", "chart": "nvidia-device-plugin", "repository": "https://nvidia.github.io/k8s-device-plugin",
            "version": version, "namespace": "nvidia-device-plugin", "values": values}


def test_review_names_chart_upgrades_and_sharing_changes() -> None:
    spec = lambda replicas: ClusterSpec.model_validate({"gpu": {"sharing": {"timeSlicingReplicas": replicas}}})
    values = {replicas: next(r.values for r in platform_releases(spec(replicas)) if r.chart.key == "nvidia-device-plugin") for replicas in (1, 4)}
    texts = [c.text for c in changed_object(_release(values[1], "0.19.0"), _release(values[4]))]
    assert "NVIDIA device plugin 0.19.0 -> 0.20.0: Helm upgrades the release; its pods roll to the new version" in texts
    assert any(text.startswith("time-slicing replicas 1 -> 4: each GPU is shared by 4 pods") for text in texts)
    operator = {"release": "gpu-operator", "chart": "gpu-operator", "repository": "x", "namespace": "gpu-operator"}
    texts = [c.text for c in changed_object({**operator, "version": "v26.3.0", "values": {}}, {**operator, "version": "v26.7.0", "values": {}})]
    assert texts == ["GPU Operator v26.3.0 -> v26.7.0: Helm upgrades the release; its pods roll to the new version"]
    assert "Helm uninstalls NVIDIA device plugin" in removed_object(_release({}))[0].text


def test_operations_need_the_platform_parts_they_use() -> None:
    from pulumi_vllm.config import parse_stack_config
    from pulumi_vllm.plan import plan_serving

    ops = {**LLAMA_8B, "monitoring": {"enabled": True}, "cluster": {"monitoring": {"prometheus": "none"}}}
    with pytest.raises(ConfigError, match="monitoring.enabled: true is not accepted with cluster.monitoring.prometheus 'none'"):
        plan_serving(parse_stack_config(ops))
    scaled = {**LLAMA_8B, "autoscaling": {"enabled": True, "maxReplicas": 1},
              "cluster": {"monitoring": {"prometheus": "external"}, "operators": {"keda": "off"}}}
    with pytest.raises(ConfigError, match="the ScaledObject needs KEDA"):
        plan_serving(parse_stack_config(scaled))
    scaled["cluster"] = {"monitoring": {"prometheus": "kube-prometheus-stack"}}
    releases = {reg.name for reg in render_config(scaled).run.registrations if reg.type.endswith(":Release")}
    assert "vllm-platform-keda" in releases  # auto: the stack autoscales


def test_the_autoscaler_queries_the_prometheus_the_platform_installs() -> None:
    from pulumi_vllm.config.operations import AutoscalingSpec
    from pulumi_vllm.platform_plan.charts import PROMETHEUS_URL

    assert AutoscalingSpec().prometheus.server_address == PROMETHEUS_URL


def test_serving_pods_run_at_the_platforms_priority_class() -> None:
    def pod(values: dict[str, Any]) -> dict[str, Any]:
        rendered = render_config(values)
        (deployment,) = [doc for _, doc in rendered.documents if isinstance(doc, dict) and doc.get("kind") == "Deployment"]
        return deployment["spec"]["template"]["spec"]

    assert pod({**LLAMA_8B, "cluster": {}})["priorityClassName"] == "vllm-inference"
    assert pod({**LLAMA_8B, "cluster": {"priorityClass": {"name": "llm"}}})["priorityClassName"] == "llm"
    assert "priorityClassName" not in pod({**LLAMA_8B, "cluster": {"priorityClass": {"enabled": False}}})
    assert "priorityClassName" not in pod(LLAMA_8B)
