"""Rule-file errors for people: the exact line, the allowed values, a hint, the text as written.

msgspec reports a path (`$.rules[3].when.any_phrases[2]`) and a terse message ("Expected
`str`, got `float`"); compliance staff need the line of the offending key or value, what
they may write instead, and why YAML read `1.0` or `on` as something else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import get_args

import msgspec
import yaml

from fte_core.models import MODEL_LABELS, Channel, Priority
from fte_core.policy.schema import (
    ActionName,
    Condition,
    Example,
    Examples,
    LanguageCode,
    Rule,
    RuleFile,
    SimilarTo,
    Stage,
    Then,
)

_PATH_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")
_UNKNOWN_FIELD = re.compile(r"^Object contains unknown field `([^`]+)`")
_BAD_ENUM = re.compile(r"^Invalid enum value (.+)$")
_WRONG_TYPE = re.compile(r"^Expected `str`, got `(float|int|bool)`$")
_FIRST_KEY = re.compile(r"^[a-z ]*`([a-z_]+)[`:]")
_PATTERN = re.compile(r"^invalid pattern \((.*?)\): (.*)$", re.S)

_CHANNELS = tuple(c.value for c in Channel)
_ALLOWED_VALUES: dict[str, tuple[str, ...]] = {
    "stage": get_args(Stage),
    "action": get_args(ActionName),
    "urgency": tuple(p.value for p in Priority),
    "priority": tuple(p.value for p in Priority),
    "channel": _CHANNELS,
    "channel_in": _CHANNELS,
    "language_in": get_args(LanguageCode),
    "language_not_in": get_args(LanguageCode),
    "model_flags_any": MODEL_LABELS,
    "model_flags": MODEL_LABELS,
}
# Which struct a mapping at a path step is: the key that leads to it.
_STRUCT_OF: dict[str, type[msgspec.Struct]] = {
    "rules": Rule,
    "when": Condition,
    "all": Condition,
    "any": Condition,
    "not": Condition,
    "then": Then,
    "examples": Examples,
    "match": Example,
    "no_match": Example,
    "similar_to": SimilarTo,
}


@dataclass(frozen=True, slots=True)
class Located:
    detail: str
    line: int | None


def _steps(path: str) -> list[str | int]:
    return [key or int(index) for key, index in _PATH_STEP.findall(path.removeprefix("$"))]


def _child(node: yaml.Node | None, step: str | int) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode) and isinstance(step, str):
        return next((v for k, v in node.value if getattr(k, "value", None) == step), None)
    if isinstance(node, yaml.SequenceNode) and isinstance(step, int):
        return node.value[step] if step < len(node.value) else None
    return None


def _walk(root: yaml.Node | None, path: str) -> tuple[yaml.Node | None, int | None]:
    """The deepest node the path reaches, and its 1-based line."""
    node = root
    line = node.start_mark.line + 1 if node is not None else None
    for step in _steps(path):
        found = _child(node, step)
        if found is None:
            break
        node, line = found, found.start_mark.line + 1
    return node, line


def line_at(root: yaml.Node | None, path: str) -> int | None:
    """Map a msgspec error path like `$.rules[3].when` to a 1-based YAML line."""
    return _walk(root, path)[1]


def _key_line(node: yaml.Node | None, key: str) -> int | None:
    """The line of the first key named `key` in this subtree (depth first)."""
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if getattr(k, "value", None) == key:
                return int(k.start_mark.line) + 1
            found = _key_line(v, key)
            if found is not None:
                return found
    if isinstance(node, yaml.SequenceNode):
        for item in node.value:
            found = _key_line(item, key)
            if found is not None:
                return found
    return None


def _scalar_with(node: yaml.Node | None, value: str) -> yaml.ScalarNode | None:
    if isinstance(node, yaml.ScalarNode) and node.value == value:
        return node
    children: list[yaml.Node] = []
    if isinstance(node, yaml.MappingNode):
        children = [v for _, v in node.value]
    elif isinstance(node, yaml.SequenceNode):
        children = list(node.value)
    for child in children:
        found = _scalar_with(child, value)
        if found is not None:
            return found
    return None


def _struct_at(path: str) -> type[msgspec.Struct]:
    keys = [s for s in _steps(path) if isinstance(s, str)]
    return _STRUCT_OF.get(keys[-1], RuleFile) if keys else RuleFile


def _last_key(path: str) -> str | None:
    keys = [s for s in _steps(path) if isinstance(s, str)]
    return keys[-1] if keys else None


def _written(text: str, node: yaml.Node) -> str:
    """The value exactly as it is written in the file, quotes included."""
    return text[node.start_mark.index : node.end_mark.index]


def _quote_hint(got: str, written: str) -> str:
    if got == "bool":
        return (
            f"YAML reads `{written}` as yes/no (so do on, off, yes, no, true, false): "
            f"write it in quotes, '{written}'"
        )
    return f"YAML reads `{written}` as a number: write it in quotes, '{written}'"


def locate(root: yaml.Node | None, text: str, path: str, detail: str) -> Located:
    """Turn a decode error at `path` into a message with the exact line."""
    node, line = _walk(root, path)
    if m := _UNKNOWN_FIELD.match(detail):
        allowed = ", ".join(_struct_at(path).__struct_encode_fields__)
        return Located(f"{detail}; allowed keys here: {allowed}", _key_line(node, m[1]) or line)
    if (m := _BAD_ENUM.match(detail)) and (key := _last_key(path)) in _ALLOWED_VALUES:
        allowed = ", ".join(_ALLOWED_VALUES[key])
        return Located(f"`{key}` cannot be {m[1]}; allowed values: {allowed}", line)
    if (m := _WRONG_TYPE.match(detail)) and node is not None:
        return Located(f"{detail}: {_quote_hint(m[1], _written(text, node))}", line)
    if m := _PATTERN.match(detail):
        scalar = _scalar_with(node, m[2])
        if scalar is not None:
            written = _written(text, scalar)
            return Located(f"invalid pattern ({m[1]}): {written}", _line(scalar))
    if m := _FIRST_KEY.match(detail):
        return Located(detail, _key_line(node, m[1]) or line)
    return Located(detail, line)


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1
