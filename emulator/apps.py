"""The apps the workspaces serve, for health checks: dev domains and custom domains.

Each workspace gets its own loopback listener; its ``devDomain`` is then
``127.0.0.1:<port>`` (the action uses plain http for loopback hosts only). One
more listener plays Codesphere's custom-domain proxy and load balancer: it
routes by the Host header and the longest matching path of the domain's map,
as the real proxy does, to the app of a workspace connected there (the action
reaches it through its test seam
``CODESPHERE_RELEASE_RESOLVE=<domain>=127.0.0.1:<port>``). A path that lists
several workspaces spreads its requests over them, as the variant
``balancer`` says (no document says how Codesphere does it; its A/B-testing
guide says it keeps each user on one workspace):
- ``"sticky"`` (default): a request that carries the cookie ``STICKY_COOKIE``
  naming a workspace still on the path's list goes to it; any other request
  (a new visitor) goes to the next workspace of the list in turn, and its
  answer sets the cookie to that workspace;
- ``"round_robin"``: every request goes to the next workspace of the list in
  turn, cookie or not.
A client that sends no cookie (a health check that keeps none) is spread
over the list either way; one that keeps cookies stays on one workspace with
``"sticky"``.

What an app answers (``AppBehaviour``), measured from the moment its run stage
is up (``StageRun.up_at``):
- before that: 502 with an HTML page, as the proxy answers for an app that is
  not listening;
- for ``placeholder_seconds`` after it: Codesphere's placeholder page, the
  load balancer's own answer while the app does not listen yet (cs-go PR 288
  treats a body containing ``Workspace server is starting`` or ``Too Many
  Requests`` as "not running", whatever the status; the status is not
  documented): ``placeholder_status`` (200, 429, 503, ...), as
  ``placeholder_type`` "html" (``placeholder_padding`` bytes of inline style
  before the phrase, a branded page) or "text", saying ``placeholder_phrase``;
- for ``ready_after`` seconds more: 503 (starting);
- then the statuses in ``statuses`` one request after another, the last one for
  good (``[500, 500, 200]``: two errors, then healthy), saying ``body`` (as
  ``content_type``, text/plain by default) below 400;
- ``restricted``: without ``X-CS-Authorization: Bearer <token>`` a 401 sign-in page,
  or with ``restricted_answer="redirect"`` a 302 to Codesphere's sign-in page
  (``<API origin>/ide/signin?redirect=...``); ``token_accepted=False``: the dev
  domain does not take the token at all and answers so even with it;
- ``domain_statuses``: what the custom domain answers instead, once the app is up;
- ``dev_statuses``: what the dev domain answers instead, once the app is up (a
  dev-domain route that fails while the custom domain still reaches the app);
- ``reason``: the reason phrase of the app's error answers (its ``statuses``
  and ``dev_statuses`` of 400 and up), "" for the standard one: an app or a
  proxy may send any (one that echoes a header or a setting, say);
- ``domain_placeholder_seconds``: the custom domain answers the placeholder too
  for this long after its path came to point at the workspace (a switch: the
  load balancer's new route warming up), whatever the app answers. The
  placeholder of the app itself shows through the domain as well.
Every request is recorded (``AppRequest``) with its headers, so the tests can
prove where the token went.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote

from .model import Headers

STICKY_COOKIE = "cs-workspace"  # the emulator's choice: the real cookie's name is not documented
NOT_LISTENING = "<html><body>502 Bad Gateway: the app is not running</body></html>"
PLACEHOLDER_PHRASES = ("Workspace server is starting", "Too Many Requests")
PLACEHOLDER_TYPES = ("html", "text")
# What a restricted dev domain answers without a token it accepts: a 401 page, or
# (Codesphere's documents, of restricted domains: "Unauthenticated visitors are
# redirected to the Codesphere login page") a 302 to the sign-in page.
RESTRICTED_ANSWERS = ("401", "redirect")
SIGN_IN_PATH = "/ide/signin"


@dataclass
class AppBehaviour:
    ready_after: float = 0.0
    statuses: list[int] = field(default_factory=lambda: [200])
    restricted: bool = False
    # restricted: what it answers without a token it accepts (RESTRICTED_ANSWERS),
    # and whether it accepts the API token in X-CS-Authorization at all.
    restricted_answer: str = "401"
    token_accepted: bool = True
    body: str = "ok"
    # The Content-Type of the app's own answers below 400 ("": text/plain).
    content_type: str = ""
    # Through the custom domain: these statuses instead (a proxy or CDN in front
    # that fails while the dev domain works), None: the same as the dev domain.
    domain_statuses: list[int] | None = None
    # On the dev domain: these statuses instead (its route fails while the custom
    # domain still reaches the app), None: the app's own.
    dev_statuses: list[int] | None = None
    # The reason phrase of its error answers ("": the standard one for the status).
    reason: str = ""
    # Codesphere's placeholder page right after the run is up (see the module docstring).
    placeholder_seconds: float = 0.0
    placeholder_status: int = 200
    placeholder_type: str = "html"
    placeholder_phrase: str = PLACEHOLDER_PHRASES[0]
    placeholder_padding: int = 6000
    domain_placeholder_seconds: float = 0.0

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        if self.restricted_answer not in RESTRICTED_ANSWERS:
            raise ValueError(f"restricted_answer {self.restricted_answer!r}: {RESTRICTED_ANSWERS}")
        if self.placeholder_type not in PLACEHOLDER_TYPES:
            raise ValueError(f"placeholder_type {self.placeholder_type!r}: {PLACEHOLDER_TYPES}")
        if not 100 <= self.placeholder_status <= 599:
            raise ValueError(f"placeholder_status {self.placeholder_status}")
        if min(self.placeholder_seconds, self.domain_placeholder_seconds) < 0:
            raise ValueError("placeholder seconds must not be negative")

    def placeholder(self) -> tuple[int, str, str]:
        """(status, body, content type) of the placeholder page."""
        phrase = self.placeholder_phrase
        if self.placeholder_type == "text":
            text = f"{phrase}. Please try again in a moment.\n"
            return self.placeholder_status, text, "text/plain"
        style = "".join(
            f".cs-{i}{{margin:{i % 7}px;color:#{i * 2654435761 % 0xFFFFFF:06x}}}"
            for i in range(self.placeholder_padding // 30 + 1)
        )[: self.placeholder_padding]
        page = (
            f"<!DOCTYPE html><html><head><title>Codesphere</title><style>{style}</style></head>"
            f"<body><main><h1>{phrase}</h1><p>This page refreshes by itself.</p></main></body>"
            "</html>"
        )
        return self.placeholder_status, page, "text/html; charset=utf-8"


@dataclass(frozen=True)
class Route:
    """Where the domain proxy may send a request: ``name``, the domain and the
    map's key (``shop.example.com/``), and the workspaces on that key's list,
    each with since when it has been there (None: since the domain was set up)."""

    name: str
    workspaces: list[tuple[int, float | None]]


@dataclass
class AppRequest:
    listener: str  # "app:<workspace id>" or "domain-proxy"
    host: str
    path: str
    headers: Headers
    status: int
    time: float
    workspace_id: int | None  # the app that answered, None when none did
    placeholder: bool = False  # Codesphere's placeholder page answered, not the app


@dataclass(frozen=True)
class _Reply:
    status: int
    body: str
    content_type: str = ""  # "": text/html for an error status, text/plain otherwise
    placeholder: bool = False
    location: str = ""  # a redirect's Location
    reason: str = ""  # the status line's reason phrase ("": the standard one)

    def __post_init__(self) -> None:
        if not self.content_type:
            kind = "text/html" if self.status >= 400 else "text/plain"
            object.__setattr__(self, "content_type", kind)


class _AppServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, name: str, answer: Callable[[_AppHandler], None]) -> None:
        self.name = name
        self.answer = answer
        super().__init__(("127.0.0.1", 0), _AppHandler)
        self.port: int = self.server_address[1]
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _AppHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _AppServer

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.answer(self)

    do_HEAD = do_POST = do_GET

    def reply(
        self,
        status: int,
        body: str,
        content_type: str = "text/plain",
        headers: dict[str, str] | None = None,
        location: str = "",
        reason: str = "",
    ) -> None:
        payload = body.encode()
        self.send_response(status, reason or None)
        self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if location:
            self.send_header("Location", location)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class Apps:
    """The app listeners of one emulator (see the module docstring)."""

    def __init__(
        self,
        token: str,
        now: Callable[[], float],
        up_since: Callable[[int], float | None],
        route: Callable[[str, str], Route | None],
        balancer: Callable[[], str] = lambda: "sticky",
        sign_in: str = "https://codesphere.com" + SIGN_IN_PATH,
    ) -> None:
        self.token = token
        self.sign_in = sign_in  # Codesphere's sign-in page (restricted_answer="redirect")
        self.now = now
        self.up_since = up_since  # workspace id -> when its run stage came up
        # (host, path) -> where a custom domain routes it (Route)
        self.route = route
        self.balancer = balancer  # the variant: "sticky" or "round_robin"
        self.turns: dict[str, int] = {}  # route name -> requests handed out in turn
        self.lock = threading.Lock()
        self.behaviour: dict[int, AppBehaviour] = {}
        self.served: dict[int, int] = {}  # workspace id -> ready answers given
        self.domain_served: dict[int, int] = {}  # ... through the custom domain
        self.dev_served: dict[int, int] = {}  # ... answered with dev_statuses
        self.servers: dict[int, _AppServer] = {}
        self.requests: list[AppRequest] = []
        self.proxy = _AppServer("domain-proxy", self._answer_domain)

    @property
    def proxy_address(self) -> str:
        return f"127.0.0.1:{self.proxy.port}"

    def add(self, workspace_id: int, behaviour: AppBehaviour) -> str:
        """Serve the app of a workspace; return its dev domain ``127.0.0.1:<port>``."""
        server = _AppServer(f"app:{workspace_id}", lambda h: self._answer_app(h, workspace_id))
        with self.lock:
            self.behaviour[workspace_id] = behaviour
            self.servers[workspace_id] = server
        return f"127.0.0.1:{server.port}"

    def configure(self, workspace_id: int, **changes: Any) -> None:
        with self.lock:
            behaviour = self.behaviour[workspace_id]
            for key, value in changes.items():
                if not hasattr(behaviour, key):
                    raise TypeError(f"unknown app option {key!r}")
                setattr(behaviour, key, value)
            behaviour.check()
            self.served[workspace_id] = 0
            self.domain_served[workspace_id] = 0
            self.dev_served[workspace_id] = 0

    def close(self) -> None:
        for server in [self.proxy, *self.servers.values()]:
            server.stop()

    def _answer_app(self, handler: _AppHandler, workspace_id: int) -> None:
        reply = self._app(workspace_id, Headers(handler.headers.items()), handler.path)
        with self.lock:
            override = self.behaviour[workspace_id].dev_statuses
            if override and reply.status < 400 and not reply.placeholder:
                count = self.dev_served.get(workspace_id, 0)
                self.dev_served[workspace_id] = count + 1
                status = override[min(count, len(override) - 1)]
                if status >= 400:
                    page = f"<html><body>error {status} on the dev domain</body></html>"
                    reply = _Reply(status, page, reason=self.behaviour[workspace_id].reason)
        self._record(handler, reply, workspace_id)
        handler.reply(
            reply.status,
            reply.body,
            reply.content_type,
            location=reply.location,
            reason=reply.reason,
        )

    def _answer_domain(self, handler: _AppHandler) -> None:
        host = (handler.headers.get("Host") or "").split(":")[0].lower()
        route = self.route(host, handler.path.split("?")[0])
        mode = self.balancer()
        picked = None if route is None else self._pick(route, mode, handler.headers)
        if picked is None or picked[0] not in self.behaviour:
            reply = _Reply(404, "<html>No workspace is connected here</html>")
            self._record(handler, reply, None)
            handler.reply(reply.status, reply.body, reply.content_type)
            return
        # The proxy serves the app as the public sees it: restricted dev domains
        # do not restrict a custom domain.
        workspace_id, since, cookie = picked
        reply = self._app(workspace_id, None)
        with self.lock:
            behaviour = self.behaviour[workspace_id]
            warming = behaviour.domain_placeholder_seconds
            if warming and since is not None and self.now() < since + warming:
                reply = _Reply(*behaviour.placeholder(), placeholder=True)
            override = behaviour.domain_statuses
            if override and reply.status < 500 and not reply.placeholder:
                count = self.domain_served.get(workspace_id, 0)
                self.domain_served[workspace_id] = count + 1
                status = override[min(count, len(override) - 1)]
                reply = _Reply(status, f"<html><body>error {status} at the edge</body></html>")
        self._record(handler, reply, workspace_id)
        headers = {"Set-Cookie": f"{STICKY_COOKIE}={workspace_id}; Path=/"} if cookie else {}
        handler.reply(
            reply.status,
            reply.body,
            reply.content_type,
            headers,
            location=reply.location,
            reason=reply.reason,
        )

    def _pick(self, route: Route, mode: str, headers: Any) -> tuple[int, float | None, bool] | None:
        """(workspace, since when it is on the list, whether to set the cookie):
        the workspace the balancer sends this request to (module docstring)."""
        if not route.workspaces:
            return None
        if mode == "sticky":
            wanted = _cookie(headers.get("Cookie") or "", STICKY_COOKIE)
            for workspace_id, since in route.workspaces:
                if str(workspace_id) == wanted:
                    return workspace_id, since, False
        with self.lock:
            turn = self.turns.get(route.name, 0)
            self.turns[route.name] = turn + 1
        workspace_id, since = route.workspaces[turn % len(route.workspaces)]
        return workspace_id, since, mode == "sticky"

    def _app(self, workspace_id: int, headers: Headers | None, path: str = "/") -> _Reply:
        with self.lock:
            behaviour = self.behaviour[workspace_id]
            up = self.up_since(workspace_id)
            now = self.now()
            if headers is not None and behaviour.restricted:
                given = headers.get("x-cs-authorization", "")
                if given != f"Bearer {self.token}" or not behaviour.token_accepted:
                    return self._sign_in(behaviour, headers.get("host", ""), path)
            if up is None:
                return _Reply(502, NOT_LISTENING)
            if now < up + behaviour.placeholder_seconds:
                return _Reply(*behaviour.placeholder(), placeholder=True)
            if now < up + behaviour.placeholder_seconds + behaviour.ready_after:
                return _Reply(503, "<html><body>starting</body></html>")
            count = self.served.get(workspace_id, 0)
            self.served[workspace_id] = count + 1
            status = behaviour.statuses[min(count, len(behaviour.statuses) - 1)]
            if status < 400:
                return _Reply(status, behaviour.body, behaviour.content_type)
            page = f"<html><body>error {status}</body></html>"
            return _Reply(status, page, reason=behaviour.reason)

    def _sign_in(self, behaviour: AppBehaviour, host: str, path: str) -> _Reply:
        """A restricted dev domain's answer to a request without a token it takes."""
        if behaviour.restricted_answer == "redirect":
            back = quote(f"https://{host}{path}", safe="")
            page = "<html><body>Redirecting to the sign-in page</body></html>"
            return _Reply(302, page, "text/html", location=f"{self.sign_in}?redirect={back}")
        return _Reply(401, "<html><body>Sign in to Codesphere</body></html>")

    def _record(self, handler: _AppHandler, reply: _Reply, workspace_id: int | None) -> None:
        with self.lock:
            self.requests.append(
                AppRequest(
                    listener=handler.server.name,
                    host=handler.headers.get("Host") or "",
                    path=handler.path,
                    headers=Headers(handler.headers.items()),
                    status=reply.status,
                    time=self.now(),
                    workspace_id=workspace_id,
                    placeholder=reply.placeholder,
                )
            )


def _cookie(header: str, name: str) -> str:
    """The value of cookie ``name`` in a Cookie header, "" when it has none."""
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value.strip()
    return ""
