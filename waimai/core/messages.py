"""Marks a user-facing string as a message id for extraction (`pybabel extract -k N_`) without
translating it where it is defined: the page layer translates it in the reader's language.

`msg(msgid, **values)` is the same for a sentence the system writes with values in it (a runbook's
dry-run line, an incident timeline entry): it is the English sentence wherever a plain string goes (the
API, logs, the audit log), and it keeps its msgid and values, so a page words it in the reader's
language (`waimai.web.i18n.words`). Where such a sentence is stored, `as_data` keeps msgid and values
beside the English text (`{"msgid": ..., "values": {...}}`), and the page words that the same way.
"""

from __future__ import annotations

from typing import Any

from waimai.core.i18n import translations


def english(msgid: str) -> str:
    """A msgid's English words (what `gettext` gives on an English page): the msgid itself, or for a key
    such as `role.commander` the English catalog's words ("Commander")."""
    return translations("en").gettext(msgid)


def english_words(value: Any) -> str:
    """A msg, its stored form, a list of them or a two-language text, in English (`words` on an English page)."""
    return _english(value)


def N_(msgid: str) -> str:  # noqa: N802 - the conventional marker name that extraction looks for
    return msgid


def _english(value: Any) -> str:
    if isinstance(value, Msg):
        return str(value)
    if isinstance(value, list | tuple):
        return "; ".join(_english(v) for v in value)
    if isinstance(value, dict) and "msgid" in value:
        return fill(english(value["msgid"]), {k: _english(v) for k, v in (value.get("values") or {}).items()})
    if isinstance(value, dict) and "en" in value:  # a text written in both languages
        return str(value["en"])
    return str(value)


def fill(text: str, values: dict[str, Any]) -> str:
    """`text % values` when it has %(name)s places; a text without places is returned as it is."""
    return text % values if values and "%(" in text else text


class Msg(str):
    """A sentence in English (its str value) that remembers its msgid and values."""

    msgid: str
    values: dict[str, Any]

    def __new__(cls, msgid: str, values: dict[str, Any]) -> Msg:
        self = super().__new__(cls, fill(english(msgid), {k: _english(v) for k, v in values.items()}))
        self.msgid, self.values = msgid, values
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (Msg, (self.msgid, self.values))


def msg(msgid: str, **values: Any) -> Msg:
    """A system-written sentence: `msgid` is extracted (`-k msg`); values may be msgs, lists of them (joined
    with "; "), texts written in both languages (`{"en": ..., "zh": ...}`) or plain values (names, numbers,
    ids), which are shown as they are."""
    return Msg(msgid, values)


def as_data(value: Any) -> Any:
    """JSON-storable form of a msg (or a list of them) that a page can still word in its reader's language."""
    if isinstance(value, Msg):
        return {"msgid": value.msgid, "values": {k: as_data(v) for k, v in value.values.items()}}
    if isinstance(value, list | tuple):
        return [as_data(v) for v in value]
    if isinstance(value, dict):
        return {k: as_data(v) for k, v in value.items()}
    return value
