#!/usr/bin/env python3
"""Checks that every engine folder includes only the layers below it.

The allowed includes are the ```layers block of engine/README.md (one line per folder:
"folder -> folders it may include"), so the documented layering is the enforced one. Every
#include "engine/<folder>/..." in engine/<folder>/** must name the folder itself or one listed
after its arrow; engine/ includes nothing from runner/ or results/; every folder of engine/ has a
line. Prints each violation as file:line: and exits 1 when there is one.

    check_engine_layers.py [ENGINE_DIR]     (default: the engine/ beside tests/)
"""
import pathlib
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
SOURCES = {".hpp", ".cpp", ".h", ".cu", ".cuh"}


def read_layers(readme):
    """{folder: set of folders it may include} from the ```layers block of the README."""
    text = readme.read_text()
    block = re.search(r"^```layers\n(.*?)^```", text, re.S | re.M)
    if not block:
        sys.exit(f"{readme}: no ```layers block")
    layers = {}
    for number, line in enumerate(block.group(1).splitlines(), 1):
        if not line.strip():
            continue
        match = re.fullmatch(r"\s*(\w+)\s*->\s*([\w\s]*)", line)
        if not match:
            sys.exit(f"{readme}: layers line {number} is not 'folder -> folders...': {line!r}")
        folder, allowed = match.group(1), set(match.group(2).split())
        unknown = allowed - set(layers)
        if unknown:  # a layer may include only layers listed above it
            sys.exit(f"{readme}: layer {folder} names {sorted(unknown)} before their own line")
        layers[folder] = allowed | {folder}
    return layers


def main():
    engine = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parents[2] / "engine")
    layers = read_layers(engine / "README.md")
    problems = []
    for folder in sorted(p.name for p in engine.iterdir() if p.is_dir()):
        if folder not in layers:
            problems.append(f"{engine / folder}: folder without a line in the layers block of {engine / 'README.md'}")
    checked = 0
    for path in sorted(engine.rglob("*")):
        if path.suffix not in SOURCES or len(path.relative_to(engine).parts) < 2:
            continue
        folder = path.relative_to(engine).parts[0]
        allowed = layers.get(folder, {folder})
        for number, line in enumerate(path.read_text().splitlines(), 1):
            match = INCLUDE.match(line)
            if not match:
                continue
            checked += 1
            target = match.group(1).split("/")
            if target[0] in ("runner", "results"):
                problems.append(f"{path}:{number}: {folder}/ includes {match.group(1)}: the engine uses nothing of {target[0]}/")
            elif target[0] == "engine" and len(target) > 2 and target[1] not in allowed:
                problems.append(f"{path}:{number}: {folder}/ includes {match.group(1)}, a layer above it "
                                f"({folder} may include {', '.join(sorted(allowed))})")
    for problem in problems:
        print(problem)
    print(f"{checked} includes checked in {engine}, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
