"""Preemption under a real Slurm: a running job of jobs/slurm/sweep.sbatch (argument `srun`) or
jobs/slurm/sweep-mpirun.sbatch (`mpirun`) gets SIGUSR1 on its batch shell, as from
`#SBATCH --signal=B:USR1@120` before the time limit. The script forwards it to the ranks, they
checkpoint and exit with 75, the script requeues the job (`scontrol requeue`), Slurm runs it again
(Restarts=1) with the same arguments, it resumes from the checkpoints and ends with the results of
an undisturbed run."""
import os
import shutil
import sys
import tempfile
import time

from slurm_common import JOB_ENV, JOBS, common, expect, job_logs, read
from slurm_cluster import SlurmCluster

script = {"srun": "sweep.sbatch", "mpirun": "sweep-mpirun.sbatch"}[sys.argv[1] if len(sys.argv) > 1 else "srun"]
# Longer jobs, so that the signal lands in the middle of them; checkpoints only at the signal.
extra = ["--set", "training.epochs=300", "--set", "output.checkpoint_every=0"]
root = tempfile.mkdtemp(prefix="diffpool-slurm-preempt-")
try:
    t0 = time.time()
    reference = os.path.join(root, "reference")
    common.run(reference, None, extra)
    print(f"undisturbed reference run: {time.time() - t0:.1f}s", flush=True)
    with SlurmCluster() as cluster:
        out = os.path.join(root, "preempted")
        log = os.path.join(root, "job.out")
        job = cluster.sbatch([os.path.join(JOBS, script), common.TINY, *extra], env=dict(JOB_ENV, DIFFPOOL_OUTPUT=out),
                             options=["--ntasks=2", "--time=10:00", f"--output={log}"])

        def training():
            logs = os.path.join(out, "logs")
            return os.path.isdir(logs) and any(read(os.path.join(logs, f)).count("epoch ") >= 3 for f in os.listdir(logs))

        cluster.wait_until(lambda: training() or cluster.state(job) in cluster.FINAL, "the job to train", timeout=120, poll=0.05)
        expect(cluster.state(job) == "RUNNING", f"job {job} was not running when it should be signalled: {cluster.state(job)}",
               ("job log", read(log)))
        sent = time.time()
        cluster.run(["scancel", "--signal=USR1", "--batch", job])
        cluster.wait_until(lambda: cluster.job(job).get("Restarts", "0") != "0" or cluster.state(job) in cluster.FINAL,
                           "the job to be requeued", timeout=120)
        requeued = time.time()
        record = cluster.job(job)
        expect(record.get("Restarts", "0") != "0", f"job {job} ended {record.get('JobState')} without a requeue",
               ("job log", read(log)))
        print(f"requeued {requeued - sent:.1f}s after SIGUSR1: {record.get('JobState')} ({record.get('Reason')}), "
              f"Restarts={record.get('Restarts')}", flush=True)
        checkpoints = [f for f in os.listdir(os.path.join(out, "checkpoints")) if f.endswith(".h5")]
        cluster.wait_until(lambda: "restart 1:" in read(log), "the requeued job to start", timeout=120)
        restarted = time.time()
        records = cluster.wait(job, timeout=300)
        done = time.time()
        text = read(log)
        expect(records[0]["JobState"] == "COMPLETED" and records[0]["ExitCode"] == "0:0" and records[0]["Restarts"] == "1",
               f"job {job}: {records[0]['JobState']} {records[0]['ExitCode']} Restarts={records[0]['Restarts']}",
               ("job log", text), ("slurm", cluster.logs()))
        for needle in ("received SIGUSR1", "step exited with 75", f"requeueing job {job}", "restart 0:", "restart 1:",
                       "step exited with 0"):
            expect(needle in text, f"the job log lacks '{needle}'", ("job log", text))
        expect(text.index("step exited with 75") < text.index("restart 1:") < text.rindex("step exited with 0"),
               "log out of order", ("job log", text))
        expect(bool(checkpoints), "no checkpoint was written at the signal", ("job log", text))
        expect("resumed from the checkpoint" in job_logs(out), "the requeued run did not continue from a checkpoint",
               ("job log", text))
        leftover = [f for f in os.listdir(os.path.join(out, "checkpoints")) if f.endswith(".h5")]
        expect(not leftover, f"checkpoints left after the run finished: {leftover}")
        common.compare_dirs(reference, out, "after preemption and requeue")
        print(f"ok: {script}: {len(checkpoints)} checkpoint(s) at the signal, requeued after {requeued - sent:.1f}s, "
              f"restarted after {restarted - sent:.1f}s, finished after {done - sent:.1f}s; results identical")
finally:
    shutil.rmtree(root, ignore_errors=True)
