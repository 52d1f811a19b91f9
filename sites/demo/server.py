"""Serve the demo auction site over HTTP on loopback, with reproducible injected faults.

The demo and the tests need a real web server to scrape (robots.txt, pagination, 404s, 429s
with ``Retry-After``, slow and failing hosts) that behaves the same on every run; this module
routes URLs to the pure pages of :mod:`sites.demo.pages` and serves them from a background
thread, counting every request so tests can prove what was (re-)fetched.

Run it by hand with ``python -m sites.demo.server --port 8765``.
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import logging
import random
import re
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import cast
from urllib.parse import parse_qs, unquote, urlsplit

from sites.demo.catalogue import HOUSES, Catalogue, DemoConfig
from sites.demo.market_routes import MARKET_SEARCHES, route_marketplace
from sites.demo.marketplaces import MarketCatalogue, market_catalogue
from sites.demo.pages import render_index, render_listing, render_lot, render_robots

log = logging.getLogger(__name__)

HTML = "text/html; charset=utf-8"
TEXT = "text/plain; charset=utf-8"
PNG = "image/png"

_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class Reply:
    """One HTTP response: status, content type, body and any extra headers."""

    status: int
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


def _html(status: int, text: str) -> Reply:
    return Reply(status, HTML, text.encode("utf-8"))


def _error(status: int, message: str, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    page = f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{status}</title></head>'
    return Reply(
        status, HTML, f"{page}<body><h1>{status} {message}</h1></body></html>\n".encode(), headers
    )


def _not_found() -> Reply:
    return _error(404, "Not Found")


def _parse_day(text: str) -> date | None:
    """``YYYY-MM-DD`` as a date, or None for anything else (no other ISO spellings)."""
    if not _ISO_DAY.match(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _parse_page(query: str) -> int | None:
    """The ``page`` query parameter (1 when absent), or None when it is not one positive int."""
    values = parse_qs(query, keep_blank_values=True).get("page", ["1"])
    if len(values) != 1 or not values[0].isdigit():
        return None
    return int(values[0])


def route(catalogue: Catalogue, target: str, today: date | None = None) -> Reply:
    """The fault-free response to ``GET target`` (a path with optional query); pure.

    URL layout: ``/robots.txt``, ``/{house}/auctions/{YYYY-MM-DD}[?page=N]``,
    ``/{house}/lot/{lot_id}``, ``/images/{house}/{image_name}`` and ``/``, and the marketplaces
    under ``/ebay/``, ``/liveauctioneers/`` and ``/catawiki/`` (:mod:`sites.demo.market_routes`);
    all else is 404.
    """
    parts = urlsplit(target)
    path = unquote(parts.path)
    if path == "/robots.txt":
        return Reply(
            200,
            TEXT,
            render_robots(catalogue.config.crawl_delay, catalogue.config.disallow).encode("utf-8"),
        )
    if path == "/":
        return _html(200, render_index(today or date.today()))
    market = route_marketplace(catalogue, target)
    if market is not None:
        return Reply(*market)
    match path.split("/")[1:]:
        case ["images", house, name] if house in HOUSES:
            if catalogue.lot_for_image(house, name) is None:
                return _not_found()
            return Reply(200, PNG, catalogue.image_bytes(name))
        case [house, "auctions", day_text] if house in HOUSES:
            day, page = _parse_day(day_text), _parse_page(parts.query)
            if day is None or page is None:
                return _not_found()
            listing = render_listing(catalogue, house, day, page)
            return _not_found() if listing is None else _html(200, listing)
        case [house, "lot", lot_id] if house in HOUSES:
            lot = catalogue.lot(house, lot_id)
            if lot is None:
                return _not_found()
            return _html(200, render_lot(lot, house in catalogue.config.changed_layout))
    return _not_found()


class _Faults:
    """Decides which requests fail, from a seeded generator so a sequential run is reproducible.

    robots.txt is exempt from the random 500/429 faults: under RFC 9309 an unreachable
    robots.txt means "disallow everything", which would hide the retry behaviour under test.
    """

    def __init__(self, config: DemoConfig) -> None:
        self._rng = random.Random(f"demo-faults/{config.seed}")
        self._lock = threading.Lock()

    def reply_for(self, config: DemoConfig, target: str) -> Reply | None:
        """The error reply for this request under ``config``, or None to serve it normally.

        The generator is the site's for its whole life: reconfiguring keeps its sequence.
        """
        segments = unquote(urlsplit(target).path).split("/")[1:]
        house = segments[1] if segments[:1] == ["images"] and len(segments) > 1 else segments[0]
        if house in config.unreachable:
            return _error(503, "Service Unavailable")
        if target.startswith("/robots.txt"):
            return None
        with self._lock:
            draw = self._rng.random()
        if draw < config.error_rate:
            return _error(500, "Internal Server Error")
        if draw < config.error_rate + config.throttle_rate:
            return _error(429, "Too Many Requests", (("Retry-After", str(config.retry_after)),))
        return None


class _Handler(BaseHTTPRequestHandler):
    """Serves one request of the demo site; the site's state lives on the server object."""

    server_version = "DemoAuctionSite/1.0"

    def do_GET(self) -> None:
        self._serve(with_body=True)

    def do_HEAD(self) -> None:
        self._serve(with_body=False)

    def _serve(self, with_body: bool) -> None:
        site = cast(_Server, self.server).site
        site._record(self.path)
        served = site._served  # one configuration for the whole request, even if swapped
        if served.config.latency > 0:
            time.sleep(served.config.latency)
        reply = site._faults.reply_for(served.config, self.path) or route(
            served.catalogue, self.path
        )
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers:
                self.send_header(name, value)
            self.end_headers()
            if with_body:
                self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            log.debug("client went away before the reply to %s was sent", self.path)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s %s", self.address_string(), format % args)


