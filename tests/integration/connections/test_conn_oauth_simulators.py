"""The authorization-code flow against the simulators' provider quirks, and the proxy on top."""

from __future__ import annotations

from interlink.simulators import serve_simulator
from tests.integration.connections.conn_support import connection_id_of, running_hub

AFTER = "https://app.example.com/connected"


async def test_hubspot_flow_stores_tokens_and_proxies(sqlite_url: str) -> None:
    async with serve_simulator("hubspot", records=5) as sim:
        async with running_hub(sqlite_url, {"hubspot": sim.url}) as hub:
            await hub.oauth_app("hubspot")
            callback = await hub.connect("hubspot", redirect_after=AFTER)
            assert callback.status_code == 303, callback.text
            assert callback.headers["location"].startswith(AFTER + "?connection_id=con_")
            connection_id = connection_id_of(callback)
            shown = await hub.admin.get(f"/v1/tenants/{hub.tenant_id}/connections/{connection_id}")
            assert shown.json()["status"] == "active"
            assert "credentials" not in shown.json() and "access_token" not in shown.text
            async with hub.client(hub.key) as app:
                answer = await app.get(f"/v1/proxy/{connection_id}/crm/v3/objects/contacts")
            assert answer.status_code == 200, answer.text
            assert len(answer.json()["results"]) == 5
            assert answer.headers["x-interlink-attempts"] == "1"


async def test_salesforce_instance_url_becomes_config_and_base_url(sqlite_url: str) -> None:
    async with serve_simulator("salesforce", records=3) as sim:
        # The login host differs from the instance: only the login origin is overridden.
        async with running_hub(sqlite_url, {"salesforce": sim.url}) as hub:
            await hub.oauth_app("salesforce")
            callback = await hub.connect("salesforce", redirect_after=AFTER)
            connection_id = connection_id_of(callback)
            shown = (
                await hub.admin.get(f"/v1/tenants/{hub.tenant_id}/connections/{connection_id}")
            ).json()
            assert shown["config"]["instance_url"] == sim.url
            assert shown["expires_at"] is not None  # default_expires_in: Salesforce sends none
            token_request = next(
                r for r in sim.simulator.requests if r.path == "/services/oauth2/token"
            )
            assert "code_verifier=" in token_request.body.decode()  # PKCE
            async with hub.client(hub.key) as app:
                limits = await app.get(f"/v1/proxy/{connection_id}/limits")
            assert limits.status_code == 200, limits.text
            assert sim.simulator.requests[-1].path == "/services/data/v61.0/limits"


async def test_github_token_exchange_asks_for_json(sqlite_url: str) -> None:
    async with serve_simulator("github") as sim:
        async with running_hub(sqlite_url, {"github": sim.url}) as hub:
            await hub.oauth_app("github")
            callback = await hub.connect("github", redirect_after=AFTER)
            assert callback.status_code == 303, callback.text
            token_request = next(
                r for r in sim.simulator.requests if r.path == "/login/oauth/access_token"
            )
            assert token_request.headers["Accept"] == "application/json"
            connection_id = connection_id_of(callback)
            async with hub.client(hub.key) as app:
                user = await app.get(
                    f"/v1/proxy/{connection_id}/user",
                    headers={"Cookie": "session=1", "X-Custom": "kept"},
                )
            assert user.status_code == 200, user.text
            sent = sim.simulator.requests[-1].headers
            assert sent["X-GitHub-Api-Version"] == "2022-11-28"
            assert sent["Authorization"].startswith("Bearer ghu_")
            assert "Cookie" not in sent and sent["X-Custom"] == "kept"


async def test_denied_consent_ends_on_a_page_and_an_errored_connection(sqlite_url: str) -> None:
    async with serve_simulator("hubspot", faults="access_denied") as sim:
        async with running_hub(sqlite_url, {"hubspot": sim.url}) as hub:
            await hub.oauth_app("hubspot")
            callback = await hub.connect("hubspot", redirect_after=AFTER)
            assert callback.status_code == 400
            assert callback.headers["content-type"].startswith("text/html")
            assert "access_denied" in callback.text and "Connection failed" in callback.text
            listed = (await hub.admin.get(f"/v1/tenants/{hub.tenant_id}/connections")).json()
            assert [c["status"] for c in listed["data"]] == ["error"]
            assert "access_denied" in listed["data"][0]["status_reason"]


async def test_replayed_forged_and_missing_states_are_refused(sqlite_url: str) -> None:
    async with serve_simulator("hubspot") as sim:
        async with running_hub(sqlite_url, {"hubspot": sim.url}) as hub:
            await hub.oauth_app("hubspot")
            started = await hub.admin.post(
                f"/v1/tenants/{hub.tenant_id}/connections/oauth/start",
                json={"provider": "hubspot"},
            )
            url = started.json()["authorize_url"]
            first = await hub.follow(url)
            assert first.status_code == 200 and "is connected" in first.text
            replay = await hub.follow(url)  # same state, fresh code
            assert replay.status_code == 400 and "already used" in replay.text
            state = url.split("state=")[1].split("&")[0]
            forged = state[:-4] + ("AAAA" if not state.endswith("AAAA") else "BBBB")
            # Past the query's bounds too the browser gets the page, not a JSON 422.
            too_long = (f"state={'s' * 301}&code=x", f"state={state}&error={'e' * 3000}")
            for query in (f"state={forged}&code=x", "code=x", "state=a.b.c", "error=x", *too_long):
                page = await hub.admin.get(f"/oauth/callback?{query}")
                assert page.status_code == 400, query
                assert page.headers["content-type"].startswith("text/html")
            fresh = await hub.admin.post(
                f"/v1/tenants/{hub.tenant_id}/connections/oauth/start",
                json={"provider": "hubspot"},
            )
            fresh_state = fresh.json()["authorize_url"].split("state=")[1].split("&")[0]
            page = await hub.admin.get(f"/oauth/callback?state={fresh_state}&code={'c' * 4001}")
            assert page.status_code == 400 and "Connection failed" in page.text
            assert page.headers["content-type"].startswith("text/html")


async def test_start_refuses_bad_input_with_problems(sqlite_url: str) -> None:
    async with running_hub(sqlite_url) as hub:
        base = f"/v1/tenants/{hub.tenant_id}/connections/oauth/start"
        missing_app = await hub.admin.post(base, json={"provider": "hubspot"})
        assert missing_app.status_code == 422
        assert missing_app.json()["type"].endswith("/oauth-app-missing")
        await hub.oauth_app("hubspot")
        for body, slug in (
            ({"provider": "nope"}, "unknown-provider"),
            ({"provider": "sendgrid"}, "oauth-unsupported"),
            ({"provider": "hubspot", "redirect_after": "javascript:alert(1)"}, "validation-error"),
        ):
            answer = await hub.admin.post(base, json=body)
            assert answer.status_code == 422, body
            assert answer.json()["type"].endswith("/" + slug), answer.text
        await hub.oauth_app("shopify")
        shop = await hub.admin.post(base, json={"provider": "shopify", "config": {"shop": "a.b"}})
        assert shop.json()["type"].endswith("/invalid-config")
