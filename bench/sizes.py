"""How big each event-store benchmark runs: ``--quick`` (smoke), default, ``--full`` (issue 3)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sizes:
    """Every size the event-store sections use, so one flag scales them together."""

    append_seconds: float  # how long each throughput figure runs
    repeats: int  # fresh-database repeats per figure; the median is printed
    batch: int  # scene updates per batched append
    travel_updates: int  # scene updates in the time-travel project
    travel_checkpoints: tuple[int, ...]  # log positions measured
    travel_samples: int  # state_at calls per cell (fewer if the cell's time budget runs out)
    travel_cell_seconds: float  # time budget per cell
    travel_fill_seconds: float  # time budget for appending the scene updates
    edit_sizes: tuple[int, ...]  # edits after which document.edit's update size is shown
    catchup_events: int  # mixed events replayed by the projections
    peer_seconds: float  # how long the batch_size=1 peer replays
    lag_seconds: float  # sustained-load duration
    lag_rate: int  # events per second under sustained load


QUICK = Sizes(append_seconds=0.5, repeats=1, batch=100, travel_updates=1_000,
              travel_checkpoints=(1_000,), travel_samples=20, travel_cell_seconds=3.0,
              travel_fill_seconds=30.0, edit_sizes=(10, 100), catchup_events=3_000,
              peer_seconds=2.0, lag_seconds=3.0, lag_rate=500)
DEFAULT = Sizes(append_seconds=2.0, repeats=3, batch=100, travel_updates=10_000,
                travel_checkpoints=(1_000, 10_000), travel_samples=60, travel_cell_seconds=5.0,
                travel_fill_seconds=150.0,
                edit_sizes=(10, 100, 1_000), catchup_events=20_000, peer_seconds=8.0,
                lag_seconds=10.0, lag_rate=500)
FULL = Sizes(append_seconds=5.0, repeats=5, batch=100, travel_updates=100_000,
             travel_checkpoints=(1_000, 10_000, 100_000), travel_samples=100,
             travel_cell_seconds=20.0, travel_fill_seconds=300.0,
             edit_sizes=(10, 100, 1_000, 3_000),
             catchup_events=50_000, peer_seconds=15.0, lag_seconds=20.0, lag_rate=500)
