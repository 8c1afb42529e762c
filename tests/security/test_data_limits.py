"""A device cannot fill the server: records per device and job, files per job
and the size of one file are each capped by a setting; past a cap the agent
is told why and drops what the server will never take, and nothing else is
held up."""

from __future__ import annotations

import os
from pathlib import Path

import httpx

from tests.conftest import Fleet
from tests.e2e.test_data import post, summary, url_probe, workload_url
from tests.support.procs import wait_for


def test_records_and_files_past_their_limits_are_discarded_with_the_reason(
    fleet: Fleet, tmp_path: Path
) -> None:
    server = fleet.start_server(
        extra_args=[
            "--data-max-records-per-device",
            "5",
            "--data-max-files-per-job",
            "1",
            "--data-file-max-bytes",
            "100000",
        ]
    )
    agent = fleet.start_agent("filler")
    device = agent.wait_enrolled()
    compose = url_probe(tmp_path)
    with server.client() as client:
        client.create_application("filler", "1", spec=compose)
        job = client.create_job("filler", devices=[device])["id"]
    wait_for(lambda: (tmp_path / f"url-{device}").exists(), 60, what="workload started")
    url = workload_url(tmp_path, device)

    for n in range(5):
        assert post(url + "?stream=m", {"n": n}).status_code == 201
    wait_for(lambda: summary(server, job)["records"] == 5, 30, what="five records stored")
    # The sixth and later: the agent takes them (durable), the server refuses them.
    for n in range(5, 9):
        assert post(url + "?stream=m", {"n": n}).status_code == 201
    wait_for(lambda: "data_max_records_per_device 5" in agent.log(), 30, what="the agent told why")
    assert summary(server, job)["records"] == 5

    small, big = os.urandom(1000), os.urandom(150_000)
    assert httpx.post(url + "/files", params={"name": "a.bin"}, content=small).status_code == 201
    with server.client() as client:
        wait_for(lambda: len(client.data_files(job)) == 1, 30, what="the first file stored")
    assert httpx.post(url + "/files", params={"name": "b.bin"}, content=small).status_code == 201
    assert httpx.post(url + "/files", params={"name": "c.bin"}, content=big).status_code == 201
    wait_for(
        lambda: "data_max_files_per_job 1" in agent.log() and "data_file_max_bytes" in agent.log(),
        30,
        what="the agent told why for both files",
    )
    with server.client() as client:
        assert [f["name"] for f in client.data_files(job)] == ["a.bin"]

    def drained() -> bool:
        s = summary(server, job)
        return s["backlog"] == 0

    wait_for(drained, 30, what="the agent's queue drained (nothing held up)")
