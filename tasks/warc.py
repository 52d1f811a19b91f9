"""Page backups as WARC files: one per site and day, every request/response pair in it.

WARC 1.1 (ISO 28500), written with warcio: a ``warcinfo`` record first, then a request and a
response record for every HTTP exchange the crawler completed (retried errors and redirect
hops included), each record gzipped on its own so standard tools can seek in the file. The
file is written under a temporary name and renamed into place only when the crawl finished,
so a job killed mid-crawl never leaves a backup that looks complete. Processing reads pages
back from here, not from the live site, which is what makes a reprocess after a selector fix
possible.
"""

from __future__ import annotations

import io
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from infra.atomic import fsync_directory
from tasks.politeness import Exchange

KIND_HEADER = "X-Auction-Pipeline-Kind"
# The body is stored after transfer decoding (httpx does not expose the wire bytes), so
# headers describing the wire framing would be wrong for it: they are replaced.
FRAMING_HEADERS = {"transfer-encoding", "content-length"}


class WarcRecorder:
    """Writes one site-day WARC file; the file appears under its name only on success.

    A crawl that fails leaves its exchanges as ``<name>.failed`` for whoever investigates;
    no reader (reuse, reprocess, archive) takes such a file for a backup.
    """

    def __init__(self, path: Path, info: dict[str, str]):
        self.path = path
        self.info = info
        self.exchanges = 0
        self._lock = threading.Lock()  # fetch threads share one file
        self._tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.partial")
        self._file: BinaryIO | None = None
        self._writer: Any = None

    def __enter__(self) -> WarcRecorder:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One crawl per site and day at a time: a partial file here is what an attempt killed
        # mid-crawl (walltime, scancel, lost node) left behind, and its task is being redone.
        for stale in self.path.parent.glob(f".{self.path.name}.*.partial"):
            stale.unlink(missing_ok=True)
        self._file = open(self._tmp, "wb")
        self._writer = WARCWriter(self._file, gzip=True, warc_version="WARC/1.1")
        self._writer.write_record(self._writer.create_warcinfo_record(self.path.name, self.info))
        return self

    def record(self, exchange: Exchange) -> None:
        """Append the exchange as a request/response record pair."""
        writer = self._writer
        date = datetime.fromtimestamp(exchange.fetched_at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        parts = urlsplit(exchange.url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        request = writer.create_warc_record(
            exchange.url,
            "request",
            payload=io.BytesIO(b""),
            http_headers=StatusAndHeaders(
                f"GET {target or '/'} HTTP/1.1",
                exchange.request_headers,
                is_http_request=True,
            ),
            warc_headers_dict={"WARC-Date": date, KIND_HEADER: exchange.kind},
        )
        headers = [(k, v) for k, v in exchange.response_headers if k.lower() not in FRAMING_HEADERS]
        headers.append(("Content-Length", str(len(exchange.body))))
        response = writer.create_warc_record(
            exchange.url,
            "response",
            payload=io.BytesIO(exchange.body),
            length=len(exchange.body),
            http_headers=StatusAndHeaders(
                f"{exchange.status} {exchange.reason}", headers, protocol="HTTP/1.1"
            ),
            warc_headers_dict={"WARC-Date": date, KIND_HEADER: exchange.kind},
        )
        with self._lock:
            writer.write_request_response_pair(request, response)
            self.exchanges += 1

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._file is not None
        try:
            if exc_type is None:
                self._file.flush()
                os.fsync(self._file.fileno())
            self._file.close()
            if exc_type is None:
                os.replace(self._tmp, self.path)
                fsync_directory(self.path.parent)
            else:
                # Evidence of what the site answered, under a name nothing reads as a backup.
                os.replace(self._tmp, self.path.with_name(self.path.name + ".failed"))
        finally:
            self._tmp.unlink(missing_ok=True)


@dataclass(frozen=True)
class StoredPage:
    """A response read back from a WARC file."""

    url: str
    kind: str
    status: int
    content_type: str
    body: bytes
    fetched_at: datetime


def read_responses(path: Path) -> Iterator[StoredPage]:
    """Every response record of a WARC file, in file order."""
    with open(path, "rb") as handle:
        for record in ArchiveIterator(handle):
            if record.rec_type != "response":
                continue
            http = record.http_headers
            yield StoredPage(
                url=record.rec_headers.get_header("WARC-Target-URI"),
                kind=record.rec_headers.get_header(KIND_HEADER) or "",
                status=int(http.get_statuscode()),
                content_type=http.get_header("Content-Type") or "",
                body=record.content_stream().read(),
                fetched_at=datetime.fromisoformat(record.rec_headers.get_header("WARC-Date")),
            )


def read_pages(path: Path, kind: str) -> Iterator[StoredPage]:
    """The successful (200) responses of one kind (listing, lot, image) in a WARC file."""
    for page in read_responses(path):
        if page.kind == kind and page.status == 200:
            yield page
