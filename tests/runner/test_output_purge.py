"""The output folder deleted under a running experiment (a scratch file system's purge, or an `rm -r`
by hand), with 2 MPI ranks: the run puts the folder back (its folders, experiment.id,
experiment.yaml), says so once, and keeps the results of every job that finishes afterwards; no job
is counted as failed. The jobs whose files went with the folder are named at the end (exit 3), and
running the same command again runs just those, with the results of a run that lost nothing."""
import os
import shutil
import tempfile

from common import compare_dirs, expect, job_files, readable, read_rest, read_until, run, start

FOLDS = ["--set", "evaluation.only_folds=[0,1]", "--set", "training.epochs=60", "--set", "output.checkpoint_every=1",
         "--set", "output.progress=plain", "--set", "output.progress_seconds=1"]


def main():
    root = tempfile.mkdtemp(prefix="diffpool-purge-")
    try:
        reference = os.path.join(root, "reference")
        run(reference, ranks=2, extra=FOLDS)
        expect(len(job_files(reference)) == 4, "the reference run did not write its 4 job files")
        expected_id = open(os.path.join(reference, "experiment.id")).read()

        # 1. The folder goes away after the first job is done; the other jobs are still to finish.
        out = os.path.join(root, "out")
        proc = start(out, ranks=2, extra=FOLDS)
        seen = read_until(proc, " done in ", 300)
        expect(" done in " in seen, "no job finished", seen)
        shutil.rmtree(out, ignore_errors=True)  # races with the run's own writes, as a purge does
        rest = read_rest(proc, 300)
        text = seen + rest
        gone = 4 - len(job_files(out))
        expect("deleted while the experiment ran" in text and "recreated" in text, "the deletion is not said", text)
        expect(text.count("deleted while the experiment ran") <= 2, "the deletion is said more than once per rank", text)
        expect("FAILED" not in text and not os.listdir(os.path.join(out, "failed")),
               "a job was counted as failed because its folder was deleted", text)
        expect(text.count(" done in ") == 4, "not every job ran to its end", text)
        expect(gone >= 1, "the job file written before the deletion is still there", text)
        expect(proc.returncode == 3, f"a run that lost {gone} job files exited {proc.returncode}, not 3", text)
        expect(f"warning: {gone} job{'s' if gone > 1 else ''} this run completed" in text and "Run the same command again" in text,
               "the jobs whose files were deleted are not named", text)
        expect(open(os.path.join(out, "experiment.id")).read() == expected_id, "experiment.id was not put back", text)
        expect(os.path.exists(os.path.join(out, "experiment.yaml")), "experiment.yaml was not put back", text)
        expect(all(readable(os.path.join(out, "jobs", f)) for f in job_files(out)), "a job file is not readable", text)

        # 2. The same command again runs only the jobs that were lost, and ends as a run that lost nothing.
        p = run(out, ranks=2, extra=FOLDS, check=False)
        text = p.stdout + p.stderr
        expect(p.returncode == 0, f"the rerun exited {p.returncode}", text)
        expect(f"{4 - gone} already done" in text, f"the rerun did not keep the {4 - gone} job files written", text)
        expect(text.count(" done in ") == gone, f"the rerun ran other jobs than the {gone} lost", text)
        compare_dirs(reference, out, "after the rerun")
        print(f"ok: the folder was put back, {4 - gone} results kept, the {gone} lost named and run again")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
