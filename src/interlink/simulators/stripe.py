"""A Stripe API simulator: customers, products, invoices and charges.

Wire format as documented by Stripe: list objects ``{"object": "list", "data", "has_more",
"url"}`` newest first with ``limit`` (1-100, default 10), ``starting_after``/``ending_before`` and
``created[gt|gte|lt|lte]``; form-encoded writes with bracket notation (``metadata[k]=v``) and
``Idempotency-Key``; errors ``{"error": {"type", "message", "code"?, "param"?}}``; a
``Request-Id`` on every answer; auth by ``Authorization: Bearer sk_test_...`` or HTTP Basic with
the key as username. Stripe Connect OAuth lives under ``/oauth/`` (``connect.stripe.com``).
"""

# ruff: noqa: S106  (token prefixes are fixtures)
from __future__ import annotations

import bisect
import hashlib
import itertools
import re
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from aiohttp import web

from interlink.simulators.app import ProviderSimulator
from interlink.simulators.http import basic_credentials, bearer_token, json_response, read_form
from interlink.simulators.oauth import (
    SIM_CLIENT_ID,
    OAuthError,
    OAuthRules,
    TokenGrant,
    TokenStatus,
)
from interlink.simulators.records import RecordGenerator

__all__ = ["SIMULATOR", "StripeSimulator"]

_DOCS = "https://stripe.com/docs/error-codes"
_BRACKET_RE = re.compile(r"^([a-z_]+)\[([A-Za-z0-9_\-]+)\]$")
_CUSTOMER_FIELDS = frozenset({"name", "email", "description", "phone", "metadata", "address"})
_ADDRESS_FIELDS = frozenset({"line1", "line2", "city", "state", "postal_code", "country"})
_CREATED_OPS: dict[str, Callable[[int, int], bool]] = {
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
}
Record = dict[str, Any]


class StripeError(Exception):
    """A Stripe API error answered as ``{"error": {...}}``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        body: dict[str, Any] = {"message": message, "type": type_}
        if code is not None:
            body["code"] = code
            body["doc_url"] = f"{_DOCS}/{code.replace('_', '-')}"
        if param is not None:
            body["param"] = param
        self.status = status
        self.body = {"error": body}

    def response(self) -> web.Response:
        """The error as an HTTP response."""
        return json_response(self.body, status=self.status)


class _StripeList:
    """Records of one resource, oldest first, with Stripe's newest-first cursor paging."""

    def __init__(self, object_name: str, url: str, records: list[Record]) -> None:
        self.object_name = object_name
        self.url = url
        self.items = records
        self.index = {record["id"]: i for i, record in enumerate(records)}

    def add(self, record: Record) -> None:
        self.index[record["id"]] = len(self.items)
        self.items.append(record)

    def get(self, record_id: str) -> Record:
        return self.items[self._position(record_id, "id", status=404)]

    def page(
        self,
        limit: int,
        starting_after: str | None,
        ending_before: str | None,
        keep: Callable[[Record], bool] | None,
    ) -> tuple[list[Record], bool]:
        items = self.items
        positions: Sequence[int] = (
            range(len(items)) if keep is None else [i for i, r in enumerate(items) if keep(r)]
        )
        count = len(positions)
        if starting_after is not None:
            end = bisect.bisect_left(positions, self._position(starting_after, "starting_after"))
            start = max(0, end - limit)
            chosen, has_more = positions[start:end], start > 0
        elif ending_before is not None:
            anchor = self._position(ending_before, "ending_before")
            start = bisect.bisect_right(positions, anchor)
            chosen, has_more = positions[start : start + limit], start + limit < count
        else:
            start = max(0, count - limit)
            chosen, has_more = positions[start:], start > 0
        return [items[i] for i in reversed(chosen)], has_more

    def _position(self, record_id: str, param: str, status: int = 400) -> int:
        position = self.index.get(record_id)
        if position is None:
            raise StripeError(
                status,
                f"No such {self.object_name}: '{record_id}'",
                code="resource_missing",
                param=param,
            )
        return position


def _customer(customer_id: str, created: int, invoice_prefix: str, **fields: Any) -> Record:
    """A Stripe customer object: every field Stripe sends, ``fields`` filled in."""
    customer: Record = {
        "id": customer_id,
        "object": "customer",
        "address": None,
        "balance": 0,
        "created": created,
        "currency": None,
        "default_source": None,
        "delinquent": False,
        "description": None,
        "discount": None,
        "email": None,
        "invoice_prefix": invoice_prefix,
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": {},
        "name": None,
        "next_invoice_sequence": 1,
        "phone": None,
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
    }
    customer.update(fields)
    return customer


