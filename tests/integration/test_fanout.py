"""Scene traffic between nodes over a real NATS server: what does not fit one message."""

from __future__ import annotations

import asyncio
import uuid

from core.collab.fanout import Fanout, PresenceChange, SceneChange
from core.events.jetstream import connect
from core.settings import Settings


def test_an_update_too_big_for_a_message_goes_as_its_versions(settings: Settings) -> None:
    """NATS refuses messages over its max_payload (1 MiB by default). A bigger stored update
    goes as its versions alone, which the receiving room reads from the log; a small one
    travels whole. Presence that does not fit stays on its node."""
    assert settings.nats_url is not None

    async def exchange() -> tuple[list[SceneChange], list[PresenceChange], int, str]:
        sender_nc = await connect(settings.nats_url or "", "sender")
        receiver_nc = await connect(settings.nats_url or "", "receiver")
        changes: list[SceneChange] = []
        presence: list[PresenceChange] = []

        async def on_scene(change: SceneChange) -> None:
            changes.append(change)

        async def on_presence(change: PresenceChange) -> None:
            presence.append(change)

        async def ignore(message: dict[str, object]) -> None:
            return None

        try:
            project = uuid.uuid4()
            sender = Fanout(sender_nc, settings.namespace, node="a")
            receiver = Fanout(receiver_nc, settings.namespace, node="b")
            subscriptions = await receiver.subscribe(project, on_scene, on_presence, ignore,
                                                     lambda: [])
            huge = b"x" * (sender_nc.max_payload + 1)
            await sender.scene_changed(project, 7, 7, huge)
            await sender.scene_changed(project, 8, 8, b"small")
            await sender.presence(project, "u", huge)
            await sender.presence(project, "u", b"cursor")
            await sender_nc.flush()
            # Generous: the loop ends as soon as both arrived; a loaded CI machine once took
            # over 2 s (the former deadline) to deliver them.
            deadline = asyncio.get_running_loop().time() + 15
            while not (len(changes) == 2 and presence):
                if asyncio.get_running_loop().time() > deadline:
                    break
                await asyncio.sleep(0.02)
            # What each side saw, for a failure's message.
            seen = (f"sender {sender_nc.connected_url.netloc} connected={sender_nc.is_connected}"
                    f" out={sender_nc.stats['out_msgs']} reconnects="
                    f"{sender_nc.stats['reconnects']} error={sender_nc.last_error!r};"
                    f" receiver {receiver_nc.connected_url.netloc}"
                    f" connected={receiver_nc.is_connected} in={receiver_nc.stats['in_msgs']}"
                    f" reconnects={receiver_nc.stats['reconnects']}"
                    f" error={receiver_nc.last_error!r}; presence {presence}")
            await Fanout.unsubscribe(subscriptions)
            return changes, presence, sender_nc.max_payload, seen
        finally:
            await sender_nc.close()
            await receiver_nc.close()

    changes, presence, max_payload, seen = asyncio.run(exchange())
    assert max_payload == 1024 * 1024
    assert [(c.first_version, c.last_version, c.update) for c in changes] == [
        (7, 7, b""), (8, 8, b"small")], seen
    assert [p.update for p in presence] == [b"cursor"]


def test_a_change_published_once_subscribe_returns_arrives(settings: Settings) -> None:
    """A room reads the log only once its subscriptions are in place, so every change stored
    after that read is announced to it. nats-py's ``flush()`` cannot make sure of that (its
    PING overtakes subscriptions still in the client's buffer: before ``Fanout.subscribe``
    waited for its own echo, about one publish in five right after a subscribe was lost)."""

    async def rounds(count: int) -> list[int]:
        sender_nc = await connect(settings.nats_url or "", "sender")
        receiver_nc = await connect(settings.nats_url or "", "receiver")
        sender = Fanout(sender_nc, settings.namespace, node="a")
        receiver = Fanout(receiver_nc, settings.namespace, node="b")

        async def ignore(change: object) -> None:
            return None

        missed = []
        try:
            for round_ in range(count):
                project = uuid.uuid4()
                arrived = asyncio.Event()

                async def on_scene(change: SceneChange, arrived: asyncio.Event = arrived) -> None:
                    arrived.set()

                subscriptions = await receiver.subscribe(project, on_scene, ignore, ignore,
                                                         lambda: [])
                await sender.scene_changed(project, 1, 1, b"first")
                try:
                    await asyncio.wait_for(arrived.wait(), 5)
                except TimeoutError:
                    missed.append(round_)
                await Fanout.unsubscribe(subscriptions)
        finally:
            await sender_nc.close()
            await receiver_nc.close()
        return missed

    assert asyncio.run(rounds(40)) == []
