"""The dashboard's app through starlette's TestClient (and a real uvicorn for the event
stream and ``rush dashboard``): the token, the server-rendered page, the JSON API (state,
tasks paged/sorted/filtered), the worker actions, bad input (400, nothing changed), an
unknown network (404), workers that stay listed when their heartbeat expires, a reset
network, and the live updates (deltas of the new tasks only)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import rush
from conftest import wait_until
from worker_helpers import SLOW

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from starlette.testclient import TestClient  # noqa: E402

from rush.dashboard.app import Dashboard, create_app  # noqa: E402
from rush.errors import UnknownNetworkError  # noqa: E402
from rush.keys import NETWORKS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def dashboard(config, network_id, rsh):
    """A TestClient on a dashboard of the test's network (read every 0.05 s)."""
    d = Dashboard(config, network_id, refresh_seconds=0.05)
    with TestClient(create_app(d)) as client:
        client.token = d.token
        yield client


def get(client, path, **params):
    return client.get(path, params={"token": client.token, **params})


def state(client, network_id, **params):
    response = get(client, f"/api/networks/{network_id}", **params)
    assert response.status_code == 200, response.text
    return response.json()


def until_finished(client, network_id, n):
    """The state once the dashboard has read ``n`` finished tasks."""
    return wait_until(lambda: (s := state(client, network_id))["summary"]["tasks"]["finished"] == n
                      and len(s["trace"]["values"]) == n and s, message=f"{n} finished tasks")


def fill(worker, n, start=0):
    keys = worker.push_running_tasks([{"x": start + i} for i in range(n)])
    worker.finish_tasks(keys, [{"y": float((start + i - 10) ** 2), "label": f"t{start + i}"}
                               for i in range(n)])
    return keys


def snapshot(rsh, worker):
    """What the actions could change: worker states, the terminate flag, tasks by state."""
    return (dict(zip(rsh.worker_info["worker_id"], rsh.worker_info["state"])), worker.terminated,
            rsh.summary()["tasks"], sorted(rsh.running_tasks))


# -- the token --------------------------------------------------------------------------

ROUTES = ["/", "/networks/{id}", "/api/networks", "/api/events", "/api/networks/{id}",
          "/api/networks/{id}/events", "/api/networks/{id}/tasks", "/static/dashboard.js",
          "/static/dashboard.css", "/static/plotly.min.js"]


def test_every_route_needs_the_token(dashboard, network_id, rsh, worker):
    before = snapshot(rsh, worker)
    for route in ROUTES:
        path = route.format(id=network_id)
        for params in ({}, {"token": "wrong"}, {"token": ""}):
            response = dashboard.get(path, params=params)
            assert response.status_code == 401, (path, params)
            assert "token" in response.text
    for params in ({}, {"token": dashboard.token[:-1]}):
        response = dashboard.post(f"/api/networks/{network_id}/workers/stop", params=params,
                                  json={"action": "kill", "worker_ids": [worker.worker_id]})
        assert response.status_code == 401
    assert snapshot(rsh, worker) == before
    for route in ROUTES:
        if not route.endswith("events"):  # streams: see test_the_event_stream_...
            assert get(dashboard, route.format(id=network_id)).status_code == 200, route


# -- the page ---------------------------------------------------------------------------

def test_the_first_html_response_names_the_network(dashboard, network_id, worker):
    fill(worker, 5)
    page = get(dashboard, "/")
    assert page.status_code == 200
    html = page.text
    assert f"<title>{network_id} · rush dashboard</title>" in html
    assert f'<span id="network-name">{network_id}</span>' in html
    assert 'id="count-finished">5</span>' in html  # rendered on the server
    assert f'data-worker-id="{worker.worker_id}"' in html
    assert "no-referrer" in page.headers["referrer-policy"]
    assert page.headers["cache-control"] == "no-store"
    own = get(dashboard, f"/networks/{network_id}").text  # the same page at its own path
    assert f"<title>{network_id} · rush dashboard</title>" in own and 'id="count-finished">5<' in own
    assert '<script src="/static/plotly.min.js?token=' in html  # from the plotly wheel: no CDN
    assert "cdn" not in html.lower()
    js = get(dashboard, "/static/plotly.min.js")
    assert js.status_code == 200 and len(js.content) > 1_000_000


