"""Sandbox identities for the WeChat Pay and Alipay stand-ins: keys and certificates made on first start.

`make run` and the tests need no merchant account: the first start writes, under one directory
(`var/payments-sandbox` by default), what a real merchant would download from each provider's console —
and, for the stand-ins, the provider's own side of each key pair:

* WeChat Pay: the merchant API private key and its certificate (whose serial number the Authorization
  header names), the platform private key and certificate the stand-in signs with (our side keeps the
  certificate in `wechat/platform_certs/`, where wechatpayv3 looks for it), the API v3 key.
* Alipay: the application private key, the Alipay private key the stand-in signs with, both public keys.

Nothing here is ever used with a real provider: production refuses these paths (config.py).
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

SANDBOX_MCHID = "1900000109"
SANDBOX_WECHAT_APPID = "wxsandbox0000001"
SANDBOX_ALIPAY_APPID = "2021000000000001"


@dataclass(frozen=True)
class WechatSandbox:
    mchid: str
    appid: str
    apiv3_key: str
    merchant_key_pem: str
    merchant_cert_pem: str
    merchant_serial: str
    platform_key_pem: str
    platform_cert_pem: str
    platform_serial: str
    cert_dir: Path


@dataclass(frozen=True)
class AlipaySandbox:
    appid: str
    app_private_key_pem: str
    app_public_key_pem: str
    alipay_private_key_pem: str
    alipay_public_key_pem: str


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _public_pem(key: rsa.RSAPrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def _cert(key: rsa.RSAPrivateKey, common_name: str) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Waimai payment sandbox")])
    now = dt.datetime.now(dt.UTC)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=3650)).sign(key, hashes.SHA256()))


def serial_hex(cert_pem: str) -> str:
    """A certificate's serial number as WeChat Pay writes it (upper-case hex)."""
    return f"{x509.load_pem_x509_certificate(cert_pem.encode()).serial_number:X}"


def ensure(root: Path) -> tuple[WechatSandbox, AlipaySandbox]:
    """Load the sandbox identities under `root`, making them on first use (files are owner-only)."""
    root.mkdir(parents=True, exist_ok=True)
    spec = root / "sandbox.json"
    if not spec.exists():
        mk, pk, ak, alk = _key(), _key(), _key(), _key()
        data = {
            "wechat": {"mchid": SANDBOX_MCHID, "appid": SANDBOX_WECHAT_APPID, "apiv3_key": secrets.token_hex(16),
                       "merchant_key_pem": _pem(mk),
                       "merchant_cert_pem": _cert(mk, SANDBOX_MCHID).public_bytes(serialization.Encoding.PEM)
                       .decode(),
                       "platform_key_pem": _pem(pk),
                       "platform_cert_pem": _cert(pk, "Tenpay.com Root CA (sandbox)")
                       .public_bytes(serialization.Encoding.PEM).decode()},
            "alipay": {"appid": SANDBOX_ALIPAY_APPID, "app_private_key_pem": _pem(ak),
                       "app_public_key_pem": _public_pem(ak), "alipay_private_key_pem": _pem(alk),
                       "alipay_public_key_pem": _public_pem(alk)},
        }
        tmp = spec.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.chmod(0o600)
        tmp.replace(spec)
    data = json.loads(spec.read_text())
    w = data["wechat"]
    cert_dir = root / "wechat" / "platform_certs"
    cert_dir.mkdir(parents=True, exist_ok=True)
    platform_serial = serial_hex(w["platform_cert_pem"])
    (cert_dir / f"{platform_serial}.pem").write_text(w["platform_cert_pem"])
    wechat = WechatSandbox(mchid=w["mchid"], appid=w["appid"], apiv3_key=w["apiv3_key"],
                           merchant_key_pem=w["merchant_key_pem"], merchant_cert_pem=w["merchant_cert_pem"],
                           merchant_serial=serial_hex(w["merchant_cert_pem"]), platform_key_pem=w["platform_key_pem"],
                           platform_cert_pem=w["platform_cert_pem"], platform_serial=platform_serial,
                           cert_dir=cert_dir)
    a = data["alipay"]
    alipay = AlipaySandbox(appid=a["appid"], app_private_key_pem=a["app_private_key_pem"],
                           app_public_key_pem=a["app_public_key_pem"],
                           alipay_private_key_pem=a["alipay_private_key_pem"],
                           alipay_public_key_pem=a["alipay_public_key_pem"])
    return wechat, alipay
