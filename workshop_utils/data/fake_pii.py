"""The crawl's generated personal data and its look-alikes: phone numbers in the formats people write
(North American, UK, European, international), e-mails with sub-domains and +tags, IPv4/IPv6 addresses,
and hard negatives (decimals, versions, dates, times, ISBNs, bad dotted quads, prices, order numbers) that a
careless masker would take for PII. `pii_sentence` returns the text and the exact (type, value) list of the
PII in it; hard negatives are never in that list, so a masker that takes one scores a false positive.
"""

from __future__ import annotations

import functools
import ipaddress
import random
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from faker import Faker


class _Fakers(Protocol):
    """What the generator needs of `crawl._Fakers`: a seeded English Faker."""

    en: Faker


def _digits(rng: random.Random, n: int, first: str = "0123456789") -> str:
    """`n` random digits, the first one drawn from `first`."""
    return rng.choice(first) + "".join(rng.choice("0123456789") for _ in range(n - 1))


# Phone numbers as people write them. NANP: area code {a} and exchange {b} never start with 0 or 1 (the
# structural NXX-NXX-XXXX rule; any area code). Every other number follows its country's numbering plan
# (valid in libphonenumber's metadata; tests/test_pii.py checks thousands of draws).
_PHONE_FORMATS = (
    # North America: brackets, dashes, dots, spaces, a bare 10-digit run, a 1- / +1 prefix
    "({a}) {b}-{c}",
    "({a}){b}-{c}",
    "{a}-{b}-{c}",
    "{a}.{b}.{c}",
    "{a} {b} {c}",
    "{a}{b}{c}",
    "1-{a}-{b}-{c}",
    "+1 {a} {b} {c}",
    "+1-{a}-{b}-{c}",
    "+1 ({a}) {b}-{c}",
    "+1.{a}.{b}.{c}",
    "+1{a}{b}{c}",
    # UK: London and mobile numbers with the national trunk 0, +44, +44 (0) and 0044
    "020 {lon}",
    "(020) {lon}",
    "+44 20 {lon}",
    "+44 (0)20 {lon}",
    "0044 20 {lon}",
    "07{ukm}",
    "+44 7{ukm}",
    # other European: Germany, France (spaces and dots), Netherlands, Italy, Spain, Switzerland, Ireland
    "+49 30 {ber}",
    "030 {ber}",
    "0049 30 {ber}",
    "+49 15{dem}",
    "+33 1 {fr}",
    "01 {fr}",
    "01.{frd}",
    "0033 1 {fr}",
    "+33 6 {frm}",
    "+31 20 {nl}",
    "+39 06 {it}",
    "+34 91 {es}",
    "+41 44 {ch}",
    "+353 1 {ie}",
    # elsewhere, with a country code: Japan, Australia, India, Brazil, South Africa, China, Russia, Mexico
    "+81 3-{jp}",
    "+61 2 {au}",
    "+91 9{inn}",
    "+55 11 9{br}",
    "+27 21 {za}",
    "+86 10 {cn}",
    "+7 495 {ru}",
    "+52 55 {mx}",
)


def _phone_parts(rng: random.Random) -> dict[str, str]:
    """Random subscriber parts for every placeholder of `_PHONE_FORMATS` (inside each plan's valid ranges)."""
    d = functools.partial(_digits, rng)

    def pairs(first: str = "0123456789") -> list[str]:
        return [d(2, first)] + [d(2) for _ in range(3)]

    return {
        "a": str(rng.randint(201, 989)),
        "b": str(rng.randint(200, 999)),
        "c": d(4),
        "lon": f"{d(4, '378')} {d(4)}",
        "ukm": f"{d(3, '458')} {d(6)}",
        "ber": d(rng.choice((7, 8)), "123456789"),
        "dem": f"{d(1, '1257')} {d(8)}",
        "fr": " ".join(pairs()),
        "frd": ".".join(pairs()),
        "frm": " ".join(pairs("12")),
        "nl": f"{d(3, '123456789')} {d(4)}",
        "it": f"{d(4)} {d(4)}",
        "es": f"{d(3)} {d(2)} {d(2)}",
        "ch": f"{d(3, '345678')} {d(2)} {d(2)}",
        "ie": f"{d(3, '2345678')} {d(4)}",
        "jp": f"{d(4, '123456789')}-{d(4)}",
        "au": f"{d(4, '89')} {d(4)}",
        "inn": f"{d(4)} {d(5)}",
        "br": f"{d(4)}-{d(4)}",
        "za": f"{d(3, '23456789')} {d(4)}",
        "cn": f"{d(4, '234567')} {d(4)}",
        "ru": f"{d(3, '123456789')}-{d(2)}-{d(2)}",
        "mx": f"{d(4)} {d(4)}",
    }


def fake_phone(rng: random.Random) -> str:
    """A phone number in one of the national/international formats of `_PHONE_FORMATS`."""
    fmt = rng.choice(_PHONE_FORMATS)
    return fmt.format(**_phone_parts(rng))


def phone_examples(rng: random.Random) -> list[str]:
    """One phone number in every format the generator writes (`_PHONE_FORMATS`, in order)."""
    parts = _phone_parts(rng)
    return [fmt.format(**parts) for fmt in _PHONE_FORMATS]


