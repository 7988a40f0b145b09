"""Kubernetes resource quantities (``8``, ``1k``, ``1e3``, ``2Ki``, ``500m``, ``1.5``) read as
apimachinery's ``resource.ParseQuantity`` reads them. Pure.

The grammar (k8s.io/apimachinery/pkg/api/resource): an optionally signed decimal number (``5``,
``5.``, ``.5``, ``5.5``) followed by one suffix: a binary SI one (``Ki Mi Gi Ti Pi Ei``), a decimal
SI one (``m``, none, ``k M G T P E``) or a decimal exponent (``e3``, ``E-2``). ``1E`` is one exa,
``1E3`` a thousand. No spaces. JSON numbers are accepted as the API server accepts them.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

_QUANTITY = re.compile(r"([+-]?)([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(.*)")
_EXPONENT = re.compile(r"[eE]([+-]?[0-9]+)")
_SUFFIX = {
    "": Fraction(1),
    "m": Fraction(1, 1000),
    **{s: Fraction(1000**i) for i, s in enumerate(("k", "M", "G", "T", "P", "E"), start=1)},
    **{s: Fraction(1024**i) for i, s in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"), start=1)},
}
#: apimachinery keeps quantities within int64 scales; a larger exponent is not a quantity anyone writes.
_MAX_EXPONENT = 64


def parse(value: object) -> Fraction | None:
    """The exact value of a quantity, or None when ``value`` is not one."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        return Fraction(value) if math.isfinite(value) else None
    match = _QUANTITY.fullmatch(str(value))
    if not match:
        return None
    sign, number, suffix = match.groups()
    amount = Fraction(number)
    if suffix in _SUFFIX:
        amount *= _SUFFIX[suffix]
    else:
        exponent = _EXPONENT.fullmatch(suffix)
        if not exponent or abs(int(exponent.group(1))) > _MAX_EXPONENT:
            return None
        amount *= Fraction(10) ** int(exponent.group(1))
    return -amount if sign == "-" else amount


def count(value: object) -> int:
    """A quantity of devices as a whole number: rounded up as ``Quantity.Value()`` rounds; a value
    that is no quantity, or negative, counts 0."""
    if type(value) is str and value.isascii() and value.isdigit():
        return int(value)  # the common case (``8``), without the exact arithmetic below
    amount = parse(value)
    return max(math.ceil(amount), 0) if amount is not None else 0
