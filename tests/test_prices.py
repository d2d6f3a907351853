"""The price table the size search ranks by: a sourced price for every GPU type, the stale warning, ``--price-file``,
and Azure sizes weighed and written like the other clouds' types."""

from __future__ import annotations

import datetime
import json
import re
from pathlib import Path
from typing import Any

import pytest

from pulumi_vllm.cli import main, size_objective
from pulumi_vllm.cloud_plan.instances import INSTANCE_TYPE_LABEL, INSTANCES
from pulumi_vllm.config import parse_stack_config
from pulumi_vllm.errors import UserError
from pulumi_vllm.models.facts import ModelFacts
from pulumi_vllm.models.resolve import resolve_facts
from pulumi_vllm.plan import plan_serving

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
CATALOG = "https://github.com/skypilot-org/skypilot-catalog/blob/"
REGIONS = {"aws": "us-east-1", "gcp": "us-central1", "azure": "eastus"}
CATALOG_FILES = {"aws": "/catalogs/v7/aws/vms.csv", "gcp": "/catalogs/v7/gcp/vms.csv", "azure": "/catalogs/v6/azure/vms.csv"}
NO_ON_DEMAND = {
    "p5e.48xlarge": "the catalog lists no on-demand price for it in any region (spot in us-east-2 only)",
    "Standard_ND96isr_H200_v5": "no row in the Azure catalog: its fetcher does not map the family",
    "Standard_ND96isr_MI300X_v5": "no row in the Azure catalog: its fetcher does not map the family",
}
"""Types of the instance table the catalog has no on-demand price for, and why."""
READ_ON = datetime.date(2026, 12, 7)
"""The day the catalog files were read: the newest any row's date can be."""
P5_CUT = datetime.date(2025, 6, 1)
"""The earliest day AWS's June 2025 P5 on-demand price cut can have taken effect."""
P5_BEFORE_CUT = 98.32
"""p5.48xlarge on demand in us-east-1 before that cut (USD/h)."""


@pytest.fixture(scope="module")
def table() -> size_objective.PriceTable:
    return size_objective.load_prices(today=datetime.date(2026, 12, 7))


@pytest.fixture(scope="module")
def llama() -> ModelFacts:
    facts, _ = resolve_facts(LLAMA)
    assert facts is not None
    return facts


@pytest.mark.parametrize("name", sorted(INSTANCES))
def test_every_gpu_type_has_a_sourced_on_demand_price_with_a_date_and_a_region(
    name: str, table: size_objective.PriceTable,
) -> None:
    row = INSTANCES[name]
    price = table.prices.get(name)
    if name in NO_ON_DEMAND:
        assert price is None or "on_demand_usd_per_hour" not in price, f"{name} is priced now: drop it from NO_ON_DEMAND"
        return
    assert price is not None, f"{name} has no price row"
    assert price["on_demand_usd_per_hour"] > 0
    assert price.get("spot_usd_per_hour", 0) < price["on_demand_usd_per_hour"]  # spot is a discount where listed
    assert price["region"] == REGIONS[row.provider]
    assert datetime.date.fromisoformat(price["date"]) <= READ_ON
    # The catalog file of the type's cloud, pinned to the commit it was read at.
    assert re.match(re.escape(CATALOG) + r"[0-9a-f]{40}" + re.escape(CATALOG_FILES[row.provider]), price["source"])


@pytest.mark.parametrize("name", sorted(name for name, row in INSTANCES.items() if row.provider == "gcp"))
def test_a_compute_engine_price_is_the_whole_machine_with_its_gpus(name: str, table: size_objective.PriceTable) -> None:
    """The catalog lists A2, A3 and G2 machines without their GPUs; the stored price adds the GPU row back."""
    price = table.prices[name]
    vm = re.search(r"\(vCPUs and memory, ([\d.]+) on demand / ([\d.]+) spot\)", price["source"])
    gpus = re.search(r"GPU row \(([\d.]+) / ([\d.]+)\)", price["source"])
    assert vm and gpus, price["source"]
    assert price["on_demand_usd_per_hour"] == pytest.approx(float(vm[1]) + float(gpus[1]), abs=1e-5)
    assert price["spot_usd_per_hour"] == pytest.approx(float(vm[2]) + float(gpus[2]), abs=1e-5)
    assert float(gpus[1]) > float(vm[1]) or INSTANCES[name].family == "g2-standard"  # the GPUs are most of an A2/A3


