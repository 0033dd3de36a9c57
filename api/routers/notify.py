"""GOV.UK Notify's delivery receipts: Notify posts one for each e-mail it took to
``/api/v1/notify/delivery``, with the bearer token set in its callback settings
(``WASTEPILOT_NOTIFY_CALLBACK_TOKEN``). A receipt settles the message in the outbox —
delivered, or failed with Notify's reason — and is shown wherever messages are listed.

The token is checked before the body is read (api/auth.py: ``check_token``) and again here; with
no token configured every receipt is refused and the outbox asks Notify instead
(core/outbox.py: ``check_deliveries``)."""

from __future__ import annotations

import hmac
from datetime import datetime

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from api.deps import AppSettings, Conn
from core.outbox import NOTIFY_FINAL, Receipt, record_receipt
from core.settings import Settings

DELIVERY_PATH = "/api/v1/notify/delivery"
router = APIRouter(tags=["delivery receipts"])
REFUSED = "a delivery receipt needs the callback's bearer token"


def callback_token_ok(s: Settings, token: str) -> bool:
    """Whether ``token`` is the configured callback token (compared in constant time); never
    when none is configured (unset, or set empty as a compose file's ``${X:-}`` leaves it)."""
    want = s.notify_callback_token.get_secret_value() if s.notify_callback_token else ""
    return bool(want) and hmac.compare_digest(token.encode(), want.encode())


async def from_notify(request: Request, s: AppSettings) -> None:
    auth = request.headers.get("authorization", "")
    token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
    if not callback_token_ok(s, token):
        raise HTTPException(401, REFUSED, {"WWW-Authenticate": "Bearer"})


class DeliveryReceipt(BaseModel):
    """A receipt as Notify sends it (docs.notifications.service.gov.uk, "Callbacks")."""

    model_config = ConfigDict(extra="ignore")
    id: str = Field(min_length=1, max_length=64, description="Notify's id of the message")
    reference: str | None = Field(None, max_length=200, description="The outbox's reference")
    status: str = Field(max_length=40, description="delivered, permanent-failure, ...")
    notification_type: str | None = Field(None, max_length=20)
    completed_at: datetime | None = None


class ReceiptOut(BaseModel):
    recorded: bool = Field(
        description="A message awaiting its receipt was settled (false: unknown to this "
        "service, settled already, or a status that is not final)"
    )


@router.post(DELIVERY_PATH, dependencies=[Depends(from_notify)])
def delivery_receipt(receipt: DeliveryReceipt, conn: Conn) -> ReceiptOut:
    """Record Notify's final word on an e-mail it took."""
    if receipt.status not in NOTIFY_FINAL:
        return ReceiptOut(recorded=False)
    got = Receipt(receipt.status == "delivered", NOTIFY_FINAL[receipt.status])
    with conn.transaction():
        return ReceiptOut(recorded=record_receipt(conn, "notify", receipt.id, got))
