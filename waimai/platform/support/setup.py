"""Wire customer service into the app: the re-delivery payment provider and the larger body limit for photo
uploads. What the firewall makes of tickets (complaint series for the alert rules, the report's complaint
section, compensation skipping orders already made good) is wired from its side:
waimai/firewall/incidents/complaints.py."""

from __future__ import annotations

import re

from fastapi import FastAPI

from waimai.config import Settings
from waimai.core.background import Job
from waimai.platform.support import photos
from waimai.platform.support.resolutions import REDELIVERY, MakeGood

# Paths that take a photo upload (API and the report form): the photo plus the form's few fields.
UPLOADS = ((re.compile(r"^/(api/v1/tickets/\d+/photos|orders/\d+/problem|tickets/\d+/photos)$"),
            photos.MAX_BYTES + 64 * 1024),)


def install(app: FastAPI, settings: Settings) -> list[Job]:
    app.state.payment_providers.setdefault(REDELIVERY, MakeGood())
    return []
