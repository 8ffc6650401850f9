"""A hypothesis fuzz of cookies and form fields over every page route: no request may cause a 5xx.

Pages are not in /openapi.json, so schemathesis does not reach them. For each page route (GET and POST), a
few derandomised examples: any of our cookies set to garbage, a forged cart or a real sign-in of any role;
every form field the route reads filled with text (NUL bytes, long strings, numbers out of range, nothing);
path ids in and far out of range.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import make_settings
from tests.security.conftest import ORIGIN, bearer
from waimai.app import create_app

EXAMPLES = 4
COOKIE_TEXT = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=';,"\\'),
                      max_size=80)
FIELD_TEXT = st.one_of(st.text(max_size=40), st.just("\x00"), st.just("138\x0000000001"), st.just("9" * 30),
                       st.just("-1"), st.just(""), st.text(min_size=300, max_size=600))
PATH_VALUE = st.one_of(st.integers(min_value=1, max_value=3), st.integers(min_value=-5, max_value=2**40),
                       st.sampled_from(["abc", "1.5", "%00", "999999999999999999999"]))


def page_routes(app: object) -> list[tuple[str, str, list[str]]]:
    """(method, path, form field names) of every page route (outside /api, /static and /metrics)."""
    out = []
    for ctx in iter_route_contexts(app.routes):  # type: ignore[attr-defined]
        r = ctx.original_route
        if not isinstance(r, APIRoute) or r.include_in_schema or r.path.startswith(("/api/", "/metrics")):
            continue
        fields = [f.alias for f in r.dependant.body_params]
        for m in sorted(r.methods - {"HEAD"}):
            out.append((m, r.path, fields))
    return out


@pytest.fixture(scope="module")
def site(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, list[str]]]:
    import shutil

    dst = tmp_path_factory.mktemp("pagefuzz") / "fuzz.db"
    shutil.copy(sqlite_template, dst)
    app = create_app(make_settings(f"sqlite:///{dst}", login_max_attempts=10_000), background=False)
    with TestClient(app, raise_server_exceptions=False) as c:
        tokens = [bearer(c, who) for who in ("customer", "merchant", "rider", "support", "ops")]
        yield c, tokens


def test_no_page_answers_5xx(site: tuple[TestClient, list[str]]) -> None:
    c, tokens = site
    routes = page_routes(c.app)
    assert len(routes) >= 40
    failures: list[str] = []
    cookie = st.fixed_dictionaries({}, optional={
        "waimai_cart": st.one_of(COOKIE_TEXT, st.just('"{\\"merchant_id\\":1\\054\\"lines\\":[5]}"')),
        "waimai_token": st.one_of(COOKIE_TEXT, st.sampled_from(tokens)),
        "waimai_lang": st.one_of(COOKIE_TEXT, st.sampled_from(["en", "zh_CN"]))})
    def fuzz(method: str, path: str, fields: list[str]) -> None:
        @given(cookies=cookie, form=st.fixed_dictionaries({f: FIELD_TEXT for f in fields}),
               ids=st.lists(PATH_VALUE, min_size=4, max_size=4))
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                  database=None)
        def run(cookies: dict[str, str], form: dict[str, str], ids: list[object]) -> None:
            values = iter(ids)
            url = re.sub(r"\{[^}]+\}", lambda _m: str(next(values)), path)
            c.cookies.clear()
            for k, v in cookies.items():
                c.cookies.set(k, v)
            r = c.request(method, url, data=form or None, headers={"Origin": ORIGIN}, follow_redirects=False)
            if r.status_code >= 500:
                failures.append(f"{method} {url} cookies={cookies!r:.160} form={form!r:.160} -> {r.status_code}")

        run()

    for method, path, fields in routes:
        if not path.endswith("/events"):  # live streams never end under the test client
            fuzz(method, path, fields)
    assert not failures, "\n".join(failures[:20])