def test_a_network_id_that_could_carry_markup_is_refused(config):
    # ids hold only letters, digits, '-', '_' and '.', so none reaches the page as markup
    with pytest.raises(ValueError, match="network_id may hold only"):
        Dashboard(config, "<b>odd&name</b>", refresh_seconds=0.05)


def test_without_a_network_id_the_page_opens_the_latest_network(config, network_id, rsh, worker):
    d = Dashboard(config, refresh_seconds=0.05)
    with TestClient(create_app(d)) as client:
        rsh.connector.zadd(NETWORKS, {network_id: 4e9})  # the most recently active one
        html = client.get("/", params={"token": d.token}).text
        assert f'<span id="network-name">{network_id}</span>' in html
        listed = client.get("/api/networks", params={"token": d.token}).json()["networks"]
        assert network_id in [n["network_id"] for n in listed]


def test_a_server_without_networks_shows_an_empty_list():
    with rush.RedisServer() as empty:
        d = Dashboard(empty.config)
        with TestClient(create_app(d)) as client:
            page = client.get("/", params={"token": d.token})
            assert page.status_code == 200
            assert "<title>networks · rush dashboard</title>" in page.text
            assert "no networks on this server" in page.text
            assert client.get("/api/networks", params={"token": d.token}).json() == {"networks": []}


def test_an_unknown_network_is_404_with_its_name(config, dashboard):
    page = get(dashboard, "/networks/no-such-network")
    assert page.status_code == 404 and "no-such-network" in page.text
    for path in ("/api/networks/no-such-network", "/api/networks/no-such-network/tasks"):
        response = get(dashboard, path)
        assert response.status_code == 404
        assert "no network 'no-such-network'" in response.json()["error"]
    with pytest.raises(UnknownNetworkError, match="no-such-network"):
        Dashboard(config, "no-such-network")


# -- the state ----------------------------------------------------------------------------

def test_the_state_has_counters_workers_and_the_trace(dashboard, network_id, rsh, worker):
    fill(worker, 20)
    rsh.push_tasks([{"x": -1}])
    s = until_finished(dashboard, network_id, 20)
    assert s["summary"]["tasks"] == {"queued": 1, "running": 0, "finished": 20, "failed": 0}
    assert s["summary"]["workers"]["running"] == 1
    assert s["objectives"] == ["y"]  # a numeric ys field; "label" is text, "x" an input
    assert s["trace"]["values"] == [float((i - 10) ** 2) for i in range(20)]
    row, = s["workers"]
    assert row["worker_id"] == worker.worker_id and row["state"] == "running"
    assert row["finished"] == 20 and row["heartbeat"] is False and row["last_error"] is None


def test_the_objective_can_be_chosen(dashboard, network_id, worker):
    keys = worker.push_running_tasks([{"x": 1}, {"x": 2}])
    worker.finish_tasks(keys, [{"loss": 0.5, "acc": 0.9}, {"loss": 0.25, "acc": 0.95}])
    until_finished(dashboard, network_id, 2)
    s = state(dashboard, network_id, objective="acc")
    assert s["objectives"] == ["loss", "acc"] and s["objective"] == "acc"
    assert s["trace"]["values"] == [0.9, 0.95]
    assert state(dashboard, network_id, objective="nope")["objective"] == "loss"


# -- tasks --------------------------------------------------------------------------------

@pytest.fixture
def tasks_network(dashboard, network_id, rsh, worker):
    fill(worker, 30)
    rsh.push_tasks([{"x": 100}, {"x": 101}])
    rsh.push_failed_tasks([{"x": 200}], conditions=[{"message": "went wrong"}])
    until_finished(dashboard, network_id, 30)
    return dashboard


def tasks(client, network_id, **params):
    response = get(client, f"/api/networks/{network_id}/tasks", **params)
    assert response.status_code == 200, response.text
    return response.json()


def test_tasks_are_paged_newest_first(tasks_network, network_id):
    first = tasks(tasks_network, network_id, size=10)
    assert first["total"] == 33 and first["matched"] == 33 and len(first["rows"]) == 10
    cols = first["columns"]
    assert cols[0] == "state" and cols[-1] == "keys"
    states = [r[cols.index("state")] for r in first["rows"]]
    assert states[:3] == ["queued", "queued", "failed"]
    assert [r[cols.index("x")] for r in first["rows"][3:]] == list(range(29, 22, -1))
    last = tasks(tasks_network, network_id, size=10, page=3)
    assert len(last["rows"]) == 3
    assert tasks(tasks_network, network_id, size=10, page=9)["rows"] == []


