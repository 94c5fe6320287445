"""Live collaboration: the y-websocket protocol, the rooms that serve a scene to its peers,
the fan-out between API nodes and the follower of the event log that keeps rooms current.

It builds on the scene model (``core.scene``) and the event log (``core.events``); neither of
them, nor the workers, imports anything from here.
"""
