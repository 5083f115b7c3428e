"""durable_rules as the evaluator of compiled rule logic, used the safe way.

See ../shared/DURABLE_RULES.md: facts not events (every matching rule fires), each
message's fact retracted once its rules ran (a session dropped after any failure), a
catch-all rule (so no message is unhandled and the first-message segfault cannot happen),
a marker field on every condition (the engine's own state facts never match), our own
Host with its timer threads disabled, one process-wide lock (the C extension is not
thread-safe), and no engine regex at all.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import threading
from typing import Any

import msgspec
from durable import engine as durable_engine

from fte_core.errors import RuleLimitError
from fte_core.models import MODEL_LABELS
from fte_core.policy.compiled import (
    AllOf,
    AnyOf,
    ChannelIn,
    LanguageIn,
    ModelFlagsAny,
    Node,
    Not,
    SentimentAbove,
    SentimentBelow,
    Similar,
    StageRules,
    TextAtom,
)
from fte_core.policy.reference import Facts

Json = dict[str, Any]
MARKER = "fte_msg"
MAX_DNF_TERMS = 48  # durable expands $or per rule; >64 satisfied conditions is error 303
MAX_FIELDS = 200  # ~254 top-level fact fields fails inside the engine
MAX_TESTS_PER_FIELD = 400  # 512+ conditions on one field loops forever

_LABELS = frozenset(MODEL_LABELS)
_LOCK = threading.Lock()
_names = itertools.count(1)


class _QuietHost(durable_engine.Host):  # type: ignore[misc]
    """A Host whose dispatcher/timer threads never start: we call it synchronously."""

    def _run(self) -> None:
        return None


_host: _QuietHost | None = None
_C = durable_engine.durable_rules_engine
_encode = msgspec.json.Encoder().encode


# An action is `{"<rule name>": {"m": <the fact>}}`: read its one key, the fact left raw.
_ACTION = msgspec.json.Decoder(dict[str, msgspec.Raw])


def _fired_rule(message: str) -> str:
    try:
        action = _ACTION.decode(message)
    except msgspec.DecodeError as exc:
        raise RuntimeError(f"durable_rules returned a malformed action: {exc}") from exc
    if len(action) != 1:
        raise RuntimeError(f"durable_rules returned an action naming {len(action)} rules")
    return next(iter(action))


def _noop(c: Any) -> None:
    """Registered as every rule's action; fired rules are read from the action queue."""


def _get_host() -> _QuietHost:
    global _host
    if _host is None:
        _host = _QuietHost()
    return _host


def _expr(node: Node, negate: bool = False) -> Json:
    """A durable_rules expression in negation normal form (the engine has no `not`)."""
    match node:
        case TextAtom(index):
            # a false atom is absent from the fact (`$nex`): the fact carries only the
            # few atoms that hold, and the engine's cost grows with the fact's fields
            return {"$nex": {f"f{index}": 1}} if negate else {f"f{index}": 1}
        case SentimentBelow(value):
            return {"$gte" if negate else "$lt": {"s": basis_points(value)}}
        case SentimentAbove(value):
            return {"$lte" if negate else "$gt": {"s": basis_points(value)}}
        case ChannelIn(channels):
            if negate:
                return _join("$and", [{"$neq": {"ch": c.value}} for c in channels])
            return _join("$or", [{"ch": c.value} for c in channels])
        case Similar(slot, threshold):
            return {"$lt" if negate else "$gte": {f"m{slot}": basis_points(threshold)}}
        case LanguageIn(languages):
            if negate:
                return _join("$and", [{"$neq": {"lg": code}} for code in languages])
            return _join("$or", [{"lg": code} for code in languages])
        case ModelFlagsAny(flags):
            if negate:  # a label the model did not give is absent from the fact
                return _join("$and", [{"$nex": {flag_field(f): 1}} for f in flags])
            return _join("$or", [{flag_field(f): 1} for f in flags])
        case AllOf(items):
            return _join("$or" if negate else "$and", [_expr(n, negate) for n in items])
        case AnyOf(items):
            return _join("$and" if negate else "$or", [_expr(n, negate) for n in items])
        case Not(item):
            return _expr(item, not negate)
    raise TypeError(f"unknown condition node {node!r}")