def _customers(gen: RecordGenerator, count: int) -> list[Record]:
    records = []
    for created in gen.timestamps(count):
        person = gen.person()
        city, country = gen.place()
        # The generator's draws stay in this order, so a seed keeps giving the same records.
        customer_id = gen.ident("cus_", 14)
        address = {
            "city": city,
            "country": country,
            "line1": f"{gen.rng.randrange(1, 200)} Main Street",
            "line2": None,
            "postal_code": f"{gen.rng.randrange(10000, 99999)}",
            "state": None,
        }
        records.append(
            _customer(
                customer_id,
                created,
                gen.ident("", 8, "0123456789ABCDEF"),
                address=address,
                currency="usd",
                email=person.email,
                name=f"{person.first_name} {person.last_name}",
                phone=gen.phone(),
            )
        )
    return records


def _products(gen: RecordGenerator, count: int) -> list[Record]:
    return [
        {
            "id": gen.ident("prod_", 14),
            "object": "product",
            "active": gen.rng.random() > 0.1,
            "created": created,
            "default_price": None,
            "description": gen.sentence(6),
            "images": [],
            "livemode": False,
            "marketing_features": [],
            "metadata": {},
            "name": gen.product(),
            "package_dimensions": None,
            "shippable": None,
            "statement_descriptor": None,
            "tax_code": None,
            "type": "service",
            "unit_label": None,
            "updated": created + gen.rng.randrange(0, 30 * 86_400),
            "url": None,
        }
        for created in gen.timestamps(count)
    ]


def _invoices(gen: RecordGenerator, count: int, customers: list[Record]) -> list[Record]:
    records = []
    for number, created in enumerate(gen.timestamps(count), start=1):
        customer = gen.rng.choice(customers) if customers else None
        invoice_id = gen.ident("in_", 24)
        lines: list[Record] = []
        for _ in range(gen.rng.randint(1, 3)):
            amount = gen.amount(500, 50_000)
            lines.append(
                {
                    "id": gen.ident("il_", 24),
                    "object": "line_item",
                    "amount": amount,
                    "currency": "usd",
                    "description": gen.product(),
                    "livemode": False,
                    "metadata": {},
                    "period": {"end": created, "start": created - 30 * 86_400},
                    "quantity": 1,
                    "type": "invoiceitem",
                }
            )
        total = sum(line["amount"] for line in lines)
        paid = gen.rng.random() < 0.8
        records.append(
            {
                "id": invoice_id,
                "object": "invoice",
                "account_country": "US",
                "amount_due": total,
                "amount_paid": total if paid else 0,
                "amount_remaining": 0 if paid else total,
                "attempt_count": 1 if paid else 0,
                "attempted": paid,
                "billing_reason": "manual",
                "collection_method": "charge_automatically",
                "created": created,
                "currency": "usd",
                "customer": customer["id"] if customer else None,
                "customer_email": customer["email"] if customer else None,
                "customer_name": customer["name"] if customer else None,
                "description": None,
                "due_date": None,
                "lines": {
                    "object": "list",
                    "data": lines,
                    "has_more": False,
                    "total_count": len(lines),
                    "url": f"/v1/invoices/{invoice_id}/lines",
                },
                "livemode": False,
                "metadata": {},
                "number": f"SIM-{number:05d}",
                "paid": paid,
                "period_end": created,
                "period_start": created - 30 * 86_400,
                "status": "paid" if paid else "open",
                "subtotal": total,
                "total": total,
            }
        )
    return records


def _charges(gen: RecordGenerator, count: int, customers: list[Record]) -> list[Record]:
    records = []
    for created in gen.timestamps(count):
        customer = gen.rng.choice(customers) if customers else None
        amount = gen.amount(500, 100_000)
        succeeded = gen.rng.random() < 0.95
        records.append(
            {
                "id": gen.ident("ch_", 24),
                "object": "charge",
                "amount": amount,
                "amount_captured": amount if succeeded else 0,
                "amount_refunded": 0,
                "balance_transaction": gen.ident("txn_", 24) if succeeded else None,
                "captured": succeeded,
                "created": created,
                "currency": "usd",
                "customer": customer["id"] if customer else None,
                "description": None,
                "disputed": False,
                "failure_code": None if succeeded else "card_declined",
                "failure_message": None if succeeded else "Your card was declined.",
                "livemode": False,
                "metadata": {},
                "outcome": {
                    "network_status": "approved_by_network" if succeeded else "declined_by_network",
                    "risk_level": "normal",
                    "seller_message": "Payment complete." if succeeded else "The bank declined.",
                    "type": "authorized" if succeeded else "issuer_declined",
                },
                "paid": succeeded,
                "payment_intent": gen.ident("pi_", 24),
                "payment_method": gen.ident("pm_", 24),
                "receipt_email": customer["email"] if customer else None,
                "refunded": False,
                "status": "succeeded" if succeeded else "failed",
            }
        )
    return records


