"""Stage 5: PII masking with regular expressions whose candidates are validated, as in BigCode's StarCoder
pipeline; phone numbers are validated with `phonenumbers` (Google's libphonenumber metadata).

Replacement tokens (they hold no digit, `@` or hex colon, so they never match again: masking a masked
text changes nothing and counts 0):
- `<EMAIL>`       e-mail addresses, sub-domains and plus-addressing included (`a.b+tag@mail.example.co.uk`)
- `<PHONE>`       phone numbers (rules below)
- `<IP_ADDRESS>`  IPv4 (every octet 0-255) and IPv6 (full, compressed, IPv4-mapped); BigCode instead
                  substitutes one of five synthetic private IPs. A dotted quad after a version word
                  (`version`, `v`, `release`, `==`, ...) or made of four one-digit parts (`1.2.3.4`, also
                  public resolvers such as `8.8.8.8`, which are nobody's personal data) is read as a version.
                  IPv6 needs a digit and two non-empty groups, one of them of >= 3 characters when there
                  are only two (`::1`, `dead::beef` and slices such as `a[10::2]` are left alone).
- `<KEY>`         secrets: AWS access key ids, GitHub/Slack tokens, `api_key = "..."`-style assignments
Each `mask_*` returns (masked text, number of replacements).

Phone numbers. A candidate is a run of digit groups joined by single separators (space, `.`, `-`) or
brackets, 7-15 digits, standing free (no letter, digit, minus sign, `#`, `$`, `%`, `/`, `@` glued to it, no
`.5`-style decimal continuing it) and not after an identifier word (order, invoice, ref, id, account, tracking,
serial, ISBN, ticket, ...). It is a phone number when it is one of:
- North American (NANP): `NXX NXX XXXX` with N = 2-9 (an area code or exchange never starts with 0 or 1),
  written `(415) 555-0132`, `415-555-0132`, `415.555.0132`, `415 555 0132`, with an optional `1-` or
  `+1`/`001` prefix, or as a bare run of exactly 10 digits `4155550132` (a longer run, a run glued to a
  decimal point or after an identifier word is not; nor is a run starting with 1, such as a Unix time).
  The rule is structural: an unassigned area code still counts (masking errs toward recall).
- International: `+CC ...` or `00CC ...` (an optional `(0)` after the country code), valid for that
  country in libphonenumber's metadata.
- European national form with trunk 0 (`020 7946 0958`, `030 12345678`, `01 42 68 53 00`): the first group
  is the trunk 0 with 1-4 area digits, the others have >= 2 digits, 9-12 digits in all (or a bare run of
  10-11), valid in one of `TRUNK_REGIONS`.
Never a phone: a group of one digit after the first (ISBNs end in a one-digit check group), a date
(`2024-03-15`, `15.03.2024`), a time, a decimal (`+35236450.6`), a price (`090 090 619.51`: a dot
separates groups only when all separators are dots), a version, a dotted quad (the IP masker runs first),
one repeated digit, a counting run such as `0123456789` (the digit alphabet in code), a power of two +-1
(`2147483647`).
A run that holds several numbers (`415-555-0132 030 12345678`) is split at its spaces and read left to
right: at each chunk, the longest window of up to 7 chunks that is a phone number wins (linear time).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from functools import lru_cache

import phonenumbers

TOKENS = {"email": "<EMAIL>", "phone": "<PHONE>", "ip": "<IP_ADDRESS>", "key": "<KEY>"}
TRUNK_REGIONS = ("GB", "IE", "DE", "AT", "CH", "FR", "BE", "NL", "IT", "SE", "FI")

EMAIL_RE = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}\b"
)
IPV4_RE = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)")
IPV6_RE = re.compile(
    r"(?<![\w:.])(?:(?:[0-9A-Fa-f]{0,4}:){2,6}(?:\d{1,3}\.){3}\d{1,3}|(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4})"
    r"(?![\w:]|\.\d)"
)
_GROUP = r"(?:\(\d{1,5}\)|\d+)"
PHONE_RUN_RE = re.compile(rf"\+?{_GROUP}(?:(?:[ .\-]|(?<=\))){_GROUP})*")
_NANP_SEPARATED = r"(?:\([2-9]\d\d\)[ .\-]?|[2-9]\d\d[ .\-])[2-9]\d\d[ .\-]\d{4}"
NANP_LOCAL = rf"{_NANP_SEPARATED}|[2-9]\d\d[2-9]\d{{6}}"
NANP_RE = re.compile(rf"(?:1[ .\-])?{_NANP_SEPARATED}|[2-9]\d\d[2-9]\d{{6}}")  # '1.5874195368' is a decimal
_NANP_LOCAL_RE = re.compile(NANP_LOCAL)
_DATE_RE = re.compile(
    r"(?<!\d)(?:(?:19|20)\d\d([./-])(?:0?[1-9]|1[0-2])\1(?:0?[1-9]|[12]\d|3[01])"
    r"|(?:0?[1-9]|[12]\d|3[01])([./-])(?:0?[1-9]|[12]\d|3[01])\2(?:19|20)\d\d)(?!\d)"
)
_DECIMAL_RE = re.compile(r"\+?\d+\.\d+")  # '+35236450.6', '3.14159265358'
_ID_CONTEXT_RE = re.compile(
    r"(?i)(?:#|\b(?:order|invoice|ref|reference|id|account|acct|tracking|serial|isbn(?:-1[03])?|issn|sku|"
    r"ticket|transaction|receipt|booking|confirmation|part|item)\b\.?(?:\s*(?:no\.?|nr\.?|number))?)\s*[:#]?\s*$"
)
_VERSION_CONTEXT_RE = re.compile(
    r"(?i)(?:\b(?:v|ver|version|release|build|rev|revision|python|firmware|update|upgrade|patch)\.?"
    r"|==|>=|<=|~=|!=)\s*:?\s*$"
)
_MAX_CHUNKS = 7  # a phone number has at most ~6 space-separated parts (`+33 1 23 45 67 89`)
KEY_RES = (
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),  # AWS access key id
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36}\b"),  # GitHub token
    re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,60}\b"),  # Slack token
)
# Each pattern needs one of its literals, and an assigned secret a quote after `:`/`=`: no literal, no scan.
_KEY_LITERALS = (("AKIA",), tuple(f"gh{c}_" for c in "pousr"), tuple(f"xox{c}-" for c in "abprs"))
_ASSIGNED_QUOTE_RE = re.compile(r"[:=]\s*['\"]")
_IPV4_HINT_RE = re.compile(r"\d\.\d{1,3}\.\d{1,3}\.\d")  # inside every IPv4 match
_IPV6_HINT_RE = re.compile(r":[0-9A-Fa-f]{0,4}:")  # inside every IPv6 match
ASSIGNED_SECRET_RE = re.compile(
    r"(?i)\b(?:api[_-]?key|secret(?:[_-]?key)?|access[_-]?token|auth[_-]?token|password|passwd)\b\s*[:=]\s*(['\"])([^'\"\s]{16,})\1"
)


def _check(text: str) -> str:
    """`text` itself, or a TypeError naming the argument."""
    if not isinstance(text, str):
        raise TypeError(f"text must be str, got {type(text).__name__}")
    return text


# ---- IP addresses ----
def _valid_ipv4(s: str) -> bool:
    """Four dot-separated octets, each 0-255 (a leading zero is allowed: `010` is octet 10)."""
    parts = s.split(".")
    return len(parts) == 4 and all(p.isdigit() and len(p) <= 3 and int(p) <= 255 for p in parts)


def _valid_ipv6(s: str) -> bool:
    """An IPv6 address that is not a slice, a time or a hex word: it has a digit and enough groups."""
    groups = [g for g in s.split(":") if g]
    if not any(c.isdigit() for c in s) or len(groups) < 2:  # 'dead::beef', '::1', 'a[::2]'
        return False
    if len(groups) == 2 and max(map(len, groups)) < 3:  # 'x[10::2]' is a slice, 'fe80::1' an address
        return False
    try:
        ipaddress.IPv6Address(s)
    except ValueError:
        return False
    return True


def _is_version(text: str, s: int, e: int) -> bool:
    """A dotted quad read as a version: after a version word (`version 2.10.1.0`), or four one-digit parts."""
    return bool(_VERSION_CONTEXT_RE.search(text[max(0, s - 16) : s])) or e - s == 7


def _ip_spans(text: str) -> list[tuple[int, int]]:
    """Valid IPv4 addresses (not versions) and IPv6 addresses (not inside a slice)."""
    spans = [
        m.span()
        for m in (IPV4_RE.finditer(text) if _IPV4_HINT_RE.search(text) else ())
        if _valid_ipv4(m.group()) and not _is_version(text, *m.span())
    ]
    for m in IPV6_RE.finditer(text) if _IPV6_HINT_RE.search(text) else ():
        s = m.start()
        in_slice = s >= 2 and text[s - 1] == "[" and (text[s - 2].isalnum() or text[s - 2] in "_)]")
        if not in_slice and _valid_ipv6(m.group()):
            spans.append(m.span())
    return _merge(spans)


# ---- phone numbers ----
def _free_standing(text: str, s: int, e: int) -> bool:
    """Nothing glued to text[s:e] that makes it part of a longer number, an amount, a path or an identifier."""
    before = text[s - 1] if s else " "
    after = text[e] if e < len(text) else " "
    if before.isalnum() or before in "_#$€£¥@/\\%&=+*^-" or after.isalnum() or after in "_%$€£¥@/\\*^":
        return False
    if before in ".,:" and s >= 2 and text[s - 2].isdigit():
        return False
    if after in ".,:-" and e + 1 < len(text) and text[e + 1].isdigit():
        return False
    return not _ID_CONTEXT_RE.search(text[max(0, s - 30) : s])


def _groups(s: str) -> list[str]:
    """The digit groups of `s`, in order."""
    return re.findall(r"\d+", s)


@lru_cache(maxsize=4096)
def _valid_international(s: str) -> bool:
    """`+CC ...` / `00CC ...`: NANP rule for +1, else valid for its country in libphonenumber."""
    norm = "+" + s[2:] if s.startswith("00") else s
    norm = re.sub(r"^(\+\d{1,3}) ?\(0\) ?", r"\1 ", norm)  # '+44 (0)20 ...' -> '+44 20 ...'
    if norm.startswith("+1"):
        return bool(_NANP_LOCAL_RE.fullmatch(re.sub(r"^\+1[ .\-]?", "", norm)))
    if any(len(g) < 2 for g in _groups(norm)[2:]):
        return False
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(norm, None))
    except phonenumbers.NumberParseException:
        return False


@lru_cache(maxsize=4096)
def _valid_trunk(s: str) -> bool:
    """A national number with trunk 0, valid in one of `TRUNK_REGIONS`."""
    groups = _groups(s)
    n = sum(map(len, groups))
    if len(groups) == 1:
        ok_shape = 10 <= n <= 11
    else:
        ok_shape = 2 <= len(groups[0]) <= 5 and all(len(g) >= 2 for g in groups[1:]) and 9 <= n <= 12
    if not ok_shape:
        return False
    for region in TRUNK_REGIONS:
        try:
            if phonenumbers.is_valid_number(phonenumbers.parse(s, region)):
                return True
        except phonenumbers.NumberParseException:
            continue
    return False


def _placeholder(digits: str) -> bool:
    """Nobody's number: one repeated digit, a counting run (`string.digits`), a power of two +-1 (2147483647)."""
    if len(set(digits)) == 1 or digits in "01234567890123456789" or digits in "98765432109876543210":
        return True
    return any(abs(int(digits) - 2**k) <= 1 for k in range(20, 50))


