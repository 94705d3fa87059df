"""rush.optuna: decentralized Optuna on rush workers, against the private Redis.

End-to-end runs use 2 local worker processes; the cross-worker mechanics (running trials
visible, pruning on other workers' values) are also driven step by step with two
in-process workers, where the interleaving is under the test's control.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

import rush

optuna = pytest.importorskip("optuna")
import rush.optuna as rush_optuna  # noqa: E402  (needs optuna)
from optuna.distributions import FloatDistribution, IntDistribution  # noqa: E402
from optuna.trial import TrialState  # noqa: E402
from rush.optuna import NetworkStorage  # noqa: E402

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(autouse=True)
def quiet_optuna():
    optuna.logging.set_verbosity(optuna.logging.WARNING)


# -- objectives (module level: the worker processes import them) ---------------------

def _barrier(folder: str, n: int) -> None:
    """Wait (at most 60 s) until ``n`` worker processes have reached this point once."""
    Path(folder, str(os.getpid())).touch()
    deadline = time.monotonic() + 60
    while len(os.listdir(folder)) < n and time.monotonic() < deadline:
        time.sleep(0.01)


def quadratic(folder: str, trial) -> float:
    """x**2 after a barrier of both workers (so that both run trials)."""
    _barrier(folder, 2)
    x = trial.suggest_float("x", -5, 5)
    trial.set_user_attr("pid", os.getpid())
    time.sleep(0.02)
    return x * x


def odd_trials_are_bad(trial) -> float:
    """Reports one value per step: 0 for even trial numbers, 10 for odd ones."""
    trial.suggest_float("x", 0, 1)
    value = 10.0 if trial.number % 2 else 0.0
    for step in range(3):
        trial.report(value, step)
        if trial.should_prune():
            raise optuna.TrialPruned()
        time.sleep(0.01)
    return value


def every_third_raises(trial) -> float:
    x = trial.suggest_float("x", -1, 1)
    if trial.number % 3 == 0:
        raise ValueError(f"boom {trial.number}")
    return x


def trial_two_kills_its_worker(trial) -> float:
    """Trial 2 dies like a segfault; the others last long enough that slots are still
    queued when the controller finds the worker lost (so it starts it again)."""
    x = trial.suggest_float("x", -1, 1)
    if trial.number == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.3)
    return x


def two_objectives(trial) -> tuple[float, float]:
    x = trial.suggest_float("x", 0, 1)
    return x * x, x


def four_points(trial) -> float:
    x = trial.suggest_int("x", 0, 3)
    time.sleep(0.05)
    return float(x)


def slow(trial) -> float:
    x = trial.suggest_float("x", 0, 1)
    time.sleep(0.1)
    return x


def states(study) -> list[TrialState]:
    return [t.state for t in study.trials]


# -- end to end ----------------------------------------------------------------------

def test_exactly_n_trials_with_their_params_timings_and_workers(rsh, config, network_id, tmp_path):
    study = rush_optuna.optimize(functools.partial(quadratic, str(tmp_path)), n_trials=20,
                                 n_workers=2, sampler=optuna.samplers.RandomSampler(seed=0),
                                 network_id=network_id, config=config)
    trials = study.trials
    assert [t.number for t in trials] == list(range(20))
    assert states(study) == [TrialState.COMPLETE] * 20
    assert rsh.n_finished_tasks == 20
    assert rsh.n_queued_tasks == rsh.n_running_tasks == rsh.n_failed_tasks == 0
    assert rsh.n_running_workers == 0 and rsh.n_terminated_workers == 2

    assert {t.system_attrs["rush_worker_id"] for t in trials} == set(rsh.worker_ids)
    assert len({t.user_attrs["pid"] for t in trials}) == 2
    for t in trials:
        assert t.distributions == {"x": FloatDistribution(-5, 5)}
        assert t.value == pytest.approx(t.params["x"] ** 2)
        assert t.duration.total_seconds() >= 0.02
    # one seed, two workers: each reseeded its copy of the sampler, so no shared stream
    assert len({t.params["x"] for t in trials}) == 20

    assert study.best_value == min(t.value for t in trials)
    assert set(study.best_params) == {"x"}
    df = study.trials_dataframe()
    assert len(df) == 20 and {"params_x", "user_attrs_pid", "system_attrs_rush_worker_id",
                              "datetime_start", "duration"} <= set(df.columns)
    pytest.importorskip("plotly")
    figure = optuna.visualization.plot_optimization_history(study)
    assert len(figure.data[0].x) == 20

    # the trials stay in the network the caller named, as rush tasks
    done = rsh.fetch_finished_tasks()
    assert sorted(done["x"]) == sorted(t.params["x"] for t in trials)
    assert sorted(done["value"]) == sorted(t.value for t in trials)


def test_pruner_sees_the_values_of_every_worker(rsh, config, network_id):
    pruner = optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
    study = rush_optuna.optimize(odd_trials_are_bad, n_trials=12, n_workers=2, pruner=pruner,
                                 sampler=optuna.samplers.RandomSampler(),
                                 network_id=network_id, config=config)
    assert len(study.trials) == 12
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED]
    assert pruned and all(t.number % 2 for t in pruned)
    assert all(t.state == TrialState.COMPLETE for t in study.trials if t.number % 2 == 0)
    assert pruned[0].intermediate_values[0] == 10.0
    assert rsh.n_finished_tasks == 12  # pruned trials are finished tasks


def test_an_objective_that_raises_fails_its_trial_and_the_run_goes_on(rsh, config, network_id):
    study = rush_optuna.optimize(every_third_raises, n_trials=9, n_workers=2,
                                 network_id=network_id, config=config)
    assert len(study.trials) == 9
    for t in study.trials:
        if t.number % 3 == 0:
            assert t.state == TrialState.FAIL
            assert t.system_attrs["fail_reason"] == f"ValueError: boom {t.number}"
            assert "x" in t.params and t.datetime_complete is not None
        else:
            assert t.state == TrialState.COMPLETE
    failed = rsh.fetch_failed_tasks()
    assert len(failed) == 3
    assert all("Traceback" in c["traceback"] for c in failed["condition"])


def test_a_worker_that_dies_fails_its_trial_and_the_run_completes(rsh, config, network_id):
    study = rush_optuna.optimize(trial_two_kills_its_worker, n_trials=8, n_workers=2,
                                 network_id=network_id, config=config)
    assert [t.number for t in study.trials] == list(range(8))
    lost = study.trials[2]
    assert lost.state == TrialState.FAIL
    assert lost.system_attrs["fail_reason"] == "Worker has crashed or was killed"
    assert lost.datetime_complete >= lost.datetime_start
    assert all(t.state == TrialState.COMPLETE for t in study.trials if t.number != 2)
    # the lost worker was started again (same id) and ended normally
    assert rsh.n_workers == 2 and rsh.n_terminated_workers == 2


def test_several_objectives(rsh, config, network_id):
    study = rush_optuna.optimize(two_objectives, n_trials=10, n_workers=2,
                                 directions=["minimize", "maximize"],
                                 network_id=network_id, config=config)
    assert len(study.trials) == 10 and all(len(t.values) == 2 for t in study.trials)
    assert study.best_trials
    done = rsh.fetch_finished_tasks()
    assert {"values_0", "values_1"} <= set(done.columns)


def test_timeout_stops_handing_out_trials(rsh, config, network_id):
    started = time.monotonic()
    study = rush_optuna.optimize(slow, n_trials=500, n_workers=2, timeout=4,
                                 network_id=network_id, config=config)
    assert time.monotonic() - started < 30
    n = len(study.trials)
    assert n < 500  # (none at all if the workers took 4 s to start on a busy machine)
    assert states(study) == [TrialState.COMPLETE] * n
    assert rsh.n_finished_tasks == n and rsh.n_failed_tasks == 500 - n  # removed from the queue


def test_a_sampler_that_stops_the_study_ends_the_run(rsh, config, network_id):
    study = rush_optuna.optimize(four_points, n_trials=20, n_workers=2,
                                 sampler=brute_force_sampler(),
                                 network_id=network_id, config=config)
    assert {t.params["x"] for t in study.trials} == {0, 1, 2, 3}
    assert 4 <= len(study.trials) < 20
    assert rsh.n_queued_tasks == 0 and rsh.n_running_tasks == 0


def test_remote_workers_on_an_executor(rsh, config, network_id):
    with ProcessPoolExecutor(max_workers=2) as pool:
        study = rush_optuna.optimize(every_third_raises, n_trials=6, n_workers=2,
                                     worker_type="remote", executor=pool,
                                     network_id=network_id, config=config)
    assert len(study.trials) == 6
    assert rsh.worker_info["remote"].all()


def test_a_temporary_network_is_deleted(rsh, config):
    study = rush_optuna.optimize(two_objectives, n_trials=3, n_workers=1,
                                 directions=["minimize", "minimize"], config=config)
    assert len(study.trials) == 3
    assert not rsh.connector.keys("*" + study.study_name + "*")


# -- bad input -----------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, error, match", [
    (dict(objective=42), TypeError, "objective must be callable"),
    (dict(n_trials=0), ValueError, "n_trials must be >= 1"),
    (dict(n_trials="10"), TypeError, "n_trials must be an int"),
    (dict(n_trials=True), TypeError, "n_trials must be an int"),
    (dict(n_workers=0), ValueError, "n_workers must be >= 1"),
    (dict(direction="min"), ValueError, "'minimize' or 'maximize'"),
    (dict(direction="minimize", directions=["minimize"]), ValueError, "not both"),
    (dict(directions="minimize"), TypeError, "directions must be a list"),
    (dict(directions=[]), ValueError, "must not be empty"),
    (dict(sampler="tpe"), TypeError, "sampler must be an optuna sampler"),
    (dict(pruner=object()), TypeError, "pruner must be an optuna pruner"),
    (dict(worker_type="script"), ValueError, "worker_type must be 'local' or 'remote'"),
    (dict(executor=object()), ValueError, "executor is for worker_type='remote'"),
    (dict(worker_type="remote", executor=object()), TypeError, "submit"),
    (dict(timeout=-1), ValueError, "timeout must be > 0"),
    (dict(objective=lambda trial: 0.0, n_workers=None), ValueError, "give n_workers"),
])
def test_bad_input_is_refused_and_changes_nothing(rsh, config, network_id, kwargs, error, match):
    args = dict(objective=every_third_raises, n_trials=3, n_workers=1, network_id=network_id,
                config=config)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        rush_optuna.optimize(**args)
    assert rsh.n_tasks == 0 and rsh.n_workers == 0


def test_a_network_in_use_is_refused(rsh, config, network_id):
    rsh.push_tasks([{"x": 1}])
    with pytest.raises(ValueError, match="already has tasks or workers"):
        rush_optuna.optimize(every_third_raises, n_trials=3, n_workers=1,
                             network_id=network_id, config=config)
    assert rsh.n_tasks == 1 and rsh.n_queued_tasks == 1 and rsh.n_workers == 0


def test_an_objective_that_cannot_be_pickled_fails_before_any_worker_starts(rsh, config,
                                                                            network_id):
    import threading

    lock = threading.Lock()
    with pytest.raises(Exception, match="pickle|lock"):
        rush_optuna.optimize(lambda trial: lock.locked(), n_trials=2, n_workers=1,
                             network_id=network_id, config=config)
    assert rsh.n_tasks == 0 and rsh.n_workers == 0


def test_import_rush_does_not_import_optuna():
    import subprocess

    code = "import sys, rush; rush.rsh; print('optuna' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- two workers driven step by step (in-process) ------------------------------------

def brute_force_sampler():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.BruteForceSampler()


def _worker_study(network_id, config, slots, sampler=None, pruner=None):
    worker = rush.RushWorker(network_id, config=config)
    storage = NetworkStorage(worker, slots)
    study = optuna.create_study(storage=storage, sampler=sampler, pruner=pruner)
    return worker, storage, study


def test_running_trials_of_other_workers_are_visible_so_samplers_avoid_them(rsh, config,
                                                                            network_id):
    slots = rsh.push_tasks([{}] * 4)
    wa, sa, study_a = _worker_study(network_id, config, slots, brute_force_sampler())
    wb, sb, study_b = _worker_study(network_id, config, slots, brute_force_sampler())
    try:
        ta = study_a.ask()
        xa = ta.suggest_int("x", 0, 3)  # reaches Redis now
        tb = study_b.ask()
        assert (ta.number, tb.number) == (0, 1)
        seen = study_b.trials[0]
        assert seen.state == TrialState.RUNNING and seen.params == {"x": xa}
        assert seen.distributions == {"x": IntDistribution(0, 3)}
        xb = tb.suggest_int("x", 0, 3)
        assert xb != xa  # the sampler counted the other worker's running trial

        study_b.tell(tb, 1.0)
        ta.report(0.5, step=0)
        study_a.tell(ta, 2.0)
        tc = study_a.ask()  # syncs: trial 1 of worker b is complete here now
        assert tc.number == 2
        assert [t.state for t in study_a.trials[:2]] == [TrialState.COMPLETE] * 2
        assert study_a.trials[1].value == 1.0 and study_a.trials[1].params == {"x": xb}
        assert sb.sync() == 2  # b reads only what it has not seen end: trials 0 and 2
        assert study_b.trials[0].intermediate_values == {0: 0.5}
        assert study_b.trials[2].state == TrialState.RUNNING
        assert sb.sync() == 1  # trial 2 is still running; 0 and 1 are done for good
    finally:
        wa.close()
        wb.close()


def test_a_pruner_sees_values_reported_on_another_worker_during_the_trial(rsh, config,
                                                                        network_id):
    slots = rsh.push_tasks([{}] * 4)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0)
    wa, sa, study_a = _worker_study(network_id, config, slots, pruner=pruner)
    wb, sb, study_b = _worker_study(network_id, config, slots, pruner=pruner)

    def good_trial():
        trial = study_a.ask()
        for step in range(2):
            trial.report(0.0, step)
        study_a.tell(trial, 0.0)

    try:
        good_trial()
        good_trial()
        bad = study_b.ask()  # trial 2: sees trials 0 and 1, too few to prune
        bad.report(10.0, 0)
        assert not bad.should_prune()
        good_trial()  # trial 3, on worker a, while trial 2 runs on b
        bad.report(10.0, 1)  # syncs: b now holds 3 complete trials
        assert bad.should_prune()
        study_b.tell(bad, state=TrialState.PRUNED)
        assert rsh.fetch_finished_tasks()["trial_state"].tolist().count("PRUNED") == 1
    finally:
        wa.close()
        wb.close()


def test_a_trial_failed_by_rush_becomes_fail_in_other_workers(rsh, config, network_id):
    slots = rsh.push_tasks([{}] * 3)
    wa, sa, study_a = _worker_study(network_id, config, slots)
    wb, sb, study_b = _worker_study(network_id, config, slots)
    try:
        ta = study_a.ask()
        ta.suggest_float("x", 0, 1)
        rsh.stop_workers(worker_ids=wa.worker_id)  # as if its process had died
        study_b.ask()
        assert study_b.trials[0].state == TrialState.FAIL
        with pytest.raises(rush_optuna.WorkerDone, match="terminate"):
            study_a.ask()  # a stopped worker reads as terminated: its loop ends
    finally:
        wa.close()
        wb.close()


def _view(study) -> list[tuple]:
    return [(t.number, t.state, t.params, t.distributions, t.values, t.intermediate_values,
             t.user_attrs, t.datetime_start) for t in study.trials]


def test_every_worker_ends_with_the_network_study(rsh, config, network_id):
    """Two workers interleaving asks, reports and tells: once synced, each one's local
    study equals the study read afresh from the network."""
    slots = rsh.push_tasks([{}] * 12)
    wa, sa, study_a = _worker_study(network_id, config, slots, optuna.samplers.TPESampler(
        n_startup_trials=3, constant_liar=True))
    wb, sb, study_b = _worker_study(network_id, config, slots, optuna.samplers.TPESampler(
        n_startup_trials=3, constant_liar=True))

    def start(study):
        trial = study.ask()
        x = trial.suggest_float("x", -2, 2)
        trial.suggest_categorical("kind", ["a", "b"])
        trial.report(x, 0)
        trial.set_user_attr("by", id(study))
        return trial

    try:
        for _ in range(6):
            ta = start(study_a)
            tb = start(study_b)
            study_a.tell(ta, ta.params["x"] ** 2)
            tb.report(tb.params["x"] + 1, 1)
            study_b.tell(tb, state=TrialState.PRUNED)
        sa.sync()
        sb.sync()
        fresh = NetworkStorage(rsh, slots)  # a controller can read the network's study too
        network = optuna.create_study(storage=fresh)
        fresh.sync()
        assert len(network.trials) == 12
        assert _view(study_a) == _view(network) == _view(study_b)
    finally:
        wa.close()
        wb.close()


def test_enqueue_trial_is_refused_in_a_worker(rsh, config, network_id):
    slots = rsh.push_tasks([{}])
    worker, storage, study = _worker_study(network_id, config, slots)
    try:
        with pytest.raises(NotImplementedError, match="enqueue_trial"):
            study.enqueue_trial({"x": 1})
        study.ask()
        with pytest.raises(rush_optuna.WorkerDone, match="all 1 trials"):
            study.ask()
    finally:
        worker.close()
