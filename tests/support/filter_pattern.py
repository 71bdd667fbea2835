"""CloudWatch Logs JSON filter patterns, as ``TestMetricFilter`` evaluates them.

Neither local emulator implements JSON patterns (moto and LocalStack match plain terms only), so
this follows the documented grammar ("Filter pattern syntax for metric filters", JSON log events):

    { SELECTOR OP VALUE }           OP: = != < > <= >=; VALUE: "quoted", unquoted, or a number;
                                    a * in a string value is a wildcard
    { SELECTOR IS NULL | IS TRUE | IS FALSE | NOT EXISTS }
    ( ... ) && ( ... ) || ...       && binds tighter than ||; parentheses group

A selector that does not exist in the event matches nothing (except NOT EXISTS).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from typing import Any

__all__ = ["PatternError", "compile_pattern", "matches"]

_TOKEN = re.compile(r"""
    \s*(?:
      (?P<op>&&|\|\||!=|<=|>=|=|<|>|\(|\)|\{|\})
    | (?P<selector>\$(?:\.[A-Za-z0-9_\-@]+|\[\d+\])*)
    | (?P<quoted>"(?:[^"\\]|\\.)*")
    | (?P<bare>[^\s()&|{}=!<>"]+)
    )""", re.VERBOSE)

_MISSING = object()


class PatternError(ValueError):
    pass


def _tokens(pattern: str) -> list[tuple[str, str]]:
    found, pos = [], 0
    pattern = pattern.rstrip()
    while pos < len(pattern):
        m = _TOKEN.match(pattern, pos)
        if m is None or m.end() == pos:
            raise PatternError(f"cannot read pattern at {pattern[pos:]!r}")
        kind = m.lastgroup
        assert kind is not None
        found.append((kind, m.group(kind)))
        pos = m.end()
    return found


def _select(event: Any, selector: str) -> Any:
    node = event
    for part in re.findall(r"\.([A-Za-z0-9_\-@]+)|\[(\d+)\]", selector):
        key, index = part
        if key:
            if not isinstance(node, dict) or key not in node:
                return _MISSING
            node = node[key]
        else:
            if not isinstance(node, list) or int(index) >= len(node):
                return _MISSING
            node = node[int(index)]
    return node


def _compare(actual: Any, op: str, kind: str, raw: str) -> bool:
    if actual is _MISSING or isinstance(actual, (dict, list)):
        return False
    if kind == "bare" and re.fullmatch(r"-?\d+(\.\d+)?", raw) and isinstance(actual, (int, float)) \
            and not isinstance(actual, bool):
        number = float(raw)
        return {"=": actual == number, "!=": actual != number, "<": actual < number,
                ">": actual > number, "<=": actual <= number, ">=": actual >= number}[op]
    if op not in ("=", "!="):
        raise PatternError(f"operator {op} needs a number (got {raw})")
    text = raw[1:-1].replace('\\"', '"') if kind == "quoted" else raw
    value = actual if isinstance(actual, str) else str(actual).lower() if isinstance(actual, bool) else str(actual)
    hit = fnmatch.fnmatchcase(value, text.replace("[", "[[]")) if "*" in text else value == text
    return hit if op == "=" else not hit


Predicate = Callable[[Any], bool]


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens, self.i = tokens, 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (value is not None and token[1] != value):
            raise PatternError(f"expected {value or 'more'} at token {self.i} (got {token})")
        self.i += 1
        return token

    def pattern(self) -> Predicate:
        self.take("{")
        predicate = self.either()
        self.take("}")
        if self.peek() is not None:
            raise PatternError(f"unexpected {self.peek()} after the closing brace")
        return predicate

    def either(self) -> Predicate:
        parts = [self.both()]
        while self.peek() == ("op", "||"):
            self.take()
            parts.append(self.both())
        return parts[0] if len(parts) == 1 else (lambda e: any(p(e) for p in parts))

    def both(self) -> Predicate:
        parts = [self.term()]
        while self.peek() == ("op", "&&"):
            self.take()
            parts.append(self.term())
        return parts[0] if len(parts) == 1 else (lambda e: all(p(e) for p in parts))

    def term(self) -> Predicate:
        if self.peek() == ("op", "("):
            self.take()
            inner = self.either()
            self.take(")")
            return inner
        kind, selector = self.take()
        if kind != "selector":
            raise PatternError(f"expected a $ selector (got {selector!r})")
        nxt = self.take()
        if nxt == ("bare", "IS"):
            word = self.take()[1]
            expected = {"NULL": None, "TRUE": True, "FALSE": False}
            if word not in expected:
                raise PatternError(f"IS must be followed by NULL, TRUE or FALSE (got {word})")
            return lambda e: _select(e, selector) is expected[word]
        if nxt == ("bare", "NOT"):
            self.take("EXISTS")
            return lambda e: _select(e, selector) is _MISSING
        if nxt[0] != "op" or nxt[1] not in ("=", "!=", "<", ">", "<=", ">="):
            raise PatternError(f"expected a comparison after {selector} (got {nxt[1]!r})")
        vkind, raw = self.take()
        if vkind not in ("quoted", "bare"):
            raise PatternError(f"expected a value after {selector} {nxt[1]} (got {raw!r})")
        op = nxt[1]
        return lambda e: _compare(_select(e, selector), op, vkind, raw)


def compile_pattern(pattern: str) -> Predicate:
    if not pattern.lstrip().startswith("{"):
        raise PatternError("only JSON patterns ({ ... }) are supported here")
    return _Parser(_tokens(pattern)).pattern()


def matches(pattern: str, event: dict[str, Any]) -> bool:
    return compile_pattern(pattern)(event)