def _parse_limit(raw: str | None) -> int:
    if raw is None:
        return 10
    try:
        limit = int(raw)
    except ValueError:
        raise StripeError(
            400, f"Invalid integer: {raw}", code="parameter_invalid_integer", param="limit"
        ) from None
    if limit < 1:
        raise StripeError(
            400,
            "This value must be greater than or equal to 1.",
            code="parameter_invalid_integer",
            param="limit",
        )
    if limit > 100:
        raise StripeError(
            400,
            "This value must be less than or equal to 100.",
            code="parameter_invalid_integer",
            param="limit",
        )
    return limit


def _equal(a: int, b: int) -> bool:
    return a == b


def _created_check(compare: Callable[[int, int], bool], bound: int) -> Callable[[Record], bool]:
    return lambda record: compare(record["created"], bound)


def _field_check(key: str, value: str) -> Callable[[Record], bool]:
    return lambda record: bool(record.get(key) == value)


def _list_filter(query: Any) -> Callable[[Record], bool] | None:
    checks: list[Callable[[Record], bool]] = []
    for key, raw in query.items():
        if key == "created" or key.startswith("created["):
            op = "eq" if key == "created" else key[len("created[") : -1]
            if op != "eq" and op not in _CREATED_OPS:
                raise StripeError(
                    400, f"Received unknown parameter: {key}", code="parameter_unknown", param=key
                )
            try:
                bound = int(raw)
            except ValueError:
                raise StripeError(
                    400, f"Invalid integer: {raw}", code="parameter_invalid_integer", param=key
                ) from None
            checks.append(_created_check(_CREATED_OPS.get(op, _equal), bound))
        elif key in {"customer", "status"}:
            checks.append(_field_check(key, raw))
    if not checks:
        return None
    return lambda record: all(check(record) for check in checks)


