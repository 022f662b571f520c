"""A Salesforce REST API simulator (API v61.0): Account and Contact.

Wire format as documented by Salesforce: OAuth 2.0 under ``/services/oauth2/`` whose token
answer carries ``instance_url``, ``id``, ``issued_at`` and ``signature`` but no ``expires_in``;
SOQL at ``/services/data/v61.0/query?q=`` (``SELECT fields FROM Account|Contact [WHERE field op
literal [AND ...]] [ORDER BY field [ASC|DESC]] [LIMIT n]``) answering ``{"totalSize", "done",
"nextRecordsUrl", "records": [{"attributes": {"type", "url"}, ...}]}`` in batches set by
``Sforce-Query-Options: batchSize=N`` (200-2000, default 2000); ``sobjects`` GET/PATCH/POST;
errors as ``[{"message", "errorCode"}]``; ``INVALID_SESSION_ID`` for an expired session;
``Sforce-Limit-Info: api-usage=N/M`` on every API answer.
"""

# ruff: noqa: S106  (token prefixes are fixtures)
from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from interlink.simulators.app import ProviderSimulator
from interlink.simulators.http import bearer_token, json_response, origin_of, read_form
from interlink.simulators.oauth import (
    SIM_CLIENT_SECRET,
    OAuthError,
    OAuthRules,
    TokenGrant,
    TokenStatus,
)
from interlink.simulators.records import RecordGenerator

__all__ = ["API_VERSION", "SIMULATOR", "SalesforceSimulator"]

API_VERSION = "v61.0"
_DATA = f"/services/data/{API_VERSION}"
_DAILY_API_LIMIT = 15_000
_ORG_ID = "00DSIM0000000001"
_USER_ID = "005SIM0000000001"
_MAX_LOCATORS = 1_000

Record = dict[str, Any]

_QUERY_RE = re.compile(
    r"^\s*SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<object>\w+)"
    r"(?:\s+WHERE\s+(?P<where>.+?))?"
    r"(?:\s+ORDER\s+BY\s+(?P<order>\w+)(?:\s+(?P<direction>ASC|DESC))?"
    r"(?:\s+NULLS\s+(?:FIRST|LAST))?)?"
    r"(?:\s+LIMIT\s+(?P<limit>\d+))?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_CONDITION_RE = re.compile(
    r"^\s*(?P<field>\w+)\s*(?P<op><=|>=|!=|<>|=|<|>)\s*(?P<value>'(?:[^'\\]|\\.)*'|[^\s']+)\s*$",
    re.DOTALL,
)
_AND_RE = re.compile(r"\s+AND\s+", re.IGNORECASE)
_DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_NUMBER_RE = re.compile(r"^-?\d+(\.\d+)?$")
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: bool(a == b),
    "!=": lambda a, b: bool(a != b),
    "<>": lambda a, b: bool(a != b),
    "<": lambda a, b: a is not None and b is not None and bool(a < b),
    "<=": lambda a, b: a is not None and b is not None and bool(a <= b),
    ">": lambda a, b: a is not None and b is not None and bool(a > b),
    ">=": lambda a, b: a is not None and b is not None and bool(a >= b),
}

_FIELDS: dict[str, tuple[str, ...]] = {
    "Account": (
        "Id", "IsDeleted", "Name", "Industry", "Phone", "Website", "BillingCity",
        "BillingCountry", "AnnualRevenue", "NumberOfEmployees", "CreatedDate",
        "LastModifiedDate", "SystemModstamp",
    ),
    "Contact": (
        "Id", "IsDeleted", "AccountId", "FirstName", "LastName", "Name", "Email", "Phone",
        "Title", "CreatedDate", "LastModifiedDate", "SystemModstamp",
    ),
}  # fmt: skip
_READ_ONLY = frozenset({"Id", "IsDeleted", "CreatedDate", "LastModifiedDate", "SystemModstamp"})
_TITLES = ("CEO", "CTO", "VP Sales", "Engineer", "Buyer", "Account Manager", "Analyst")


