"""PII masking on real formats: phones (NANP, UK, European, international), e-mails, IPs; hard negatives."""

from __future__ import annotations

import random

import phonenumbers
import pytest

from workshop_utils.data import crawl as C
from workshop_utils.data import fake_pii as F
from workshop_utils.data import pii
from workshop_utils.data.pipeline import score_pii

NANP = [
    "(415) 555-0132",
    "(415)555-0132",
    "415-555-0132",
    "415.555.0132",
    "415 555 0132",
    "4155550132",  # a bare 10-digit run
    "1-800-555-0199",
    "+1 415 555 0132",
    "+1-415-555-0132",
    "+1 (415) 555-0132",
    "+1.415.555.0132",
    "+14155550132",
    "001 415 555 0132",
]
UK = [
    "020 7946 0958",
    "(020) 7946 0958",
    "02079460958",
    "+44 20 7946 0958",
    "+44 (0)20 7946 0958",
    "+44 (0) 20 7946 0958",
    "0044 20 7946 0958",
    "07400 123456",
    "+44 7400 123456",
    "0161 496 0123",
]
EUROPE = [
    "+49 30 12345678",
    "030 12345678",
    "0049 30 1234567",
    "+49 151 23456789",
    "+33 1 23 45 67 89",
    "01 42 68 53 00",
    "01.42.68.53.00",
    "0033 1 23 45 67 89",
    "+31 20 123 4567",
    "+39 06 1234 5678",
    "+34 912 345 678",
    "+41 44 668 18 00",
    "+353 1 234 5678",
]
INTERNATIONAL = [
    "+81 3-1234-5678",
    "+61 2 9876 5432",
    "+91 98765 43210",
    "+55 11 91234-5678",
    "+27 21 123 4567",
    "+86 10 6552 9988",
    "+7 495 123-45-67",
    "+52 55 1234 5678",
]
EMAILS = [
    "a@b.org",
    "jane.doe@example.com",
    "jane.doe+news@mail.example.co.uk",
    "x_y+2024@eu.corp.example.io",
]
IPS = [
    "192.168.0.1",
    "10.0.0.1",
    "203.0.113.255",
    "192.168.001.001",
    "2001:0db8:0000:0000:0000:ff00:0042:8329",  # full
    "fe80:0:0:0:202:b3ff:fe1e:8329",
    "2001:db8::ff00:42:8329",  # compressed
    "2001:db8::1",
    "fe80::1",
    "::ffff:192.0.2.128",  # IPv4-mapped
]
# Not PII: each must come out unchanged, with every count 0.
HARD_NEGATIVES = [
    "pi is 3.14159265358",
    "e is 2.7182818284",
    "the constant 1.5874195368",
    "x = 0.1234567890",
    "Decimal('+35236450.6')",
    "version 1.2.3.4",
    "release 1.2.3.4",
    "1.2.3.4",
    "pkg==10.2.3.4",
    "build v10.0.19041",
    "10.0.19041.1234",
    "dated 2024-03-15",
    "dated 15/03/2024",
    "dated 15.03.2024",
    "dated 03.15.2024",
    "at 2024-03-15 12:30:45",
    "at 12:30:45",
    "ISBN 978-3-16-148410-0",
    "978-3-16-148410-0",
    "ISBN 0-306-40615-2",
    "0-306-40615-2",
    "9783161484100",
    "the address 256.1.1.1",
    "the address 1.2.3.999",
    "300.168.100.200",
    "a price of $1,234,567.89",
    "a price of 1 234 567.89 EUR",
    "1 090 090 619.51 EUR",
    "1 234 567 890",
    "order #123456789012",
    "order #4155550132",
    "order 4155550132",
    "Order No. 4155550132",
    "invoice 83812623063549",
    "ref: 02079460958",
    "Unix time 1712345678",
    "$4155550132",
    "4155550132.5",
    "-2147221231",
    "bitness = {2147483647: 32}",
    "digits = '0123456789'",
    "a[::2], x[10::2], a[100::2]",
    "dead::beef and ::1",
    "user@localhost and @property",
    "12345678901234567890",
]