def flag_field(label: str) -> str:
    """A model label's fact field, present (1) only when the model gave the label."""
    return f"mf_{label}"


def basis_points(score: float) -> int:
    """Scores enter the engine as integers: its JSON parser rejects floats like 5e-324,
    and on the 4-decimal grid (rule thresholds, sentiment) integer order is float order."""
    return round(score * 10_000)


def _join(op: str, items: list[Json]) -> Json:
    return items[0] if len(items) == 1 else {op: items}


def _dnf_terms(expr: Json) -> int:
    if "$or" in expr:
        return sum(_dnf_terms(e) for e in expr["$or"])
    if "$and" in expr:
        total = 1
        for e in expr["$and"]:
            total *= _dnf_terms(e)
        return total
    return 1


def _field_tests(expr: Json, counts: dict[str, int]) -> None:
    for key, value in expr.items():
        if key in ("$and", "$or"):
            for e in value:
                _field_tests(e, counts)
        elif key.startswith("$"):
            for name in value:
                counts[name] = counts.get(name, 0) + 1
        else:
            counts[key] = counts.get(key, 0) + 1


def check_limits(stage: StageRules) -> None:
    """Refuse at load time what would crash or hang the engine at evaluation time."""
    if len(stage.atoms) + len(stage.similarity) + 4 > MAX_FIELDS:
        raise RuleLimitError(f"{stage.stage} stage needs {len(stage.atoms)} text atoms")
    counts: dict[str, int] = {}
    for rule in stage.rules:
        expr = _expr(rule.condition)
        if (terms := _dnf_terms(expr)) > MAX_DNF_TERMS:
            raise RuleLimitError(
                f"condition expands to {terms} alternatives (max {MAX_DNF_TERMS}); "
                "split the rule in two",
                rule_id=rule.id,
            )
        _field_tests(expr, counts)
    for name, count in counts.items():
        if count > MAX_TESTS_PER_FIELD:
            raise RuleLimitError(f"{count} tests on feature {name!r} (max {MAX_TESTS_PER_FIELD})")


def _culprit(definition: Json, rule_ids: dict[str, str], exc: Exception) -> RuleLimitError:
    """The engine refused a ruleset (e.g. error 113 on wide nested alternatives): name the
    rule it cannot compile, by compiling each rule on its own."""
    for key, rule in definition.items():
        if key == "catch_all":
            continue
        trial = {
            key: {k: v for k, v in rule.items() if k != "run"},
            "catch_all": {"all": [{"m": {MARKER: 1}}]},
        }
        try:
            handle = _C.create_ruleset(f"fte_probe_{next(_names)}", json.dumps(trial))
        except _C.error:
            return RuleLimitError(
                f"the rule engine cannot compile this condition ({exc}); "
                "simplify it or split it into several rules",
                rule_id=rule_ids.get(key),
            )
        _C.delete_ruleset(handle)
    return RuleLimitError(f"the rule engine cannot compile this rule set ({exc})")


