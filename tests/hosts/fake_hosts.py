"""Three fake hosts on this one machine, for tests of runs that cross a network: network
namespaces joined by veth pairs to a bridge, and mpirun across them through an rsh agent that
runs `ip netns exec HOST` (netns_agent.sh). Open MPI then talks TCP between separate network
stacks, and taking a host's link down cuts that host off as a pulled cable would.

    with FakeHosts(folder) as hosts:
        p = hosts.run([diffpool, "run", ...])       # rank r runs on hosts.names[r]
        hosts.cut(2) ... hosts.restore(2)          # the link of the third host down, up

Layout (every name carries this process's PID, so tests running side by side never meet):
    dph<pid>-sw          the switch: bridge br0 and the switch ends h1, h2, h3 of the veth pairs
    dph<pid>-h1 .. -h3   the hosts: lo, and eth0 with 10.77.0.1 .. 10.77.0.3/24
Nothing is added to the machine's own network namespace (no interface, address or route), so
traffic flows only between the fake hosts. mpirun runs on the first host, so its out-of-band
connections to the orted daemons cross the same network as the ranks' messages. The hosts share
the file system (the results folder, as on a cluster) and the host name, but each has its own
temporary folder (TMPDIR, set by the agent), so Open MPI's session folders stay apart.

Teardown kills every process inside the namespaces by PID (mpirun, orted, the ranks, the agent's
shells: all started by the test) and then deletes the namespaces. It runs when the `with` block
ends, also after an exception or SIGTERM/SIGHUP (turned into SystemExit here) and SIGINT. Should
the test be killed outright (SIGKILL, which is what ctest sends at a test's TIMEOUT), a janitor
does it: a process in its own session, started on entry, that waits on this process's pidfd.

Needs root, `ip` (iproute2) with netns, veth and bridge support, and mpirun; `missing()` says
what is lacking so that tests can skip.
"""
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
AGENT = os.path.join(HERE, "netns_agent.sh")
SUBNET = "10.77.0.0/24"
HOST_COUNT = 3
SKIP = 77  # the tests' exit code for "skipped" (SKIP_RETURN_CODE in tests/hosts.cmake)
# Run on a host with the other hosts' addresses: a TCP connection to a closed port on each,
# "refused" when the peer answered (the path works both ways), else the error.
REACH = """
import socket, sys
for address in sys.argv[1:]:
    s = socket.socket()
    s.settimeout(0.5)
    try:
        s.connect((address, 9))
        print(address, "open")
    except ConnectionRefusedError:
        print(address, "refused")
    except OSError as e:
        print(address, type(e).__name__)
"""


class Failure(Exception):
    """A setup step or a command in the namespaces failed; the message says which and why."""


def _ip(*args, check=True):
    p = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and p.returncode != 0:
        raise Failure(f"`ip {' '.join(args)}` failed ({p.returncode}): {p.stderr.strip()}")
    return p


def _namespaces(prefix):
    """Names of the existing network namespaces that belong to prefix."""
    p = _ip("netns", "list", check=False)
    names = [line.split()[0] for line in p.stdout.splitlines() if line.strip()]
    return [n for n in names if n.startswith(prefix + "-")]


def _pids(namespace):
    p = _ip("netns", "pids", namespace, check=False)
    return [int(pid) for pid in p.stdout.split() if pid.isdigit()]


def _command_of(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def kill_all(prefix, seconds=10.0):
    """SIGKILL to every process in the namespaces of prefix, until none is left (processes may
    still be forking while they are killed). Returns the PIDs that would not go."""
    deadline = time.monotonic() + seconds
    while True:
        pids = [pid for name in _namespaces(prefix) for pid in _pids(name) if pid != os.getpid()]
        if not pids or time.monotonic() > deadline:
            return pids
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)


def teardown(prefix):
    """Kills what runs in the namespaces of prefix and deletes them; safe to call twice."""
    left = kill_all(prefix)
    for name in _namespaces(prefix):
        _ip("netns", "delete", name, check=False)
    return left