def _masked_alone(value: str, token: str, template: str = "Call {} today.") -> None:
    masked, counts = pii.mask_pii(template.format(value))
    assert masked == template.format(token), (value, masked)
    assert sum(counts.values()) == 1, (value, counts)


@pytest.mark.parametrize("phone", NANP + UK + EUROPE + INTERNATIONAL)
@pytest.mark.parametrize("template", ["Call {} today.", "Tel: {}", "({})", "call {}.", "room 12 {} x"])
def test_phone_formats_are_masked(phone, template):
    _masked_alone(phone, "<PHONE>", template)


@pytest.mark.parametrize("email", EMAILS)
def test_emails_with_subdomains_and_plus_tags(email):
    _masked_alone(email, "<EMAIL>", "mail {}, please.")


@pytest.mark.parametrize("ip", IPS)
def test_ipv4_and_ipv6_full_and_compressed(ip):
    _masked_alone(ip, "<IP_ADDRESS>", "from {} on Monday.")
    _masked_alone(ip, "<IP_ADDRESS>", "http://[{}]:8080/" if ":" in ip else "http://{}:8080/")


@pytest.mark.parametrize("text", HARD_NEGATIVES)
def test_hard_negatives_are_left_alone(text):
    assert pii.mask_pii(text) == (text, {"key": 0, "email": 0, "ip": 0, "phone": 0})


@pytest.mark.parametrize(
    "s, expected",
    [("4155550132", True), ("1155550132", False), ("4151550132", False), ("1712345678", False)],
)
def test_bare_ten_digit_run_needs_a_nanp_pattern(s, expected):
    """Area code and exchange start with 2-9 (so a Unix time is not one); a longer run or a decimal never is."""
    assert pii.is_phone_number(s) is expected
    assert pii.mask_phone_numbers(f"x {s}1 y")[1] == 0
    assert pii.mask_phone_numbers(f"x 1.{s} y")[1] == 0


def test_two_numbers_in_one_run_are_found_apart():
    text = "Call 415-555-0132 415-555-0199 or +44 20 7946 0958 / 030 12345678."
    masked, n = pii.mask_phone_numbers(text)
    assert (masked, n) == ("Call <PHONE> <PHONE> or <PHONE> / <PHONE>.", 4)


def test_masking_twice_counts_nothing_the_second_time():
    text = (
        "Write to jane.doe+x@mail.example.co.uk or call +44 (0)20 7946 0958 or 4155550132 from 10.0.0.1 "
        "and 2001:db8::1, key AKIAIOSFODNN7EXAMPLE, version 1.2.3.4, dated 2024-03-15."
    )
    once, counts = pii.mask_pii(text)
    assert counts == {"key": 1, "email": 1, "ip": 2, "phone": 2}
    twice, counts2 = pii.mask_pii(once)
    assert twice == once and sum(counts2.values()) == 0
    for token in pii.TOKENS.values():
        assert token in once and pii.mask_pii(token) == (token, {k: 0 for k in counts})


@pytest.mark.parametrize("bad", [None, 42, b"415-555-0132", ["a@b.org"]])
def test_bad_input_type_names_the_argument(bad):
    for fn in (pii.mask_emails, pii.mask_phone_numbers, pii.mask_ips, pii.mask_secrets, pii.mask_pii):
        with pytest.raises(TypeError, match="text must be str"):
            fn(bad)
    with pytest.raises(TypeError, match="must be str"):
        pii.is_phone_number(bad)
    with pytest.raises(ValueError, match="kind must be one of"):
        pii.find_pii("x", "ssn")


# ---- the generator's PII and hard negatives ----
NATIONAL_REGION = {
    "020": "GB",
    "(020)": "GB",
    "07": "GB",
    "030": "DE",
    "01": "FR",
}  # the generator's trunk-0 forms


def _region(phone: str) -> str | None:
    """The country whose national format `phone` is written in (None: it carries +CC / 00CC)."""
    if phone.startswith(("+", "00")):
        return None
    return next(r for p, r in NATIONAL_REGION.items() if phone.startswith(p))


