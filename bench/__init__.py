"""The benchmark suite: ``python -m bench`` (see bench/README.md).

Every figure is measured side by side with a reference in the same run, against
the bundled sandbox on loopback; ratios are what matter, not absolute numbers.
"""
