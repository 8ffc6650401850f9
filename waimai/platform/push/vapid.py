"""VAPID (RFC 8292) keys: from WAIMAI_VAPID_PRIVATE_KEY, else generated once and kept in the database.

Keys travel as base64url without padding: the private key as the raw 32-byte P-256 scalar (what
`web-push generate-vapid-keys` and py-vapid's `from_raw` use), the public key as the 65-byte uncompressed
point (what a browser's `pushManager.subscribe({applicationServerKey})` takes). Neither is ever logged.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy.exc import IntegrityError

from waimai.core import uow
from waimai.core.database import Database


def b64u(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64u(text: str) -> bytes:
    """base64url with or without padding; ValueError on anything else."""
    if not isinstance(text, str) or not text or len(text) > 2000:
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise ValueError("not base64url") from exc


def load_private_key(text: str) -> ec.EllipticCurvePrivateKey:
    raw = unb64u(text.strip())
    if len(raw) != 32:
        raise ValueError("a raw P-256 private key is 32 bytes")
    return ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())


def public_key_of(key: ec.EllipticCurvePrivateKey) -> str:
    return b64u(key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint))


def generate() -> tuple[str, str]:
    """A new pair: (private, public), both base64url."""
    key = ec.generate_private_key(ec.SECP256R1())
    return b64u(key.private_numbers().private_value.to_bytes(32, "big")), public_key_of(key)


@dataclass(frozen=True)
class VapidKeys:
    private_key: str = field(repr=False)
    public_key: str


def keys(database: Database, configured: str | None) -> VapidKeys:
    """The configured key, or the one generated on first use (the first replica to insert row 1 wins)."""
    from waimai.platform.push.models import PushKey

    if configured:
        return VapidKeys(configured, public_key_of(load_private_key(configured)))
    with database.read_session() as db:
        row = db.get(PushKey, 1)
        if row is not None:
            return VapidKeys(row.private_key, row.public_key)
    private, public = generate()
    try:
        with uow.unit_of_work(database) as db:
            db.add(PushKey(id=1, private_key=private, public_key=public))
    except IntegrityError:
        pass  # another process made it first: use theirs
    with database.read_session() as db:
        row = db.get(PushKey, 1)
        assert row is not None
        return VapidKeys(row.private_key, row.public_key)
