"""Jobs of very unequal length: the longest expected jobs are handed out first, and every rank
gets work, so ranks finish together."""
import os
import re
import shutil
import sys
import tempfile

from common import run

root = tempfile.mkdtemp(prefix="diffpool-balance-")
try:
    out = os.path.join(root, "out")
    # Two points, one with 10x the epochs; 4 folds: 4 long and 4 short jobs on 3 ranks.
    p = run(out, 3, ("--verbose", "--set", "sweep.parameters={training.epochs: [3, 30]}"))
    assigns = [(int(j), float(c), int(r)) for j, c, r in re.findall(r"assign job (\d+) \(cost ([0-9.e+]+)\) to rank (\d+)", p.stdout)]
    if len(assigns) != 8:
        sys.exit(f"expected 8 assignments, got {assigns}\n{p.stdout}")
    costs = [c for _, c, _ in assigns]
    if costs != sorted(costs, reverse=True):
        sys.exit(f"jobs were not handed out longest first: {assigns}")
    ranks = {r for _, _, r in assigns}
    if ranks != {0, 1, 2}:
        sys.exit(f"not every rank trained: {assigns}")
    m = re.search(r"rank 0 scheduler thread: ([0-9.]+) s CPU over ([0-9.]+) s wall", p.stdout)
    if not m:
        sys.exit("no scheduler CPU line")
    print(f"assignments {assigns}; scheduler {m.group(1)} s CPU over {m.group(2)} s wall")
finally:
    shutil.rmtree(root, ignore_errors=True)
print("ok")
