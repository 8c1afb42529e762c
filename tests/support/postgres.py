"""A real PostgreSQL for tests: Debian's cluster on loopback, started if needed,
and a fresh database per test."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid

ROLE = "edgefleet"
PASSWORD = "edgefleet-test"


def _as_postgres(argv: list[str]) -> subprocess.CompletedProcess[str]:
    prefix: list[str] = []
    if os.geteuid() == 0:
        prefix = ["runuser", "-u", "postgres", "--"]
    return subprocess.run(prefix + argv, capture_output=True, text=True, check=False)


def _cluster() -> tuple[str, str, int, str]:
    listing = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True, check=False)
    for line in listing.stdout.splitlines():
        version, name, port, status, *_ = line.split()
        return version, name, int(port), status
    raise RuntimeError("no PostgreSQL cluster: run scripts/install-test-deps.sh (make test does)")


def ensure_server() -> str:
    """Start the cluster if it is down; return an admin URL for the test role."""
    if override := os.environ.get("EDGEFLEET_TEST_POSTGRES"):
        return override
    if shutil.which("pg_lsclusters") is None:
        raise RuntimeError(
            "PostgreSQL is not installed: run scripts/install-test-deps.sh (make test does)"
        )
    version, name, port, status = _cluster()
    if status != "online":
        subprocess.run(["pg_ctlcluster", version, name, "start"], check=True, capture_output=True)
    exists = _as_postgres(
        ["psql", "-p", str(port), "-tAc", f"SELECT 1 FROM pg_roles WHERE rolname='{ROLE}'"]
    )
    if exists.stdout.strip() != "1":
        result = _as_postgres(
            [
                "psql",
                "-p",
                str(port),
                "-c",
                f"CREATE ROLE {ROLE} LOGIN CREATEDB PASSWORD '{PASSWORD}'",
            ]
        )
        if result.returncode != 0:
            raise RuntimeError(f"cannot create the test role: {result.stderr}")
    return f"postgresql://{ROLE}:{PASSWORD}@127.0.0.1:{port}/postgres"


def fresh_database(admin_url: str, template: str | None = None) -> tuple[str, str]:
    """Create an empty database, or a copy of ``template``; returns (url, name)."""
    import psycopg

    name = f"ef_test_{uuid.uuid4().hex[:10]}"
    create = f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
    for attempt in range(20):
        try:
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(create)
            break
        except psycopg.errors.ObjectInUse:  # the template being copied this instant
            if attempt == 19:
                raise
            time.sleep(0.1)
    return admin_url.rsplit("/", 1)[0] + f"/{name}", name


def drop_database(admin_url: str, name: str) -> None:
    import psycopg

    # FORCE cannot end a backend of another role (an autovacuum worker of the
    # superuser): wait for it a little, then leave the database to the
    # per-run cluster rather than fail the test that used it.
    for _ in range(20):
        try:
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return
        except (psycopg.errors.InsufficientPrivilege, psycopg.errors.ObjectInUse):
            time.sleep(0.25)
