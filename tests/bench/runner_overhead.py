#!/usr/bin/python3
"""The runner's cost beyond training, and rank 0's CPU time while it schedules.

Runs the tiny MUTAG experiment of the runner tests (tests/runner/tiny.yaml) as many one-epoch
jobs (a sweep of learning rates x 4 folds), twice per rank count: with SMALL and with LARGE sweep
points. Both runs pay the same fixed costs (MPI start, dataset, plan, summary), so the extra
wall time per extra job is what one more job costs; the seconds a job spent training come from
its job file (h5py). With R ranks on at least R cores,

    overhead per job = (wall_large - wall_small) * R / (jobs_large - jobs_small) - training per job

counts what a job costs besides training: the scheduling messages, its split, writing its HDF5
file and log, its checkpoint. (On a machine with fewer cores than ranks, multiply by the cores
instead of R.) It also prints each rank's CPU time (user + system, from getrusage via
/usr/bin/time) and the CPU time of rank 0's scheduler thread, which diffpool prints at the end.

    /usr/bin/python3 tests/bench/runner_overhead.py [--build build] [--small 5] [--large 30]
        [--ranks 1 2] [--cores N]
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


def experiment(args, source, ranks, points, env):
    """One run in a fresh folder: (wall, jobs, training seconds, CPU per rank, scheduler line)."""
    out = tempfile.mkdtemp(prefix="diffpool-overhead-")
    try:
        rates = ",".join(f"{0.0001 * (i + 1):g}" for i in range(points))
        cmd = [os.path.join(args.build, "diffpool"), "run", os.path.join(source, "tests/runner/tiny.yaml"),
               "--set", f"output.dir={out}", "--set", "training.epochs=1",
               "--set", f"sweep.parameters={{training.learning_rate: [{rates}]}}",
               "--set", "output.progress_seconds=3600"]
        # Each rank under /usr/bin/time, writing to its own file.
        timed = ["sh", "-c", f'exec /usr/bin/time -f "%U %S" -o "{out}/cpu.$OMPI_COMM_WORLD_RANK" "$@"', "sh", *cmd]
        wall, log = run(["mpirun", "--oversubscribe", "--bind-to", "none", "-np", str(ranks), *timed], env)
        train = 0.0
        jobs = glob.glob(os.path.join(out, "jobs", "*.h5"))
        for path in jobs:
            with h5py.File(path, "r") as f:
                train += float(f.attrs["wall_seconds"])
        cpu = []
        for r in range(ranks):
            with open(os.path.join(out, f"cpu.{r}")) as f:
                u, s = f.read().split()[-2:]
                cpu.append(float(u) + float(s))
        sched = re.search(r"rank 0 scheduler thread: ([0-9.]+) s CPU over ([0-9.]+) s wall", log)
        return wall, len(jobs), train, cpu, sched
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    source = os.path.dirname(os.path.dirname(here))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", default=os.path.join(source, "build"))
    parser.add_argument("--small", type=int, default=5, help="sweep points of the small run (jobs = points x 4)")
    parser.add_argument("--large", type=int, default=30, help="sweep points of the large run")
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--cores", type=int, default=0, help="cores the ranks share (default: as many as ranks)")
    args = parser.parse_args()
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    for ranks in args.ranks:
        w1, j1, t1, _, _ = experiment(args, source, ranks, args.small, env)
        w2, j2, t2, cpu, sched = experiment(args, source, ranks, args.large, env)
        parallel = min(ranks, args.cores) if args.cores else ranks
        per_job = (w2 - w1) * parallel / (j2 - j1)
        train_per_job = (t2 - t1) / (j2 - j1)
        print(f"ranks {ranks}: {j1} jobs in {w1:.2f} s, {j2} jobs in {w2:.2f} s; per extra job {per_job * 1000:.1f} ms "
              f"of which training {train_per_job * 1000:.1f} ms: overhead {(per_job - train_per_job) * 1000:.1f} ms per job")
        print(f"  {j2}-job run: CPU seconds per rank (user+system) {', '.join(f'{c:.2f}' for c in cpu)}"
              + (f"; rank 0 scheduler thread {sched.group(1)} s CPU over {sched.group(2)} s wall" if sched else ""))


if __name__ == "__main__":
    main()
