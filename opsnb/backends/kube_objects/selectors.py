"""Label selectors, as the API server matches them."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from .common import _get

_SET_OP = re.compile(r"^\s*([^\s!=]+)\s+(in|notin)\s*\(([^)]*)\)\s*$")


def _split_outside_parens(text: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def selector_matcher(
    selector: str | Mapping[str, str] | None,
) -> Callable[[Mapping[str, str]], bool]:
    """A predicate on a labels dict for a label selector: ``app=x,tier!=db,env in (a,b),
    !canary,track`` (the syntax of ``kubectl -l``), or a dict of required labels."""
    if selector is None or selector == "":
        return lambda labels: True
    if isinstance(selector, Mapping):
        wanted = dict(selector)
        return lambda labels: all(labels.get(k) == v for k, v in wanted.items())
    tests: list[Callable[[Mapping[str, str]], bool]] = []
    for term in _split_outside_parens(selector):
        m = _SET_OP.match(term)
        if m:
            values = frozenset(v.strip() for v in m.group(3).split(",") if v.strip())
            tests.append(_label_test(m.group(1), "in" if m.group(2) == "in" else "notin", values))
        elif "!=" in term:
            key, value = (s.strip() for s in term.split("!=", 1))
            tests.append(_label_test(key, "!=", frozenset([value])))
        elif "=" in term:
            key, value = (s.strip() for s in term.replace("==", "=").split("=", 1))
            tests.append(_label_test(key, "=", frozenset([value])))
        elif term.startswith("!"):
            tests.append(_label_test(term[1:].strip(), "absent", frozenset()))
        elif re.fullmatch(r"[\w./-]+", term):
            tests.append(_label_test(term, "exists", frozenset()))
        else:
            raise ValueError(f"cannot parse label selector term {term!r} in {selector!r}")
    return lambda labels: all(t(labels) for t in tests)


def _label_test(key: str, op: str, values: frozenset[str]) -> Callable[[Mapping[str, str]], bool]:
    def test(labels: Mapping[str, str]) -> bool:
        if op == "exists":
            return key in labels
        if op == "absent":
            return key not in labels
        value = labels.get(key)
        if op in ("=", "in"):
            return value in values
        return value not in values  # "!=" and "notin" also match when the label is absent

    return test


def match_selector(obj: Mapping[str, Any], selector: str | Mapping[str, str] | None) -> bool:
    """Whether an object's ``metadata.labels`` match a label selector."""
    return selector_matcher(selector)(_get(obj, "metadata", "labels", default={}))
