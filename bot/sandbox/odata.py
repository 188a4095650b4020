"""The subset of OData v4 query options the sandbox understands: $filter, $select, $orderby, $expand, $top.

$filter supports `eq ne gt ge lt le and or not`, parentheses, string/number/boolean/null/GUID/date-time
literals, `contains startswith endswith`, and `any`/`all` over collection-valued navigation properties.
Anything else raises `QueryError`, which the server answers with a 400 naming the construct.
Comparisons follow Dataverse: strings compare case-insensitively.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from bot.sandbox.comparison import as_datetime, compare

__all__ = ["Node", "QueryError", "compare", "first_rows", "parse_filter", "parse_orderby", "split_top_level"]

Row = dict[str, Any]
T = TypeVar("T")
Scope = dict[str, Row]  # lambda variable -> row
Navigator = Callable[[Row, str], list[Row] | None]  # (row, navigation name) -> related rows


class QueryError(ValueError):
    """A query the sandbox can't answer; the message names the construct."""


_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>'(?:[^']|'')*')
    | (?P<guid>[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12,13}\b)
    | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)
    | (?P<number>-?\d+(?:\.\d+)?)
    | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<punct>[(),/:])
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class Tok:
    kind: str
    text: str


def _tokenize(text: str) -> list[Tok]:
    tokens: list[Tok] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise QueryError(f"$filter: unexpected text at position {pos}: {text[pos : pos + 20]!r}")
        kind = match.lastgroup or ""
        tokens.append(Tok(kind, match.group(kind)))
        pos = match.end()
    return tokens


# --- AST -------------------------------------------------------------------------------------------


class Node:
    def eval(self, row: Row, scope: Scope, nav: Navigator) -> Any:
        raise NotImplementedError


@dataclass(frozen=True)
class Literal(Node):
    value: Any

    def eval(self, row: Row, scope: Scope, nav: Navigator) -> Any:
        return self.value


@dataclass(frozen=True)
class Field(Node):
    path: tuple[str, ...]

    def eval(self, row: Row, scope: Scope, nav: Navigator) -> Any:
        target, rest = row, list(self.path)
        if rest[0] in scope:
            target = scope[rest.pop(0)]
        if len(rest) != 1:
            raise QueryError(f"$filter: property path {'/'.join(self.path)!r} is not supported")
        return target.get(rest[0])


@dataclass(frozen=True)
class Compare(Node):
    op: str
    left: Node
    right: Node

    def eval(self, row: Row, scope: Scope, nav: Navigator) -> Any:
        return compare(self.op, self.left.eval(row, scope, nav), self.right.eval(row, scope, nav))


@dataclass(frozen=True)
class Logic(Node):
    op: str
    parts: tuple[Node, ...]

    def eval(self, row: Row, scope: Scope, nav: Navigator) -> Any:
        if self.op == "and":
            return all(p.eval(row, scope, nav) for p in self.parts)
        return any(p.eval(row, scope, nav) for p in self.parts)


@dataclass(frozen=True)
class Not(Node):
    inner: Node

    def eval(self, row: Row, scope: Scope, nav: Navigator) -> Any:
        return not self.inner.eval(row, scope, nav)


@dataclass(frozen=True)
class Call(Node):
    name: str
    args: tuple[Node, ...]

    def eval(self, row: Row, scope: Scope, nav: Navigator) -> Any:
        haystack, needle = (a.eval(row, scope, nav) for a in self.args)
        if haystack is None or needle is None:
            return False
        h, n = str(haystack).casefold(), str(needle).casefold()
        if self.name == "contains":
            return n in h
        if self.name == "startswith":
            return h.startswith(n)
        return h.endswith(n)


@dataclass(frozen=True)
class Lambda(Node):
    navigation: str
    quantifier: str
    variable: str
    body: Node

    def eval(self, row: Row, scope: Scope, nav: Navigator) -> Any:
        related = nav(row, self.navigation)
        if related is None:
            raise QueryError(f"$filter: {self.navigation!r} is not a collection-valued navigation property")
        test = (self.body.eval(row, {**scope, self.variable: item}, nav) for item in related)
        return any(test) if self.quantifier == "any" else all(test)


# --- parser ----------------------------------------------------------------------------------------