def serve_in_background(server: ThreadingHTTPServer, name: str) -> threading.Thread:
    """Serve ``server`` in a daemon thread, polling for shutdown every 50 ms so that stopping
    it (and each test using it) returns quickly."""
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True
    )
    thread.start()
    return thread


def stop_serving(server: ThreadingHTTPServer | None, thread: threading.Thread | None) -> None:
    """Stop a server started by :func:`serve_in_background` and release its port."""
    if server is not None:
        server.shutdown()
        server.server_close()
    if thread is not None:
        thread.join()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], site: DemoSite) -> None:
        super().__init__(address, _Handler)
        self.site = site


@dataclass(frozen=True)
class _Served:
    """What the site serves from: one configuration and the catalogues built from it."""

    config: DemoConfig
    catalogue: Catalogue
    market_catalogue: MarketCatalogue

    @classmethod
    def of(cls, config: DemoConfig) -> _Served:
        """Both catalogues for ``config``; raises ValueError on a bad marketplace knob."""
        return cls(config, Catalogue(config), market_catalogue(config))


class DemoSite:
    """The demo auction site served from a background thread; use it as a context manager.

    ``with DemoSite(DemoConfig(lots_per_sale=5)) as site: httpx.get(site.url + "/robots.txt")``;
    ``site.reconfigure(market_time=...)`` moves the marketplaces' clock between requests.
    """

    def __init__(
        self, config: DemoConfig | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        """Prepare a site for ``config``; port 0 picks a free port when the site starts."""
        self._served = _Served.of(config or DemoConfig())
        self.host = host
        self.port = port
        self._faults = _Faults(self._served.config)
        self._paths: list[str] = []
        self._arrivals: list[float] = []
        self._lock = threading.Lock()
        self._config_lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def config(self) -> DemoConfig:
        """The configuration the next request is served from."""
        return self._served.config

    @property
    def catalogue(self) -> Catalogue:
        """The houses' catalogue of the current configuration."""
        return self._served.catalogue

    @property
    def market_catalogue(self) -> MarketCatalogue:
        """The marketplaces' catalogue of the current configuration (as of its market time)."""
        return self._served.market_catalogue

    def reconfigure(self, **changes: object) -> DemoConfig:
        """Serve ``dataclasses.replace(config, **changes)`` from the next request on; return it.

        Atomic and thread-safe: the new configuration and its catalogues are built first (a
        bad value raises and changes nothing), then swapped in one step; a request already
        being served finishes with the configuration it started with. The fault generator
        carries on its sequence. E.g. ``site.reconfigure(market_time=datetime(2026, 3, 15,
        12, tzinfo=UTC))``.
        """
        known = {f.name for f in dataclasses.fields(DemoConfig)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise TypeError(
                f"DemoSite.reconfigure: unknown DemoConfig field(s) {unknown}; "
                f"known: {', '.join(sorted(known))}"
            )
        with self._config_lock:
            served = _Served.of(dataclasses.replace(self._served.config, **changes))  # type: ignore[arg-type]
            self._served = served
        log.info("demo site reconfigured: %s", ", ".join(f"{k}={v!r}" for k, v in changes.items()))
        return served.config

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. ``http://127.0.0.1:41234``."""
        if self._server is None:
            raise RuntimeError("the demo site is not running; use 'with DemoSite() as site:'")
        return f"http://{self.host}:{self._server.server_address[1]}"

    def start(self) -> DemoSite:
        """Bind the port and serve in a daemon thread; return self."""
        if self._server is not None:
            raise RuntimeError("the demo site is already running")
        self._server = _Server((self.host, self.port), self)
        self._thread = serve_in_background(self._server, "demo-auction-site")
        log.info("demo auction site serving at %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving and release the port; safe to call when not running."""
        server, thread = self._server, self._thread
        self._server, self._thread = None, None
        stop_serving(server, thread)

    def __enter__(self) -> DemoSite:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def request_count(self, prefix: str = "") -> int:
        """How many requests so far had a path (with query) starting with ``prefix``."""
        with self._lock:
            return sum(1 for path in self._paths if path.startswith(prefix))

    def requested_paths(self) -> list[str]:
        """Every requested path (with query) so far, in arrival order."""
        with self._lock:
            return list(self._paths)

    def request_log(self) -> list[tuple[float, str]]:
        """Every request so far as (arrival time by ``time.monotonic()``, path), in order:
        what a site operator's access log shows, to judge a crawler's rate."""
        with self._lock:
            return list(zip(self._arrivals, self._paths, strict=True))

    def _record(self, path: str) -> None:
        with self._lock:
            self._arrivals.append(time.monotonic())
            self._paths.append(path)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="auction-pipeline demo-site", description="Serve the demo auction site."
    )
    defaults = DemoConfig()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--lots-per-sale", type=int, default=defaults.lots_per_sale)
    parser.add_argument("--page-size", type=int, default=defaults.page_size)
    parser.add_argument("--images-per-lot", type=int, default=defaults.images_per_lot)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added per response")
    parser.add_argument("--error-rate", type=float, default=0.0, help="fraction answered 500")
    parser.add_argument("--throttle-rate", type=float, default=0.0, help="fraction answered 429")
    parser.add_argument("--retry-after", type=int, default=defaults.retry_after)
    parser.add_argument("--crawl-delay", type=float, default=None)
    parser.add_argument(
        "--changed-layout", action="append", default=[], metavar="HOUSE",
        help="house whose lot pages use the changed layout (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--unreachable", action="append", default=[], metavar="HOUSE",
        help="house or marketplace answering 503 to everything (repeatable)",
    )  # fmt: skip
    parser.add_argument("--search-page-size", type=int, default=defaults.search_page_size)
    parser.add_argument(
        "--renamed-slug", action="append", default=[], metavar="LOT_ID",
        help="marketplace lot served under a new slug, same id (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--renamed-json-key", action="append", default=[], metavar="MARKETPLACE",
        help="marketplace renaming one JSON key of its lot pages (repeatable)",
    )  # fmt: skip
    return parser


def _bind_failure(host: str, port: int, exc: OSError) -> int:
    """One line on stderr for a port or host the site cannot bind; exit code 3 when the port
    is busy or not ours to take (could not start), 2 for a host that is not an address here."""
    prog = "auction-pipeline demo-site: error:"
    if exc.errno == errno.EADDRINUSE:
        print(
            f"{prog} port {port} on {host} is already in use (another demo site?); stop that "
            "process or choose another --port (--port 0 picks a free one)",
            file=sys.stderr,
        )
        return 3
    if exc.errno == errno.EACCES:
        print(
            f"{prog} port {port} on {host} needs privileges this user lacks; choose --port "
            "1024 or above (--port 0 picks a free one)",
            file=sys.stderr,
        )
        return 3
    print(
        f"{prog} cannot serve on {host} port {port} ({exc.strerror or exc}); give --host an "
        "address of this machine, e.g. 127.0.0.1, and a free --port",
        file=sys.stderr,
    )
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the demo site in the foreground until Ctrl-C, printing its URL first.

    A port outside 0-65535 or a host that is not an address here exits 2, a busy port 3,
    each with one line on stderr.
    """
    args = _parser().parse_args(argv)
    if not 0 <= args.port <= 65535:
        print(
            f"auction-pipeline demo-site: error: invalid port {args.port}: expected 0-65535 "
            "(--port 0 picks a free one)",
            file=sys.stderr,
        )
        return 2
    try:
        config = DemoConfig(
            seed=args.seed,
            lots_per_sale=args.lots_per_sale,
            page_size=args.page_size,
            images_per_lot=args.images_per_lot,
            latency=args.latency,
            error_rate=args.error_rate,
            throttle_rate=args.throttle_rate,
            retry_after=args.retry_after,
            changed_layout=frozenset(args.changed_layout),
            crawl_delay=args.crawl_delay,
            unreachable=frozenset(args.unreachable),
            search_page_size=args.search_page_size,
            renamed_slugs=frozenset(args.renamed_slug),
            renamed_json_key=frozenset(args.renamed_json_key),
        )
        market_catalogue(config)  # rejects renamed slugs of lots that do not exist
    except ValueError as exc:
        _parser().error(str(exc))
    site = DemoSite(config, host=args.host, port=args.port)
    try:
        site.start()
    except OSError as exc:  # socket.gaierror (an unknown host) is an OSError too
        return _bind_failure(args.host, args.port, exc)
    try:
        print(f"Demo auction site at {site.url} (Ctrl-C to stop)", flush=True)
        for slug in HOUSES:
            print(f"  {site.url}/{slug}/auctions/{date.today().isoformat()}", flush=True)
        for path in MARKET_SEARCHES:
            print(f"  {site.url}{path}", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("stopping", flush=True)
    finally:
        site.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
