"""Secure aggregation against a plain sum: 100 simulated parties, 10,000 elements each.

``run(report)`` is what ``make bench`` calls (``benchmarks.run``): it runs the
whole protocol in one process (:func:`edgefleet.fed.simulate.benchmark`: every
message serialized to JSON and parsed back, as the agent connection would carry
it), then sums the same vectors in the clear, adds the figures to the report and
returns them with a Markdown summary. ``python -m benchmarks.fed`` prints that.

What is measured:
- wall time of the secure protocol (all 100 parties and the server, one process,
  one core) and of the plain sum of the same data, and their ratio;
- per party: mean seconds in its four steps; the server's seconds (mostly
  Shamir reconstruction, which pycryptodome does in pure Python: slow for t = 51);
- JSON bytes each party sends over all rounds against the plain vector as float64.
"""

from __future__ import annotations

import platform
from dataclasses import asdict
from typing import Any

from benchmarks.harness import Report
from edgefleet.fed.simulate import benchmark


def run(
    report: Report | None = None, parties: int = 100, length: int = 10_000, seed: int = 0
) -> dict[str, Any]:
    result = benchmark(parties=parties, length=length, seed=seed)
    figures: dict[str, Any] = asdict(result)
    figures["time_ratio"] = result.secure_seconds / max(result.plain_seconds, 1e-9)
    figures["bytes_ratio"] = result.bytes_per_party / result.plain_bytes_per_party
    figures["markdown"] = markdown(figures)
    if report is not None:
        size = f"{parties} parties x {length:,}"
        add = report.add
        add("fed", size, "secure sum, wall time", result.secure_seconds, "s",
            note="whole protocol, all parties and the server in one process")  # fmt: skip
        add("fed", size, "plain sum, wall time", result.plain_seconds, "s")
        add("fed", size, "secure / plain time", figures["time_ratio"], "x")
        add("fed", size, "one party's work", result.party_seconds, "s", note="four rounds")
        add("fed", size, "server's work", result.aggregator_seconds, "s",
            note="mostly Shamir reconstruction (pycryptodome, pure Python)")  # fmt: skip
        add("fed", size, "bytes sent per party", result.bytes_per_party, "B",
            note=f"plain vector: {result.plain_bytes_per_party:,} B as float64")  # fmt: skip
        add("fed", size, "bytes / plain bytes", figures["bytes_ratio"], "x")
        add("fed", size, "largest error vs plain", result.max_abs_error)
    return figures


def markdown(f: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"### Secure aggregation: {f['parties']} parties x {f['length']:,} elements",
            "",
            f"Python {platform.python_version()} on {platform.machine()}, one process, "
            f"threshold {f['parties'] // 2 + 1} (majority).",
            "",
            "| | secure protocol | plain sum | ratio |",
            "|---|---:|---:|---:|",
            f"| wall time | {f['secure_seconds']:.2f} s | {f['plain_seconds']:.4f} s | "
            f"{f['time_ratio']:,.0f}x |",
            f"| bytes sent per party | {f['bytes_per_party']:,.0f} | "
            f"{f['plain_bytes_per_party']:,} | {f['bytes_ratio']:.2f}x |",
            "",
            f"Per party: {f['party_seconds']:.3f} s of work over the four rounds; "
            f"server: {f['aggregator_seconds']:.2f} s (Shamir reconstruction of "
            f"{f['parties']} self-mask seeds). Largest error against the plain sum: "
            f"{f['max_abs_error']:.1e}.",
        ]
    )


if __name__ == "__main__":
    print(run()["markdown"])
