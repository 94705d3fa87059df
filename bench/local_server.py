"""``python -m bench.local_server``: how long a fresh process waits for the local rush server.

Each sample is one new Python process (``RUSH_REDIS_URL=local``, a temporary
``RUSH_HOME``) timing ``rush.rsh()`` after ``import rush``:

- first use: no server runs, so ``rsh()`` starts one (empty home, then a home whose
  server was stopped with data kept);
- later use: the server runs, ``rsh()`` finds it;
- baseline: ``rsh(config=...)`` to an already running private server (no resolution),
  measured in the same run; the ratios are against it.

Goals (issue 10): first use under 1 s, later uses under 50 ms.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

from rush import RedisServer
from rush.local_redis import LocalServer

from bench.timing import median, ratio

_CHILD = """
import time
import rush
from rush import RedisConfig
url = {url!r}
started = time.perf_counter()
controller = rush.rsh("bench-local", config=RedisConfig(url=url) if url else None)
print(time.perf_counter() - started)
controller.close()
"""


def _sample(home: str, url: str | None = None) -> float:
    env = dict(os.environ, RUSH_HOME=home, RUSH_REDIS_URL="local")
    done = subprocess.run([sys.executable, "-c", _CHILD.format(url=url)], env=env, check=True,
                          capture_output=True, text=True)
    return float(done.stdout.strip())


def run(reps: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {"first use (new home)": [], "first use (stopped)": [],
                                       "later use": [], "baseline": []}
    with RedisServer() as private, tempfile.TemporaryDirectory(prefix="rush-bench-") as tmp:
        for rep in range(reps):
            home = os.path.join(tmp, f"h{rep}")
            server = LocalServer(home)
            try:
                samples["first use (new home)"].append(_sample(home))
                samples["later use"].append(_sample(home))
                samples["baseline"].append(_sample(home, private.config.url))
                server.stop()
                samples["first use (stopped)"].append(_sample(home))
            finally:
                server.stop()
    return samples


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.local_server", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args(argv)
    samples = run(args.reps)
    base = median(samples["baseline"])
    print(f"{'rsh() in a fresh process':<28} {'median ms':>10} {'max ms':>8} {'x baseline':>11}")
    for name, values in samples.items():
        print(f"{name:<28} {median(values) * 1000:>10.1f} {max(values) * 1000:>8.1f} "
              f"{ratio(median(values), base):>11.2f}")


if __name__ == "__main__":
    main()
