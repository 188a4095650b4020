"""Card buttons: every verb a card can carry has an entry in the verb table, each payload refuses what
doesn't fit, and the dispatcher's checks hold for any verb, including one added later."""

from __future__ import annotations

import ast
from typing import Any

import pytest

import bot.teams.actions as actions
from bot.sandbox import LocalOrg
from bot.teams import messages
from bot.teams.actions import ACTIONS, Action, Press
from bot.teams.payloads import Check, Escalate, EscalateSend, Payload, Pick, TicketPress, Unfit, Watch
from tests.support.helpdesk import AGENTS
from tests.support.org import ALEX, MEGAN, PLAYGROUND, QUARTERLY
from tests.support.repo import ROOT
from tests.support.teams import running_bot

CARDS = ROOT / "cards"


def verbs_on_cards() -> set[str]:
    """Every verb a card builder puts on a button: `execute(title, verb, data)` calls in cards/."""
    found = set()
    for source in CARDS.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", None) == "execute"
                and len(node.args) > 1
            ):
                verb = node.args[1]
                assert isinstance(verb, ast.Constant), f"{source.name}: a verb should be written out"
                found.add(verb.value)
    return found


def test_every_verb_on_a_card_has_an_action() -> None:
    verbs = verbs_on_cards()
    assert {"recheck", "pick", "escalate", "escalate_send", "ticket_assign"} <= verbs
    assert verbs <= set(ACTIONS)


def test_record_payloads_read_what_fits() -> None:
    data = {"user": ALEX, "record": QUARTERLY, "type": "task", "show_all": True, "unknown": "ignored"}
    assert Check.parse(data) == Check(user=ALEX, record=QUARTERLY, record_type="task", show_all=True)
    assert Check.parse({}) == Check()  # the welcome card's "Check my mailbox" carries only a type
    assert Check.parse({"type": "invoice"}).record_type == "appointment"
    assert Escalate.parse({"subject": ["not", "text"]}).subject is None
    assert EscalateSend.parse({"comment": None}).comment == ""
    assert Watch.parse({"cause": "act-not-server-side-sync"}).cause == "act-not-server-side-sync"
    assert Check(user=ALEX).about("someone") == ALEX and Check().about("someone") == "someone"


@pytest.mark.parametrize(
    ("payload", "data"),
    [
        (Check, {"record": "' or 1 eq 1"}),
        (Check, {"record": 42}),
        (Check, {"user": {"id": ALEX}}),
        (EscalateSend, {"record": "<x/>"}),
        (Pick, {"user": ALEX}),  # the picker's button without a choice
        (Pick, {"user": ALEX, "record": None}),
    ],
)
def test_payloads_refuse_what_does_not_fit(payload: type[Payload], data: dict[str, Any]) -> None:
    with pytest.raises(Unfit):
        payload.parse(data)


def test_ticket_numbers_are_read_for_the_helpdesk_to_judge() -> None:
    assert TicketPress.parse({"ticket": 1001, "version": 2}).data() == {
        "ticket": 1001,
        "version": 2,
        "note": "",
    }
    garbled = TicketPress.parse({"ticket": "1001; drop", "version": True, "note": 7})
    assert garbled.data() == {"ticket": None, "version": None, "note": "7"}


async def test_watch_and_mute_are_kept_for_the_presser(local: LocalOrg) -> None:
    async with running_bot(local, AGENTS) as teams:
        assert teams.store is not None
        data = {"user": ALEX, "record": None, "type": "appointment", "cause": "act-not-server-side-sync"}
        assert (await teams.press("watch", data, user=ALEX)).json()["value"] == messages.WATCHING
        watch = await teams.store.get_setting(f"watch:{ALEX.lower()}")
        assert watch is not None and watch["causes"] == ["act-not-server-side-sync"]
        assert (await teams.press("mute", {"user": ALEX}, user=ALEX)).json()["value"] == messages.MUTED
        assert await teams.store.get_setting(f"mute:{ALEX.lower()}") is not None
        # Someone else's notice: refused, and nothing is kept for them.
        stranger = PLAYGROUND + "24"
        assert (await teams.press("mute", {"user": ALEX}, user=stranger)).json()[
            "value"
        ] == messages.NOT_YOURS
        assert await teams.store.get_setting(f"mute:{stranger}") is None


async def test_a_new_verb_is_one_entry_and_one_function(
    local: LocalOrg, monkeypatch: pytest.MonkeyPatch
) -> None:
    pressed: list[tuple[str, Payload]] = []

    async def ping(press: Press, data: Check) -> str:
        pressed.append((press.user, data))
        return "pong"

    monkeypatch.setitem(actions.ACTIONS, "ping", Action(Check, ping))
    async with running_bot(local, AGENTS) as teams:

        async def answer(data: dict[str, Any], user: str) -> Any:
            return (await teams.press("ping", data, user=user)).json()["value"]

        assert await answer({"user": ALEX}, ALEX) == "pong"
        assert await answer({"user": ALEX}, PLAYGROUND + "24") == messages.NOT_YOURS  # the checks hold for it
        assert await answer({"record": "x"}, ALEX) == messages.UNKNOWN_ACTION
        assert await answer({"user": ALEX}, MEGAN) == "pong"  # an agent
    assert pressed == [(ALEX, Check(user=ALEX)), (MEGAN, Check(user=ALEX))]