class DurableStage:
    """One stage's rules registered as one durable_rules ruleset."""

    def __init__(self, stage: StageRules) -> None:
        check_limits(stage)
        self.name = f"fte_{stage.stage}_{next(_names)}"
        definition: Json = {}
        for rule in stage.rules:
            definition[f"r{rule.order}"] = {
                "all": [{"m": {"$and": [{MARKER: 1}, _expr(rule.condition)]}}],
                "pri": min(rule.order, 65000),
                "run": _noop,
            }
        definition["catch_all"] = {
            "all": [{"m": {MARKER: 1}}],
            "pri": 65535,
            "run": _noop,
        }
        self._rule_ids = {f"r{rule.order}": rule.id for rule in stage.rules}
        with _LOCK:
            host = _get_host()
            try:
                host.register_rulesets({self.name: copy.deepcopy(definition)})
            except _C.error as exc:
                raise _culprit(definition, self._rule_ids, exc) from exc
            self._handle = host._ruleset_directory[self.name]._handle
        # One session per stage, each message fact retracted once its actions ran: a fresh
        # session per message cost ~0.5 us per rule of the ruleset (the engine builds the
        # session's per-rule state), 25 us for the 48 input rules; retracting costs ~2 us.
        # The rules join nothing (one fact each), so no partial match can outlive it.
        self._sessions = itertools.count(1)
        self._session = str(next(self._sessions))
        self._fact_ids = itertools.count(1)
        self._reads_flags = stage.uses_model_flags
        self._atom_fields = tuple(f"f{i}" for i in range(len(stage.atoms)))
        self._similarity_fields = tuple(f"m{i}" for i in range(len(stage.similarity)))

    def fired(self, facts: Facts) -> set[str]:
        """Assert the message as a fact, every matching rule fires, then retract it.

        The action loop talks to the C engine directly (the same calls the Host makes)
        because the Python wrapper's per-action bookkeeping costs more than the rules.
        """
        # Only the atoms that hold enter the fact (a negation tests absence, `$nex`).
        fact: Json = dict.fromkeys(itertools.compress(self._atom_fields, facts.atoms), 1)
        fact[MARKER] = 1
        fact["s"] = basis_points(facts.sentiment)
        fact["ch"] = facts.channel.value
        fact["lg"] = facts.language
        fact.update(zip(self._similarity_fields, facts.similarity, strict=True))
        if self._reads_flags:
            for label in facts.model_flags:
                if label in _LABELS:  # a label no rule can name never enters the engine
                    fact[flag_field(label)] = 1
        with _LOCK:
            fact["sid"] = self._session
            fact["id"] = str(next(self._fact_ids))
            payload = _encode(fact).decode()
            try:
                fired = self._run(payload)
                code, _state = _C.retract_fact(self._handle, payload)
                if code != 0:
                    raise RuntimeError(f"durable_rules retract_fact returned {code}")
            except BaseException:
                self._new_session()
                raise
            return fired

    def _run(self, payload: str) -> set[str]:
        """Assert one message fact and drain the actions it fired (caller holds _LOCK)."""
        handle = self._handle
        code, state = _C.assert_fact(handle, payload)
        if code != 0:
            raise RuntimeError(f"durable_rules assert_fact returned {code}")
        fired: set[str] = set()
        result = _C.start_action_for_state(handle, state)
        message: str | None = result[1] if result else None
        while message:
            name = _fired_rule(message)
            if name in self._rule_ids:
                fired.add(self._rule_ids[name])
            elif name != "catch_all":
                raise RuntimeError(f"durable_rules fired unknown rule {name!r}")
            message = _C.complete_and_start_action(handle, state)
        return fired

    def _new_session(self) -> None:
        """After a failure mid-evaluation nothing of that session is trusted: drop it."""
        with contextlib.suppress(_C.error):  # a session that never held a fact has no state
            _C.delete_state(self._handle, self._session)
        self._session = str(next(self._sessions))

    def close(self) -> None:
        """Unregister the ruleset (the engine leaks ~60 KB per reload; see the docs)."""
        with _LOCK:
            host = _get_host()
            ruleset = host._ruleset_directory.pop(self.name, None)
            if ruleset is not None:
                host._ruleset_list.remove(ruleset)
                _C.delete_ruleset(ruleset._handle)


def dumps_definition(stage: StageRules) -> str:
    """The durable_rules JSON of a stage, for debugging and docs."""
    return json.dumps({f"r{r.order}": _expr(r.condition) for r in stage.rules}, indent=2)
