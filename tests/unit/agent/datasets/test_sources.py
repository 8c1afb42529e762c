"""The new dataset sources: a SQLite file read through a table or a declared
SELECT (read-only), and a collected-data stream whose records stay available
for computations after the buffer uploaded and deleted them."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from edgefleet.agent.data.buffer import Buffer
from edgefleet.agent.data.records import Incoming
from edgefleet.agent.datasets import registry
from edgefleet.agent.datasets.sources import DatasetError, open_source
from edgefleet.agent.datasets.sources.stream import BUFFER


def test_sqlite_table_and_query_read_only(tmp_path: Path) -> None:
    db = tmp_path / "plant.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE readings (temp REAL, site TEXT, ok INTEGER)")
        conn.executemany(
            "INSERT INTO readings VALUES (?, ?, ?)",
            [(20.5, "a", 1), (22.0, "b", 0), (None, "a", 1)],
        )
    table = registry.new_spec("plant", str(db), table="readings")
    assert table.source == "sqlite"
    described = open_source(table).describe()
    assert [(c.name, c.type) for c in described.columns] == [
        ("temp", "number"), ("site", "string"), ("ok", "integer")
    ]  # fmt: skip
    assert open_source(table).rows(["site", "temp"]) == [("a", 20.5), ("b", 22.0), ("a", None)]
    query = registry.new_spec("hot", str(db), query="SELECT temp * 2 AS t2 FROM readings")
    assert open_source(query).column("t2") == [41.0, 44.0]
    # the owner's query cannot write: the file is opened read-only
    writer = registry.new_spec("bad", str(db), query="DELETE FROM readings RETURNING temp")
    with pytest.raises(DatasetError, match=r"plant\.sqlite"):
        open_source(writer).rows(["temp"])
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM readings").fetchone() == (3,)


def test_stream_records_outlive_their_upload(tmp_path: Path) -> None:
    """Declared through the CLI, the stream keeps what the buffer stores from then on
    (and what it still held), even after the uploader's acknowledgement deleted it,
    up to ``--retain`` records (the oldest go first)."""
    buffer = Buffer(tmp_path / BUFFER, quota_bytes=10_000_000)
    buffer.write([Incoming("job1", "air", [(None, json.dumps({"pm25": 3.5, "room": "k"}))])])
    done = subprocess.run(
        [sys.executable, "-m", "edgefleet", "agent", "datasets", "add", "air", "stream:air",
         "--state-dir", str(tmp_path), "--query-budget", "5/1h", "--dp-epsilon", "2",
         "--retain", "2"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    buffer.write([Incoming("job1", "air", [(None, json.dumps({"pm25": 7.25, "room": "b"}))])])
    buffer.write([Incoming("job1", "other", [(None, json.dumps({"pm25": 1000.0}))])])
    buffer.write([Incoming("job1", "air", [(None, json.dumps({"pm25": 9.0, "room": "k"}))])])
    buffer.acknowledge(buffer.batch(100, 1_000_000))  # uploaded: gone from the buffer
    assert buffer.batch(100, 1_000_000) == []
    # Uploaded straight from the journal, they reach buffer.db (and the trigger)
    # at the next move: the uploader's backlog report (every 5 s) makes one.
    buffer.stats()
    assert buffer.db.execute("SELECT count(*) FROM records").fetchone() == (0,)
    spec = registry.load(tmp_path).datasets["air"]
    assert spec.privacy.query_budget == 5 and spec.privacy.budget_window == 3600
    assert spec.privacy.dp_epsilon == 2
    source = open_source(spec)
    assert source.rows(["room", "pm25"]) == [("b", 7.25), ("k", 9.0)]  # --retain 2: newest two
    assert {c.name for c in source.describe().columns} == {"pm25", "room"}
    buffer.close()


def test_every_file_format_gives_the_same_contribution(tmp_path: Path) -> None:
    """CSV (text cells), JSON lines and Parquet (typed cells) fold into the same
    vector for a filtered, grouped task: formats differ, the statistic does not."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from edgefleet.fed.messages import Task
    from edgefleet.fed.stats import contribution

    rows = [(21.5, "a", 1), (19.0, "b", 0), (None, "a", 1), (30.25, "a", 0), (12.0, "b", 1)]
    csv = tmp_path / "t.csv"
    csv.write_text(
        "temp,site,ok\n" + "".join(f"{'' if t is None else t},{s},{o}\n" for t, s, o in rows)
    )
    jsonl = tmp_path / "t.jsonl"
    jsonl.write_text(
        "".join(json.dumps({"temp": t, "site": s, "ok": bool(o)}) + "\n" for t, s, o in rows)
    )
    parquet = tmp_path / "t.parquet"
    pq.write_table(
        pa.table(
            {"temp": [r[0] for r in rows], "site": [r[1] for r in rows], "ok": [r[2] for r in rows]}
        ),
        parquet,
    )
    task = Task(
        project="p", dataset="t", op="variance", column="temp",
        where=[{"column": "ok", "op": "==", "value": True}], group_by="site", groups=["a", "b"],
    )  # fmt: skip
    names = ["temp", "ok", "site"]
    vectors = [
        contribution(task, names, open_source(registry.new_spec("t", str(path))).rows(names), 3)
        for path in (csv, jsonl, parquet)
    ]
    # group a: rows with ok: 21.5 (and a missing temp); group b: 12.0
    assert vectors[0] == [1.0, 1.0, 21.5, 21.5**2, 1.0, 1.0, 12.0, 144.0]
    assert vectors[1] == vectors[0] and vectors[2] == vectors[0]
