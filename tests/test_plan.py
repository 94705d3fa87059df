"""Rush Plan (article section): ``rush_plan``, ``rush_config``, ``rush_available``,
``remove_rush_plan``, and the plan's defaults reaching the start methods."""

from __future__ import annotations

import pytest

import loops
import rush
from conftest import wait_until
from worker_helpers import SLOW

PLAN_KEYS = {"n_workers", "config", "lgr_thresholds", "lgr_buffer_size", "large_objects_path",
             "worker_type", "start_worker_timeout", "max_object_size", "executor", "max_value_size"}


@pytest.fixture
def plan():
    """Removes whatever plan the test set, whatever happens."""
    rush.remove_rush_plan()
    yield
    rush.remove_rush_plan()


def test_rush_plan_sets_the_defaults_of_the_start_methods(rsh, config, network_id, plan):
    assert not rush.rush_available()
    assert rush.rush_config() == {}

    rush.rush_plan(n_workers=2, config=config, worker_type="local")

    assert rush.rush_available()
    planned = rush.rush_config()
    assert set(planned) == PLAN_KEYS
    assert planned["n_workers"] == 2
    assert planned["config"] == config
    assert planned["worker_type"] == "local"
    with rush.rsh(network_id) as other:  # no config: the plan's
        assert other.config == config

    worker_ids = rsh.start_local_workers(worker_loop=loops.wl_random_search_terminate, pause=0.01)

    assert len(worker_ids) == 2
    rsh.wait_for_workers(2, timeout=SLOW)
    assert rsh.n_running_workers == 2
    rsh.stop_workers(type="terminate")
    wait_until(lambda: rsh.n_terminated_workers == 2, SLOW, message="2 terminated workers")

    rush.remove_rush_plan()
    assert not rush.rush_available()
    assert rush.rush_config() == {}
    with pytest.raises(ValueError, match="n_workers"):
        rsh.start_local_workers(worker_loop=loops.wl_random_search_terminate)


def test_plan_logging_and_start_timeout_reach_the_controller(rsh, config, plan):
    rush.rush_plan(config=config, lgr_thresholds={"rush": "info"}, start_worker_timeout=0.3)
    worker_ids = rsh.start_local_workers(worker_loop=loops.wl_log_message, n_workers=1)
    wait_until(lambda: rsh.n_terminated_workers == 1, SLOW, message="the worker to terminate")
    assert f"This is an info message from worker {worker_ids[0]}" in list(rsh.read_log()["msg"])
    with pytest.raises(TimeoutError):
        rsh.wait_for_workers(5)  # the plan's start_worker_timeout


def test_rush_plan_rejects_bad_values_and_keeps_the_old_plan(config, plan):
    rush.rush_plan(n_workers=3, config=config)
    with pytest.raises(ValueError, match="worker_type"):
        rush.rush_plan(n_workers=1, config=config, worker_type="cloud")
    with pytest.raises(ValueError, match="n_workers"):
        rush.rush_plan(n_workers=0, config=config)
    with pytest.raises(ValueError, match="large_objects_path"):
        rush.rush_plan(config=config, large_objects_path="/no/such/dir")
    with pytest.raises(rush.RushConnectionError):
        rush.rush_plan(config=rush.RedisConfig(port=1))
    assert rush.rush_config()["n_workers"] == 3


def test_large_start_arguments_need_large_objects_path(rsh, config, tmp_path, plan):
    payload = b"x" * 64 * 1024  # 64 KiB, over the 0.01 MiB limit below
    rush.rush_plan(config=config, max_object_size=0.01)
    with pytest.raises(ValueError, match="large_objects_path"):
        rsh.start_local_workers(worker_loop=loops.wl_big_kwargs, n_workers=1, payload=payload)
    assert rsh.processes == {}
    assert not rsh.connector.exists(rsh.keys.start_args)

    rush.rush_plan(config=config, max_object_size=0.01, large_objects_path=tmp_path)
    rsh.start_local_workers(worker_loop=loops.wl_big_kwargs, n_workers=2, payload=payload)

    wait_until(lambda: rsh.n_terminated_workers == 2, SLOW, message="2 terminated workers")
    assert list(rsh.fetch_finished_tasks()["y"]) == [float(len(payload))] * 2
    assert len(list(tmp_path.glob("*.pkl"))) == 1
    stored = rsh.connector.get(rsh.keys.start_args_blob(rsh.connector.get(rsh.keys.start_args).decode()))
    assert len(stored) < 1024  # only the path went to Redis


def test_plan_buffer_size_reaches_local_workers(rsh, config, tmp_path, plan):
    rush.rush_plan(config=config, lgr_thresholds={"rush": "info"}, lgr_buffer_size=1000)
    release = tmp_path / "release"
    rsh.start_local_workers(worker_loop=loops.wl_log_then_block, n_workers=1,
                            release=str(release))
    wait_until(lambda: rsh.n_running_tasks == 1, SLOW, message="the worker inside its task")
    assert not any(m.startswith("buffered") for m in rsh.read_log()["msg"])  # still buffered

    release.touch()

    wait_until(lambda: rsh.n_terminated_workers == 1, SLOW, message="the worker to terminate")
    assert [m for m in rsh.read_log()["msg"] if m.startswith("buffered")] == \
        ["buffered 0", "buffered 1", "buffered 2"]
