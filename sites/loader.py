"""Site definitions: one YAML file per auction house under ``sites/``, validated on load.

Sites are data, not code: start URL, pagination, lot links, per-field selectors and parsers,
currency, date languages and politeness live in the YAML file. A bad file is rejected before
any request is sent, with an error naming the file, the field and what was expected.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import string
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, cast
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from infra.envrefs import UnsetVariable, expand_env_refs
from infra.yamlfiles import ConfigFileError, load_config_file
from sites.fields import (
    TIME_PARSERS,
    DecimalSeparator,
    FieldParser,
    FieldRule,
)
from sites.followups import FollowUp
from sites.search import Search
from sites.sections import (
    DEFAULT_CONTENT_TYPES,
    LotIdentity,
    MediaTypes,
    accepted_types,
    check_content_types,
)
from sites.selectors import Selector
from sites.sellers import SellerProfile

SITES_DIR = Path(__file__).resolve().parent


def sites_dir() -> Path:
    """Where site files are read from: ``$AUCTION_PIPELINE_SITES_DIR`` or ``sites/``."""
    return Path(os.environ.get("AUCTION_PIPELINE_SITES_DIR") or SITES_DIR)


class SiteDefinitionError(ValueError):
    """A site definition is missing, unreadable or invalid; the message names file and field."""


class Listing(BaseModel):
    """Where the lots are: the listing page's lot links and its next-page link."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lot_links: Selector
    next_page: Selector | None = None
    max_pages: Annotated[int, Field(gt=0)] = 200


class Checks(BaseModel):
    """Per-run checks that catch a layout change before bad data reaches the database."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_invalid_share: Annotated[
        float, Field(ge=0, le=1, description="largest share of lots that may fail validation")
    ] = 0.1
    min_count_ratio: Annotated[
        float | None,
        Field(ge=0, le=1, description="fewest lots, as a share of the recent median (null: off)"),
    ] = 0.5
    count_history: Annotated[
        int, Field(ge=3, le=60, description="how many recent runs the median is taken over")
    ] = 7
    min_lots: Annotated[
        int, Field(ge=0, description="fewest lot pages a day may have (0 for sale-less days)")
    ] = 1


class Politeness(BaseModel):
    """How hard we may hit the site: requests per second, retries, timeouts, page size cap."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    requests_per_second: Annotated[float, Field(gt=0, le=50)] = 2.0
    # Requests in flight at once; the rate limit above holds across all of them. More than 1
    # only helps when the site's response time exceeds the interval between requests.
    concurrency: Annotated[int, Field(ge=1, le=16)] = 1
    # Most requests one site's crawl may send in a day (pages, images, retries): a runaway
    # pagination or link farm stops here with an error instead of crawling on.
    max_requests: Annotated[int, Field(ge=1)] = 20_000
    max_retries: Annotated[int, Field(ge=0, le=10)] = 4
    timeout_seconds: Annotated[float, Field(gt=0, le=300)] = 30.0
    max_page_bytes: Annotated[int, Field(gt=0)] = 5_000_000
    max_retry_after_seconds: Annotated[float, Field(ge=0)] = 120.0
    # Longest robots.txt Crawl-delay honoured: a longer one fails the site at once instead of
    # stalling the run (30 s already makes a few hundred pages take hours).
    max_crawl_delay_seconds: Annotated[float, Field(ge=0)] = 30.0
    # Largest body once its Content-Encoding (gzip, deflate) is undone, when fetched and when
    # read back from the WARC: a gzip bomb fails its page instead of a worker's memory.
    max_decoded_bytes: Annotated[int, Field(gt=0)] = 20_000_000
    # Timed-out attempts in a row (no response in between) after which the site is given up,
    # instead of waiting out every lot page's retries on a host that stopped answering.
    max_consecutive_timeouts: Annotated[int, Field(ge=1)] = 10
    # Longest a request waits for the site's rate shared with other runs crawling it at
    # the same time (tasks/sharedlimit.py); past it the request fails like a network error.
    max_shared_wait_seconds: Annotated[float, Field(gt=0, le=3600)] = 300.0


