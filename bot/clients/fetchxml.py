"""FetchXML built and changed as XML, never by pasting strings, and parsed safely with defusedxml."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

__all__ = ["FetchXmlError", "restrict_to_record"]


class FetchXmlError(ValueError):
    """A filter's FetchXML can't be used (malformed, or about another table)."""


def restrict_to_record(fetchxml: str, entity: str, key: str, record_id: str) -> str:
    """Return `fetchxml` with one more condition: `key` equals `record_id`.

    A filter selects the record exactly when this query returns it: Dataverse ANDs sibling `filter`
    elements of an entity, so the filter's own logic is left untouched.

    Raises:
        FetchXmlError: the FetchXML doesn't parse, or its entity is not `entity`.
    """
    try:
        root = SafeET.fromstring(fetchxml)
    except (ET.ParseError, DefusedXmlException) as exc:
        raise FetchXmlError(f"filter FetchXML does not parse: {exc}") from exc
    if root.tag != "fetch":
        raise FetchXmlError(f"filter FetchXML has <{root.tag}> at its root, not <fetch>")
    node = root.find("entity")
    if node is None or node.get("name") != entity:
        found = None if node is None else node.get("name")
        raise FetchXmlError(f"filter FetchXML queries {found!r}, not {entity!r}")
    extra = ET.SubElement(node, "filter", {"type": "and"})
    ET.SubElement(extra, "condition", {"attribute": key, "operator": "eq", "value": record_id})
    # Paging or aggregate settings of the saved filter would only get in the way of this one-row check.
    for attribute in ("top", "count", "page", "paging-cookie"):
        root.attrib.pop(attribute, None)
    return ET.tostring(root, encoding="unicode")
