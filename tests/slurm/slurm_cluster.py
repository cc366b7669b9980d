"""A throw-away single-node Slurm cluster on this machine, for the job-script tests.

    with SlurmCluster() as cluster:
        job = cluster.sbatch([script, args...], env={...})
        cluster.wait(job, "COMPLETED")

Everything lives in a temporary folder: munge key, socket and log; slurm.conf; state, spool,
logs and PID files of slurmctld and slurmd. munged, slurmctld and slurmd run in the foreground as
children of this process and are stopped by their PIDs (jobs first, then slurmd with the slurmstepd
processes it started, slurmctld, munged) when the `with` block ends, also after a failure, and at
interpreter exit as a last resort. SIGTERM to the test tears the cluster down too; should the test
be killed outright (SIGKILL), the daemons get SIGTERM from the kernel (PR_SET_PDEATHSIG). Ports are chosen free, so a cluster of the machine (or another
test) on the default ports is not disturbed. Requires root (SlurmUser=root) and the Debian packages
slurmctld, slurmd, slurm-client and munge; `missing()` says what is lacking so tests can skip.

No cgroups: ProctrackType=proctrack/linuxproc, TaskPlugin=task/none, MpiDefault=pmix (Debian's
Open MPI works with `srun --mpi=pmix`, not with pmi2). The node declares more CPUs than the machine
has (SlurmdParameters=config_overrides), so several tasks and array tasks run side by side.
"""
import atexit
import ctypes
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

SKIP = 77  # the tests' exit code for "skipped" (SKIP_RETURN_CODE in tests/slurm.cmake)
SBIN = ("/usr/sbin", "/usr/bin", "/sbin", "/bin")


def _which(name):
    return shutil.which(name) or next((os.path.join(d, name) for d in SBIN if os.access(os.path.join(d, name), os.X_OK)), None)


def missing():
    """Why a cluster cannot be started here (None when it can)."""
    if os.geteuid() != 0:
        return "not running as root (the test cluster runs slurmctld/slurmd with SlurmUser=root)"
    lacking = [n for n in ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "scontrol", "squeue", "scancel", "srun")
               if _which(n) is None]
    if lacking:
        return f"missing {', '.join(lacking)} (install with jobs/install-deps.sh --tests: slurmctld slurmd slurm-client munge)"
    return None


