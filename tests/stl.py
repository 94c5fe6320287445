"""Binary STL files of any size, made in memory for tests of what large uploads cost."""

from __future__ import annotations

import numpy as np


def binary_stl(faces: int, seed: int) -> bytes:
    """A valid binary STL of ``faces`` separate triangles (50 bytes each) at random places."""
    record = np.dtype([("normal", "<f4", 3), ("corners", "<f4", (3, 3)), ("attr", "<u2")])
    triangles = np.zeros(faces, dtype=record)
    triangles["corners"] = np.random.default_rng(seed).random((faces, 3, 3), np.float32) * 100
    return b"\0" * 80 + np.uint32(faces).tobytes() + triangles.tobytes()
