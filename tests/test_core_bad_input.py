"""Bad input (SPEC §8): TypeError / ValueError naming the argument, unknown keys discarded
with a warning, Redis down -> RushConnectionError; a call that fails changes nothing."""

from __future__ import annotations

import logging
import threading

import pytest

import rush
from rush import RedisConfig, RedisServer, RushConnectionError, RushWorker


def snapshot(controller) -> tuple:
    """Everything a failed call could have changed."""
    return (controller.n_tasks, controller.tasks_with_state(),
            controller.fetch_tasks().to_string(), controller.worker_info.to_string(),
            sorted(controller.connector.keys("{" + controller.network_id + "}*")))


@pytest.fixture
def populated(rsh, worker):
    """A network with tasks in every state, so a bad call has something to spoil."""
    rsh.push_tasks([{"x": 1}, {"x": 2}])
    running = worker.push_running_tasks([{"x": 3}, {"x": 4}, {"x": 5}])
    worker.finish_tasks(running[0], [{"y": 3}])
    worker.fail_tasks(running[1])
    return dict(running=running[2:], finished=running[:1], failed=running[1:2])


def unchanged(rsh, call, error, *match: str):
    before = snapshot(rsh)
    with pytest.raises(error) as info:
        call()
    for text in match:
        assert text in str(info.value), (text, str(info.value))
    assert snapshot(rsh) == before
    return info.value


@pytest.mark.parametrize("xss", ["x", {"x": 1}, None, 5, [1, 2], [{"x": 1}, "x"], [[("x", 1)]],
                                 [{"x": 1}, None]])
def test_xss_not_a_list_of_dicts(rsh, worker, populated, xss):
    unchanged(rsh, lambda: rsh.push_tasks(xss), TypeError, "xss")
    unchanged(rsh, lambda: worker.push_running_tasks(xss), TypeError, "xss")
    unchanged(rsh, lambda: rsh.push_finished_tasks(xss, [{"y": 1}]), TypeError, "xss")
    unchanged(rsh, lambda: rsh.push_failed_tasks(xss), TypeError, "xss")


@pytest.mark.parametrize("name", ["xss_extra", "extra"])
def test_extras_not_a_list_of_dicts(rsh, worker, populated, name):
    unchanged(rsh, lambda: rsh.push_tasks([{"x": 1}], **{name: {"e": 1}}), TypeError, "xss_extra")
    unchanged(rsh, lambda: worker.push_running_tasks([{"x": 1}], **{name: [1]}), TypeError,
              "xss_extra")


def test_other_lists_not_lists_of_dicts(rsh, worker, populated):
    key = populated["running"][0]
    unchanged(rsh, lambda: rsh.push_finished_tasks([{"x": 1}], {"y": 1}), TypeError, "yss")
    unchanged(rsh, lambda: rsh.push_finished_tasks([{"x": 1}], [{"y": 1}], yss_extra=[3]),
              TypeError, "yss_extra")
    unchanged(rsh, lambda: rsh.push_failed_tasks([{"x": 1}], conditions=["boom"]), TypeError,
              "conditions")
    unchanged(rsh, lambda: worker.finish_tasks(key, {"y": 1}), TypeError, "yss")
    unchanged(rsh, lambda: worker.finish_tasks(key, [{"y": 1}], yss_extra="e"), TypeError,
              "yss_extra")
    unchanged(rsh, lambda: worker.fail_tasks(key, ["boom"]), TypeError, "conditions")
    unchanged(rsh, lambda: worker.finish_tasks(5, [{"y": 1}]), TypeError, "keys")
    unchanged(rsh, lambda: worker.finish_tasks([key, 5], [{"y": 1}]), TypeError, "keys")
    unchanged(rsh, lambda: worker.fail_tasks({key}), TypeError, "keys")
    unchanged(rsh, lambda: rsh.write_hashes(xs={"a": 1}), TypeError, "xs")
    unchanged(rsh, lambda: rsh.write_hashes(5, xs=[{"a": 1}]), TypeError, "keys")