def _parse_customer_params(form: dict[str, str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for key, value in form.items():
        match = _BRACKET_RE.match(key)
        if match:
            outer, inner = match.groups()
            if outer not in {"metadata", "address"} or (
                outer == "address" and inner not in _ADDRESS_FIELDS
            ):
                raise StripeError(
                    400, f"Received unknown parameter: {key}", code="parameter_unknown", param=key
                )
            params.setdefault(outer, {})[inner] = value
        elif key in _CUSTOMER_FIELDS - {"metadata", "address"}:
            params[key] = value or None
        else:
            raise StripeError(
                400, f"Received unknown parameter: {key}", code="parameter_unknown", param=key
            )
    return params


def _apply_customer_params(customer: Record, params: dict[str, Any]) -> None:
    for key, value in params.items():
        if key == "metadata":
            metadata = dict(customer["metadata"])
            for meta_key, meta_value in value.items():
                if meta_value == "":
                    metadata.pop(meta_key, None)  # Stripe unsets a key given an empty value
                else:
                    metadata[meta_key] = meta_value
            customer["metadata"] = metadata
        elif key == "address":
            address = dict(customer.get("address") or dict.fromkeys(_ADDRESS_FIELDS))
            address.update({k: v or None for k, v in value.items()})
            customer["address"] = address
        else:
            customer[key] = value


class StripeSimulator(ProviderSimulator):
    """Stripe: ``/v1/customers``, ``/v1/products``, ``/v1/invoices``, ``/v1/charges``."""

    name = "stripe"
    oauth_path_prefixes = ("/oauth/",)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        n = self.records_per_stream
        customers = _customers(RecordGenerator(self.seed, "stripe:customers"), n)
        self.lists: dict[str, _StripeList] = {
            "customers": _StripeList("customer", "/v1/customers", customers),
            "products": _StripeList(
                "product",
                "/v1/products",
                _products(RecordGenerator(self.seed, "stripe:products"), n),
            ),
            "invoices": _StripeList(
                "invoice",
                "/v1/invoices",
                _invoices(RecordGenerator(self.seed, "stripe:invoices"), n, customers),
            ),
            "charges": _StripeList(
                "charge",
                "/v1/charges",
                _charges(RecordGenerator(self.seed, "stripe:charges"), n, customers),
            ),
        }
        self._new_ids = RecordGenerator(self.seed, "stripe:new")
        self._idempotency: dict[str, tuple[str, int, bytes]] = {}
        self._revoked_keys: set[str] = set()
        self._request_ids = itertools.count(1)

    # hooks

    def oauth_rules(self) -> OAuthRules:
        # Connect access tokens are secret keys that never expire; refresh tokens are reusable.
        return OAuthRules(
            access_token_ttl=None,
            rotate_refresh_tokens=False,
            access_token_prefix="sk_test_",
            refresh_token_prefix="rt_",
            default_scope="read_write",
        )

    def add_routes(self, app: web.Application) -> None:
        router = app.router
        router.add_get("/v1/balance", self._balance)
        router.add_get("/v1/{resource}", self._list)
        router.add_post("/v1/customers", self._create_customer)
        router.add_get("/v1/{resource}/{id}", self._retrieve)
        router.add_post("/v1/customers/{id}", self._update_customer)
        router.add_delete("/v1/customers/{id}", self._delete_customer)
        router.add_get("/oauth/authorize", self.authorize)
        router.add_post("/oauth/token", self._token)
        router.add_post("/oauth/deauthorize", self._deauthorize)

    def token_payload(self, request: web.Request, grant: TokenGrant) -> dict[str, Any]:
        account = "acct_" + hashlib.sha256(grant.client_id.encode()).hexdigest()[:16]
        return {
            "access_token": grant.access_token,
            "livemode": False,
            "refresh_token": grant.refresh_token,
            "scope": grant.scope or "read_write",
            "stripe_publishable_key": "pk_test_" + grant.access_token[len("sk_test_") :][:24],
            "stripe_user_id": account,
            "token_type": "bearer",
        }

    def rate_limited_response(self, request: web.Request, retry_after: int) -> web.Response:
        return StripeError(
            429,
            "Request rate limit exceeded. Learn more about rate limits here "
            "https://stripe.com/docs/rate-limits.",
            code="rate_limit",
        ).response()

    def server_error_response(self, request: web.Request, status: int) -> web.Response:
        response = StripeError(status, "An unknown error occurred", type_="api_error").response()
        response.headers["Stripe-Should-Retry"] = "true"
        return response

    def not_found_response(self, request: web.Request) -> web.Response:
        return StripeError(
            404,
            f"Unrecognized request URL ({request.method}: {request.path}). Please see "
            "https://stripe.com/docs or we can help at https://support.stripe.com/.",
        ).response()

    def decorate_response(self, request: web.Request, response: web.StreamResponse) -> None:
        response.headers["Request-Id"] = f"req_sim{next(self._request_ids):011d}"

    # auth

    def _authenticate(self, request: web.Request) -> None:
        header = request.headers.get("Authorization")
        basic = basic_credentials(header)
        key = basic[0] if basic else bearer_token(request)
        if not key:
            raise StripeError(
                401,
                "You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
                "YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, "
                "or we can help at https://support.stripe.com/.",
            )
        check = self.oauth.check(key)
        if check.status is TokenStatus.VALID:
            return
        masked = f"{key[:8]}{'*' * 12}{key[-4:]}"
        if check.status is TokenStatus.EXPIRED:
            raise StripeError(401, f"Expired API Key provided: {masked}", code="api_key_expired")
        if key.startswith(("sk_test_", "rk_test_")) and key not in self._revoked_keys:
            return  # a static test-mode secret or restricted key
        raise StripeError(401, f"Invalid API Key provided: {masked}")

    # API routes

    async def _balance(self, request: web.Request) -> web.Response:
        try:
            self._authenticate(request)
        except StripeError as exc:
            return exc.response()
        funds = [{"amount": 0, "currency": "usd", "source_types": {"card": 0}}]
        return json_response(
            {"object": "balance", "available": funds, "livemode": False, "pending": funds}
        )

    async def _list(self, request: web.Request) -> web.Response:
        try:
            self._authenticate(request)
            resource = self.lists.get(request.match_info["resource"])
            if resource is None:
                return self.not_found_response(request)
            query = request.query
            data, has_more = resource.page(
                _parse_limit(query.get("limit")),
                query.get("starting_after"),
                query.get("ending_before"),
                _list_filter(query),
            )
        except StripeError as exc:
            return exc.response()
        return json_response(
            {"object": "list", "data": data, "has_more": has_more, "url": resource.url}
        )

    async def _retrieve(self, request: web.Request) -> web.Response:
        try:
            self._authenticate(request)
            resource = self.lists.get(request.match_info["resource"])
            if resource is None:
                return self.not_found_response(request)
            return json_response(resource.get(request.match_info["id"]))
        except StripeError as exc:
            return exc.response()

    async def _create_customer(self, request: web.Request) -> web.Response:
        return await self._idempotent(request, self._do_create_customer)

    async def _update_customer(self, request: web.Request) -> web.Response:
        return await self._idempotent(request, self._do_update_customer)

    async def _do_create_customer(self, request: web.Request, form: dict[str, str]) -> web.Response:
        params = _parse_customer_params(form)
        customer_id = self._new_ids.ident("cus_", 14)
        invoice_prefix = self._new_ids.ident("", 8, "0123456789ABCDEF")
        customer = _customer(customer_id, int(self.clock()), invoice_prefix)
        _apply_customer_params(customer, params)
        self.lists["customers"].add(customer)
        return json_response(customer)

    async def _do_update_customer(self, request: web.Request, form: dict[str, str]) -> web.Response:
        customers = self.lists["customers"]
        current = customers.get(request.match_info["id"])
        params = _parse_customer_params(form)
        updated = dict(current)
        _apply_customer_params(updated, params)
        customers.items[customers.index[current["id"]]] = updated
        return json_response(updated)

    async def _delete_customer(self, request: web.Request) -> web.Response:
        try:
            self._authenticate(request)
            customers = self.lists["customers"]
            customer = customers.get(request.match_info["id"])
        except StripeError as exc:
            return exc.response()
        position = customers.index.pop(customer["id"])
        del customers.items[position]
        customers.index = {r["id"]: i for i, r in enumerate(customers.items)}
        return json_response({"id": customer["id"], "object": "customer", "deleted": True})

    async def _idempotent(
        self,
        request: web.Request,
        operation: Callable[[web.Request, dict[str, str]], Any],
    ) -> web.Response:
        try:
            self._authenticate(request)
            form = await read_form(request)
            key = request.headers.get("Idempotency-Key")
            fingerprint = hashlib.sha256(
                orjson.dumps([request.method, request.path, sorted(form.items())])
            ).hexdigest()
            if key is not None and key in self._idempotency:
                seen_fingerprint, status, body = self._idempotency[key]
                if seen_fingerprint != fingerprint:
                    raise StripeError(
                        400,
                        "Keys for idempotent requests can only be used with the same parameters "
                        "they were first used with. Try using a key other than "
                        f"'{key}' if you meant to execute a different request.",
                        type_="idempotency_error",
                    )
                return web.Response(
                    body=body,
                    status=status,
                    content_type="application/json",
                    headers={"Idempotency-Key": key, "Idempotent-Replayed": "true"},
                )
            response: web.Response = await operation(request, form)
        except StripeError as exc:
            response = exc.response()
        if key is not None and response.status < 500 and isinstance(response.body, bytes):
            self._idempotency[key] = (fingerprint, response.status, response.body)
            response.headers["Idempotency-Key"] = key
        return response

    # Stripe Connect OAuth

    async def _token(self, request: web.Request) -> web.Response:
        form = await read_form(request)
        form.setdefault("client_id", SIM_CLIENT_ID)  # Stripe identifies the platform by secret
        try:
            grant = self.oauth.token_request(form, request.headers.get("Authorization"))
        except OAuthError as exc:
            return json_response(
                {"error": exc.error, "error_description": exc.description}, status=exc.status
            )
        return json_response(self.token_payload(request, grant))

    async def _deauthorize(self, request: web.Request) -> web.Response:
        form = await read_form(request)
        account = form.get("stripe_user_id", "")
        if not account:
            return json_response(
                {"error": "invalid_request", "error_description": "stripe_user_id is required"},
                status=400,
            )
        # Every token of the simulated platform belongs to this one account.
        self._revoked_keys.update(self.oauth.revoke_all())
        return json_response({"stripe_user_id": account})


SIMULATOR = StripeSimulator
