"""`diffpool merge`: the summaries of runs of different folds of one experiment, in separate
folders, merge into the summary one run of all folds writes (every protocol), without job files;
overlapping inputs, missing folds, another experiment, conflicting results and summaries without
job rows are handled as documented (results/README.md, "Merging runs of different folds")."""
import os
import shutil
import subprocess
import sys
import tempfile

import h5py

from common import DIFFPOOL, ENV, SOURCE_DIR, run, summary_content

sys.path.insert(0, os.path.join(SOURCE_DIR, "results", "python"))
from diffpool_results import epochs_dataframe, load_summary, summary_dataframe, to_dataframe  # noqa: E402

SHARED = ["job_id", "phase", "point", "fold", "repeat", "winner", "best_epoch", "epochs", "validation_accuracy",
          "test_accuracy", "paper_epoch", "paper_test_accuracy"]


def edit_summary(folder, edit):
    """Edits a summary.h5 with h5py, then drops its checksum block (which the edit leaves stale):
    the same HDF5 bytes as a file of an earlier version (results/README.md, "Checksum block")."""
    path = os.path.join(folder, "summary.h5")
    with h5py.File(path, "r+") as f:
        result = edit(f)
    with open(path, "rb") as f:
        content = f.read()[512:]
    with open(path, "wb") as f:
        f.write(content)
    return result


def merge(inputs, out):
    return subprocess.run([DIFFPOOL, "merge", *inputs, "--out", out], env=ENV, capture_output=True, text=True,
                          timeout=120)


def comparable(content):
    """NaN compares unequal to itself: spell it out so that equal summaries compare equal."""
    def fix(v):
        if isinstance(v, float) and v != v:
            return "nan"
        if isinstance(v, list):
            return [fix(x) for x in v]
        return v
    return {k: fix(v) for k, v in content.items()}


def job_rows(folder):
    with h5py.File(os.path.join(folder, "summary.h5"), "r") as f:
        g = f["jobs"]
        rows = {k: g[k][()].tolist() for k in g if k not in ("host", "seconds")}
    return comparable(rows)


def expect(condition, message):
    if not condition:
        sys.exit(message)


def check_protocol(root, protocol, extra):
    base = ("--set", f"evaluation.protocol={protocol}", "--set", "training.epochs=3", *extra)
    full, a, b = (os.path.join(root, protocol, n) for n in ("full", "a", "b"))
    run(full, extra=base)
    run(a, extra=(*base, "--set", "evaluation.only_folds=[0,2]"))
    run(b, extra=(*base, "--set", "evaluation.only_folds=[1,3]"))
    # The shards' job files go: the merge needs only their summaries.
    for shard in (a, b):
        shutil.rmtree(os.path.join(shard, "jobs"))
        shutil.rmtree(os.path.join(shard, "checkpoints"), ignore_errors=True)
    merged = os.path.join(root, protocol, "merged")
    p = merge([a, b], merged)
    expect(p.returncode == 0, f"{protocol}: merge exited {p.returncode}\n{p.stdout}\n{p.stderr}")
    want, got = comparable(summary_content(full)), comparable(summary_content(merged))
    expect(want == got, f"{protocol}: the merged summary differs from one run of all folds:\n{want}\n{got}")
    expect(job_rows(full) == job_rows(merged), f"{protocol}: the merged job rows differ from one run's")
    with h5py.File(os.path.join(merged, "summary.h5"), "r") as f:
        expect(f.attrs["jobs_completed"] == f.attrs["jobs_total"], f"{protocol}: merged counts {dict(f.attrs)}")
        expect(f["jobs"].attrs["rows"] > 0 and len(f["jobs/validation_curves"]) > 0, f"{protocol}: no job rows")
    # The Python reader: one row per job, each with its curve of `epochs` entries.
    summary = load_summary(os.path.join(merged, "summary.h5"))
    expect(len(summary.jobs) == summary.jobs_completed == len(summary.validation_curves),
           f"{protocol}: load_summary gives {len(summary.jobs)} job rows and {len(summary.validation_curves)} curves")
    expect(all(len(c) == e for c, e in zip(summary.validation_curves, summary.jobs["epochs"])),
           f"{protocol}: curve lengths differ from the epochs run")
    # summary_dataframe of the merged folder (no job files) gives what to_dataframe gives from the
    # job files of one run, column by column.
    from_files = to_dataframe(full)[SHARED].reset_index(drop=True)
    from_summary = summary_dataframe(merged)[SHARED].reset_index(drop=True)
    try:
        import pandas
        pandas.testing.assert_frame_equal(from_files, from_summary, check_dtype=True)
    except AssertionError as e:
        sys.exit(f"{protocol}: summary_dataframe differs from to_dataframe: {e}")
    expect(from_summary.winner.notna().all(), f"{protocol}: a job without a winner flag")
    # to_dataframe and epochs_dataframe read job files: on the merged folder they say so and name
    # summary_dataframe, rather than give an empty frame that reads as "no jobs".
    for reader in (to_dataframe, epochs_dataframe):
        try:
            reader(merged)
            sys.exit(f"{protocol}: {reader.__name__} of a folder without job files gave a frame")
        except ValueError as e:
            expect("summary_dataframe" in str(e) and "no job files" in str(e), f"{protocol}: {reader.__name__}: {e}")
    if protocol == "paper":
        expect(from_summary.paper_test_accuracy.notna().all(), "paper: no per-job paper figure")
    text = open(os.path.join(merged, "experiment.yaml")).read()
    expect("only_folds" not in text or "only_folds: []" in text, f"{protocol}: merged experiment.yaml keeps only_folds")
    report = subprocess.run([DIFFPOOL, "report", merged, "--csv", os.path.join(root, protocol, "r.csv")], env=ENV,
                            capture_output=True, text=True, timeout=120)
    expect(report.returncode == 0, f"{protocol}: report of the merged folder failed\n{report.stderr}")
    print(f"{protocol}: 2 shards merge into the summary of one run ({got['accuracy_mean']:.4f})")
    return full, a, b


