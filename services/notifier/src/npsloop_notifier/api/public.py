"""Public pages behind signed links (no API key; the token is the authorization):

- `GET /v1/unsubscribe?token=...` shows a confirmation button (mail scanners open links; a GET
  never unsubscribes), `POST` unsubscribes: from that button, or as the RFC 8058 one-click POST
  (`List-Unsubscribe=One-Click`) a mail client sends to the List-Unsubscribe URL.
- `GET /v1/reply?token=...[&text=...]` shows the passive's "what would make it a 10?" form,
  `POST` sends the answer on as a `feedback.updated` of the original answer.

Left out of the OpenAPI document: they are pages for customers, not API.
"""

from __future__ import annotations

import html
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from npsloop_platform.app import state_of
from npsloop_schemas import FeedbackUpdatedPayloadV1, FeedbackUpdatedV1, Topics, derive_id, serialize_event

from ..links import REPLY, UNSUBSCRIBE, BadToken
from .deps import get_api

router = APIRouter(prefix="/v1", include_in_schema=False)

_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width"><meta name="robots" content="noindex"><title>{title}</title></head>
<body style="font-family:Arial,Helvetica,sans-serif;max-width:520px;margin:48px auto;padding:0 16px;color:#222">
<h1 style="font-size:22px">{title}</h1>{body}</body></html>"""


def page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        _PAGE.format(title=html.escape(title), body=body), status, headers={"Cache-Control": "no-store"}
    )


def bad_link(exc: BadToken) -> HTMLResponse:
    return page("This link does not work", f"<p>{html.escape(str(exc))}.</p>", 400)


async def _form(request: Request) -> dict[str, str]:
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return {k: v[0] for k, v in parse_qs((await request.body()).decode(errors="replace")).items()}
    return {}


@router.get("/unsubscribe")
async def unsubscribe_page(request: Request, token: str = "") -> HTMLResponse:
    api = await get_api(request)
    try:
        api.links.read(token, UNSUBSCRIBE)
    except BadToken as exc:
        return bad_link(exc)
    action = html.escape(f"/v1/unsubscribe?token={token}", quote=True)
    return page(
        "Unsubscribe",
        f'<p>Stop receiving these emails?</p><form method="post" action="{action}">'
        '<input type="hidden" name="List-Unsubscribe" value="One-Click"><button>Unsubscribe</button></form>',
    )


@router.post("/unsubscribe")
async def unsubscribe(request: Request, token: str = "") -> HTMLResponse:
    api = await get_api(request)
    try:
        claims = api.links.read(token, UNSUBSCRIBE)
    except BadToken as exc:
        return bad_link(exc)
    one_click = (await _form(request)).get("List-Unsubscribe") == "One-Click"
    source = f"unsubscribe link, delivery {claims.delivery_id}" + (" (one-click)" if one_click else "")
    if claims.email_hash:
        await api.suppressions.add_hash(
            claims.tenant_id, "email", claims.email_hash, "email of " + claims.customer_key[:40], "unsubscribed", source
        )
    else:
        await api.suppressions.add(claims.tenant_id, "customer", claims.customer_key, "unsubscribed", source)
    return page("You are unsubscribed", "<p>We will not email you again.</p>")


@router.get("/reply")
async def reply_page(request: Request, token: str = "", text: str = "") -> HTMLResponse:
    api = await get_api(request)
    try:
        api.links.read(token, REPLY)
    except BadToken as exc:
        return bad_link(exc)
    action = html.escape(f"/v1/reply?token={token}", quote=True)
    return page(
        "What would make it a 10?",
        f'<form method="post" action="{action}"><p><textarea name="comment" rows="5" maxlength="5000" required '
        f'style="width:100%">{html.escape(text[:5000])}</textarea></p><button>Send</button></form>',
    )


@router.post("/reply")
async def reply(request: Request, token: str = "") -> HTMLResponse:
    api = await get_api(request)
    try:
        claims = api.links.read(token, REPLY)
    except BadToken as exc:
        return bad_link(exc)
    comment = (await _form(request)).get("comment", "").strip()
    if not comment:
        return page("What would make it a 10?", "<p>Your answer was empty; go back and write a line.</p>", 422)
    comment = comment[:5000]
    event = FeedbackUpdatedV1(
        event_id=derive_id(f"reply:{comment}", claims.delivery_id),
        occurred_at=api.clock(),
        tenant_id=claims.tenant_id,
        source=api.settings.source_name,
        correlation_id=claims.feedback_event_id,
        causation_id=claims.delivery_id,
        payload=FeedbackUpdatedPayloadV1(
            feedback_event_id=claims.feedback_event_id, fields=["comment"], comment=comment
        ),
    )
    bus = state_of(request).bus
    try:
        await bus.publish(Topics.FEEDBACK_RECEIVED, serialize_event(event), key=claims.customer_key)
    except Exception:
        return page(
            "Please try again", "<p>We could not take your answer just now. Please try again in a minute.</p>", 503
        )
    return page("Thank you", "<p>Thank you, we read every answer.</p>")