def test_as_of_is_the_oldest_on_demand_date_and_the_warning_starts_after_180_days(
    table: size_objective.PriceTable,
) -> None:
    dates = [datetime.date.fromisoformat(row["date"]) for row in table.prices.values() if "on_demand_usd_per_hour" in row]
    assert table.as_of == min(dates)
    last_fresh = size_objective.load_prices(today=table.as_of + datetime.timedelta(days=size_objective.STALE_AFTER_DAYS))
    assert last_fresh.warnings == ()
    stale = size_objective.load_prices(today=table.as_of + datetime.timedelta(days=size_objective.STALE_AFTER_DAYS + 1))
    assert len(stale.warnings) == 1 and "181 days old" in stale.warnings[0] and "--price-file" in stale.warnings[0]


def test_an_old_price_file_is_warned_about_by_its_own_as_of(tmp_path: Path) -> None:
    path = _write(tmp_path, {"g6e.xlarge": {"on_demand_usd_per_hour": 0.5}}, as_of="2026-01-01")
    warnings = size_objective.load_prices(path, today=READ_ON).warnings
    assert len(warnings) == 1 and f"{(READ_ON - datetime.date(2026, 1, 1)).days} days old" in warnings[0]
    assert "the file's as_of" in warnings[0] and str(path) in warnings[0] and "date_basis" not in warnings[0]


def test_the_aws_catalog_predates_the_p5_cut_and_its_rows_are_dated_before_it(
    table: size_objective.PriceTable,
) -> None:
    """The AWS catalog version still has the pre-cut P5 rate, so none of its rows can be newer than the cut."""
    assert table.hourly("p5.48xlarge")[0] == P5_BEFORE_CUT
    aws = {name: table.prices[name] for name, row in INSTANCES.items() if row.provider == "aws"}
    assert {datetime.date.fromisoformat(price["date"]) for price in aws.values()} == {P5_CUT - datetime.timedelta(days=1)}
    for price in aws.values():
        assert price["date_basis"].startswith("newest possible") and "predates" in price["source"]
        assert "June 2025" in price["source"] and "usage.ai" in price["source"]
    # The figures the cut made out of date say so, and the P5 ones name the cut's page.
    flagged = {name for name, price in aws.items() if "superseded" in price}
    assert flagged == {"p5.48xlarge", "p5en.48xlarge", "p4d.24xlarge", "p4de.24xlarge"}
    assert all("usage.ai" in aws[name]["superseded"] for name in ("p5.48xlarge", "p5en.48xlarge"))


def test_rows_of_unknown_age_are_dated_the_day_read_and_say_so(table: size_objective.PriceTable) -> None:
    for name, row in INSTANCES.items():
        price = table.prices.get(name)
        if row.provider == "aws" or price is None:
            continue
        assert datetime.date.fromisoformat(price["date"]) == READ_ON
        assert price["date_basis"].startswith("day read") and "no dated evidence bounds it" in price["source"]


def test_the_built_in_table_is_stale_today_and_the_warning_says_why_and_what_to_do(
    table: size_objective.PriceTable,
) -> None:
    age = (READ_ON - table.as_of).days
    assert age > size_objective.STALE_AFTER_DAYS
    assert len(table.warnings) == 1
    warning = table.warnings[0]
    assert f"{age} days old" in warning and f"as of {table.as_of}" in warning
    assert "--price-file" in warning and "date_basis" in warning and str(size_objective.PRICES_FILE) in warning


def test_on_demand_wins_over_the_capacity_block_rate(table: size_objective.PriceTable) -> None:
    assert table.hourly("p5.48xlarge")[2] == "on-demand"
    assert table.prices["p5.48xlarge"]["capacity_block_usd_per_hour"] == 39.33  # kept, labelled, not used
    assert table.hourly("p5e.48xlarge")[0] == 43.26 and table.hourly("p5e.48xlarge")[2] == "capacity block"


def _write(tmp_path: Path, prices: dict[str, Any], as_of: str = "2026-11-01") -> Path:
    path = tmp_path / "negotiated.json"
    path.write_text(json.dumps({"as_of": as_of, "prices": prices}))
    return path


def test_a_price_file_replaces_the_table_and_old_files_without_region_still_read(
    tmp_path: Path, llama: ModelFacts,
) -> None:
    # The shape before rows had a region: only on_demand and spot.
    path = _write(tmp_path, {"g6e.xlarge": {"on_demand_usd_per_hour": 0.5, "spot_usd_per_hour": 0.2}})
    negotiated = size_objective.load_prices(path, today=datetime.date(2026, 12, 7))
    assert negotiated.hourly("g6e.xlarge") == (0.5, 0.2, "on-demand") and negotiated.region("g6e.xlarge") is None
    assert negotiated.hourly("p5.48xlarge")[0] is None  # a price file replaces the table, it does not extend it
    objective = size_objective.Objective(20, 1024, 128, 500, 50)
    candidates, chosen = size_objective.search(llama, LLAMA, objective, negotiated)
    assert chosen is not None and candidates[chosen].instance.name == "g6e.xlarge"
    assert candidates[chosen].usd_per_hour == pytest.approx(0.5 * candidates[chosen].nodes)


