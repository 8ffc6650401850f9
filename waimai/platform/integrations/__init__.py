"""Order intake from third-party delivery platforms (issue 11): Meituan Waimai, Ele.me, JD Daojia.

`base` holds the `PlatformAdapter` plug-in interface and its plain dataclasses, `meituan` / `eleme` /
`jd` implement it (signature schemes confirmed against each platform's public SDKs, see each module
docstring), `mapping` turns an `ExternalOrder` into our merchant / menu items / delivery point, and
`standins` runs stand-in platforms over real HTTP for tests and drills.
"""

from waimai.platform.integrations.base import (
    ExternalItem,
    ExternalOrder,
    InboundRequest,
    OutboundRequest,
    OutboundResponse,
    PayloadInvalid,
    PlatformAdapter,
    ReplayCache,
    SignatureRejected,
    StatusUpdate,
)

__all__ = [
    "ExternalItem",
    "ExternalOrder",
    "InboundRequest",
    "OutboundRequest",
    "OutboundResponse",
    "PayloadInvalid",
    "PlatformAdapter",
    "ReplayCache",
    "SignatureRejected",
    "StatusUpdate",
]
