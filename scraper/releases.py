"""Which of the plugin's release classes a release belongs to.

The guest-facing surface of every AI Power release from 1.8.79 to 2.4.71 falls
into twelve classes (PROTOCOL.md, "Release classes"); a release is in the class
of the last first-release at or below it. The client speaks every class the
same way from what the page and the replies show; the class is reported (by
``health`` and ``refresh``) so a user can tell what the site runs. This table is
the client's own: the sandbox keeps its own, so the two cannot agree on a mistake.
"""

from __future__ import annotations

import re

__all__ = ["NEWEST", "release_class"]

#: Each class and its first release, oldest first.
_FIRSTS: tuple[tuple[tuple[int, ...], str], ...] = (
    ((1, 8, 79), "L1"),
    ((1, 8, 80), "L2"),
    ((1, 8, 85), "L3"),
    ((1, 8, 91), "L4"),
    ((2, 3), "A1"),
    ((2, 3, 20), "A2"),
    ((2, 3, 31), "A3"),
    ((2, 3, 41), "A4"),
    ((2, 3, 69), "A5"),
    ((2, 3, 93), "A6"),
    ((2, 4, 1), "A7"),
    ((2, 4, 67), "A8"),
)
#: The newest release the classes were drawn from; a newer one is reported as such.
NEWEST = (2, 4, 71)


def _version(release: str) -> tuple[int, ...] | None:
    if not re.fullmatch(r"\d+(?:\.\d+){0,3}", release):
        return None
    parts = tuple(int(p) for p in release.split("."))
    while len(parts) > 1 and parts[-1] == 0:  # 2.3.0 is 2.3
        parts = parts[:-1]
    return parts


def release_class(release: str | None) -> str | None:
    """``"L1"`` … ``"A8"`` for a release of the plugin, or None when it is older than
    1.8.79 or not a version number; a release newer than 2.4.71 is ``"A8+"``."""
    version = _version(release) if release else None
    if version is None or version < _FIRSTS[0][0]:
        return None
    found = _FIRSTS[0][1]
    for first, name in _FIRSTS:
        if version >= first:
            found = name
    return f"{found}+" if version > NEWEST else found
