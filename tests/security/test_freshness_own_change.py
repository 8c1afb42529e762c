"""The stream guard must not end the request that made a rights change, nor the
caller's next request: creating a project makes its creator the owner (a
membership change), and a script creating projects back to back must never see
``401 closed: the user's project memberships changed``. Before the fix about 4%
of such calls failed with the guard re-checking every 50 ms."""

from __future__ import annotations

from pathlib import Path

from tests.support.procs import ServerProc, stop_all


def test_own_membership_changes_do_not_close_own_requests(tmp_path: Path) -> None:
    server = ServerProc(tmp_path, extra_args=["--stream-recheck-interval", "0.05"])
    server.start()
    try:
        with server.http() as admin:
            answers = [
                admin.post("/api/v1/projects", json={"name": f"own-{n}"}).status_code
                for n in range(150)
            ]
    finally:
        stop_all([server])
    assert answers == [201] * 150, f"{len([a for a in answers if a != 201])} refused"
