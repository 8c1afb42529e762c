"""``EDGEFLEET_CONTEXT_URL`` through real processes (server, agent, process
runtime): a workload reads its context and hands it to the server as data;
an operator's label change reaches it within seconds without restarting it;
one job cannot read another's context; the agent answers with the server
gone, and after its own restart with no server in reach."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import Fleet
from tests.support.procs import AgentProc, wait_for

# The workload: GET the context, POST it as a record whenever it changes; once
# it is given another job's id, try that job's context with its own token and
# record the answer. Standard library only (/usr/bin/python3).
SCRIPT = """
import json, os, time, urllib.error, urllib.request
ctx_url = os.environ["EDGEFLEET_CONTEXT_URL"]
data_url = os.environ["EDGEFLEET_DATA_URL"]
prefix, job, token, _ = ctx_url.rsplit("/", 3)
victim_file = os.path.join(os.environ["WORKDIR"], "victim")

def post(stream, record):
    request = urllib.request.Request(
        data_url + "?stream=" + stream, data=json.dumps(record).encode(), method="POST"
    )
    urllib.request.urlopen(request, timeout=5).read()

last, probed = None, False
while True:
    body = json.load(urllib.request.urlopen(ctx_url, timeout=5))
    if body != last:
        post("context", body)
        last = body
    if not probed and os.path.exists(victim_file):
        victim = open(victim_file).read().strip()
        if victim and victim != job:
            try:
                urllib.request.urlopen(prefix + "/" + victim + "/" + token + "/context", timeout=5)
                status, text = 200, ""
            except urllib.error.HTTPError as exc:
                status, text = exc.code, exc.read().decode()
            post("probe", {"status": status, "answer": text})
            probed = True
    time.sleep(0.3)
"""


def token_for(agent: AgentProc, job: str) -> str:
    secret = bytes.fromhex((agent.state_dir / "data" / "secret").read_text().strip())
    return base64.urlsafe_b64encode(
        hmac.new(secret, job.encode(), hashlib.sha256).digest()[:24]
    ).decode()


def context_url(agent: AgentProc, job: str) -> str:
    port = int((agent.state_dir / "data" / "port").read_text().strip())
    return f"http://127.0.0.1:{port}/v1/{job}/{token_for(agent, job)}/context"


def records(http: httpx.Client, job: str, stream: str) -> list[dict[str, Any]]:
    page = http.get(f"/api/v1/jobs/{job}/data", params={"stream": stream, "limit": 100})
    assert page.status_code == 200, page.text
    return [item["record"] for item in page.json()["items"]]


def test_context_reaches_the_workload_and_follows_the_operator(
    fleet: Fleet, tmp_path: Path
) -> None:
    server = fleet.start_server()
    agent = fleet.start_agent(
        "ctxdev", labels={"site": "north"}, extra_args=["--peripheral", "sensor=/dev/ttyFAKE7"]
    )
    device = agent.wait_enrolled()
    compose = {
        "services": {
            "reader": {
                "x-edgefleet-runtime": "process",
                "command": ["/usr/bin/python3", "-c", SCRIPT],
                "environment": {"WORKDIR": str(tmp_path)},
            }
        }
    }
    with server.client() as client:
        client.update_device(device, metadata={"location": {"lat": 41.9, "lon": -87.6}})
        client.create_application("reader", "1.4", spec=compose)
        first = client.create_job("reader", devices=[device])["id"]
        second = client.create_job("reader", devices=[device])["id"]

    with server.http() as http:

        def context_of(job: str) -> dict[str, Any] | None:
            found = records(http, job, "context")
            return found[-1] if found else None

        got = wait_for(lambda: context_of(first), 60, what="first job's context on the server")
        assert got["device"]["id"] == device
        assert got["device"]["name"] == "ctxdev"
        assert got["device"]["labels"] == {"site": "north"}
        assert got["device"]["metadata"] == {"location": {"lat": 41.9, "lon": -87.6}}
        # Only the peripheral the owner declared; nothing of this host's /dev
        # that no flag consented to.
        assert got["device"]["peripherals"] == [
            {
                "kind": "sensor",
                "name": "ttyFAKE7",
                "path": "/dev/ttyFAKE7",
                "details": {"declared": "true"},
            }
        ]
        assert got["job"]["id"] == first and got["job"]["version"] == "1.4"
        assert len(got["job"]["revision"]) == 10
        job_view = http.get(f"/api/v1/jobs/{first}").json()
        pid_file = list(agent.state_dir.glob("**/processes/*/meta.json"))
        assert pid_file, "the process service's record"
        pids_before = sorted(json.loads(p.read_text()).get("pid") for p in pid_file)

        # The operator changes a label: the workload sees it within seconds.
        changed = http.patch(f"/api/v1/devices/{device}", json={"labels": {"site": "south"}})
        assert changed.status_code == 200, changed.text
        started = time.monotonic()

        def relabelled() -> dict[str, Any] | None:
            now = context_of(first)
            return now if now and now["device"]["labels"] == {"site": "south"} else None

        later = wait_for(relabelled, 15, what="new label in the workload's context")
        assert time.monotonic() - started < 15
        assert later["job"]["revision"] == got["job"]["revision"]
        assert later["device"]["metadata"] == got["device"]["metadata"]
        # Metadata alone (no label, so no selector work on the server) too.
        changed = http.patch(f"/api/v1/devices/{device}", json={"metadata": {"floor": 3}})
        assert changed.status_code == 200, changed.text

        def described() -> dict[str, Any] | None:
            now = context_of(first)
            return now if now and now["device"]["metadata"].get("floor") == 3 else None

        later = wait_for(described, 15, what="new metadata in the workload's context")
        assert later["device"]["metadata"] == {"location": {"lat": 41.9, "lon": -87.6}, "floor": 3}
        assert later["device"]["labels"] == {"site": "south"}
        # Nothing restarted for it.
        pids_after = sorted(json.loads(p.read_text()).get("pid") for p in pid_file)
        assert pids_after == pids_before
        # The job kept its state, or finished settling (the first look may fall in the
        # deploy's stability window); the pids above show nothing was redeployed.
        assert http.get(f"/api/v1/jobs/{first}").json()["state"] in {job_view["state"], "running"}

        # The second job tries the first job's context with its own token.
        (tmp_path / "victim").write_text(first)

        def probed() -> dict[str, Any] | None:
            found = records(http, second, "probe")
            return found[0] if found else None

        probe = wait_for(probed, 30, what="the second job's attempt")
        assert probe["status"] == 404
        assert "unknown job or token" in json.loads(probe["answer"])["error"]
        # Each job's own context names only itself.
        assert wait_for(lambda: context_of(second), 30, what="second context")["job"]["id"] == (
            second
        )

    # With the server gone, and after the agent restarts with no server in
    # reach, the context is still answered from the agent's own state.
    url = context_url(agent, first)
    server.stop()
    offline = httpx.get(url, timeout=5).json()
    assert offline["device"]["labels"] == {"site": "south"} and offline["job"]["id"] == first
    agent.stop()
    agent.start()

    def answered() -> dict[str, Any] | None:
        try:
            response = httpx.get(url, timeout=2)
        except httpx.HTTPError:
            return None
        return response.json() if response.status_code == 200 else None

    again = wait_for(answered, 30, what="context after an offline restart")
    assert again["device"]["name"] == "ctxdev"
    assert again["device"]["labels"] == {"site": "south"}
    assert again["device"]["metadata"] == later["device"]["metadata"]
    assert again["job"] == offline["job"]
