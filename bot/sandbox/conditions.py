"""FetchXML `condition` operators, with Dataverse's semantics: one small test per operator, in a table.

A test gets the row's value for the condition's attribute (None: null or missing) and the condition.
`like` follows SQL Server's LIKE (domain.md); an operator missing from `OPERATORS` is not supported.
"""

from __future__ import annotations

import operator
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.sandbox.comparison import compare
from bot.sandbox.odata import QueryError

__all__ = ["OPERATORS", "Condition", "Test", "sql_like"]


def sql_like(pattern: str) -> re.Pattern[str]:
    """SQL Server LIKE as a regex: % any run, _ one character, [abc] / [^abc] / [a-c] a class; no case."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "%":
            out.append(".*")
        elif ch == "_":
            out.append(".")
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(ch))
            else:
                body = pattern[i + 1 : end]
                negate = body.startswith("^")
                if negate:
                    body = body[1:]
                escaped = "".join("\\" + c if c in "\\]^" else c for c in body)
                out.append(f"[{'^' if negate else ''}{escaped}]")
                i = end
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out), re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class Condition:
    """A `<condition>`: `literal` is its value="..." attribute, `values` its `<value>` children."""

    attribute: str
    operator: str
    literal: str | None
    values: list[str]
    user_id: str  # whom eq-userid means

    @classmethod
    def read(cls, node: ET.Element, user_id: str) -> Condition:
        attribute, op = node.get("attribute"), node.get("operator")
        if not attribute or not op:
            raise QueryError("FetchXML: a condition needs 'attribute' and 'operator'")
        values = [v.text or "" for v in node.findall("value")]
        return cls(attribute, op, node.get("value"), values, user_id)


Test = Callable[[Any, Condition], bool]  # (the row's value, the condition) -> whether the row meets it


def _present(test: Test) -> Test:
    """`test`, where a null value meets nothing."""
    return lambda value, condition: value is not None and test(value, condition)


def _negated(test: Test) -> Test:
    """The opposite of `test`, where a null value still meets nothing (as with SQL's NOT)."""
    return lambda value, condition: value is not None and not test(value, condition)


def _ordered(value: Any, condition: Condition) -> bool:
    if condition.literal is None:
        raise QueryError(f"FetchXML: condition {condition.attribute} {condition.operator} needs a value")
    return compare(condition.operator, value, condition.literal)


def _in(value: Any, condition: Condition) -> bool:
    options = condition.values or ([condition.literal] if condition.literal is not None else [])
    return any(compare("eq", value, option) for option in options)


def _like(value: Any, condition: Condition) -> bool:
    return sql_like(condition.literal or "").fullmatch(str(value)) is not None


def _text(test: Callable[[str, str], bool]) -> Test:
    """A test on the value and the literal as text, without case."""
    return _present(
        lambda value, condition: test(str(value).casefold(), (condition.literal or "").casefold())
    )


def _is_user(value: Any, condition: Condition) -> bool:
    return compare("eq", value, condition.user_id)


def _day(test: Callable[[str, str], bool]) -> Test:
    """A test on the value's day and the literal's (both as "YYYY-MM-DD")."""
    return _present(
        lambda value, condition: (
            condition.literal is not None and test(str(value)[:10], condition.literal[:10])
        )
    )


OPERATORS: dict[str, Test] = {
    **dict.fromkeys(("eq", "ne", "gt", "ge", "lt", "le"), _ordered),
    "in": _in,
    "not-in": _negated(_in),
    "like": _present(_like),
    "not-like": _negated(_like),
    "begins-with": _text(str.startswith),
    "not-begin-with": _text(lambda value, prefix: not value.startswith(prefix)),
    "ends-with": _text(str.endswith),
    "not-end-with": _text(lambda value, suffix: not value.endswith(suffix)),
    "null": lambda value, condition: value is None,
    "not-null": lambda value, condition: value is not None,
    "eq-userid": _is_user,
    "ne-userid": _negated(_is_user),
    "on-or-after": _day(operator.ge),
    "on-or-before": _day(operator.le),
}
