"""A room's store times are a window of its latest stores: an old stall leaves the figures
once enough stores came after it, and the window never grows."""

from core.collab.room import _nearest_rank, _RecentTimes


def test_the_window_keeps_the_latest_times_only():
    times = _RecentTimes(3)
    assert times.ordered() == []
    for ms in (500.0, 1.0, 2.0):
        times.add(ms)
    assert times.ordered() == [1.0, 2.0, 500.0]
    for ms in (3.0, 4.0):
        times.add(ms)
    assert times.ordered() == [2.0, 3.0, 4.0]  # the stall and the next store are gone


def test_percentiles_are_times_that_were_measured():
    ordered = [float(ms) for ms in range(1, 201)]
    assert _nearest_rank(ordered, 50) == 100.0
    assert _nearest_rank(ordered, 99) == 198.0
    assert _nearest_rank([7.0], 99) == 7.0
    assert _nearest_rank([], 50) is None
