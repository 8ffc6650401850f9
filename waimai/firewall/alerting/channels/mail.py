"""E-mail over SMTP with the standard library's `smtplib` (RFC 5321 replies, RFC 5322 headers).

One message per delivery: `Subject: [P1][FIRING] title`, `X-Priority` (1 highest .. 5 lowest) and
`Importance` by severity, `X-Alert-Severity`, `X-Alert-Status`, `X-Alert-Dedup-Key`, a fresh `Message-ID`
and `In-Reply-To`/`References` pointing at a per-alert thread id, so firing, acknowledged and resolved
mails of one alert thread together. Body: text/plain (the markdown) with an HTML alternative.
STARTTLS is on by default (`starttls: false` for a local relay or the test stand-in); AUTH LOGIN/PLAIN
when a username is set. Replies 4xx (and dropped connections, timeouts) are retried; 5xx (including 535
authentication failure) are not.
"""

from __future__ import annotations

import hashlib
import html
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import ClassVar

from pydantic import SecretStr

from waimai.firewall.alerting.channels.base import AlertMessage, Clock, DeliveryLog, RateLimit, register
from waimai.firewall.alerting.channels.delivery import (
    ChannelConfig,
    Delivery,
    ManagedChannel,
    PermanentError,
    Sent,
    TransientError,
)

X_PRIORITY = {"P1": "1 (Highest)", "P2": "2 (High)", "P3": "3 (Normal)", "P4": "5 (Lowest)"}
IMPORTANCE = {"P1": "high", "P2": "high", "P3": "normal", "P4": "low"}


class EmailConfig(ChannelConfig):
    host: str
    port: int = 587
    username: str | None = None
    password: SecretStr | None = None
    starttls: bool = True
    sender: str
    to: list[str] = []
    domain: str = "waimai.local"  # right-hand side of Message-IDs


def build_email(m: AlertMessage, *, sender: str, to: list[str], domain: str) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = m.headline
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Date"] = format_datetime(m.created_at)
    msg["Message-ID"] = make_msgid(idstring="alert", domain=domain)
    thread = f"<alert-{hashlib.sha256(m.dedup_key.encode()).hexdigest()[:24]}@{domain}>"
    msg["In-Reply-To"] = thread
    msg["References"] = thread
    msg["X-Priority"] = X_PRIORITY[m.severity]
    msg["Importance"] = IMPORTANCE[m.severity]
    msg["X-Alert-Severity"] = m.severity
    msg["X-Alert-Status"] = m.status
    msg["X-Alert-Dedup-Key"] = m.dedup_key
    links = [f"{label}: {url}" for label, url in m.links()]
    labels = [f"{k}={v}" for k, v in sorted(m.labels.items())]
    msg.set_content("\n".join([m.headline, "", m.body_markdown, "", *labels, "", *links]) + "\n")
    link_html = "".join(f'<p><a href="{html.escape(url)}">{html.escape(label)}</a></p>' for label, url in m.links())
    msg.add_alternative(
        f"<html><body><h2>{html.escape(m.headline)}</h2><pre>{html.escape(m.body_markdown)}</pre>"
        f"<p>{html.escape(' · '.join(labels))}</p>{link_html}</body></html>", subtype="html")
    return msg


@register("email")
class EmailChannel(ManagedChannel):
    Config: ClassVar[type[ChannelConfig]] = EmailConfig
    default_rate_limit: ClassVar[RateLimit] = RateLimit(30, 60.0)  # our own politeness budget per relay

    def __init__(self, config: EmailConfig, *, clock: Clock | None = None, log: DeliveryLog | None = None) -> None:
        super().__init__(config, clock=clock, log=log)
        self.cfg = config

    def _describe(self) -> str:
        return f"host={self.cfg.host!r} port={self.cfg.port} starttls={self.cfg.starttls}"

    def default_recipients(self) -> tuple[str, ...]:
        return tuple(self.cfg.to)

    def _attempt(self, delivery: Delivery, attempt: int) -> Sent:
        to = list(delivery.recipients or self.cfg.to)
        if not to:
            raise PermanentError("no recipients")
        msg = build_email(delivery.message, sender=self.cfg.sender, to=to, domain=self.cfg.domain)
        try:
            with smtplib.SMTP(self.cfg.host, self.cfg.port, timeout=self.cfg.timeout_s) as smtp:
                smtp.ehlo()
                if self.cfg.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                    smtp.ehlo()
                if self.cfg.username:
                    password = self.cfg.password.get_secret_value() if self.cfg.password else ""
                    smtp.login(self.cfg.username, password)
                refused = smtp.send_message(msg, from_addr=self.cfg.sender, to_addrs=to)
        except smtplib.SMTPAuthenticationError as exc:
            raise PermanentError(f"SMTP {exc.smtp_code}: authentication rejected", exc.smtp_code) from None
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            if all(400 <= c < 500 for c in codes):
                raise TransientError(f"SMTP {codes[0]}: recipients deferred", codes[0]) from None
            raise PermanentError(f"SMTP {codes[0]}: recipients refused", codes[0]) from None
        except smtplib.SMTPResponseException as exc:
            text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
            if 400 <= exc.smtp_code < 500:
                raise TransientError(f"SMTP {exc.smtp_code}: {text[:120]}", exc.smtp_code) from None
            raise PermanentError(f"SMTP {exc.smtp_code}: {text[:120]}", exc.smtp_code) from None
        except (TimeoutError, smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, ConnectionError) as exc:
            raise TransientError(f"SMTP connection problem ({type(exc).__name__})") from None
        except smtplib.SMTPException as exc:
            raise PermanentError(f"SMTP error ({type(exc).__name__})") from None
        except OSError as exc:
            raise TransientError(f"SMTP unreachable ({type(exc).__name__})") from None
        if refused:
            raise PermanentError(f"SMTP: {len(refused)} recipient(s) refused")
        return Sent(250, provider_id=str(msg["Message-ID"]))
