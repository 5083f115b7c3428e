"""The agent: one inbound message through SPEC 4 steps 2-10 over the ports.

The rules decide before the model speaks (input stage) and after it has (output stage);
the model is called at most once and never sees a message the input rules escalated.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import msgspec

from fte_core import events, tools
from fte_core.clock import Clock, elapsed_ms, utc_now
from fte_core.closing import closing_body
from fte_core.context import DEFAULT_SIGNATURE, Context
from fte_core.errors import FteError, InProgress, NotFound, ResponderError
from fte_core.formatting import DEFAULT_CHANNEL_CONFIGS, ChannelConfig, format_for_channel
from fte_core.grounding import grounded, own_words
from fte_core.handover import acknowledgement_body, handover_body
from fte_core.identity import delivery_target, identifier_key, identifiers_for
from fte_core.models import (
    Channel,
    Customer,
    Decision,
    DecisionRecord,
    HistoryItem,
    InboundMessage,
    Outcome,
    Owner,
    Passage,
    Priority,
    Receipt,
    Reply,
    ReplyAction,
    StoredMessage,
    Thread,
    TicketStatus,
    Usage,
)
from fte_core.overlap import Recent, beside
from fte_core.policy.engine import PolicyEngine
from fte_core.ports import (
    Answer,
    AnswerRequest,
    ChannelSender,
    CrmStore,
    DeliveryTarget,
    EventBus,
    KnowledgeBase,
    OutboundDraft,
    Responder,
    Turn,
)
from fte_core.reading import Reading, read_message
from fte_core.retrieval import (
    Retrieval,
    partial_handover,
    retrieve,
)
from fte_core.slots import Slots
from fte_core.spelling import speller

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AgentConfig:
    thread_window: timedelta = timedelta(hours=24)
    search_limit: int = 5
    history_limit: int = 10
    # while a person owns a ticket, at most one "a specialist has your case" per period
    acknowledge_every: timedelta = timedelta(hours=4)
    # how long a worker holds a message it decides (longer than a model call with retries)
    lease: timedelta = timedelta(minutes=2)
    # the ticket's status page, token included (the service's), for replies that link it
    status_link: Callable[[str], str] | None = None
    channel_configs: Mapping[Channel, ChannelConfig] = field(
        default_factory=lambda: dict(DEFAULT_CHANNEL_CONFIGS)
    )
    # how many messages run the stages around the model call at once (0: no limit); a
    # worker sets it so that its CPU work leaves room for the API beside it (fte_core.slots)
    parallel: int = 0
    # the service: a reply is stored with an `fte.outbound` event in one transaction and
    # the channel senders deliver it (fte_core.delivery); off: `sender` delivers inline
    queue_replies: bool = False
    # the bus is the store's outbox (the composition root knows): the events a reply
    # comes with (its metrics, an escalation's event) are queued with it, in its
    # transaction, instead of a publish (a commit) each; off: published on `bus`
    events_with_replies: bool = False


@dataclass(slots=True)
class _Run:
    """What one message accumulates on its way through the pipeline."""

    message: InboundMessage
    customer: Customer
    stored: StoredMessage
    thread: Thread
    contact_count: int
    reading: Reading  # what the agent made of the message (fte_core.reading)
    started: float  # time.perf_counter() when the handling began
    latency: dict[str, float] = field(default_factory=dict)
    passages: list[Passage] = field(default_factory=list)
    attempts: int = 0
    retrieval: Retrieval | None = None
    # what the rules gave the ticket, not stored yet: it goes with the message's last
    # write (the reply, the escalation or the hold), one commit instead of one more
    tags: tuple[str, ...] = ()
    priority: Priority | None = None
    # events for the reply's transaction (AgentConfig.events_with_replies)
    queued: list[tuple[str, events.Event]] = field(default_factory=list)

    async def publish(self, topic: str, key: str, event: msgspec.Struct) -> None:
        """The run as the tools' EventBus: what they publish waits for the reply (keyed
        like it: by this customer)."""
        if not isinstance(event, events.Event):
            raise TypeError(f"not an fte event: {type(event).__name__}")
        self.queued.append((topic, event))

    @property
    def text(self) -> str:
        return self.reading.text

    @property
    def elapsed(self) -> float:
        """The handling's wall time so far, ms (its stages overlap: not their sum)."""
        return elapsed_ms(self.started)

    def found(self, retrieval: Retrieval, ms: float) -> None:
        self.retrieval = retrieval
        self.passages = retrieval.passages
        self.attempts = retrieval.attempts
        self.latency["retrieve"] = ms

    def take_tags(self) -> tuple[str, ...]:
        """The pending tags, handed to the write that stores them."""
        tags, self.tags = self.tags, ()
        return tags

    def take_priority(self) -> Priority | None:
        priority, self.priority = self.priority, None
        return priority


