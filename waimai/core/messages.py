"""Marks a user-facing string as a message id for extraction (`pybabel extract -k N_`) without
translating it where it is defined: the page layer translates it in the reader's language."""

from __future__ import annotations


def N_(msgid: str) -> str:  # noqa: N802 - the conventional marker name that extraction looks for
    return msgid
