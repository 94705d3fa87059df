"""Trust (SPEC section 14): payloads signed with the network secret, each attack tried for
real; the least-privilege ACL user of one network; network ids that cannot reach another
network; secrets out of every argv; a script worker runs its own start arguments; private
files."""

from __future__ import annotations

import hmac
import logging
import os
import pickle
import shlex
import signal
import stat
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest
import redis

import loops
import rush
from conftest import wait_until
from rush.acl import acl_setuser
from rush.config import config_environment, config_from_environment
from rush.keys import NETWORKS, NetworkKeys
from rush.local_redis import LocalServer
from rush.serialization import MAGIC, Serializer, _HmacSha256, dumps
from rush.states import KILLED_MESSAGE, REMOVED_MESSAGE
from worker_helpers import SLOW, children_of, pid_alive

SECRET = "network-secret-4c1e"
PASSWORD = "redis-password-77ab"
TESTS = Path(__file__).resolve().parent
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), str(TESTS.parent)]))


class Evil:
    """A pickle that creates ``path`` when it is unpickled: what an attacker with write
    access to Redis (and without the secret) would store to run code in rush."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


@pytest.fixture
def marker(tmp_path) -> Path:
    path = tmp_path / "pwned"
    # the attack is real: unpickling the payload creates the marker file
    pickle.loads(pickle.dumps(Evil(path)))
    assert path.exists()
    path.unlink()
    return path


@pytest.fixture
def signed(config) -> rush.RedisConfig:
    return replace(config, secret=SECRET)


@pytest.fixture
def ctl(signed, network_id):
    controller = rush.rsh(network_id, config=signed)
    yield controller
    controller.reset()
    controller.close()


@pytest.fixture
def raw(config):
    """A plain redis-py client: the attacker, who can write to Redis but has no secret."""
    client = redis.Redis(**config.connection_kwargs())
    yield client
    client.close()


def _refused(call, key: str, marker: Path) -> rush.RushSecurityError:
    with pytest.raises(rush.RushSecurityError) as info:
        call()
    assert key in str(info.value)
    assert SECRET not in str(info.value)
    assert not marker.exists(), "the payload was unpickled"
    return info.value


# -- the serializer ------------------------------------------------------------------------

def test_a_sealed_payload_opens_only_at_its_place_with_its_secret():
    a, b = Serializer(NetworkKeys("net-a"), SECRET), Serializer(NetworkKeys("net-b"), SECRET)
    where = a.task_place("k1", "xs")
    stored = a.dumps({"x": 1}, where)
    assert stored.startswith(MAGIC) and stored.endswith(dumps({"x": 1}))
    assert a.loads(stored, where) == {"x": 1}
    for wrong in (a.task_place("k2", "xs"), a.task_place("k1", "ys"), b.task_place("k1", "xs"),
                  a.place(a.keys.start_args_blob("k1"))):
        with pytest.raises(rush.RushSecurityError, match="does not match"):
            a.loads(stored, wrong)
    with pytest.raises(rush.RushSecurityError, match="does not match"):
        Serializer(NetworkKeys("net-a"), "another secret").loads(stored, where)
    tampered = bytearray(stored)
    tampered[-2] ^= 1
    with pytest.raises(rush.RushSecurityError, match="does not match"):
        a.loads(bytes(tampered), where)
    with pytest.raises(rush.RushSecurityError, match="not signed"):
        a.loads(dumps({"x": 1}), where)
    with pytest.raises(rush.RushSecurityError, match="has none"):
        Serializer(NetworkKeys("net-a")).loads(stored, where)


def test_without_a_secret_payloads_are_the_plain_pickles_as_before():
    plain = Serializer(NetworkKeys("net-a"))
    where = plain.task_place("k1", "xs")
    assert plain.dumps({"x": 1}, where) == pickle.dumps({"x": 1}, 5)
    assert plain.loads(pickle.dumps({"x": 1}, 5), where) == {"x": 1}


# -- attacks: a crafted pickle written with raw redis-py -----------------------------------

def test_a_crafted_pickle_in_a_task_hash_is_refused_everywhere(ctl, signed, raw, marker):
    key, = ctl.push_tasks([{"x": 1}])
    evil = pickle.dumps(Evil(marker))
    raw.hset(ctl.keys.task(key), "xs", evil)
    _refused(ctl.fetch_tasks, key, marker)
    _refused(ctl.fetch_queued_tasks, key, marker)
    _refused(lambda: ctl.read_hashes([key], ["xs"]), key, marker)
    with rush.RushWorker(ctl.network_id, config=signed) as worker:
        _refused(lambda: worker.pop_task(timeout=0), key, marker)
    # a forged signature is no better
    raw.hset(ctl.keys.task(key), "xs", MAGIC + b"\0" * 32 + evil)
    _refused(lambda: ctl.read_hash(key, ["xs"]), key, marker)


def test_a_crafted_pickle_stops_a_worker_process_before_it_runs(ctl, raw, marker):
    keys = ctl.push_tasks([{"x": 1}])
    raw.hset(ctl.keys.task(keys[0]), "xs", pickle.dumps(Evil(marker)))
    ctl.start_local_workers(loops.wl_queue, n_workers=1)
    ctl.wait_for_tasks(keys, timeout=SLOW)  # the worker's loop crashed on it: it failed
    assert not marker.exists()
    wait_until(lambda: len(ctl.worker_errors), SLOW, message="the crash record")
    errors = ctl.worker_errors
    assert list(errors["type"]) == ["RushSecurityError"] and keys[0] in errors["message"][0]
    assert ctl.fetch_failed_tasks(fields=["condition"])["condition"][0]["type"] == \
        "RushSecurityError"


def test_a_crafted_pickle_in_the_start_arguments_is_refused(ctl, signed, raw, marker):
    command = ctl.worker_script(loops.wl_push_label, label="ours")
    words = shlex.split(command)
    args_id = words[words.index("--start-args") + 1]
    blob = ctl.keys.start_args_blob(args_id)
    raw.set(blob, pickle.dumps(Evil(marker)))
    _refused(lambda: rush.start_worker(ctl.network_id, config=signed), blob, marker)
    done = subprocess.run(command, shell=True, env=ENV, capture_output=True, text=True,
                          timeout=SLOW)
    assert done.returncode == 1 and "RushSecurityError" in done.stderr and blob in done.stderr
    assert SECRET not in done.stderr and not marker.exists()
    assert ctl.n_tasks == 0


def test_a_crafted_pickle_in_a_large_object_file_is_refused(ctl, signed, raw, marker, tmp_path):
    folder = tmp_path / "large"
    folder.mkdir()
    rush.rush_plan(config=signed, large_objects_path=str(folder), max_object_size=1e-6)
    try:
        command = ctl.worker_script(loops.wl_push_label, label="ours")
    finally:
        rush.remove_rush_plan()
    words = shlex.split(command)
    blob = ctl.keys.start_args_blob(words[words.index("--start-args") + 1])
    path, = folder.iterdir()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    subprocess.run(command, shell=True, env=ENV, check=True, timeout=SLOW)  # it works as is
    assert ctl.fetch_finished_tasks()["label"].tolist() == ["ours"]

    path.write_bytes(pickle.dumps(Evil(marker)))
    error = _refused(lambda: rush.start_worker(ctl.network_id, config=signed), blob, marker)
    assert "large_object" in str(error)
    # a payload sealed for another place (the pointer in Redis) does not fit the file either
    path.write_bytes(raw.get(blob))
    _refused(lambda: rush.start_worker(ctl.network_id, config=signed), blob, marker)


# -- attacks: payloads moved between keys, fields and networks -------------------------------

def test_a_payload_moved_to_another_task_or_field_is_refused(ctl, signed, raw, marker):
    with rush.RushWorker(ctl.network_id, config=signed) as worker:
        a, b = worker.push_running_tasks([{"x": 1}, {"x": 2}])
        worker.finish_tasks([a], [{"y": 1}])
        worker.fail_tasks([b], [{"message": "theirs"}])
    ys = raw.hget(ctl.keys.task(a), "ys")
    raw.hset(ctl.keys.task(b), "ys", ys)  # another task
    _refused(lambda: ctl.read_hash(b, ["ys"]), b, marker)
    raw.hdel(ctl.keys.task(b), "ys")
    raw.hset(ctl.keys.task(a), "ys", raw.hget(ctl.keys.task(a), "xs"))  # another field
    _refused(ctl.fetch_finished_tasks, a, marker)
    raw.hset(ctl.keys.task(a), "condition", raw.hget(ctl.keys.task(b), "condition"))
    _refused(lambda: ctl.read_hash(a, ["condition"]), a, marker)


def test_a_payload_moved_to_another_network_is_refused(ctl, signed, raw, marker, network_id):
    other = rush.rsh(network_id + "-b", config=signed)  # the same secret
    try:
        mine, = ctl.push_tasks([{"x": 1}])
        theirs, = other.push_tasks([{"x": 2}])
        raw.hset(other.keys.task(theirs), "xs", raw.hget(ctl.keys.task(mine), "xs"))
        _refused(other.fetch_tasks, theirs, marker)
        # start arguments too: the loop of one network cannot be run by another's workers
        ids = []
        for controller in (ctl, other):
            words = shlex.split(controller.worker_script(loops.wl_push_label, label="x"))
            ids.append(words[words.index("--start-args") + 1])
        raw.set(other.keys.start_args_blob(ids[1]), raw.get(ctl.keys.start_args_blob(ids[0])))
        _refused(lambda: rush.start_worker(other.network_id, config=signed), ids[1], marker)
    finally:
        other.reset()
        other.close()


def test_conditions_the_scripts_place_are_signed_for_their_task(ctl, signed, raw):
    keys = ctl.push_tasks([{"x": i} for i in range(3)], max_retries=0)
    with rush.RushWorker(ctl.network_id, config=signed) as worker:
        worker.pop_task(timeout=0)
        running = worker.push_running_tasks([{"x": 9}])
        ctl.stop_workers(worker_ids=worker.worker_id)
    assert ctl.empty_queue() == keys[1:]
    failed = ctl.fetch_failed_tasks()
    messages = dict(zip(failed["keys"], (c["message"] for c in failed["condition"])))
    assert messages == {keys[0]: f"Task failed after 1 attempts: {KILLED_MESSAGE}",
                        running[0]: KILLED_MESSAGE, keys[1]: REMOVED_MESSAGE,
                        keys[2]: REMOVED_MESSAGE}
    assert all(raw.hget(ctl.keys.task(k), "condition").startswith(MAGIC) for k in messages)


def test_remote_workers_get_the_secret_with_their_config(ctl):
    with ProcessPoolExecutor(max_workers=1) as pool:
        keys = ctl.push_tasks([{"x": i} for i in range(5)])
        ctl.start_remote_workers(loops.wl_queue, n_workers=1, executor=pool)
        ctl.wait_for_tasks(keys, timeout=SLOW)
        assert sorted(ctl.fetch_finished_tasks()["y"]) == [i * i for i in range(5)]
        ctl.stop_workers(type="terminate")
        wait_until(lambda: ctl.n_terminated_workers == 1, SLOW, message="the worker to end")


def test_without_the_secret_a_signed_network_is_refused_not_misread(ctl, config):
    ctl.push_tasks([{"x": 1}])
    with rush.rsh(ctl.network_id, config=config) as unsigned:
        with pytest.raises(rush.RushSecurityError, match="RUSH_SECRET"):
            unsigned.fetch_tasks()


# -- the least-privilege user of one network -------------------------------------------------

@pytest.fixture(scope="module")
def acl_server():
    with rush.RedisServer() as server:
        yield server


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rush", *args], env={**ENV, **env},
                          capture_output=True, text=True, timeout=SLOW)


def test_a_network_user_runs_a_full_job_and_reaches_no_other_network(acl_server, network_id):
    admin = redis.Redis(**acl_server.config.connection_kwargs())
    neighbour = rush.rsh(network_id + "b", config=acl_server.config)  # an id it starts with
    neighbour.push_tasks([{"x": 1}])
    admin.execute_command("ACL", "LOG", "RESET")
    done = _cli("acl", "--network-id", network_id, "--user", "alice")
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip()
    assert line.startswith("ACL SETUSER alice reset on >") and f"~{{{network_id}}}:*" in line
    for command in ("+keys", "+scan", "+flushall", "+flushdb", "+config", "+@all"):
        assert command not in line.split()
    admin.execute_command(*shlex.split(line))
    password = next(w for w in line.split() if w.startswith(">"))[1:]
    config = rush.RedisConfig(host=acl_server.config.host, port=acl_server.config.port,
                              username="alice", password=password, secret=SECRET)
    try:
        with rush.rsh(network_id, config=config) as controller:
            # the queue, with task control, heartbeats and logs to Redis
            keys = controller.push_tasks([{"x": i} for i in range(10)], timeouts=60,
                                         max_retries=1)
            ids = controller.start_local_workers(loops.wl_queue, n_workers=2,
                                                 heartbeat_period=0.5,
                                                 lgr_thresholds={"rush": "info"})
            controller.wait_for_tasks(keys, timeout=SLOW, detect_lost_workers=True)
            keys += controller.push_priority_tasks([{"x": 10}], priority=[ids[0]])
            controller.wait_for_tasks(keys, timeout=SLOW)
            assert sorted(controller.fetch_finished_tasks()["y"]) == [i * i for i in range(11)]
            controller.stop_workers(worker_ids=ids[0])
            controller.stop_workers(type="terminate")
            wait_until(lambda: controller.n_running_workers == 0, SLOW, message="workers to end")
            # the decentralized loop
            controller.start_local_workers(loops.wl_count_up, n_workers=2, n=30)
            controller.wait_for_workers(4, timeout=SLOW)
            wait_until(lambda: controller.n_running_workers == 0, SLOW, message="loops to end")
            assert controller.n_finished_tasks >= 30
            assert len(controller.fetch_tasks_with_state()) == controller.n_tasks
            controller.read_log()
            assert controller.worker_errors.empty and controller.detect_lost_workers() == []
            controller.push_tasks([{"x": 0}])
            assert len(controller.empty_queue()) == 1
            status = _cli("status", "--network-id", network_id, RUSH_REDIS_URL=config.url,
                          RUSH_SECRET=SECRET)
            assert status.returncode == 0 and network_id in status.stdout, status.stderr
            controller.reset()
            assert admin.keys(controller.keys.pattern()) == []

        # the same user is refused every other network, whatever its id begins with
        alice = redis.Redis(**config.connection_kwargs())
        for command in (lambda: alice.llen(neighbour.keys.queued),
                        lambda: alice.set(neighbour.keys.epoch, "x"),
                        lambda: alice.zrange(NETWORKS, 0, -1),
                        lambda: alice.keys("*"), lambda: alice.scan(0),
                        lambda: alice.config_get("requirepass"), lambda: alice.flushall()):
            with pytest.raises(redis.exceptions.NoPermissionError):
                command()
        alice.close()
        with pytest.raises(rush.RushError, match="refused a command of user 'alice'"):
            rush.rsh(neighbour.network_id, config=config)
        assert neighbour.n_tasks == 1
        # nothing else rush runs was refused: the server-wide index (left out on purpose),
        # redis-py's CLIENT SETINFO (ignored), and the commands tried above
        refused = {(entry["reason"], entry["object"]) for entry in admin.acl_log(count=128)}
        tried = {("key", neighbour.keys.queued), ("key", neighbour.keys.epoch),
                 ("key", NETWORKS), ("command", "keys"), ("command", "scan"),
                 ("command", "config"), ("command", "flushall")}
        assert {r for r in refused if not r[1].startswith("client")} <= tried, refused - tried
    finally:
        admin.execute_command("ACL", "DELUSER", "alice")
        neighbour.reset()
        neighbour.close()
        admin.close()


def test_acl_rules_reach_exactly_one_network():
    line = acl_setuser("net-1", password="pw")
    assert line.split()[:6] == ["ACL", "SETUSER", "rush-net-1", "reset", "on", ">pw"]
    assert "~{net-1}:*" in line.split() and "&{net-1}:events" in line.split()
    with pytest.raises(ValueError, match="network_id"):
        acl_setuser("net*")
    with pytest.raises(ValueError, match="user"):
        acl_setuser("net-1", user="a b")
    done = _cli("acl", "--network-id", "a}b")
    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1


# -- network ids -----------------------------------------------------------------------------

@pytest.mark.parametrize("bad", ["", "a{b", "a}b", "a:b", "a*", "a?", "a[b]", "a b", "a\tb",
                                 "a\\b", "a/b", "é", "a\nb"])
def test_network_ids_hold_only_letters_digits_dash_underscore_dot(bad, config):
    for make in (lambda: rush.rsh(bad, config=config), lambda: NetworkKeys(bad),
                 lambda: rush.RushWorker(bad, config=config),
                 lambda: rush.start_worker(bad, config=config)):
        with pytest.raises(ValueError, match="network_id"):
            make()


def test_cli_refuses_a_bad_network_id_in_one_line(config):
    for args in (["status", "--network-id", "a*", "--url", config.url],
                 ["worker", "--network-id", "a:b", "--url", config.url]):
        done = _cli(*args)
        assert done.returncode == 1
        assert "network_id" in done.stderr and "Traceback" not in done.stderr


def test_the_index_of_networks_lists_no_entry_that_is_no_network_id(config, ctl):
    client = redis.Redis(**config.connection_kwargs())
    client.zadd(NETWORKS, {"a}:*{": 1.0})
    try:
        done = _cli("status", "--url", config.url)
        assert done.returncode == 0 and ctl.network_id in done.stdout and "a}" not in done.stdout
    finally:
        client.zrem(NETWORKS, "a}:*{")
        client.close()


# -- secrets out of every process title, and each script worker runs its own loop -------------

@pytest.fixture(scope="module")
def secured_config():
    with rush.RedisServer() as server:
        client = redis.Redis(**server.config.connection_kwargs())
        client.config_set("requirepass", PASSWORD)
        client.close()
        yield rush.RedisConfig(host=server.config.host, port=server.config.port,
                               password=PASSWORD, secret=SECRET)


@pytest.fixture
def secured(secured_config, network_id):
    controller = rush.rsh(network_id, config=secured_config)
    yield controller
    controller.reset()
    controller.close()


def _cmdline(pid: int) -> bytes:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read()


def _parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def _assert_no_secret_in_argv(*pids: int) -> None:
    for pid in pids:
        title = _cmdline(pid)
        assert PASSWORD.encode() not in title and SECRET.encode() not in title, (pid, title)


def test_a_script_worker_leaves_no_secret_in_any_argv(secured, caplog):
    caplog.set_level(logging.INFO, logger="rush")
    command = secured.worker_script(loops.wl_sleep_until_terminated, heartbeat_period=0.5)
    assert PASSWORD in command and SECRET in command
    assert " exec " in command
    logged = [r.getMessage() for r in caplog.records if "rush" in r.getMessage()]
    assert logged and all(PASSWORD not in m and SECRET not in m for m in logged)
    shell = subprocess.Popen(["sh", "-c", command], env=ENV, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: secured.n_running_workers == 1, SLOW, message="the worker")
        pid = int(secured.worker_info["pid"][0])
        assert pid == shell.pid  # the shell became the worker: no `sh -c` left holding it
        beats = wait_until(lambda: children_of(pid), SLOW, message="the heartbeat")
        _assert_no_secret_in_argv(pid, _parent(pid), *beats)
        secured.stop_workers(type="terminate")
        assert shell.wait(SLOW) == 0
    finally:
        if shell.poll() is None:
            shell.kill()
            shell.wait(SLOW)


def test_readme_recipe_3_passes_the_command_to_a_shell_on_stdin(secured):
    """The recipe's `ssh host sh -s` with the command on stdin, without the ssh: neither
    host gets the URL or the secret in an argv, and `trap '' HUP` does what nohup did."""
    command = secured.worker_script(loops.wl_sleep_until_terminated)
    script = f"(trap '' HUP; {command}) > /dev/null 2>&1 < /dev/null &\n"
    done = subprocess.run(["sh", "-s"], input=script, env=ENV, text=True, timeout=SLOW)
    assert done.returncode == 0
    wait_until(lambda: secured.n_running_workers == 1, SLOW, message="the worker")
    pid = int(secured.worker_info["pid"][0])
    try:
        _assert_no_secret_in_argv(pid, _parent(pid))
        with open(f"/proc/{pid}/status") as f:
            ignored = int(next(l for l in f if l.startswith("SigIgn:")).split()[1], 16)
        assert ignored & (1 << (signal.SIGHUP - 1))
        secured.stop_workers(type="terminate")
        wait_until(lambda: not pid_alive(pid), SLOW, message="the worker to end")
    finally:
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_each_worker_script_runs_the_start_arguments_it_was_made_for(secured):
    first = secured.worker_script(loops.wl_push_label, label="first")
    second = secured.worker_script(loops.wl_push_label, label="second")
    subprocess.run(first, shell=True, env=ENV, check=True, timeout=SLOW)
    subprocess.run(second, shell=True, env=ENV, check=True, timeout=SLOW)
    subprocess.run(first, shell=True, env=ENV, check=True, timeout=SLOW)
    assert secured.fetch_finished_tasks()["label"].tolist() == ["first", "second", "first"]


# -- private files ---------------------------------------------------------------------------

def test_log_files_are_readable_by_their_owner_only(secured, tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    secured.start_local_workers(loops.wl_print_both, n_workers=1, message_log=str(logs),
                                output_log=str(logs))
    subprocess.run(secured.worker_script(loops.wl_print_both, message_log=str(logs),
                                         output_log=str(logs)),
                   shell=True, env=ENV, check=True, timeout=SLOW)
    wait_until(lambda: secured.n_terminated_workers == 2, SLOW, message="the workers to end")
    files = sorted(logs.iterdir())
    assert len(files) == 4
    assert {stat.S_IMODE(f.stat().st_mode) for f in files} == {0o600}


# -- the secret in the config ----------------------------------------------------------------

def test_the_secret_is_part_of_the_config_and_never_shown(monkeypatch):
    config = rush.RedisConfig(url="redis://:pw@h:6379/0", secret=SECRET)
    assert config != replace(config, secret=None) and config == replace(config)
    for text in (repr(config), str(config), config.redacted_url, repr(config.redacted()),
                 repr(Serializer(NetworkKeys("n"), SECRET))):
        assert SECRET not in text
    assert "secret='***'" in repr(config) and config.redacted().secret == "***"
    env = config_environment(config)
    assert env["RUSH_SECRET"] == SECRET and SECRET not in env["RUSH_REDIS_URL"]
    assert config_environment(replace(config, secret=None))["RUSH_SECRET"] == ""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert config_from_environment() == config == rush.redis_config()
    monkeypatch.setenv("RUSH_SECRET", "")
    assert config_from_environment().secret is None
    with pytest.raises(ValueError, match="secret"):
        rush.RedisConfig(secret="")
    with pytest.raises(TypeError, match="secret"):
        rush.RedisConfig(secret=b"bytes")  # type: ignore[arg-type]


def test_the_local_rush_server_makes_a_secret_with_its_password(rush_home, monkeypatch):
    monkeypatch.delenv("RUSH_REDIS_URL", raising=False)
    config = rush.local_server()
    server = LocalServer(rush_home)
    assert config.secret and config.secret == server.config().secret == server.tcp_config().secret
    assert stat.S_IMODE(server.secret_file.stat().st_mode) == 0o600
    with rush.rsh("signed-here", config=config) as controller:
        key, = controller.push_tasks([{"x": 1}])
        assert controller.connector.hget(controller.keys.task(key), "xs").startswith(MAGIC)
        controller.reset()


def test_the_tag_is_hmac_sha256_of_the_place_and_the_pickle():
    for n in (0, 1, 32, 64, 65, 200):
        key = os.urandom(n)
        for message in (b"", b"a", os.urandom(1000)):
            assert _HmacSha256(key).tag(message[:3], message[3:]) == \
                hmac.digest(key, message, "sha256")