class SalesforceError(Exception):
    """A REST API error answered as ``[{"message", "errorCode"}]``."""

    def __init__(self, status: int, error_code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body = [{"message": message, "errorCode": error_code, **extra}]

    def response(self) -> web.Response:
        """The error as an HTTP response."""
        return json_response(self.body, status=self.status)


def format_datetime(epoch: float) -> str:
    """Salesforce's datetime format, e.g. ``2024-01-05T10:20:30.000+0000``."""
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def _parse_literal(raw: str) -> Any:
    if raw.startswith("'"):
        return re.sub(r"\\(.)", r"\1", raw[1:-1])
    lowered = raw.lower()
    if lowered in {"true", "false"}:
        return lowered == "true"
    if lowered == "null":
        return None
    if _DATETIME_RE.match(raw):
        return format_datetime(datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp())
    if _DATE_RE.match(raw):
        return raw
    if _NUMBER_RE.match(raw):
        return float(raw) if "." in raw else int(raw)
    raise SalesforceError(400, "MALFORMED_QUERY", f"unexpected token: '{raw}'")


@dataclass(frozen=True, slots=True)
class _Query:
    sobject: str
    fields: tuple[str, ...]
    where: tuple[tuple[str, Callable[[Any, Any], bool], Any], ...]
    order: str | None
    descending: bool
    limit: int | None


def _field_resolver(sobject: str) -> Callable[[str], str]:
    by_lower = {name.lower(): name for name in _FIELDS[sobject]}

    def field(name: str) -> str:
        canonical = by_lower.get(name.strip().lower())
        if canonical is None:
            raise SalesforceError(
                400,
                "INVALID_FIELD",
                f"No such column '{name.strip()}' on entity '{sobject}'. If you are attempting "
                "to use a custom field, be sure to append the '__c' after the custom field name. "
                "Please reference your WSDL or the describe call for the appropriate names.",
            )
        return canonical

    return field


def parse_soql(soql: str) -> _Query:
    """Parse the SOQL subset the simulator understands.

    Raises:
        SalesforceError: ``MALFORMED_QUERY``, ``INVALID_TYPE`` or ``INVALID_FIELD``.
    """
    match = _QUERY_RE.match(soql)
    if not match:
        raise SalesforceError(400, "MALFORMED_QUERY", f"unexpected token in query: {soql!r}")
    sobject = next((name for name in _FIELDS if name.lower() == match["object"].lower()), None)
    if sobject is None:
        raise SalesforceError(
            400,
            "INVALID_TYPE",
            f"sObject type '{match['object']}' is not supported. If you are attempting to use a "
            "custom object, be sure to append the '__c' after the entity name. Please reference "
            "your WSDL or the describe call for the appropriate names.",
        )
    field = _field_resolver(sobject)
    fields = tuple(field(name) for name in match["fields"].split(","))
    conditions = []
    if match["where"]:
        for part in _AND_RE.split(match["where"].strip()):
            condition = _CONDITION_RE.match(part)
            if not condition:
                raise SalesforceError(400, "MALFORMED_QUERY", f"unexpected token: '{part}'")
            conditions.append(
                (
                    field(condition["field"]),
                    _OPS[condition["op"]],
                    _parse_literal(condition["value"]),
                )
            )
    return _Query(
        sobject=sobject,
        fields=fields,
        where=tuple(conditions),
        order=field(match["order"]) if match["order"] else None,
        descending=(match["direction"] or "").upper() == "DESC",
        limit=int(match["limit"]) if match["limit"] else None,
    )


@dataclass(slots=True)
class _Cursor:
    sobject: str
    records: list[Record]
    fields: tuple[str, ...]
    batch: int


def _accounts(gen: RecordGenerator, count: int) -> list[Record]:
    records = []
    for i, created in enumerate(gen.timestamps(count)):
        company = gen.company()
        city, country = gen.place()
        modified = format_datetime(created + gen.rng.randrange(0, 60 * 86_400))
        records.append(
            {
                "Id": gen.ident("001SIM", 12),
                "IsDeleted": False,
                "Name": company,
                "Industry": gen.industry(),
                "Phone": gen.phone(),
                "Website": f"https://{gen.domain_of(company, i)}",
                "BillingCity": city,
                "BillingCountry": country,
                "AnnualRevenue": float(gen.amount(100_000, 50_000_000)),
                "NumberOfEmployees": gen.rng.randrange(5, 5000),
                "CreatedDate": format_datetime(created),
                "LastModifiedDate": modified,
                "SystemModstamp": modified,
            }
        )
    return records


def _contacts(gen: RecordGenerator, count: int, accounts: list[Record]) -> list[Record]:
    records = []
    for created in gen.timestamps(count):
        account = gen.rng.choice(accounts) if accounts else None
        person = gen.person()
        modified = format_datetime(created + gen.rng.randrange(0, 60 * 86_400))
        records.append(
            {
                "Id": gen.ident("003SIM", 12),
                "IsDeleted": False,
                "AccountId": account["Id"] if account else None,
                "FirstName": person.first_name,
                "LastName": person.last_name,
                "Name": f"{person.first_name} {person.last_name}",
                "Email": person.email,
                "Phone": gen.phone(),
                "Title": gen.rng.choice(_TITLES),
                "CreatedDate": format_datetime(created),
                "LastModifiedDate": modified,
                "SystemModstamp": modified,
            }
        )
    return records


def _with_attributes(sobject: str, record: Record, fields: tuple[str, ...]) -> Record:
    shaped: Record = {
        "attributes": {"type": sobject, "url": f"{_DATA}/sobjects/{sobject}/{record['Id']}"}
    }
    for name in fields:
        shaped[name] = record[name]
    return shaped


class SalesforceSimulator(ProviderSimulator):
    """Salesforce: SOQL queries with query locators and ``sobjects`` reads and writes."""

    name = "salesforce"
    oauth_path_prefixes = ("/services/oauth2/", "/id/")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        n = self.records_per_stream
        accounts = _accounts(RecordGenerator(self.seed, "salesforce:accounts"), n)
        contacts = _contacts(RecordGenerator(self.seed, "salesforce:contacts"), n, accounts)
        self.objects: dict[str, list[Record]] = {"Account": accounts, "Contact": contacts}
        self._by_id: dict[str, dict[str, Record]] = {
            name: {r["Id"]: r for r in records} for name, records in self.objects.items()
        }
        self._cursors: OrderedDict[str, _Cursor] = OrderedDict()
        self._locator_ids = itertools.count(1)
        self._new_ids = RecordGenerator(self.seed, "salesforce:new")
        self.api_usage = 0

    # hooks

    def oauth_rules(self) -> OAuthRules:
        # Sessions last 2 hours by default; refresh tokens do not rotate.
        return OAuthRules(
            access_token_ttl=7200,
            rotate_refresh_tokens=False,
            allow_client_credentials=True,
            access_token_prefix=f"{_ORG_ID}!AQsim.",
            refresh_token_prefix="5Aep861sim.",
            default_scope="api refresh_token",
        )

    def add_routes(self, app: web.Application) -> None:
        router = app.router
        router.add_get("/services/oauth2/authorize", self.authorize)
        router.add_post("/services/oauth2/token", self._token)
        router.add_post("/services/oauth2/revoke", self._revoke)
        router.add_get("/services/oauth2/revoke", self._revoke)
        router.add_get(f"{_DATA}/query", self._query)
        router.add_get(f"{_DATA}/query/{{locator}}", self._query_more)
        router.add_get(f"{_DATA}/limits", self._limits)
        router.add_post(f"{_DATA}/sobjects/{{sobject}}", self._create)
        router.add_get(f"{_DATA}/sobjects/{{sobject}}/{{id}}", self._retrieve)
        router.add_patch(f"{_DATA}/sobjects/{{sobject}}/{{id}}", self._update)

    def token_payload(self, request: web.Request, grant: TokenGrant) -> dict[str, Any]:
        origin = origin_of(request)
        identity = f"{origin}/id/{_ORG_ID}/{_USER_ID}"
        issued_at = str(int(grant.issued_at * 1000))
        secret = self.oauth.clients.get(grant.client_id, SIM_CLIENT_SECRET)
        # Documented: Base64 HMAC-SHA256 of id + issued_at, keyed with the client secret.
        digest = hmac.new(secret.encode(), (identity + issued_at).encode(), hashlib.sha256)
        payload: dict[str, Any] = {"access_token": grant.access_token}
        if grant.refresh_token is not None and grant.grant_type != "refresh_token":
            payload["refresh_token"] = grant.refresh_token  # never re-sent on refresh
        payload.update(
            {
                "signature": base64.b64encode(digest.digest()).decode(),
                "scope": grant.scope or "api refresh_token",
                "instance_url": origin,
                "id": identity,
                "token_type": "Bearer",
                "issued_at": issued_at,
            }
        )
        return payload

    def rate_limited_response(self, request: web.Request, retry_after: int) -> web.Response:
        # Real Salesforce answers an exhausted daily limit with 403; the fault uses 429.
        return SalesforceError(
            429, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."
        ).response()

    def server_error_response(self, request: web.Request, status: int) -> web.Response:
        if status == 503:
            return SalesforceError(
                503, "SERVER_UNAVAILABLE", "Server temporarily unavailable"
            ).response()
        return SalesforceError(
            status,
            "UNKNOWN_EXCEPTION",
            "An unexpected error occurred. Please include this ErrorId if you contact support: "
            "1234567890-12345 (-1234567890)",
        ).response()

    def not_found_response(self, request: web.Request) -> web.Response:
        return SalesforceError(404, "NOT_FOUND", "The requested resource does not exist").response()

    def decorate_response(self, request: web.Request, response: web.StreamResponse) -> None:
        if request.path.startswith(_DATA):
            response.headers["Sforce-Limit-Info"] = f"api-usage={self.api_usage}/{_DAILY_API_LIMIT}"

    # auth

    def _authenticate(self, request: web.Request) -> None:
        self.api_usage += 1
        check = self.oauth.check(bearer_token(request, ("bearer", "oauth")))
        if check.status is not TokenStatus.VALID:
            raise SalesforceError(401, "INVALID_SESSION_ID", "Session expired or invalid")

    # queries

    async def _query(self, request: web.Request) -> web.Response:
        try:
            self._authenticate(request)
            soql = request.query.get("q")
            if not soql:
                raise SalesforceError(400, "MALFORMED_QUERY", "A query string has to be specified")
            query = parse_soql(soql)
            records = self.objects[query.sobject]
            if query.where:
                records = [
                    r for r in records if all(op(r[name], value) for name, op, value in query.where)
                ]
            if query.order:
                key = query.order
                records = sorted(
                    records,
                    key=lambda r: (r[key] is None, r[key] if r[key] is not None else ""),
                    reverse=query.descending,
                )
            if query.limit is not None:
                records = records[: query.limit]
            cursor = _Cursor(query.sobject, records, query.fields, self._batch_size(request))
            return json_response(self._page(cursor, 0, None))
        except SalesforceError as exc:
            return exc.response()

    async def _query_more(self, request: web.Request) -> web.Response:
        try:
            self._authenticate(request)
            locator, _, offset = request.match_info["locator"].rpartition("-")
            cursor = self._cursors.get(locator)
            if cursor is None or not offset.isdigit():
                raise SalesforceError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
            return json_response(self._page(cursor, int(offset), locator))
        except SalesforceError as exc:
            return exc.response()

    def _batch_size(self, request: web.Request) -> int:
        options = request.headers.get("Sforce-Query-Options", "")
        match = re.search(r"batchSize\s*=\s*(\d+)", options)
        # Salesforce treats the batch size as a hint within 200-2000.
        return min(max(int(match.group(1)), 200), 2000) if match else 2000

    def _page(self, cursor: _Cursor, offset: int, locator: str | None) -> Record:
        end = offset + cursor.batch
        done = end >= len(cursor.records)
        page: Record = {"totalSize": len(cursor.records), "done": done}
        if not done:
            if locator is None:
                locator = f"01gSIM{next(self._locator_ids):012d}"
                self._cursors[locator] = cursor
                if len(self._cursors) > _MAX_LOCATORS:
                    self._cursors.popitem(last=False)
            page["nextRecordsUrl"] = f"{_DATA}/query/{locator}-{end}"
        page["records"] = [
            _with_attributes(cursor.sobject, r, cursor.fields) for r in cursor.records[offset:end]
        ]
        return page

    async def _limits(self, request: web.Request) -> web.Response:
        try:
            self._authenticate(request)
        except SalesforceError as exc:
            return exc.response()
        remaining = max(_DAILY_API_LIMIT - self.api_usage, 0)
        return json_response(
            {"DailyApiRequests": {"Max": _DAILY_API_LIMIT, "Remaining": remaining}}
        )

    # sobjects

    def _sobject(self, request: web.Request) -> str:
        name = request.match_info["sobject"]
        if name not in self.objects:
            raise SalesforceError(404, "NOT_FOUND", "The requested resource does not exist")
        return name

    def _record(self, request: web.Request) -> tuple[str, Record]:
        sobject = self._sobject(request)
        record = self._by_id[sobject].get(request.match_info["id"])
        if record is None:
            raise SalesforceError(404, "NOT_FOUND", "The requested resource does not exist")
        return sobject, record

    async def _retrieve(self, request: web.Request) -> web.Response:
        try:
            self._authenticate(request)
            sobject, record = self._record(request)
            fields = _FIELDS[sobject]
            if "fields" in request.query:
                resolve = _field_resolver(sobject)
                fields = tuple(resolve(name) for name in request.query["fields"].split(","))
            return json_response(_with_attributes(sobject, record, fields))
        except SalesforceError as exc:
            return exc.response()

    async def _body(self, request: web.Request, sobject: str) -> Record:
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            raise SalesforceError(
                400, "JSON_PARSER_ERROR", "The request body is not valid JSON"
            ) from None
        if not isinstance(body, dict):
            raise SalesforceError(400, "JSON_PARSER_ERROR", "Expected a JSON object")
        unknown = [k for k in body if k not in _FIELDS[sobject]]
        if unknown:
            raise SalesforceError(
                400,
                "INVALID_FIELD",
                f"No such column '{unknown[0]}' on sobject of type {sobject}",
                fields=[],
            )
        read_only = [k for k in body if k in _READ_ONLY or (sobject == "Contact" and k == "Name")]
        if read_only:
            raise SalesforceError(
                400,
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                f"Unable to create/update fields: {', '.join(read_only)}. Please check the "
                "security settings of this field and verify that it is read/write for your "
                "profile or permission set.",
                fields=read_only,
            )
        return body

    def _touch(self, sobject: str, record: Record) -> None:
        stamp = format_datetime(self.clock())
        record["LastModifiedDate"] = stamp
        record["SystemModstamp"] = stamp
        if sobject == "Contact":
            record["Name"] = (
                f"{record.get('FirstName') or ''} {record.get('LastName') or ''}".strip()
            )

    async def _update(self, request: web.Request) -> web.Response:
        try:
            self._authenticate(request)
            sobject, record = self._record(request)
            record.update(await self._body(request, sobject))
            self._touch(sobject, record)
        except SalesforceError as exc:
            return exc.response()
        return web.Response(status=204)

    async def _create(self, request: web.Request) -> web.Response:
        try:
            self._authenticate(request)
            sobject = self._sobject(request)
            body = await self._body(request, sobject)
            required = "Name" if sobject == "Account" else "LastName"
            if not body.get(required):
                raise SalesforceError(
                    400,
                    "REQUIRED_FIELD_MISSING",
                    f"Required fields are missing: [{required}]",
                    fields=[required],
                )
        except SalesforceError as exc:
            return exc.response()
        prefix = "001SIM" if sobject == "Account" else "003SIM"
        record: Record = dict.fromkeys(_FIELDS[sobject])
        record.update(body)
        record["Id"] = self._new_ids.ident(prefix, 12)
        record["IsDeleted"] = False
        record["CreatedDate"] = format_datetime(self.clock())
        self._touch(sobject, record)
        self.objects[sobject].append(record)
        self._by_id[sobject][record["Id"]] = record
        return json_response({"id": record["Id"], "success": True, "errors": []}, status=201)

    # OAuth

    async def _token(self, request: web.Request) -> web.Response:
        form = await read_form(request)
        try:
            grant = self.oauth.token_request(form, request.headers.get("Authorization"))
        except OAuthError as exc:
            description = {
                "invalid_grant": "authentication failure",
                "invalid_client": "invalid client credentials",
            }.get(exc.error, exc.description)
            if exc.error == "invalid_grant" and "expired" in exc.description:
                description = "expired access/refresh token"
            return json_response({"error": exc.error, "error_description": description}, 400)
        return json_response(self.token_payload(request, grant))

    async def _revoke(self, request: web.Request) -> web.Response:
        form = await read_form(request) if request.method == "POST" else dict(request.query)
        if not self.oauth.revoke(form.get("token", "")):
            return json_response(
                {
                    "error": "unsupported_token_type",
                    "error_description": "this token type is not supported",
                },
                400,
            )
        return web.Response(status=200)


SIMULATOR = SalesforceSimulator
