"""FetchXML evaluation for the sandbox, with Dataverse's semantics for the supported subset.

Supported: `fetch` (top, count, distinct), `entity`, `attribute`, `all-attributes`, `order`, nested
`filter` (and/or), `link-entity` (inner and outer, nested, with `entityname` conditions), and the condition
operators in `conditions.OPERATORS`. Anything else is refused with a `QueryError` naming it: never a silent
wrong answer.

As in SQL, a record is joined to its linked rows one combination at a time (an outer link without a match
gives nulls), and the filters must hold on one combination: two conditions on alias "ap" mean the same
activity party, not any two. Each record is returned once (as with distinct="true"), its linked attributes
from the first combination that meets the filters. Run as a user, a query returns only what they may read.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from bot.sandbox.conditions import OPERATORS, Caller, Condition, Test, sql_like
from bot.sandbox.odata import QueryError, first_rows
from bot.sandbox.org import Org
from bot.sandbox.schema import ENTITY_SETS, LOGICAL_TO_SET

__all__ = ["check_fetch", "run_fetch", "sql_like"]

Row = dict[str, Any]
Joins = dict[str, Row | None]  # link-entity alias -> its row in one combination (None: an outer miss)

_FETCH_ATTRIBUTES = {
    "version",
    "output-format",
    "mapping",
    "distinct",
    "no-lock",
    "top",
    "count",
    "page",
    "returntotalrecordcount",
}
_ENTITY_CHILDREN = {"attribute", "all-attributes", "filter", "link-entity", "order"}
_LINK_ATTRIBUTES = {"name", "from", "to", "alias", "link-type", "visible", "intersect"}


def value_of(row: Row | None, attribute: str) -> Any:
    """A column by logical name: lookups are stored in Web API shape, `_name_value`."""
    if row is None:
        return None
    if attribute in row:
        return row[attribute]
    return row.get(f"_{attribute}_value")


@dataclass
class _Link:
    entity_set: str
    alias: str
    from_attr: str
    to_attr: str
    outer: bool
    node: ET.Element
    links: list[_Link]

    def aliases(self) -> list[str]:
        """Its alias and those of the links nested in it."""
        return [self.alias, *(a for link in self.links for a in link.aliases())]


@dataclass(frozen=True)
class _Filters:
    """An entity's or link's <filter> children (AND-ed), split by whether they name linked rows."""

    own: list[ET.Element]  # only the row's own columns: tested once per row
    linked: list[ET.Element]  # with `entityname` conditions: tested on each combination of linked rows


def caller_of(org: Org, user_id: str) -> Caller:
    """What the "current user" operators need to know of `user_id`, from the org."""
    reports = org.reports_of(user_id)
    return Caller(
        user_id=user_id,
        teams=org.teams_of(user_id),
        reports=reports,
        reports_teams=frozenset(team for user in reports for team in org.teams_of(user)),
        business_unit=org.business_unit_of(user_id),
    )


class _Evaluator:
    def __init__(self, org: Org, caller: Caller) -> None:
        self.org = org
        self.caller = caller
        self.aliases = 0
        self.indexes: dict[tuple[str, str], dict[str, list[Row]]] = {}
        self.conditions: dict[ET.Element, tuple[Condition, Test]] = {}
        self.filters: dict[ET.Element, _Filters] = {}

    def entity_set(self, logical_name: str | None) -> str:
        entity_set = LOGICAL_TO_SET.get(logical_name or "")
        if entity_set is None:
            raise QueryError(f"FetchXML: entity {logical_name!r} is not in this sandbox")
        return entity_set

    def link(self, node: ET.Element) -> _Link:
        for attr in node.attrib:
            if attr not in _LINK_ATTRIBUTES:
                raise QueryError(f"FetchXML: link-entity attribute {attr!r} is not supported")
        link_type = node.get("link-type", "inner")
        if link_type not in ("inner", "outer"):
            raise QueryError(f"FetchXML: link-type {link_type!r} is not supported")
        if not node.get("from") or not node.get("to"):
            raise QueryError("FetchXML: link-entity needs both 'from' and 'to'")
        self.aliases += 1
        children = [c for c in node if c.tag == "link-entity"]
        self.check_children(node, _ENTITY_CHILDREN)
        link = _Link(
            entity_set=self.entity_set(node.get("name")),
            alias=node.get("alias") or f"{node.get('name')}{self.aliases}",
            from_attr=node.get("from", ""),
            to_attr=node.get("to", ""),
            outer=link_type == "outer",
            node=node,
            links=[self.link(c) for c in children],
        )
        self.prepare(node, link.links)
        return link

    @staticmethod
    def check_children(node: ET.Element, allowed: set[str]) -> None:
        for child in node:
            if child.tag not in allowed:
                raise QueryError(f"FetchXML: <{child.tag}> inside <{node.tag}> is not supported")

    def prepare(self, node: ET.Element, links: list[_Link]) -> None:
        """Check the filters of an entity or link up front (so an empty table refuses them too): their
        types, conditions and operators, and that each `entityname` names one of `links` (or one in them)."""
        known = {alias for link in links for alias in link.aliases()}
        own: list[ET.Element] = []
        linked: list[ET.Element] = []
        for node_filter in node.findall("filter"):
            self.check_filter(node_filter)
            names = {c.get("entityname") for c in node_filter.iter("condition")} - {None}
            unknown = sorted(str(name) for name in names - known)
            if unknown:
                raise QueryError(f"FetchXML: condition entityname {unknown[0]!r} names no link-entity here")
            (linked if names else own).append(node_filter)
        self.filters[node] = _Filters(own, linked)

    def check_filter(self, node: ET.Element) -> None:
        if node.get("type", "and") not in ("and", "or"):
            raise QueryError(f"FetchXML: filter type {node.get('type')!r} is not supported")
        self.check_children(node, {"condition", "filter"})
        for child in node:
            if child.tag == "filter":
                self.check_filter(child)
            else:
                self.read_condition(child)

    def match(self, row: Row, node: ET.Element, links: list[_Link]) -> Joins | None:
        """The first combination of linked rows with which `row` meets `node`'s filters (None: there's none)."""
        return next(self.matches(row, node, links), None)

    def matches(self, row: Row, node: ET.Element, links: list[_Link]) -> Iterator[Joins]:
        """Each combination of linked rows with which `row` meets `node`'s filters, lazily."""
        filters = self.filters[node]
        if not all(self.filter(row, f, {}) for f in filters.own):
            return  # cheap test first: most rows fail the record's own conditions
        for joins in self.combinations(row, links):
            if all(self.filter(row, f, joins) for f in filters.linked):
                yield joins

    def combinations(self, row: Row, links: list[_Link]) -> Iterator[Joins]:
        """The cross product of each link's rows joined to `row` (an inner link without any: none)."""
        if not links:
            yield {}
            return
        for head in self.joined(row, links[0]):
            for tail in self.combinations(row, links[1:]):
                yield {**head, **tail}

    def joined(self, row: Row, link: _Link) -> Iterator[Joins]:
        """The rows of `link` joined to `row` that meet the link's own filters, each with its nested links'
        rows; for an outer link without any, one combination of nulls."""
        wanted = value_of(row, link.to_attr)
        candidates = self.index(link.entity_set, link.from_attr).get(str(wanted).casefold(), [])
        found = False
        for candidate in candidates if wanted is not None else []:
            for joins in self.matches(candidate, link.node, link.links):
                found = True
                yield {link.alias: candidate, **joins}
        if not found and link.outer:
            yield dict.fromkeys(link.aliases())

    def index(self, entity_set: str, attribute: str) -> dict[str, list[Row]]:
        """Rows of a table by one column's value (ids and keys compare without case), built once per query."""
        key = (entity_set, attribute)
        if key not in self.indexes:
            built: dict[str, list[Row]] = {}
            for candidate in self.org.rows(entity_set):
                value = value_of(candidate, attribute)
                if value is not None:
                    built.setdefault(str(value).casefold(), []).append(candidate)
            self.indexes[key] = built
        return self.indexes[key]

    def filter(self, row: Row, node: ET.Element, joins: Joins) -> bool:
        results = (
            self.filter(row, child, joins) if child.tag == "filter" else self.condition(row, child, joins)
            for child in node
        )
        return all(results) if node.get("type", "and") == "and" else any(results)

    def condition(self, row: Row, node: ET.Element, joins: Joins) -> bool:
        alias = node.get("entityname")
        return self.test(row if alias is None else joins[alias], node)

    def test(self, row: Row | None, node: ET.Element) -> bool:
        condition, check = self.conditions.get(node) or self.read_condition(node)
        return check(value_of(row, condition.attribute), condition)

    def read_condition(self, node: ET.Element) -> tuple[Condition, Test]:
        """A <condition> and its operator's test, read once per query."""
        condition = Condition.read(node, self.caller)
        check = OPERATORS.get(condition.operator)
        if check is None:
            raise QueryError(
                f"FetchXML: condition operator {condition.operator!r} is not supported by the sandbox"
            )
        self.conditions[node] = (condition, check)
        return condition, check

    def attributes(self, row: Row, node: ET.Element, prefix: str, key: str | None) -> Row:
        out: Row = {}
        if node.find("all-attributes") is not None:
            out.update({k: v for k, v in row.items() if v is not None})
        for attribute in node.findall("attribute"):
            name = attribute.get("name") or ""
            column = name if name in row else f"_{name}_value"
            value = row.get(column)
            if value is not None:
                out[prefix + (attribute.get("alias") or column)] = value
        if key is not None and row.get(key) is not None:
            out[key] = row[key]
        return out