# Every lot has these; a house's site file also makes its lot_number required (marketplaces
# such as eBay and Catawiki number no lots).
REQUIRED_FIELDS = ("title", "sale_date")

# The fields the lot record is built from, with the parsers each may use (the first is the
# default) and whether it collects many: checked when a site file is loaded, so a misfit is
# reported before any request is sent. An online lot's sale_date is its end time's UTC day.
RECORD_FIELDS: dict[str, tuple[tuple[FieldParser, ...], bool]] = {
    "lot_number": (("int",), False),
    "title": (("text",), False),
    "sale_date": (("date", *TIME_PARSERS), False),
    "description": (("text",), False),
    "estimate": (("estimate",), False),
    "price": (("price",), False),
    "current_bid": (("price",), False),
    "images": (("text",), True),
    # An online lot's life (tasks/normalise.py says how they combine):
    "status": (("status",), False),
    "start_time": (TIME_PARSERS, False),
    "end_time": (TIME_PARSERS, False),
    "bid_count": (("int",), False),
    "starting_price": (("price",), False),
    "buy_now_price": (("price",), False),
    "reserve_met": (("boolean",), False),
    # Who sells the lot (the seller: section says where the seller's profile is):
    "seller_id": (("text",), False),
}


class SiteDefinition(BaseModel):
    """A validated auction-house definition, as loaded from ``sites/<name>.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")]
    house: str
    base_url: Annotated[str, Field(pattern=r"^https?://")]
    start_url: str | None = Field(
        None, description="the dated listing, relative to base_url; '{date}' becomes YYYY-MM-DD"
    )
    extra_hosts: list[str] = Field(
        default_factory=list,
        description="other hosts the site's pages or images live on (e.g. an image CDN)",
    )
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
    date_languages: Annotated[list[str], Field(min_length=1)]
    unsold_markers: list[str] = Field(default_factory=list)
    decimal_separator: DecimalSeparator | None = Field(
        None,
        description="'.' or ',': which one marks the fraction in this house's amounts; unset,"
        " only amounts that read one way are accepted and '1,200' or '1.005' make the lot"
        " invalid (tasks/normalise.py: parse_price)",
    )
    user_agent: str = "auction-pipeline/0.1 (+research crawler; contact: see README)"
    listing: Listing | None = Field(None, description="how the dated listing is read")
    search: Search | None = Field(None, description="keyword searches that find lots")
    fields: dict[str, FieldRule]
    politeness: Politeness = Politeness()
    checks: Checks = Checks()
    hook: str | None = Field(
        None,
        description="a Python file beside this one defining adjust_lot(raw, html, url) -> raw,"
        " for the odd site that selectors alone cannot read (resolved to an absolute path)",
    )
    lot_id: LotIdentity | None = Field(
        None,
        description="where the platform's lot id is (default: the URL's last segment and "
        "query); the database keys lots by it, so a renamed slug is the same lot",
    )
    follow_days: Annotated[int, Field(ge=0, le=365)] = Field(
        14,
        description="how many days after its end a lot without a known result is revisited "
        "(then it is marked closed-unknown); 0 follows no lot",
    )
    seller: SellerProfile | None = Field(
        None, description="where a lot's seller's profile page is, and how it is read"
    )
    follow: dict[str, FollowUp] = Field(
        default_factory=dict,
        description="further resources fetched for each lot (a description iframe, a bidding "
        "API), named for field rules' from:",
    )
    content_types: dict[str, MediaTypes] = Field(
        default_factory=dict,
        description="media types each kind of page may be served as (listing, search, lot, "
        "image, a follow-up's name); default HTML for pages and image/ for images",
    )

    @field_validator("content_types")
    @classmethod
    def _media_types(cls, declared: dict[str, MediaTypes]) -> dict[str, MediaTypes]:
        return check_content_types(declared)

    @model_validator(mode="after")
    def _follow_ups_are_named_and_used_right(self) -> SiteDefinition:
        for name in self.follow:
            if name in (*DEFAULT_CONTENT_TYPES, "robots") or not name.isidentifier():
                raise ValueError(
                    f"follow.{name}: a follow-up needs a name of its own (letters, digits, _), "
                    f"not one of {', '.join([*DEFAULT_CONTENT_TYPES, 'robots'])}"
                )
        for field_name, rule in self.fields.items():
            if rule.from_ is not None and rule.from_ not in self.follow:
                raise ValueError(
                    f"fields.{field_name}.from: {rule.from_!r} names no follow-up; define it "
                    f"under follow: (known: {', '.join(self.follow) or 'none'})"
                )
        return self

    @model_validator(mode="after")
    def _seller_from_the_lot_page(self) -> SiteDefinition:
        if self.seller is None:
            return self
        rule = self.fields.get("seller_id")
        if rule is None:
            raise ValueError(
                "seller: needs a fields.seller_id rule, where each lot page names its seller"
            )
        if rule.from_ is not None:
            raise ValueError(
                "fields.seller_id: the crawl reads the seller from the lot page itself, so the "
                "rule cannot use from: (a follow-up is fetched after the lot page)"
            )
        return self

    @model_validator(mode="after")
    def _lot_id_field_exists(self) -> SiteDefinition:
        wanted = self.lot_id.field if self.lot_id is not None else None
        if wanted is not None and wanted not in self.fields:
            raise ValueError(
                f"lot_id.field {wanted!r} names no field rule; add a rule of that name under "
                f"fields: (known: {', '.join(self.fields)})"
            )
        return self

    @model_validator(mode="after")
    def _a_way_to_find_lots(self) -> SiteDefinition:
        if self.listing is None and self.search is None:
            raise ValueError(
                "give a dated listing (start_url: and listing:) or search:, or both: the site "
                "needs a way to find its lots"
            )
        if (self.listing is None) != (self.start_url is None):
            raise ValueError("start_url: and listing: go together (the dated listing)")
        return self

    def accepts(self, kind: str) -> tuple[str, ...]:
        """The content types a page of ``kind`` may be served as (``sites/sections.py``)."""
        return accepted_types(self.content_types, kind)

    @field_validator("start_url")
    @classmethod
    def _start_url_placeholders(cls, start_url: str | None) -> str | None:
        """Only ``{date}`` may appear: a typo ("{dat}") or a stray brace would otherwise fail
        at the first crawl with a KeyError instead of here, naming the field."""
        if start_url is None:
            return None
        try:
            names = {
                name for _, name, _, _ in string.Formatter().parse(start_url) if name is not None
            }
        except ValueError as exc:
            raise ValueError(
                f"{start_url!r}: {exc} (write a literal brace as {{{{ or }}}})"
            ) from None
        unknown = sorted(names - {"date"})
        if unknown:
            raise ValueError(
                f"{start_url!r} has placeholder(s) {', '.join('{' + n + '}' for n in unknown)};"
                " the only one is {date} (the sale date, YYYY-MM-DD)"
            )
        return start_url

    @field_validator("base_url")
    @classmethod
    def _base_url_has_a_host(cls, base_url: str) -> str:
        """A URL without a host ("http://") would only fail at the first request."""
        if not urlsplit(base_url).hostname:
            raise ValueError(
                f"{base_url!r} has no host; give the site's root, e.g. https://auctions.example"
            )
        return base_url

    @field_validator("fields")
    @classmethod
    def _fields_fit_the_lot_record(cls, fields: dict[str, FieldRule]) -> dict[str, FieldRule]:
        missing = [name for name in REQUIRED_FIELDS if name not in fields]
        if missing:
            raise ValueError(f"missing rules for required field(s): {', '.join(missing)}")
        for name, rule in fields.items():
            if name not in RECORD_FIELDS:
                continue
            parsers, many = RECORD_FIELDS[name]
            if rule.parser not in parsers or rule.many != many:
                raise ValueError(
                    f"field {name!r} must have parser: {' or '.join(parsers)} and many: "
                    f"{str(many).lower()} to fill the lot record; it has parser: "
                    f"{rule.parser} and many: {str(rule.many).lower()}"
                )
        return fields

    @property
    def hosts(self) -> frozenset[str]:
        """The hosts the crawler may contact for this site."""
        return frozenset({urlsplit(self.base_url).hostname or "", *self.extra_hosts})

    def start_url_for(self, day: str) -> str | None:
        """The first listing page for sale date ``day`` (ISO format); None without a listing."""
        if self.start_url is None:
            return None
        return self.base_url.rstrip("/") + "/" + self.start_url.format(date=day).lstrip("/")

    def sale_url_for(self, day: str) -> str:
        """Where the sale of ``day`` is listed: its dated listing, or, for a site found by
        search only, the site's root (a marketplace has no listing per sale)."""
        return self.start_url_for(day) or self.base_url


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "(top level)"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def load_site_file(path: Path) -> SiteDefinition:
    """Load and validate one site file; raise SiteDefinitionError naming file and field."""
    try:
        # Bounded: size cap, duplicate keys and alias expansion refused (infra/yamlfiles.py).
        parsed = load_config_file(path, "site file")
    except ConfigFileError as exc:
        raise SiteDefinitionError(str(exc)) from exc
    if not isinstance(parsed, dict):
        raise SiteDefinitionError(f"{path}: expected a mapping of site settings at top level")
    try:
        raw = expand_env_refs(parsed)
    except UnsetVariable as exc:
        raise SiteDefinitionError(f"{path}: {exc}") from exc
    try:
        site = SiteDefinition.model_validate(raw)
    except ValidationError as exc:
        raise SiteDefinitionError(f"{path}: {_describe(exc)}") from exc
    if site.name != path.stem:
        raise SiteDefinitionError(
            f"{path}: name {site.name!r} must match the file name {path.stem!r}"
        )
    if site.hook is not None:
        hook = (path.parent / site.hook).resolve()
        try:
            load_hook(str(hook))
        except SiteDefinitionError as exc:
            raise SiteDefinitionError(f"{path}: hook: {exc}") from exc
        site = site.model_copy(update={"hook": str(hook)})
    return site


