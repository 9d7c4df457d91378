"""The URL filter equals datatrove's URLFilter given the same lists, URL by URL."""

from __future__ import annotations

import pytest

from workshop_utils.data import urls
from workshop_utils.data.crawl import build_crawl

LISTED = urls.blocked_domains()[8]  # loan-deal8.click: one soft word, no banned word
TRICKY = [
    f"https://www.{LISTED}/p/1",  # a block-listed domain behind www.
    f"https://{LISTED}.mirror.example/",  # the domain as a subdomain of another site: kept
    "https://news.example/free/offer",  # one soft word: kept
    "https://news.example/free-bonus/today",  # two soft words
    "https://news.example/CASINO/",  # datatrove splits without lower-casing: kept
    "https://news.example/casinos-of-monaco",  # a word containing a banned word: kept
    "https://news.example/casino-history",
    "http://xxx.example/",
]


def test_block_list_is_deterministic_and_unique():
    assert urls.blocked_domains() == urls.blocked_domains() and len(set(urls.blocked_domains())) == 200


@pytest.mark.filterwarnings("ignore:The 'registered_domain' property is deprecated")
def test_equal_to_datatrove_url_filter():
    pytest.importorskip("datatrove")
    pytest.importorskip("tldextract")
    from datatrove.data import Document

    from workshop_utils.data.datatrove_blocks import UrlFilter

    dt = UrlFilter()
    crawl = [d.url for d in build_crawl(400, seed=1) if d.kind == "web"]
    blocked = 0
    for url in crawl + TRICKY:
        verdict = dt.filter(Document(text="x", id="0", metadata={"url": url, "kind": "web"}))
        theirs = "" if verdict is True else verdict[1].removeprefix("url_filter:")
        assert urls.url_reason(url) == theirs, url
        blocked += bool(theirs)
    assert blocked > 20  # the comparison covers blocked URLs, not only kept ones


def test_reasons_on_tricky_urls():
    got = [urls.url_reason(u) for u in TRICKY]
    assert got == ["domain", "", "", "soft_blacklisted", "", "", "hard_blacklisted", "hard_blacklisted"]


def test_books_and_code_skip_the_url_filter():
    assert urls.url_batch([f"https://www.{LISTED}/"] * 3, ["web", "book", "code"]) == ["domain", "", ""]


def test_bad_url_is_refused():
    with pytest.raises(ValueError, match="url"):
        urls.url_reason("")
