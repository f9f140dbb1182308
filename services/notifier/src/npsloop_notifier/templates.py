"""Email templates per kind and locale (Jinja2; HTML autoescaped, text not), with the tenant's
branding, composed into one multipart message with List-Unsubscribe (RFC 2369) and
List-Unsubscribe-Post (RFC 8058).

Templates are `<kind>.<locale>.subject|txt|html`; `NPSLOOP_TEMPLATES_DIR` may hold your own,
which win over ours. A locale falls back `de-AT` -> `de` -> the default locale.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from email.charset import QP, Charset
from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import compat32
from pathlib import Path
from typing import Any

import jinja2
from pydantic import BaseModel, ConfigDict, ValidationError

from npsloop_schemas import NotificationKind, NotificationRequestedV1

from .links import REPLY, UNSUBSCRIBE, Links
from .policy import suppression_hash
from .ports import DeliveryError

BUILTIN = Path(__file__).parent / "templates"
#: Headers folded only past 998 characters: a List-Unsubscribe URL stays on one line.
WIRE = compat32.clone(max_line_length=998)
_UTF8_QP = Charset("utf-8")
_UTF8_QP.body_encoding = QP  # readable in any mail client's source view, unlike base64

NURTURE_CHOICES = {
    "en": ["Faster service", "Better prices", "More choice", "Friendlier staff"],
    "de": ["Schnellerer Service", "Bessere Preise", "Mehr Auswahl", "Freundlicheres Personal"],
}


class Brand(BaseModel):
    """A tenant's branding fields (the `[tenants.<id>]` table of NPSLOOP_BRANDING_FILE)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "us"
    sender: str | None = None  # a From header, e.g. "Acme <hello@acme.example>"
    logo_url: str | None = None
    primary_color: str = "#0b5fff"
    footer: str = ""
    website: str | None = None
    review_url: str | None = None


def load_branding(path: Path | None) -> dict[str, Brand]:
    if path is None:
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        return {tenant: Brand.model_validate(v) for tenant, v in data.get("tenants", {}).items()}
    except (OSError, tomllib.TOMLDecodeError, ValidationError) as exc:
        raise ValueError(f"{path}: cannot read the branding file (NPSLOOP_BRANDING_FILE): {exc}") from None


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str
    unsubscribe_url: str


class Templates:
    def __init__(
        self,
        links: Links,
        *,
        directory: Path | None = None,
        branding: dict[str, Brand] | None = None,
        default_locale: str = "en",
    ) -> None:
        loaders: list[jinja2.BaseLoader] = [jinja2.FileSystemLoader(BUILTIN)]
        if directory is not None:
            loaders.insert(0, jinja2.FileSystemLoader(directory))
        self.env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders),
            autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
            auto_reload=False,  # no stat() per message; restart to pick up changed templates
        )
        self.names = set(self.env.list_templates())
        self.links, self.branding, self.default_locale = links, branding or {}, default_locale

    def locale_for(self, kind: str, locale: str | None) -> str:
        wanted = [locale, locale.split("-")[0].split("_")[0]] if locale else []
        for candidate in [*wanted, self.default_locale, "en"]:
            if candidate and f"{kind}.{candidate}.txt" in self.names:
                return candidate
        raise DeliveryError(f"template error: no template for {kind}", permanent=True)

    def render(self, request: NotificationRequestedV1) -> Rendered:
        p = request.payload
        kind = str(p.kind)
        locale = self.locale_for(kind, p.locale)
        email_hash = suppression_hash(request.tenant_id, "email", p.recipient.email) if p.recipient.email else None
        unsubscribe = self.links.url(
            "/v1/unsubscribe",
            self.links.token(
                UNSUBSCRIBE, p.delivery_id, request.tenant_id, p.customer_key, p.feedback_event_id, email_hash
            ),
        )
        context: dict[str, Any] = {
            "name": p.recipient.name,
            "score": p.score,
            "comment": p.comment,
            "store_id": p.store_id,
            "brand": self.branding.get(request.tenant_id, Brand()),
            "lang": locale,
            "unsubscribe_url": unsubscribe,
            "reply_url": None,
            "choices": NURTURE_CHOICES.get(locale, NURTURE_CHOICES["en"]),
        }
        if p.kind is NotificationKind.NURTURE_EMAIL:
            reply = self.links.token(REPLY, p.delivery_id, request.tenant_id, p.customer_key, p.feedback_event_id)
            context["reply_url"] = self.links.url("/v1/reply", reply)
        try:
            subject = self.env.get_template(f"{kind}.{locale}.subject").render(context).strip()
            context["subject"] = subject
            text = self.env.get_template(f"{kind}.{locale}.txt").render(context)
            html = self.env.get_template(f"{kind}.{locale}.html").render(context)
        except jinja2.TemplateError as exc:
            where = f" ({exc.name}:{exc.lineno})" if isinstance(exc, jinja2.TemplateSyntaxError) else ""
            raise DeliveryError(
                f"template error in {kind}.{locale}{where}: {type(exc).__name__}: {exc}", permanent=True
            ) from exc
        return Rendered(subject, text, html, unsubscribe)

    def sender(self, request: NotificationRequestedV1, default: str) -> str:
        brand = self.branding.get(request.tenant_id)
        return brand.sender if brand and brand.sender else default

    def compose(self, request: NotificationRequestedV1, sender: str) -> MIMEMultipart:
        """The whole message; raises DeliveryError (permanent) on a missing address or a template error."""
        p = request.payload
        if not p.recipient.email:
            raise DeliveryError("no email address for this customer", permanent=True)
        r = self.render(request)
        msg = MIMEMultipart("alternative")
        msg.attach(MIMEText(r.text, "plain", _UTF8_QP))  # type: ignore[arg-type]
        msg.attach(MIMEText(r.html, "html", _UTF8_QP))  # type: ignore[arg-type]
        msg["From"] = self.sender(request, sender)
        msg["To"] = p.recipient.email
        msg["Subject"] = r.subject if r.subject.isascii() else Header(r.subject, "utf-8").encode()
        msg["Message-ID"] = f"<{p.delivery_id}@npsloop>"
        msg["X-Npsloop-Delivery-Id"] = str(p.delivery_id)
        msg["X-Npsloop-Kind"] = str(p.kind)
        msg["List-Unsubscribe"] = f"<{r.unsubscribe_url}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        msg["Auto-Submitted"] = "auto-generated"
        return msg