HOOK_FUNCTION = "adjust_lot"


@functools.lru_cache(maxsize=64)
def load_hook(path: str) -> Callable[[dict[str, Any], str, str], dict[str, Any]]:
    """The ``adjust_lot`` function of a site's hook file, imported once per process."""
    spec = importlib.util.spec_from_file_location(f"site_hook_{Path(path).stem}", path)
    if spec is None or spec.loader is None or not Path(path).is_file():
        raise SiteDefinitionError(f"{path} is not a readable Python file")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise SiteDefinitionError(f"{path} failed to import: {type(exc).__name__}: {exc}") from exc
    function = getattr(module, HOOK_FUNCTION, None)
    if not callable(function):
        raise SiteDefinitionError(
            f"{path} must define {HOOK_FUNCTION}(raw: dict, html: str, url: str) -> dict"
        )
    return cast(Callable[[dict[str, Any], str, str], dict[str, Any]], function)


def available_sites(directory: Path | None = None) -> list[str]:
    """Names of the site definitions in ``directory`` (default: :func:`sites_dir`), sorted."""
    return sorted(p.stem for p in (directory or sites_dir()).glob("*.yaml"))


def load_sites(
    names: list[str] | None = None, directory: Path | None = None
) -> list[SiteDefinition]:
    """Load the named sites (all when ``names`` is empty); unknown names raise with the choices."""
    directory = directory or sites_dir()
    known = available_sites(directory)
    wanted = names or known
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise SiteDefinitionError(
            f"unknown site(s): {', '.join(unknown)}; known sites in {directory}: "
            f"{', '.join(known) or '(none)'}"
        )
    return [load_site_file(directory / f"{name}.yaml") for name in wanted]
