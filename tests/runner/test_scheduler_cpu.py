"""Rank 0 sleeps while it waits: its scheduler thread (which prints its own CPU time at the end)
uses under 0.2% of a core while jobs run, without MPI and under mpirun with 2 ranks. The jobs are
long enough (about ten seconds of training in all) that start-up costs do not dominate."""
import os
import re
import shutil
import sys
import tempfile

from common import run

LIMIT = 0.002  # of one core, over the scheduler's wall time
# Epochs of tens of milliseconds (as real ones are longer still): a worker reports every epoch.
EXTRA = ("--set", "model.hidden_dim=96", "--set", "model.embedding_dim=96", "--set", "output.checkpoint_every=0")

root = tempfile.mkdtemp(prefix="diffpool-scheduler-cpu-")
try:
    for ranks in (None, 2):
        # The share is measured over a run of at least 8 s: on a fast or idle machine the epoch
        # count grows until the run lasts that long (fixed start-up costs would dominate otherwise).
        epochs, attempt = 40, 0
        while True:
            attempt += 1
            p = run(os.path.join(root, f"out-{ranks}-{attempt}"), ranks, EXTRA + ("--set", f"training.epochs={epochs}"))
            m = re.search(r"rank 0 scheduler thread: ([0-9.]+) s CPU over ([0-9.]+) s wall", p.stdout)
            if not m:
                sys.exit(f"no scheduler CPU line in\n{p.stdout}")
            cpu, wall = float(m.group(1)), float(m.group(2))
            if wall >= 8 or epochs >= 2000:
                break
            epochs = min(2000, int(epochs * 10 / max(wall, 0.5)) + 1)
        share = cpu / wall
        print(f"{ranks or 1} rank(s), {epochs} epochs: scheduler {cpu:.3f} s CPU over {wall:.1f} s wall = "
              f"{100 * share:.3f}% of a core")
        if wall < 3:
            sys.exit(f"the run took {wall:.1f} s: too short to measure the scheduler's share")
        if share >= LIMIT:
            sys.exit(f"the scheduler thread used {100 * share:.3f}% of a core (limit {100 * LIMIT:.1f}%)")
finally:
    shutil.rmtree(root, ignore_errors=True)
print("ok")
