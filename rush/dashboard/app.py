"""The dashboard's ASGI app (starlette): pages, a JSON API, server-sent events, actions.

Every request needs the dashboard's token in its query (``?token=...``): pages, API,
event streams and assets alike; without it, 401. Routes:

====================================================  =========================================
``GET /``                                             the default network's page (else the
                                                      list of networks)
``GET /networks/{id}``                                a network's page
``GET /api/networks``                                 every network with its summary
``GET /api/networks/{id}``                            a network's full state (``objective=``)
``GET /api/networks/{id}/events``                     server-sent events: ``update`` (a full
                                                      snapshot, then deltas) and ``networks``
``GET /api/events``                                   server-sent events: ``networks`` only
``GET /api/networks/{id}/tasks``                      a page of tasks (``state``, ``where``,
                                                      ``sort``, ``order``, ``page``, ``size``)
``POST /api/networks/{id}/workers/stop``              ``{"action": "kill"|"terminate",
                                                      "worker_ids": [...]}``
``GET /static/{name}``                                the script, the style sheet, plotly.js
====================================================  =========================================

A refused request gets a JSON ``{"error": "..."}`` (400: a bad request, nothing changed;
404: an unknown network).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import secrets
import threading
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (FileResponse, HTMLResponse, JSONResponse, PlainTextResponse,
                                 Response, StreamingResponse)
from starlette.routing import Route

from ..config import RedisConfig
from ..connection import check_connection, connect
from ..errors import UnknownNetworkError
from ..network_index import NetworkIndex
from ..status import known_network
from ..validation import check_network_id
from . import page
from .tasks import BadRequest, TaskQuery
from .watch import NetworkList, NetworkWatch

STATIC = Path(__file__).parent / "static"
ASSETS = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}
#: Seconds between keep-alive comments of an idle event stream.
KEEPALIVE_SECONDS = 15.0
#: How long a request waits for a network's first read.
READY_SECONDS = 60.0
#: Headers of every page and API answer: no caching, no referrer (the URL holds the token).
PRIVATE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
           "X-Content-Type-Options": "nosniff"}
CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
       "script-src 'self'; connect-src 'self'; frame-ancestors 'none'")


def plotly_js() -> Path | None:
    """plotly.js as the ``plotly`` wheel ships it (the dashboard works offline)."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "package_data" / "plotly.min.js"
    return path if path.is_file() else None


class Dashboard:
    """What the app serves: the networks of one Redis server, each read by one
    ``NetworkWatch`` shared by every page that shows it."""

    def __init__(self, config: RedisConfig, network_id: str | None = None,
                 token: str | None = None, refresh_seconds: float | None = None) -> None:
        check_connection(config)
        self.config = config
        self.where = config.redacted_url
        self.token = token or secrets.token_urlsafe(24)
        self._client = connect(config)
        self._index = NetworkIndex(self._client)
        self._refresh = refresh_seconds
        self._lock = threading.Lock()
        self._watches: dict[str, NetworkWatch] = {}
        self.closing = False
        self.default_network = network_id
        self.networks = NetworkList(self._index)  # reads only while a page listens
        try:
            if network_id is not None:
                known_network(self._index, network_id, self.where)  # UnknownNetworkError
            first = self.current_network()
            if first is not None:
                self.watch(first)  # read it now: the page will be ready when it is opened
        except BaseException:
            self.close()
            raise

    def check(self, network_id: str) -> str:
        """``network_id`` if the server has that network; ``UnknownNetworkError`` else."""
        try:
            check_network_id(network_id)
        except (TypeError, ValueError) as e:
            raise BadRequest(str(e)) from None
        with self._lock:
            if network_id in self._watches:
                return network_id
        known_network(self._index, network_id, self.where)
        return network_id

    def watch(self, network_id: str) -> NetworkWatch:
        """The watch of a network (made on first use)."""
        self.check(network_id)
        with self._lock:
            watch = self._watches.get(network_id)
            if watch is None:
                kwargs = {} if self._refresh is None else {"refresh_seconds": self._refresh}
                watch = self._watches[network_id] = NetworkWatch(network_id, self.config, **kwargs)
        watch.touch()
        return watch

    def current_network(self) -> str | None:
        """The network ``/`` shows: the one given, else the most recently active one."""
        if self.default_network is not None:
            return self.default_network
        ids = self._index.network_ids()
        return ids[0] if ids else None

    def end_streams(self) -> None:
        """End every event stream (the server stops): wake them, and they see ``closing``."""
        self.closing = True
        with self._lock:
            watches = list(self._watches.values())
        for watch in watches:
            watch.notify()
        self.networks.notify()

    def close(self) -> None:
        """Stop reading (every watch, the list of networks) and close the connections."""
        self.end_streams()
        self.networks.close()
        with self._lock:
            watches, self._watches = list(self._watches.values()), {}
        for watch in watches:
            watch.close()
        self._client.close()


