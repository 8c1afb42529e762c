"""``make bench``: run the benchmarks and append the figures to RESULTS.md.

python -m benchmarks.run                       # everything, default sizes
python -m benchmarks.run --only fleet --sizes 100,1000
python -m benchmarks.run --only fleet --sizes 10000 --store sqlite,postgresql --load-seconds 600
python -m benchmarks.run --quick               # small sizes, for a smoke run
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import tempfile
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from benchmarks.harness import Report, write

SUITES = ("fleet", "agent", "remote", "replicas", "data", "fed", "cli")


@contextlib.contextmanager
def podman_engine() -> Iterator[Any]:
    from tests.support.podman import PodmanService, ensure_image

    with tempfile.TemporaryDirectory(prefix="ef-bench-podman-") as tmp:
        service = PodmanService(Path(tmp))
        service.start()
        ensure_image(Path(tmp))
        try:
            yield service
        finally:
            service.cleanup()
            service.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--only", default=",".join(SUITES), help=f"comma-separated: {', '.join(SUITES)}"
    )
    parser.add_argument("--sizes", default="100,1000,10000", help="fleet sizes for the simulator")
    parser.add_argument(
        "--replica-devices", type=int, default=2000, help="simulated devices in the replica runs"
    )
    parser.add_argument(
        "--store",
        default="sqlite,postgresql",
        help="comma-separated stores the fleet suite runs on: sqlite, postgresql",
    )
    parser.add_argument(
        "--load-seconds",
        type=float,
        default=600,
        help="seconds of the fleet's API-under-load phase (every request timed)",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes only")
    parser.add_argument(
        "--agent-soak",
        type=float,
        default=3600,
        help="seconds of the agent memory soak (job running, data flowing); 0 skips it",
    )
    args = parser.parse_args()
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    sizes = [int(s) for s in args.sizes.split(",")]
    stores = [s.strip() for s in args.store.split(",") if s.strip()]
    if args.quick:
        sizes, args.replica_devices, args.load_seconds = [100], 200, 20
    report = Report()
    report.notes.append(
        f"suites: {', '.join(only)}; fleet sizes: {', '.join(map(str, sizes))}"
        + (
            f"; fleet stores: {', '.join(stores)}, API load {args.load_seconds:g} s"
            if "fleet" in only
            else ""
        )
    )

    def attempt(name: str, call: Callable[[], None]) -> None:
        print(f"== {name}", flush=True)
        try:
            call()
        except Exception as exc:
            traceback.print_exc()
            report.notes.append(f"{name} did not finish: {exc.__class__.__name__}: {exc}")

    if "fleet" in only:
        from benchmarks import fleet

        for store in stores:
            call = functools.partial(
                fleet.run, report, sizes, store=store, load_seconds=args.load_seconds
            )
            attempt(f"fleet ({store})", call)
    if "agent" in only or "remote" in only:
        with podman_engine() as engine:
            if "agent" in only:
                from benchmarks import agent

                attempt("agent", lambda: agent.run(report, engine))
                if args.agent_soak > 0:
                    attempt("agent soak", lambda: agent.soak(report, args.agent_soak))
            if "remote" in only:
                from benchmarks import remote

                attempt("remote", lambda: remote.run(report, engine))
    if "replicas" in only:
        from benchmarks import replicas

        attempt("replicas", lambda: replicas.run(report, args.replica_devices))
    for name in ("data", "fed"):
        if name in only:
            try:
                module = importlib.import_module(f"benchmarks.{name}")
            except ImportError as exc:
                report.notes.append(f"{name}: not available ({exc})")
                continue
            attempt(name, lambda module=module: module.run(report))
    if "cli" in only:
        from benchmarks import cli

        attempt("cli", lambda: cli.run(report))
    write(report, "make bench")
    print("results appended to benchmarks/RESULTS.md")


if __name__ == "__main__":
    main()
