"""Memory of `plan`, `validate` and the start of `run` grows with the jobs they print, by a small
constant: a sweep of 20000 jobs (10000 points x 2 folds, 1010 swept values in the file) against
the same experiment with one point. Each command's peak RSS (getrusage of the child, ru_maxrss) is
measured for both; the difference per job must stay under LIMIT_BYTES_PER_JOB. The libraries and
the dataset cost the same in both, so they cancel out.

`run` is measured up to the scheduler's start: it gets SIGTERM as soon as its stop handler is
installed (read from /proc/PID/status), goes through the plan, the input checks, the cost estimate
and the scheduler's construction, and stops with 75 before any job trains.

  test_plan_memory.py [points_per_fold]   (default 10000; prints the figures, docs/PERFORMANCE.md)"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from common import DIFFPOOL, ENV

# What a job may cost beyond the one-point experiment, in bytes of peak RSS. Measured: about 1 KB
# per job here (1.6 KB per point over 2 folds: its resolved settings, label and values); a copy of
# the document or of the sweep's values per point costs 5 to 60 KB per job at this size.
LIMIT_BYTES_PER_JOB = 2048
FOLDS = 2

points = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
HIDDEN = 10
rates = points // HIDDEN

root = tempfile.mkdtemp(prefix="diffpool-plan-memory-")
failures = []


def experiment(name, hidden, learning_rates):
    path = os.path.join(root, f"{name}.yaml")
    with open(path, "w", encoding="utf-8") as out:
        out.write(f"""name: {name}
dataset:
  name: MUTAG
model:
  variant: diffpool
  pool_levels: 1
  hidden_dim: 16
  embedding_dim: 16
  cluster_ratio: 0.25
  mlp_hidden: [16]
training:
  epochs: 4
  batch_size: 16
evaluation:
  protocol: holdout
  folds: {FOLDS}
  validation_fraction: 0.15
sweep:
  parameters:
    model.hidden_dim: [{", ".join(str(8 + i) for i in range(hidden))}]
    training.learning_rate: [{", ".join(f"{(i + 1) * 1e-5:.5g}" for i in range(learning_rates))}]
output:
  dir: {os.path.join(root, "runs", name)}
""")
    return path


def signal_handled(pid, number):
    """Whether the process has installed a handler for the signal (SigCgt in /proc/PID/status)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("SigCgt:"):
                    return (int(line.split()[1], 16) >> (number - 1)) & 1 == 1
    except FileNotFoundError:
        pass
    return False


def measure(command, path):
    """(exit code, peak RSS in bytes, seconds, output) of one command in a child of its own."""
    env = dict(ENV, OPENBLAS_NUM_THREADS="1")  # no re-exec: the measured process is the child
    start = time.monotonic()
    with tempfile.TemporaryFile() as out:
        p = subprocess.Popen([DIFFPOOL, command, path], env=env, stdout=out, stderr=subprocess.STDOUT)
        if command == "run":
            while p.poll() is None and not signal_handled(p.pid, signal.SIGTERM):
                time.sleep(0.001)
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    return p.returncode, usage.ru_maxrss * 1024, time.monotonic() - start, text


try:
    small = experiment("one-point", 1, 1)
    large = experiment("sweep", HIDDEN, rates)
    jobs = HIDDEN * rates * FOLDS
    expected = {"validate": 0, "plan": 0, "run": 75}
    print(f"{jobs} jobs ({HIDDEN * rates} points x {FOLDS} folds) against 1 point x {FOLDS} folds; "
          f"limit {LIMIT_BYTES_PER_JOB} bytes of peak RSS per job")
    for command in ("validate", "plan", "run"):
        results = {}
        for name, path in (("one point", small), ("sweep", large)):
            code, peak, seconds, text = measure(command, path)
            results[name] = peak
            print(f"  {command:<8} {name:<9}: peak RSS {peak / 2**20:7.1f} MiB, {seconds:5.1f} s, exit {code}")
            if code != expected[command]:
                failures.append(f"{command} {name}: exit {code}, expected {expected[command]}\n{text[-3000:]}")
            if command == "plan" and name == "sweep":
                rows = sum(1 for line in text.splitlines() if line.rstrip().endswith(" pending"))
                if rows != jobs:
                    failures.append(f"plan printed {rows} pending jobs, expected {jobs}")
            if command == "run":
                if "0 already done" not in text or "signal 15 received" not in text:
                    failures.append(f"run {name} did not stop at the scheduler's start:\n{text[-3000:]}")
                job_dir = os.path.join(root, "runs", "sweep" if name == "sweep" else "one-point", "jobs")
                if os.path.isdir(job_dir) and os.listdir(job_dir):
                    failures.append(f"run {name} trained jobs before stopping: {os.listdir(job_dir)}")
        per_job = (results["sweep"] - results["one point"]) / (jobs - FOLDS)
        print(f"  {command:<8} {per_job:7.0f} bytes per job")
        if per_job > LIMIT_BYTES_PER_JOB:
            failures.append(f"{command}: {per_job:.0f} bytes of peak RSS per job, more than {LIMIT_BYTES_PER_JOB}")
finally:
    shutil.rmtree(root, ignore_errors=True)

if failures:
    sys.exit("FAILED:\n" + "\n".join(failures))
print("plan memory: ok")
