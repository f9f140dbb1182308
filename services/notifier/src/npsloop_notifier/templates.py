"""Email templates per kind and locale (Jinja2; HTML autoescaped, text not), with the tenant's
branding, composed into one multipart message with List-Unsubscribe (RFC 2369) and
List-Unsubscribe-Post (RFC 8058).

Templates are `<kind>.<locale>.subject|txt|html`; `NPSLOOP_TEMPLATES_DIR` may hold your own,
which win over ours. A locale falls back `de-AT` -> `de` -> the default locale.
"""

from __future__ import annotations

import binascii
import functools
import time
import tomllib
from dataclasses import dataclass
from email.header import Header
from email.utils import formataddr, formatdate, parseaddr
from pathlib import Path
from typing import Any

import jinja2
from pydantic import BaseModel, ConfigDict, ValidationError

from npsloop_schemas import NotificationKind, NotificationRequestedV1

from .links import REPLY, UNSUBSCRIBE, Links
from .policy import suppression_hash
from .ports import DeliveryError

BUILTIN = Path(__file__).parent / "templates"

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


DEFAULT_BRAND = Brand()


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
        self._compiled: dict[tuple[str, str], tuple[_Compiled, _Compiled, _Compiled]] = {}

    def _templates(self, kind: str, locale: str) -> tuple[_Compiled, _Compiled, _Compiled]:
        """The subject, text and HTML templates of a kind and locale, loaded once."""
        found = self._compiled.get((kind, locale))
        if found is None:
            subject, text, html = (
                self.env.get_template(f"{kind}.{locale}.{part}") for part in ("subject", "txt", "html")
            )
            found = self._compiled[(kind, locale)] = (_Compiled(subject), _Compiled(text), _Compiled(html))
        return found

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
            "brand": self.branding.get(request.tenant_id, DEFAULT_BRAND),
            "lang": locale,
            "unsubscribe_url": unsubscribe,
            "reply_url": None,
            "choices": NURTURE_CHOICES.get(locale, NURTURE_CHOICES["en"]),
        }
        if p.kind is NotificationKind.NURTURE_EMAIL:
            reply = self.links.token(REPLY, p.delivery_id, request.tenant_id, p.customer_key, p.feedback_event_id)
            context["reply_url"] = self.links.url("/v1/reply", reply)
        try:
            subject_t, text_t, html_t = self._templates(kind, locale)
            subject = subject_t.render(context).strip()
            context["subject"] = subject
            text = text_t.render(context)
            html = html_t.render(context)
        except jinja2.TemplateError as exc:
            where = f" ({exc.name}:{exc.lineno})" if isinstance(exc, jinja2.TemplateSyntaxError) else ""
            raise DeliveryError(
                f"template error in {kind}.{locale}{where}: {type(exc).__name__}: {exc}", permanent=True
            ) from exc
        return Rendered(subject, text, html, unsubscribe)

    def sender(self, request: NotificationRequestedV1, default: str) -> str:
        brand = self.branding.get(request.tenant_id)
        return brand.sender if brand and brand.sender else default

    def compose(self, request: NotificationRequestedV1, sender: str) -> tuple[str, bytes]:
        """(the From header, the whole message as bytes); raises DeliveryError (permanent) on a
        missing address or a template error.

        Built by hand rather than with `email.mime`: its header folding cost more CPU than the rest
        of a delivery. Header values are single lines (CR and LF removed), non-ASCII ones encoded
        (RFC 2047). A part that is ASCII in lines of at most 998 octets goes as 7bit (RFC 5322 allows
        it; smaller, and no encoding to do), any other as quoted-printable UTF-8.
        """
        p = request.payload
        if not p.recipient.email:
            raise DeliveryError("no email address for this customer", permanent=True)
        r = self.render(request)
        from_header = self.sender(request, sender)
        boundary = f"=_npsloop_{p.delivery_id.hex}"
        headers = [
            ("From", _address(from_header)),
            ("To", _line(p.recipient.email)),
            ("Subject", _encoded(r.subject)),
            ("Date", _date()),
            ("Message-ID", f"<{p.delivery_id}@npsloop>"),
            ("MIME-Version", "1.0"),
            ("Content-Type", f'multipart/alternative; boundary="{boundary}"'),
            ("X-Npsloop-Delivery-Id", str(p.delivery_id)),
            ("X-Npsloop-Kind", str(p.kind)),
            ("List-Unsubscribe", f"<{_line(r.unsubscribe_url)}>"),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
            ("Auto-Submitted", "auto-generated"),
        ]
        head = "".join(f"{name}: {value}\r\n" for name, value in headers).encode()
        b = boundary.encode()
        body = b"".join(
            [
                b"\r\n--" + b + b"\r\n" + _part(b"plain", r.text),
                b"\r\n--" + b + b"\r\n" + _part(b"html", r.html),
                b"\r\n--" + b + b"--\r\n",
            ]
        )
        return from_header, head + body


class _Compiled:
    """A template rendered as `Template.render` does, but with its globals merged once rather than
    per call (Jinja copies the ChainMap of them into every new context, twice)."""

    def __init__(self, template: jinja2.Template) -> None:
        self.template, self.globals = template, dict(template.globals)

    def render(self, context: dict[str, Any]) -> str:
        t, env = self.template, self.template.environment
        try:
            ctx = env.context_class(env, {**self.globals, **context}, t.name, t.blocks, globals=self.globals)
            return str(env.concat(t.root_render_func(ctx)))
        except Exception:
            return env.handle_exception()  # raises, with the template's lines in the traceback


def _line(value: str) -> str:
    return " ".join(value.splitlines()).strip()


def _encoded(value: str) -> str:
    value = _line(value)
    return value if value.isascii() else Header(value, "utf-8").encode()


@functools.lru_cache(maxsize=1024)
def _address(value: str) -> str:
    """A From header's value (one per tenant, so cached)."""
    name, addr = parseaddr(_line(value))
    return formataddr((name, addr), charset="utf-8") if name else addr


_dates: tuple[int, str] = (0, "")  # (the second, its Date header)


def _date() -> str:
    """The Date header (RFC 5322), formatted once per second."""
    global _dates
    now = int(time.time())
    if _dates[0] != now:
        _dates = (now, formatdate(now, usegmt=True))
    return _dates[1]


_PART = b"Content-Type: text/%s; charset=utf-8\r\nContent-Transfer-Encoding: %s\r\n\r\n"


def _part(subtype: bytes, text: str) -> bytes:
    """One text part: 7bit when it is ASCII in lines of at most 998 octets, else quoted-printable."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n")
    if lines.isascii() and "\x00" not in lines and max(map(len, lines.split("\n"))) <= 998:
        return _PART % (subtype, b"7bit") + lines.encode().replace(b"\n", b"\r\n")
    return _PART % (subtype, b"quoted-printable") + _qp(lines)


def _qp(text: str) -> bytes:
    return binascii.b2a_qp(text.replace("\r\n", "\n").encode(), istext=True).replace(b"\n", b"\r\n")
