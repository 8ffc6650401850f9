"""Photos on tickets. The upload is checked by what it is, not what it is called: Pillow must read it as a
JPEG, PNG or WebP of sane dimensions. It is then re-encoded (turned upright, at most 1600 px, without
EXIF — a phone photo's GPS position says which dorm room), so what we store and serve is an image we
wrote ourselves. The client's file name and content type are never used."""

from __future__ import annotations

import hashlib
import io
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.responses import Response

from waimai.core.deps import Principal
from waimai.core.errors import AppError, Conflict, Forbidden, NotFound, Unprocessable
from waimai.platform.support import service as tickets
from waimai.platform.support.models import Ticket, TicketPhoto

MAX_BYTES = 5 * 1024 * 1024  # what a phone camera produces; the upload route allows this much body
MAX_PIXELS = 40_000_000  # a decompression bomb is refused before it is decoded
MAX_SIDE = 1600
MAX_PER_TICKET = 3
FORMATS = {"JPEG", "PNG", "WEBP"}


class TooLarge(AppError):
    status, code = 413, "photo_too_large"


def clean(data: bytes) -> tuple[str, bytes]:
    """(content type, re-encoded bytes) of an uploaded image, or a 4xx saying what is wrong with it."""
    if len(data) > MAX_BYTES:
        raise TooLarge(f"A photo may be at most {MAX_BYTES // (1024 * 1024)} MB.",
                       details={"max_bytes": MAX_BYTES, "max_mb": MAX_BYTES // (1024 * 1024)})
    if not data:
        raise Unprocessable("The photo is empty.", code="photo_invalid")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img: Image.Image = Image.open(io.BytesIO(data))
            fmt = img.format
            if fmt not in FORMATS:
                raise Unprocessable("Send a JPEG, PNG or WebP photo.", code="photo_type",
                                    details={"allowed": sorted(FORMATS)})
            w, h = img.size
            if w * h > MAX_PIXELS or w < 1 or h < 1:
                raise Unprocessable("The photo's dimensions are not plausible.", code="photo_invalid")
            img.load()
            img = ImageOps.exif_transpose(img) or img
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as exc:
        raise Unprocessable("This file is not a readable JPEG, PNG or WebP photo.", code="photo_invalid") from exc
    img.thumbnail((MAX_SIDE, MAX_SIDE))
    out = io.BytesIO()
    if fmt == "PNG" or "A" in img.getbands():
        img.save(out, format="PNG", optimize=True)  # screenshots (a bank statement) stay sharp
        return "image/png", out.getvalue()
    img.convert("RGB").save(out, format="JPEG", quality=85, optimize=True)
    return "image/jpeg", out.getvalue()


def add(db: Session, p: Principal, t: Ticket, data: bytes) -> TicketPhoto:
    """Attach a photo: the reporter or staff, at most `MAX_PER_TICKET` per ticket."""
    if p.user_id != t.reporter_id and p.role not in tickets.STAFF:
        raise Forbidden("Only the person who reported the problem (or support) adds photos.")
    n = db.scalar(select(func.count()).select_from(TicketPhoto).where(TicketPhoto.ticket_id == t.id)) or 0
    if n >= MAX_PER_TICKET:
        raise Conflict(f"A ticket takes at most {MAX_PER_TICKET} photos.", code="photo_limit",
                       details={"max": MAX_PER_TICKET})
    ctype, blob = clean(data)
    photo = TicketPhoto(ticket_id=t.id, content_type=ctype, size=len(blob), sha256=hashlib.sha256(blob).hexdigest(),
                        data=blob, uploaded_by=p.user_id)
    db.add(photo)
    db.flush()
    tickets.event(db, t, p, "photo", "", details={"photo_id": photo.id, "bytes": len(blob)})
    tickets.audit_staff(db, p, "photo", t, photo_id=photo.id)
    return photo


def ids(db: Session, ticket_id: int) -> list[int]:
    return list(db.scalars(select(TicketPhoto.id).where(TicketPhoto.ticket_id == ticket_id).order_by(TicketPhoto.id)))


def get(db: Session, p: Principal, ticket_id: int, photo_id: int) -> TicketPhoto:
    tickets.get_visible(db, p, ticket_id)
    photo = db.get(TicketPhoto, photo_id)
    if photo is None or photo.ticket_id != ticket_id:
        raise NotFound("No such photo.")
    return photo


def http_response(photo: TicketPhoto) -> Response:
    """A stored photo as the API and the ticket page serve it: inline, never sniffed, never run as a page."""
    ext = "png" if photo.content_type == "image/png" else "jpg"
    return Response(photo.data, media_type=photo.content_type,
                    headers={"Content-Disposition": f'inline; filename="ticket-{photo.ticket_id}-{photo.id}.{ext}"',
                             "X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=3600",
                             "Content-Security-Policy": "default-src 'none'"})
