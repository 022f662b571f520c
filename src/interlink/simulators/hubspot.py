"""A HubSpot CRM v3 simulator: contacts and companies.

Wire format as documented by HubSpot: ``GET /crm/v3/objects/{type}?limit=&after=&properties=``
answering ``{"results": [{"id", "properties", "createdAt", "updatedAt", "archived"}],
"paging": {"next": {"after", "link"}}}``; ``PATCH``/``POST`` with ``{"properties": {...}}``;
``POST /crm/v3/objects/{type}/search``; errors ``{"status": "error", "message",
"correlationId", "category"}``; ``X-HubSpot-RateLimit-*`` headers on every API answer. OAuth:
``/oauth/authorize`` (app.hubspot.com), ``POST /oauth/v1/token`` with 30-minute access tokens
and refresh tokens that do not rotate, ``DELETE /oauth/v1/refresh-tokens/{token}`` and
``GET /oauth/v1/access-tokens/{token}``.
"""

# ruff: noqa: S106  (token prefixes are fixtures)
from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from interlink.simulators.app import ProviderSimulator
from interlink.simulators.http import bearer_token, json_response, origin_of, read_form
from interlink.simulators.oauth import OAuthError, OAuthRules, TokenGrant, TokenStatus
from interlink.simulators.records import RecordGenerator

__all__ = ["SIMULATOR", "HubSpotSimulator"]

_PORTAL_ID = 12345678
_DAILY_LIMIT = 250_000
_INTERVAL_MS = 10_000
_INTERVAL_MAX = 110  # OAuth apps: 110 requests per 10 seconds per installed account
_SEARCH_MAX_RESULTS = 10_000

_DEFAULT_PROPERTIES: dict[str, tuple[str, ...]] = {
    "contacts": (
        "createdate",
        "email",
        "firstname",
        "hs_object_id",
        "lastmodifieddate",
        "lastname",
    ),
    "companies": ("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"),
}
_ALL_PROPERTIES: dict[str, frozenset[str]] = {
    "contacts": frozenset(
        _DEFAULT_PROPERTIES["contacts"] + ("phone", "company", "jobtitle", "city", "country")
    ),
    "companies": frozenset(
        _DEFAULT_PROPERTIES["companies"] + ("industry", "phone", "city", "country")
    ),
}
_MODIFIED_PROPERTY = {"contacts": "lastmodifieddate", "companies": "hs_lastmodifieddate"}
_READ_ONLY = frozenset({"hs_object_id", "createdate", "lastmodifieddate", "hs_lastmodifieddate"})
_DATETIME_PROPERTIES = frozenset({"createdate", "lastmodifieddate", "hs_lastmodifieddate"})
_INDUSTRIES = ("COMPUTER_SOFTWARE", "RETAIL", "FINANCIAL_SERVICES", "HOSPITAL_HEALTH_CARE")
_JOB_TITLES = ("CEO", "CTO", "Head of Sales", "Engineer", "Marketing Manager", "Analyst")

Record = dict[str, Any]


def hubspot_datetime(epoch: float) -> str:
    """HubSpot's timestamp format, e.g. ``2024-01-05T10:20:30.123Z``."""
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _epoch_ms(value: Any) -> int | None:
    if value is None:
        return None
    text = str(value)
    if text.isdigit():
        return int(text)
    try:
        return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return None


