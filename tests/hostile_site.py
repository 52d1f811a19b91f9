"""A hostile auction house on loopback: one misbehaving scenario per server, for the tests.

The hostile-input suite (``tests/test_hostile_fetch.py``, and end-to-end runs that put one
hostile house among the three demo houses) needs a real HTTP peer that misbehaves the way
real sites and broken proxies do, reproducibly. This server serves the demo's Harrow & Finch
sale (:mod:`sites.demo.pages` markup, under ``/harrow-finch``), so a copy of
``sites/harrow-finch.yaml`` with another ``name`` and ``base_url`` scrapes it unchanged
(:func:`write_site_file` writes one), and one scenario bends it. robots.txt is per origin, so
each scenario gets its own server (its own port).

Usage::

    with HostileSite() as server:
        base_url = server.start("gzip-bomb")        # http://127.0.0.1:<port>/harrow-finch
        site_file = write_site_file(tmp_path, "gzip-bomb", base_url)
        ...                                          # load_site_file(site_file), scrape, process
        server.requests()                            # every request received, in order

The sale is :data:`DAY` (any date works; the tests use this one) with :data:`LOTS` lots on one
listing page and one image per lot. "The first lot" below is lot 1 of that sale; a scenario
that hits one lot leaves the others intact, under the 10 % lot-failure limit of a crawl.

=====================  =====================================================================
scenario               what the server does
=====================  =====================================================================
normal                 nothing hostile (the baseline)
huge-page              the first lot page is :data:`HUGE_PAGE_BYTES` (6 MB, over the 5 MB cap)
gzip-page              the first lot page is gzip-compressed, ``Content-Encoding: gzip``,
                       although the crawler asks for ``identity`` (a legitimate page)
gzip-bomb              the first lot page is a gzip bomb: about 3 MB on the wire, the page
                       followed by :data:`BOMB_DECODED_BYTES` (3 GiB) of spaces once inflated;
                       generated as it is sent, never held inflated in memory
wrong-content-type     the first lot page is served as ``application/pdf``
bad-charset            the first lot page declares ``charset=x-no-such-charset``; the second
                       declares ``utf-8`` and has bytes invalid in UTF-8 in its description
redirect-loop          the first lot page redirects (302) to itself, for ever
off-host-redirect      the first lot page redirects to ``localhost`` (another host name for
                       this same server: a request that arrives there is logged with it)
hanging                every lot page sends its headers, then nothing until the server stops
trickle                every lot page sends its headers, then one byte per second
retry-after            every listing and lot page answers 429 with ``Retry-After: 99999999``
server-error           every page but robots.txt answers 500
crawl-delay            robots.txt says ``Crawl-delay: 99999``
endless-pagination     every listing page ``?page=N`` exists and links to ``?page=N+1``
odd-prices             lots 1-5 read the results in :data:`ODD_PRICES`, the rest are normal
colliding-lot-urls     the listing links lots 1 and 2 as ``lot/<id1>?v=1`` and ``?v=2``, and
                       the others as ``lot/lot.php?id=<number>``: distinct lots whose URLs
                       share a last path segment
=====================  =====================================================================
"""

from __future__ import annotations

import contextlib
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import yaml

from sites.demo.catalogue import HOUSES, Catalogue, DemoConfig, DemoLot
from sites.demo.pages import format_result, render_listing, render_lot, render_robots
from sites.demo.server import route, serve_in_background, stop_serving

DAY = date(2026, 3, 14)
HOUSE = "harrow-finch"
_CONFIG = DemoConfig(lots_per_sale=12, page_size=100, images_per_lot=1)
LOTS = len(Catalogue(_CONFIG).lots(HOUSE, DAY))  # 14: the demo sizes a sale at random ±25 %
HUGE_PAGE_BYTES = 6_000_000
BOMB_DECODED_BYTES = 3 * 2**30
HUGE_RETRY_AFTER = "99999999"
CRAWL_DELAY = 99999.0
ODD_PRICES = (
    "Sold for £1e308",
    "-5",
    "£0.001",
    "Sold for £1.005",
    "Sold for £99999999999999999999",
)
SCENARIOS = (
    "normal",
    "huge-page",
    "gzip-page",
    "gzip-bomb",
    "wrong-content-type",
    "bad-charset",
    "redirect-loop",
    "off-host-redirect",
    "hanging",
    "trickle",
    "retry-after",
    "server-error",
    "crawl-delay",
    "endless-pagination",
    "odd-prices",
    "colliding-lot-urls",
)
HTML = "text/html; charset=utf-8"
TEMPLATE = Path(__file__).resolve().parent.parent / "sites" / "harrow-finch.yaml"
_CHUNK = 2**20  # the bomb's inflated unit: 1 MiB of spaces


