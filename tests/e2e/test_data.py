"""Collected data through real processes (process runtime, SQLite and
PostgreSQL): a workload's URL, records and files from device to server, the
API's pages, filters, downloads and summary, the CLI, who may read, and
records the server will not take (deleted job) never blocking the queue."""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq

from tests.conftest import Fleet
from tests.support.procs import ADMIN_TOKEN, AgentProc, wait_for, wait_for_line


def workload_url(tmp_path: Path, device: str) -> str:
    return wait_for_line(tmp_path / f"url-{device}", what="the workload's data URL")


def url_probe(tmp_path: Path) -> dict[str, Any]:
    """A process service that writes its data URL where the test reads it, then idles."""
    return {
        "services": {
            "probe": {
                "x-edgefleet-runtime": "process",
                "command": [
                    "sh",
                    "-c",
                    f'echo "$$EDGEFLEET_DATA_URL" > {tmp_path}/url-$$EDGEFLEET_DEVICE_ID; '
                    "exec sleep 100000",
                ],
            }
        }
    }


def token_for(agent: AgentProc, job: str) -> str:
    secret = bytes.fromhex((agent.state_dir / "data" / "secret").read_text().strip())
    return base64.urlsafe_b64encode(
        hmac.new(secret, job.encode(), hashlib.sha256).digest()[:24]
    ).decode()


def summary(server: Any, job: str) -> dict[str, Any]:
    with server.client() as client:
        result: dict[str, Any] = client.data_summary(job)
        return result


def post(url: str, body: Any = None, **kw: Any) -> httpx.Response:
    if body is not None:
        kw["json"] = body
    return httpx.post(url, timeout=10, **kw)


