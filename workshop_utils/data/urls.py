"""The URL filter: the first cut of a web pipeline, before a page's body is even parsed.

RefinedWeb blocks 4.6M domains plus a word-based URL score; FineWeb runs datatrove's `URLFilter` right
after reading the WARC files. The rule, as datatrove implements it (`pipeline/filters/url_filter.py`):
drop a page when its registered domain or its full host name is on a block list, when a banned word is a
word of the URL, or when at least two "soft" words are. Our block list is generated (the real lists are
millions of adult, gambling and malware domains); `tests/test_data_urls.py` checks this function against
datatrove's `URLFilter` with the same lists, URL by URL.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

_SPAM_STEMS = ("casino", "bonus", "pills", "cheap", "deal", "win", "bet", "slots", "loan", "crypto")
_SPAM_TLDS = ("xyz", "top", "biz", "click", "info")
BANNED_WORDS = frozenset({"casino", "xxx", "porn"})  # one in the URL's words is enough
SOFT_BANNED_WORDS = frozenset({"cheap", "free", "bonus", "pills", "win", "deal"})  # two are
SOFT_WORD_THRESHOLD = 2
_WORD = re.compile(r"[^a-zA-Z0-9]+")  # datatrove's URL word splitter


@lru_cache(maxsize=1)
def blocked_domains() -> tuple[str, ...]:
    """The generated block list: 200 spam domains `<stem>-<stem><n>.<tld>` (deterministic)."""
    out = []
    for n in range(200):
        a, b = _SPAM_STEMS[n % 10], _SPAM_STEMS[(n // 10 + 3) % 10]
        out.append(f"{a}-{b}{n}.{_SPAM_TLDS[n % 5]}")
    return tuple(out)


def blocked_url_for(i: int) -> str:
    """A URL on the block list for the i-th spam page of the crawl generator (no random draw)."""
    domains = blocked_domains()
    host = domains[(7 * i) % len(domains)]
    return f"https://{'www.' if i % 3 == 0 else ''}{host}/p/{i}"


@lru_cache(maxsize=1)
def _extractor():
    """tldextract with its bundled public-suffix snapshot: no download (the default fetches it)."""
    from tldextract import TLDExtract

    return TLDExtract(suffix_list_urls=())


def url_reason(url: str, domains: frozenset[str] | None = None) -> str:
    """Why the URL filter drops `url` ("" = kept): domain, subdomain, hard_blacklisted, soft_blacklisted."""
    if not isinstance(url, str) or not url:
        raise ValueError(f"url must be a non-empty string, got {url!r}")
    domains = frozenset(blocked_domains()) if domains is None else domains
    parts = _extractor()(url)
    if parts.top_domain_under_public_suffix in domains:
        return "domain"
    if parts.fqdn in domains:
        return "subdomain"
    words = set(_WORD.split(url))  # as datatrove: case kept
    if words & BANNED_WORDS:
        return "hard_blacklisted"
    if len(words & SOFT_BANNED_WORDS) >= SOFT_WORD_THRESHOLD:
        return "soft_blacklisted"
    return ""


def url_batch(urls: Sequence[str], kinds: Sequence[str]) -> list[str]:
    """Stage url_filter over a batch: a reason per document; books and code come from their own sources."""
    domains = frozenset(blocked_domains())
    return [url_reason(u, domains) if k == "web" else "" for u, k in zip(urls, kinds)]
