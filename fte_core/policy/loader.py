"""Load a directory of YAML rule files into a validated RuleSet.

Errors name the file, the line and the rule id, so compliance staff can fix a typo
without reading a traceback.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import msgspec
import yaml

from fte_core.errors import RuleError
from fte_core.policy.compiled import StageRules, compile_stage
from fte_core.policy.load_errors import line_at, locate
from fte_core.policy.schema import Rule, RuleFile, rule_vocabulary


@dataclass(frozen=True, slots=True)
class LoadedRule:
    rule: Rule
    file: str
    line: int


@dataclass(frozen=True, slots=True)
class RuleSet:
    """A validated, compiled rule set; `version` is a hash of the files' contents."""

    version: str
    rules: tuple[LoadedRule, ...]
    input: StageRules
    output: StageRules

    @property
    def uses_similarity(self) -> bool:
        return bool(self.input.similarity or self.output.similarity)

    def for_embedder(self, embedder: str) -> RuleSet:
        """The same rules with each `similar_to` threshold measured for `embedder` (a
        rule without one stays uncalibrated, and the engine refuses it by name)."""
        if not self.uses_similarity:
            return self
        input_stage, output_stage = _compile(self.rules, embedder)
        return RuleSet(self.version, self.rules, input_stage, output_stage)

    def stage(self, name: str) -> StageRules:
        if name == "input":
            return self.input
        if name == "output":
            return self.output
        raise ValueError(f"unknown stage {name!r}")


def _rule_id_at(root: yaml.Node | None, path: str) -> str | None:
    match = re.match(r"\$\.rules\[(\d+)\]", path)
    if not match or not isinstance(root, yaml.MappingNode):
        return None
    rules = next((v for k, v in root.value if getattr(k, "value", None) == "rules"), None)
    if not isinstance(rules, yaml.SequenceNode) or int(match[1]) >= len(rules.value):
        return None
    item = rules.value[int(match[1])]
    if isinstance(item, yaml.MappingNode):
        for k, v in item.value:
            if getattr(k, "value", None) == "id" and isinstance(v, yaml.ScalarNode):
                return str(v.value)
    return None


def parse_rule_file(name: str, text: str) -> list[LoadedRule]:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise RuleError(f"not valid YAML: {exc}", file=name, line=line) from exc
    try:
        parsed = msgspec.yaml.decode(text, type=RuleFile)
    except msgspec.ValidationError as exc:
        message = str(exc)
        path = message.rsplit(" - at `", 1)[-1].rstrip("`") if " - at `" in message else "$"
        where = locate(root, text, path, message.split(" - at `", 1)[0])
        raise RuleError(
            where.detail, file=name, line=where.line, rule_id=_rule_id_at(root, path)
        ) from exc
    rules_node = root.value[0][1] if isinstance(root, yaml.MappingNode) else None
    loaded = []
    for i, rule in enumerate(parsed.rules):
        line = line_at(rules_node, f"$[{i}]") if rules_node is not None else None
        loaded.append(LoadedRule(rule=rule, file=name, line=line or 1))
    return loaded


def build_ruleset(files: list[tuple[str, str]]) -> RuleSet:
    """Validate and compile rule files given as (name, text) pairs, in the given order."""
    if not files:
        raise RuleError("no rule files (*.yaml) found")
    loaded: list[LoadedRule] = []
    for name, text in files:
        loaded.extend(parse_rule_file(name, text))
    seen: dict[str, LoadedRule] = {}
    for item in loaded:
        first = seen.get(item.rule.id)
        if first is not None:
            raise RuleError(
                f"duplicate rule id (first defined in {first.file}:{first.line})",
                file=item.file,
                line=item.line,
                rule_id=item.rule.id,
            )
        seen[item.rule.id] = item
    digest = hashlib.sha256()
    for name, text in files:
        digest.update(name.encode() + b"\0" + text.encode() + b"\0")
    input_stage, output_stage = _compile(tuple(loaded), None)
    return RuleSet(
        version=digest.hexdigest()[:12],
        rules=tuple(loaded),
        input=input_stage,
        output=output_stage,
    )


def _compile(loaded: tuple[LoadedRule, ...], embedder: str | None) -> tuple[StageRules, StageRules]:
    active = [(i, r.rule) for i, r in enumerate(loaded) if r.rule.enabled]
    # every loaded rule, enabled or not: a disabled rule's id is no more for customers
    words = rule_vocabulary(r.rule.id for r in loaded)
    try:
        return (
            compile_stage(
                "input", [(i, r) for i, r in active if r.stage == "input"], embedder, words
            ),
            compile_stage(
                "output", [(i, r) for i, r in active if r.stage == "output"], embedder, words
            ),
        )
    except (ValueError, re.error) as exc:
        raise RuleError(f"cannot compile rules: {exc}") from exc


def load_rules(directory: str | Path) -> RuleSet:
    root = Path(directory)
    if not root.is_dir():
        raise RuleError(f"rules directory {str(root)!r} does not exist")
    paths = sorted(p for p in root.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    files = []
    for path in paths:
        try:
            files.append((path.name, path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as exc:
            raise RuleError(f"cannot read: {exc}", file=path.name) from exc
    return build_ruleset(files)