def test_every_generated_phone_format_is_masked_and_valid():
    parts = F._phone_parts(random.Random(0))
    for fmt in F._PHONE_FORMATS:  # each format at least once
        _masked_alone(fmt.format(**parts), "<PHONE>")
    rng = random.Random(1)
    n_plan = 0
    for _ in range(3000):
        phone = F.fake_phone(rng)
        _masked_alone(phone, "<PHONE>")
        if phone.startswith(("+", "0")) and not phone.startswith("+1"):  # numbering plans, not our NANP rule
            number = "+" + phone[2:] if phone.startswith("00") else phone
            assert phonenumbers.is_valid_number(phonenumbers.parse(number, _region(phone))), phone
            n_plan += 1
    assert n_plan > 1500


def test_generated_emails_and_ipv6_are_masked():
    fakers = C._Fakers(0)
    rng = random.Random(2)
    emails = [F.fake_email(rng, fakers) for _ in range(400)]
    assert any("+" in e for e in emails) and any(e.split("@")[1].count(".") >= 2 for e in emails)
    for e in emails:
        _masked_alone(e, "<EMAIL>", "mail {} now.")
    ips = [F.fake_ipv6(rng) for _ in range(400)]
    assert any("::" in ip for ip in ips) and any(len(ip) == 39 for ip in ips)
    for ip in ips:
        _masked_alone(ip, "<IP_ADDRESS>", "at {} now.")


def test_generated_hard_negatives_are_never_masked():
    rng = random.Random(3)
    for _ in range(3000):
        sentence = F.hard_negative_sentence(rng)
        assert pii.mask_pii(sentence)[0] == sentence


def test_pii_sentence_accounting_is_exact_and_seeded():
    fakers = C._Fakers(0)
    rng = random.Random(4)
    kinds = set()
    for _ in range(300):
        text, found = F.pii_sentence(rng, fakers)
        masked, counts = pii.mask_pii(text)
        kinds |= {t for t, _ in found}
        assert all(v in text and v not in masked for _, v in found)
        assert {k: sum(t == k for t, _ in found) for k in counts} == counts  # hard negatives count 0
    assert kinds == {"email", "phone", "ip"}
    a = F.pii_sentence(random.Random(5), C._Fakers(0))
    assert a == F.pii_sentence(random.Random(5), C._Fakers(0))


# ---- scoring ----
def _row(text: str, values: list[tuple[str, str]]) -> dict:
    masked, counts = pii.mask_pii(text)
    return {
        "id": "d",
        "text_before_pii": text,
        "text": masked,
        "pii_types": [t for t, _ in values],
        "pii_values": [v for _, v in values],
    }


def test_score_pii_counts_per_kind_and_catches_false_positives():
    rows = [
        _row(
            "call 415-555-0132 or mail a@b.org, seen 10.1.2.3",
            [("phone", "415-555-0132"), ("email", "a@b.org")],
        ),
        _row("write to c@d.org", [("email", "c@d.org"), ("ip", "10.9.8.7")]),  # the IP is not in the text
    ]
    score = score_pii(rows)
    assert (score.injected, score.caught, score.detections, score.true_detections) == (3, 3, 4, 3)
    assert score.false_positives == [("d", "ip", "10.1.2.3")]  # an address the ground truth does not list
    table = score.table().set_index("kind")
    assert table.loc["ip", "precision"] == 0.0 and table.loc["email", "recall"] == 1.0
    assert table.loc["all", "recall"] == 1.0 and table.loc["all", "precision"] == 0.75


def test_score_pii_counts_a_partly_masked_value_as_a_miss():
    row = _row("call +44 20 7946 0958 ext now", [("phone", "+44 20 7946 0958 ext")])
    score = score_pii([row])
    assert score.caught == 0 and score.misses == [("d", "phone", "+44 20 7946 0958 ext")]
    assert score.true_detections == 1  # the detection lies inside the value: right kind, too short
