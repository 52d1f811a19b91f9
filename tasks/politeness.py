"""A polite HTTP fetcher for one site: robots.txt, rate limit, Retry-After, backoff, caps.

One fetcher serves one host from one task, so the per-host rate limit holds without any
coordination between workers (the flow never gives two tasks the same site). Every response
keeps its raw bytes so the page can be stored exactly as served; what the crawler reads is
that body with its Content-Encoding undone, up to ``max_decoded_bytes``.

Every wait is bounded, so a hostile or broken site fails alone instead of stalling the run:

- a robots.txt ``Crawl-delay`` (the interval between requests) by ``max_crawl_delay_seconds``:
  a longer one fails the site at once;
- a ``Retry-After`` pause by ``max_retry_after_seconds``: a longer one fails the page;
- backoff after an error without Retry-After by :func:`backoff_seconds`' 30 s cap, at most
  ``max_retries`` times per URL;
- a request's slot in the rate limit by the interval above times the ``concurrency``
  requests queued ahead of it, plus any of the (capped) pauses;
- each connect, read and write by ``timeout_seconds``, a whole response body by four times
  that, and a site whose requests keep timing out by ``max_consecutive_timeouts`` in a row;
- the whole crawl by ``max_requests``;
- a request's slot in the rate shared with other runs crawling the site
  (``tasks/sharedlimit.py``) by ``max_shared_wait_seconds``.
"""

from __future__ import annotations

import random
import threading
import time
import zlib
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Protocol
from urllib.parse import urljoin, urlsplit

import httpx
from protego import Protego

from sites.loader import Politeness
from sites.sections import DEFAULT_CONTENT_TYPES

RETRY_STATUSES = {429, 500, 502, 503, 504}
REDIRECT_STATUSES = {301, 302, 303, 307, 308}


class FetchError(RuntimeError):
    """A URL could not be fetched after the allowed retries; the message says why."""


class CrawlAborted(FetchError):
    """The whole crawl of the site must stop (not just this URL); the message says why."""


class RequestCapReached(CrawlAborted):
    """The crawl sent as many requests as the site's ``max_requests`` allows: stop it."""


class CrawlDelayTooLong(CrawlAborted):
    """robots.txt asks for a Crawl-delay above ``max_crawl_delay_seconds``: fail the site."""


class SiteUnresponsive(CrawlAborted):
    """``max_consecutive_timeouts`` requests in a row timed out: give the site up."""


class ResponseTooSlow(FetchError):
    """A response kept coming for longer than its overall deadline (a trickling server)."""


class UndecodableBody(FetchError):
    """A body's Content-Encoding cannot be undone (unknown coding, corrupt data)."""


class DecodedTooLarge(UndecodableBody):
    """A body inflates past ``max_decoded_bytes`` (a gzip bomb, or a page far too large)."""


@dataclass(frozen=True)
class Exchange:
    """One HTTP request and its response, as sent and received (body undecoded).

    Every exchange the fetcher completes, including retried errors and redirect hops, is
    handed to the fetcher's ``record`` callback, so the page backup holds what happened.
    """

    url: str
    request_headers: list[tuple[str, str]]
    status: int
    reason: str
    http_version: str
    response_headers: list[tuple[str, str]]
    body: bytes
    fetched_at: float
    kind: str

    @property
    def content_type(self) -> str:
        """The response's Content-Type header ('' when absent)."""
        return _header(self.response_headers, "Content-Type") or ""


@dataclass(frozen=True)
class Fetched:
    """The final response of a successful GET: the exchange, how many attempts it took and
    its body with any Content-Encoding undone (what pages are extracted from, images stored
    as)."""

    exchange: Exchange
    attempts: int
    content: bytes

    @property
    def url(self) -> str:
        """The final URL, after redirects."""
        return self.exchange.url

    @property
    def body(self) -> bytes:
        """The body as the page's content: decoded, at most ``max_decoded_bytes``."""
        return self.content

    @property
    def content_type(self) -> str:
        """The response's Content-Type."""
        return self.exchange.content_type


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def backoff_seconds(attempt: int, base: float = 0.5, cap: float = 30.0) -> float:
    """Exponential backoff with full jitter for retry ``attempt`` (1-based), at most ``cap``."""
    return random.uniform(0, min(cap, base * 2 ** (attempt - 1)))


# zlib window bits per Content-Encoding: gzip framing, zlib framing (deflate as RFC 9110
# defines it; raw deflate, which some servers send under that name, is tried after it).
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


