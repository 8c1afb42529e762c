"""Group commit of the agent's data endpoint against a crash: 32 workload
clients POST one record each, back to back, and the agent is killed with
SIGKILL while groups are being written. After it restarts, the clients retry
what was never answered (and some of what was): every record answered 2xx is
stored exactly once, and no retry makes a duplicate, on the agent and on the
server."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx

from tests.conftest import Fleet
from tests.e2e.test_data import summary, url_probe, workload_url
from tests.support.procs import wait_for

CLIENTS = 32
PER_CLIENT = 40


async def _client(url: str, ids: list[int], answered: set[int]) -> None:
    """Keep-alive POSTs, one record each, until the first failure (the crash)."""
    async with httpx.AsyncClient(timeout=10) as http:
        for n in ids:
            try:
                response = await http.post(
                    f"{url}?stream=crash", json={"n": n}, headers={"X-Record-Id": f"r{n}"}
                )
            except httpx.TransportError:
                return
            assert response.status_code // 100 == 2, response.text
            answered.add(n)


async def _load(url: str, answered: set[int]) -> None:
    plans = [list(range(c, CLIENTS * PER_CLIENT, CLIENTS)) for c in range(CLIENTS)]
    await asyncio.gather(*(_client(url, plan, answered) for plan in plans))


def _posting_while_killed(url: str, kill: object) -> set[int]:
    answered: set[int] = set()

    async def main() -> None:
        load = asyncio.create_task(_load(url, answered))
        while len(answered) < 200 and not load.done():  # well into the run
            await asyncio.sleep(0.01)
        await asyncio.to_thread(kill)  # type: ignore[arg-type]
        await load

    asyncio.run(main())
    return answered


def test_kill_9_mid_group_commit_keeps_answered_records_exactly_once(
    fleet: Fleet, tmp_path: Path
) -> None:
    server = fleet.start_server()
    agent = fleet.start_agent("crash", extra_args=["--data-port", "0"])
    device = agent.wait_enrolled()
    with server.client() as client:
        client.create_application("probe", "1", spec=url_probe(tmp_path))
        job = client.create_job("probe", devices=[device])["id"]
    wait_for(lambda: (tmp_path / f"url-{device}").exists(), 60, what="workload started")
    url = workload_url(tmp_path, device)

    answered = _posting_while_killed(url, agent.kill)
    total = CLIENTS * PER_CLIENT
    assert 200 <= len(answered) < total, len(answered)

    agent.start()  # same state dir and port: the workload's URL still works
    wait_for(
        lambda: httpx.post(f"{url}?stream=probe", json={}, timeout=5).status_code // 100 == 2,
        30,
        what="agent back",
    )
    # Retry everything never answered, and the last 100 answered ones too.
    again = sorted(set(range(total)) - answered) + sorted(answered)[-100:]
    retried: set[int] = set()

    async def retry() -> None:
        await asyncio.gather(*(_client(url, again[c::8], retried) for c in range(8)))

    asyncio.run(retry())
    assert retried == set(again)

    begin = time.monotonic()
    wait_for(lambda: summary(server, job)["records"] >= total + 1, 120, what="all uploaded")
    seen: list[int] = []
    with server.http() as http:
        cursor = None
        while True:
            params: dict[str, str | int] = {"stream": "crash", "limit": 1000}
            if cursor:
                params["cursor"] = cursor
            page = http.get(f"/api/v1/jobs/{job}/data", params=params).json()
            seen += [item["record"]["n"] for item in page["items"]]
            cursor = page["next"]
            if not cursor:
                break
    assert len(seen) == len(set(seen)) == total, (len(seen), len(set(seen)))
    assert answered <= set(seen)
    assert summary(server, job)["records"] == total + 1  # and the one probe record
    print(
        f"{len(answered)} answered before the kill; all {total} stored once "
        f"{time.monotonic() - begin:.1f} s after the retries"
    )
