"""The two sides of every sync: the Wix schedule and one external calendar."""

from __future__ import annotations

from enum import StrEnum


class Side(StrEnum):
    WIX = "wix"
    EXTERNAL = "external"

    @property
    def other(self) -> Side:
        return Side.EXTERNAL if self is Side.WIX else Side.WIX
