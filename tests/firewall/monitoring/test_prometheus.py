"""A real Prometheus (Debian's package) scrapes a running Waimai and loads the shipped rules."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import IN_CI, Api, make_settings
from tests.servers import free_port, serve
from waimai.app import create_app

DEPLOY = Path(__file__).resolve().parents[3] / "deploy" / "prometheus"


@pytest.fixture
def prometheus_bin() -> str:
    path = shutil.which("prometheus")
    if path is None:
        if IN_CI:
            pytest.fail("CI=true needs Debian's prometheus package (.ci/run installs it)")
        pytest.skip("prometheus not installed (apt-get install prometheus)")
    return path


def test_rule_files_pass_promtool() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed")
    out = subprocess.run([promtool, "check", "rules", *sorted(str(p) for p in DEPLOY.glob("*.rules.yml"))],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_prometheus_scrapes_waimai(prometheus_bin: str, sqlite_url: str, tmp_path: Path) -> None:
    port, prom_port = free_port(), free_port()
    app = create_app(make_settings(sqlite_url), background=False)
    cfg = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    cfg["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    cfg["scrape_configs"][0]["static_configs"][0]["targets"] = [f"127.0.0.1:{port}"]
    cfg["rule_files"] = [str(DEPLOY / r) for r in cfg["rule_files"]]
    auth = cfg["scrape_configs"][0]["authorization"]  # the scrape token file sits beside the shipped config
    auth["credentials_file"] = str(DEPLOY / auth["credentials_file"])
    cfg.pop("alerting")
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(cfg))
    with serve(app, port) as base:
        api = Api(httpx.Client(base_url=base))  # type: ignore[arg-type]
        from prometheus_client import REGISTRY

        assert api.place().status_code == 201
        placed = REGISTRY.get_sample_value("waimai_orders_placed_total", {"payment_method": "cod", "source": "app"})
        app.state.probes.run()
        prom = subprocess.Popen([prometheus_bin, f"--config.file={tmp_path / 'prometheus.yml'}",
                                 f"--storage.tsdb.path={tmp_path / 'data'}",
                                 f"--web.listen-address=127.0.0.1:{prom_port}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            q = f"http://127.0.0.1:{prom_port}/api/v1"
            deadline = time.time() + 45
            series: list = []  # type: ignore[type-arg]
            while time.time() < deadline:
                try:
                    r = httpx.get(f"{q}/query", params={"query": 'waimai_orders_placed_total{payment_method="cod"}'})
                    series = r.json()["data"]["result"] if r.status_code == 200 else []
                except httpx.HTTPError:
                    series = []
                if series:
                    break
                time.sleep(0.5)
            assert series and float(series[0]["value"][1]) == placed, series
            up = httpx.get(f"{q}/query", params={"query": 'up{job="waimai"}'}).json()["data"]["result"]
            assert up[0]["value"][1] == "1"
            groups = httpx.get(f"{q}/rules").json()["data"]["groups"]
            names = {g["name"] for g in groups}
            assert names == {"waimai-recording", "waimai-symptoms"}
            assert all(r.get("health") != "err" for g in groups for r in g["rules"])
            for name in ("waimai_http_request_duration_seconds_bucket", "waimai_dependency_up",
                         "waimai_db_query_duration_seconds_count", "waimai_event_loop_lag_seconds"):
                res = httpx.get(f"{q}/query", params={"query": name}).json()["data"]["result"]
                assert res, f"{name} not scraped"
            # The firewall can read its series from this Prometheus instead of the embedded store.
            import datetime as dt

            from waimai.firewall.monitoring.store import PrometheusMetricSource

            src = PrometheusMetricSource(f"http://127.0.0.1:{prom_port}",
                                         {"dependency_up.database": 'waimai_dependency_up{dependency="database"}'})
            now = dt.datetime.now(dt.UTC)
            pts = src.query_range("dependency_up.database", now - dt.timedelta(minutes=2), now, 1)
            assert pts and pts[-1].value == 1.0
            assert src.query_range("unknown", now - dt.timedelta(minutes=1), now, 1) == []
            src.close()
        finally:
            prom.terminate()
            prom.wait(timeout=20)
