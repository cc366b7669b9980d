"""The AVX2 copy of the CPU backend's loops (engine/backend/cpu/cpu_backend_avx2.cpp) must keep
its wider instructions to itself: every function of that object file that uses a VEX-encoded
instruction (AVX, AVX2) is in namespace diffpool::cpu_avx2, so no shared library code (an inline
function or template of a header, which the linker may take from either copy) can carry AVX2 into
code that runs on a CPU without it. And the copy does use AVX2 (the pragma took effect).
Usage: check_avx2_isolation.py OBJECT_FILES... (the engine library's objects; the AVX2 one is
picked by name)."""
import re
import subprocess
import sys

# CMake hands the object list as one ;-separated argument.
files = [o for arg in sys.argv[1:] for o in arg.split(";")]
objects = [o for o in files if o.endswith("cpu_backend_avx2.cpp.o")]
if len(objects) != 1:
    sys.exit(f"FAIL: expected one cpu_backend_avx2.cpp.o among {files}")
listing = subprocess.run(["objdump", "-d", "--no-show-raw-insn", "-C", objects[0]], capture_output=True, text=True,
                         check=True).stdout
function, vex = None, {}
for line in listing.splitlines():
    header = re.match(r"^[0-9a-f]+ <(.*)>:$", line)
    if header:
        function = header.group(1)
    elif function and re.search(r"\tv[a-z0-9]+\s", line):
        vex[function] = vex.get(function, 0) + 1
outside = sorted(f for f in vex if "diffpool::cpu_avx2::" not in f)
inside = [f for f in vex if "diffpool::cpu_avx2::" in f]
if outside:
    sys.exit("FAIL: functions outside diffpool::cpu_avx2 use VEX instructions (a header included after the "
             "target pragma?):\n  " + "\n  ".join(outside[:20]))
if not any("ymm" in line for line in listing.splitlines()) or not inside:
    sys.exit("FAIL: the AVX2 copy has no 256-bit instructions: the target pragma did not take effect")
print(f"ok: {len(inside)} functions of diffpool::cpu_avx2 use VEX instructions, none outside it")