def missing():
    """Why fake hosts cannot be made here (None when they can)."""
    if os.geteuid() != 0:
        return "not running as root (creating network namespaces needs CAP_SYS_ADMIN and CAP_NET_ADMIN)"
    if shutil.which("ip") is None:
        return "`ip` is missing (install iproute2: jobs/install-deps.sh --tests)"
    if shutil.which("mpirun") is None:
        return "mpirun is missing (install openmpi-bin: jobs/install-deps.sh)"
    # A namespace with a bridge and a veth pair, as FakeHosts makes them, then removed.
    probe = f"dph{os.getpid()}probe"
    try:
        _ip("netns", "add", f"{probe}-a")
        _ip("-n", f"{probe}-a", "link", "add", "br0", "type", "bridge")
        _ip("-n", f"{probe}-a", "link", "add", "v0", "type", "veth", "peer", "name", "v1")
    except Failure as e:
        return f"`ip netns` cannot make namespaces, bridges or veth pairs here: {e}"
    finally:
        teardown(probe)
    return None


def skip_unless_possible():
    reason = missing()
    if reason is None and not os.environ.get("DIFFPOOL_BINARY_DIR"):
        reason = "DIFFPOOL_BINARY_DIR is not set (run through ctest)"
    if reason:
        print(f"SKIP: multi-host tests not run: {reason}")
        sys.exit(SKIP)


def _janitor(parent, prefix):
    """Waits until process parent ends, then tears down what it left (see the module comment)."""
    try:
        fd = os.pidfd_open(parent)
        select.select([fd], [], [])
    except ProcessLookupError:
        pass
    teardown(prefix)


def _stop(signum, frame):
    sys.exit(f"stopped by signal {signum}")


