"""Every release of the plugin's history maps to its class, at both edges of each."""

from __future__ import annotations

import pytest

from scraper.releases import release_class

#: Each class: its first release and its last (PROTOCOL.md, "Release classes").
CLASSES = {
    "L1": ("1.8.79", "1.8.79"),
    "L2": ("1.8.80", "1.8.84"),
    "L3": ("1.8.85", "1.8.90"),
    "L4": ("1.8.91", "2.2"),
    "A1": ("2.3", "2.3.19"),
    "A2": ("2.3.20", "2.3.30"),
    "A3": ("2.3.31", "2.3.40"),
    "A4": ("2.3.41", "2.3.43"),
    "A5": ("2.3.69", "2.3.92"),
    "A6": ("2.3.93", "2.4.0"),
    "A7": ("2.4.1", "2.4.66"),
    "A8": ("2.4.67", "2.4.71"),
}


@pytest.mark.parametrize("name", list(CLASSES))
def test_each_class_from_its_first_release_to_its_last(name: str) -> None:
    first, last = CLASSES[name]
    assert release_class(first) == name
    assert release_class(last) == name


@pytest.mark.parametrize(
    ("release", "expected"),
    [
        ("1.9.18", "L4"),
        ("2.3.0", "A1"),  # the same release as 2.3
        ("2.4.72", "A8+"),  # newer than the classes: said so
        ("3.0", "A8+"),
        ("1.8.78", None),  # older than the classes
        ("1.7.9", None),
        ("", None),
        (None, None),
        ("2.4.71-beta", None),
        ("v2.4", None),
    ],
)
def test_other_releases(release: str | None, expected: str | None) -> None:
    assert release_class(release) == expected
