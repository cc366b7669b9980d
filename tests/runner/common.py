"""Helpers of the runner tests (run with Debian's /usr/bin/python3; h5py and numpy installed)."""
import math
import os
import signal
import subprocess
import sys
import threading
import time

import h5py
import numpy as np

BINARY_DIR = os.environ["DIFFPOOL_BINARY_DIR"]
SOURCE_DIR = os.environ["DIFFPOOL_SOURCE_DIR"]
DIFFPOOL = os.path.join(BINARY_DIR, "diffpool")
TINY = os.path.join(SOURCE_DIR, "tests", "runner", "tiny.yaml")
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_rmaps_base_oversubscribe="1", HDF5_USE_FILE_LOCKING="FALSE")


def command(out, ranks=None, extra=()):
    """The diffpool run command line for the tiny experiment; ranks=None: no MPI launcher."""
    args = [DIFFPOOL, "run", TINY, "--set", f"output.dir={out}", *extra]
    if ranks is None:
        return args
    return ["mpirun", "--oversubscribe", "--bind-to", "none", "-np", str(ranks), *args]


def run(out, ranks=None, extra=(), check=True, timeout=600):
    p = subprocess.run(command(out, ranks, extra), env=ENV, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        sys.exit(f"run failed ({p.returncode}): {' '.join(command(out, ranks, extra))}\n{p.stdout}\n{p.stderr}")
    return p


def start(out, ranks=None, extra=()):
    """Starts a run in its own process group (so the whole MPI job can be signalled)."""
    return subprocess.Popen(command(out, ranks, extra), env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)


def expect(condition, message, text=""):
    """Ends the test with FAIL, the message and the run's output, unless the condition holds."""
    if not condition:
        sys.exit(f"FAIL: {message}\n{text}")


def read_until(proc, marker, timeout):
    """The output of a started run up to the first line containing `marker` (or its end, or the timeout)."""
    seen, deadline = "", time.time() + timeout
    while marker not in seen and time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen += line
    return seen


def read_rest(proc, timeout):
    """The rest of a started run's output once it ends, after read_until. Not proc.communicate():
    with a timeout it reads the pipe's descriptor and loses what read_until's readline had already
    buffered (a line printed just after the marker). The run's process group is killed past the
    timeout."""
    rest = []
    reader = threading.Thread(target=lambda: rest.append(proc.stdout.read()), daemon=True)
    reader.start()
    reader.join(timeout)
    if reader.is_alive():
        os.killpg(proc.pid, signal.SIGKILL)
        reader.join()
        proc.wait()
        sys.exit(f"FAIL: the run did not end within {timeout} s\n{''.join(rest)}")
    proc.wait()
    return rest[0]


def job_files(out):
    d = os.path.join(out, "jobs")
    return sorted(f for f in os.listdir(d) if f.endswith(".h5")) if os.path.isdir(d) else []


def job_content(path):
    """Everything a job computed (not where or when it ran), for exact comparison."""
    with h5py.File(path, "r") as f:
        content = {"settings": f["settings"][()], "splits": {k: f["splits"][k][()].tolist() for k in f["splits"]}}
        for k in f["metrics"]:
            if k.endswith("seconds"):
                continue
            content["metric " + k] = f["metrics"][k][()].tolist()
        for k in ("best_epoch", "seed", "point", "fold", "repeat", "status"):
            content[k] = f.attrs[k]
        for k, v in f["result"].attrs.items():
            content["result " + k] = v
        for group in ("best_validation", "test"):
            if group in f["result"]:
                for k, v in f["result"][group].attrs.items():
                    content[f"result {group} {k}"] = v
        if "predictions" in f:  # every test graph's label and prediction (per epoch: the paper protocol)
            for k in f["predictions"]:
                content["predictions " + k] = f["predictions"][k][()].tolist()
            content["predictions epoch"] = f["predictions"].attrs["epoch"]
    return content


def summary_content(out):
    with h5py.File(os.path.join(out, "summary.h5"), "r") as f:
        content = {}
        for group in ("points", "winners"):
            if group in f:
                for k in f[group]:
                    content[f"{group} {k}"] = f[group][k][()].tolist()
        for k in ("accuracy_mean", "accuracy_std", "jobs_completed", "jobs_failed", "protocol"):
            content[k] = f.attrs[k]
    return content


def same(a, b):
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True)
    return a == b


def compare_dirs(reference, other, what):
    """Identical job files (by content) and identical summaries."""
    ref_jobs, other_jobs = job_files(reference), job_files(other)
    if ref_jobs != other_jobs:
        sys.exit(f"{what}: different job sets:\n{ref_jobs}\n{other_jobs}")
    for name in ref_jobs:
        a = job_content(os.path.join(reference, "jobs", name))
        b = job_content(os.path.join(other, "jobs", name))
        for key in a:
            if not same(a[key], b.get(key)):
                sys.exit(f"{what}: job {name} differs in {key}: {a[key]} != {b.get(key)}")
    a, b = summary_content(reference), summary_content(other)
    for key in a:
        if not same(a[key], b.get(key)):
            sys.exit(f"{what}: summary differs in {key}: {a[key]} != {b.get(key)}")


def readable(path):
    try:
        with h5py.File(path, "r") as f:
            f.attrs["status"]
            f["metrics"]["epoch"][()]
        return True
    except Exception as e:  # noqa: BLE001 - any failure means unreadable
        print(f"unreadable {path}: {e}")
        return False
