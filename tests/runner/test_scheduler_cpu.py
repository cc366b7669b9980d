"""Rank 0 sleeps while it waits: its scheduler thread (which prints its own CPU time and how often
it napped at the end) uses under 0.2% of a core while jobs run, without MPI and under mpirun with 2
ranks. The jobs last several seconds each (real ones run minutes to hours), so what is measured is
the waiting, not the start-up and hand-over around each job.

CPU time on a shared virtual machine is noisy (one wake-up cost 100 to 300 us of thread CPU time
on the development machine, and CI measured twice what it did), so the design is also checked by
the nap count, which does not depend on the host's speed: without workers rank 0 sleeps until its own job ends (a few naps per job, and one
every 1-2 s for the progress display); with a worker it sleeps until that worker's job nears its
forecast end, far fewer naps than the 10 a second of a fixed 100 ms poll."""
import os
import re
import shutil
import sys
import tempfile

from common import run

LIMIT = 0.002  # of one core, over the scheduler's wall time
# Naps per second of wall time at most, per case: a 100 ms poll would take 10.
NAP_RATE_LIMIT = {None: 2.0, 2: 8.0}
# Two outer folds and two sweep points: four jobs; epochs of tens of milliseconds, a report each.
EXTRA = ("--set", "model.hidden_dim=96", "--set", "model.embedding_dim=96", "--set", "output.checkpoint_every=0",
         "--set", "evaluation.folds=2")

root = tempfile.mkdtemp(prefix="diffpool-scheduler-cpu-")
try:
    for ranks in (None, 2):
        # The epoch count grows until the run lasts at least 16 s (four jobs of 4 s or more).
        epochs, attempt = 100, 0
        while True:
            attempt += 1
            p = run(os.path.join(root, f"out-{ranks}-{attempt}"), ranks, EXTRA + ("--set", f"training.epochs={epochs}"))
            m = re.search(r"rank 0 scheduler thread: ([0-9.]+) s CPU over ([0-9.]+) s wall, ([0-9]+) naps", p.stdout)
            if not m:
                sys.exit(f"no scheduler CPU line in\n{p.stdout}")
            cpu, wall, naps = float(m.group(1)), float(m.group(2)), int(m.group(3))
            if wall >= 16 or epochs >= 5000:
                break
            epochs = min(5000, int(epochs * 18 / max(wall, 0.5)) + 1)
        share, rate = cpu / wall, naps / wall
        print(f"{ranks or 1} rank(s), {epochs} epochs: scheduler {cpu:.3f} s CPU over {wall:.1f} s wall = "
              f"{100 * share:.3f}% of a core; {naps} naps ({rate:.2f} a second)")
        if wall < 8:
            sys.exit(f"the run took {wall:.1f} s: too short to measure the scheduler's share")
        if rate > NAP_RATE_LIMIT[ranks]:
            sys.exit(f"rank 0 napped {rate:.2f} times a second (limit {NAP_RATE_LIMIT[ranks]}): it polls instead of "
                     f"sleeping until something can happen")
        if share >= LIMIT:
            sys.exit(f"the scheduler thread used {100 * share:.3f}% of a core (limit {100 * LIMIT:.1f}%)")
finally:
    shutil.rmtree(root, ignore_errors=True)
print("ok")