class TokenGate:
    """ASGI middleware: a request without the dashboard's token in its query gets 401."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self._token = token.encode()

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] in ("http", "websocket"):
            given = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [""])[0]
            if not secrets.compare_digest(given.encode("latin-1", "replace"), self._token):
                response = PlainTextResponse(
                    "401 Unauthorized: this rush dashboard needs its token; open the URL "
                    "that `rush dashboard` printed (it ends in ?token=...)\n",
                    status_code=401, headers=PRIVATE)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=PRIVATE)


def _refusals(handler: Callable[[Request], Awaitable[Response]]
              ) -> Callable[[Request], Awaitable[Response]]:
    """Turn a refused request into its JSON error."""
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except BadRequest as e:
            return _error(400, str(e))
        except UnknownNetworkError as e:
            return _error(404, str(e))
    return wrapped


def create_app(dashboard: Dashboard) -> Any:
    """The ASGI app of ``dashboard`` (closed with the app's lifespan)."""

    def dash(request: Request) -> Dashboard:
        return request.app.state.dashboard

    async def network_page(request: Request) -> Response:
        d = dash(request)
        network_id = request.path_params.get("network_id")
        try:
            if network_id is None:
                network_id = await run_in_threadpool(d.current_network)
            else:
                network_id = await run_in_threadpool(d.check, network_id)
        except (BadRequest, UnknownNetworkError) as e:
            status = 400 if isinstance(e, BadRequest) else 404
            return HTMLResponse(page.not_found(str(e), d.token), status_code=status, headers=PRIVATE)
        summary: dict | None = None
        workers: list[dict] = []
        if network_id is not None:
            watch = await run_in_threadpool(d.watch, network_id)
            summary, workers = await run_in_threadpool(watch.page_view)
        networks = await run_in_threadpool(d.networks.read)
        body = page.render(network_id=network_id, where=d.where, token=d.token, summary=summary,
                           workers=workers, networks=networks)
        return HTMLResponse(body, headers={**PRIVATE, "Content-Security-Policy": CSP})

    @_refusals
    async def networks(request: Request) -> Response:
        return JSONResponse({"networks": await run_in_threadpool(dash(request).networks.read)},
                            headers=PRIVATE)

    @_refusals
    async def state(request: Request) -> Response:
        watch = await run_in_threadpool(dash(request).watch, request.path_params["network_id"])
        await run_in_threadpool(watch.wait_ready, READY_SECONDS)
        update = await run_in_threadpool(watch.message, None, request.query_params.get("objective"))
        if update is None:
            return _error(503, f"network {watch.network_id!r} could not be read within "
                               f"{READY_SECONDS:g} s")
        return Response(update[1], media_type="application/json", headers=PRIVATE)

    @_refusals
    async def tasks(request: Request) -> Response:
        query = TaskQuery.parse(request.query_params, request.query_params.getlist("where"))
        watch = await run_in_threadpool(dash(request).watch, request.path_params["network_id"])
        await run_in_threadpool(watch.wait_ready, READY_SECONDS)
        return JSONResponse(await run_in_threadpool(watch.tasks, query), headers=PRIVATE)

    @_refusals
    async def stop(request: Request) -> Response:
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            raise BadRequest("send the request as JSON (Content-Type: application/json)")
        try:
            body = await request.json()
        except ValueError:
            raise BadRequest("the request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise BadRequest('the request body must be {"action": ..., "worker_ids": [...]}')
        watch = await run_in_threadpool(dash(request).watch, request.path_params["network_id"])
        stopped = await run_in_threadpool(watch.stop_workers, body.get("action"),
                                          body.get("worker_ids"))
        return JSONResponse({"action": body["action"], "worker_ids": stopped}, headers=PRIVATE)

    @_refusals
    async def events(request: Request) -> Response:
        d = dash(request)
        watch = await run_in_threadpool(d.watch, request.path_params["network_id"])
        stream = _events(d, watch, request.query_params.get("objective"))
        return StreamingResponse(stream, media_type="text/event-stream",
                                 headers={**PRIVATE, "X-Accel-Buffering": "no"})

    async def network_events(request: Request) -> Response:
        return StreamingResponse(_events(dash(request), None, None), media_type="text/event-stream",
                                 headers={**PRIVATE, "X-Accel-Buffering": "no"})

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name == "plotly.min.js":
            path = plotly_js()
            if path is None:
                return PlainTextResponse("plotly is not installed: pip install "
                                         "'rush-redis[dashboard]'", status_code=404)
            return FileResponse(path, media_type="text/javascript",
                                headers={"Cache-Control": "private, max-age=86400"})
        if name not in ASSETS:
            return PlainTextResponse("not found", status_code=404)
        return FileResponse(STATIC / name, media_type=ASSETS[name],
                            headers={"Cache-Control": "no-cache"})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await run_in_threadpool(dashboard.close)

    app = Starlette(routes=[
        Route("/", network_page),
        Route("/networks/{network_id:path}", network_page),
        Route("/api/networks", networks),
        Route("/api/events", network_events),
        Route("/api/networks/{network_id}", state),
        Route("/api/networks/{network_id}/events", events),
        Route("/api/networks/{network_id}/tasks", tasks),
        Route("/api/networks/{network_id}/workers/stop", stop, methods=["POST"]),
        Route("/static/{name}", static),
    ], lifespan=lifespan)
    app.state.dashboard = dashboard
    return TokenGate(app, dashboard.token)


async def _events(d: Dashboard, watch: NetworkWatch | None, objective: str | None
                  ) -> AsyncIterator[str]:
    """The event stream of one page: ``update`` events of ``watch`` (a full snapshot
    first, then what changed) and ``networks`` events (the list of networks, when it
    changed)."""
    loop = asyncio.get_running_loop()
    changed = asyncio.Event()

    def notify() -> None:
        if not loop.is_closed():
            loop.call_soon_threadsafe(changed.set)

    if watch is not None:
        watch.listen(notify)
    d.networks.listen(notify)
    version: int | None = None
    networks_version = 0
    try:
        yield "retry: 2000\n\n"
        while not d.closing:
            update = None if watch is None else \
                await run_in_threadpool(watch.message, version, objective)
            if update is not None:
                version, text = update
                yield f"event: update\ndata: {text}\n\n"
            latest, networks = d.networks.latest()
            if latest != networks_version:
                networks_version = latest
                yield f"event: networks\ndata: {_json(networks)}\n\n"
            try:
                await asyncio.wait_for(changed.wait(), KEEPALIVE_SECONDS)
            except asyncio.TimeoutError:
                yield ": keep-alive\n\n"
            changed.clear()
    finally:
        if watch is not None:
            watch.unlisten(notify)
        d.networks.unlisten(notify)


def _json(value: Any) -> str:
    import json

    return json.dumps(value)