def _free_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def _children(pid):
    """All descendants of pid (from /proc), deepest last."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
                parents.setdefault(int(stat[stat.rindex(")") + 2:].split()[1]), []).append(int(entry))
            except (OSError, ValueError):
                pass
    out, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _become_subreaper():
    """slurmd starts slurmstepd as a daemon (it leaves slurmd's tree); as a child subreaper this
    process becomes its parent instead of init, so teardown can find, stop and reap it."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def _reap(keep):
    """Reaps finished slurmstepd processes adopted by this process (no Popen object owns them)."""
    for pid in _children_of(os.getpid()):
        if pid in keep or _comm(pid) != "slurmstepd":
            continue
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


def _comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return None


def _children_of(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return [c for c in _children(pid) if _parent(c) == pid]


def _parent(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        return int(stat[stat.rindex(")") + 2:].split()[1])
    except (OSError, ValueError):
        return None


def _die_with_parent():
    """In a daemon before exec: SIGTERM when the test process dies, even by SIGKILL (a ctest timeout)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie child counts as gone
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class SlurmCluster:
    def __init__(self, cpus=8, keep=False, name="diffpooltest"):
        self.cpus = cpus
        self.keep = keep or os.environ.get("DIFFPOOL_KEEP_SLURM_DIR") == "1"
        self.name = name
        self.node = "dpnode"
        self.dir = None
        self.daemons = []  # (name, Popen), in start order
        self.env = None

    # ---- setup ------------------------------------------------------------------------------
    def __enter__(self):
        reason = missing()
        if reason:
            raise RuntimeError(reason)
        _become_subreaper()
        if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:  # SIGTERM (ctest, kill): tear down, then exit
            signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
        self.dir = tempfile.mkdtemp(prefix="diffpool-slurm-")
        atexit.register(self.stop)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def _start(self):
        t0 = time.time()
        os.chmod(self.dir, 0o755)  # munged wants its socket's folders searchable by all
        for d in ("munge", "state", "spool", "log", "tmp"):
            os.makedirs(self.path(d), mode=0o755 if d == "munge" else 0o700)
        os.makedirs(self.path("spool", self.node), mode=0o700)
        key = self.path("munge", "munge.key")
        subprocess.run([_which("mungekey"), "--create", "--keyfile", key], check=True, capture_output=True)
        os.chmod(key, 0o400)
        self.munge_socket = self.path("munge", "munge.socket")
        self._spawn("munged", [_which("munged"), "--foreground", "--socket", self.munge_socket, "--key-file", key,
                               "--pid-file", self.path("munge", "munged.pid"), "--log-file", self.path("log", "munged.log"),
                               "--seed-file", self.path("munge", "munged.seed"), "--num-threads", "2"])
        self._wait_for(lambda: os.path.exists(self.munge_socket), "munged socket", "munged")

        ctld_port, slurmd_port = _free_ports(2)
        self.conf = self.path("slurm.conf")
        with open(self.conf, "w") as f:
            f.write(self._conf(ctld_port, slurmd_port))
        # PMIx's per-step folders (spmix_appdir_<uid>_<job>.<step>) go to TmpFS, /tmp by default,
        # where another test cluster with the same job ids (or a killed run's leftovers) would collide.
        with open(self.path("mpi.conf"), "w") as f:
            f.write(f"PMIxCliTmpDirBase={self.path('tmp')}\n")
        self.env = dict(os.environ, SLURM_CONF=self.conf)
        for k in list(self.env):  # a test run inside a Slurm job must not leak that job into ours
            if k.startswith(("SLURM_", "SBATCH_", "SRUN_", "SALLOC_")) and k != "SLURM_CONF":
                del self.env[k]
        self._spawn("slurmctld", [_which("slurmctld"), "-D", "-i", "-f", self.conf])
        self._wait_for(lambda: self._ok(["scontrol", "ping"], "UP"), "slurmctld to answer", "slurmctld")
        self._spawn("slurmd", [_which("slurmd"), "-D", "-f", self.conf, "-N", self.node])
        self._wait_for(lambda: self._node_state() in ("IDLE", "MIXED", "ALLOCATED"), "the node to become idle", "slurmd")
        print(f"slurm cluster up in {time.time() - t0:.1f}s ({self.dir}, slurmctld port {ctld_port})", flush=True)

    def _conf(self, ctld_port, slurmd_port):
        d = self.path
        return f"""# single-node test cluster (tests/slurm/slurm_cluster.py)
ClusterName={self.name}
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.munge_socket},cred_expire=10
StateSaveLocation={d('state')}
SlurmdSpoolDir={d('spool', '%n')}
SlurmctldPidFile={d('slurmctld.pid')}
SlurmdPidFile={d('slurmd.pid')}
SlurmctldLogFile={d('log', 'slurmctld.log')}
SlurmdLogFile={d('log', 'slurmd.log')}
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=pmix
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
ReturnToService=2
TmpFS={d('tmp')}
FirstJobId={random.randint(1000, 900000)}
JobRequeue=0
KillWait=10
MinJobAge=600
SchedulerParameters=sched_interval=2
MessageTimeout=10
NodeName={self.node} NodeHostname={socket.gethostname()} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes={self.node} Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
"""

    def _spawn(self, name, argv):
        log = open(self.path("log", f"{name}.stdout"), "w")
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             env=self.env or os.environ, start_new_session=True, preexec_fn=_die_with_parent)
        log.close()
        self.daemons.append((name, p))

    def _wait_for(self, condition, what, daemon, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for name, p in self.daemons:
                if p.poll() is not None:
                    raise RuntimeError(f"{name} exited with {p.returncode} while waiting for {what}:\n{self.logs()}")
            if condition():
                return
            time.sleep(0.1)
        raise RuntimeError(f"timed out waiting for {what} ({daemon}):\n{self.logs()}")

    def _ok(self, argv, needle):
        p = subprocess.run(argv, env=self.env, capture_output=True, text=True)
        return p.returncode == 0 and needle in p.stdout

    def _node_state(self):
        p = subprocess.run(["scontrol", "-o", "show", "node", self.node], env=self.env, capture_output=True, text=True)
        return self.fields(p.stdout).get("State", "").split("+")[0] if p.returncode == 0 else None

    # ---- use --------------------------------------------------------------------------------
    def run(self, argv, check=True, **kw):
        p = subprocess.run(argv, env=kw.pop("env", self.env), capture_output=True, text=True, **kw)
        if check and p.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed ({p.returncode}):\n{p.stdout}{p.stderr}")
        return p

    def sbatch(self, argv, env=None, options=()):
        """Submits a batch script (argv[0]) with its arguments; returns the job id (array: the array's id)."""
        p = self.run(["sbatch", "--parsable", *options, *argv], env=dict(self.env, **(env or {})))
        return p.stdout.strip().split(";")[0]

    @staticmethod
    def fields(text):
        """`scontrol -o show ...` output as a dict (the first record)."""
        out = {}
        for item in text.split():
            if "=" in item:
                k, v = item.split("=", 1)
                out.setdefault(k, v)
        return out

    def jobs(self, job_id):
        """The records of a job (one per array task) from `scontrol -o show job`, [] once it is forgotten."""
        p = self.run(["scontrol", "-o", "show", "job", str(job_id)], check=False)
        if p.returncode != 0:
            return []
        return [self.fields(line) for line in p.stdout.splitlines() if line.strip()]

    def job(self, job_id):
        records = self.jobs(job_id)
        return records[0] if records else {}

    def state(self, job_id):
        return self.job(job_id).get("JobState")

    FINAL = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE", "PREEMPTED")

    def wait(self, job_id, timeout=600, poll=0.5):
        """Waits until every record of the job (all array tasks) is in a final state; returns the records."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            records = self.jobs(job_id)
            if records and all(r.get("JobState") in self.FINAL for r in records):
                return records
            if records and any(r.get("Reason") == "DependencyNeverSatisfied" for r in records):
                raise RuntimeError(f"job {job_id} will never run, its dependency failed: {records[0].get('Dependency')}")
            self.reap()
            time.sleep(poll)
        raise RuntimeError(f"job {job_id} did not finish in {timeout}s: {self.jobs(job_id)}\n{self.logs()}")

    def wait_until(self, condition, what, timeout=300, poll=0.2):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if condition():
                return
            self.reap()
            time.sleep(poll)
        raise RuntimeError(f"timed out waiting for {what}\n{self.logs()}")

    def reap(self):
        _reap({p.pid for _, p in self.daemons})

    def logs(self, tail=3000):
        out = []
        for name in sorted(os.listdir(self.path("log"))) if self.dir and os.path.isdir(self.path("log")) else []:
            with open(self.path("log", name), errors="replace") as f:
                text = f.read()
            if text.strip():
                out.append(f"--- {name} (last {tail} chars)\n{text[-tail:]}")
        return "\n".join(out)

    # ---- teardown ---------------------------------------------------------------------------
    def stop(self):
        if not self.daemons and not self.dir:
            return
        try:
            running = {name: p for name, p in self.daemons if p.poll() is None}
            if "slurmctld" in running:
                # Cancel what is left and give the steps a moment to end cleanly.
                subprocess.run(["scancel", "--full", "--signal=KILL", "--partition=debug"], env=self.env, capture_output=True)
                subprocess.run(["scancel", "--partition=debug"], env=self.env, capture_output=True)
                deadline = time.time() + 15
                while time.time() < deadline:
                    p = subprocess.run(["squeue", "-h", "-t", "RUNNING,COMPLETING,PENDING,CONFIGURING"], env=self.env,
                                       capture_output=True, text=True)
                    if p.returncode != 0 or not p.stdout.strip():
                        break
                    time.sleep(0.2)
            # slurmd first, with the slurmstepd (and job) processes it started, then slurmctld, munged.
            for name, p in reversed(self.daemons):
                if p.poll() is not None:
                    continue
                victims = _children(p.pid) if name == "slurmd" else []
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
                for pid in reversed(victims):
                    if _alive(pid):
                        try:
                            os.kill(pid, signal.SIGKILL)
                        except ProcessLookupError:
                            pass
            # slurmstepd processes (and their job processes) adopted by this subreaper.
            owned = {p.pid for _, p in self.daemons}
            for pid in _children_of(os.getpid()):
                if pid in owned or not _alive(pid):
                    continue
                if _comm(pid) == "slurmstepd":
                    for victim in [pid, *_children(pid)]:
                        try:
                            os.kill(victim, signal.SIGKILL)
                        except ProcessLookupError:
                            pass
            time.sleep(0.1)
            _reap(owned)
        finally:
            self.daemons = []
            if self.dir and not self.keep:
                shutil.rmtree(self.dir, ignore_errors=True)
            elif self.dir:
                print(f"slurm files kept in {self.dir}")
            self.dir = None
