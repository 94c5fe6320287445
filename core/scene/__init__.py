"""The scene model: the document's layout and schema, reading Yjs updates, the pure operations
on a scene (edits, merges, snapshots), origins and per-user undo.

It depends on nothing of the studio but ``core.errors``: the event log (``core.events``) and
live collaboration (``core.collab``) build on it, never the other way round.
"""
