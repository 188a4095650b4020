"""FetchXML `condition` operators, with Dataverse's semantics: one small test per operator, in a table.

A test gets the row's value for the condition's attribute (None: null or missing) and the condition.
`like` follows SQL Server's LIKE (domain.md), and so do begins-with / ends-with and their negations, which
Dataverse runs as LIKE 'value%' / '%value' (powerapps-docs "Use wildcard characters in conditions for
string values"): `%`, `_` and `[...]` in their value are wildcards. The "current user" operators (eq-userid,
the team, hierarchy and business unit ones) mean the `Caller`. An operator missing from `OPERATORS` is not
supported.
"""

from __future__ import annotations

import operator
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from bot.sandbox.comparison import compare
from bot.sandbox.odata import QueryError
from bot.sandbox.schema import key_of

__all__ = ["OPERATORS", "Caller", "Condition", "Test", "sql_like"]


@lru_cache(maxsize=256)  # a query tests one pattern against every row
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
class Caller:
    """Whom the "current user" operators mean (ids as `key_of` gives them), and what they need of that user."""

    user_id: str
    teams: frozenset[str] = frozenset()  # the teams the user is a member of
    reports: frozenset[str] = frozenset()  # users below them in the manager hierarchy, to its depth
    reports_teams: frozenset[str] = frozenset()  # the teams those users are members of
    business_unit: str | None = None
    # What eq-useroruserteams and eq-useroruserhierarchyandteams accept, worked out once per query.
    user_or_teams: frozenset[str] = field(init=False)
    hierarchy: frozenset[str] = field(init=False)
    hierarchy_and_teams: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        me = frozenset({key_of(self.user_id)})
        object.__setattr__(self, "user_or_teams", me | self.teams)
        object.__setattr__(self, "hierarchy", me | self.reports)
        object.__setattr__(self, "hierarchy_and_teams", me | self.teams | self.reports | self.reports_teams)


@dataclass(frozen=True)
class Condition:
    """A `<condition>`: `literal` is its value="..." attribute, `values` its `<value>` children."""

    attribute: str
    operator: str
    literal: str | None
    values: list[str]
    caller: Caller  # whom eq-userid and the other "current user" operators mean

    @classmethod
    def read(cls, node: ET.Element, caller: Caller) -> Condition:
        attribute, op = node.get("attribute"), node.get("operator")
        if not attribute or not op:
            raise QueryError("FetchXML: a condition needs 'attribute' and 'operator'")
        values = [v.text or "" for v in node.findall("value")]
        return cls(attribute, op, node.get("value"), values, caller)


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


def _begins(value: Any, condition: Condition) -> bool:
    return sql_like((condition.literal or "") + "%").fullmatch(str(value)) is not None


def _ends(value: Any, condition: Condition) -> bool:
    return sql_like("%" + (condition.literal or "")).fullmatch(str(value)) is not None


def _is_user(value: Any, condition: Condition) -> bool:
    return compare("eq", value, condition.caller.user_id)


def _one_of(ids: Callable[[Caller], frozenset[str]]) -> Test:
    """A test that the value (an id) is one of the caller's `ids`."""
    return _present(lambda value, condition: key_of(value) in ids(condition.caller))


def _business_unit(equal: bool) -> Test:
    """eq-businessid / ne-businessid: the value against the caller's business unit (no unit: meets neither,
    as a comparison with SQL's NULL)."""

    def test(value: Any, condition: Condition) -> bool:
        unit = condition.caller.business_unit
        return value is not None and unit is not None and (key_of(value) == unit) == equal

    return test


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
    "begins-with": _present(_begins),
    "not-begin-with": _negated(_begins),
    "ends-with": _present(_ends),
    "not-end-with": _negated(_ends),
    "null": lambda value, condition: value is None,
    "not-null": lambda value, condition: value is not None,
    "eq-userid": _is_user,
    "ne-userid": _negated(_is_user),
    "eq-userteams": _one_of(lambda caller: caller.teams),
    "eq-useroruserteams": _one_of(lambda caller: caller.user_or_teams),
    "eq-useroruserhierarchy": _one_of(lambda caller: caller.hierarchy),
    "eq-useroruserhierarchyandteams": _one_of(lambda caller: caller.hierarchy_and_teams),
    "eq-businessid": _business_unit(equal=True),
    "ne-businessid": _business_unit(equal=False),
    "on-or-after": _day(operator.ge),
    "on-or-before": _day(operator.le),
}