@dataclass(frozen=True)
class Request:
    """One request the server received: path with query, the Host header, arrival time."""

    path: str
    host: str
    at: float


def bomb_chunks(page: bytes, inflated: int = BOMB_DECODED_BYTES) -> Iterator[bytes]:
    """A gzip stream of ``page`` followed by ``inflated`` bytes of spaces, piece by piece.

    Each 1 MiB of spaces is compressed after a full flush, which resets the compressor, so
    every such piece compresses to the same bytes: they are computed once and repeated, and
    the bomb is made in milliseconds with about 1 KiB per MiB on the wire.
    """
    spaces = b" " * _CHUNK
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    head = compressor.compress(page) + compressor.flush(zlib.Z_FULL_FLUSH)
    piece = compressor.compress(spaces) + compressor.flush(zlib.Z_FULL_FLUSH)
    tail = compressor.flush(zlib.Z_FINISH)
    crc = zlib.crc32(page)
    count = inflated // _CHUNK
    yield head
    for _ in range(count):
        crc = zlib.crc32(spaces, crc)
        yield piece
    # The gzip trailer: CRC-32 and size mod 2**32 of everything inflated. The final block of
    # the stream comes from the compressor's Z_FINISH, which after a full flush is the same
    # whatever came before it; its own trailer (for page + one piece) is replaced.
    size = (len(page) + count * _CHUNK) % 2**32
    yield tail[:-8] + crc.to_bytes(4, "little") + size.to_bytes(4, "little")