def _mixed_dots(s: str) -> bool:
    """`090 090 619.51` ends like a price: a dot separates groups only when every separator is a dot."""
    body = re.sub(r"^(?:\+|00)\d{1,3}[ .\-]?", "", s)
    seps = re.findall(r"(?<=\d)[ .\-](?=\d)", body)
    return "." in seps and len(set(seps)) > 1


def is_phone_number(text: str) -> bool:
    """Whether the whole of `text` is a phone number under the rules of this module's docstring."""
    s = _check(text)
    digits = "".join(c for c in s if c.isdigit())
    if not 7 <= len(digits) <= 15 or not PHONE_RUN_RE.fullmatch(s):
        return False
    if _DATE_RE.search(s) or _DECIMAL_RE.fullmatch(s) or _placeholder(digits) or _mixed_dots(s):
        return False
    if s.startswith("+") or (s.startswith("00") and not s.startswith("000")):
        return _valid_international(s)
    if s.startswith(("0", "(0")):
        return _valid_trunk(s)
    return bool(NANP_RE.fullmatch(s))


def _phone_spans_in_run(text: str, start: int, run: str) -> list[tuple[int, int]]:
    """Phone numbers inside one run, left to right: at each chunk the longest window that is one wins."""
    chunks = [(m.start() + start, m.end() + start) for m in re.finditer(r"\S+", run)]
    spans, i = [], 0
    while i < len(chunks):
        for width in range(min(len(chunks) - i, _MAX_CHUNKS), 0, -1):
            s, e = chunks[i][0], chunks[i + width - 1][1]
            if _free_standing(text, s, e) and is_phone_number(text[s:e]):
                spans.append((s, e))
                i += width
                break
        else:
            i += 1
    return spans