def decode_content(body: bytes, content_encoding: str | None, cap: int, url: str) -> bytes:
    """``body`` with its Content-Encoding undone, never more than ``cap`` bytes in memory.

    We ask for ``identity``, but a server may compress anyway, and a gzip bomb is a few MB on
    the wire and GiBs inflated: zlib's ``max_length`` stops inflating one byte past the cap,
    and a body that reaches it raises DecodedTooLarge naming the URL and both sizes. An
    unknown coding or corrupt data raises UndecodableBody.
    """
    codings = [c.strip().lower() for c in (content_encoding or "").split(",") if c.strip()]
    data = body
    for coding in reversed(codings):  # the last coding listed was applied last
        if coding == "identity":
            continue
        if coding not in _WBITS:
            raise UndecodableBody(
                f"{url}: Content-Encoding {coding!r} cannot be decoded (the crawler asks for "
                "identity and undoes gzip and deflate only)"
            )
        data = _inflate(data, coding, cap, url, len(body))
    if len(data) > cap:
        raise DecodedTooLarge(
            f"{url}: {len(data)} bytes is more than the {cap}-byte cap "
            "(politeness.max_decoded_bytes); raise it in the site file if such pages are genuine"
        )
    return data


def _inflate(data: bytes, coding: str, cap: int, url: str, received: int) -> bytes:
    """Inflate one coding of ``data``, stopping one byte past ``cap``."""
    error: zlib.error | None = None
    for wbits in [_WBITS[coding]] + ([-zlib.MAX_WBITS] if coding == "deflate" else []):
        try:
            out = zlib.decompressobj(wbits).decompress(data, cap + 1)
        except zlib.error as exc:
            error = exc
            continue
        if len(out) > cap:
            raise DecodedTooLarge(
                f"{url}: {received} bytes received with Content-Encoding {coding} inflate to "
                f"more than the {cap}-byte cap (politeness.max_decoded_bytes); stopped there. "
                "Raise that key in the site file if such pages are genuine"
            )
        return out
    raise UndecodableBody(f"{url}: body is not valid {coding} data ({error})")


# What a page must be served as unless its site declares otherwise (sites/sections.py):
# anything else is refused (and, read back from the WARC, skipped), so a PDF or a JSON error
# body is never taken for a page.
PAGE_TYPES = DEFAULT_CONTENT_TYPES["lot"]


def accepted(content_type: str, expect: tuple[str, ...] = PAGE_TYPES) -> bool:
    """Whether a response of ``content_type`` is one of the ``expect``ed types."""
    return any(content_type.strip().lower().startswith(wanted) for wanted in expect)


class RequestSlot(Protocol):
    """A slot each request holds besides the fetcher's own pacing (a rate shared across runs)."""

    def slot(self, url: str) -> AbstractContextManager[None]:
        """Held for the length of one request to ``url``."""
        ...


DISALLOW_ALL = "User-agent: *\nDisallow: /"
MAX_REDIRECTS = 5


