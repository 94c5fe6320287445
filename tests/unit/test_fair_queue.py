"""The dispatcher's fair queue and its view of which worker pools have room (no services:
the consumers are the ``ConsumerInfo`` JetStream answers with)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from eventsourcing.persistence import Tracking
from nats.js.api import ConsumerConfig, ConsumerInfo

from core.events.jetstream import CommandStream
from core.events.job import Job
from core.events.job_kinds import GENERATE, GPU_COMMANDS, MESH_ANALYSE, MESH_COMMANDS
from core.events.outbox import LOOKAHEAD, FairQueue, Room, subject_matches


def _command(actor: str, position: int, kind: str = MESH_ANALYSE) -> Any:
    event = Job.Requested.__new__(Job.Requested)
    object.__setattr__(event, "actor", actor)
    object.__setattr__(event, "kind", kind)
    return event, Tracking("Studio", position)


def _consumer(stream: CommandStream, filter_subject: str, pending: int) -> ConsumerInfo:
    return ConsumerInfo(name="c", stream_name=stream.name, num_pending=pending,
                        created=datetime.now(UTC),
                        config=ConsumerConfig(filter_subject=stream.subject(filter_subject)))


@pytest.mark.parametrize("pattern,subject,matches", [
    ("ns.cmd.mesh.>", "ns.cmd.mesh.analyse", True),
    ("ns.cmd.mesh.>", "ns.cmd.mesh", False),
    ("ns.cmd.*.analyse", "ns.cmd.mesh.analyse", True),
    ("ns.cmd.generate", "ns.cmd.generate", True),
    ("ns.cmd.generate", "ns.cmd.mesh.analyse", False),
    (">", "cmd.generate", True),
])
def test_subjects_match_as_nats_matches_them(pattern: str, subject: str,
                                             matches: bool) -> None:
    assert subject_matches(pattern, subject) is matches


def test_a_user_who_comes_during_a_burst_is_served_next() -> None:
    queue = FairQueue()
    for n in range(5):
        queue.add(_command("amy", n))
    taken = [queue.take(lambda _: True) for _ in range(2)]
    queue.add(_command("ben", 10))
    following = queue.take(lambda _: True)
    assert following is not None and following[0].actor == "ben"
    assert [t[1].notification_id for t in taken if t is not None] == [0, 1]
    assert queue.oldest() == 2 and len(queue) == 3


def test_a_full_pool_lets_the_next_users_other_pool_through() -> None:
    stream = CommandStream("ns")
    room = Room([_consumer(stream, MESH_COMMANDS, LOOKAHEAD),
                 _consumer(stream, GPU_COMMANDS, 0)], stream)
    queue = FairQueue()
    queue.add(_command("amy", 1))  # a mesh job: that pool has LOOKAHEAD undelivered already
    queue.add(_command("ben", 2, GENERATE))
    queue.add(_command("ben", 3, GENERATE))
    for position in (2, 3):
        taken = queue.take(room.fits)
        assert taken is not None and taken[1].notification_id == position
        room.took("cmd.generate")
    assert queue.take(room.fits) is None  # both pools are full now
    assert queue.oldest() == 1 and len(queue) == 1  # amy's waits


def test_a_pool_with_no_consumer_yet_takes_everything() -> None:
    room = Room([], CommandStream("ns"))
    for _ in range(10):
        assert room.fits("cmd.mesh.analyse")
        room.took("cmd.mesh.analyse")
