"""Stage 5: PII masking with regular expressions (validated candidates), as in BigCode's StarCoder pipeline.

Replacement tokens (documented, and never matched again, so masking twice counts 0 the second time):
- `<EMAIL>`       e-mail addresses
- `<PHONE>`       phone numbers (national and international formats with separators)
- `<IP_ADDRESS>`  IPv4 and IPv6 addresses (validated with `ipaddress`; BigCode instead substitutes
                  one of five synthetic private IPs)
- `<KEY>`         secrets: AWS access key ids, GitHub/Slack tokens, `api_key = "..."`-style assignments
Each `mask_*` returns (masked text, number of replacements).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

TOKENS = {"email": "<EMAIL>", "phone": "<PHONE>", "ip": "<IP_ADDRESS>", "key": "<KEY>"}

EMAIL_RE = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"
)
IPV4_RE = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)")
IPV6_RE = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
PHONE_RE = re.compile(
    r"(?<![\w+.-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?|\d{1,4}[ .-])(?:\d{2,4}[ .-]){0,3}\d{2,8}(?![\w]|[.-]\d)"
)
KEY_RES = (
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),  # AWS access key id
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36}\b"),  # GitHub token
    re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,60}\b"),  # Slack token
)
ASSIGNED_SECRET_RE = re.compile(
    r"(?i)\b(?:api[_-]?key|secret(?:[_-]?key)?|access[_-]?token|auth[_-]?token|password|passwd)\b\s*[:=]\s*(['\"])([^'\"\s]{16,})\1"
)


def _check(text: str) -> str:
    if not isinstance(text, str):
        raise TypeError(f"text must be str, got {type(text).__name__}")
    return text


def _valid_ipv4(s: str) -> bool:
    try:
        ipaddress.IPv4Address(s)
    except ValueError:
        return False
    return True


def _valid_ipv6(s: str) -> bool:
    if sum(1 for g in s.split(":") if g) < 3:  # '::2' in a slice or '12:30' in a time is not an address
        return False
    try:
        ipaddress.IPv6Address(s)
    except ValueError:
        return False
    return True


def _valid_phone(s: str) -> bool:
    digits = sum(c.isdigit() for c in s)
    groups = len(re.findall(r"\d+", s))
    return 9 <= digits <= 15 and groups >= 2 and not _valid_ipv4(s)


def find_pii(text: str, kind: str) -> list[tuple[int, int]]:
    """(start, end) spans of one kind of PII in `text`; kind in 'email', 'phone', 'ip', 'key'."""
    _check(text)
    if kind == "email":
        return [m.span() for m in EMAIL_RE.finditer(text)]
    if kind == "ip":
        spans = [m.span() for m in IPV4_RE.finditer(text) if _valid_ipv4(m.group())]
        return sorted(spans + [m.span() for m in IPV6_RE.finditer(text) if _valid_ipv6(m.group())])
    if kind == "phone":
        return [m.span() for m in PHONE_RE.finditer(text) if _valid_phone(m.group())]
    if kind == "key":
        spans = [m.span() for r in KEY_RES for m in r.finditer(text)]
        spans += [m.span(2) for m in ASSIGNED_SECRET_RE.finditer(text) if _looks_random(m.group(2))]
        return _merge(spans)
    raise ValueError(f"kind must be one of {sorted(TOKENS)}, got {kind!r}")


def _looks_random(s: str) -> bool:
    """A secret mixes letters and digits (a password-like word such as 'changeme_please' is left alone)."""
    return any(c.isdigit() for c in s) and any(c.isalpha() for c in s)


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if out and s < out[-1][1]:
            out[-1] = (out[-1][0], max(e, out[-1][1]))
        else:
            out.append((s, e))
    return out


def _mask(text: str, kind: str) -> tuple[str, int]:
    spans = find_pii(text, kind)
    for s, e in reversed(spans):
        text = text[:s] + TOKENS[kind] + text[e:]
    return text, len(spans)


def mask_emails(text: str) -> tuple[str, int]:
    """Replace e-mail addresses by `<EMAIL>`; returns (masked, count)."""
    return _mask(text, "email")


def mask_phone_numbers(text: str) -> tuple[str, int]:
    """Replace phone numbers by `<PHONE>`; returns (masked, count)."""
    return _mask(text, "phone")


def mask_ips(text: str) -> tuple[str, int]:
    """Replace IPv4 and IPv6 addresses by `<IP_ADDRESS>`; returns (masked, count)."""
    return _mask(text, "ip")


def mask_secrets(text: str) -> tuple[str, int]:
    """Replace API keys and tokens by `<KEY>`; returns (masked, count)."""
    return _mask(text, "key")


# Order matters: keys first (they contain digits), then e-mails, IPs (an IPv4 has 10-12 digits), phones.
MASKERS: tuple[tuple[str, Callable[[str], tuple[str, int]]], ...] = (
    ("key", mask_secrets),
    ("email", mask_emails),
    ("ip", mask_ips),
    ("phone", mask_phone_numbers),
)


def mask_pii(text: str) -> tuple[str, dict[str, int]]:
    """Apply every masker in order; returns (masked text, count per kind)."""
    counts = {}
    for kind, fn in MASKERS:
        text, counts[kind] = fn(text)
    return text, counts


def detect_pii_values(text: str) -> list[tuple[str, str]]:
    """(kind, matched string) of every detection, found in the same order as `mask_pii` masks them."""
    out = []
    for kind, fn in MASKERS:
        out += [(kind, text[s:e]) for s, e in find_pii(text, kind)]
        text, _ = fn(text)
    return out
