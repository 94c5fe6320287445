"""The scene WebSocket speaks y-websocket v1, stores before it broadcasts, and checks roles.
(Stock Yjs clients are exercised in test_yjs_interop; these use pycrdt as the client.)"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from pycrdt import Decoder, Doc, Map, write_var_uint
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

import core.collab.room
import core.events.scene
from core.collab import protocol
from core.collab.fanout import Fanout
from core.events.jetstream import connect
from core.events.scene import Scene
from core.events.studio import Studio
from core.scene import document
from core.settings import Settings


class Client:
    """A pycrdt document synced over one test WebSocket."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.doc: Doc = Doc()
        self.objects = self.doc.get("objects", type=Map)

    def handshake(self) -> None:
        first = protocol.parse(self.ws.receive_bytes())
        assert isinstance(first, protocol.SyncStep1)
        self.ws.send_bytes(protocol.sync_step2(self.doc.get_update(first.state_vector)))
        self.ws.send_bytes(protocol.sync_step1(self.doc.get_state()))
        self.pump_until(lambda m: isinstance(m, protocol.SyncStep2))

    def pump_until(self, done):
        while True:
            frame = self.ws.receive_bytes()
            if Decoder(frame).read_var_uint() == protocol.MessageType.NOTICE:
                message = frame
            else:
                message = protocol.parse(frame)
                if isinstance(message, protocol.SyncStep2 | protocol.SyncUpdate):
                    self.doc.apply_update(message.update)
            if done(message):
                return message

    def edit(self, object_id: str, **fields) -> None:
        before = self.doc.get_state()
        with self.doc.transaction():
            self.objects[object_id] = Map(fields)
        self.ws.send_bytes(protocol.update(self.doc.get_update(before)))


@contextlib.contextmanager
def synced_pair(client: TestClient, project) -> Iterator[tuple[Client, Client]]:
    """The owner (Alice) and the viewer (Bob) on the project's socket, both synced."""
    project_id, owner, viewer = project
    url = f"/ws/projects/{project_id}"
    with client.websocket_connect(f"{url}?token={owner.token}") as a, \
            client.websocket_connect(f"{url}?token={viewer.token}") as b:
        alice, bob = Client(a), Client(b)
        alice.handshake()
        bob.handshake()
        yield alice, bob


@pytest.fixture
def project(client: TestClient, prepared: Settings, make_account):
    owner, viewer = make_account("olga"), make_account("vic")
    project_id = client.post("/api/v1/projects", json={"name": "S"},
                             headers=owner.headers).json()["id"]
    client.post(f"/api/v1/projects/{project_id}/invite", json={"user": "vic", "role": "viewer"},
                headers=owner.headers)
    return project_id, owner, viewer


def test_an_author_is_not_sent_its_own_edit_back(client: TestClient, project):
    """Alice has her edit; Bob and Alice's second tab (another connection of hers) get it.
    The sync answer Alice asks for afterwards is the next frame she receives: nothing of her
    own came back before it."""
    project_id, owner, _ = project
    url = f"/ws/projects/{project_id}?token={owner.token}"
    with synced_pair(client, project) as (alice, bob), client.websocket_connect(url) as t:
        tab = Client(t)
        tab.handshake()
        alice.edit("lamp", name="lamp")
        bob.pump_until(lambda m: isinstance(m, protocol.SyncUpdate))
        tab.pump_until(lambda m: isinstance(m, protocol.SyncUpdate))
        assert bob.objects.to_py() == tab.objects.to_py() == {"lamp": {"name": "lamp"}}
        alice.ws.send_bytes(protocol.sync_step1(alice.doc.get_state()))
        answer = protocol.parse(alice.ws.receive_bytes())
        assert isinstance(answer, protocol.SyncStep2)
        assert document.is_empty(answer.update)  # she had everything


