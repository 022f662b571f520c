"""A GitHub REST API simulator: the authenticated user and one repository's issues.

Wire format as documented by GitHub: ``GET /repos/{owner}/{repo}/issues?state=&per_page=&page=
&since=&sort=&direction=`` (``state`` defaults to ``open``) with an RFC 8288 ``Link`` header
(``rel="next"``, ``"last"``, ``"prev"``, ``"first"``) pointing at ``/repositories/{id}/issues``;
``X-RateLimit-Limit/Remaining/Reset/Used/Resource`` on every API answer; errors
``{"message", "documentation_url", "status"}``; secondary rate limits as 403 or 429 with
``retry-after``. OAuth (GitHub App user tokens): ``/login/oauth/authorize`` and
``/login/oauth/access_token``, which answers form-encoded unless ``Accept: application/json``,
reports errors with HTTP 200, issues 8-hour tokens and rotates refresh tokens; revocation is
``DELETE /applications/{client_id}/token``.
"""

# ruff: noqa: S105, S106  (token prefixes and types are fixtures)
from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import orjson
from aiohttp import web

from interlink.simulators.app import ProviderSimulator
from interlink.simulators.http import (
    basic_credentials,
    bearer_token,
    json_response,
    origin_of,
    read_form,
)
from interlink.simulators.oauth import OAuthError, OAuthRules, TokenGrant, TokenStatus
from interlink.simulators.records import RecordGenerator

__all__ = ["REPOSITORY", "SIMULATOR", "GitHubSimulator"]

REPOSITORY = ("octocat", "Hello-World")
"""The one repository the simulator serves (owner, name)."""
_REPOSITORY_ID = 1296269
_API_VERSIONS = frozenset({"2022-11-28"})
_DOCS = "https://docs.github.com/rest"
_HOURLY_LIMIT = 5000
_UNAUTHENTICATED_LIMIT = 60
_LABELS = (
    ("bug", "d73a4a"),
    ("enhancement", "a2eeef"),
    ("documentation", "0075ca"),
    ("good first issue", "7057ff"),
    ("question", "d876e3"),
)
_TOKEN_ERRORS = {
    "invalid_client": (
        "incorrect_client_credentials",
        "The client_id and/or client_secret passed are incorrect.",
    ),
    "unsupported_grant_type": ("unsupported_grant_type", "The grant type is not supported."),
}

Record = dict[str, Any]