class FakeHosts:
    def __init__(self, folder, slots=1):
        self.prefix = f"dph{os.getpid()}"
        self.switch = f"{self.prefix}-sw"
        self.names = [f"{self.prefix}-h{i + 1}" for i in range(HOST_COUNT)]
        self.addresses = [f"10.77.0.{i + 1}" for i in range(HOST_COUNT)]
        self.hostfile = os.path.join(folder, "hostfile")
        # Temporary folders of mpirun and of each host, for Open MPI's session folders (which the
        # fake hosts would otherwise share, under /tmp with the same host name, and race for).
        self.tmp = os.path.join(folder, "tmp")
        self.slots = slots
        self._janitor = None

    def __enter__(self):
        taken = _namespaces(self.prefix)
        if taken:  # not ours (a test with the same PID in another PID namespace): leave them alone
            raise Failure(f"network namespaces {taken} exist already; not touching them")
        for s in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, _stop)
        self._janitor = subprocess.Popen([sys.executable, os.path.abspath(__file__), "janitor", str(os.getpid()), self.prefix],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                         start_new_session=True)
        try:
            self._create()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _create(self):
        _ip("netns", "add", self.switch)
        _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.switch, "link", "set", "br0", "up")
        for i, (name, address) in enumerate(zip(self.names, self.addresses)):
            port = f"h{i + 1}"
            _ip("netns", "add", name)
            _ip("-n", name, "link", "set", "lo", "up")
            _ip("-n", self.switch, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", name)
            _ip("-n", self.switch, "link", "set", port, "master", "br0", "up")
            _ip("-n", name, "addr", "add", f"{address}/24", "dev", "eth0")
            _ip("-n", name, "link", "set", "eth0", "up")
        for name in ("mpirun", *self.names):
            os.makedirs(os.path.join(self.tmp, name), exist_ok=True)
        with open(self.hostfile, "w") as f:
            f.writelines(f"{name} slots={self.slots}\n" for name in self.names)
        self.wait_connected()

    def __exit__(self, *exc):
        left = teardown(self.prefix)
        if self._janitor is not None:
            self._janitor.kill()
            self._janitor.wait()
        if left:
            print(f"warning: processes that would not end in the fake hosts: {left}")
        return False

    def mpirun_command(self, args, ranks=None):
        """mpirun on the first host, one rank per host and slot, Open MPI over TCP on SUBNET only."""
        ranks = ranks or HOST_COUNT * self.slots
        return ["ip", "netns", "exec", self.names[0],
                "mpirun", "--allow-run-as-root", "--oversubscribe", "--bind-to", "none", "-np", str(ranks),
                "--hostfile", self.hostfile, "--mca", "plm_rsh_agent", AGENT,
                "--mca", "btl", "tcp,self", "--mca", "btl_tcp_if_include", SUBNET, "--mca", "oob_tcp_if_include", SUBNET,
                *args]

    def start(self, args, log, env=None):
        """Starts mpirun with args, its output going to the file log."""
        env = dict(env or os.environ, TMPDIR=os.path.join(self.tmp, "mpirun"), FAKE_HOSTS_TMP=self.tmp)
        with open(log, "w") as f:
            return subprocess.Popen(self.mpirun_command(args), env=env, stdin=subprocess.DEVNULL, stdout=f,
                                    stderr=subprocess.STDOUT)

    def run(self, args, log, env=None, timeout=300):
        """Runs mpirun with args to its end; a run still going after timeout seconds is killed
        (with everything else in the fake hosts) and raised as a Failure."""
        p = self.start(args, log, env)
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill_processes()
            p.wait()
            raise Failure(f"mpirun still running after {timeout} s: {' '.join(args)}\n{tail(log)}")
        return p.returncode, tail(log, 100000)

    def tcp_retries(self, host, count):
        """Sets net.ipv4.tcp_retries2 in host's namespace only: how many retransmissions TCP makes
        before it gives up on a peer that stopped answering (15 by default, about 15 minutes; 5,
        about 13 s)."""
        p = subprocess.run(["ip", "netns", "exec", self.names[host], "sysctl", "-q", "-w", f"net.ipv4.tcp_retries2={count}"],
                           capture_output=True, text=True)
        if p.returncode != 0:
            raise Failure(f"sysctl net.ipv4.tcp_retries2={count} in {self.names[host]} failed: {p.stderr.strip()}")

    def cut(self, host):
        """Takes the switch end of host's link down: its eth0 loses carrier, packets are dropped."""
        _ip("-n", self.switch, "link", "set", f"h{host + 1}", "down")

    def restore(self, host):
        """Brings host's link back and waits until every host reaches every other again. Just after
        the link comes up, connections towards the host that was cut off time out for about a
        second (its neighbour entries on the others are being resolved again), and Open MPI's
        daemons starting then give up ("unable to complete a TCP connection")."""
        _ip("-n", self.switch, "link", "set", f"h{host + 1}", "up")
        return self.wait_connected()

    def wait_connected(self, timeout=30.0):
        """Waits until every host reaches every other over TCP; returns the seconds it took."""
        started = time.monotonic()
        while True:
            failed = []
            for i, name in enumerate(self.names):
                others = [a for j, a in enumerate(self.addresses) if j != i]
                p = subprocess.run(["ip", "netns", "exec", name, sys.executable, "-c", REACH, *others],
                                   capture_output=True, text=True)
                answers = dict(line.split() for line in p.stdout.splitlines())
                failed += [f"{name} -> {a}: {answers.get(a, p.stderr.strip())}" for a in others
                           if answers.get(a) not in ("refused", "open")]
            if not failed:
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise Failure(f"the fake hosts do not reach each other after {timeout:.0f} s: {'; '.join(failed)}")
            time.sleep(0.2)

    def processes(self, host):
        """(pid, command line) of every process running on host."""
        return [(pid, _command_of(pid)) for pid in _pids(self.names[host])]

    def kill_processes(self):
        left = kill_all(self.prefix)
        if left:
            raise Failure(f"processes in the fake hosts would not end: {[(pid, _command_of(pid)) for pid in left]}")

    def port_bytes(self):
        """Bytes through each host's switch port so far (received plus sent), by host index."""
        p = _ip("-n", self.switch, "-j", "-s", "link", "show")
        stats = {link["ifname"]: link["stats64"] for link in json.loads(p.stdout)}
        return [stats[f"h{i + 1}"]["rx"]["bytes"] + stats[f"h{i + 1}"]["tx"]["bytes"] for i in range(HOST_COUNT)]


def tail(path, chars=4000):
    try:
        with open(path, errors="replace") as f:
            return f.read()[-chars:]
    except OSError:
        return ""


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "janitor":
    _janitor(int(sys.argv[2]), sys.argv[3])