def test_tasks_sort_by_any_column(tasks_network, network_id):
    page = tasks(tasks_network, network_id, state="finished", sort="y", size=5)
    cols = page["columns"]
    assert [r[cols.index("y")] for r in page["rows"]] == [0.0, 1.0, 1.0, 4.0, 4.0]
    page = tasks(tasks_network, network_id, state="finished", sort="x", order="desc", size=3)
    assert [r[cols.index("x")] for r in page["rows"]] == [29, 28, 27]
    mixed = tasks(tasks_network, network_id, sort="condition", size=40)  # dicts and None
    assert mixed["matched"] == 33


def test_tasks_filter_by_state_and_any_field(tasks_network, network_id, worker):
    queued = tasks(tasks_network, network_id, state="queued")
    assert queued["matched"] == 2
    both = tasks(tasks_network, network_id, state="queued,failed")
    assert both["matched"] == 3
    failed = tasks(tasks_network, network_id, state="failed")
    assert failed["rows"][0][failed["columns"].index("condition")] == {"message": "went wrong"}
    assert tasks(tasks_network, network_id, where="y <= 4")["matched"] == 5
    assert tasks(tasks_network, network_id, where=["y <= 4", "x > 9"])["matched"] == 3
    assert tasks(tasks_network, network_id, where="x = 12")["matched"] == 1
    assert tasks(tasks_network, network_id, where="x != 12", state="finished")["matched"] == 29
    assert tasks(tasks_network, network_id, where="label = T7")["matched"] == 1  # any case
    assert tasks(tasks_network, network_id, where="label ~ t1")["matched"] == 11
    assert tasks(tasks_network, network_id, where=f"worker_id = {worker.worker_id}")["matched"] == 30
    assert tasks(tasks_network, network_id, where="condition ~ wrong")["matched"] == 1


@pytest.mark.parametrize("params, message", [
    ({"state": "done"}, "state must be 'all' or among"),
    ({"order": "up"}, "order must be 'asc' or 'desc'"),
    ({"page": "-1"}, "page must be >= 0"),
    ({"page": "one"}, "page must be an integer"),
    ({"size": "0"}, "size must be between 1 and 500"),
    ({"size": "501"}, "size must be between 1 and 500"),
    ({"sort": "nope"}, "cannot sort by 'nope': no such column"),
    ({"where": "y"}, "is not '<column> <op> <value>'"),
    ({"where": "nope = 1"}, "no column 'nope'"),
    ({"where": "y < small"}, "'small' is not a number"),
])
def test_bad_task_queries_are_400_with_a_message(tasks_network, network_id, params, message):
    response = get(tasks_network, f"/api/networks/{network_id}/tasks", **params)
    assert response.status_code == 400
    assert message in response.json()["error"]


# -- actions ------------------------------------------------------------------------------

def stop(client, network_id, body, **kwargs):
    return client.post(f"/api/networks/{network_id}/workers/stop", params={"token": client.token},
                       **({"json": body} if body is not None else {}), **kwargs)


def test_kill_stops_a_worker_and_fails_its_task(dashboard, network_id, rsh, worker):
    key, = worker.push_running_tasks([{"x": 1}])
    response = stop(dashboard, network_id, {"action": "kill", "worker_ids": [worker.worker_id]})
    assert response.status_code == 200
    assert response.json() == {"action": "kill", "worker_ids": [worker.worker_id]}
    assert rsh.worker_info["state"].tolist() == ["killed"]
    failed = rsh.fetch_failed_tasks()
    assert failed["keys"].tolist() == [key]
    assert failed["condition"][0] == {"message": "Worker was killed"}
    row = wait_until(lambda: (w := state(dashboard, network_id)["workers"][0])["state"] == "killed"
                     and w)
    assert row["worker_id"] == worker.worker_id  # a killed worker stays in the table


def test_terminate_raises_the_flag(dashboard, network_id, rsh, worker):
    response = stop(dashboard, network_id, {"action": "terminate", "worker_ids": [worker.worker_id]})
    assert response.status_code == 200
    assert worker.terminated
    assert rsh.worker_info["state"].tolist() == ["running"]  # it ends itself


