"""SQL implementation of the DeliveryStore port. Each call is its own short transaction, so the
delivery log keeps every attempt even when a later one fails."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert

from npsloop_platform.db import Database
from npsloop_schemas import DeliveryStatus, NotificationRequestedV1

from .models import DeliveryAttemptRow, DeliveryRow


class SqlDeliveryStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def begin(self, request: NotificationRequestedV1) -> str:
        p = request.payload
        async with self.db.session() as session, session.begin():
            await session.execute(
                insert(DeliveryRow)
                .values(
                    delivery_id=p.delivery_id,
                    kind=str(p.kind),
                    tenant_id=request.tenant_id,
                    customer_key=p.customer_key,
                    status="pending",
                    attempts=0,
                )
                .on_conflict_do_nothing(index_elements=[DeliveryRow.delivery_id])
            )
            status = (
                await session.execute(select(DeliveryRow.status).where(DeliveryRow.delivery_id == p.delivery_id))
            ).scalar_one()
        return str(status)

    async def record_attempt(self, delivery_id: uuid.UUID, attempt: int, error: str | None) -> None:
        async with self.db.session() as session, session.begin():
            session.add(
                DeliveryAttemptRow(
                    delivery_id=delivery_id, attempt=attempt, outcome="error" if error else "ok", error=error
                )
            )

    async def finish(self, delivery_id: uuid.UUID, status: str, attempts: int, error: str | None) -> None:
        async with self.db.session() as session, session.begin():
            await session.execute(
                update(DeliveryRow)
                .where(DeliveryRow.delivery_id == delivery_id)
                .values(status=str(DeliveryStatus(status)), attempts=attempts, last_error=error, updated_at=func.now())
            )
