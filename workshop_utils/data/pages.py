"""The generated parts of the mini crawl: web page templates, junk pages, near-duplicate edits, code files
(licence headers, secrets, generated and minified files), Gutenberg editions, non-English and broken pages.
"""

from __future__ import annotations

import random

from .books import add_gutenberg_boilerplate, display_title
from .code_rules import add_spdx, data_file, minified_file
from .sources import english_paragraphs
from .urls import blocked_url_for

NON_ENGLISH_LOCALES = ("de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "pl_PL", "ru_RU", "cs_CZ")


def fake_secret(rng: random.Random) -> tuple[str, str]:
    """A (variable name, secret value) pair shaped like a real cloud/API credential."""
    up = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    alnum = up + "abcdefghijklmnopqrstuvwxyz"
    kind = rng.randrange(4)
    if kind == 0:
        return "AWS_ACCESS_KEY_ID", "AKIA" + "".join(rng.choice(up) for _ in range(16))
    if kind == 1:
        return "GITHUB_TOKEN", "ghp_" + "".join(rng.choice(alnum) for _ in range(36))
    if kind == 2:
        return "SLACK_TOKEN", "xoxb-" + "-".join(str(rng.randint(10**9, 10**10)) for _ in range(2))
    return "api_key", "".join(rng.choice("0123456789abcdef") for _ in range(32))


class _Fakers:
    """Seeded Faker instances (English for PII, other locales for non-English text)."""

    def __init__(self, seed: int) -> None:
        from faker import Faker

        self.en = Faker("en_US")
        self.en.seed_instance(seed)
        self.loc = {}
        for i, loc in enumerate(NON_ENGLISH_LOCALES):
            f = Faker(loc)
            f.seed_instance(seed + 1 + i)
            self.loc[loc] = f


_TEMPLATES = (
    # (site name, nav items, cookie text, ad text, footer text)
    (
        "dailybyte.example",
        ["Home", "News", "Tech", "Opinion", "Contact"],
        "This site uses cookies to improve your experience. By continuing you accept our cookie policy.",
        "Sponsored: Get 50% off cloud hosting today only",
        "Copyright 2024 DailyByte Media. Privacy policy | Terms of use | Advertise",
    ),
    (
        "learnhub.example",
        ["Courses", "Blog", "Pricing", "Login", "Sign up"],
        "We use cookies and similar technologies. Accept all / Manage preferences",
        "Advertisement - Learn to code in 30 days!",
        "LearnHub Inc. All rights reserved. Cookie settings | Imprint",
    ),
    (
        "devnotes.example",
        ["Articles", "Tags", "Archive", "About"],
        "Our website uses cookies. Read more about the use of cookies.",
        "Buy the DevNotes ebook bundle now",
        "Powered by StaticPress. Subscribe via RSS. Follow us on social media",
    ),
    (
        "techworld.example",
        ["Start", "Reviews", "Deals", "Newsletter", "Search"],
        "Please enable JavaScript and accept cookies to see all content.",
        "Hot deals: laptops from $299",
        "TechWorld Network 2019-2024 | Terms of use | Privacy policy | Sitemap",
    ),
)


def render_page(title: str, paragraphs: list[str], template: int, rng: random.Random) -> str:
    """An HTML page: navigation, cookie banner, ad, the article, related links, footer."""
    site, nav, cookie, ad, footer = _TEMPLATES[template % len(_TEMPLATES)]
    links = "".join(f'<li><a href="/{n.lower()}">{n}</a></li>' for n in nav)
    related = "".join(f'<li><a href="/p/{rng.randint(1, 9999)}">Read more {i + 1}</a></li>' for i in range(4))
    body = "".join(f"<p>{p}</p>\n" for p in paragraphs)
    return (
        f"<!DOCTYPE html><html><head><title>{title} | {site}</title>"
        f'<script>var analytics="{site}";</script></head><body>\n'
        f'<header><nav><ul class="menu">{links}</ul></nav></header>\n'
        f'<div class="cookie-banner"><p>{cookie}</p><button>Accept</button></div>\n'
        f'<main><article><h1>{title}</h1>\n{body}</article>\n<aside class="ad">{ad}</aside>\n'
        f'<aside class="related"><h3>Related</h3><ul>{related}</ul></aside></main>\n'
        f"<footer><p>{footer}</p></footer></body></html>\n"
    )


_SPAM_WORDS = "cheap best buy online free shipping discount pills casino bonus win deal offer now".split()
_CONTENT_WORDS = (
    "market product quality service software solution design network business growth data cloud "
    "mobile travel hotel insurance loan credit health fitness recipe garden fashion review price"
).split()


def junk_page(kind: str, rng: random.Random, f: _Fakers) -> str:
    """One low-quality web page of a given kind."""
    tpl = rng.randrange(len(_TEMPLATES))
    title = f.en.catch_phrase()
    if kind == "spam":
        lines = [" ".join(rng.sample(_SPAM_WORDS, 6)).capitalize() + "!" for _ in range(4)]
        return render_page(title, lines * rng.randint(5, 9), tpl, rng)
    if kind == "keyword_stuffing":
        kw = " ".join(rng.sample(_SPAM_WORDS, 2))
        para = " ".join([f"{kw} {rng.choice(_CONTENT_WORDS)}" for _ in range(60)]) + "."
        return render_page(f"{kw} {kw} {kw}", [para], tpl, rng)
    if kind == "link_farm":
        items = "".join(
            f'<li><a href="https://{f.en.domain_name()}/">{rng.choice(_CONTENT_WORDS)} {rng.choice(_SPAM_WORDS)}</a></li>'
            for _ in range(60)
        )
        return f"<html><head><title>{title}</title></head><body><h1>Top links</h1><ul>{items}</ul></body></html>\n"
    if kind == "near_empty":
        msg = rng.choice(["Coming soon.", "Page not found.", "Under construction.", "Nothing here yet."])
        return render_page(msg, [msg], tpl, rng)
    if kind == "boilerplate_only":
        return render_page(title, [], tpl, rng)
    if kind == "word_salad":
        lines = [
            " ".join(rng.choice(_CONTENT_WORDS) for _ in range(rng.randint(6, 12))) + "..." for _ in range(30)
        ]
        return render_page(title, lines, tpl, rng)
    if kind == "hashtags":
        tags = " ".join("#" + rng.choice(_CONTENT_WORDS + _SPAM_WORDS) for _ in range(80))
        return render_page(title, [f"Follow us for more. {tags}"], tpl, rng)
    if kind == "lorem_placeholder":
        paras = list(rng.sample(english_paragraphs(), 3))
        paras.insert(1, "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.")
        return render_page(title, paras, tpl, rng)
    raise ValueError(f"unknown junk kind {kind!r}")


JUNK_KINDS = (
    "spam",
    "keyword_stuffing",
    "link_farm",
    "near_empty",
    "boilerplate_only",
    "word_salad",
    "hashtags",
    "lorem_placeholder",
)


def junk_url(kind: str, i: int) -> str:
    """Where the i-th junk page lives: most spam sits on block-listed domains, some on URLs full of spam words."""
    if kind in ("spam", "keyword_stuffing", "link_farm"):
        if (i // 8) % 4 in (0, 1):
            return blocked_url_for(i)
        if (i // 8) % 4 == 2:
            return f"https://deals.example/{kind}/free-bonus-{i}"
    return f"https://junk.example/{kind}/{i}"


def edit_words(text: str, rate: float, rng: random.Random) -> str:
    """A near-duplicate: replace, drop or duplicate about `rate` of the words (keeps line breaks)."""
    lines = text.split("\n")
    out = []
    for line in lines:
        words = line.split(" ")
        new = []
        for w in words:
            r = rng.random()
            if r < rate / 3:
                continue  # drop
            if r < 2 * rate / 3:
                new.append(rng.choice(_CONTENT_WORDS))  # replace
                continue
            new.append(w)
            if r < rate:
                new.append(w)  # duplicate
        out.append(" ".join(new))
    return "\n".join(out)


_LICENCES = (
    "# Licensed under the MIT License. See LICENSE file in the project root for full license information.",
    '# Licensed under the Apache License, Version 2.0 (the "License"); you may not use this file\n'
    "# except in compliance with the License. You may obtain a copy at http-colon-slash-slash apache.org.",
    "# SPDX-License-Identifier: BSD-3-Clause",
)


def code_file(text: str, rng: random.Random, f: _Fakers) -> tuple[str, list[tuple[str, str]]]:
    """A repository file: licence header with an author e-mail, sometimes config secrets and hosts."""
    pii: list[tuple[str, str]] = []
    email = f.en.email()
    pii.append(("email", email))
    header = f"# Copyright (c) {rng.randint(2005, 2024)} {f.en.name()} <{email}>\n{rng.choice(_LICENCES)}\n\n"
    config = ""
    if rng.random() < 0.6:
        name, secret = fake_secret(rng)
        ip4 = f.en.ipv4_public()
        config = f'{name} = "{secret}"\nDB_HOST = "{ip4}"\n'
        pii += [("key", secret), ("ip", ip4)]
        if rng.random() < 0.5:
            ip6 = f.en.ipv6()
            if rng.random() < 0.5:
                import ipaddress

                ip6 = ipaddress.IPv6Address(ip6).compressed
            config += f'IPV6_MIRROR = "{ip6}"\n'
            pii.append(("ip", ip6))
        config += "\n"
    return header + config + text, pii


def _side_rng(seed: int, part: str, i: int) -> random.Random:
    """A generator of its own for one part of one document: adding a part leaves the others unchanged."""
    return random.Random(f"{part}-{seed}-{i}")


def gutenberg_file(title: str, text: str, rng: random.Random) -> str:
    """A book as Project Gutenberg ships it: header, START marker, the text, END marker, licence."""
    return add_gutenberg_boilerplate(display_title(title), text, rng)


GENERATED_KINDS = ("autogenerated", "minified", "minified_wrapped", "data_table")


def generated_code(i: int, rng: random.Random, side: random.Random) -> tuple[str, str]:
    """(subtype, file) of the i-th generated code file, cycling through GENERATED_KINDS (MIT-licensed, so
    the licence rule keeps them and BigCode's filters must catch them)."""
    kind = GENERATED_KINDS[i % len(GENERATED_KINDS)]
    if kind == "autogenerated":
        return kind, add_spdx(autogen_file(rng), "MIT")
    if kind == "minified":
        return kind, minified_file(side)
    if kind == "minified_wrapped":
        return kind, minified_file(side, wrap=500)
    return kind, data_file(side)


def autogen_file(rng: random.Random) -> str:
    """An auto-generated file: a 'do not edit' header and a long machine-written data table."""
    values = ",".join(str(rng.randint(0, 2**31)) for _ in range(rng.randint(400, 900)))
    return (
        "# -*- coding: utf-8 -*-\n# Generated by the protocol buffer compiler.  DO NOT EDIT!\n"
        f"# source: schema_{rng.randint(1, 999)}.proto\n\n_SERIALIZED = [{values}]\n"
    )


def article_paragraphs(rng: random.Random) -> list[str]:
    """4-7 prose paragraphs drawn from the documentation pool."""
    pool = english_paragraphs()
    return [pool[i] for i in rng.sample(range(len(pool)), rng.randint(4, 7))]


def non_english_page(rng: random.Random, f: _Fakers) -> tuple[str, str]:
    """A page in another language: sentences generated from that locale's Faker word list."""
    loc = NON_ENGLISH_LOCALES[rng.randrange(len(NON_ENGLISH_LOCALES))]
    fk = f.loc[loc]
    paras = [fk.paragraph(nb_sentences=rng.randint(5, 9)) for _ in range(rng.randint(3, 6))]
    return render_page(fk.sentence(nb_words=5), paras, rng.randrange(len(_TEMPLATES)), rng), loc[:2]


def broken_docs(n: int, rng: random.Random, big_mb: int = 10) -> list[tuple[bytes, str, str]]:
    """Adversarial inputs as (raw bytes, subtype, kind): empty, whitespace, binary, no body, one huge page."""
    kinds = ["empty", "whitespace", "invalid_utf8", "no_body"]
    out: list[tuple[bytes, str, str]] = [
        (
            (("<p>" + "all work and no play makes jack a dull boy. " * 22 + "</p>\n") * 1100 * big_mb),
            "huge",
            "web",
        )
    ]
    out[0] = (out[0][0].encode()[: big_mb * 2**20], "huge", "web")
    for i in range(max(0, n - 1)):
        k = kinds[i % len(kinds)]
        if k == "empty":
            out.append((b"", k, "web"))
        elif k == "whitespace":
            out.append((b" \n\t  \r\n " * rng.randint(1, 20), k, "web"))
        elif k == "invalid_utf8":
            out.append(
                (bytes(rng.randrange(256) for _ in range(rng.randint(64, 512))) + b"\xff\xfe", k, "code")
            )
        else:
            out.append(
                (b"<html><head><title>Redirecting</title><meta http-equiv='refresh'></head></html>", k, "web")
            )
    return out