class Agent:
    """Build from a policy engine, the dossier and adapters; `handle` one message at a time."""

    def __init__(
        self,
        *,
        policy: PolicyEngine,
        context: Context,
        store: CrmStore,
        knowledge: KnowledgeBase,
        responder: Responder,
        bus: EventBus,
        fallback: Responder | None = None,
        sender: ChannelSender | None = None,
        config: AgentConfig | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.policy = policy
        self.context = context
        self.store = store
        self.knowledge = knowledge
        self.responder = responder
        self.fallback = fallback
        self.bus = bus
        self.sender = sender
        self.config = config or AgentConfig()
        self.clock = clock
        self._slots = Slots(self.config.parallel)
        self._contended = Recent()  # messages another worker held at their last try

    async def handle(self, message: InboundMessage) -> Outcome:
        async with self._slots.held():
            return await self._handle(message)

    async def _handle(self, message: InboundMessage) -> Outcome:
        key = (message.channel, message.provider_message_id)
        try:
            outcome = await self._overlapped(message, claim_first=key in self._contended)
        except InProgress:
            self._contended.add(key)
            raise
        self._contended.discard(key)
        return outcome

    async def _overlapped(self, message: InboundMessage, *, claim_first: bool) -> Outcome:
        """The store takes the message in while the agent reads it (fte_core.reading) and,
        unless the rules escalate it, searches the knowledge base: none of that reads the
        CRM, so the round trips, the embedding and the search overlap (fte_core.overlap).
        A message found answered already is replayed, one another worker holds raises
        InProgress; either drops what was read. `claim_first`: another worker held it at
        the last try, so it is read only once it is this worker's (a worker waiting for
        its peer retries every half second)."""
        started = time.perf_counter()
        existing = await self.store.find_inbound(message.channel, message.provider_message_id)
        if existing is not None and existing.processed_at is not None:
            return await self._replay(message, existing)  # a redelivery: nothing to read
        async with beside(self._intake(message, started)) as intake:
            if claim_first:
                await asyncio.wait({intake})
            if intake.done() and isinstance(taken := intake.result(), Outcome):
                return taken
            try:
                reading = await read_message(message, self.policy, self.knowledge)
            except FteError:
                if isinstance(taken := await intake, Outcome):  # its InProgress, if any
                    return taken
                raise
            search = self._search(reading, message.subject) if reading.wants_passages else None
            async with beside(search) as found:
                taken = await intake
                if isinstance(taken, Outcome):
                    return taken
                turn, ms = taken
                run = _Run(
                    message=message,
                    customer=turn.resolution.customer,
                    stored=turn.inbound,
                    thread=turn.thread,
                    contact_count=turn.contact_count,
                    reading=reading,
                    started=started,
                    latency={"intake": ms, **reading.latency},
                )
                return await self._decide(run, found)

    async def _decide(self, run: _Run, found: Awaitable[tuple[Retrieval, float]] | None) -> Outcome:
        decision = run.reading.decision
        await self._tag(run, decision.tags)
        if run.thread.ticket.owner is Owner.HUMAN:
            return await self._hold(run, decision)
        if decision.action == "escalate":
            return await self._escalate(run, decision, decision.reasons, decision.urgency)
        if decision.priority and decision.priority.rank > run.thread.ticket.priority.rank:
            run.priority = decision.priority
        if run.reading.closing:
            return await self._close(run, decision)
        # what the model reads of the conversation, read while the search runs: one
        # round trip off every answer's path, one wasted on a no-match hand-over
        async with beside(self._history(run)) as history:
            run.found(*await (found or self._search(run.reading, run.message.subject)))
            if not run.passages:
                return await self._escalate(run, decision, ("no_kb_match",), Priority.NORMAL)
            return await self._answer(run, decision, await history)

    async def submit(
        self, message: InboundMessage, *, access: Callable[[str], bytes] | None = None
    ) -> Turn:
        """Intake only (SPEC 4 step 1): store the message and queue it for a worker in one
        transaction (with `access`, the ticket's token access too); the answer comes later
        from `handle` in the worker. A resubmitted message is not queued twice."""
        return await self.store.open_turn(
            message,
            identifiers_for(message),
            message.sender_name,
            self.clock(),
            self.config.thread_window,
            category=message.category,
            priority=message.priority or Priority.NORMAL,
            announce=True,
            access=access,
        )

    async def receive(self, message: InboundMessage, *, access: Callable[[str], bytes]) -> Receipt:
        """Intake's fast path for a message that opens its own ticket (the web form): the
        ticket number is reserved and the message kept and queued in one statement; a
        worker's `handle_received` does the rest."""
        return await self.store.receive(message, access)

    async def handle_received(self, event: events.ReceivedEvent) -> Outcome:
        """What a worker does with a receipt's event: the kept message is taken in (its
        reserved ticket opened) and answered; once taken in, a redelivery finds the
        stored message and is answered from the store like any processed message."""
        receipt = await self.store.receipt(event.ticket_number)
        if receipt is not None:
            return await self.handle(receipt.message)
        stored = await self.store.find_inbound(event.channel, event.provider_message_id)
        if stored is None:
            raise NotFound(f"receipt {event.ticket_number!r}")
        return await self.handle_stored(stored.id)

    async def handle_stored(self, message_id: str) -> Outcome:
        """What a worker does with an `fte.inbound` event: the stored message, decided
        once (a processed one is replayed; one another worker holds raises InProgress)."""
        message = await self.store.inbound_message(message_id)
        if message is None:
            raise NotFound(f"inbound message {message_id!r}")
        return await self.handle(message)

    async def _intake(
        self, message: InboundMessage, started: float
    ) -> tuple[Turn, float] | Outcome:
        """Identity, thread, the stored message and this worker's hold on it in one store
        transaction (SPEC 4 steps 2-4); a message stored before a crash and never answered
        comes back in its thread. A message answered meanwhile is replayed; one another
        worker holds raises InProgress."""
        turn = await self.store.open_turn(
            message,
            identifiers_for(message),
            message.sender_name,
            self.clock(),
            self.config.thread_window,
            category=message.category,
            priority=message.priority or Priority.NORMAL,
            claim=self.config.lease,
        )
        if not turn.claimed:
            stored = await self.store.get_message(turn.inbound.id)
            if stored is not None and stored.processed_at is not None:
                return await self._replay(message, stored)
            raise InProgress(f"message {turn.inbound.id} is being handled by another worker")
        return turn, elapsed_ms(started)

    async def _thread_of(self, message: StoredMessage) -> Thread:
        conversation = await self.store.get_conversation(message.conversation_id)
        ticket = await self.store.get_ticket(conversation.ticket_number) if conversation else None
        if conversation is None or ticket is None:
            raise NotFound(f"conversation of message {message.id!r}")
        return Thread(conversation=conversation, ticket=ticket, resumed=True)

    async def _search(self, reading: Reading, subject: str | None) -> tuple[Retrieval, float]:
        """Each question of the message searched on its own (fte_core.retrieval)."""
        started = time.perf_counter()
        found = await retrieve(
            self.knowledge,
            reading.text,
            subject,
            self.config.search_limit,
            speller(self.context.product_docs),
            questions=reading.questions,
            vectors=reading.vectors,
        )
        return found, elapsed_ms(started)

    async def _history(self, run: _Run) -> list[HistoryItem]:
        return await self.store.visible_history(
            run.stored.id,
            self.config.history_limit,
            whole_conversation=run.message.ticket_access == run.thread.ticket.number,
        )

    async def _answer(
        self, run: _Run, decision: Decision, history: Sequence[HistoryItem]
    ) -> Outcome:
        started = time.perf_counter()
        request = AnswerRequest(
            question=run.text,
            subject=run.message.subject,
            channel=run.message.channel,
            customer_name=run.customer.name or run.message.sender_name,
            passages=tuple(run.passages),
            history=tuple(history),
            brand_voice=self.context.brand_voice,
            company=self.context.company,
            channel_config=self.config.channel_configs.get(run.message.channel),
            questions=run.retrieval.questions if run.retrieval else (),
        )
        answer = await self._call_responder(request)
        run.latency["answer"] = elapsed_ms(started)
        if answer is None:
            return await self._escalate(run, decision, ("responder_error",), Priority.HIGH)
        own = own_words(answer, run.passages)
        draft = self.policy.features_for(
            "output",
            answer.text,
            run.message.channel,
            model_flags=answer.labels,
            probes=(own,) if own else (),
        )
        draft = await self.policy.with_embedding("output", draft)
        output = self._timed(
            run, "output_rules", lambda: self.policy.evaluate_features("output", draft)
        )
        await self._tag(run, output.tags)
        if output.action == "block" or not grounded(answer, run.passages):
            reasons = output.reasons if output.action == "block" else ("ungrounded",)
            return await self._escalate(
                run, decision, reasons, output.urgency or Priority.HIGH, answer, output
            )
        if partial_handover(run.retrieval):
            # Some questions answered, another needs a person: the reply says so (the
            # responder wrote it) and the ticket goes to the team as well.
            ticket = await tools.escalate_to_human(
                self.store,
                self._bus_for(run),
                run.thread.ticket.number,
                ("no_kb_match",),
                Priority.NORMAL,
                message_id=run.stored.id,
                channel=run.message.channel,
                now=self.clock(),
                tags=run.take_tags(),
                priority=run.take_priority(),
            )
            run.thread = msgspec.structs.replace(run.thread, ticket=ticket)
        reply = self._format(run, answer.text)
        record = self._record(run, decision, reply, answer=answer, output=output)
        # Answered: the ticket waits for the customer, moved as the reply is stored.
        waiting = TicketStatus.PENDING if run.thread.ticket.status == TicketStatus.OPEN else None
        return await self._send(run, reply, record, answer.usage, ticket_status=waiting)

    async def _close(self, run: _Run, decision: Decision) -> Outcome:
        """A thank-you that asks nothing: a short acknowledgement, no passage, no model."""
        reply = self._format(run, closing_body(run.message.channel))
        record = self._record(run, decision, reply, answer=None, output=None)
        waiting = TicketStatus.PENDING if run.thread.ticket.status == TicketStatus.OPEN else None
        return await self._send(run, reply, record, Usage(), ticket_status=waiting)

    async def _call_responder(self, request: AnswerRequest) -> Answer | None:
        async with self._slots.away():  # the model thinks: another message may compute
            return await self._ask(request)

    async def _ask(self, request: AnswerRequest) -> Answer | None:
        try:
            return await self.responder.answer(request)
        except ResponderError as exc:
            log.warning("responder %s failed: %s", self.responder.name, exc)
            if self.fallback is None:
                return None
        try:
            answer = await self.fallback.answer(request)
        except ResponderError as exc:
            log.error("fallback responder %s failed: %s", self.fallback.name, exc)
            return None
        return msgspec.structs.replace(answer, fallback=f"{self.responder.name} failed")

    async def _escalate(
        self,
        run: _Run,
        decision: Decision,
        reasons: tuple[str, ...],
        urgency: Priority | None,
        answer: Answer | None = None,
        output: Decision | None = None,
    ) -> Outcome:
        urgency = urgency or Priority.NORMAL
        ticket = await tools.escalate_to_human(
            self.store,
            self._bus_for(run),
            run.thread.ticket.number,
            reasons,
            urgency,
            message_id=run.stored.id,
            channel=run.message.channel,
            now=self.clock(),
            tags=run.take_tags(),
            priority=run.take_priority(),
        )
        run.thread = msgspec.structs.replace(run.thread, ticket=ticket)
        body = handover_body(reasons[0], run.message.channel, self.context.signature)
        reply = self._format(run, body)
        record = self._record(
            run,
            decision,
            reply,
            answer=answer,
            output=output,
            escalation=reasons,
        )
        # the hand-over message is the first acknowledgement of the period (stamped with it)
        return await self._send(
            run, reply, record, answer.usage if answer else Usage(), acknowledged=self.clock()
        )

    def _format(self, run: _Run, body: str) -> Reply:
        number = run.thread.ticket.number
        return format_for_channel(
            body,
            run.message.channel,
            ticket_number=number,
            customer_name=run.customer.name or run.message.sender_name,
            config=self.channel_config(run.message.channel, number),
        )

    def channel_config(self, channel: Channel, number: str) -> ChannelConfig:
        """The channel's settings for one ticket's reply: its status page and the
        company's signature (a config that names its own signature keeps it)."""
        config = self.config.channel_configs.get(channel) or DEFAULT_CHANNEL_CONFIGS[channel]
        if config.signature == DEFAULT_SIGNATURE:
            config = msgspec.structs.replace(config, signature=self.context.signature)
        if self.config.status_link is not None:
            config = msgspec.structs.replace(config, status_url=self.config.status_link(number))
        return config

    def _record(
        self,
        run: _Run,
        decision: Decision,
        reply: Reply,
        *,
        answer: Answer | None,
        output: Decision | None,
        escalation: tuple[str, ...] = (),
        action: ReplyAction | None = None,
    ) -> DecisionRecord:
        return DecisionRecord(
            message_id=run.stored.id,
            channel=run.message.channel,
            ruleset_version=decision.ruleset_version,
            input_decision=decision,
            output_decision=output,
            sentiment=run.reading.feats.sentiment,
            normalized_length=len(run.reading.feats.normalized),
            contact_count=run.contact_count,
            passage_ids=answer.passage_ids if answer else tuple(p.id for p in run.passages),
            search_attempts=run.attempts,
            responder=answer.responder if answer else "",
            model=answer.responder if answer and answer.responder != "offline" else None,
            usage=answer.usage if answer else Usage(),
            latency_ms=dict(run.latency),
            action=action or ("escalate" if escalation else "answer"),
            escalation_reason=escalation[0] if escalation else None,
            reasons=escalation,
            blocked_draft=answer.text if answer and escalation else None,
            fallback=answer.fallback if answer else None,
            reply_parts=reply.parts,
        )

    async def _send(
        self,
        run: _Run,
        reply: Reply,
        record: DecisionRecord,
        usage: Usage,
        *,
        ticket_status: TicketStatus | None = None,
        acknowledged: datetime | None = None,
    ) -> Outcome:
        total = run.elapsed
        metrics = _metrics(run, record, total, self.clock())
        draft = OutboundDraft(
            conversation_id=run.thread.conversation.id,
            channel=run.message.channel,
            in_reply_to=run.stored.id,
            reply=reply,
            record=record,
            latency_ms=total,
            usage=usage,
            ticket_status=ticket_status,
            tags=run.take_tags(),
            priority=run.take_priority(),
            acknowledged_at=acknowledged,
            announce=self.config.queue_replies,
            events=(*run.queued, (events.METRICS, metrics))
            if self.config.events_with_replies
            else (),
        )
        stored = await tools.send_response(
            self.store, draft, sender=self._inline_sender(), target=self._target(run.message)
        )
        if not self.config.events_with_replies:
            await self.bus.publish(events.METRICS, run.thread.conversation.customer_id, metrics)
        record = stored.record or record  # a reply stored meanwhile is the one that counts
        return Outcome(
            customer=run.customer,
            conversation=run.thread.conversation,
            # the reply's write may have moved the ticket (to pending): report what is stored
            ticket=await self.store.get_ticket(run.thread.ticket.number) or run.thread.ticket,
            reply=Reply(channel=reply.channel, parts=record.reply_parts),
            record=record,
            inbound_id=run.stored.id,
            outbound_id=stored.id,
        )

    async def _publish_metrics(self, run: _Run, record: DecisionRecord, total: float) -> None:
        await self.bus.publish(
            events.METRICS,
            run.thread.conversation.customer_id,
            _metrics(run, record, total, self.clock()),
        )

    def _bus_for(self, run: _Run) -> EventBus:
        """Where the tools publish: with the reply when the bus reads the store's outbox
        (one commit with the reply instead of one each), else the bus."""
        return run if self.config.events_with_replies else self.bus

    def _inline_sender(self) -> ChannelSender | None:
        return None if self.config.queue_replies else self.sender

    @staticmethod
    def _target(m: InboundMessage) -> DeliveryTarget | None:
        return delivery_target(
            m.channel,
            [identifier_key(i) for i in identifiers_for(m)],
            m.subject,
            m.thread_ref,
            m.provider_message_id,
        )

    async def _replay(self, message: InboundMessage, inbound: StoredMessage) -> Outcome:
        """A redelivered message: nothing is decided twice; a reply not yet delivered is
        sent; a hold that sent nothing stays silent."""
        reply = await self.store.reply_to(inbound.id)
        if reply is not None:  # queued replies: their event was stored with them
            reply = await tools.deliver(
                self.store, reply, sender=self._inline_sender(), target=self._target(message)
            )
        record = reply.record if reply is not None else inbound.record
        thread = await self._thread_of(inbound)
        customer = await self.store.get_customer(thread.conversation.customer_id)
        if customer is None or record is None:
            raise NotFound(f"customer or decision record of message {inbound.id!r}")
        return Outcome(
            customer=customer,
            conversation=thread.conversation,
            ticket=thread.ticket,
            reply=Reply(channel=message.channel, parts=record.reply_parts),
            record=record,
            inbound_id=inbound.id,
            outbound_id=reply.id if reply is not None else None,
        )

    async def _tag(self, run: _Run, tags: tuple[str, ...]) -> None:
        """A ticket keeps the union of every tag a rule gave it (stored with the message's
        last write)."""
        if tags and not set(tags) <= {*run.thread.ticket.tags, *run.tags}:
            run.tags = tuple(sorted({*run.tags, *tags}))

    async def _hold(self, run: _Run, decision: Decision) -> Outcome:
        """A person owns the ticket: the message is kept for them, the agent stays quiet
        but for one acknowledgement per period. Rules that fire still raise the ticket's
        urgency, so a threat in a held conversation reaches the top of the queue."""
        ticket = run.thread.ticket
        urgency = decision.urgency or decision.priority
        if urgency is not None and urgency.rank > (ticket.urgency or Priority.LOW).rank:
            ticket = await self.store.update_ticket(
                ticket.number,
                urgency=urgency,
                priority=urgency if urgency.rank > ticket.priority.rank else None,
                tags=run.take_tags(),
            )
            run.thread = msgspec.structs.replace(run.thread, ticket=ticket)
        now = self.clock()
        due = await self.store.claim_acknowledgement(
            ticket.number, now, self.config.acknowledge_every
        )
        reply = self._format(run, acknowledgement_body(run.message.channel)) if due else None
        record = self._record(
            run,
            decision,
            reply or Reply(channel=run.message.channel, parts=()),
            answer=None,
            output=None,
            escalation=decision.reasons,
            action="hold",
        )
        if reply is not None:
            return await self._send(run, reply, record, Usage())
        if run.tags:  # no reply to carry them
            ticket = await self.store.update_ticket(ticket.number, tags=run.take_tags())
            run.thread = msgspec.structs.replace(run.thread, ticket=ticket)
        await self.store.record_decision(run.stored.id, record)
        await self._publish_metrics(run, record, run.elapsed)
        return Outcome(
            customer=run.customer,
            conversation=run.thread.conversation,
            ticket=run.thread.ticket,
            reply=Reply(channel=run.message.channel, parts=()),
            record=record,
            inbound_id=run.stored.id,
            outbound_id=None,
        )

    @staticmethod
    def _timed(run: _Run, stage: str, fn: Callable[[], Decision]) -> Decision:
        started = time.perf_counter()
        result = fn()
        run.latency[stage] = elapsed_ms(started)
        return result


def _metrics(run: _Run, record: DecisionRecord, total: float, now: datetime) -> events.MetricsEvent:
    return events.MetricsEvent(
        channel=run.message.channel,
        ticket_number=run.thread.ticket.number,
        action=record.action,
        escalation_reason=record.escalation_reason,
        sentiment=record.sentiment,
        latency_ms=total,
        prompt_tokens=record.usage.prompt_tokens,
        completion_tokens=record.usage.completion_tokens,
        cost_usd=record.usage.cost_usd,
        responder=record.responder or "none",
        at=now,
    )