def github_datetime(epoch: float) -> str:
    """GitHub's timestamp format, e.g. ``2024-01-05T10:20:30Z``."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class GitHubError(Exception):
    """An API error answered as ``{"message", "documentation_url", "status"}``."""

    def __init__(self, status: int, message: str, documentation_url: str = _DOCS) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.documentation_url = documentation_url

    def response(self) -> web.Response:
        """The error as an HTTP response."""
        return json_response(
            {
                "message": self.message,
                "documentation_url": self.documentation_url,
                "status": str(self.status),
            },
            status=self.status,
        )


def _issues(gen: RecordGenerator, count: int) -> list[Record]:
    owner, name = REPOSITORY
    records = []
    for number, created in enumerate(gen.timestamps(count), start=1):
        person = gen.person()
        login = f"{person.first_name}{person.last_name}".lower().replace(" ", "").replace("-", "")
        updated = created + gen.rng.randrange(0, 30 * 86_400)
        closed = number % 5 == 0
        labels = [
            {
                "id": 208045946 + index,
                "node_id": f"MDU6TGFiZWwy{index:08d}",
                "url": f"/repos/{owner}/{name}/labels/{label.replace(' ', '%20')}",
                "name": label,
                "color": color,
                "default": index == 0,
                "description": None,
            }
            for index, (label, color) in enumerate(_LABELS)
            if gen.rng.random() < 0.25
        ]
        records.append(
            {
                "id": 1_000_000_000 + number,
                "node_id": gen.ident("I_kwDOABCD", 10),
                "number": number,
                "title": gen.sentence(gen.rng.randint(3, 7)),
                "user": {
                    "login": login,
                    "id": 100 + gen.rng.randrange(0, 10_000),
                    "node_id": gen.ident("MDQ6VXNlcj", 6),
                    "type": "User",
                    "site_admin": False,
                },
                "labels": labels,
                "state": "closed" if closed else "open",
                "locked": False,
                "assignee": None,
                "assignees": [],
                "milestone": None,
                "comments": gen.rng.randrange(0, 12),
                "created_at": github_datetime(created),
                "updated_at": github_datetime(updated),
                "closed_at": github_datetime(updated) if closed else None,
                "author_association": "CONTRIBUTOR",
                "active_lock_reason": None,
                "body": gen.sentence(gen.rng.randint(8, 20)),
                "state_reason": "completed" if closed else None,
                "_updated": updated,
                "_created": created,
            }
        )
    return records


def _with_urls(issue: Record, api: str) -> Record:
    owner, name = REPOSITORY
    repo_url = f"{api}/repos/{owner}/{name}"
    shaped = {
        "url": f"{repo_url}/issues/{issue['number']}",
        "repository_url": repo_url,
        "labels_url": f"{repo_url}/issues/{issue['number']}/labels{{/name}}",
        "comments_url": f"{repo_url}/issues/{issue['number']}/comments",
        "events_url": f"{repo_url}/issues/{issue['number']}/events",
        "html_url": f"https://github.com/{owner}/{name}/issues/{issue['number']}",
    }
    shaped.update((k, v) for k, v in issue.items() if not k.startswith("_"))
    return shaped


class GitHubSimulator(ProviderSimulator):
    """GitHub: ``/user``, ``/rate_limit`` and ``/repos/octocat/Hello-World/issues``."""

    name = "github"
    oauth_path_prefixes = ("/login/oauth/", "/applications/")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.issues = _issues(RecordGenerator(self.seed, "github:issues"), self.records_per_stream)
        self._request_ids = itertools.count(1)
        self._usage: dict[str, tuple[int, int]] = {}  # caller -> (window start, used)
        self._secondary_hits = 0

    # hooks

    def oauth_rules(self) -> OAuthRules:
        return OAuthRules(
            access_token_ttl=28_800,
            rotate_refresh_tokens=True,
            refresh_token_ttl=15_897_600,
            access_token_prefix="ghu_",
            refresh_token_prefix="ghr_",
            default_scope="",
        )

    def add_routes(self, app: web.Application) -> None:
        router = app.router
        router.add_get("/login/oauth/authorize", self.authorize)
        router.add_post("/login/oauth/access_token", self._token)
        router.add_delete("/applications/{client_id}/token", self._revoke)
        router.add_get("/user", self._user)
        router.add_get("/rate_limit", self._rate_limit)
        router.add_get("/repos/{owner}/{repo}/issues", self._list_issues)
        router.add_get("/repositories/{id}/issues", self._list_issues)
        router.add_get("/repos/{owner}/{repo}/issues/{number}", self._get_issue)

    def token_payload(self, request: web.Request, grant: TokenGrant) -> dict[str, Any]:
        payload: dict[str, Any] = {"access_token": grant.access_token}
        if grant.expires_in is not None:
            payload["expires_in"] = grant.expires_in
        if grant.refresh_token is not None:
            payload["refresh_token"] = grant.refresh_token
            payload["refresh_token_expires_in"] = self.oauth.rules.refresh_token_ttl
        payload["scope"] = grant.scope
        payload["token_type"] = "bearer"
        return payload

    def rate_limited_response(self, request: web.Request, retry_after: int) -> web.Response:
        # GitHub documents both 403 and 429 for secondary limits; alternate to exercise both.
        self._secondary_hits += 1
        response = GitHubError(
            403 if self._secondary_hits % 2 else 429,
            "You have exceeded a secondary rate limit. Please wait a few minutes before you try "
            "again. If you reach out to GitHub Support for help, please include the request ID.",
            "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
            "#about-secondary-rate-limits",
        ).response()
        response.headers["retry-after"] = str(retry_after)
        return response

    def server_error_response(self, request: web.Request, status: int) -> web.Response:
        return GitHubError(status, "Server Error").response()

    def not_found_response(self, request: web.Request) -> web.Response:
        return GitHubError(404, "Not Found").response()

    def decorate_response(self, request: web.Request, response: web.StreamResponse) -> None:
        headers = response.headers
        headers["X-GitHub-Request-Id"] = f"SIM0:{next(self._request_ids):08X}"
        if request.path.startswith(self.oauth_path_prefixes):
            return
        headers["X-GitHub-Media-Type"] = "github.v3; format=json"
        version = request.headers.get("X-GitHub-Api-Version", "2022-11-28")
        headers["X-GitHub-Api-Version-Selected"] = version
        if request.path != "/rate_limit":
            caller = bearer_token(request, ("bearer", "token")) or request.remote or "anonymous"
            self._spend(caller)
        limit, used, reset = self._budget(request)
        headers["X-RateLimit-Limit"] = str(limit)
        headers["X-RateLimit-Remaining"] = str(max(limit - used, 0))
        headers["X-RateLimit-Reset"] = str(reset)
        headers["X-RateLimit-Used"] = str(used)
        headers["X-RateLimit-Resource"] = "core"

    # rate-limit accounting (reported, not enforced: the fault profiles inject 403/429)

    def _window(self) -> int:
        return int(self.clock()) // 3600 * 3600

    def _spend(self, caller: str) -> None:
        window = self._window()
        start, used = self._usage.get(caller, (window, 0))
        self._usage[caller] = (window, 1) if start != window else (start, used + 1)

    def _budget(self, request: web.Request) -> tuple[int, int, int]:
        token = bearer_token(request, ("bearer", "token"))
        authenticated = token is not None and self.oauth.check(token).status is TokenStatus.VALID
        caller = token or request.remote or "anonymous"
        window = self._window()
        start, used = self._usage.get(caller, (window, 0))
        limit = _HOURLY_LIMIT if authenticated else _UNAUTHENTICATED_LIMIT
        return limit, used if start == window else 0, window + 3600

    # auth

    def _check_version(self, request: web.Request) -> None:
        version = request.headers.get("X-GitHub-Api-Version")
        if version is not None and version not in _API_VERSIONS:
            raise GitHubError(400, f"API version {version} is not supported.")

    def _caller(self, request: web.Request, *, required: bool) -> str | None:
        self._check_version(request)
        token = bearer_token(request, ("bearer", "token"))
        if token is None:
            if required:
                raise GitHubError(
                    401,
                    "Requires authentication",
                    f"{_DOCS}/users/users#get-the-authenticated-user",
                )
            return None
        check = self.oauth.check(token)
        if check.status is not TokenStatus.VALID:
            raise GitHubError(401, "Bad credentials")
        return check.scope

    # API routes

    async def _user(self, request: web.Request) -> web.Response:
        try:
            scope = self._caller(request, required=True)
        except GitHubError as exc:
            return exc.response()
        response = json_response(
            {
                "login": "interlink-sim",
                "id": 1,
                "node_id": "MDQ6VXNlcjE=",
                "type": "User",
                "site_admin": False,
                "name": "Interlink Simulator",
                "company": None,
                "blog": "",
                "location": None,
                "email": None,
                "public_repos": 1,
                "followers": 0,
                "following": 0,
                "created_at": "2020-01-01T00:00:00Z",
                "updated_at": "2024-01-01T00:00:00Z",
            }
        )
        response.headers["X-OAuth-Scopes"] = ", ".join((scope or "").replace(",", " ").split())
        response.headers["X-Accepted-OAuth-Scopes"] = ""
        return response

    async def _rate_limit(self, request: web.Request) -> web.Response:
        try:
            self._caller(request, required=False)
        except GitHubError as exc:
            return exc.response()
        limit, used, reset = self._budget(request)
        core = {
            "limit": limit,
            "used": used,
            "remaining": max(limit - used, 0),
            "reset": reset,
            "resource": "core",
        }
        return json_response({"resources": {"core": core}, "rate": core})

    def _repository(self, request: web.Request) -> None:
        info = request.match_info
        if "id" in info:
            if info["id"] != str(_REPOSITORY_ID):
                raise GitHubError(404, "Not Found")
        elif (info["owner"].lower(), info["repo"].lower()) != tuple(
            part.lower() for part in REPOSITORY
        ):
            raise GitHubError(404, "Not Found")

    async def _list_issues(self, request: web.Request) -> web.Response:
        try:
            self._caller(request, required=False)
            self._repository(request)
            query = request.query
            state = query.get("state", "open")
            if state not in {"open", "closed", "all"}:
                raise GitHubError(422, "Validation Failed")
            per_page = min(max(_int(query.get("per_page"), 30), 1), 100)
            page = max(_int(query.get("page"), 1), 1)
            issues = self.issues
            if state != "all":
                issues = [i for i in issues if i["state"] == state]
            since = query.get("since")
            if since:
                try:
                    moment = datetime.fromisoformat(since.replace("Z", "+00:00")).timestamp()
                except ValueError:
                    raise GitHubError(422, "Invalid value for `since`") from None
                issues = [i for i in issues if i["_updated"] >= moment]
            sort = query.get("sort", "created")
            key = {"created": "_created", "updated": "_updated", "comments": "comments"}.get(sort)
            if key is None:
                raise GitHubError(422, "Validation Failed")
            descending = query.get("direction", "desc") != "asc"
            if key != "_created" or descending:
                issues = sorted(issues, key=lambda i: (i[key], i["number"]), reverse=descending)
        except GitHubError as exc:
            return exc.response()
        api = origin_of(request)
        start = (page - 1) * per_page
        body = [_with_urls(issue, api) for issue in issues[start : start + per_page]]
        response = json_response(body)
        last = max((len(issues) + per_page - 1) // per_page, 1)
        link = self._link_header(api, request, page, last)
        if link:
            response.headers["Link"] = link
        return response

    @staticmethod
    def _link_header(api: str, request: web.Request, page: int, last: int) -> str:
        params = {k: v for k, v in request.query.items() if k != "page"}

        def url(number: int) -> str:
            query = urlencode({**params, "page": str(number)})
            return f"{api}/repositories/{_REPOSITORY_ID}/issues?{query}"

        links = []
        if page > 1:
            links.append(f'<{url(page - 1)}>; rel="prev"')
        if page < last:
            links.append(f'<{url(page + 1)}>; rel="next"')
            links.append(f'<{url(last)}>; rel="last"')
        if page > 1:
            links.append(f'<{url(1)}>; rel="first"')
        return ", ".join(links)

    async def _get_issue(self, request: web.Request) -> web.Response:
        try:
            self._caller(request, required=False)
            self._repository(request)
            number = _int(request.match_info["number"], 0)
            if not 1 <= number <= len(self.issues):
                raise GitHubError(404, "Not Found")
        except GitHubError as exc:
            return exc.response()
        return json_response(_with_urls(self.issues[number - 1], origin_of(request)))

    # OAuth

    async def authorize(self, request: web.Request) -> web.Response:
        try:
            location = self.oauth.authorize_redirect(request.query)
        except OAuthError as exc:
            return web.Response(status=404, text=f"{exc.error}: {exc.description}")
        if "error=access_denied" in location:
            location += "&" + urlencode(
                {
                    "error_uri": "https://docs.github.com/apps/managing-oauth-apps/"
                    "troubleshooting-authorization-request-errors/#access-denied"
                }
            )
        raise web.HTTPFound(location)

    async def _token(self, request: web.Request) -> web.Response:
        if request.content_type == "application/json":
            try:
                raw = orjson.loads(await request.read())
            except orjson.JSONDecodeError:
                raw = {}
            form = {k: str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
        else:
            form = await read_form(request)
        form = {**request.query, **form}  # GitHub also takes the parameters in the URL
        if "grant_type" not in form and "code" in form:
            form["grant_type"] = "authorization_code"
        try:
            grant = self.oauth.token_request(form, request.headers.get("Authorization"))
            payload: dict[str, Any] = self.token_payload(request, grant)
        except OAuthError as exc:
            payload = _token_error(exc, form.get("grant_type"))
        # GitHub answers errors with 200 too; the body says what went wrong.
        accept = request.headers.get("Accept", "")
        if "application/json" in accept:
            return json_response(payload)
        text = urlencode({k: "" if v is None else str(v) for k, v in payload.items()})
        return web.Response(text=text, content_type="application/x-www-form-urlencoded")

    async def _revoke(self, request: web.Request) -> web.Response:
        credentials = basic_credentials(request.headers.get("Authorization"))
        client_id = request.match_info["client_id"]
        if (
            credentials is None
            or credentials[0] != client_id
            or self.oauth.clients.get(client_id) != credentials[1]
        ):
            return GitHubError(404, "Not Found").response()
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            body = None
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not self.oauth.revoke(token):
            return GitHubError(404, "Not Found").response()
        return web.Response(status=204)


def _token_error(exc: OAuthError, grant_type: str | None) -> dict[str, Any]:
    if exc.error == "invalid_grant":
        if "redirect_uri" in exc.description:
            code, text = (
                "redirect_uri_mismatch",
                "The redirect_uri MUST match the registered callback URL for this application.",
            )
        elif grant_type == "refresh_token":
            code, text = "bad_refresh_token", "The refresh token passed is incorrect or expired."
        else:
            code, text = "bad_verification_code", "The code passed is incorrect or expired."
    else:
        code, text = _TOKEN_ERRORS.get(exc.error, (exc.error, exc.description))
    return {
        "error": code,
        "error_description": text,
        "error_uri": "https://docs.github.com/apps/managing-oauth-apps/"
        f"troubleshooting-oauth-app-access-token-request-errors/#{code.replace('_', '-')}",
    }


def _int(raw: str | None, default: int) -> int:
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        return default


SIMULATOR = GitHubSimulator
