"""Helpers of the security regression suite: principals beyond the demo accounts, cookie sign-in."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import make_settings
from waimai.config import Settings
from waimai.core.database import Database
from waimai.platform.accounts.service import create_user
from waimai.seed import DEMO_ACCOUNTS, DEMO_PASSWORD

PHONES = {role.value: phone for role, (phone, _n) in DEMO_ACCOUNTS.items()}
PHONES["other_customer"] = "18600000011"
PHONES["other_merchant"] = "18600000012"
ORIGIN = "http://testserver"  # the TestClient's own origin
EVIL = "http://evil.example"


def add_other_principals(url: str) -> None:
    """A second customer, and staff of another shop (merchant 2): for the ownership checks."""
    db = Database(url)
    with db.session() as s:
        create_user(s, phone=PHONES["other_customer"], name="另一位顾客", role="customer", password=DEMO_PASSWORD)
        create_user(s, phone=PHONES["other_merchant"], name="另一家商家", role="merchant", password=DEMO_PASSWORD,
                    merchant_id=2)
        s.commit()
    db.dispose()


def bearer(c: TestClient, who: str) -> str:
    r = c.post("/api/v1/auth/login", json={"phone": PHONES[who], "password": DEMO_PASSWORD})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def cookie_login(c: TestClient, who: str) -> None:
    """Sign in through the login form, as a browser does (same-origin): the client keeps the cookie."""
    r = c.post("/login", data={"phone": PHONES[who], "password": DEMO_PASSWORD}, follow_redirects=False,
               headers={"Origin": ORIGIN, "Sec-Fetch-Site": "same-origin"})
    assert r.status_code == 303 and "waimai_token" in r.cookies, r.text


PROD_SECRET = "s" + "0123456789abcdef" * 3
METRICS_TOKEN = "scrape-" + "f00dfeed" * 4


def production_settings(url: str, **kw: object) -> Settings:
    """The test settings, validated again as a production instance (real-looking secrets, a scrape token)."""
    base = make_settings(url, **kw).model_dump()
    base.update(env="production", secret_key=PROD_SECRET, gateway_secret="a-real-gateway-secret-for-tests",
                metrics_token=METRICS_TOKEN)
    return Settings(**base)
