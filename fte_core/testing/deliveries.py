"""The DeliveryLedger in memory, over an InMemoryStore's messages."""

from __future__ import annotations

import msgspec

from fte_core.delivery import WENT_OUT, advance, aggregate
from fte_core.errors import NotFound
from fte_core.models import Channel, DeliveryStatus, Direction
from fte_core.ports import CrmStore, DeliveryPart, DeliveryState


class InMemoryDeliveries:
    def __init__(self, store: CrmStore) -> None:
        self._store = store
        self._parts: dict[str, dict[int, DeliveryPart]] = {}
        self._by_provider: dict[tuple[Channel, str], tuple[str, int]] = {}
        self._errors: dict[str, str] = {}

    async def record_part(
        self, message_id: str, channel: Channel, index: int, provider_message_id: str
    ) -> None:
        parts = self._parts.setdefault(message_id, {})
        if index in parts:
            return
        parts[index] = DeliveryPart(index=index, provider_message_id=provider_message_id)
        self._by_provider[(channel, provider_message_id)] = (message_id, index)

    async def state(self, message_id: str) -> DeliveryState | None:
        message = await self._store.get_message(message_id)
        if message is None or message.direction is not Direction.OUTBOUND:
            return None
        parts = self._parts.get(message_id, {})
        return DeliveryState(
            message_id=message_id,
            status=message.delivery_status,
            error=self._errors.get(message_id),
            parts=tuple(parts[i] for i in sorted(parts)),
        )

    async def settle(self, message_id: str) -> DeliveryStatus:
        parts = self._parts.get(message_id, {})
        status = aggregate(p.status for p in parts.values())
        first = parts[min(parts)].provider_message_id if parts else None
        await self._store.set_delivery_status(message_id, status, first)
        self._errors.pop(message_id, None)
        return status

    async def record_failure(self, message_id: str, status: DeliveryStatus, error: str) -> None:
        if await self._store.get_message(message_id) is None:
            raise NotFound(f"message {message_id}")
        self._errors[message_id] = error
        await self._store.set_delivery_status(message_id, status)

    async def part_status(
        self,
        channel: Channel,
        provider_message_id: str,
        status: DeliveryStatus,
        error: str | None = None,
    ) -> DeliveryState | None:
        found = self._by_provider.get((channel, provider_message_id))
        if found is None:
            return None
        message_id, index = found
        parts = self._parts[message_id]
        part = parts[index]
        parts[index] = msgspec.structs.replace(
            part, status=advance(part.status, status), error=error or part.error
        )
        message = await self._store.get_message(message_id)
        if message is not None and message.delivery_status in WENT_OUT:
            settled = aggregate(p.status for p in parts.values())
            await self._store.set_delivery_status(message_id, settled)
            if settled is DeliveryStatus.UNDELIVERED:
                self._errors[message_id] = f"part {index + 1}: {status.value} {error or ''}".strip()
        return await self.state(message_id)
