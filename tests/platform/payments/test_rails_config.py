"""Rail configuration: production refuses missing or sandbox credentials; keys never show in a repr."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from pydantic import ValidationError

from waimai.config import Settings
from waimai.platform.payments import sandbox
from waimai.platform.payments.rails import build_rails

# Production also refuses weak secrets (checked first), so give it strong random ones: these tests are about rails.
PROD = {"env": "production", "secret_key": secrets.token_urlsafe(32), "gateway_secret": secrets.token_urlsafe(24),
        "database_url": "sqlite:///:memory:"}


def test_production_refuses_a_rail_without_credentials() -> None:
    with pytest.raises(ValidationError, match="WAIMAI_WECHATPAY_MCHID"):
        Settings(**PROD, payment_rails="wechat")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="WAIMAI_ALIPAY_APPID"):
        Settings(**PROD, payment_rails="alipay")  # type: ignore[arg-type]


def test_production_refuses_the_sandbox_identities(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="sandbox"):
        Settings(**PROD, payment_rails="alipay", alipay_appid="2021000000000001",  # type: ignore[arg-type]
                 alipay_app_private_key_file=str(tmp_path / "payments-sandbox" / "app.pem"),
                 alipay_public_key_file=str(tmp_path / "alipay.pem"))


def test_production_accepts_real_credentials(tmp_path: Path) -> None:
    s = Settings(**PROD, payment_rails="wechat,alipay", wechatpay_mchid="1230000109",  # type: ignore[arg-type]
                 wechatpay_appid="wxd678efh567hg6787", wechatpay_apiv3_key="k" * 32,
                 wechatpay_private_key_file="/etc/waimai/apiclient_key.pem", wechatpay_cert_serial_no="444F4864EA9B",
                 wechatpay_platform_cert_dir="/etc/waimai/wechatpay", alipay_appid="2021001234567890",
                 alipay_app_private_key_file="/etc/waimai/alipay_app.pem",
                 alipay_public_key_file="/etc/waimai/alipay_public.pem")
    assert "k" * 32 not in repr(s)  # SecretStr


def test_unknown_rail_is_refused() -> None:
    with pytest.raises(ValidationError, match="unknown payment rail"):
        Settings(**PROD, payment_rails="paypal")  # type: ignore[arg-type]


def test_providers_never_show_their_keys(tmp_path: Path) -> None:
    s = Settings(env="test", database_url="sqlite:///:memory:", payment_rails="wechat,alipay",
                 payments_sandbox_dir=str(tmp_path / "sb"))
    wx, ali = sandbox.ensure(tmp_path / "sb")
    rails = build_rails(s)
    assert set(rails) == {"wechat", "alipay"}
    for p in rails.values():
        assert wx.apiv3_key not in repr(p) and "PRIVATE KEY" not in repr(p) and ali.appid in repr(rails["alipay"])
    assert (tmp_path / "sb" / "sandbox.json").stat().st_mode & 0o077 == 0  # owner-only
