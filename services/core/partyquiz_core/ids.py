"""Typed identifiers shared by every component; plain strings at run time."""

from __future__ import annotations

from typing import NewType

GameId = NewType("GameId", str)
PlayerId = NewType("PlayerId", str)
DeviceId = NewType("DeviceId", str)
JoinCode = NewType("JoinCode", str)
