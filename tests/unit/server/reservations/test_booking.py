"""The pure booking core: which devices a reservation gets, and every conflict."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from edgefleet.server.reservations.booking import (
    Booking,
    Candidate,
    Request,
    Share,
    conflict,
    plan,
    spread_order,
)

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
P, Q = 1, 2


def window(hours: float = 8, at: datetime = T0, **kw: object) -> Request:
    return Request(project_pk=P, start=at, end=at + timedelta(hours=hours), **kw)  # type: ignore[arg-type]


def device(name: str, **kw: object) -> Candidate:
    kw.setdefault("online", True)
    return Candidate(id=f"d-{name}", name=name, labels=kw.pop("labels", {}), **kw)  # type: ignore[arg-type]


def booked(exclusive: bool, project: int = Q, hours: float = 4, at: datetime = T0) -> Booking:
    return Booking("r-other", project, at, at + timedelta(hours=hours), exclusive)


def test_every_kind_of_conflict_is_named() -> None:
    request = window(exclusive=True)
    assert conflict(device("a", lent=False), request) is not None
    assert "policy refuses" in str(conflict(device("a", lent=False), request))
    assert conflict(device("a", online=False), request) == "offline"
    assert "missing peripheral camera" in str(
        conflict(device("a", ready_problem="missing peripheral camera"), request)
    )
    assert "already booked" in str(conflict(device("a", bookings=(booked(False),)), request))
    share = Share(0.1, timedelta(hours=24))  # 2.4 h of any 24 h
    assert "time share exhausted" in str(conflict(device("a", share=share), request))
    assert conflict(device("a"), request) is None


def test_shared_bookings_overlap_only_with_shared_ones() -> None:
    shared = window(exclusive=False)
    assert conflict(device("a", bookings=(booked(False),)), shared) is None
    assert "exclusively" in str(conflict(device("a", bookings=(booked(True),)), shared))
    # back to back is not an overlap
    later = window(at=T0 + timedelta(hours=4), exclusive=True)
    assert conflict(device("a", bookings=(booked(True),)), later) is None


def test_a_reservation_does_not_conflict_with_itself_when_changed() -> None:
    mine = Booking("r-mine", P, T0, T0 + timedelta(hours=4), True)
    extended = window(hours=6, exclusive=True, ignore="r-mine")
    assert conflict(device("a", bookings=(mine,)), extended) is None


def test_time_share_counts_the_guests_own_bookings_in_the_window() -> None:
    share = Share(0.5, timedelta(hours=24))  # 12 h of any 24 h
    earlier = Booking("r-1", P, T0 - timedelta(hours=10), T0 - timedelta(hours=2), False)
    others = Booking("r-2", Q, T0 - timedelta(hours=10), T0 - timedelta(hours=2), False)
    four = window(hours=4, exclusive=False)
    assert conflict(device("a", share=share, bookings=(others,)), four) is None
    assert conflict(device("a", share=share, bookings=(earlier,)), four) is None  # 8 + 4 = 12
    five = window(hours=5, exclusive=False)
    assert "time share" in str(conflict(device("a", share=share, bookings=(earlier,)), five))


def test_count_spreads_across_a_label() -> None:
    fleet = [
        device("c1", labels={"site": "chicago"}),
        device("c2", labels={"site": "chicago"}),
        device("c3", labels={"site": "chicago"}),
        device("n1", labels={"site": "nyc"}),
        device("n2", labels={"site": "nyc"}),
        device("x1"),
    ]
    got = plan(fleet, window(exclusive=True, count=4, spread="site"))
    assert got.ok
    assert got.devices == ["d-c1", "d-n1", "d-x1", "d-c2"]  # unlabelled: a group of its own
    order = [c.name for c in spread_order(fleet, "site")]
    assert order == ["c1", "n1", "x1", "c2", "n2", "c3"]


def test_count_skips_conflicts_and_refuses_when_too_few_are_free() -> None:
    fleet = [
        device("a", labels={"site": "s1"}, online=False),
        device("b", labels={"site": "s1"}),
        device("c", labels={"site": "s2"}, bookings=(booked(True),)),
        device("d", labels={"site": "s2"}),
    ]
    got = plan(fleet, window(exclusive=True, count=2, spread="site"))
    assert got.ok and got.devices == ["d-b", "d-d"]
    assert {d for d, _ in got.skipped} == {"d-a", "d-c"}
    short = plan(fleet, window(exclusive=True, count=3))
    assert not short.ok
    assert ("", "only 2 of the 3 devices asked for are free") in short.conflicts
    assert {d for d, _ in short.conflicts} == {"d-a", "d-c", ""}


def test_without_count_every_device_is_wanted() -> None:
    fleet = [device("a"), device("b", online=False)]
    got = plan(fleet, window(exclusive=True))
    assert got.devices == ["d-a"]
    assert got.conflicts == [("d-b", "offline")]
    assert not got.ok


def test_time_share_counts_later_bookings_too() -> None:
    share = Share(0.5, timedelta(hours=24))  # 12 h of any 24 h
    later = Booking("r-1", P, T0 + timedelta(hours=10), T0 + timedelta(hours=18), False)
    # 4 h now + 8 h later fit any 24 h window; 6 h now + 8 h later do not
    assert (
        conflict(device("a", share=share, bookings=(later,)), window(hours=4, exclusive=False))
        is None
    )
    too_much = conflict(
        device("a", share=share, bookings=(later,)), window(hours=6, exclusive=False)
    )
    assert "time share exhausted" in str(too_much) and "14.0h" in str(too_much)
