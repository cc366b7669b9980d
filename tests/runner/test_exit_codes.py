"""Bad input never exits 1 (internal error): every case of the table below must exit 2 with a
message that says what is wrong, as the README's exit-code table promises, and no message may end
at a NUL byte or show a raw control character (they are printed as \\xNN).

  test_exit_codes.py"""
import os
import shutil
import subprocess
import sys
import tempfile

from common import DIFFPOOL, ENV, TINY

root = tempfile.mkdtemp(prefix="diffpool-exit-")
failures = []


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as out:
        out.write(text)
    return path


def single_class_dataset(data_dir):
    """ONE: 12 four-node rings, every graph of class 1 (graph classification needs two classes)."""
    edges, indicator = [], []
    for g in range(12):
        first = 4 * g + 1
        indicator += [g + 1] * 4
        for i in range(4):
            a, b = first + i, first + (i + 1) % 4
            edges += [f"{a}, {b}", f"{b}, {a}"]
    write(os.path.join(data_dir, "ONE", "ONE_A.txt"), "\n".join(edges) + "\n")
    write(os.path.join(data_dir, "ONE", "ONE_graph_indicator.txt"), "\n".join(map(str, indicator)) + "\n")
    write(os.path.join(data_dir, "ONE", "ONE_graph_labels.txt"), "1\n" * 12)


def check(name, args, code, *words):
    p = subprocess.run([DIFFPOOL, *args], env=ENV, capture_output=True, timeout=300)
    text = (p.stdout + p.stderr).decode("utf-8", "replace")
    problems = []
    if p.returncode != code:
        problems.append(f"exit {p.returncode}, expected {code}")
    for word in words:
        if word not in text:
            problems.append(f"no {word!r} in the output")
    if code != 0:
        raw = [c for c in p.stderr.decode("latin-1") if (ord(c) < 0x20 and c not in "\n\t") or ord(c) == 0x7F]
        if raw:
            problems.append(f"raw unprintable characters in the message: {raw!r}")
    status = "ok" if not problems else "FAILED: " + "; ".join(problems)
    print(f"{name}: {status}")
    if problems:
        failures.append(f"{name} ({' '.join(args)}): {'; '.join(problems)}\n{text}")


try:
    not_a_folder = write(os.path.join(root, "a-file"), "x\n")
    empty = os.path.join(root, "empty")
    os.makedirs(empty)
    data_dir = os.path.join(root, "data")
    single_class_dataset(data_dir)
    nul_key = write(os.path.join(root, "nul-key.yaml"), 'name: x\ndataset:\n  name: MUTAG\n"mo\\0del": 3\n')
    control_file = write(os.path.join(root, "control.yaml"), 'name: x\ndataset:\n  name: MUTAG\n"tr\\x07ining": 3\n')
    out = os.path.join(root, "out")

    # The command-line parser's own errors (CLI11's codes 104-109 and others) are bad input.
    check("unknown subcommand", ["frobnicate"], 2, "subcommand")
    check("no subcommand", [], 2, "subcommand")
    check("missing argument", ["run"], 2, "config")
    check("missing file", ["plan", os.path.join(root, "missing.yaml")], 2, "missing.yaml")
    check("unknown flag", ["plan", TINY, "--bogus"], 2, "--bogus")
    check("not a number", ["train", "--fold", "abc"], 2, "abc")
    check("flag without value", ["train", "--epochs="], 2, "--epochs")
    check("version", ["--version"], 0)
    check("help", ["--help"], 0, "run")

    # An output folder that cannot be created.
    for label, folder in [("output below a file", os.path.join(not_a_folder, "x")),
                          ("output in /proc", "/proc/diffpool-exit-test"),
                          ("output name of 300 characters", os.path.join(root, "a" * 300))]:
        check(label, ["run", TINY, "--set", f"output.dir={folder}"], 2, "output.dir", "cannot create")

    # Inputs that are not results or not a dataset.
    check("report on an empty folder", ["report", empty], 2, empty, "neither summary.h5 nor job files")
    check("report on a file", ["report", not_a_folder], 2, "not a folder")

    # A paired comparison needs the same splits: refused (naming the setting and both values) for
    # another split seed; on the same splits (another variant) it prints the paired t-test.
    pair_a, pair_b, pair_seed = (os.path.join(root, name) for name in ("pair-a", "pair-b", "pair-seed"))
    for folder, extra in [(pair_a, []), (pair_b, ["--set", "model.variant=graphsage"]),
                          (pair_seed, ["--set", "evaluation.split_seed=9"])]:
        p = subprocess.run([DIFFPOOL, "run", TINY, "--set", f"output.dir={folder}", "--set", "training.epochs=1", *extra],
                           env=ENV, capture_output=True, timeout=600)
        if p.returncode != 0:
            failures.append(f"run into {folder} exited {p.returncode}\n{(p.stdout + p.stderr).decode('utf-8', 'replace')}")
    check("report --compare, same splits", ["report", pair_a, "--compare", pair_b], 0, "paired t-test", "95% CI")
    check("report --compare, another split seed", ["report", pair_seed, "--compare", pair_b], 2,
          "not evaluated on the same splits", "evaluation.split_seed 9 vs 0")
    check("single class (run)", ["run", TINY, "--set", f"output.dir={out}", "--set", f"dataset.data_dir={data_dir}",
                                 "--set", "dataset.name=ONE"], 2, "ONE_graph_labels.txt", "2 classes")
    check("single class (train)", ["train", "--data-dir", data_dir, "--dataset", "ONE", "--epochs", "1"], 2,
          "ONE_graph_labels.txt", "2 classes")

    # NUL and control characters in what a message quotes.
    check("NUL in a key", ["validate", nul_key], 2, "mo\\x00del", "nul-key.yaml:4")
    check("BEL in a key", ["validate", control_file], 2, "tr\\x07ining")
    check("control character in --set", ["validate", TINY, "--set", "mo\x01del.hidden_dim=3"], 2, "mo\\x01del")
    check("escape in an output path", ["run", TINY, "--set", f"output.dir={not_a_folder}/\x1b[31mred"], 2,
          "\\x1b[31mred")
finally:
    shutil.rmtree(root, ignore_errors=True)

if failures:
    sys.exit("\n\n".join(failures))
print("every bad input exits 2 with a printable message")