def run_fetch(fetchxml: str, org: Org, user_id: str, *, enforce_read: bool = True) -> tuple[str, list[Row]]:
    """Run a FetchXML query as the user `user_id` (systemuserid). Returns (entity set, rows).

    Args:
        enforce_read: return only records the user may read (`Org.may_read`), as Dataverse does; False
            for a caller with every privilege (the application user).

    Raises:
        QueryError: malformed FetchXML or a construct the sandbox doesn't support.
    """
    root = _parse(fetchxml)
    entity = _the_entity(root)
    evaluator = _Evaluator(org, caller_of(org, user_id))
    entity_set = evaluator.entity_set(entity.get("name"))
    evaluator.check_children(entity, _ENTITY_CHILDREN)
    links = [evaluator.link(c) for c in entity if c.tag == "link-entity"]
    evaluator.prepare(entity, links)
    key = ENTITY_SETS[entity_set].key
    rows: list[Row] = []
    for row in org.rows(entity_set):
        joins = evaluator.match(row, entity, links)
        if joins is not None and (not enforce_read or org.may_read(entity_set, row, user_id)):
            rows.append(_record(evaluator, row, joins, entity, links, key))
    _sort(rows, entity.findall("order"))
    return entity_set, first_rows(rows, root.get("top") or root.get("count"), "FetchXML: top/count")