def test_edits_are_stored_then_broadcast(client: TestClient, prepared: Settings, project):
    project_id, _, viewer = project
    url = f"/ws/projects/{project_id}"
    with synced_pair(client, project) as (alice, bob):
        alice.edit("lamp", name="lamp", blob="b1")
        bob.pump_until(lambda m: isinstance(m, protocol.SyncUpdate))
        assert bob.objects.to_py() == {"lamp": {"name": "lamp", "blob": "b1"}}
        # stored before Bob saw it
        assert prepared.database_url is not None
        studio = Studio.connect(prepared.database_url)
        assert document.snapshot(studio.scene(uuid.UUID(project_id)).state)["objects"] == \
            {"lamp": {"name": "lamp", "blob": "b1"}}

        # a viewer's edit is refused, reported, and not stored
        bob.edit("graffiti", name="x")
        notice = bob.pump_until(lambda m: isinstance(m, bytes))
        assert b"viewers cannot edit" in notice
        assert "graffiti" not in document.snapshot(
            studio.scene(uuid.UUID(project_id)).state)["objects"]
        studio.close()

    # a client joining later gets the full state
    with client.websocket_connect(f"{url}?token={viewer.token}") as c:
        carol = Client(c)
        carol.handshake()
        assert carol.objects.to_py() == {"lamp": {"name": "lamp", "blob": "b1"}}


def _transaction_update(doc: Doc, change) -> bytes:
    """The update a Yjs client sends for one local transaction (its own deletions only)."""
    made: list[bytes] = []
    subscription = doc.observe(lambda event: made.append(event.update))
    change(doc)
    doc.unobserve(subscription)
    return made[0]


def test_a_broadcast_carries_the_edit_not_the_documents_history(client: TestClient, project):
    """Forty collaborators (forty Yjs client ids) overwrite one value in turn: each broadcast
    stays the size of the edit sent. A diff against the receiver's state vector would carry the
    delete set of every overwritten value, so it grew with the document's history and every
    peer decoded all of it on every edit."""
    with synced_pair(client, project) as (alice, bob):
        shared = Doc()
        sent, received = [], []
        for turn in range(40):
            author = Doc()  # a fresh client id, caught up like a collaborator would be
            author.apply_update(shared.get_update())
            edit = _transaction_update(author, lambda doc, t=turn: doc.get(
                "meta", type=Map).__setitem__("title", f"take {t}"))
            shared.apply_update(edit)
            sent.append(edit)
            alice.ws.send_bytes(protocol.update(edit))
            received.append(bob.pump_until(
                lambda m: isinstance(m, protocol.SyncUpdate)).update)
        assert bob.doc.get("meta", type=Map).to_py() == {"title": "take 39"}
        assert max(map(len, received)) <= 2 * max(map(len, sent)), (
            [len(u) for u in received[::8]], [len(u) for u in sent[::8]])


def test_a_room_compacts_after_the_edit_that_filled_the_tail(
        client: TestClient, prepared: Settings, project, monkeypatch: pytest.MonkeyPatch):
    """Compaction is a transaction of its own after the broadcast: every edit is stored once
    and seen by the other peer, each compaction follows the update that filled the tail, and
    the stored log replays to what the peers hold."""
    monkeypatch.setattr(core.events.scene, "COMPACT_EVERY_UPDATES", 5)
    project_id = project[0]
    with synced_pair(client, project) as (alice, bob):
        for i in range(13):
            alice.edit(f"o{i % 3}", name=f"take {i}")
            bob.pump_until(lambda m, i=i: isinstance(m, protocol.SyncUpdate)
                           and bob.objects.to_py().get(f"o{i % 3}") == {"name": f"take {i}"})
        held = bob.objects.to_py()
    assert prepared.database_url is not None
    studio = Studio.connect(prepared.database_url)
    try:
        events = list(studio.events.get(Scene.create_id(project_id)))
        kinds = [type(e).__name__ for e in events]
        assert kinds.count("Updated") == 13
        assert [e.originator_version for e in events] == list(range(1, len(events) + 1))
        compacted = [i for i, kind in enumerate(kinds) if kind == "Compacted"]
        assert len(compacted) == 2 and all(kinds[i - 1] == "Updated" for i in compacted)
        assert document.snapshot(studio.scene(uuid.UUID(project_id)).state)["objects"] == held
    finally:
        studio.close()


