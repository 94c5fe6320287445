"""Project roles, ordered so that a check is one comparison."""

from __future__ import annotations

from enum import IntEnum

from core.errors import InvalidInput


class Role(IntEnum):
    VIEWER = 1
    EDITOR = 2
    OWNER = 3

    @classmethod
    def parse(cls, name: str) -> Role:
        try:
            return cls[name.upper()]
        except KeyError:
            allowed = ", ".join(r.name.lower() for r in cls)
            raise InvalidInput(f"unknown role {name!r}; use one of {allowed}") from None

    @property
    def label(self) -> str:
        return self.name.lower()
