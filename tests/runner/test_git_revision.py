"""The git revision recorded in job files is taken at every build (cmake/git_revision.cmake), not
at CMake's configure step: the script writes HEAD's revision, "-dirty" when tracked files differ
from it, "unknown" outside a git checkout, and leaves its output untouched (no recompilation)
when nothing changed. Runs the script on scratch repositories; then checks that `diffpool
--version` names a revision of this checkout's form.

  test_git_revision.py"""
import os
import re
import subprocess
import sys
import tempfile

from common import DIFFPOOL, ENV, SOURCE_DIR

SCRIPT = os.path.join(SOURCE_DIR, "cmake", "git_revision.cmake")
failures = []


def git(repo, *args):
    return subprocess.run(["git", "-C", repo, "-c", "user.name=t", "-c", "user.email=t@t", *args], check=True,
                          capture_output=True, text=True).stdout.strip()


def generate(repo, out):
    # The scratch folder must not be taken for part of a checkout above it.
    env = dict(os.environ, GIT_CEILING_DIRECTORIES=os.path.dirname(repo))
    subprocess.run(["cmake", f"-DSOURCE_DIR={repo}", f"-DOUT={out}", "-P", SCRIPT], check=True, capture_output=True,
                   env=env)
    with open(out) as f:
        text = f.read()
    m = re.search(r'build_git_revision\(\) \{ return "([^"]*)"; \}', text)
    return m.group(1) if m else f"<no revision in {text!r}>"


def expect(name, got, want):
    print(f"{name}: {got} ({'ok' if got == want else 'FAILED, expected ' + want})")
    if got != want:
        failures.append(f"{name}: {got}, expected {want}")


with tempfile.TemporaryDirectory(prefix="diffpool-git-revision-") as root:
    repo, out = os.path.join(root, "repo"), os.path.join(root, "git_revision.cpp")
    os.makedirs(repo)
    expect("not a git checkout", generate(repo, out), "unknown")
    git(repo, "init", "-q")
    with open(os.path.join(repo, "a.txt"), "w") as f:
        f.write("one\n")
    git(repo, "add", "a.txt")
    git(repo, "commit", "-q", "-m", "first")
    first = git(repo, "rev-parse", "--short=12", "HEAD")
    expect("clean checkout", generate(repo, out), first)
    before = os.stat(out).st_mtime_ns
    os.utime(out, ns=(before - 10**9, before - 10**9))  # older, so a rewrite would show
    before = os.stat(out).st_mtime_ns
    expect("again, nothing changed", generate(repo, out), first)
    if os.stat(out).st_mtime_ns != before:
        failures.append("the file was rewritten although the revision did not change (everything would recompile)")
    with open(os.path.join(repo, "untracked.txt"), "w") as f:
        f.write("x\n")
    expect("an untracked file", generate(repo, out), first)
    with open(os.path.join(repo, "a.txt"), "a") as f:
        f.write("two\n")
    expect("a tracked file changed", generate(repo, out), first + "-dirty")
    git(repo, "commit", "-q", "-am", "second")
    second = git(repo, "rev-parse", "--short=12", "HEAD")
    expect("after a commit, without configuring again", generate(repo, out), second)

version = subprocess.run([DIFFPOOL, "--version"], env=ENV, capture_output=True, text=True)
print(f"diffpool --version: {version.stdout.strip()}")
if version.returncode != 0 or not re.fullmatch(r"\S+ \(([0-9a-f]{12}(-dirty)?|unknown)\)", version.stdout.strip()):
    failures.append(f"diffpool --version printed {version.stdout!r} (exit {version.returncode})")

if failures:
    print("FAILED:\n" + "\n".join(failures))
    sys.exit(1)
print("git revision: ok")
