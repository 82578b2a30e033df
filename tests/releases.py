"""One release of each of the plugin's 12 release classes (PROTOCOL.md), for tests to
run against: the sandbox behaves as the class of the release it is given."""

from __future__ import annotations

#: class -> a release of it, oldest class first (inside the range, not always its edge).
REPRESENTATIVES: dict[str, str] = {
    "L1": "1.8.79",
    "L2": "1.8.82",
    "L3": "1.8.88",
    "L4": "1.9.5",
    "A1": "2.3.5",
    "A2": "2.3.25",
    "A3": "2.3.35",
    "A4": "2.3.42",
    "A5": "2.3.80",
    "A6": "2.3.94",
    "A7": "2.4.33",
    "A8": "2.4.69",
}