def test_length_mismatches_name_both_lengths(rsh, worker, populated):
    three = [{"x": i} for i in range(3)]
    two = [{"e": 0}, {"e": 1}]
    running = populated["running"]
    for call in (lambda: rsh.push_tasks(three, xss_extra=two),
                 lambda: rsh.push_tasks(three, extra=two),
                 lambda: worker.push_running_tasks(three, two),
                 lambda: rsh.push_finished_tasks(three, two),
                 lambda: rsh.push_finished_tasks(three, [{"y": 1}], xss_extra=two),
                 lambda: rsh.push_finished_tasks(three, [{"y": 1}], yss_extra=two),
                 lambda: rsh.push_failed_tasks(three, conditions=two),
                 lambda: rsh.push_failed_tasks(three, xss_extra=two)):
        unchanged(rsh, call, ValueError, "3", "2")
    keys = running + populated["finished"] + populated["failed"]  # three keys
    for call in (lambda: worker.finish_tasks(keys, two),
                 lambda: worker.finish_tasks(keys, [{"y": 1}], yss_extra=two),
                 lambda: worker.fail_tasks(keys, two),
                 lambda: rsh.write_hashes(keys, xs=two)):
        unchanged(rsh, call, ValueError, "3", "2")
    unchanged(rsh, lambda: rsh.write_hashes(xs=three, ys=two), ValueError, "3", "2")
    unchanged(rsh, lambda: rsh.push_finished_tasks([{"x": 1}], []), ValueError, "0", "1")


def test_a_list_of_length_one_is_not_broadcast_against_longer_extras(rsh):
    # xss fixes the number of tasks; only the other lists are broadcast
    unchanged(rsh, lambda: rsh.push_tasks([{"x": 1}], xss_extra=[{"e": 1}, {"e": 2}]),
              ValueError, "1", "2")


def test_both_spellings_of_extra(rsh, worker, populated):
    unchanged(rsh, lambda: rsh.push_tasks([{"x": 1}], xss_extra=[{}], extra=[{}]), ValueError,
              "xss_extra", "extra")
    unchanged(rsh, lambda: worker.finish_tasks(populated["running"][0], [{"y": 1}],
                                               yss_extra=[{}], extra=[{}]), ValueError)


def test_unpicklable_value_stores_nothing(rsh, populated):
    unchanged(rsh, lambda: rsh.push_tasks([{"x": 1}, {"x": threading.Lock()}]), TypeError)


def test_bad_fields_timeouts_and_states(rsh, worker, populated):
    unchanged(rsh, lambda: rsh.fetch_tasks(fields=5), TypeError, "fields")
    unchanged(rsh, lambda: rsh.fetch_finished_tasks(fields=[1]), TypeError, "fields")
    unchanged(rsh, lambda: rsh.read_hashes(populated["running"], fields=None), TypeError, "fields")
    unchanged(rsh, lambda: rsh.read_hash(5, "xs"), TypeError, "key")
    unchanged(rsh, lambda: rsh.is_running_task(5), TypeError, "keys")
    unchanged(rsh, lambda: rsh.is_failed_task([1]), TypeError, "keys")
    unchanged(rsh, lambda: rsh.tasks_with_state("done"), ValueError, "done")
    unchanged(rsh, lambda: rsh.fetch_tasks_with_state(states=["queued", "bogus"]), ValueError,
              "bogus")
    unchanged(rsh, lambda: rsh.fetch_new_tasks(timeout=-1), ValueError, "timeout")
    unchanged(rsh, lambda: rsh.fetch_new_tasks(timeout="1"), TypeError, "timeout")
    unchanged(rsh, lambda: worker.pop_task(timeout=-1), ValueError, "timeout")
    unchanged(rsh, lambda: worker.pop_task(timeout=None), TypeError, "timeout")
    unchanged(rsh, lambda: worker.pop_task(timeout=0, fields=3), TypeError, "fields")
    unchanged(rsh, lambda: rsh.wait_for_tasks(populated["running"], timeout=-1), ValueError,
              "timeout")
    unchanged(rsh, lambda: rsh.write_hashes(), ValueError)


