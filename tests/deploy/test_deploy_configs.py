"""The scale-out files in deploy/: Kubernetes manifests against the Kubernetes schema (strict), and the
HAProxy and nginx configs through the programs' own checkers."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.reliability.cluster import ROOT, require
from waimai.config import Settings
from waimai.core.roles import parse_roles

K8S = ROOT / "deploy" / "k8s"
KUBERNETES_VERSIONS = ("1.29.0", "1.37.0")  # the oldest release still common in managed clusters, the newest bundled


def _docs() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        out += [(path.name, d) for d in yaml.safe_load_all(path.read_text()) if d]
    return out


def _by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for _f, d in _docs() if d["kind"] == kind}


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_is_valid_kubernetes(version: str) -> None:
    docs = _docs()
    assert {d["kind"] for _f, d in docs} >= {"Deployment", "Service", "HorizontalPodAutoscaler",
                                              "PodDisruptionBudget", "ConfigMap", "Secret", "Job"}
    for name, doc in docs:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{name} ({doc['kind']} {doc['metadata']['name']}) on Kubernetes {version}: {exc.message} "
                        f"at {'.'.join(str(p) for p in exc.path)}")


def test_kustomization_lists_every_manifest_but_the_example_secret() -> None:
    kust = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "secret.example.yaml"}
    assert set(kust["resources"]) == files


def test_deployments_probe_health_run_roles_and_read_config_and_secret() -> None:
    deployments = _by_kind("Deployment")
    config = _by_kind("ConfigMap")["waimai-config"]
    secret = _by_kind("Secret")["waimai-secrets"]
    known = {f"WAIMAI_{name.upper()}" for name in Settings.model_fields}
    assert set(config["data"]) <= known, set(config["data"]) - known
    assert set(secret["stringData"]) <= known
    roles_run: set[str] = set()
    for dep in deployments.values():
        pod = dep["spec"]["template"]["spec"]
        (c,) = pod["containers"]
        assert c["startupProbe"]["httpGet"]["path"] == "/livez"
        assert c["livenessProbe"]["httpGet"]["path"] == "/livez"
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
        refs = {(k, v["name"]) for e in c["envFrom"] for k, v in e.items()}
        assert refs == {("configMapRef", "waimai-config"), ("secretRef", "waimai-secrets")}
        assert c["command"][:3] == ["waimai", "serve", "--role"]
        roles_run |= parse_roles(c["command"][3])
        # Drain delay plus uvicorn's 10 s for in-flight requests fit in the grace period.
        drain = float(next((e["value"] for e in c.get("env", []) if e["name"] == "WAIMAI_DRAIN_DELAY_S"),
                           config["data"]["WAIMAI_DRAIN_DELAY_S"]))
        assert pod["terminationGracePeriodSeconds"] >= drain + 10 + 5
        assert dep["spec"]["selector"]["matchLabels"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    assert roles_run == parse_roles("all")
    assert deployments["waimai-jobs"]["spec"]["replicas"] >= 2  # a follower to take over singleton jobs


def test_service_hpa_and_budgets_point_at_the_right_pods() -> None:
    deployments = _by_kind("Deployment")
    api_labels = deployments["waimai-api"]["spec"]["template"]["metadata"]["labels"]
    assert _by_kind("Service")["waimai"]["spec"]["selector"].items() <= api_labels.items()
    hpa = _by_kind("HorizontalPodAutoscaler")["waimai-api"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "waimai-api"
    kinds = {("Resource", m["resource"]["name"]) if m["type"] == "Resource" else (m["type"], m["pods"]["metric"]["name"])
             for m in hpa["spec"]["metrics"]}
    assert kinds == {("Resource", "cpu"), ("Pods", "waimai_http_requests_per_second")}
    assert hpa["spec"]["minReplicas"] > _by_kind("PodDisruptionBudget")["waimai-api"]["spec"]["minAvailable"]
    for name, pdb in _by_kind("PodDisruptionBudget").items():
        labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_haproxy_config_is_valid() -> None:
    haproxy = require("haproxy", "haproxy")
    out = subprocess.run([haproxy, "-c", "-f", str(ROOT / "deploy" / "haproxy" / "haproxy.cfg")],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "WARNING" not in out.stdout + out.stderr


def test_nginx_config_is_valid(tmp_path: Path) -> None:
    nginx = require("nginx", "nginx-light")
    tmp = tmp_path / "tmp"
    conf = tmp_path / "nginx.conf"
    conf.write_text(f"pid {tmp_path}/nginx.pid;\nerror_log stderr;\nevents {{}}\nhttp {{\n  access_log off;\n"
                    + "".join(f"  {k}_temp_path {tmp};\n" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
                    + f"  include {ROOT / 'deploy' / 'nginx' / 'waimai.conf'};\n}}\n")
    out = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-c", str(conf)], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr


def test_nginx_body_limits_match_the_app() -> None:
    """nginx must not refuse what the app accepts (5 MB photos) nor pass what it refuses (the 64 KiB default)."""
    import re

    from waimai.platform.support.setup import UPLOADS

    conf = (ROOT / "deploy" / "nginx" / "waimai.conf").read_text()

    def size(text: str) -> int:
        n, unit = re.fullmatch(r"(\d+)([kKmM]?)", text).groups()  # type: ignore[union-attr]
        return int(n) * {"": 1, "k": 1024, "m": 1024 * 1024}[unit.lower()]

    server_limit = re.search(r"^    client_max_body_size (\w+);", conf, re.M)
    assert server_limit and size(server_limit.group(1)) == Settings(env="development").max_body_bytes
    uploads = re.search(r"location ~ (\S+) \{\s*client_max_body_size (\w+);", conf)
    assert uploads, "no location for photo uploads"
    (pattern, limit), = UPLOADS
    assert uploads.group(1) == pattern.pattern.replace("\\\\", "\\")
    assert size(uploads.group(2)) == limit


def test_dockerfile_builds_the_image_the_manifests_run() -> None:
    """The image runs as the user the manifests require, carries the backup tools, and serves `waimai serve`."""
    text = (ROOT / "Dockerfile").read_text()
    uid = {d["spec"]["template"]["spec"]["securityContext"]["runAsUser"] for d in _by_kind("Deployment").values()}
    assert uid == {10001} and "USER 10001:10001" in text
    assert "postgresql-client" in text  # pg_dump / pg_restore for backups
    assert 'CMD ["waimai", "serve"]' in text
    # the runtime lock alone, by hash, then the package without resolving anything more: no dev packages
    installs = re.findall(r"pip install .*", text)
    assert installs == ["pip install --require-hashes -r /tmp/requirements.lock", "pip install --no-deps /src"]
    steps = [line for line in text.splitlines() if not line.startswith("#")]
    assert not [s for s in steps if "requirements-dev.lock" in s or "[dev]" in s or "[drill]" in s]
    images = {c["image"] for d in _by_kind("Deployment").values() for c in d["spec"]["template"]["spec"]["containers"]}
    assert images == {"waimai"}  # kustomization.yaml maps this name to the registry