def main():
    root = tempfile.mkdtemp(prefix="diffpool-merge-")
    check_protocol(root, "paper", ())
    check_protocol(root, "nested", ("--set", "evaluation.repeats=2"))
    full, a, b = check_protocol(root, "holdout", ())

    # Overlap: the same jobs twice (same build, same results) count once.
    p = merge([a, full, b], os.path.join(root, "overlap"))
    expect(p.returncode == 0, f"overlapping inputs: exit {p.returncode}\n{p.stderr}")
    expect(comparable(summary_content(os.path.join(root, "overlap"))) == comparable(summary_content(full)),
           "overlap: figures differ")

    # Missing folds: exit 3, the counts say so, the figure covers the folds there are.
    p = merge([a], os.path.join(root, "half"))
    expect(p.returncode == 3, f"half the folds: exit {p.returncode}, expected 3\n{p.stdout}{p.stderr}")
    with h5py.File(os.path.join(root, "half", "summary.h5"), "r") as f:
        expect(f.attrs["jobs_completed"] * 2 == f.attrs["jobs_total"], f"half: {dict(f.attrs)}")
        expect(sorted(f["winners/fold"][()].tolist()) == [0, 2], "half: winners of other folds")

    # Another experiment (other settings): refused, naming both.
    other = os.path.join(root, "other")
    run(other, extra=("--set", "training.epochs=2", "--set", "evaluation.only_folds=[1]"))
    p = merge([a, other], os.path.join(root, "mixed"))
    expect(p.returncode == 2 and "only runs of one experiment" in p.stderr and other in p.stderr,
           f"another experiment: exit {p.returncode}\n{p.stderr}")

    # The same job with other results (another build, say): refused, naming the job and both folders.
    conflict = os.path.join(root, "conflict")
    shutil.copytree(a, conflict)

    def change_a_result(f):
        acc = f["jobs/test_accuracy"][()]
        acc[0] = 1.0 - acc[0] if acc[0] != 0.5 else 0.25
        f["jobs/test_accuracy"][...] = acc
        return f["jobs/job_id"].asstr()[0]
    job = edit_summary(conflict, change_a_result)
    p = merge([a, conflict], os.path.join(root, "conflicted"))
    expect(p.returncode == 2 and job in p.stderr and "different results" in p.stderr and conflict in p.stderr,
           f"conflicting job: exit {p.returncode}\n{p.stderr}")

    # A summary written before job rows were stored: refused with the command that rebuilds it.
    old = os.path.join(root, "old")
    shutil.copytree(a, old)
    edit_summary(old, lambda f: f.__delitem__("jobs"))
    p = merge([old, b], os.path.join(root, "from-old"))
    expect(p.returncode == 2 and "--summary-only" in p.stderr, f"old summary: exit {p.returncode}\n{p.stderr}")

    # A damaged summary: bad input (exit 2), named with what is wrong.
    damaged = os.path.join(root, "damaged")
    shutil.copytree(a, damaged)
    with open(os.path.join(damaged, "summary.h5"), "r+b") as f:
        f.seek(2000)
        f.write(b"\xff" * 16)
    p = merge([damaged, b], os.path.join(root, "from-damaged"))
    expect(p.returncode == 2 and "damaged" in p.stderr and damaged in p.stderr,
           f"damaged summary: exit {p.returncode}\n{p.stderr}")

    # No summary at all.
    p = merge([os.path.join(root, "nowhere")], os.path.join(root, "x"))
    expect(p.returncode == 2 and "no summary.h5" in p.stderr, f"missing summary: exit {p.returncode}\n{p.stderr}")

    shutil.rmtree(root)
    print("merge: every case as documented")


if __name__ == "__main__":
    main()
