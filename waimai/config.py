"""One typed Settings object for the whole service, read from the environment and `.env`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SECRET = "change-me-dev-secret-key-0000000000"  # noqa: S105 - refused outside development
DEFAULT_GATEWAY_SECRET = "dev-gateway-secret"  # noqa: S105 - refused outside development
# The example VAPID key in docs/operations.md (published, so anyone could sign with it): development only.
DEMO_VAPID_PRIVATE_KEY = "SuHHlc-fdLhEU0tjQ6Q4TaTjGMd8qYgupLN5fzX21EY"  # noqa: S105 - refused outside development


def weak_secret(value: str, *, min_len: int, min_bits: float) -> bool:
    """Too short, or too little in it: the Shannon entropy of its characters times its length, so
    `xxxx…` or `abab…` fails however long it is, while `secrets.token_urlsafe(32)` or 64 hex digits pass."""
    import math
    from collections import Counter

    if len(value) < min_len:
        return True
    n = len(value)
    per_char = -sum(c / n * math.log2(c / n) for c in Counter(value).values())
    return per_char * n < min_bits or len(set(value)) < 8


# Process roles (waimai/core/roles.py says what each runs). The names live here, below core, because
# `WAIMAI_ROLES` is validated with them: config imports nothing of ours (the layers contract).
ROLES: tuple[str, ...] = ("api", "worker", "dispatcher", "notifier")


def parse_roles(value: str | list[str] | tuple[str, ...] | frozenset[str]) -> frozenset[str]:
    """`api,worker` → {"api", "worker"}; `all` or empty → every role; unknown names are refused."""
    items = value.split(",") if isinstance(value, str) else list(value)
    names = {v.strip().lower() for v in items if v.strip()}
    if not names or names == {"all"}:
        return frozenset(ROLES)
    unknown = names - set(ROLES)
    if unknown:
        raise ValueError(f"unknown role(s) {', '.join(sorted(unknown))}; choose from {', '.join(ROLES)}")
    return frozenset(names)


def ordered(roles: frozenset[str]) -> list[str]:
    return [r for r in ROLES if r in roles]


@dataclass(frozen=True)
class Timeouts:
    """Bounds on every PostgreSQL connection of the main engine, so a dead or hung server fails calls
    quickly instead of filling the thread pool (0 turns one off)."""

    connect_s: int = 3  # libpq connect_timeout: covers a server that accepts TCP and then says nothing
    statement_ms: int = 15_000
    lock_ms: int = 5_000
    pool_wait_s: float = 5.0  # waiting for a free pooled connection
    idle_in_transaction_ms: int = 30_000


class Settings(BaseSettings):
    """Everything configurable; each field maps to `WAIMAI_<NAME>` (see README table)."""

    model_config = SettingsConfigDict(env_prefix="WAIMAI_", env_file=".env", extra="ignore")

    # Fail closed: only an explicit WAIMAI_ENV=development (`make run` sets it) may run on the published keys.
    env: Literal["development", "test", "production"] = "production"
    database_url: str = Field(default="sqlite:///var/waimai.db", description="SQLAlchemy URL")
    secret_key: str = Field(default=DEFAULT_SECRET, description="signs login tokens and links")
    token_ttl_minutes: int = Field(default=12 * 60, ge=5)
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = Field(default=1, ge=1, le=64)
    public_url: str = Field(default="", description="base URL for callbacks and cashier returns "
                                                   "(default http://<host>:<port>)")
    default_locale: Literal["zh_CN", "en"] = "zh_CN"
    # Scale-out (docs/operations.md): roles of this process, leader election, drain on SIGTERM, tracking bus.
    roles: str = Field(default="api,worker,dispatcher,notifier",
                       description="comma list of api, worker, dispatcher, notifier (`waimai serve --role`)")
    leader_retry_s: float = Field(default=1.0, gt=0, le=30, description="how often followers try to take over")
    drain_delay_s: float = Field(default=5.0, ge=0, le=120,
                                 description="on SIGTERM, seconds of failing readiness before the server stops")
    tracking_bus: Literal["auto", "memory", "postgres"] = Field(
        default="auto", description="live-tracking fan-out: auto = LISTEN/NOTIFY on PostgreSQL, in process on SQLite")

    # Payments: the HTTP gateway (a stand-in in development, `waimai fake-gateway`).
    gateway_url: str = "http://127.0.0.1:8100"
    gateway_app_id: str = "waimai-demo"
    gateway_secret: str = DEFAULT_GATEWAY_SECRET
    gateway_timeout_s: float = Field(default=3.0, gt=0)
    # Payment rails (docs/payments.md): WeChat Pay API v3 and Alipay. Empty: only the gateway above.
    # Unset merchant credentials mean the sandbox identities under `payments_sandbox_dir` (development only).
    payment_rails: str = Field(default="", description="comma list of wechat, alipay offered at checkout")
    payments_sandbox_dir: str = "var/payments-sandbox"
    wechatpay_url: str = Field(default="https://api.mch.weixin.qq.com", description="WeChat Pay API base URL")
    wechatpay_mchid: str | None = None
    wechatpay_appid: str | None = None
    wechatpay_apiv3_key: SecretStr | None = None
    wechatpay_private_key_file: str | None = Field(default=None, description="merchant API private key (PEM)")
    wechatpay_cert_serial_no: str | None = Field(default=None, description="serial of the merchant API certificate")
    wechatpay_platform_cert_dir: str | None = Field(default=None, description="WeChat Pay platform certificates")
    alipay_url: str = Field(default="https://openapi.alipay.com/gateway.do", description="Alipay gateway URL")
    alipay_appid: str | None = None
    alipay_app_private_key_file: str | None = None
    alipay_public_key_file: str | None = Field(default=None, description="Alipay's public key (PEM)")

    # Resilience (docs/operations.md, "Breakers and switches"): shared breaker state, automatic switches.
    redis_url: str | None = Field(default=None, description="Redis for shared breaker state (unset: the database)")
    breaker_failure_threshold: int = Field(default=5, ge=1, le=100, description="failed calls in a row that open "
                                                                                "a dependency's breaker")
    breaker_open_s: float = Field(default=10.0, gt=0, le=600, description="open breaker: seconds before a trial call")
    cod_recovery_s: float = Field(default=60.0, ge=0, le=3600,
                                  description="gateway healthy this long before payment.cod_only turns itself off")
    simple_mode_db_latency_ms: float = Field(default=250.0, gt=0, description="database latency (median of a few "
                                                                            "probes) that engages ordering.simple_mode")
    simple_mode_recovery_s: float = Field(default=60.0, ge=0, le=3600,
                                          description="database fast this long before simple mode turns itself off")
    # Database failure (docs/operations.md "When the database fails"): timeouts, outage detection, the order spool.
    db_connect_timeout_s: int = Field(default=3, ge=0, le=60, description="PostgreSQL connect timeout (0: none)")
    db_statement_timeout_ms: int = Field(default=15_000, ge=0, description="PostgreSQL statement_timeout (0: none)")
    db_lock_timeout_ms: int = Field(default=5_000, ge=0, description="PostgreSQL lock_timeout (0: none)")
    db_outage_after_s: float = Field(default=3.0, ge=0, le=60, description="database unreachable this long "
                                                                          "counts as an outage")
    spool_path: str = Field(default="var/order-spool.db", description="this replica's order spool (a local "
                                                                     "SQLite file, never the main database)")
    switch_cache_ttl_s: float = Field(default=0.5, ge=0, le=5, description="how stale a switch read may be")
    chaos: bool = Field(default=False, description="fault injection for drills and tests (PUT /api/v1/chaos/db); "
                                                   "refused in production")

    idempotency_ttl_hours: int = Field(default=24, ge=24, description="how long idempotency keys are kept")
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    login_max_attempts: int = Field(default=5, ge=1, description="failed logins per phone+IP per window")
    login_max_per_phone: int = Field(default=10, ge=1, description="failed logins per phone (any address) per window")
    login_max_per_address: int = Field(default=30, ge=1, description="failed logins per client address per window")
    login_max_global: int = Field(default=1000, ge=1, description="failed logins of everyone per window")
    login_window_s: int = Field(default=300, ge=10)
    trusted_proxies: str = Field(default="", description="comma list of proxy addresses or CIDRs whose "
                                 "X-Forwarded-For/-Proto are believed (default none: the peer is the client)")
    proof_max_attempts: int = Field(default=5, ge=1, le=20, description="wrong delivery proof codes per order "
                                    "before the order's proof locks (support unlocks)")
    proof_max_per_rider: int = Field(default=10, ge=1, description="wrong proof codes per rider per hour before "
                                     "the rider's proof entry locks")
    authz_cache_s: float = Field(default=1.0, ge=0, le=10, description="how long a user's role, active flag and "
                                 "token version read from the database are reused")
    monitoring: bool = Field(default=True, description="metrics, sampling and probes (off only to measure them)")
    metrics_url: str = Field(default="sqlite:///var/metrics.db", description="embedded time-series store")
    sample_interval_s: float = Field(default=5.0, gt=0, le=300, description="how often key series are sampled")
    log_file: str | None = Field(default="var/logs/waimai.jsonl", description="JSON log file the console searches")
    sms_provider_url: str | None = Field(default=None, description="SMS provider endpoint, probed for health")
    watchdog_url: str | None = Field(default=None, description="where to send dead-man's-switch heartbeats")
    zabbix_server: str | None = Field(default=None, description="host:port of a Zabbix server/proxy to push to")
    zabbix_host: str = Field(default="waimai", description="the host name the Zabbix items belong to")
    alert_rules_file: str | None = Field(default=None, description="alert rules YAML (default: shipped rules)")
    alerting_config_file: str | None = Field(default=None, description="routes, receivers, on-call (YAML)")
    alert_eval_interval_s: float = Field(default=1.0, gt=0, le=60, description="how often alert rules run")
    alert_ingest_token: str | None = Field(default=None, description="bearer token for Alertmanager/event intake")
    metrics_token: SecretStr | None = Field(default=None, description="bearer token Prometheus sends to scrape "
                                            "/metrics and the detailed /readyz in production (ops may always)")
    sse_streams_per_user: int = Field(default=4, ge=1, le=100, description="live order streams one user may hold "
                                      "open in one process")
    access_log: Literal["all", "errors"] = Field(
        default="errors", description="log every request, or only 4xx/5xx and slow (> 500 ms) ones")
    platforms: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description='order intake, JSON: {"meituan": {"app_id", "secret", "api_base"}, '
                                          '"eleme": {...}, "jd": {...}}')
    campus_origin_lat: float = Field(default=31.0, ge=-90, le=90, description="campus (0, 0) for platform lat/lng")
    campus_origin_lng: float = Field(default=121.0, ge=-180, le=180)
    incident_sop_file: str | None = Field(default=None, description="incident SOP YAML (default: shipped SOP)")
    incident_auto_open: bool = Field(default=True, description="open incidents from firing P1/P2 alerts")
    remediation_file: str | None = Field(default=None, description="remediation policies YAML (default: shipped)")
    forecast_extra_holidays: list[dt.date] = Field(default_factory=list, description="campus days off the order "
                                                    "forecast treats like public holidays (JSON list of dates)")
    notice_sms_url: str | None = Field(default=None, description="Alibaba Cloud SMS endpoint for user notices "
                                                                 "(unset: in-app inbox only)")
    notice_sms_key_id: str = ""
    notice_sms_key_secret: SecretStr = SecretStr("")
    notice_sms_sign_name: str = "外卖"
    notice_sms_templates: dict[str, str] = Field(
        default_factory=lambda: {"zh_CN": "SMS_NOTICE_ZH", "en": "SMS_NOTICE_EN"},
        description="SMS template code per language; variables component, status, eta")
    notice_sms_per_hour: int = Field(default=3, ge=0, description="incident SMS per user per hour at most")
    # Web Push (waimai/platform/push, docs/operations.md "Push notifications"): VAPID identity and limits.
    vapid_private_key: SecretStr | None = Field(default=None, description="VAPID private key, base64url of the "
                                                "raw P-256 key (`waimai push-keygen`; unset: generated once "
                                                "and kept in the database)")
    vapid_subject: str = Field(default="mailto:ops@waimai.invalid", description="VAPID contact (mailto: or "
                                                                                "https:) push services see")
    push_subscriptions_per_user: int = Field(default=5, ge=1, le=50, description="browsers one user may "
                                             "receive push notifications in")
    push_ttl_s: int = Field(default=3600, ge=0, le=7 * 86400, description="how long a push service keeps a "
                                                                          "message for a phone that is offline")
    # Backups (waimai/firewall/recovery, docs/operations.md "Backups and rollback").
    backup_dir: str = Field(default="var/backups", description="local backup target; also the index and exports")
    backup_mirror_dir: str | None = Field(default=None, description="a second local target (another disk)")
    backup_s3_bucket: str | None = Field(default=None, description="S3-compatible target (Alibaba OSS, MinIO…)")
    backup_s3_endpoint: str | None = Field(default=None, description="e.g. https://oss-cn-hangzhou.aliyuncs.com")
    backup_s3_region: str = "us-east-1"
    backup_s3_prefix: str = "waimai-backups/"
    backup_s3_access_key_id: str | None = None
    backup_s3_secret_access_key: SecretStr | None = None
    backup_s3_addressing_style: Literal["virtual", "path", "auto"] = Field(
        default="virtual", description="virtual-hosted (OSS, AWS) or path (MinIO, most local servers)")
    backup_encryption_key: SecretStr | None = Field(default=None, description="base64 of 32 random bytes "
                                                    "(`waimai backup keygen`); backups are encrypted when set")
    backup_compression: Literal["zstd", "gzip"] = "zstd"
    backup_schedule: str = Field(default="0 * * * *", description="cron, campus time, for scheduled backups")
    backup_scheduled: bool | None = Field(default=None, description="run scheduled backups (default: on, off in "
                                                                    "the test environment)")
    backup_verify: bool = Field(default=True, description="verify each scheduled backup by restoring it")
    backup_keep_hourly: int = Field(default=24, ge=0)
    backup_keep_daily: int = Field(default=14, ge=0)
    backup_keep_weekly: int = Field(default=8, ge=0)
    backup_pg_bindir: str | None = Field(default=None, description="where pg_dump/pg_restore/psql are (default: PATH)")
    # Rider pay (waimai/platform/payroll, docs/operations.md "Rider pay").
    payroll_interval_s: float = Field(default=300.0, ge=0, le=86400, description="how often the open pay periods' "
                                      "drafts are recomputed (0: only by ops and the CLI)")
    payroll_auto_close_hours: float | None = Field(default=None, ge=0, le=24 * 31, description="close a finished "
                                                   "draft period this many hours after it ends (unset: ops close)")
    log_json: bool | None = Field(default=None, description="JSON log lines (default: on outside development)")
    log_level: str = "INFO"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def role_set(self) -> frozenset[str]:
        return parse_roles(self.roles)

    @field_validator("metrics_token")
    @classmethod
    def _real_metrics_token(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and (len(v.get_secret_value()) < 16 or "CHANGE-ME" in v.get_secret_value()):
            raise ValueError("WAIMAI_METRICS_TOKEN must be a random value of at least 16 characters")
        return v

    @field_validator("vapid_private_key")
    @classmethod
    def _vapid_key_is_p256(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None:
            import base64

            from cryptography.hazmat.primitives.asymmetric import ec

            text = v.get_secret_value().strip()
            try:  # the shape waimai.platform.push.vapid.load_private_key reads (config sits below every layer)
                raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
                if len(raw) != 32:
                    raise ValueError("not 32 bytes")
                ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
            except ValueError:
                raise ValueError("WAIMAI_VAPID_PRIVATE_KEY must be base64url of a raw P-256 private key "
                                 "(`waimai push-keygen` prints one)") from None
        return v

    @field_validator("vapid_subject")
    @classmethod
    def _vapid_subject_is_contact(cls, v: str) -> str:
        if not v.startswith(("mailto:", "https://")):
            raise ValueError("WAIMAI_VAPID_SUBJECT must be a mailto: or https: URL")
        return v

    @field_validator("roles")
    @classmethod
    def _known_roles(cls, v: str) -> str:
        return ",".join(ordered(parse_roles(v)))

    @property
    def trusted_proxy_list(self) -> list[str]:
        return [x.strip() for x in self.trusted_proxies.split(",") if x.strip()]

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_addresses(cls, v: str) -> str:
        import ipaddress

        for item in (x.strip() for x in v.split(",")):
            if item:
                try:
                    ipaddress.ip_network(item, strict=False)
                except ValueError as exc:
                    raise ValueError(f"WAIMAI_TRUSTED_PROXIES: {item!r} is not an address or CIDR") from exc
        return v

    @model_validator(mode="after")
    def _public_url_from_host_and_port(self) -> Settings:
        # A team serving on WAIMAI_PORT=8001 must get callbacks and cashier returns on 8001 too.
        if not self.public_url:
            host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host  # noqa: S104  # nosec B104
            self.public_url = f"http://{host}:{self.port}"
        return self

    @model_validator(mode="after")
    def _refuse_unsafe_defaults(self) -> Settings:
        if self.env == "development":
            return self
        where = f"with WAIMAI_ENV={self.env}"
        if self.secret_key == DEFAULT_SECRET or weak_secret(self.secret_key, min_len=32, min_bits=96):
            raise ValueError(f"WAIMAI_SECRET_KEY must be a random value of at least 32 characters {where} "
                             "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`); "
                             "only WAIMAI_ENV=development runs on the published key")
        if self.gateway_secret == DEFAULT_GATEWAY_SECRET or weak_secret(self.gateway_secret, min_len=16, min_bits=48):
            raise ValueError(f"WAIMAI_GATEWAY_SECRET must be a random value of at least 16 characters {where}")
        if self.alert_ingest_token is not None and weak_secret(self.alert_ingest_token, min_len=16, min_bits=48):
            raise ValueError(f"WAIMAI_ALERT_INGEST_TOKEN must be a random value of at least 16 characters {where}")
        if self.vapid_private_key is not None and self.vapid_private_key.get_secret_value() == DEMO_VAPID_PRIVATE_KEY:
            raise ValueError(f"WAIMAI_VAPID_PRIVATE_KEY is the published example key; {where} use your own "
                             "(`waimai push-keygen`) or leave it unset to have one generated")
        if self.env == "production":
            _refuse_missing_rails(self)
        if self.env == "production" and self.chaos:
            raise ValueError("WAIMAI_CHAOS (fault injection) must not be set in production")
        return self

    def db_timeouts(self) -> Timeouts:
        return Timeouts(connect_s=self.db_connect_timeout_s, statement_ms=self.db_statement_timeout_ms,
                        lock_ms=self.db_lock_timeout_ms)

    def sqlite_path(self) -> Path | None:
        if not self.is_sqlite:
            return None
        raw = self.database_url.split("///", 1)[-1]
        return None if raw in ("", ":memory:") else Path(raw)


def rails(settings: Settings) -> list[str]:
    return [r.strip() for r in settings.payment_rails.split(",") if r.strip()]


def _refuse_missing_rails(s: Settings) -> None:
    """In production every configured rail needs its own merchant credentials, never the sandbox's."""
    need = {"wechat": ("wechatpay_mchid", "wechatpay_appid", "wechatpay_apiv3_key", "wechatpay_private_key_file",
                       "wechatpay_cert_serial_no", "wechatpay_platform_cert_dir"),
            "alipay": ("alipay_appid", "alipay_app_private_key_file", "alipay_public_key_file")}
    for rail in rails(s):
        if rail not in need:
            raise ValueError(f"unknown payment rail {rail!r} in WAIMAI_PAYMENT_RAILS")
        for name in need[rail]:
            value = getattr(s, name)
            if not value or "sandbox" in str(value if not isinstance(value, SecretStr)
                                             else value.get_secret_value()):
                raise ValueError(f"WAIMAI_{name.upper()} must be set (not the sandbox's) in production")


@lru_cache
def get_settings() -> Settings:
    return Settings()