@dataclass
class PoliteFetcher:
    """Fetches pages from one site within its politeness settings.

    Only ``allowed_hosts`` are contacted, and every redirect hop is checked against them and
    against robots.txt: links and redirects on a scraped page cannot send a compute node to
    an internal address.
    """

    user_agent: str
    politeness: Politeness
    allowed_hosts: frozenset[str]
    record: Callable[[Exchange], None] = lambda exchange: None
    shared: RequestSlot | None = None
    client: httpx.Client = field(init=False)
    _robots: dict[str, Protego] = field(default_factory=dict, init=False)
    _robots_errors: dict[str, str] = field(default_factory=dict, init=False)
    _next_request_at: float = field(default=0.0, init=False)
    _paused_until: float = field(default=0.0, init=False)
    _timeouts_in_a_row: int = field(default=0, init=False)
    _aborted: str | None = field(default=None, init=False)
    requests_sent: int = field(default=0, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _robots_lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(
            headers={"User-Agent": self.user_agent, "Accept-Encoding": "identity"},
            timeout=self.politeness.timeout_seconds,
            follow_redirects=False,
        )

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()

    def __enter__(self) -> PoliteFetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _interval(self, url: str, kind: str) -> float:
        minimum = 1.0 / self.politeness.requests_per_second
        if kind == "robots":  # robots.txt itself: its Crawl-delay is not known yet
            return minimum
        robots = self._robots_for(url)
        delay = robots.crawl_delay(self.user_agent) if robots is not None else None
        if delay is None:
            return minimum
        cap = self.politeness.max_crawl_delay_seconds
        if not float(delay) <= cap:  # also refuses NaN
            parts = urlsplit(url)
            raise CrawlDelayTooLong(
                f"{parts.scheme}://{parts.netloc}/robots.txt asks {self.user_agent!r} for "
                f"Crawl-delay: {float(delay):g} s between requests, more than "
                f"politeness.max_crawl_delay_seconds ({cap:g} s) allows; the site is not "
                "crawled. Raise that key in the site file if this site really needs it"
            )
        return max(minimum, float(delay))

    def _wait_turn(self, url: str, kind: str) -> None:
        """Wait for this request's slot: one per interval for the host, across all threads.

        A pause the host asked for (Retry-After) while this thread was waiting holds it back
        too: it then takes a new slot after the pause.
        """
        interval = self._interval(url, kind)
        while True:
            with self._lock:
                if self._aborted is not None:
                    raise SiteUnresponsive(self._aborted)
                if self.requests_sent >= self.politeness.max_requests:
                    raise RequestCapReached(
                        f"{url}: this crawl reached its cap of {self.politeness.max_requests} "
                        "requests (politeness.max_requests in the site file)"
                    )
                start = max(time.monotonic(), self._next_request_at, self._paused_until)
                self._next_request_at = start + interval
            time.sleep(max(0.0, start - time.monotonic()))
            with self._lock:
                if self._paused_until <= start:
                    self.requests_sent += 1
                    return

    def _pause_host(self, seconds: float) -> None:
        """Hold every thread's next request back (the host asked us to slow down)."""
        with self._lock:
            until = time.monotonic() + seconds
            self._paused_until = max(self._paused_until, until)
            self._next_request_at = max(self._next_request_at, until)

    def _robots_for(self, url: str) -> Protego | None:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        with self._robots_lock:
            if origin not in self._robots:
                self._fetch_robots(origin)
        return self._robots[origin]

    def _fetch_robots(self, origin: str) -> None:
        """Fetch and parse ``origin``'s robots.txt, following RFC 9309 on errors.

        It goes the way of every request (host check on each redirect hop, rate limit, size
        cap, into the WARC), except that robots.txt cannot be asked about itself. Its body is
        decoded like a page's.
        """
        url = f"{origin}/robots.txt"
        try:
            exchange = self._get_capped(url, "robots")
            body = decode_content(
                exchange.body,
                _header(exchange.response_headers, "Content-Encoding"),
                self.politeness.max_decoded_bytes,
                url,
            )
        except CrawlAborted:
            raise
        except (httpx.HTTPError, FetchError) as exc:
            # RFC 9309 2.3.1.4: robots.txt unreachable -> assume complete disallow.
            self._robots[origin] = Protego.parse(DISALLOW_ALL)
            self._robots_errors[origin] = f"{type(exc).__name__}: {exc}"
            return
        # RFC 9309: 4xx means no restrictions; 5xx means assume disallow-all.
        if exchange.status >= 500:
            text = DISALLOW_ALL
        elif exchange.status >= 400:
            text = ""
        else:
            text = body.decode("utf-8", errors="replace")
        self._robots[origin] = Protego.parse(text)

    def allowed(self, url: str) -> bool:
        """Whether robots.txt lets our user agent fetch ``url``."""
        robots = self._robots_for(url)
        return robots is None or bool(robots.can_fetch(url, self.user_agent))

    def check(self, url: str, kind: str = "page") -> None:
        """Raise FetchError unless ``url`` is http(s), on an allowed host, allowed by robots.txt
        (robots.txt itself only needs the host check)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or parts.hostname not in self.allowed_hosts:
            raise FetchError(
                f"{url}: not on this site's hosts ({', '.join(sorted(self.allowed_hosts))}); "
                "add the host to the site's extra_hosts if it belongs to the site"
            )
        if kind == "robots":
            return
        if not self.allowed(url):
            origin = f"{parts.scheme}://{parts.netloc}"
            if origin in self._robots_errors:
                raise FetchError(
                    f"{url}: {origin}/robots.txt could not be fetched "
                    f"({self._robots_errors[origin]}); RFC 9309 says to assume all is disallowed"
                )
            raise FetchError(f"{url}: disallowed by robots.txt for {self.user_agent!r}")

    def get(self, url: str, kind: str, expect: tuple[str, ...] = PAGE_TYPES) -> Fetched:
        """GET ``url`` politely; retry 429/5xx and network errors; raise FetchError otherwise.

        ``kind`` (listing, lot, image) labels the exchanges in the page backup. A timeout
        counts towards ``max_consecutive_timeouts`` (SiteUnresponsive past it); the body is
        decoded within ``max_decoded_bytes`` (DecodedTooLarge past it, the response staying
        in the page backup as received).
        """
        attempts = 0
        while True:
            attempts += 1
            try:
                exchange = self._get_capped(url, kind)
            except (httpx.TimeoutException, ResponseTooSlow) as exc:
                self._timed_out(exc)
                if attempts > self.politeness.max_retries:
                    raise FetchError(f"{url}: {type(exc).__name__}: {exc}") from exc
                self._pause_host(backoff_seconds(attempts))
                continue
            except httpx.HTTPError as exc:
                if attempts > self.politeness.max_retries:
                    raise FetchError(f"{url}: {type(exc).__name__}: {exc}") from exc
                self._pause_host(backoff_seconds(attempts))
                continue
            status = exchange.status
            if status in RETRY_STATUSES and attempts <= self.politeness.max_retries:
                # The whole host slows down, not just this thread.
                self._pause_host(self._retry_wait(url, exchange, attempts))
                continue
            if status >= 400:
                raise FetchError(f"{url}: HTTP {status} after {attempts} attempt(s)")
            content_type = exchange.content_type
            if not accepted(content_type, expect):
                received = content_type.split(";")[0].strip() or "none"
                raise FetchError(
                    f"{url}: content type {content_type!r}, expected one of {', '.join(expect)}"
                    f" (if the site serves {kind} pages as {received}, add it to "
                    f"content_types.{kind} in the site file)"
                )
            encoding = _header(exchange.response_headers, "Content-Encoding")
            content = decode_content(
                exchange.body, encoding, self.politeness.max_decoded_bytes, url
            )
            return Fetched(exchange, attempts, content)

    def _retry_wait(self, url: str, exchange: Exchange, attempts: int) -> float:
        """How long to pause the host before retrying ``url``: its Retry-After (FetchError
        above ``max_retry_after_seconds``), else the backoff for this attempt."""
        wait = retry_after_seconds(_header(exchange.response_headers, "Retry-After"))
        if wait is None:
            return backoff_seconds(attempts)
        cap = self.politeness.max_retry_after_seconds
        if wait > cap:
            raise FetchError(
                f"{url}: HTTP {exchange.status} asks to retry after {wait:.0f} s, more than "
                f"politeness.max_retry_after_seconds ({cap:g} s) allows"
            )
        return wait

    def _timed_out(self, exc: Exception) -> None:
        """Count a timed-out attempt; at ``max_consecutive_timeouts`` in a row (no response
        in between), stop the whole crawl: every further request fails at once."""
        limit = self.politeness.max_consecutive_timeouts
        with self._lock:
            self._timeouts_in_a_row += 1
            if self._timeouts_in_a_row < limit:
                return
            if self._aborted is None:
                self._aborted = (
                    f"{limit} requests in a row timed out (politeness.max_consecutive_timeouts; "
                    f"last: {type(exc).__name__}: {exc}); the site stopped answering, so it is "
                    "given up. Raise that key or politeness.timeout_seconds if it is only slow"
                )
            message = self._aborted
        raise SiteUnresponsive(message) from exc

    def _get_capped(self, url: str, kind: str) -> Exchange:
        """GET following at most MAX_REDIRECTS redirects, each hop checked like the first."""
        self.check(url, kind)
        for _ in range(MAX_REDIRECTS + 1):
            exchange = self._get_one(url, kind)
            location = _header(exchange.response_headers, "Location")
            if exchange.status not in REDIRECT_STATUSES or not location:
                return exchange
            url = urljoin(url, location)
            self.check(url, kind)
        raise FetchError(f"{url}: more than {MAX_REDIRECTS} redirects")

    def _get_one(self, url: str, kind: str) -> Exchange:
        """One GET in its rate-limit slot, body capped at ``max_page_bytes`` (larger: error).

        httpx's timeout applies to each read; a server trickling bytes is stopped by an
        overall deadline of four times that.
        """
        self._wait_turn(url, kind)
        cap = self.politeness.max_page_bytes
        shared = self.shared.slot(url) if self.shared is not None else nullcontext()
        with shared:  # the wait for other runs is not the response's time
            deadline = time.monotonic() + 4 * self.politeness.timeout_seconds
            with self.client.stream("GET", url) as response:
                chunks, size = [], 0
                for chunk in response.iter_raw():
                    size += len(chunk)
                    if size > cap:
                        raise FetchError(f"{url}: page larger than the {cap}-byte cap")
                    if time.monotonic() > deadline:
                        raise ResponseTooSlow(
                            f"{url}: response took over {4 * self.politeness.timeout_seconds:g} s"
                        )
                    chunks.append(chunk)
                exchange = Exchange(
                    url=url,
                    request_headers=response.request.headers.multi_items(),
                    status=response.status_code,
                    reason=response.reason_phrase,
                    http_version=response.http_version,
                    response_headers=response.headers.multi_items(),
                    body=b"".join(chunks),
                    fetched_at=time.time(),
                    kind=kind,
                )
        with self._lock:
            self._timeouts_in_a_row = 0  # the site answered
        self.record(exchange)
        return exchange


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    """The first value of header ``name`` (case-insensitive), or None."""
    for key, value in headers:
        if key.lower() == name.lower():
            return value
    return None
