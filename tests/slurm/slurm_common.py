"""Shared by the Slurm tests: skip when Slurm cannot run here, paths, the job environment."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "runner"))

from slurm_cluster import SKIP, missing  # noqa: E402

reason = missing()
if reason is None and not os.environ.get("DIFFPOOL_BINARY_DIR"):
    reason = "DIFFPOOL_BINARY_DIR is not set (run through ctest)"
if reason:
    print(f"SKIP: Slurm tests not run: {reason}")
    sys.exit(SKIP)

import common  # noqa: E402  (tests/runner/common.py: reference runs, result comparison)

JOBS = os.path.join(common.SOURCE_DIR, "jobs", "slurm")
# What the batch jobs need besides the cluster: the data, the executable, root-friendly Open MPI.
JOB_ENV = {k: v for k, v in common.ENV.items() if k.startswith(("OMPI_", "HDF5_", "DIFFPOOL_"))}
JOB_ENV["DIFFPOOL_BIN"] = common.DIFFPOOL


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def job_logs(out):
    logs = os.path.join(out, "logs")
    return "".join(read(os.path.join(logs, f)) for f in sorted(os.listdir(logs))) if os.path.isdir(logs) else ""


def expect(condition, message, *logs):
    if not condition:
        sys.exit("FAILED: " + message + "".join(f"\n--- {name}:\n{text[-4000:]}" for name, text in logs))