@pytest.mark.parametrize("body, kwargs, message", [
    ({"action": "explode", "worker_ids": ["W"]}, {}, "action must be 'kill' or 'terminate'"),
    ({"worker_ids": ["W"]}, {}, "action must be 'kill' or 'terminate'"),
    ({"action": "kill", "worker_ids": "W"}, {}, "worker_ids must be a non-empty list"),
    ({"action": "kill", "worker_ids": []}, {}, "worker_ids must be a non-empty list"),
    ({"action": "kill", "worker_ids": [1]}, {}, "worker_ids must be a non-empty list"),
    ({"action": "kill", "worker_ids": ["W", "nope"]}, {}, "no worker 'nope'"),
    (["kill"], {}, "the request body must be"),
    (None, {"content": b"{not json", "headers": {"content-type": "application/json"}},
     "not valid JSON"),
    (None, {"data": {"action": "kill"}}, "send the request as JSON"),
])
def test_bad_actions_are_400_and_change_nothing(dashboard, network_id, rsh, worker, body, kwargs,
                                                 message):
    worker.push_running_tasks([{"x": 1}])
    before = snapshot(rsh, worker)
    if isinstance(body, dict) and "worker_ids" in body and isinstance(body["worker_ids"], list):
        body = {**body, "worker_ids": [worker.worker_id if w == "W" else w
                                       for w in body["worker_ids"]]}
    response = stop(dashboard, network_id, body, **kwargs)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert snapshot(rsh, worker) == before


def test_a_worker_that_is_not_running_cannot_be_stopped(dashboard, network_id, rsh, make_worker):
    ended, running = make_worker(), make_worker()
    rsh.stop_workers("kill", [ended.worker_id])
    before = snapshot(rsh, running)
    response = stop(dashboard, network_id,
                    {"action": "terminate", "worker_ids": [running.worker_id, ended.worker_id]})
    assert response.status_code == 400
    assert f"'{ended.worker_id}' is killed" in response.json()["error"]
    assert snapshot(rsh, running) == before  # the running one was not touched either


# -- workers that end stay listed (rq#469) ----------------------------------------------

def test_workers_stay_listed_when_their_heartbeat_expires(dashboard, network_id, rsh, config):
    worker = rush.RushWorker(network_id, config=config, heartbeat_period=0.2, heartbeat_expire=0.6)
    try:
        row = wait_until(lambda: (w := state(dashboard, network_id)["workers"]) and w[0])
        assert row["heartbeat"] is True and row["heartbeat_age"] is not None
        assert row["heartbeat_age"] <= 2
        os.kill(worker.heartbeat_pid, signal.SIGKILL)  # the key expires, nobody says so
        row = wait_until(lambda: (w := state(dashboard, network_id)["workers"][0])
                         ["heartbeat_age"] is None and w, timeout=SLOW)
        assert row["state"] == "running"  # still listed, heartbeat shown as expired
        assert rsh.detect_lost_workers() == [worker.worker_id]
        row = wait_until(lambda: (w := state(dashboard, network_id)["workers"][0])
                         ["state"] == "lost" and w)
        assert row["worker_id"] == worker.worker_id
    finally:
        worker.close()


def test_a_crashed_worker_shows_its_error_and_traceback(dashboard, network_id, rsh):
    import loops

    rsh.start_local_workers(loops.wl_raise_mid_task, n_workers=1)
    s = wait_until(lambda: (s := state(dashboard, network_id))["errors"] and
                   s["workers"] and s["workers"][0]["state"] == "lost" and s, timeout=SLOW)
    error, = s["errors"]
    assert error["type"] == "ZeroDivisionError"
    assert "1 / 0" in error["traceback"] and "wl_raise_mid_task" in error["traceback"]
    assert s["workers"][0]["last_error"] == error["message"]
    assert any("ZeroDivisionError" in r["msg"] for r in s["log"])  # its ERROR log record


# -- watching -----------------------------------------------------------------------------

def test_watching_is_not_activity(dashboard, network_id, rsh, worker):
    rsh.connector.zadd(NETWORKS, {network_id: 1000.0})
    fill(worker, 3)
    until_finished(dashboard, network_id, 3)
    get(dashboard, "/")
    get(dashboard, f"/api/networks/{network_id}/tasks")
    assert rsh.connector.zscore(NETWORKS, network_id) == 1000.0


