"""The payment rails configured in WAIMAI_PAYMENT_RAILS (WeChat Pay, Alipay): built from settings, and which
of them checkout may offer right now.

Credentials come from files named in the environment (WAIMAI_WECHATPAY_PRIVATE_KEY_FILE, ...) and the
API v3 key from the environment; when they are unset outside production, the sandbox identities under
WAIMAI_PAYMENTS_SANDBOX_DIR are used (made on first start, see sandbox.py) — config.py refuses that in
production. Nothing here logs a key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from waimai.config import Settings, rails
from waimai.core.messages import N_
from waimai.platform.payments.base import PaymentProvider

# msgids (the pages show them through the catalog); the Chinese is what the zh_CN catalog says.
LABELS = {"wechat": (N_("WeChat Pay"), "微信支付"), "alipay": (N_("Alipay"), "支付宝")}


def _read(path: str | None) -> str | None:
    return Path(path).read_text() if path else None


def build_rails(settings: Settings) -> dict[str, PaymentProvider]:
    out: dict[str, PaymentProvider] = {}
    names = rails(settings)
    if not names:
        return out
    # The SDKs (and pyOpenSSL, pycryptodomex) load only where a rail is configured.
    from waimai.platform.payments import sandbox
    from waimai.platform.payments.alipay import AlipayProvider
    from waimai.platform.payments.wechat import WechatPayProvider

    wx_sb, ali_sb = sandbox.ensure(Path(settings.payments_sandbox_dir))
    callback = f"{settings.public_url}/api/v1/payments/callbacks"
    if "wechat" in names:
        key = settings.wechatpay_apiv3_key.get_secret_value() if settings.wechatpay_apiv3_key else wx_sb.apiv3_key
        out["wechat"] = WechatPayProvider(
            base_url=settings.wechatpay_url, mchid=settings.wechatpay_mchid or wx_sb.mchid,
            appid=settings.wechatpay_appid or wx_sb.appid, apiv3_key=key,
            private_key_pem=_read(settings.wechatpay_private_key_file) or wx_sb.merchant_key_pem,
            cert_serial_no=settings.wechatpay_cert_serial_no or wx_sb.merchant_serial,
            cert_dir=settings.wechatpay_platform_cert_dir or str(wx_sb.cert_dir),
            timeout_s=settings.gateway_timeout_s, refund_notify_url=f"{callback}/wechat")
    if "alipay" in names:
        out["alipay"] = AlipayProvider(
            gateway_url=settings.alipay_url, appid=settings.alipay_appid or ali_sb.appid,
            app_private_key_pem=_read(settings.alipay_app_private_key_file) or ali_sb.app_private_key_pem,
            alipay_public_key_pem=_read(settings.alipay_public_key_file) or ali_sb.alipay_public_key_pem,
            timeout_s=settings.gateway_timeout_s)
    return out


def online(app_state: Any) -> list[str]:
    """The online providers checkout can offer: the rails when configured, else the gateway."""
    names = rails(app_state.settings)
    return names or ["gateway"]


def offerable(app_state: Any) -> list[str]:
    """Online providers whose breaker is not open (a failing provider is not offered; the other is)."""
    resilience = getattr(app_state, "resilience", None)
    out = []
    for name in online(app_state):
        provider = app_state.payment_providers.get(name)
        dep = getattr(provider, "dependency", None)
        rec = dep.record() if dep is not None and resilience is not None else None
        if rec is None or rec.state != "opened":
            out.append(name)
    return out


def default_channel(name: str, user_agent: str) -> str | None:
    """WeChat: H5 in a phone browser, Native (QR) on a desktop; Alipay: wap or page.

    (JSAPI, inside WeChat, needs the payer's openid from WeChat's OAuth, which the web app does not do yet.)"""
    ua = user_agent.lower()
    mobile = any(k in ua for k in ("mobile", "android", "iphone"))
    if name == "wechat":
        return "h5" if mobile else "native"
    if name == "alipay":
        return "wap" if mobile else "page"
    return None