def test_a_room_stores_after_another_writer_took_its_next_version(
        client: TestClient, prepared: Settings, project):
    """A command (another writer, which tells no room) appends between two socket edits: the
    room's next append clashes on the version, reloads what is stored and goes in on top; the
    log stays gapless and the other peer ends up with all three changes."""
    project_id, owner, _ = project
    assert prepared.database_url is not None
    other = Studio.connect(prepared.database_url)
    try:
        with synced_pair(client, project) as (alice, bob):
            alice.edit("lamp", name="lamp")
            bob.pump_until(lambda m: isinstance(m, protocol.SyncUpdate))
            other.edit_scene(uuid.UUID(project_id), {"chair": {"name": "chair"}},
                             actor=owner.user_id, origin="command")
            alice.edit("desk", name="desk")
            bob.pump_until(lambda m: "desk" in bob.objects.to_py()
                           and "chair" in bob.objects.to_py())
            assert set(bob.objects.to_py()) == {"lamp", "chair", "desk"}
        events = list(other.events.get(Scene.create_id(project_id)))
        assert [e.originator_version for e in events] == list(range(1, len(events) + 1))
        assert [getattr(e, "origin", None) for e in events[1:]] == ["ws", "command", "ws"]
    finally:
        other.close()


def test_a_change_another_node_stores_while_a_room_loads_reaches_it(
        client: TestClient, prepared: Settings, project, monkeypatch):
    """Another node stores a change and announces it just after this node read the log for
    a room it is loading. The room hears of it, reads it from the log and has it before
    anybody edits again (it used to subscribe after the read, and missed such a change
    until the next one showed the gap)."""
    project_id, owner, _ = project
    assert prepared.database_url is not None and prepared.nats_url is not None
    studio = client.app.state.resources.studio
    other = Studio.connect(prepared.database_url)
    read_the_log = studio.scene

    async def announce(version: int) -> None:
        nc = await connect(prepared.nats_url or "", "another node")
        try:
            await Fanout(nc, prepared.namespace, node="other").scene_changed(
                uuid.UUID(project_id), version, version)  # no update: read it from the log
            await nc.flush()
        finally:
            await nc.close()

    announced: list[int] = []

    def read_then_another_node_edits(pid: uuid.UUID) -> Scene:
        scene = read_the_log(pid)
        announced.append(other.edit_scene(pid, {"chair": {"name": "chair"}},
                                          actor=owner.user_id, origin="command"))
        asyncio.run(announce(announced[0]))
        return scene

    monkeypatch.setattr(studio, "scene", read_then_another_node_edits)
    url = f"/ws/projects/{project_id}?token={owner.token}"
    try:
        with client.websocket_connect(url) as ws:
            alice = Client(ws)
            alice.handshake()
            room = client.app.state.resources.rooms.loaded(uuid.UUID(project_id))
            deadline = time.monotonic() + 5  # the announcement may come after the sync
            while room.version < announced[0] and time.monotonic() < deadline:
                time.sleep(0.01)
            ws.send_bytes(protocol.sync_step1(alice.doc.get_state()))
            alice.pump_until(lambda m: isinstance(m, protocol.SyncStep2))
            assert alice.objects.to_py() == {"chair": {"name": "chair"}}
            assert room.version == announced[0]
    finally:
        other.close()


def test_a_room_carries_on_when_it_cannot_tell_other_nodes(client: TestClient, project):
    """NATS goes away under a loaded room: edits are still stored and reach this node's
    peers (other nodes read what they missed from the log once they hear of a later change)."""
    with synced_pair(client, project) as (alice, bob):
        alice.edit("lamp", name="lamp")
        bob.pump_until(lambda m: isinstance(m, protocol.SyncUpdate))
        client.portal.call(client.app.state.resources.nats.close)
        for name in ("desk", "chair"):
            alice.edit(name, name=name)
            bob.pump_until(lambda m, name=name: name in bob.objects.to_py())
        assert set(bob.objects.to_py()) == {"lamp", "desk", "chair"}


@contextlib.contextmanager
def slow_scene_rows(settings: Settings, project_id: str, seconds: float) -> Iterator[None]:
    """The real database takes ``seconds`` to insert each row of the project's scene (a
    trigger), so that edits queue up behind a store."""
    assert settings.database_url is not None
    with psycopg.connect(settings.database_url, autocommit=True) as db:
        db.execute(sql.SQL("CREATE FUNCTION slow_row() RETURNS trigger LANGUAGE plpgsql AS"
                           " $$ BEGIN PERFORM pg_sleep({}); RETURN NEW; END $$").format(
                               sql.Literal(seconds)))
        db.execute(sql.SQL("CREATE TRIGGER slow_scene BEFORE INSERT ON studio_events"
                           " FOR EACH ROW WHEN (NEW.originator_id = {})"
                           " EXECUTE FUNCTION slow_row()").format(
                               sql.Literal(Scene.create_id(project_id))))
        try:
            yield
        finally:
            db.execute("DROP TRIGGER slow_scene ON studio_events")
            db.execute("DROP FUNCTION slow_row()")