def test_a_reset_network_is_watched_afresh(dashboard, network_id, rsh, config, worker):
    fill(worker, 10)
    until_finished(dashboard, network_id, 10)
    worker.close()
    rsh.reset()
    again = rush.RushWorker(network_id, config=config)
    try:
        fill(again, 3, start=100)
        s = until_finished(dashboard, network_id, 3)
        assert s["trace"]["values"] == [float((100 + i - 10) ** 2) for i in range(3)]
        assert [w["worker_id"] for w in s["workers"]] == [again.worker_id]
    finally:
        again.close()


def events(response):
    """The (event, data) pairs of a stream of server-sent events."""
    name = None
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            yield name, json.loads(line[6:])


def test_the_event_stream_sends_a_snapshot_then_only_what_is_new(config, network_id, rsh, worker):
    fill(worker, 50)
    with rush.dashboard.start(config, network_id, refresh_seconds=0.05) as server:
        base = server.url.split("/networks/")[0]
        url = f"{base}/api/networks/{network_id}/events"
        with httpx.stream("GET", url, params={"token": server.token}, timeout=SLOW) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            seen_networks = False
            values: list = []
            updates = []
            for name, data in events(response):
                if name == "networks":
                    seen_networks = seen_networks or network_id in [n["network_id"] for n in data]
                    continue
                updates.append(data)
                if data["type"] == "full":
                    values = list(data["trace"]["values"])
                    if len(values) == 50 and len(updates) == 1:
                        fill(worker, 1000, start=50)  # one update holds only these
                else:
                    assert data["trace"]["start"] == len(values)
                    values += data["trace"]["values"]
                if len(values) == 1050 and seen_networks:
                    break
        assert updates[0]["type"] == "full" and len(updates[0]["trace"]["values"]) == 50
        assert all(u["type"] == "delta" for u in updates[1:])
        assert sum(len(u["trace"]["values"]) for u in updates[1:]) == 1000
        assert values == [float((i - 10) ** 2) for i in range(1050)]
        assert httpx.get(url, params={"token": "wrong"}).status_code == 401


# -- the command --------------------------------------------------------------------------

def rush_command(*args, env=None, **kwargs):
    env = {**os.environ, **(env or {})}
    env.pop("REDIS_URL", None)
    return subprocess.Popen([sys.executable, "-m", "rush", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT, **kwargs)


def test_rush_dashboard_prints_its_url_once_and_serves_the_page(config, network_id, rsh, worker):
    process = rush_command("dashboard", "--network-id", network_id, "--port", "0",
                           env={"RUSH_REDIS_URL": config.url})
    try:
        first = process.stdout.readline()
        assert first.startswith(f"rush dashboard of network '{network_id}' on redis://")
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and "?token=" in url
        assert "Ctrl-C" in process.stdout.readline()
        page = httpx.get(url, timeout=SLOW)
        assert page.status_code == 200 and f"<title>{network_id} · rush dashboard" in page.text
        assert httpx.get(url.split("?")[0], timeout=SLOW).status_code == 401
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=SLOW)
    assert process.returncode == 0, err
    assert url.split("token=")[1] not in out + err  # printed once, logged never


def test_rush_dashboard_of_an_unknown_network_is_one_line(config):
    process = rush_command("dashboard", "--network-id", "nope-net", "--port", "0",
                           env={"RUSH_REDIS_URL": config.url})
    out, err = process.communicate(timeout=SLOW)
    assert process.returncode == 1
    assert err.strip().splitlines() == [
        f"rush dashboard: UnknownNetworkError: no network 'nope-net' on {config.redacted_url} "
        "(rush status without --network-id lists them)"]


def test_rush_dashboard_without_the_extra_is_one_line(config):
    code = ("import sys; sys.modules['uvicorn'] = None; from rush.cli import main; "
            "sys.exit(main(['dashboard']))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=SLOW, cwd=ROOT, env={**os.environ, "RUSH_REDIS_URL": config.url})
    assert done.returncode == 1
    assert done.stderr.strip() == ("rush dashboard: DashboardMissing: the rush dashboard needs "
                                   "uvicorn: pip install 'rush-redis[dashboard]'")


def test_a_port_in_use_is_one_line(config, network_id, rsh):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = rush_command("dashboard", "--network-id", network_id, "--port", str(port),
                               env={"RUSH_REDIS_URL": config.url})
        out, err = process.communicate(timeout=SLOW)
    assert process.returncode == 1
    assert err.strip().startswith(f"rush dashboard: RushError: cannot listen on 127.0.0.1:{port}")
    assert "--port chooses another port" in err and "Traceback" not in err