def write_site_file(
    directory: Path, scenario: str, base_url: str, politeness: dict[str, Any] | None = None
) -> Path:
    """Write ``<directory>/hostile-<scenario>.yaml``: harrow-finch.yaml for this server.

    A copy of the annotated template with ``name`` and ``base_url`` changed and, when given,
    ``politeness`` keys overridden (e.g. a short ``timeout_seconds`` so the hanging scenario
    ends in seconds). Point ``AUCTION_PIPELINE_SITES_DIR`` at ``directory`` (with the demo
    site files copied beside it) for an end-to-end run.
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
    data = yaml.safe_load(TEMPLATE.read_text(encoding="utf-8"))
    name = f"hostile-{scenario}"
    data["name"], data["base_url"] = name, base_url
    data["politeness"] = {**data.get("politeness", {}), **(politeness or {})}
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


class _Handler(BaseHTTPRequestHandler):
    """Answers one request the way the server's scenario says."""

    server_version = "HostileAuctionSite/1.0"

    def do_GET(self) -> None:
        hostile = cast(_Server, self.server).hostile
        hostile._log(self.path, self.headers.get("Host", ""))
        # The crawler giving up on a response (huge, bomb, hanging) is what it should do.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            hostile._answer(self)

    def reply(
        self, status: int, content_type: str, body: bytes, headers: tuple[tuple[str, str], ...] = ()
    ) -> None:
        """Send a complete response with a Content-Length."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the request log is kept on the server object instead."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], hostile: HostileSite) -> None:
        super().__init__(address, _Handler)
        self.hostile = hostile


class HostileSite:
    """The hostile auction house: ``start(scenario)`` serves it, ``stop()`` ends it."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        """Prepare a server on ``host`` (a free port is picked when it starts)."""
        self.host = host
        self.scenario = ""
        self.catalogue = Catalogue(_CONFIG)
        self.lots: list[DemoLot] = self.catalogue.lots(HOUSE, DAY)
        self._requests: list[Request] = []
        self._bomb = b""
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:<port>``: where robots.txt lives."""
        if self._server is None:
            raise RuntimeError("the hostile site is not running; call start(scenario) first")
        return f"http://{self.host}:{self._server.server_address[1]}"

    @property
    def base_url(self) -> str:
        """The site file's ``base_url``: the origin plus ``/harrow-finch``."""
        return f"{self.origin}/{HOUSE}"

    def lot_url(self, number: int) -> str:
        """The URL the listing gives for lot ``number`` (from 1) in this scenario."""
        lot = self.lots[number - 1]
        if self.scenario == "colliding-lot-urls":
            return self.base_url + "/lot/" + _colliding_href(self.lots[0], number)
        return f"{self.base_url}/lot/{lot.lot_id}"

    def start(self, scenario: str) -> str:
        """Serve ``scenario`` in a daemon thread; return the base URL for its site file."""
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
        if self._server is not None:
            raise RuntimeError("one scenario per server: stop() this one or start another")
        self.scenario = scenario
        self._stopping.clear()
        if scenario == "gzip-bomb":
            self._bomb = b"".join(bomb_chunks(render_lot(self.lots[0]).encode("utf-8")))
        self._server = _Server((self.host, 0), self)
        self._thread = serve_in_background(self._server, f"hostile-site-{scenario}")
        return self.base_url

    def stop(self) -> None:
        """Stop serving (hanging and trickling responses end too); safe when not running."""
        self._stopping.set()
        server, thread = self._server, self._thread
        self._server, self._thread = None, None
        stop_serving(server, thread)

    def __enter__(self) -> HostileSite:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def requests(self, prefix: str = "") -> list[Request]:
        """Every request so far whose path (with query) starts with ``prefix``, in order."""
        with self._lock:
            return [r for r in self._requests if r.path.startswith(prefix)]

    def _log(self, path: str, host: str) -> None:
        with self._lock:
            self._requests.append(Request(path, host, time.time()))

    # -- answers ------------------------------------------------------------------------------

    def _answer(self, handler: _Handler) -> None:
        """Dispatch one request: robots.txt, listing, lot page or image, per the scenario."""
        parts = urlsplit(handler.path)
        path, scenario = parts.path, self.scenario
        if path == "/robots.txt":
            delay = CRAWL_DELAY if scenario == "crawl-delay" else None
            handler.reply(200, "text/plain; charset=utf-8", render_robots(delay).encode())
            return
        if scenario == "server-error":
            handler.reply(500, HTML, b"<h1>500 Internal Server Error</h1>")
            return
        page = path.startswith(f"/{HOUSE}/auctions/") or path.startswith(f"/{HOUSE}/lot/")
        if scenario == "retry-after" and page:
            handler.reply(429, HTML, b"<h1>429</h1>", (("Retry-After", HUGE_RETRY_AFTER),))
            return
        if path.startswith(f"/{HOUSE}/auctions/"):
            self._listing(handler, parts.query)
        elif path.startswith(f"/{HOUSE}/lot/"):
            self._lot(handler, path.rpartition("/")[2], parse_qs(parts.query))
        else:
            reply = route(self.catalogue, handler.path)
            handler.reply(reply.status, reply.content_type, reply.body)

    def _listing(self, handler: _Handler, query: str) -> None:
        """The sale's one listing page (every page, linking the next, when endless)."""
        html = render_listing(self.catalogue, HOUSE, DAY, 1) or ""
        if self.scenario == "endless-pagination":
            page = int((parse_qs(query).get("page") or ["1"])[0])
            nav = f'<a class="next" href="?page={page + 1}">Next page</a>'
            html = html.replace("</nav>", f"{nav}</nav>")
        if self.scenario == "colliding-lot-urls":
            for number, lot in enumerate(self.lots, start=1):
                old, new = (
                    f'../lot/{lot.lot_id}"',
                    f'../lot/{_colliding_href(self.lots[0], number)}"',
                )
                html = html.replace(old, new)
        handler.reply(200, HTML, html.encode("utf-8"))

    def _lot(self, handler: _Handler, last_segment: str, query: dict[str, list[str]]) -> None:
        """A lot page; the scenario decides whether (and how) it misbehaves."""
        lot = self._lot_for(last_segment, query)
        if lot is None:
            handler.reply(404, HTML, b"<h1>404 Not Found</h1>")
            return
        number = self.lots.index(lot) + 1
        html = render_lot(lot)
        if self.scenario == "odd-prices" and number <= len(ODD_PRICES):
            html = html.replace(format_result(HOUSES[HOUSE], lot), ODD_PRICES[number - 1])
        body = html.encode("utf-8")
        hostile = getattr(self, "_lot_" + self.scenario.replace("-", "_"), None)
        if hostile is not None and (number == 1 or self.scenario in _EVERY_LOT):
            hostile(handler, lot, body, number)
        elif self.scenario == "bad-charset" and number == 2:
            bad = body.replace(
                b'<div class="lot-description"><p>',
                b'<div class="lot-description"><p>\xff\xfe\xc3(',
            )
            handler.reply(200, HTML, bad)
        else:
            handler.reply(200, HTML, body)

    def _lot_for(self, last_segment: str, query: dict[str, list[str]]) -> DemoLot | None:
        if self.scenario == "colliding-lot-urls":
            if last_segment == "lot.php":
                wanted = (query.get("id") or [""])[0]
                index = int(wanted) - 1 if wanted.isdigit() else -1
                return self.lots[index] if 2 <= index < len(self.lots) else None
            version = (query.get("v") or [""])[0]
            if last_segment == self.lots[0].lot_id and version in ("1", "2"):
                return self.lots[int(version) - 1]
            return None
        return self.catalogue.lot(HOUSE, last_segment)

    def _lot_huge_page(self, handler: _Handler, lot: DemoLot, body: bytes, number: int) -> None:
        filler = b" " * (HUGE_PAGE_BYTES - len(body))
        handler.send_response(200)
        handler.send_header("Content-Type", HTML)
        handler.send_header("Content-Length", str(HUGE_PAGE_BYTES))
        handler.end_headers()
        handler.wfile.write(body)
        for start in range(0, len(filler), _CHUNK):
            handler.wfile.write(filler[start : start + _CHUNK])

    def _lot_gzip_page(self, handler: _Handler, lot: DemoLot, body: bytes, number: int) -> None:
        compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        gzipped = compressor.compress(body) + compressor.flush()
        handler.reply(200, HTML, gzipped, (("Content-Encoding", "gzip"),))

    def _lot_gzip_bomb(self, handler: _Handler, lot: DemoLot, body: bytes, number: int) -> None:
        if not self._bomb:  # ~3 MB: the compressed form only, made once per server
            self._bomb = b"".join(bomb_chunks(body))
        handler.reply(200, HTML, self._bomb, (("Content-Encoding", "gzip"),))

    def _lot_wrong_content_type(
        self, handler: _Handler, lot: DemoLot, body: bytes, number: int
    ) -> None:
        handler.reply(200, "application/pdf", body)

    def _lot_bad_charset(self, handler: _Handler, lot: DemoLot, body: bytes, number: int) -> None:
        handler.reply(200, "text/html; charset=x-no-such-charset", body)

    def _lot_redirect_loop(self, handler: _Handler, lot: DemoLot, body: bytes, number: int) -> None:
        handler.reply(302, HTML, b"", (("Location", handler.path),))

    def _lot_off_host_redirect(
        self, handler: _Handler, lot: DemoLot, body: bytes, number: int
    ) -> None:
        port = urlsplit(self.origin).port
        handler.reply(302, HTML, b"", (("Location", f"http://localhost:{port}{handler.path}"),))

    def _lot_hanging(self, handler: _Handler, lot: DemoLot, body: bytes, number: int) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", HTML)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.flush()
        self._stopping.wait(120)  # until the server stops (bounded, so no thread is left)

    def _lot_trickle(self, handler: _Handler, lot: DemoLot, body: bytes, number: int) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", HTML)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        for index in range(len(body)):
            if self._stopping.wait(1.0):
                return
            handler.wfile.write(body[index : index + 1])
            handler.wfile.flush()


_EVERY_LOT = frozenset({"hanging", "trickle"})


def _colliding_href(first: DemoLot, number: int) -> str:
    """Lot ``number``'s href, relative to ``…/lot/``, in the colliding-lot-urls scenario:
    lots 1 and 2 are versions of the first lot's URL, the others ``lot.php?id=N``."""
    return f"lot.php?id={number}" if number > 2 else f"{first.lot_id}?v={number}"
