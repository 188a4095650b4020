"""How the sandbox compares two values, as Dataverse does, for OData $filter and FetchXML conditions alike:
null only equals null; booleans, numbers and date-times compare as such; anything else as text, without case.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

__all__ = ["as_datetime", "compare"]


def as_datetime(value: Any) -> datetime | None:
    """An ISO 8601 date-time (a string with a "T", or a datetime) as a datetime; None for anything else."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and re.match(r"\d{4}-\d{2}-\d{2}T", value):
        try:
            return datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", value.replace("Z", "+00:00")))
        except ValueError:
            return None
    return None


def compare(op: str, left: Any, right: Any) -> bool:
    """Compare two values the way Dataverse does (null only equals null; strings ignore case)."""
    if left is None or right is None:
        return _compare_nulls(op, left, right)
    left, right = _comparable(left, right)
    try:
        # All six are worked out: a pair that can't be ordered (a naive and an aware date-time) meets none.
        outcomes = {name: test(left, right) for name, test in _OPERATORS.items()}
    except TypeError:
        return False
    return bool(outcomes[op])


_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}


def _compare_nulls(op: str, left: Any, right: Any) -> bool:
    both = left is None and right is None
    if op == "eq":
        return both
    if op == "ne":
        return not both
    return False


def _comparable(left: Any, right: Any) -> tuple[Any, Any]:
    """The two values as Dataverse compares them: as booleans, numbers, date-times, else strings without case."""
    if isinstance(left, bool) or isinstance(right, bool):
        return _truth(left), _truth(right)
    if isinstance(left, int | float) and isinstance(right, int | float):
        return left, right
    if (dl := as_datetime(left)) is not None and (dr := as_datetime(right)) is not None:
        return dl, dr
    if isinstance(left, int | float) or isinstance(right, int | float):
        try:
            return float(left), float(right)
        except (TypeError, ValueError):
            pass
    return str(left).casefold(), str(right).casefold()


def _truth(value: Any) -> Any:
    if isinstance(value, str):
        return value.lower() in ("true", "1")
    return bool(value)
