"""FetchXML evaluation for the sandbox, with Dataverse's semantics for the supported subset.

Supported: `fetch` (top, count, distinct), `entity`, `attribute`, `all-attributes`, `order`, nested
`filter` (and/or), `link-entity` (inner and outer, nested, with `entityname` conditions on outer links),
and condition operators eq ne gt ge lt le in not-in like not-like begins-with not-begin-with ends-with
not-end-with null not-null eq-userid ne-userid on-or-after on-or-before. Anything else is refused with a
`QueryError` naming it: never a silent wrong answer.

Each parent row is returned once (as with distinct="true"); linked attributes come from its first match.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from functools import partial
from typing import Any

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from bot.sandbox.conditions import OPERATORS, Condition, Test, sql_like
from bot.sandbox.odata import QueryError, first_rows
from bot.sandbox.org import Org
from bot.sandbox.schema import ENTITY_SETS, LOGICAL_TO_SET

__all__ = ["run_fetch", "sql_like"]

Row = dict[str, Any]

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


class _Evaluator:
    def __init__(self, org: Org, user_id: str) -> None:
        self.org = org
        self.user_id = user_id.lower()
        self.aliases = 0
        self.indexes: dict[tuple[str, str], dict[str, list[Row]]] = {}
        self.conditions: dict[ET.Element, tuple[Condition, Test]] = {}

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
        return _Link(
            entity_set=self.entity_set(node.get("name")),
            alias=node.get("alias") or f"{node.get('name')}{self.aliases}",
            from_attr=node.get("from", ""),
            to_attr=node.get("to", ""),
            outer=link_type == "outer",
            node=node,
            links=[self.link(c) for c in children],
        )

    @staticmethod
    def check_children(node: ET.Element, allowed: set[str]) -> None:
        for child in node:
            if child.tag not in allowed:
                raise QueryError(f"FetchXML: <{child.tag}> inside <{node.tag}> is not supported")

    def joined(self, row: Row, link: _Link) -> list[Row]:
        """Rows of `link` joined to `row` that pass the link's own filters and inner links."""
        wanted = value_of(row, link.to_attr)
        if wanted is None:
            return []
        candidates = self.index(link.entity_set, link.from_attr).get(str(wanted).casefold(), [])
        return [c for c in candidates if self.passes(c, link.node, link.links)]

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

    def passes(self, row: Row, node: ET.Element, links: list[_Link]) -> bool:
        filters = node.findall("filter")
        uses_links = any(c.get("entityname") for f in filters for c in f.iter("condition"))
        if not uses_links and not all(self.filter(row, f, {}) for f in filters):
            return False  # cheap test first: most rows fail the record's own conditions
        joins: dict[str, list[Row]] = {}
        for link in links:
            matches = self.joined(row, link)
            if not matches and not link.outer:
                return False
            joins[link.alias] = matches
        return not uses_links or all(self.filter(row, f, joins) for f in filters)

    def filter(self, row: Row, node: ET.Element, joins: dict[str, list[Row]]) -> bool:
        kind = node.get("type", "and")
        if kind not in ("and", "or"):
            raise QueryError(f"FetchXML: filter type {kind!r} is not supported")
        self.check_children(node, {"condition", "filter"})
        results = (
            self.filter(row, child, joins) if child.tag == "filter" else self.condition(row, child, joins)
            for child in node
        )
        return all(results) if kind == "and" else any(results)

    def condition(self, row: Row, node: ET.Element, joins: dict[str, list[Row]]) -> bool:
        alias = node.get("entityname")
        if alias is not None:
            if alias not in joins:
                raise QueryError(f"FetchXML: condition entityname {alias!r} names no link-entity")
            targets: list[Row | None] = list(joins[alias]) or [None]
            return any(self.test(target, node) for target in targets)
        return self.test(row, node)

    def test(self, row: Row | None, node: ET.Element) -> bool:
        condition, check = self.conditions.get(node) or self.read_condition(node)
        return check(value_of(row, condition.attribute), condition)

    def read_condition(self, node: ET.Element) -> tuple[Condition, Test]:
        """A <condition> and its operator's test, read once per query."""
        condition = Condition.read(node, self.user_id)
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


def run_fetch(fetchxml: str, org: Org, user_id: str) -> tuple[str, list[Row]]:
    """Run a FetchXML query as the user `user_id` (systemuserid). Returns (entity set, rows).

    Raises:
        QueryError: malformed FetchXML or a construct the sandbox doesn't support.
    """
    root = _parse(fetchxml)
    entity = _the_entity(root)
    evaluator = _Evaluator(org, user_id)
    entity_set = evaluator.entity_set(entity.get("name"))
    evaluator.check_children(entity, _ENTITY_CHILDREN)
    links = [evaluator.link(c) for c in entity if c.tag == "link-entity"]
    key = ENTITY_SETS[entity_set].key
    rows = [
        _record(evaluator, row, entity, links, key)
        for row in org.rows(entity_set)
        if evaluator.passes(row, entity, links)
    ]
    _sort(rows, entity.findall("order"))
    return entity_set, first_rows(rows, root.get("top") or root.get("count"), "FetchXML: top/count")


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


def _record(evaluator: _Evaluator, row: Row, entity: ET.Element, links: list[_Link], key: str) -> Row:
    """A row that passed: its attributes and those of each link's first match (as "alias.name")."""
    out = evaluator.attributes(row, entity, "", key)
    for link in links:
        matches = evaluator.joined(row, link)
        if matches:
            out.update(evaluator.attributes(matches[0], link.node, f"{link.alias}.", None))
    return out


def _sort(rows: list[Row], orders: list[ET.Element]) -> None:
    for order in reversed(orders):
        name = order.get("attribute") or ""
        descending = order.get("descending") == "true"
        rows.sort(key=partial(_order_key, name), reverse=descending)


def _order_key(name: str, row: Row) -> tuple[bool, str]:
    return (value_of(row, name) is None, str(value_of(row, name) or ""))