def _phone_spans(text: str) -> list[tuple[int, int]]:
    """Phone numbers in every digit run of `text` that has at least 7 digits."""
    spans = []
    for m in PHONE_RUN_RE.finditer(text):
        if sum(c.isdigit() for c in m.group()) >= 7:
            spans += _phone_spans_in_run(text, m.start(), m.group())
    return spans


# ---- secrets ----
def _looks_random(s: str) -> bool:
    """A secret mixes letters and digits (a password-like word such as 'changeme_please' is left alone)."""
    return any(c.isdigit() for c in s) and any(c.isalpha() for c in s)


def _key_spans(text: str) -> list[tuple[int, int]]:
    """Known token shapes, and random-looking values assigned to a secret-sounding name."""
    spans = [
        m.span()
        for r, literals in zip(KEY_RES, _KEY_LITERALS)
        if any(lit in text for lit in literals)
        for m in r.finditer(text)
    ]
    if _ASSIGNED_QUOTE_RE.search(text):
        spans += [m.span(2) for m in ASSIGNED_SECRET_RE.finditer(text) if _looks_random(m.group(2))]
    return _merge(spans)


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted spans with overlapping ones joined."""
    out: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if out and s < out[-1][1]:
            out[-1] = (out[-1][0], max(e, out[-1][1]))
        else:
            out.append((s, e))
    return out


_FINDERS: dict[str, Callable[[str], list[tuple[int, int]]]] = {
    "email": lambda text: [m.span() for m in EMAIL_RE.finditer(text)] if "@" in text else [],
    "ip": _ip_spans,
    "phone": _phone_spans,
    "key": _key_spans,
}


def find_pii(text: str, kind: str) -> list[tuple[int, int]]:
    """(start, end) spans of one kind of PII in `text`; kind in 'email', 'phone', 'ip', 'key'."""
    _check(text)
    if kind not in _FINDERS:
        raise ValueError(f"kind must be one of {sorted(TOKENS)}, got {kind!r}")
    return _FINDERS[kind](text)


def _mask(text: str, kind: str) -> tuple[str, int]:
    """Replace every span of `kind` by its token; returns (masked, count)."""
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