def test_a_room_stops_reading_while_too_much_waits_for_a_store(
        client: TestClient, prepared: Settings, project, make_account,
        monkeypatch: pytest.MonkeyPatch):
    """An editor sends faster than the database stores: once the edits waiting for a store
    pass the room's limit, the room reads no more of its frames until the store catches up,
    so what waits in memory stays near the limit; every edit is still stored and seen."""
    cap = 2000
    monkeypatch.setattr(core.collab.room, "MAX_PENDING_BYTES", cap)
    admin = make_account("ada", admin=True)
    project_id = project[0]
    edits = [f"o{i}" for i in range(10)]
    with slow_scene_rows(prepared, project_id, 0.3), synced_pair(client, project) as (alice, bob):
        alice.edit("lamp", name="lamp")  # its store sleeps while the others arrive
        for name in edits:
            alice.edit(name, caption=name * 500)  # 1 kB each
        waiting = []
        for _ in range(10):
            rooms = client.get("/api/v1/admin/rooms", headers=admin.headers).json()["rooms"]
            waiting += [r["pending_bytes"] for r in rooms if r["project_id"] == project_id]
            time.sleep(0.1)
        bob.pump_until(lambda m: set(edits) <= set(bob.objects.to_py()))
    assert 0 < max(waiting) <= cap + 1500, waiting
    assert prepared.database_url is not None
    studio = Studio.connect(prepared.database_url)
    try:
        stored = document.snapshot(studio.scene(uuid.UUID(project_id)).state)["objects"]
    finally:
        studio.close()
    assert set(stored) == {"lamp", *edits}


def test_the_admin_rooms_report_how_long_the_room_took_to_store_its_edits(
        client: TestClient, prepared: Settings, project, make_account):
    """Every edit waits for its store before anyone sees it, so an operator asking why edits
    are slow gets the stores' times: one store made slow by the database shows as the longest,
    and the median is one of the others."""
    admin = make_account("ada", admin=True)
    project_id = project[0]

    def room() -> dict:
        rooms = client.get("/api/v1/admin/rooms", headers=admin.headers).json()["rooms"]
        return next(r for r in rooms if r["project_id"] == project_id)

    with synced_pair(client, project) as (alice, bob):
        assert room()["stores_timed"] == 0
        assert room()["store_max_ms"] is None
        with slow_scene_rows(prepared, project_id, 0.3):
            alice.edit("lamp", name="lamp")
            bob.pump_until(lambda m: "lamp" in bob.objects.to_py())
        for name in ("chair", "desk"):
            alice.edit(name, name=name)
        bob.pump_until(lambda m: {"chair", "desk"} <= set(bob.objects.to_py()))
        stats = room()
    assert stats["stores_timed"] == 3
    assert stats["store_max_ms"] >= 300  # the trigger's sleep, inside the timed store
    assert stats["store_p50_ms"] < 300 <= stats["store_p99_ms"] == stats["store_max_ms"]