_COMPARISONS = {"eq", "ne", "gt", "ge", "lt", "le"}
_FUNCTIONS = {"contains", "startswith", "endswith"}
_LITERALS: dict[str, Callable[[str], Any]] = {  # token kind -> the literal's value
    "string": lambda text: text[1:-1].replace("''", "'"),
    "guid": str.lower,
    "datetime": as_datetime,
    "number": lambda text: float(text) if "." in text else int(text),
}
_NAMED_LITERALS = {"true": True, "false": False, "null": None}


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.pos = 0

    def peek(self, offset: int = 0) -> Tok | None:
        index = self.pos + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def take(self, text: str | None = None) -> Tok:
        tok = self.peek()
        if tok is None:
            raise QueryError("$filter: unexpected end of expression")
        if text is not None and tok.text != text:
            raise QueryError(f"$filter: expected {text!r} but found {tok.text!r}")
        self.pos += 1
        return tok

    def is_word(self, word: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind == "name" and tok.text == word

    def parse(self) -> Node:
        node = self.or_expr()
        if self.peek() is not None:
            raise QueryError(f"$filter: unexpected {self.peek().text!r}")  # type: ignore[union-attr]
        return node

    def or_expr(self) -> Node:
        parts = [self.and_expr()]
        while self.is_word("or"):
            self.take()
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else Logic("or", tuple(parts))

    def and_expr(self) -> Node:
        parts = [self.unary()]
        while self.is_word("and"):
            self.take()
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else Logic("and", tuple(parts))

    def unary(self) -> Node:
        if self.is_word("not"):
            self.take()
            return Not(self.unary())
        left = self.operand()
        tok = self.peek()
        if tok is not None and tok.kind == "name" and tok.text in _COMPARISONS:
            self.take()
            return Compare(tok.text, left, self.operand())
        if tok is not None and tok.kind == "name" and tok.text not in ("and", "or"):
            raise QueryError(f"$filter: operator {tok.text!r} is not supported")
        return left

    def operand(self) -> Node:
        tok = self.take()
        if tok.text == "(":
            inner = self.or_expr()
            self.take(")")
            return inner
        if tok.kind in _LITERALS:
            return Literal(_LITERALS[tok.kind](tok.text))
        if tok.kind != "name":
            raise QueryError(f"$filter: unexpected {tok.text!r}")
        if tok.text in _NAMED_LITERALS:
            return Literal(_NAMED_LITERALS[tok.text])
        nxt = self.peek()
        if nxt is not None and nxt.text == "(":
            return self.call(tok.text)
        return self.path(tok.text)

    def call(self, name: str) -> Node:
        if name not in _FUNCTIONS:
            raise QueryError(f"$filter: function {name!r} is not supported")
        self.take("(")
        first = self.operand()
        self.take(",")
        second = self.operand()
        self.take(")")
        return Call(name, (first, second))

    def path(self, first: str) -> Node:
        path = [first]
        while self.peek() is not None and self.peek().text == "/":  # type: ignore[union-attr]
            self.take("/")
            step = self.take()
            if step.kind != "name":
                raise QueryError(f"$filter: unexpected {step.text!r} in a property path")
            if step.text in ("any", "all"):
                return self.lambda_(path, step.text)
            path.append(step.text)
        return Field(tuple(path))

    def lambda_(self, path: list[str], quantifier: str) -> Node:
        if len(path) != 1:
            raise QueryError(f"$filter: lambda over {'/'.join(path)!r} is not supported")
        self.take("(")
        variable = self.take()
        if variable.kind != "name":
            raise QueryError("$filter: a lambda needs a variable name")
        self.take(":")
        body = self.or_expr()
        self.take(")")
        return Lambda(path[0], quantifier, variable.text, body)


def parse_filter(text: str) -> Node:
    """Parse a $filter expression.

    Raises:
        QueryError: naming the unsupported or malformed construct.
    """
    if not text.strip():
        raise QueryError("$filter is empty")
    return _Parser(text).parse()


def parse_orderby(text: str) -> list[tuple[str, bool]]:
    """`a desc, b` -> [("a", True), ("b", False)] (name, descending)."""
    result: list[tuple[str, bool]] = []
    for part in text.split(","):
        words = part.split()
        if not words or len(words) > 2 or (len(words) == 2 and words[1] not in ("asc", "desc")):
            raise QueryError(f"$orderby: can't read {part.strip()!r}")
        result.append((words[0], len(words) == 2 and words[1] == "desc"))
    return result


def first_rows(rows: list[T], count: str | None, option: str) -> list[T]:
    """The first `count` rows (all of them when `count` is None); `option` names the count in errors.

    Raises:
        QueryError: `count` is not a whole number.
    """
    if count is None:
        return rows
    if not count.isdigit():
        raise QueryError(f"{option} {count!r} is not a number")
    return rows[: int(count)]


def split_top_level(text: str, sep: str) -> list[str]:
    """Split on `sep` outside parentheses and quotes (for $expand and its nested options)."""
    parts: list[str] = []
    depth, quoted = 0, False
    current: list[str] = []
    for ch in text:
        if ch == "'":
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
        if ch == sep and depth == 0 and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]
