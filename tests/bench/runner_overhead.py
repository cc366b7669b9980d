#!/usr/bin/python3
"""The runner's cost beyond training, and rank 0's CPU time while it schedules.

Runs the tiny MUTAG experiment of the runner tests (tests/runner/tiny.yaml) as many short jobs
(one epoch each, a sweep of POINTS learning rates x 4 folds) with 1 rank and with 2 ranks, each
rank under /usr/bin/time. From the job files (h5py) it takes the seconds each job spent inside
its training; from a rerun in which every job is already finished, the fixed cost of a run
(MPI start, dataset, plan, summary). Per-job overhead is then

    (wall of the run - wall of the rerun - sum of job seconds / ranks) / jobs

which counts everything a job costs besides training: scheduling messages, the split, writing
its HDF5 file and log, checkpoints. It also prints each rank's CPU time (user + system) and the
CPU time of rank 0's scheduler thread (which diffpool prints at the end of a run).

    /usr/bin/python3 tests/bench/runner_overhead.py --build build [--points 10] [--ranks 1 2]
Needs DIFFPOOL_DATA (MUTAG) and Open MPI.
"""
import argparse
import glob
import os
import re
import shutil
import subprocess
import tempfile
import time

import h5py


def run(cmd, env):
    start = time.perf_counter()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if p.returncode != 0:
        raise SystemExit(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stdout}\n{p.stderr}")
    return wall, p.stdout + p.stderr


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    source = os.path.dirname(os.path.dirname(here))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", default=os.path.join(source, "build"))
    parser.add_argument("--points", type=int, default=10, help="sweep points (jobs = points x 4 folds)")
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    rates = ",".join(f"{0.001 * (i + 1):g}" for i in range(args.points))
    for ranks in args.ranks:
        out = tempfile.mkdtemp(prefix="diffpool-overhead-")
        try:
            cmd = [os.path.join(args.build, "diffpool"), "run", os.path.join(source, "tests/runner/tiny.yaml"),
                   "--set", f"output.dir={out}", "--set", "training.epochs=1",
                   "--set", f"sweep.parameters={{training.learning_rate: [{rates}]}}",
                   "--set", "output.progress_seconds=3600"]
            timed = ["/usr/bin/time", "-f", "cpu-seconds %U %S", *cmd]
            launch = ["mpirun", "--oversubscribe", "--bind-to", "none", "-np", str(ranks), *timed]
            wall, log = run(launch, env)
            rerun_wall, _ = run(launch, env)
            jobs = glob.glob(os.path.join(out, "jobs", "*.h5"))
            train = 0.0
            for path in jobs:
                with h5py.File(path, "r") as f:
                    train += float(f.attrs["wall_seconds"])
            cpu = sorted(float(u) + float(s) for u, s in re.findall(r"cpu-seconds ([0-9.]+) ([0-9.]+)", log))
            sched = re.search(r"rank 0 scheduler thread: ([0-9.]+) s CPU over ([0-9.]+) s wall", log)
            overhead = (wall - rerun_wall - train / ranks) / len(jobs)
            print(f"ranks {ranks}: {len(jobs)} jobs, wall {wall:.2f} s, fixed cost (rerun, all done) {rerun_wall:.2f} s, "
                  f"training {train:.2f} s in total; overhead {overhead * 1000:.1f} ms per job")
            print(f"  CPU seconds per rank (user+system): {', '.join(f'{c:.2f}' for c in cpu)}"
                  + (f"; rank 0 scheduler thread {sched.group(1)} s CPU over {sched.group(2)} s wall" if sched else ""))
        finally:
            shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