def test_records_and_files_from_workload_to_api(
    fleet: Fleet, database_url: str | None, tmp_path: Path
) -> None:
    server = fleet.start_server()
    agent = fleet.start_agent("collector")
    device = agent.wait_enrolled()
    compose = url_probe(tmp_path)
    with server.client() as client:
        client.create_application("probe", "1", spec=compose)
        job = client.create_job("probe", devices=[device])["id"]
    wait_for(lambda: (tmp_path / f"url-{device}").exists(), 60, what="workload started")
    url = workload_url(tmp_path, device)
    assert url.startswith("http://127.0.0.1:") and f"/v1/{job}/" in url

    # Records: singles, JSON lines with ids (sent twice), two streams.
    for n in range(1, 6):
        assert post(url + "?stream=m", {"n": n, "site": "a"}).status_code == 201
    lines = "".join(
        json.dumps({"n": n, "id": f"r{n}", "extra": {"k": n}}) + "\n" for n in range(6, 31)
    )
    assert post(url + "?stream=m", content=lines).status_code == 201
    assert post(url + "?stream=m", content=lines).json()["duplicates"] == 25
    assert post(url + "?stream=temp", {"celsius": 21.5}).status_code == 201
    # Bad records are refused at once, with reasons, and block nothing.
    assert post(url, content=b"{nope").status_code == 400
    assert post(url + "?stream=no/slash", {"a": 1}).status_code == 400
    assert post(url, {"x": "y" * 300_000}).status_code == 413
    # Records for a job the server does not have: the agent takes them, the
    # server discards them, and the queue goes on.
    ghost = url.replace(f"/v1/{job}/", "/v1/jghost000000/").rsplit("/", 1)[0]
    ghost += "/" + token_for(agent, "jghost000000")
    assert post(ghost, {"lost": True}).status_code == 201
    assert post(url + "?stream=m", {"n": 31}).status_code == 201
    # A file.
    blob = os.urandom(300_000)
    sent = httpx.post(url + "/files", params={"name": "capture.pcap"}, content=blob, timeout=10)
    assert sent.status_code == 201, sent.text

    def complete() -> bool:
        s = summary(server, job)
        return s["records"] == 32 and s["backlog"] == 0 and any(i["files"] for i in s["items"])

    wait_for(complete, 60, what="records and file on the server")
    s = summary(server, job)
    streams = {i["stream"]: i for i in s["items"]}
    assert streams["m"]["records"] == 31 and streams["m"]["last_seq"] == 31
    assert streams["m"]["device"] == device and streams["m"]["device_name"] == "collector"
    assert streams["temp"]["records"] == 1 and streams["m"]["last_time"]

    with server.http() as http:
        # Pages follow the cursor, in order.
        seen: list[int] = []
        cursor = None
        while True:
            page = http.get(
                f"/api/v1/jobs/{job}/data", params={"stream": "m", "limit": 10, "cursor": cursor}
            ).json()
            seen += [item["record"]["n"] for item in page["items"]]
            cursor = page["next"]
            if not cursor:
                break
        assert seen == list(range(1, 32))
        first = http.get(f"/api/v1/jobs/{job}/data", params={"limit": 1}).json()["items"][0]
        assert set(first) >= {"device", "stream", "seq", "time", "record"}
        assert first["device"] == device and first["seq"] == 1
        # Filters: device by name, time range.
        by_name = http.get(f"/api/v1/jobs/{job}/data", params={"device": "collector"}).json()
        assert len(by_name["items"]) == 32
        later = http.get(
            f"/api/v1/jobs/{job}/data", params={"since": "2999-01-01T00:00:00Z"}
        ).json()
        assert later["items"] == []
        early = http.get(
            f"/api/v1/jobs/{job}/data", params={"until": "2000-01-01T00:00:00Z"}
        ).json()
        assert early["items"] == []
        # Downloads.
        jsonl = http.get(f"/api/v1/jobs/{job}/data", params={"format": "jsonl", "stream": "m"})
        assert jsonl.headers["x-record-count"] == "31"
        assert [json.loads(x)["record"]["n"] for x in jsonl.text.splitlines()] == list(range(1, 32))
        table = list(
            csv.DictReader(io.StringIO(http.get(f"/api/v1/jobs/{job}/data?format=csv").text))
        )
        assert len(table) == 32 and table[0]["n"] == "1" and table[0]["site"] == "a"
        assert json.loads(table[10]["extra"]) == {"k": 11}
        parquet = http.get(f"/api/v1/jobs/{job}/data?format=parquet")
        frame = pq.read_table(io.BytesIO(parquet.content))
        assert frame.num_rows == 32
        assert frame.schema.field("n").type == "int64"
        assert frame.schema.field("celsius").type == "double"
        # Files.
        files = http.get(f"/api/v1/jobs/{job}/files").json()["items"]
        assert [(f["name"], f["size"], f["device"]) for f in files] == [
            ("capture.pcap", len(blob), device)
        ]
        content = http.get(f"/api/v1/jobs/{job}/files/{files[0]['id']}/content")
        assert content.content == blob

    # The CLI.
    out = tmp_path / "export.csv"
    env = dict(os.environ, EDGEFLEET_SERVER=server.url, EDGEFLEET_TOKEN=ADMIN_TOKEN)
    cli = [sys.executable, "-m", "edgefleet", "data"]
    done = subprocess.run(
        [*cli, job, "--stream", "m", "--format", "csv", "-o", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert len(out.read_text().splitlines()) == 32  # header + 31
    listed = subprocess.run(
        [*cli, "files", job, "-o", "json"], env=env, capture_output=True, text=True, timeout=60
    )
    file_id = json.loads(listed.stdout)[0]["id"]
    got = tmp_path / "got.pcap"
    fetched = subprocess.run(
        [*cli, "get-file", job, file_id, "-o", str(got)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert fetched.returncode == 0, fetched.stderr
    assert got.read_bytes() == blob

    # Who may read: a viewer of the project yes, an outsider sees nothing.
    with server.client() as admin:
        admin.create_user("viewer")
        admin.add_member("default", "viewer", "viewer")
        admin.create_user("outsider")
        viewer = admin.create_token("t", user="viewer")["token"]
        outsider = admin.create_token("t", user="outsider")["token"]
    with server.http(viewer) as http:
        assert http.get(f"/api/v1/jobs/{job}/data").status_code == 200
    with server.http(outsider) as http:
        for path in ("data", "data/summary", "files", f"files/{file_id}/content"):
            assert http.get(f"/api/v1/jobs/{job}/{path}").status_code == 404, path


def test_agent_keeps_records_while_the_server_is_away(fleet: Fleet, tmp_path: Path) -> None:
    """Buffered while the server is down (and across an agent kill -9), then
    delivered exactly once; the backlog shows on the server meanwhile."""
    server = fleet.start_server()
    agent = fleet.start_agent("offline", extra_args=["--data-port", "0"])
    device = agent.wait_enrolled()
    spec = {
        "services": {
            "w": {
                "x-edgefleet-runtime": "process",
                "command": [
                    "sh",
                    "-c",
                    f'echo "$$EDGEFLEET_DATA_URL" > {tmp_path}/url-$$EDGEFLEET_DEVICE_ID; exec sleep 100000',
                ],
            }
        }
    }
    with server.client() as client:
        client.create_application("w", "1", spec=spec)
        job = client.create_job("w", devices=[device])["id"]
    wait_for(lambda: (tmp_path / f"url-{device}").exists(), 60, what="workload started")
    url = workload_url(tmp_path, device)
    server.kill()
    for n in range(100):
        assert post(url + "?stream=s", {"n": n}).status_code == 201
    agent.kill()
    agent.start()  # same state dir, same port: the URL still works
    wait_for(lambda: post(url + "?stream=s", {"n": 100}).status_code == 201, 30, what="agent back")
    server.start()
    wait_for(lambda: summary(server, job)["records"] == 101, 60, what="all delivered")
    with server.http() as http:
        items = http.get(f"/api/v1/jobs/{job}/data", params={"limit": 1000}).json()["items"]
    assert [i["record"]["n"] for i in items] == list(range(101))
    assert [i["seq"] for i in items] == list(range(1, 102))


def test_files_go_to_an_s3_compatible_store(fleet: Fleet, tmp_path: Path) -> None:
    """``--object-store s3://bucket/prefix`` against moto's S3 server."""
    import boto3
    import moto.server as moto_server

    from tests.support.procs import free_port

    port = free_port()
    s3 = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    s3.start()
    try:
        creds = {
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        endpoint = f"http://127.0.0.1:{port}"
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="test",
            aws_secret_access_key="test",
            region_name="us-east-1",
        )
        client.create_bucket(Bucket="collected")
        server = fleet.start_server(
            extra_args=["--object-store", f"s3://collected/edge?endpoint={endpoint}"], env=creds
        )
        agent = fleet.start_agent("s3dev")
        device = agent.wait_enrolled()
        spec = {
            "services": {
                "w": {
                    "x-edgefleet-runtime": "process",
                    "command": [
                        "sh",
                        "-c",
                        f'echo "$$EDGEFLEET_DATA_URL" > {tmp_path}/url-$$EDGEFLEET_DEVICE_ID; exec sleep 100000',
                    ],
                }
            }
        }
        with server.client() as api:
            api.create_application("w", "1", spec=spec)
            job = api.create_job("w", devices=[device])["id"]
        wait_for(lambda: (tmp_path / f"url-{device}").exists(), 60, what="workload started")
        url = workload_url(tmp_path, device)
        blob = os.urandom(200_000)
        answer = httpx.post(url + "/files", params={"name": "image.jpg"}, content=blob, timeout=10)
        assert answer.status_code == 201, answer.text

        def uploaded() -> list[dict[str, Any]]:
            with server.client() as api:
                return api.data_files(job)

        (item,) = wait_for(uploaded, 60, what="file on the server")
        keys = [o["Key"] for o in client.list_objects_v2(Bucket="collected")["Contents"]]
        assert len(keys) == 1 and keys[0].startswith(f"edge/{job}/{device}/")
        with server.http() as http:
            assert http.get(f"/api/v1/jobs/{job}/files/{item['id']}/content").content == blob
        client.close()
    finally:
        s3.stop()
