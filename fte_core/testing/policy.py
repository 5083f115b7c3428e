"""A reference evaluator that disagrees with durable_rules on purpose.

Defence in depth is only believed once a disagreement has been seen to escalate, be
counted and be logged; with both real evaluators correct, one has to be made wrong.
"""

from __future__ import annotations

from fte_core.policy.compiled import StageRules
from fte_core.policy.reference import Facts, reference_fired


class SkewedReference:
    """The real reference evaluator, except that it never reports `forget` as fired."""

    def __init__(self, forget: str) -> None:
        self.forget = forget
        self.calls = 0

    def __call__(self, stage: StageRules, facts: Facts) -> set[str]:
        self.calls += 1
        return reference_fired(stage, facts) - {self.forget}