class HubSpotError(Exception):
    """An API error answered as ``{"status": "error", "message", "correlationId", ...}``."""

    def __init__(self, status: int, category: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.category = category
        self.message = message
        self.extra = extra


class HubSpotSimulator(ProviderSimulator):
    """HubSpot: CRM v3 objects (contacts, companies) with cursor paging and search."""

    name = "hubspot"
    oauth_path_prefixes = ("/oauth/",)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        n = self.records_per_stream
        self.objects: dict[str, list[Record]] = {
            "contacts": self._contacts(RecordGenerator(self.seed, "hubspot:contacts"), n),
            "companies": self._companies(RecordGenerator(self.seed, "hubspot:companies"), n),
        }
        self._positions: dict[str, dict[str, int]] = {
            name: {r["id"]: i for i, r in enumerate(records)}
            for name, records in self.objects.items()
        }
        self._next_id = 100_000 + 2 * n
        self._correlation = itertools.count(1)
        self._calls_total = 0
        self._window = -1
        self._calls_in_window = 0

    @staticmethod
    def _contacts(gen: RecordGenerator, count: int) -> list[Record]:
        records = []
        for i, created in enumerate(gen.timestamps(count)):
            person = gen.person()
            city, country = gen.place()
            modified = created + gen.rng.randrange(0, 60 * 86_400)
            record_id = str(1001 + i)
            properties = {
                "city": city,
                "company": gen.company(),
                "country": country,
                "createdate": hubspot_datetime(created),
                "email": person.email,
                "firstname": person.first_name,
                "hs_object_id": record_id,
                "jobtitle": gen.rng.choice(_JOB_TITLES),
                "lastmodifieddate": hubspot_datetime(modified),
                "lastname": person.last_name,
                "phone": gen.phone(),
            }
            records.append(_object(record_id, properties, created, modified))
        return records

    @staticmethod
    def _companies(gen: RecordGenerator, count: int) -> list[Record]:
        records = []
        for i, created in enumerate(gen.timestamps(count)):
            company = gen.company()
            city, country = gen.place()
            modified = created + gen.rng.randrange(0, 60 * 86_400)
            record_id = str(50_001 + i)
            properties = {
                "city": city,
                "country": country,
                "createdate": hubspot_datetime(created),
                "domain": gen.domain_of(company, i),
                "hs_lastmodifieddate": hubspot_datetime(modified),
                "hs_object_id": record_id,
                "industry": gen.rng.choice(_INDUSTRIES),
                "name": company,
                "phone": gen.phone(),
            }
            records.append(_object(record_id, properties, created, modified))
        return records

    # hooks

    def oauth_rules(self) -> OAuthRules:
        return OAuthRules(
            access_token_ttl=1800,
            rotate_refresh_tokens=False,
            access_token_prefix="CJSsim-",
            refresh_token_prefix="na1-sim-",
            default_scope="oauth crm.objects.contacts.read crm.objects.companies.read",
        )

    def add_routes(self, app: web.Application) -> None:
        router = app.router
        router.add_get("/oauth/authorize", self.authorize)
        router.add_post("/oauth/v1/token", self._token)
        router.add_get("/oauth/v1/access-tokens/{token}", self._token_info)
        router.add_delete("/oauth/v1/refresh-tokens/{token}", self._revoke)
        router.add_get("/account-info/v3/details", self._account)
        router.add_get("/crm/v3/objects/{type}", self._list)
        router.add_post("/crm/v3/objects/{type}", self._create)
        router.add_post("/crm/v3/objects/{type}/search", self._search)
        router.add_get("/crm/v3/objects/{type}/{id}", self._retrieve)
        router.add_patch("/crm/v3/objects/{type}/{id}", self._update)

    def token_payload(self, request: web.Request, grant: TokenGrant) -> dict[str, Any]:
        return {
            "token_type": "bearer",
            "refresh_token": grant.refresh_token,
            "access_token": grant.access_token,
            "expires_in": grant.expires_in,
        }

    def rate_limited_response(self, request: web.Request, retry_after: int) -> web.Response:
        return self._error(
            HubSpotError(
                429,
                "RATE_LIMITS",
                "You have reached your ten_secondly_rolling limit.",
                errorType="RATE_LIMIT",
                policyName="TEN_SECONDLY_ROLLING",
                groupName=f"publicapi:oauth:{_PORTAL_ID}",
            )
        )

    def server_error_response(self, request: web.Request, status: int) -> web.Response:
        return self._error(HubSpotError(status, "INTERNAL_ERROR", "internal error"))

    def decorate_response(self, request: web.Request, response: web.StreamResponse) -> None:
        if request.path.startswith(("/crm/", "/account-info/")):
            window = int(self.clock() * 1000) // _INTERVAL_MS
            if window != self._window:
                self._window, self._calls_in_window = window, 0
            self._calls_in_window += 1
            self._calls_total += 1
            headers = response.headers
            headers["X-HubSpot-RateLimit-Daily"] = str(_DAILY_LIMIT)
            headers["X-HubSpot-RateLimit-Daily-Remaining"] = str(
                max(_DAILY_LIMIT - self._calls_total, 0)
            )
            headers["X-HubSpot-RateLimit-Interval-Milliseconds"] = str(_INTERVAL_MS)
            headers["X-HubSpot-RateLimit-Max"] = str(_INTERVAL_MAX)
            headers["X-HubSpot-RateLimit-Remaining"] = str(
                max(_INTERVAL_MAX - self._calls_in_window, 0)
            )

    # helpers

    def _correlation_id(self) -> str:
        n = next(self._correlation)
        return f"5f1e0000-0000-4000-8000-{n:012d}"

    def _error(self, error: HubSpotError) -> web.Response:
        body = {
            "status": "error",
            "message": error.message,
            "correlationId": self._correlation_id(),
            "category": error.category,
            **error.extra,
        }
        return json_response(body, status=error.status)

    def _authenticate(self, request: web.Request) -> None:
        check = self.oauth.check(bearer_token(request))
        if check.status is TokenStatus.EXPIRED:
            seconds = max(int(check.expired_for), 0)
            raise HubSpotError(
                401,
                "EXPIRED_AUTHENTICATION",
                f"The OAuth token used to make this call expired {seconds} second(s) ago.",
            )
        if check.status is not TokenStatus.VALID:
            raise HubSpotError(
                401,
                "INVALID_AUTHENTICATION",
                "Authentication credentials not found. This API supports OAuth 2.0 "
                "authentication and you can find more details at "
                "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
            )

    def _object_type(self, request: web.Request) -> str:
        object_type = request.match_info["type"]
        if object_type not in self.objects:
            raise HubSpotError(
                400, "VALIDATION_ERROR", f"Unable to infer object type from: {object_type}"
            )
        return object_type

    @staticmethod
    def _wanted(object_type: str, requested: list[str]) -> tuple[str, ...]:
        names = [n.strip() for raw in requested for n in raw.split(",") if n.strip()]
        return tuple(names) if names else _DEFAULT_PROPERTIES[object_type]

    @staticmethod
    def _shape(record: Record, wanted: tuple[str, ...]) -> Record:
        properties = record["properties"]
        return {
            "id": record["id"],
            "properties": {name: properties[name] for name in wanted if name in properties},
            "createdAt": record["createdAt"],
            "updatedAt": record["updatedAt"],
            "archived": False,
        }

    def _properties_from_body(self, object_type: str, raw: bytes) -> dict[str, str]:
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise HubSpotError(400, "VALIDATION_ERROR", "Invalid input JSON") from None
        properties = body.get("properties") if isinstance(body, dict) else None
        if not isinstance(properties, dict):
            raise HubSpotError(400, "VALIDATION_ERROR", "Invalid input JSON: missing properties")
        problems = []
        for name in properties:
            if name not in _ALL_PROPERTIES[object_type]:
                problems.append(
                    {
                        "isValid": False,
                        "message": f'Property "{name}" does not exist',
                        "error": "PROPERTY_DOESNT_EXIST",
                        "name": name,
                    }
                )
            elif name in _READ_ONLY:
                problems.append(
                    {
                        "isValid": False,
                        "message": f'"{name}" is a read only property; its value cannot be set.',
                        "error": "READ_ONLY_VALUE",
                        "name": name,
                    }
                )
        if problems:
            raise HubSpotError(
                400,
                "VALIDATION_ERROR",
                f"Property values were not valid: {orjson.dumps(problems).decode()}",
            )
        return {k: "" if v is None else str(v) for k, v in properties.items()}

    # API routes

    async def _account(self, request: web.Request) -> web.Response:
        try:
            self._authenticate(request)
        except HubSpotError as exc:
            return self._error(exc)
        return json_response(
            {
                "portalId": _PORTAL_ID,
                "timeZone": "US/Eastern",
                "companyCurrency": "USD",
                "additionalCurrencies": [],
                "utcOffset": "-05:00",
                "utcOffsetMilliseconds": -18_000_000,
                "uiDomain": "app.hubspot.com",
                "dataHostingLocation": "na1",
            }
        )

    async def _list(self, request: web.Request) -> web.Response:
        try:
            self._authenticate(request)
            object_type = self._object_type(request)
            query = request.query
            limit = _limit(query.get("limit"), maximum=100)
            records = self.objects[object_type]
            start = 0
            after = query.get("after")
            if after is not None:
                position = self._positions[object_type].get(after)
                if position is None:
                    raise HubSpotError(400, "VALIDATION_ERROR", f"Invalid after value: {after}")
                start = position
            if query.get("archived", "false").lower() == "true":
                records, start = [], 0
            wanted = self._wanted(object_type, query.getall("properties", []))
        except HubSpotError as exc:
            return self._error(exc)
        end = start + limit
        body: Record = {"results": [self._shape(r, wanted) for r in records[start:end]]}
        if end < len(records):
            next_after = records[end]["id"]
            body["paging"] = {
                "next": {
                    "after": next_after,
                    "link": f"{origin_of(request)}/crm/v3/objects/{object_type}?after={next_after}",
                }
            }
        return json_response(body)

    async def _retrieve(self, request: web.Request) -> web.Response:
        try:
            self._authenticate(request)
            object_type = self._object_type(request)
            record = self._find(object_type, request.match_info["id"])
            wanted = self._wanted(object_type, request.query.getall("properties", []))
        except HubSpotError as exc:
            return self._error(exc)
        return json_response(self._shape(record, wanted))

    def _find(self, object_type: str, record_id: str) -> Record:
        position = self._positions[object_type].get(record_id)
        if position is None:
            raise HubSpotError(404, "OBJECT_NOT_FOUND", "resource not found")
        return self.objects[object_type][position]

    async def _update(self, request: web.Request) -> web.Response:
        try:
            self._authenticate(request)
            object_type = self._object_type(request)
            record = self._find(object_type, request.match_info["id"])
            changes = self._properties_from_body(object_type, await request.read())
        except HubSpotError as exc:
            return self._error(exc)
        now = self.clock()
        record["properties"].update(changes)
        record["properties"][_MODIFIED_PROPERTY[object_type]] = hubspot_datetime(now)
        record["updatedAt"] = hubspot_datetime(now)
        wanted = tuple(dict.fromkeys(_DEFAULT_PROPERTIES[object_type] + tuple(changes)))
        return json_response(self._shape(record, wanted))

    async def _create(self, request: web.Request) -> web.Response:
        try:
            self._authenticate(request)
            object_type = self._object_type(request)
            properties = self._properties_from_body(object_type, await request.read())
        except HubSpotError as exc:
            return self._error(exc)
        now = self.clock()
        self._next_id += 1
        record_id = str(self._next_id)
        properties["hs_object_id"] = record_id
        properties["createdate"] = hubspot_datetime(now)
        properties[_MODIFIED_PROPERTY[object_type]] = hubspot_datetime(now)
        record = _object(record_id, properties, now, now)
        self._positions[object_type][record_id] = len(self.objects[object_type])
        self.objects[object_type].append(record)
        wanted = tuple(dict.fromkeys(_DEFAULT_PROPERTIES[object_type] + tuple(properties)))
        return json_response(self._shape(record, wanted), status=201)

    async def _search(self, request: web.Request) -> web.Response:
        try:
            self._authenticate(request)
            object_type = self._object_type(request)
            try:
                body = orjson.loads(await request.read() or b"{}")
            except orjson.JSONDecodeError:
                raise HubSpotError(400, "VALIDATION_ERROR", "Invalid input JSON") from None
            if not isinstance(body, dict):
                raise HubSpotError(400, "VALIDATION_ERROR", "Invalid input JSON")
            matches = [
                r for r in self.objects[object_type] if _matches(r, body.get("filterGroups") or [])
            ]
            for sort in reversed(body.get("sorts") or []):
                name, descending = _sort_spec(sort)
                matches.sort(key=_sort_key(name, name in _DATETIME_PROPERTIES), reverse=descending)
            limit = _limit(str(body.get("limit", 10)), maximum=200)
            start = int(str(body.get("after", "0"))) if str(body.get("after", "0")).isdigit() else 0
            if start + limit > _SEARCH_MAX_RESULTS:
                raise HubSpotError(
                    400,
                    "VALIDATION_ERROR",
                    f"Paging limit reached: search results are limited to {_SEARCH_MAX_RESULTS}.",
                )
            wanted = self._wanted(object_type, list(body.get("properties") or []))
        except HubSpotError as exc:
            return self._error(exc)
        end = start + limit
        result: Record = {
            "total": len(matches),
            "results": [self._shape(r, wanted) for r in matches[start:end]],
        }
        if end < len(matches):
            result["paging"] = {"next": {"after": str(end)}}
        return json_response(result)

    # OAuth

    async def _token(self, request: web.Request) -> web.Response:
        form = await read_form(request)
        try:
            grant = self.oauth.token_request(form, request.headers.get("Authorization"))
        except OAuthError as exc:
            status = {
                "invalid_grant": (
                    "BAD_REFRESH_TOKEN"
                    if form.get("grant_type") == "refresh_token"
                    else "BAD_AUTH_CODE"
                ),
                "invalid_client": "BAD_CLIENT_ID",
            }.get(exc.error, "BAD_GRANT_TYPE")
            # HubSpot's own fields, plus the RFC 6749 ones that OAuth clients key on.
            return json_response(
                {
                    "status": status,
                    "message": exc.description,
                    "correlationId": self._correlation_id(),
                    "error": exc.error,
                    "error_description": exc.description,
                },
                status=400,
            )
        return json_response(self.token_payload(request, grant))

    async def _token_info(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        check = self.oauth.check(token)
        if check.status is not TokenStatus.VALID:
            return self._error(HubSpotError(404, "OBJECT_NOT_FOUND", "access token not found"))
        return json_response(
            {
                "token": token,
                "user": "sim-user@example.com",
                "hub_domain": "sim.hubspot.example.com",
                "scopes": check.scope.split(),
                "hub_id": _PORTAL_ID,
                "app_id": 1,
                "expires_in": None if check.expires_in is None else int(check.expires_in),
                "user_id": 1,
                "token_type": "access",
            }
        )

    async def _revoke(self, request: web.Request) -> web.Response:
        if not self.oauth.revoke(request.match_info["token"]):
            return self._error(HubSpotError(404, "OBJECT_NOT_FOUND", "refresh token not found"))
        return web.Response(status=204)


def _object(record_id: str, properties: dict[str, Any], created: float, modified: float) -> Record:
    return {
        "id": record_id,
        "properties": properties,
        "createdAt": hubspot_datetime(created),
        "updatedAt": hubspot_datetime(modified),
    }


def _limit(raw: str | None, *, maximum: int) -> int:
    if raw is None:
        return 10
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise HubSpotError(
            400, "VALIDATION_ERROR", f"limit must be an integer between 1 and {maximum}"
        )
    return int(raw)


def _sort_spec(sort: Any) -> tuple[str, bool]:
    if isinstance(sort, str):
        return sort.lstrip("-"), sort.startswith("-")
    if isinstance(sort, dict) and isinstance(sort.get("propertyName"), str):
        return sort["propertyName"], str(sort.get("direction", "ASCENDING")) == "DESCENDING"
    raise HubSpotError(400, "VALIDATION_ERROR", "Invalid sort")


def _sort_key(name: str, is_datetime: bool) -> Callable[[Record], Any]:
    def key(record: Record) -> Any:
        value = record["properties"].get(name)
        if is_datetime:
            return _epoch_ms(value) or 0
        return "" if value is None else str(value)

    return key


def _matches(record: Record, groups: list[Any]) -> bool:
    if not groups:
        return True
    properties = record["properties"]
    for group in groups:  # groups are ORed, filters within a group ANDed
        filters = group.get("filters", []) if isinstance(group, dict) else []
        if all(_filter_matches(properties, f) for f in filters):
            return True
    return False


def _filter_matches(properties: dict[str, Any], spec: Any) -> bool:
    if not isinstance(spec, dict):
        raise HubSpotError(400, "VALIDATION_ERROR", "Invalid filter")
    name = str(spec.get("propertyName", ""))
    operator = spec.get("operator", "EQ")
    actual = properties.get(name)
    if operator == "HAS_PROPERTY":
        return actual not in (None, "")
    if operator == "NOT_HAS_PROPERTY":
        return actual in (None, "")
    expected = spec.get("value")
    left: Any
    right: Any
    if name in _DATETIME_PROPERTIES:
        left, right = _epoch_ms(actual), _epoch_ms(expected)
    else:
        left, right = ("" if actual is None else str(actual)), str(expected)
        if operator in {"EQ", "NEQ"}:
            left, right = left.lower(), right.lower()
    if operator == "EQ":
        return bool(left == right)
    if operator == "NEQ":
        return bool(left != right)
    if left is None or right is None:
        return False
    comparisons: dict[str, Callable[[Any, Any], bool]] = {
        "LT": lambda a, b: bool(a < b),
        "LTE": lambda a, b: bool(a <= b),
        "GT": lambda a, b: bool(a > b),
        "GTE": lambda a, b: bool(a >= b),
    }
    compare = comparisons.get(str(operator))
    if compare is None:
        raise HubSpotError(400, "VALIDATION_ERROR", f"Unsupported operator: {operator}")
    return compare(left, right)


SIMULATOR = HubSpotSimulator
