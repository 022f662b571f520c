"""OAuth2: start a flow (tenant-scoped), the public callback, and the tenant's OAuth apps."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from interlink.api.deps import PageDep, RuntimeDep, TenantDep
from interlink.api.errors import Problem
from interlink.api.models import ListResponse, paginate
from interlink.audit import record_action
from interlink.connections import apps
from interlink.connections.api.common import ProviderPath, problem_of_flow
from interlink.connections.api.schemas import OAuthAppPublic, OAuthAppPut, OAuthStart, OAuthStarted
from interlink.connections.oauth import STATE_TTL, FlowError, callback_url, finish_flow, start_flow
from interlink.connections.signing import render_page
from interlink.connections.state import connections_state

router = APIRouter(tags=["oauth"])
_APPS = "/v1/tenants/{tenant_id}/oauth-apps"


@router.post("/v1/tenants/{tenant_id}/connections/oauth/start", summary="Start OAuth2 + PKCE")
async def start_oauth(body: OAuthStart, scope: TenantDep, runtime: RuntimeDep) -> OAuthStarted:
    """Answer the provider's authorize URL (with a signed, single-use state valid 10 minutes)
    to send the user's browser to; the flow ends at ``GET /oauth/callback``."""
    state = connections_state(runtime)
    try:
        url = await start_flow(
            state,
            tenant_id=scope.tenant_id,
            provider_name=body.provider,
            scopes=body.scopes,
            redirect_after=body.redirect_after,
            config=body.config,
            connection_id=body.connection_id,
        )
    except FlowError as error:
        raise problem_of_flow(error) from error
    return OAuthStarted(
        authorize_url=url, redirect_uri=callback_url(state), expires_in=int(STATE_TTL)
    )


@router.get(
    "/oauth/callback",
    summary="Where providers send the browser back (no bearer token)",
    response_class=HTMLResponse,
    responses={303: {"description": "Connected: on to redirect_after"}},
)
async def oauth_callback(
    runtime: RuntimeDep,
    state: str = "",
    code: str | None = None,
    error: str | None = None,
    error_description: str | None = None,
    realm_id: Annotated[str | None, Query(alias="realmId")] = None,
) -> Response:
    # The browser lands here whatever the provider (or anyone) put in the query: values past
    # their bounds end the flow on the page, not on a JSON 422. A state or code that long is no
    # state or code Interlink or a provider made; an error's text is only shown, so it is cut.
    values = {
        "state": state if len(state) <= 300 else "",
        "code": code if code is None or len(code) <= 4000 else None,
        "error": None if error is None else error[:200],
        "error_description": None if error_description is None else error_description[:1000],
        "realmId": realm_id if realm_id is None or len(realm_id) <= 200 else None,
    }
    query = {
        key: value for key, value in values.items() if value is not None and "\x00" not in value
    }
    result = await finish_flow(connections_state(runtime), query)
    if result.ok and result.redirect:
        return RedirectResponse(result.redirect, status_code=303)
    page = render_page(result.title, result.message, success=result.ok, link=result.redirect)
    return HTMLResponse(page, status_code=200 if result.ok else 400)


def _public(row: dict[str, object], redirect_uri: str) -> OAuthAppPublic:
    return OAuthAppPublic(**apps.public_app(row), redirect_uri=redirect_uri)


@router.put(_APPS + "/{provider}", summary="Set the tenant's OAuth client for a provider")
async def put_oauth_app(
    provider: ProviderPath, body: OAuthAppPut, scope: TenantDep, runtime: RuntimeDep
) -> OAuthAppPublic:
    state = connections_state(runtime)
    if provider not in state.catalog:
        raise Problem(422, f"provider: unknown provider '{provider}'", slug="unknown-provider")
    async with runtime.db.transaction() as conn:
        row, created = await apps.upsert_app(
            conn, runtime.vault, tenant_id=scope.tenant_id, provider=provider,
            client_id=body.client_id, client_secret=body.client_secret, scopes=body.scopes,
        )  # fmt: skip
        action = "oauth_app.created" if created else "oauth_app.updated"
        await record_action(conn, scope.principal, action, tenant_id=scope.tenant_id,
                            target=row["id"], details={"provider": provider})  # fmt: skip
    return _public(row, callback_url(state))


@router.get(_APPS, summary="List the tenant's OAuth clients (secrets never shown)")
async def list_oauth_apps(
    scope: TenantDep, runtime: RuntimeDep, page: PageDep
) -> ListResponse[OAuthAppPublic]:
    async with runtime.db.transaction() as conn:
        rows = await apps.list_apps(conn, scope.tenant_id, after=page.after, limit=page.limit + 1)
    items, cursor = paginate(rows, page)
    redirect = callback_url(connections_state(runtime))
    return ListResponse(data=[_public(r, redirect) for r in items], next_cursor=cursor)


@router.get(_APPS + "/{provider}", summary="Get the tenant's OAuth client for a provider")
async def get_oauth_app(
    provider: ProviderPath, scope: TenantDep, runtime: RuntimeDep
) -> OAuthAppPublic:
    async with runtime.db.transaction() as conn:
        row = await apps.get_app(conn, scope.tenant_id, provider)
    if row is None:
        raise Problem.not_found("oauth app", provider)
    return _public(row, callback_url(connections_state(runtime)))


@router.delete(_APPS + "/{provider}", status_code=204, summary="Remove an OAuth client")
async def delete_oauth_app(
    provider: ProviderPath, scope: TenantDep, runtime: RuntimeDep
) -> Response:
    async with runtime.db.transaction() as conn:
        deleted = await apps.delete_app(conn, scope.tenant_id, provider)
        if deleted:
            await record_action(conn, scope.principal, "oauth_app.deleted",
                                tenant_id=scope.tenant_id, target=provider)  # fmt: skip
    if not deleted:
        raise Problem.not_found("oauth app", provider)
    return Response(status_code=204)
