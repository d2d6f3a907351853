"""The package's layout stays what docs/architecture.md says: one-way imports, a pure core, documented parts."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "components" / "pulumi_vllm"
ARCHITECTURE = REPO / "docs" / "architecture.md"

PURE_CORE = ("config", "models", "capacity", "engine", "distributed", "platform_plan", "cloud_plan", "errors")
"""Sub-packages and modules that decide everything without Pulumi."""
PULUMI_MODULES = ("pulumi", "pulumi_kubernetes", "pulumi_docker", "pulumi_policy", "pulumi_aws", "pulumi_gcp")
SHARED_MODULES = {"errors", "plan", "program"}
"""Modules allowed directly in the package besides __init__ and __main__."""


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str) -> set[str]:
    """Every module ``name`` imports, at module level or inside functions (statically)."""
    tree = ast.parse(MODULES[name].read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                # ``from package import submodule`` imports the submodule; otherwise the module itself.
                found.add(candidate if candidate in MODULES else node.module)
    return found


GRAPH = {name: {other for other in imports_of(name) if other in MODULES and other != name} for name in MODULES}


def _part(name: str) -> str:
    return name.split(".")[1] if "." in name else ""


def test_no_two_modules_import_each_other() -> None:
    # Tarjan-free check: a module reaches itself only through a cycle.
    def reach(start: str) -> set[str]:
        seen: set[str] = set()
        todo = list(GRAPH[start])
        while todo:
            current = todo.pop()
            if current not in seen:
                seen.add(current)
                todo.extend(GRAPH[current])
        return seen

    cycles = sorted(name for name in MODULES if name in reach(name))
    assert cycles == [], f"modules on an import cycle: {cycles}"


def test_the_import_graph_sees_function_level_imports() -> None:
    # docker/serving.py imports the Ray cluster component inside a function, only when it is needed.
    assert "pulumi_vllm.docker.ray_cluster" in GRAPH["pulumi_vllm.docker.serving"]


@pytest.mark.parametrize("name", sorted(n for n in MODULES if _part(n) in PURE_CORE or n == "pulumi_vllm.plan"))
def test_the_pure_core_imports_no_pulumi_and_nothing_above_it(name: str) -> None:
    imported = imports_of(name)
    pulumi = sorted(m for m in imported if m.split(".")[0] in PULUMI_MODULES)
    assert pulumi == [], f"{name} imports {pulumi}"
    above = sorted(m for m in GRAPH[name] if _part(m) not in PURE_CORE)
    assert above == [], f"{name} (pure core) imports {above}"


def test_components_do_not_import_render_review_or_the_command_line() -> None:
    offenders = {
        name: sorted(m for m in GRAPH[name] if _part(m) in {"render", "review", "cli", "policy", "provider"})
        for name in MODULES
        if _part(name) in {"kubernetes", "docker", "cloud_clusters"} or name == "pulumi_vllm.program"
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_only_the_command_line_imports_the_command_line() -> None:
    offenders = sorted(
        name for name in MODULES if _part(name) != "cli" and any(_part(m) == "cli" for m in GRAPH[name])
    )
    assert offenders == ["pulumi_vllm.__main__"]


def test_few_modules_sit_directly_in_the_package() -> None:
    top = {path.stem for path in PACKAGE.glob("*.py")} - {"__init__", "__main__"}
    assert top <= SHARED_MODULES and len(top) <= 6, top


SUBPACKAGES = sorted(path.parent.name for path in PACKAGE.glob("*/__init__.py"))


@pytest.mark.parametrize("package", SUBPACKAGES)
def test_every_subpackage_says_what_it_is(package: str) -> None:
    docstring = ast.get_docstring(ast.parse((PACKAGE / package / "__init__.py").read_text()))
    assert docstring and len(docstring.split()) >= 15, f"pulumi_vllm.{package} has no real docstring"


def test_the_architecture_page_names_exactly_the_subpackages() -> None:
    text = ARCHITECTURE.read_text()
    table = text.split("## Sub-packages of `pulumi_vllm`", 1)[1]
    named = sorted(re.findall(r"^\| `([a-z_]+)` \|", table, re.MULTILINE))
    assert named == SUBPACKAGES
    layers = text.split("## Layers", 1)[1].split("##", 1)[0]
    in_layers = set(re.findall(r"`([a-z_]+)`", layers))
    assert in_layers >= set(SUBPACKAGES)
    assert in_layers <= set(SUBPACKAGES) | SHARED_MODULES


def test_the_readme_links_the_architecture_page() -> None:
    assert "docs/architecture.md" in (REPO / "README.md").read_text()
