"""Is a POSTed body a Bot Framework activity this bot can take? One check, before CloudAdapter sees it.

botbuilder deserialises an activity with msrest, which raises on a wrong type (a string where an object
belongs, an unparseable timestamp) and coerces others into values the turn code then trips over. So
every field is checked here against the schema botbuilder itself uses (its msrest models: `Activity`,
`TeamsChannelData` for `channelData`, and the model each Teams invoke's `value` is read as), plus what a
turn needs: the addresses a reply goes to, a bounded nesting depth and a bounded `text`.

Usage::

    reason = activity_problem(body)  # None, or why the body is refused (safe to log: no user data)
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from inspect import getmembers
from typing import Any
from urllib.parse import urlsplit

import botbuilder.schema as _schema
import botbuilder.schema.teams as _teams_schema
from azure.core.exceptions import DeserializationError
from msrest.serialization import Deserializer, Model

from bot.ids import is_id

__all__ = ["MAX_DEPTH", "MAX_TEXT_CHARS", "activity_problem"]

MAX_TEXT_CHARS = 28 * 1024  # Teams refuses longer messages (about 28 KB); nothing longer is a real one
MAX_DEPTH = 64  # nested arrays and objects; an Adaptive Card nests a few dozen levels at most
_MAX_TIMESTAMP_CHARS = 64

# The models botbuilder deserialises with (the same two modules as botbuilder.core.serializer_helper).
_MODELS: dict[str, type[Any]] = {
    name: cls
    for module in (_schema, _teams_schema)
    for name, cls in getmembers(module)
    if isinstance(cls, type) and issubclass(cls, Model | Enum)
}
# The model TeamsActivityHandler reads each invoke's `value` as, before any handler runs: a wrong shape
# there fails the turn instead of answering 501 (not handled) or the handler's answer.
_INVOKE_VALUES = {
    "fileConsent/invoke": "FileConsentCardResponse",
    "actionableMessage/executeAction": "O365ConnectorCardActionQuery",
    "composeExtension/queryLink": "AppBasedLinkQuery",
    "composeExtension/anonymousQueryLink": "AppBasedLinkQuery",
    "composeExtension/query": "MessagingExtensionQuery",
    "composeExtension/submitAction": "MessagingExtensionAction",
    "composeExtension/fetchTask": "MessagingExtensionAction",
    "composeExtension/querySettingUrl": "MessagingExtensionQuery",
    "task/fetch": "TaskModuleRequest",
    "task/submit": "TaskModuleRequest",
    "tab/fetch": "TabRequest",
    "tab/submit": "TabSubmit",
}
# Accounts a turn addresses (or looks up): each needs its id.
_ACCOUNTS = ("from", "recipient", "conversation")
_MEMBER_LISTS = ("membersAdded", "membersRemoved")
_MAX_ID_CHARS = 1024
_MAX_URL_CHARS = 2048


def activity_problem(body: object) -> str | None:
    """Why `body` is not an activity this bot can take, or None when it is.

    The reason names the field and what was wrong with it, never the field's value: it may be logged.
    """
    if not isinstance(body, dict):
        return "the body is not a JSON object"
    if not isinstance(body.get("type"), str) or not body["type"]:
        return "the body is not a Bot Framework activity (no type)"
    if _depth(body) > MAX_DEPTH:
        return f"the activity nests deeper than {MAX_DEPTH} levels"
    text = body.get("text")
    if isinstance(text, str) and len(text) > MAX_TEXT_CHARS:
        return f"'text' is longer than {MAX_TEXT_CHARS} characters (Teams' limit)"
    return (
        _model(body, "Activity", "activity")
        or _addresses_problem(body)
        or _channel_data_problem(body)
        or (_invoke_problem(body) if body["type"] == "invoke" else None)
    )


def _addresses_problem(body: dict[str, Any]) -> str | None:
    """Where a reply goes: the channel, its service URL and the accounts, each with a usable id."""
    return _service_problem(body) or _ids_problem(body)


def _service_problem(body: dict[str, Any]) -> str | None:
    for name in ("channelId", "serviceUrl"):
        if not body.get(name):
            return f"'{name}' is missing"
    url = urlsplit(body["serviceUrl"])
    if url.scheme not in ("http", "https") or not url.hostname or len(body["serviceUrl"]) > _MAX_URL_CHARS:
        return "'serviceUrl' is not an http(s) URL"
    return None


def _ids_problem(body: dict[str, Any]) -> str | None:
    """The accounts' and members' ids are there; every id a reply uses is short printable ASCII."""
    for name in _ACCOUNTS:
        if not isinstance(body.get(name), dict):
            return f"'{name}' is missing"
    required = _required_ids(body)
    missing = next((path for path, value in required if not value), None)
    if missing is not None:
        return f"'{missing}' is missing"
    user = body["from"].get("aadObjectId")
    if user is not None and not is_id(user.strip().strip("{}")):
        return "'from.aadObjectId' is not an Entra object id"  # Teams' are GUIDs; Dataverse is asked by it
    # Ids go into the Bot Connector's URLs and headers (replies, member look-ups): Teams' are short ASCII.
    ids = required + _optional_ids(body)
    return next(filter(None, (_id_text_problem(path, value) for path, value in ids)), None)


def _required_ids(body: dict[str, Any]) -> list[tuple[str, object]]:
    """(path, id) of the accounts a turn addresses and of the members added or removed."""
    required: list[tuple[str, object]] = [(f"{name}.id", body[name].get("id")) for name in _ACCOUNTS]
    for name in _MEMBER_LISTS:
        required += [(f"{name}[{i}].id", member.get("id")) for i, member in enumerate(body.get(name) or [])]
    return required


def _optional_ids(body: dict[str, Any]) -> list[tuple[str, object]]:
    """(path, id) of the activity, what it replies to, and the team, channel and tenant it names."""
    raw = body.get("channelData")
    data: dict[str, Any] = raw if isinstance(raw, dict) else {}
    optional = [(name, body.get(name)) for name in ("id", "replyToId")]
    optional += [(f"channelData.{name}.id", _id_of(data.get(name))) for name in ("team", "channel", "tenant")]
    return optional


def _id_text_problem(path: str, value: object) -> str | None:
    if not isinstance(value, str):
        return None
    if not (value.isascii() and value.isprintable()):
        return f"'{path}' is not printable ASCII"
    if len(value) > _MAX_ID_CHARS:
        return f"'{path}' is longer than {_MAX_ID_CHARS} characters"
    return None


def _channel_data_problem(body: dict[str, Any]) -> str | None:
    """Teams' channelData, as botbuilder's TeamsActivityHandler and TeamsInfo read it."""
    data = body.get("channelData")
    if data is None:
        if body["channelId"] == "msteams" and body["type"] == "conversationUpdate":
            return "'channelData' is missing"  # TeamsActivityHandler reads its team
        return None
    if not isinstance(data, dict):
        return "'channelData' is not an object"
    problem = _model(data, "TeamsChannelData", "channelData")
    if problem:
        return problem
    for name in ("team", "channel"):
        if data.get(name) is not None and not data[name].get("id"):
            return f"'channelData.{name}.id' is missing"  # TeamsInfo reads team["id"]
    return None


def _id_of(part: object) -> object:
    return part.get("id") if isinstance(part, dict) else None


def _invoke_problem(body: dict[str, Any]) -> str | None:
    name, value = body.get("name"), body.get("value")
    if name == "adaptiveCard/action":
        # Universal Actions: botbuilder's own refusal of these (an Exception in the response) can't be sent.
        if not isinstance(value, dict):
            return "'value' of an adaptiveCard/action invoke is not an object"
        action = value.get("action")
        if not isinstance(action, dict):
            return "'value.action' of an adaptiveCard/action invoke is not an object"
        if action.get("type") != "Action.Execute":
            return "'value.action.type' of an adaptiveCard/action invoke is not Action.Execute"
        return None
    model = _INVOKE_VALUES.get(name) if isinstance(name, str) else None
    if model is not None and value is not None:
        if not isinstance(value, dict):
            return f"'value' of a {name} invoke is not an object"
        return _model(value, model, "value")
    return None


def _depth(body: object) -> int:
    """How deeply `body` nests, without recursion (a deep body must not exhaust the stack here)."""
    deepest = 0
    stack: list[tuple[object, int]] = [(body, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


def _model(data: Mapping[str, Any], model: str, path: str) -> str | None:
    """Each known field of `data` has the type `model` declares (unknown fields are kept, as msrest does)."""
    cls = _MODELS[model]
    for attribute in cls._attribute_map.values():
        key = attribute["key"]
        if key in data:
            problem = _value(data[key], attribute["type"], f"{path}.{key}" if path != "activity" else key)
            if problem:
                return problem
    return None


def _value(value: object, kind: object, path: str) -> str | None:
    if value is None:  # msrest leaves a null field unset
        return None
    if isinstance(kind, type):  # a few teams models name their field's class instead of its name
        kind = kind.__name__
    assert isinstance(kind, str)
    if kind.startswith("[") and kind.endswith("]"):
        return _list_value(value, kind[1:-1], path)
    if kind.startswith("{") and kind.endswith("}"):
        return _dict_value(value, kind[1:-1], path)
    return _named_value(value, kind, path)


def _list_value(value: object, item_kind: str, path: str) -> str | None:
    """`[kind]`: a list of non-null items of that kind."""
    if not isinstance(value, list):
        return f"'{path}' is not a list"
    for i, item in enumerate(value):
        if item is None:
            return f"'{path}[{i}]' is null"
        problem = _value(item, item_kind, f"{path}[{i}]")
        if problem:
            return problem
    return None


def _dict_value(value: object, item_kind: str, path: str) -> str | None:
    """`{kind}`: an object whose values are of that kind."""
    if not isinstance(value, dict):
        return f"'{path}' is not an object"
    for key, item in value.items():
        problem = _value(item, item_kind, f"{path}.{key}")
        if problem:
            return problem
    return None


def _named_value(value: object, kind: str, path: str) -> str | None:
    """A basic type, a timestamp, an enum (a string) or a model (an object, checked field by field)."""
    if kind == "object":
        return None
    expected = _BASIC.get(kind)
    if expected is not None:
        ok = isinstance(value, expected[0]) and not (isinstance(value, bool) and bool not in expected[0])
        return None if ok else f"'{path}' is not {expected[1]}"
    if kind == "iso-8601":
        return None if _is_timestamp(value) else f"'{path}' is not an ISO 8601 date and time"
    model = _MODELS.get(kind)
    if model is None or issubclass(model, Enum):
        return None if model is None or isinstance(value, str) else f"'{path}' is not a string"
    if not isinstance(value, dict):
        return f"'{path}' is not an object"
    return _model(value, kind, path)


_BASIC: dict[str, tuple[tuple[type, ...], str]] = {
    "str": ((str,), "a string"),
    "bool": ((bool,), "true or false"),
    "int": ((int,), "an integer"),
    "long": ((int,), "an integer"),
    "float": ((int, float), "a number"),
    "bytearray": ((str,), "a string"),
}


def _is_timestamp(value: object) -> bool:
    """Whether msrest (what botbuilder reads it with) takes `value` as an ISO 8601 date and time."""
    if not isinstance(value, str) or len(value) > _MAX_TIMESTAMP_CHARS:
        return False
    try:
        Deserializer.deserialize_iso(value)  # type: ignore[no-untyped-call]
    except DeserializationError:
        return False
    return True
