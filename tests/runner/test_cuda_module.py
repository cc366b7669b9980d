"""The CUDA backend module (libdiffpool_cuda.so, loaded on first use): a CPU run of `diffpool train`
maps no CUDA library (read from /proc/PID/maps while it runs), and `--backend cuda` with the
module missing or damaged exits 2 naming the file. In a build without CUDA only the first check
applies.

  test_cuda_module.py"""
import os
import subprocess
import sys
import tempfile
import time

from common import BINARY_DIR, DIFFPOOL, ENV

failures = []
cuda_build = os.path.exists(os.path.join(BINARY_DIR, "libdiffpool_cuda.so"))
train = [DIFFPOOL, "train", "--dataset", "ENZYMES", "--fold", "0", "--epochs", "50"]

# A CPU training run: sample its maps until it has read the dataset and trained a while.
p = subprocess.Popen(train + ["--backend", "cpu"], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                     text=True)
seen, samples = set(), 0
try:
    deadline = time.time() + 6
    while time.time() < deadline and p.poll() is None:
        try:
            with open(f"/proc/{p.pid}/maps") as maps:
                seen.update(line.split()[-1] for line in maps if "/" in line)
            samples += 1
        except OSError:
            break
        time.sleep(0.2)
finally:
    p.kill()
    p.wait()
cuda = sorted(path for path in seen if any(n in path for n in ("libcudart", "libcublas", "libcusparse",
                                                                "libdiffpool_cuda")))
print(f"cpu run: {samples} samples of /proc/PID/maps, {len(seen)} files mapped, CUDA libraries: {cuda or 'none'}")
if samples == 0:
    failures.append("the CPU run ended before its maps could be read")
if cuda:
    failures.append(f"a CPU run maps {cuda}")


def check(name, module, *words):
    env = dict(ENV, DIFFPOOL_CUDA_MODULE=module)
    q = subprocess.run(train[:-1] + ["1", "--backend", "cuda"], env=env, capture_output=True, text=True, timeout=300)
    text = q.stdout + q.stderr
    problems = [f"exit {q.returncode}, expected 2"] if q.returncode != 2 else []
    problems += [f"no {w!r} in the output" for w in words if w not in text]
    print(f"{name}: {'ok' if not problems else 'FAILED: ' + '; '.join(problems)}")
    if problems:
        failures.append(f"{name}: {'; '.join(problems)}\n{text}")


if cuda_build:
    with tempfile.TemporaryDirectory(prefix="diffpool-cuda-module-") as root:
        missing = os.path.join(root, "missing", "libdiffpool_cuda.so")
        check("module missing", missing, "backend 'cuda'", missing, "not found")
        damaged = os.path.join(root, "libdiffpool_cuda.so")
        with open(damaged, "w") as out:
            out.write("not a shared object\n")
        check("module damaged", damaged, "backend 'cuda'", damaged, "could not be loaded")
        # A real shared object without the entry point: the C++ runtime.
        libstdcxx = subprocess.run(["/usr/bin/python3", "-c", "import ctypes.util; print(ctypes.util.find_library('stdc++'))"],
                                   capture_output=True, text=True).stdout.strip()
        for folder in ("/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu"):
            if libstdcxx and os.path.exists(os.path.join(folder, libstdcxx)):
                path = os.path.join(folder, libstdcxx)
                check("not a diffpool module", path, path, "diffpool_cuda_module")
                break

if failures:
    sys.exit("\n".join(failures))
print("ok")
