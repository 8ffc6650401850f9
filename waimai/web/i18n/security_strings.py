"""Page strings of the web edge's security controls (English source → Chinese)."""

from __future__ import annotations

ZH = {
    "Your cart is full.": "购物车已满。",
}
