"""Kubernetes quantities read as apimachinery's resource.ParseQuantity reads them."""

from __future__ import annotations

from fractions import Fraction

import pytest

from kaip.resources import quantities


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("8", 8),
        ("0", 0),
        ("1k", 1000),
        ("1e3", 1000),
        ("1E3", 1000),
        ("1E", 10**18),  # a lone E is exa, not an exponent
        ("2M", 2_000_000),
        ("1G", 10**9),
        ("1Ki", 1024),
        ("1Mi", 1024**2),
        ("1.5Gi", Fraction(3, 2) * 1024**3),
        ("500m", Fraction(1, 2)),
        ("1.5", Fraction(3, 2)),
        ("5.", 5),
        (".5", Fraction(1, 2)),
        ("+2", 2),
        ("-1", -1),
        ("1e-3", Fraction(1, 1000)),
        ("1.5e3", 1500),
        (1000, 1000),  # a JSON number
    ],
)
def test_parses_as_apimachinery_does(text: object, value: Fraction | int) -> None:
    assert quantities.parse(text) == value


@pytest.mark.parametrize(
    "text", ["", "k", "1e", "1 ", " 1", "1kb", "0x10", "1.2.3", "1Kb", "one", None, True]
)
def test_what_is_no_quantity(text: object) -> None:
    assert quantities.parse(text) is None


@pytest.mark.parametrize(
    ("text", "devices"),
    [("1k", 1000), ("1e3", 1000), ("8", 8), ("500m", 1), ("1.2", 2), ("-3", 0), ("junk", 0), ("1e999", 0)],
)
def test_a_device_count_rounds_up_as_quantity_value_does(text: str, devices: int) -> None:
    assert quantities.count(text) == devices