def check_fetch(fetchxml: str) -> str:
    """Check FetchXML without running it (on an empty org): it parses and uses only what the sandbox runs.
    Returns the entity set it queries.

    Raises:
        QueryError: malformed FetchXML or a construct the sandbox doesn't support.
    """
    return run_fetch(fetchxml, Org(tables={}), _NOBODY, enforce_read=False)[0]


_NOBODY = "00000000-0000-0000-0000-000000000000"


def _parse(fetchxml: str) -> ET.Element:
    """The <fetch> element, its attributes checked."""
    try:
        root: ET.Element = SafeET.fromstring(fetchxml)
    except (ET.ParseError, DefusedXmlException) as exc:
        raise QueryError(f"FetchXML does not parse: {exc}") from exc
    if root.tag != "fetch":
        raise QueryError(f"FetchXML: the root must be <fetch>, not <{root.tag}>")
    for attr, value in root.attrib.items():
        if attr not in _FETCH_ATTRIBUTES:
            raise QueryError(f"FetchXML: fetch attribute {attr!r} is not supported")
        if attr == "aggregate" and value == "true":
            raise QueryError("FetchXML: aggregate queries are not supported")
    return root


def _the_entity(root: ET.Element) -> ET.Element:
    entities = root.findall("entity")
    _Evaluator.check_children(root, {"entity"})
    if len(entities) != 1:
        raise QueryError("FetchXML: <fetch> needs exactly one <entity>")
    return entities[0]


def _record(
    evaluator: _Evaluator, row: Row, joins: Joins, entity: ET.Element, links: list[_Link], key: str
) -> Row:
    """A row that passed: its attributes and those of its linked rows (as "alias.name")."""
    out = evaluator.attributes(row, entity, "", key)
    pending = list(links)
    while pending:
        link = pending.pop(0)
        linked = joins.get(link.alias)
        if linked is not None:
            out.update(evaluator.attributes(linked, link.node, f"{link.alias}.", None))
        pending.extend(link.links)
    return out


def _sort(rows: list[Row], orders: list[ET.Element]) -> None:
    for order in reversed(orders):
        name = order.get("attribute") or ""
        descending = order.get("descending") == "true"
        rows.sort(key=partial(_order_key, name), reverse=descending)


def _order_key(name: str, row: Row) -> tuple[bool, str]:
    return (value_of(row, name) is None, str(value_of(row, name) or ""))