def fake_email(rng: random.Random, f: _Fakers) -> str:
    """An e-mail address: Faker's own, or with a +tag, on a sub-domain, or both."""
    style = rng.randrange(4)
    if style == 0:
        return f.en.email()
    user, domain = f.en.user_name(), f.en.domain_name()
    if style in (1, 3):
        user += "+" + rng.choice(("news", "shop", "github", "2024", "work", "alerts"))
    if style in (2, 3):
        sub = rng.choice(("mail", "eu", "corp.mail", "lists", "support"))
        domain = f"{sub}.{f.en.domain_word()}.{rng.choice(('co.uk', 'com', 'org', 'de', 'io'))}"
    return f"{user}@{domain}"


def fake_ipv6(rng: random.Random) -> str:
    """A global IPv6 address with a run of zero groups, written compressed (`::`) or in full."""
    groups = [int(rng.choice(("2001", "2a02", "2600", "2607", "2a01", "2400")), 16)]
    groups += [rng.randrange(1, 65536) for _ in range(7)]
    k = rng.randint(2, 5)
    i = rng.randint(1, 8 - k)
    groups[i : i + k] = [0] * k
    addr = ipaddress.IPv6Address(":".join(f"{g:x}" for g in groups))
    return addr.exploded if rng.random() < 0.3 else addr.compressed


def _isbn13(rng: random.Random) -> str:
    """A hyphenated ISBN-13 with a valid check digit (`978-3-16-148410-0`)."""
    group, publisher = str(rng.randint(0, 5)), _digits(rng, rng.randint(2, 4))
    title = _digits(rng, 9 - len(publisher))
    core = "978" + group + publisher + title
    check = (10 - sum(int(c) * (1 if k % 2 == 0 else 3) for k, c in enumerate(core)) % 10) % 10
    return f"978-{group}-{publisher}-{title}-{check}"


def hard_negative(rng: random.Random) -> str:
    """A number that is not personal data but looks like it to a careless regex (never in `pii_values`)."""
    y, m, d = rng.randint(1990, 2030), rng.randint(1, 12), rng.randint(1, 28)
    big = rng.randint(256, 999)
    quad = [str(rng.randint(0, 255)) for _ in range(3)]
    quad.insert(rng.randrange(4), str(big))
    kinds = (
        lambda: f"the constant {rng.uniform(1, 10):.{rng.randint(9, 12)}f}",
        lambda: f"version {'.'.join(str(rng.randint(0, 20)) for _ in range(4))}",
        lambda: f"release {'.'.join(str(rng.randint(0, 9)) for _ in range(4))}",
        lambda: f"build v{rng.randint(1, 12)}.{rng.randint(0, 9)}.{rng.randint(10000, 99999)}",
        lambda: f"dated {y}-{m:02d}-{d:02d}",
        lambda: f"dated {d:02d}/{m:02d}/{y}",
        lambda: f"dated {d:02d}.{m:02d}.{y}",
        lambda: f"at {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}",
        lambda: f"ISBN {_isbn13(rng)}",
        lambda: f"the invalid address {'.'.join(quad)}",
        lambda: f"a price of ${rng.randint(1000, 99_999_999):,}.{rng.randint(0, 99):02d}",
        lambda: f"a price of {rng.randint(1000, 9_999_999):,}.{rng.randint(0, 99):02d} EUR".replace(",", " "),
        lambda: f"order #{rng.randint(10**9, 10**13)}",
        lambda: f"invoice {rng.randint(10**10, 10**14)}",
        lambda: f"Unix time {rng.randint(10**9, 2 * 10**9 - 1)}",
    )
    return kinds[rng.randrange(len(kinds))]()


def hard_negative_sentence(rng: random.Random) -> str:
    """A sentence of 2-4 hard negatives (decimals, versions, dates, times, ISBNs, bad quads, prices, orders)."""
    items = [hard_negative(rng) for _ in range(rng.randint(2, 4))]
    return f"The page also mentions {', '.join(items[:-1])} and {items[-1]}."


def pii_sentence(rng: random.Random, f: _Fakers) -> tuple[str, list[tuple[str, str]]]:
    """Contact sentences (e-mail, phones, sometimes an IPv4 or IPv6 address), then hard negatives (not PII)."""
    email, phone = fake_email(rng, f), fake_phone(rng)
    pii = [("email", email), ("phone", phone)]
    parts = [f"For questions about this article, write to {email} or call {phone} during office hours."]
    if rng.random() < 0.5:
        phone2 = fake_phone(rng)
        parts.append(f"Our international desk answers on {phone2} around the clock.")
        pii.append(("phone", phone2))
    r = rng.random()
    if r < 0.3:
        ip = f.en.ipv4_public()
        parts.append(f"Readers reported the outage from the address {ip} on Monday.")
        pii.append(("ip", ip))
    elif r < 0.5:
        ip6 = fake_ipv6(rng)
        parts.append(f"The mirror is also reachable over IPv6 at {ip6} for now.")
        pii.append(("ip", ip6))
    parts.append(hard_negative_sentence(rng))
    return " ".join(parts), pii