@pytest.mark.parametrize(("row", "key"), [
    ({"on_demand_usd_per_hour": "cheap"}, "prices.g6e.xlarge.on_demand_usd_per_hour: 'cheap'"),
    ({"spot_usd_per_hour": -1}, "prices.g6e.xlarge.spot_usd_per_hour: -1"),
    ("1.0", "prices.g6e.xlarge: '1.0'"),
])
def test_a_bad_price_is_refused_naming_the_key(tmp_path: Path, row: Any, key: str) -> None:
    with pytest.raises(UserError, match=re.escape(key)):
        size_objective.load_prices(_write(tmp_path, {"g6e.xlarge": row}))


def test_an_azure_size_resolves_and_is_weighed_by_the_search(
    table: size_objective.PriceTable, llama: ModelFacts,
) -> None:
    objective = size_objective.Objective(20, 1024, 128, 500, 50)
    candidates, _ = size_objective.search(llama, LLAMA, objective, table)
    azure = [c for c in candidates if c.instance.provider == "azure"]
    assert {c.instance.name for c in azure} >= {"Standard_NC24ads_A100_v4", "Standard_ND96isr_H100_v5",
                                                 "Standard_NC40ads_H100_v5"}
    nc24 = next(c for c in azure if c.instance.name == "Standard_NC24ads_A100_v4")
    assert nc24.meets_latency and nc24.price_region == "eastus"
    assert nc24.usd_per_hour == pytest.approx(table.prices["Standard_NC24ads_A100_v4"]["on_demand_usd_per_hour"] * nc24.nodes)
    # A10 and T4 have no performance figures: their sizes are priced but not weighed for latency.
    assert not any(c.instance.gpu in ("A10", "T4") for c in candidates)


def test_a_search_without_a_gpu_chooses_a_priced_layout_with_a_cost_per_token(
    table: size_objective.PriceTable, llama: ModelFacts,
) -> None:
    objective = size_objective.Objective(20, 1024, 128, 500, 50)
    candidates, chosen = size_objective.search(llama, LLAMA, objective, table)
    assert chosen is not None
    best = candidates[chosen]
    assert best.price_kind == "on-demand" and best.usd_per_hour is not None
    per_million = best.usd_per_million_output_tokens
    assert per_million is not None and per_million == pytest.approx(
        best.usd_per_hour / (best.prediction.output_tokens_per_s * 3600) * 1e6)
    unpriced = [c for c in candidates if c.usd_per_hour is None]
    assert {c.instance.name for c in unpriced} <= set(NO_ON_DEMAND)


def test_an_azure_winner_writes_a_stack_for_an_existing_cluster(
    tmp_path: Path, llama: ModelFacts, monkeypatch: pytest.MonkeyPatch,
) -> None:
    negotiated = size_objective.load_prices(
        _write(tmp_path, {"Standard_NC24ads_A100_v4": {"on_demand_usd_per_hour": 0.01, "region": "eastus"}}),
        today=datetime.date(2026, 12, 7))
    objective = size_objective.Objective(20, 1024, 128, 500, 50)
    candidates, chosen = size_objective.search(llama, LLAMA, objective, negotiated)
    assert chosen is not None
    best = candidates[chosen]
    assert best.instance.name == "Standard_NC24ads_A100_v4"
    config = {key.removeprefix("pulumi-vllm:"): value
              for key, value in size_objective.stack_config("azure", LLAMA, best, objective).items()}
    assert config["resources"] == {"gpuType": "A100-80GB",
                                   "nodeSelector": {INSTANCE_TYPE_LABEL: "Standard_NC24ads_A100_v4"}}
    assert "cloud" not in config  # no EKS or GKE section: the AKS cluster exists already
    plan = plan_serving(parse_stack_config(config))
    assert plan.gpus_per_pod == 1
    monkeypatch.chdir(tmp_path)
    header = size_objective.write_stack("azure", LLAMA, best, objective).read_text().splitlines()[:2]
    assert "in eastus" in header[0] and "AKS cluster and a node pool of it must exist" in header[1]


def test_the_chosen_price_line_says_how_its_row_was_dated(
    table: size_objective.PriceTable, capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["size", "--model", LLAMA, "--rate", "20", "--input-tokens", "1024", "--output-tokens", "128",
                 "--ttft-p90", "500", "--itl-p90", "50"])
    assert code == 0
    out = capsys.readouterr().out
    chosen = re.search(r"^chosen:\s+\d+ x (\S+) ", out, re.MULTILINE)
    assert chosen is not None, out
    row = table.prices[chosen.group(1)]
    price_line = next(line for line in out.splitlines() if line.startswith("price:"))
    assert f"dated {row['date']}, {row['date_basis']}" in price_line