def test_bad_network_ids_and_configs(config):
    with pytest.raises(TypeError, match="network_id"):
        rush.rsh(5, config=config)
    with pytest.raises(ValueError, match="network_id"):
        rush.rsh("", config=config)
    with pytest.raises(ValueError, match="network_id"):
        rush.rsh("a{b}", config=config)
    with pytest.raises(TypeError, match="config"):
        rush.rsh("net", config=config.url)
    with pytest.raises(TypeError):
        RushWorker(None, config=config)
    with pytest.raises(TypeError, match="worker_id"):
        RushWorker("net", config=config, worker_id=5)


def test_unknown_keys_are_discarded_with_a_warning(rsh, worker, populated, caplog):
    before = snapshot(rsh)
    worker.finish_tasks(["unknown-1", "unknown-2"], [{"y": 1}])
    worker.fail_tasks(["unknown-3"])
    assert snapshot(rsh) == before
    messages = [r.getMessage() for r in caplog.records
                if r.name == "rush" and r.levelno == logging.WARNING]
    assert len(messages) == 2
    assert "unknown-1" in messages[0] and "unknown-2" in messages[0]
    assert "unknown-3" in messages[1]


# -- Redis down --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dead_network():
    """A controller and a worker whose Redis was stopped (no retry: fail at once)."""
    server = RedisServer()
    config = RedisConfig(port=server.port, retry_seconds=0)
    controller = rush.rsh("down", config=config)
    worker = RushWorker("down", config=config)
    keys = worker.push_running_tasks([{"x": 1}])
    server.stop()
    yield controller, worker, keys, server.port
    worker.close()
    controller.close()


DOWN_CALLS = {
    "n_tasks": lambda c, w, k: c.n_tasks,
    "tasks": lambda c, w, k: c.tasks,
    "worker_info": lambda c, w, k: c.worker_info,
    "worker_ids": lambda c, w, k: c.worker_ids,
    "push_tasks": lambda c, w, k: c.push_tasks([{"x": 1}]),
    "push_finished_tasks": lambda c, w, k: c.push_finished_tasks([{"x": 1}], [{"y": 1}]),
    "push_failed_tasks": lambda c, w, k: c.push_failed_tasks([{"x": 1}]),
    "empty_queue": lambda c, w, k: c.empty_queue(),
    "fetch_tasks": lambda c, w, k: c.fetch_tasks(),
    "fetch_finished_tasks": lambda c, w, k: c.fetch_finished_tasks(),
    "fetch_new_tasks": lambda c, w, k: c.fetch_new_tasks(),
    "fetch_new_tasks_waiting": lambda c, w, k: c.fetch_new_tasks(timeout=1),
    "fetch_tasks_with_state": lambda c, w, k: c.fetch_tasks_with_state(),
    "wait_for_tasks": lambda c, w, k: c.wait_for_tasks(k, timeout=1),
    "read_hashes": lambda c, w, k: c.read_hashes(k, "xs"),
    "write_hashes": lambda c, w, k: c.write_hashes(xs=[{"a": 1}]),
    "is_running_task": lambda c, w, k: c.is_running_task(k),
    "tasks_with_state": lambda c, w, k: c.tasks_with_state(),
    "reset": lambda c, w, k: c.reset(),
    "str": lambda c, w, k: str(c),
    "reconnect": lambda c, w, k: c.reconnect(),
    "pop_task": lambda c, w, k: w.pop_task(timeout=0),
    "pop_task_blocking": lambda c, w, k: w.pop_task(timeout=1),
    "push_running_tasks": lambda c, w, k: w.push_running_tasks([{"x": 1}]),
    "finish_tasks": lambda c, w, k: w.finish_tasks(k, [{"y": 1}]),
    "fail_tasks": lambda c, w, k: w.fail_tasks(k),
    "terminated": lambda c, w, k: w.terminated,
    "set_terminated": lambda c, w, k: w.set_terminated(),
}


@pytest.mark.parametrize("name", list(DOWN_CALLS))
def test_redis_down_raises_rush_connection_error(dead_network, name):
    controller, worker, keys, port = dead_network
    with pytest.raises(RushConnectionError) as info:
        DOWN_CALLS[name](controller, worker, keys)
    assert f"127.0.0.1:{port}" in str(info.value)


def test_repr_works_while_redis_is_down(dead_network):
    controller, _, _, _ = dead_network
    assert "down" in repr(controller)