def test_edits_queued_behind_a_store_go_as_events_that_each_fit(
        client: TestClient, prepared: Settings, project, monkeypatch: pytest.MonkeyPatch):
    """Two big edits of one author queue up behind a slow store (a trigger makes the real
    database take half a second a row). Merged they would outgrow one event, so they go as
    two: nobody's socket closes and every edit is stored."""
    limit = 16 * 1024
    monkeypatch.setattr(core.events.scene, "MAX_UPDATE_BYTES", limit)
    project_id = project[0]
    with slow_scene_rows(prepared, project_id, 0.5), synced_pair(client, project) as (alice, bob):
        alice.edit("lamp", name="lamp")  # its store sleeps while the next two queue
        alice.edit("poster", caption="p" * (limit * 5 // 8))
        alice.edit("banner", caption="b" * (limit * 5 // 8))
        bob.pump_until(lambda m: {"lamp", "poster", "banner"} <= set(bob.objects.to_py()))
        # Alice's socket is still open: a round trip answers (a 4500 close instead, the batch
        # refused, would raise here)
        alice.ws.send_bytes(protocol.sync_step1(alice.doc.get_state()))
        alice.pump_until(lambda m: isinstance(m, protocol.SyncStep2))
    stored = _stored_updates(prepared, project_id)
    assert len(stored) == 3 and all(len(e.update) <= limit for e in stored)


def test_an_edit_that_cannot_be_stored_closes_its_authors_socket(
        client: TestClient, prepared: Settings, project):
    """The database refuses the scene's rows (a trigger: a real failure of the real server):
    the author's socket closes with 4500, nobody sees the edit, and once the database takes
    rows again the client's resend after reconnecting stores it exactly once."""
    project_id, owner, viewer = project
    url = f"/ws/projects/{project_id}"
    scene_id = Scene.create_id(project_id)
    assert prepared.database_url is not None
    with psycopg.connect(prepared.database_url, autocommit=True) as db:
        db.execute("CREATE FUNCTION refuse_row() RETURNS trigger LANGUAGE plpgsql AS"
                   " $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$")
        db.execute(sql.SQL("CREATE TRIGGER refuse_scene BEFORE INSERT ON studio_events"
                           " FOR EACH ROW WHEN (NEW.originator_id = {})"
                           " EXECUTE FUNCTION refuse_row()").format(sql.Literal(scene_id)))
        try:
            with synced_pair(client, project) as (alice, bob):
                alice.edit("lamp", name="lamp")
                with pytest.raises(WebSocketDisconnect) as closed:
                    while True:
                        alice.ws.receive_bytes()
                assert closed.value.code == 4500 and closed.value.reason
                bob.ws.send_bytes(protocol.sync_step1(Doc().get_state()))
                bob.pump_until(lambda m: isinstance(m, protocol.SyncStep2))
                assert bob.objects.to_py() == {}
        finally:
            db.execute("DROP TRIGGER refuse_scene ON studio_events")
            db.execute("DROP FUNCTION refuse_row()")

    with client.websocket_connect(f"{url}?token={owner.token}") as a, \
            client.websocket_connect(f"{url}?token={viewer.token}") as b:
        bob = Client(b)
        bob.handshake()
        alice.ws = a
        alice.handshake()  # its sync step 2 carries the edit the server never stored
        bob.pump_until(lambda m: isinstance(m, protocol.SyncUpdate))
        assert bob.objects.to_py() == {"lamp": {"name": "lamp"}}
    studio = Studio.connect(prepared.database_url)
    try:
        stored = [e for e in studio.events.get(scene_id) if isinstance(e, Scene.Updated)]
        assert len(stored) == 1 and stored[0].actor == owner.user_id
    finally:
        studio.close()


@pytest.mark.parametrize(("query", "code"), [("", 4401), ("?token=orf_nope", 4401)])
def test_refusals_carry_a_close_code(client: TestClient, project, query, code):
    project_id, _, _ = project
    with client.websocket_connect(f"/ws/projects/{project_id}{query}") as ws, \
            pytest.raises(WebSocketDisconnect) as closed:
        ws.receive_bytes()
    assert closed.value.code == code and closed.value.reason


def test_non_members_and_unknown_projects(client: TestClient, project, make_account):
    project_id, _, _ = project
    stranger = make_account("stan")
    for path, code in ((project_id, 4403), (str(uuid.uuid4()), 4404), ("nope", 4404)):
        with client.websocket_connect(f"/ws/projects/{path}?token={stranger.token}") as ws, \
                pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_bytes()
        assert closed.value.code == code, (path, closed.value)


def _valid_update() -> bytes:
    doc = Doc()
    doc.get("objects", type=Map)["lamp"] = Map({"name": "lamp", "blob": "b1"})
    return doc.get_update()


BAD_FRAMES = {
    "random bytes": bytes.fromhex("9cf107de adbeef00 17c3"),  # message type 0x1ef8 9c: unknown
    "truncated varint": b"\x00\x02\xff\xff\xff",  # an update whose length never ends
    # a whole update, under a length that claims more: the frame was cut short
    "length beyond the frame": b"\x00\x02" + write_var_uint(2**31) + _valid_update(),
    "unknown message type": write_var_uint(42) + b"\x00",
    "unknown sync message": b"\x00\x07\x00",
    "truncated update": protocol.update(_valid_update()[:20]),
    "state vector that is not one": protocol.sync_step1(b"\xff\xff\xff"),
    "awareness that is not one": protocol.awareness(b"\x01\xff\xff\xff\xff"),
}


def _closed(ws) -> tuple[int, str]:
    """The close code and reason the server answers the last frame sent with. A probe (sync
    step 1) follows that frame: the server reads a socket's frames in order, so if it took
    the frame, the probe's answer arrives instead of a close, and the test fails at once."""
    ws.send_bytes(protocol.sync_step1(b"\x00"))
    with pytest.raises(WebSocketDisconnect) as closed:
        while True:
            frame = ws.receive_bytes()
            assert not frame.startswith(b"\x00\x01"), "the socket took the frame and answered"
    return closed.value.code, closed.value.reason


def _stored_updates(settings: Settings, project_id: str) -> list[Scene.Updated]:
    assert settings.database_url is not None
    studio = Studio.connect(settings.database_url)
    try:
        return [e for e in studio.events.get(Scene.create_id(project_id))
                if isinstance(e, Scene.Updated)]
    finally:
        studio.close()


@pytest.mark.parametrize("frame", list(BAD_FRAMES.values()), ids=list(BAD_FRAMES))
def test_a_bad_frame_closes_its_socket_and_nothing_else(
        client: TestClient, prepared: Settings, project, frame: bytes):
    """An editor's socket sends a frame that breaks the protocol: that socket closes with 4400
    and a reason; the room and its other peers carry on, and nothing is stored."""
    project_id, owner, _ = project
    with synced_pair(client, project) as (alice, bob):
        with client.websocket_connect(f"/ws/projects/{project_id}?token={owner.token}") as m:
            Client(m).handshake()
            m.send_bytes(frame)
            code, reason = _closed(m)
        assert code == protocol.CloseCode.BAD_MESSAGE and reason
        assert _stored_updates(prepared, project_id) == []
        alice.edit("lamp", name="lamp")
        bob.pump_until(lambda m: isinstance(m, protocol.SyncUpdate))
        assert bob.objects.to_py() == {"lamp": {"name": "lamp"}}
    assert len(_stored_updates(prepared, project_id)) == 1


def test_a_text_frame_closes_with_4400(client: TestClient, project):
    project_id, owner, _ = project
    with client.websocket_connect(f"/ws/projects/{project_id}?token={owner.token}") as ws:
        Client(ws).handshake()
        ws.send_text("hello")
        assert _closed(ws) == (protocol.CloseCode.BAD_MESSAGE, "send binary frames")


class TestAConfiguredFrameLimit:
    LIMIT = 4096

    @pytest.fixture
    def prepared(self, prepared: Settings) -> Settings:
        return prepared.replace(ws_max_frame_bytes=self.LIMIT)

    def test_a_huge_update_closes_with_4413_and_nothing_is_stored(
            self, client: TestClient, prepared: Settings, project):
        """A real Yjs update over the configured limit (a long name) closes its socket with
        4413; one just under it is stored and seen."""
        project_id, owner, _ = project
        with synced_pair(client, project) as (alice, bob):
            with client.websocket_connect(f"/ws/projects/{project_id}?token={owner.token}") as m:
                mallory = Client(m)
                mallory.handshake()
                mallory.edit("poster", name="x" * self.LIMIT)
                code, reason = _closed(m)
            assert code == protocol.CloseCode.TOO_LARGE and f"limit is {self.LIMIT}" in reason
            alice.edit("lamp", name="y" * (self.LIMIT - 200))
            bob.pump_until(lambda m: isinstance(m, protocol.SyncUpdate))
            assert list(bob.objects.to_py()) == ["lamp"]
        assert len(_stored_updates(prepared, project_id)) == 1


def test_removing_a_collaborator_closes_their_socket(client: TestClient, project):
    project_id, owner, viewer = project
    with client.websocket_connect(f"/ws/projects/{project_id}?token={viewer.token}") as ws:
        Client(ws).handshake()
        online = client.get(f"/api/v1/projects/{project_id}/collaborators",
                            headers=owner.headers).json()["collaborators"]
        assert {c["username"]: c["online"] for c in online} == {"olga": False, "vic": True}
        removed = client.delete(f"/api/v1/projects/{project_id}/collaborators/{viewer.user_id}",
                                headers=owner.headers)
        assert removed.status_code == 204
        with pytest.raises(WebSocketDisconnect) as closed:
            while True:
                ws.receive_bytes()
        assert closed.value.code == 4403
