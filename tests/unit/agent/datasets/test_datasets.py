"""The device side of datasets: declarations, readers, the catalog, the policy."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from edgefleet.agent.datasets import registry
from edgefleet.agent.datasets.catalog import Catalog
from edgefleet.agent.datasets.policy import refusal
from edgefleet.agent.datasets.registry import DatasetSpec, RegistryError
from edgefleet.agent.datasets.sources import DatasetError, open_source
from edgefleet.agent.datasets.sources.base import approximate
from edgefleet.fed.messages import Invitation, Task
from edgefleet.fed.simulate import identities, invite
from edgefleet.fed.stats import params_for


def spec_for(path: Path, **policy: object) -> DatasetSpec:
    return registry.new_spec("d", str(path), **policy)  # type: ignore[arg-type]


def test_csv_schema_values_and_errors_that_name_no_value(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("temp,site,ok\n21.5,a,true\n,b,false\n19.123456789,c,true\n")
    source = open_source(spec_for(path))
    described = source.describe()
    assert [(c.name, c.type) for c in described.columns] == [
        ("temp", "number"),
        ("site", "string"),
        ("ok", "boolean"),
    ]
    assert described.rows == 3
    assert source.column("temp") == [21.5, 19.123456789]  # the empty cell is missing
    assert source.column("ok") == [1.0, 0.0, 1.0]
    with pytest.raises(DatasetError) as error:
        source.column("site")
    assert "row 1" in str(error.value) and "'a'" not in str(error.value)
    with pytest.raises(DatasetError, match="no column"):
        source.column("nope")


def test_json_lines_and_parquet(tmp_path: Path) -> None:
    lines = tmp_path / "r.jsonl"
    lines.write_text('{"x": 1, "y": "a"}\n\n{"x": 2.5, "z": null}\n')
    source = open_source(spec_for(lines))
    assert {c.name: c.type for c in source.describe().columns} == {
        "x": "number",
        "y": "string",
        "z": "number",
    }
    assert source.column("x") == [1.0, 2.5]
    lines.write_text('{"x": 1}\nnot json 12345.678\n')
    with pytest.raises(DatasetError) as error:
        source.column("x")
    assert "line 2" in str(error.value) and "12345" not in str(error.value)

    table = tmp_path / "r.parquet"
    pq.write_table(pa.table({"v": [1.5, None, 3.0], "n": [1, 2, 3], "s": ["a", "b", "c"]}), table)
    source = open_source(spec_for(table))
    described = source.describe()
    assert [(c.name, c.type) for c in described.columns] == [
        ("v", "number"),
        ("n", "integer"),
        ("s", "string"),
    ]
    assert described.rows == 3 and source.column("v") == [1.5, 3.0]
    with pytest.raises(DatasetError, match="not numeric"):
        source.column("s")


def test_sizes_are_reported_rounded() -> None:
    assert [approximate(n) for n in (0, 1, 7, 37, 95, 1234, 56_789)] == [
        0, 10, 10, 40, 100, 1000, 60_000
    ]  # fmt: skip


def test_registry_declare_copy_replace_remove(tmp_path: Path) -> None:
    state = tmp_path / "state"
    data = tmp_path / "r.csv"
    data.write_text("x\n1\n")
    spec = registry.new_spec("r", str(data), min_parties=4, allow_ops=["sum", "sum"])
    assert spec.allow_ops == ["sum"] and spec.path == str(data.resolve())
    copied = registry.copy_into(state, spec)
    registry.save(state, copied)
    assert Path(copied.path or "").read_text() == "x\n1\n"
    assert (state / "datasets.json").stat().st_mode & 0o777 == 0o600
    with pytest.raises(RegistryError, match="already declared"):
        registry.save(state, spec)
    registry.save(state, spec, replace=True)
    assert registry.load(state).datasets["r"].path == str(data.resolve())
    registry.remove(state, "r")
    assert registry.load(state).datasets == {}
    with pytest.raises(RegistryError):
        registry.remove(state, "r")
    for bad in ("no-such-file.csv", str(data.with_suffix(".xlsx"))):
        with pytest.raises(RegistryError):
            registry.new_spec("r", bad)
    with pytest.raises(RegistryError):
        registry.new_spec("bad name", str(data))
    stream = registry.new_spec("s", "stream:temps")
    assert (stream.source, stream.stream) == ("stream", "temps")


def test_catalog_sees_changes_to_the_registry_and_the_files(tmp_path: Path) -> None:
    state, data = tmp_path / "state", tmp_path / "r.csv"
    data.write_text("x\n1\n2\n")
    catalog = Catalog(state)
    assert catalog.refresh() is False and catalog.infos == []
    registry.save(state, registry.new_spec("r", str(data), allow_projects=["research"]))
    assert catalog.refresh() is True
    (info,) = catalog.infos
    assert (info.name, info.rows_approx, info.allow_projects) == ("r", 10, ["research"])
    assert catalog.refresh() is False
    data.write_text("x,y\n" + "3,4\n" * 40)
    os.utime(data, ns=(1, 1))  # a new mtime even within the same clock tick
    assert catalog.refresh() is True
    assert [c.name for c in catalog.infos[0].columns] == ["x", "y"]
    assert catalog.values("r", "x") == [3.0] * 40
    data.unlink()
    assert catalog.refresh() is True and catalog.infos[0].error


def invitation(parties: int = 5, threshold: int = 3, **task: object) -> Invitation:
    keys = identities([f"d{i}" for i in range(parties)])
    fields = {"project": "default", "project_id": "p1", "dataset": "r", "op": "mean"} | task
    made = invite("c1", keys, threshold, params_for(fields["op"], fields.get("bins")))  # type: ignore[arg-type]
    return made.model_copy(update={"task": Task(column="x", **fields)})  # type: ignore[arg-type]


def test_policy_checks_project_op_and_party_counts(tmp_path: Path) -> None:
    data = tmp_path / "r.csv"
    data.write_text("x\n1\n")
    spec = spec_for(data)
    assert refusal(spec, invitation(), "d0", "default") is None
    assert "not among" in (refusal(spec, invitation(), "d9", "default") or "")
    assert "no dataset" in (refusal(None, invitation(), "d0", "default") or "")
    assert "does not allow project" in (refusal(spec, invitation(), "d0", "other") or "")
    research = spec_for(data, allow_projects=["research"])
    assert "does not allow project" in (refusal(research, invitation(), "d0", "default") or "")
    assert refusal(research, invitation(project="research"), "d0", "default") is None
    by_id = spec_for(data, allow_projects=["p1"])
    assert refusal(by_id, invitation(), "d0", "elsewhere") is None
    counts = spec_for(data, allow_ops=["count"])
    assert "does not allow mean" in (refusal(counts, invitation(), "d0", "default") or "")
    five = spec_for(data, min_parties=5)
    assert "5 parties" in (refusal(five, invitation(parties=4), "d0", "default") or "")
    assert "threshold" in (refusal(five, invitation(), "d0", "default") or "")
    assert refusal(five, invitation(threshold=5), "d0", "default") is None
    wrong = invitation().model_copy(update={"params": params_for("variance")})
    assert "encoding" in (refusal(spec, wrong, "d0", "default") or "")
