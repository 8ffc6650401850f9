"""The customer's cart, kept in a cookie: typed and signed, so whatever comes back is a cart we wrote.

The cookie is `itsdangerous`-signed JSON of a `Cart` (HMAC under the app's secret key with its own salt).
A cookie that is missing, not ours, forged, tampered with, from an older format or outside the types and
bounds below reads as an empty cart: the worst a bad cookie can do is empty the cart, never a 500.
"""

from __future__ import annotations

from typing import Annotated, Any

from itsdangerous import BadData, URLSafeSerializer
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

CART_COOKIE = "waimai_cart"
MAX_LINES = 30
MAX_OPTIONS = 10

ItemId = Annotated[int, Field(ge=1, le=2**31 - 1, strict=True)]
Quantity = Annotated[int, Field(ge=1, le=99, strict=True)]
Option = Annotated[str, StringConstraints(min_length=1, max_length=40, strict=True)]


class Cart(BaseModel):
    """One shop's lines: (item id, quantity, chosen options)."""

    model_config = ConfigDict(extra="forbid")

    merchant_id: ItemId | None = None
    lines: list[tuple[ItemId, Quantity, Annotated[list[Option], Field(max_length=MAX_OPTIONS)]]] = Field(
        default_factory=list, max_length=MAX_LINES)


def _serializer(secret: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret, salt="waimai.cart")


def read_cart(raw: str | None, *, secret: str) -> dict[str, Any]:
    """The cart in a cookie value as a plain dict ({"merchant_id", "lines": [[id, qty, [opts]], ...]})."""
    cart = Cart()
    if raw:
        try:
            cart = Cart.model_validate(_serializer(secret).loads(raw))
        except (BadData, ValidationError, ValueError, TypeError):
            cart = Cart()
    return {"merchant_id": cart.merchant_id, "lines": [[i, q, list(o)] for i, q, o in cart.lines]}


def write_cart(cart: dict[str, Any], *, secret: str) -> str:
    """The signed cookie value of a cart (validated: we never sign something we would not read back)."""
    typed = Cart.model_validate({"merchant_id": cart.get("merchant_id"),
                                 "lines": [tuple(line) for line in cart.get("lines", [])][:MAX_LINES]})
    return str(_serializer(secret).dumps(typed.model_dump(mode="json")))
