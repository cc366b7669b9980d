"""The study figure: our accuracy per dataset and variant beside the paper's Table 1 and Errica et al.

    python3 -m diffpool_results.study FOLDER --out FILE.png [--configs DIR]

FOLDER holds one folder per experiment, each with the files a run leaves for publication
(results/published/<experiment>/, docs/RESULTS.md): summary.csv (the row `final` gives our figure,
mean +- std over the outer folds), report.csv (jobs completed / total) and experiment.yaml (the
experiment as run). A run is drawn as

  - full or reduced: reduced when it finished fewer jobs than it planned, ran only some folds
    (evaluation.only_folds), or, against the ready experiment of the same name in --configs
    (default: the repository's configs/), ran fewer epochs, folds, repeats or sweep values, or
    dropped graphs (dataset.max_nodes); reduced runs are hollow markers and say why in their label;
  - with the paper's cluster rule or with per-graph cluster counts (model.cluster_rule: per_graph,
    square markers, "per-graph clusters" under the name).

Bad input (a folder without experiments, a summary.csv without its final row or with a value that
is not a number) is an error naming the file, line and column, the key and the value: exit 2.
"""
import argparse
import math
import os
import sys
import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from . import published  # noqa: E402
from .io import AttrDict  # noqa: E402

DPI = 100
FIGURE_INCHES = (12, 6.5)
FIGURE_PIXELS = (int(FIGURE_INCHES[0] * DPI), int(FIGURE_INCHES[1] * DPI))
DEFAULT_CONFIGS = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "configs"))

# The series of the figure: key, legend label, colour, x offset within a model's slot.
SERIES = {
    "ours_paper": ("ours, paper protocol\n(optimistic), mean +- std", "tab:blue", -0.3),
    "ours_fair": ("ours, holdout or nested\nprotocol, mean +- std", "tab:cyan", -0.1),
    "ying": (published.YING_SOURCE + "\n(the paper's protocol, no std)", "tab:purple", 0.1),
    "errica": (published.ERRICA_SOURCE + "\n(nested CV), mean +- std", "tab:brown", 0.3),
}


class StudyError(ValueError):
    """Bad input to the study figure; the message names the file:line:column, key and value."""


# ---------------------------------------------------------------------------------------------
# Reading the published files.

def _split_csv_line(line):
    """Fields of one RFC 4180 line with the 1-based column where each starts."""
    fields, field, start, quoted, i = [], "", 1, False, 0
    while i < len(line):
        c = line[i]
        if quoted:
            if c == '"' and i + 1 < len(line) and line[i + 1] == '"':
                field += '"'
                i += 1
            elif c == '"':
                quoted = False
            else:
                field += c
        elif c == '"':
            quoted = True
        elif c == ",":
            fields.append((field, start))
            field, start = "", i + 2
        else:
            field += c
        i += 1
    fields.append((field, start))
    return fields


def read_csv(path):
    """Rows of a CSV file with a header, each a dict key -> (value, line, column)."""
    with open(path, encoding="utf-8") as stream:
        lines = stream.read().splitlines()
    if not lines:
        raise StudyError(f"{path}:1:1: empty file, expected a header line")
    header = [name for name, _ in _split_csv_line(lines[0])]
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = _split_csv_line(line)
        if len(fields) != len(header):
            raise StudyError(f"{path}:{number}:1: {len(fields)} fields, the header has {len(header)}")
        rows.append({name: (value, number, column) for name, (value, column) in zip(header, fields)})
    return rows


def _field(path, row, key, header_line=1):
    if key not in row:
        raise StudyError(f"{path}:{header_line}:1: no column '{key}'")
    return row[key]


def _number(path, row, key):
    value, line, column = _field(path, row, key)
    try:
        number = float(value)
    except ValueError:
        raise StudyError(f"{path}:{line}:{column}: {key}: '{value}' is not a number") from None
    if not math.isfinite(number):
        raise StudyError(f"{path}:{line}:{column}: {key}: '{value}' is not a finite number")
    return number


def read_experiment_yaml(path):
    """The experiment file as run (written by the runner: sections of `key: value` lines, two spaces
    per level) as a flat dict "section.key" -> value text; lists stay text ("[0.001, 0.0001]").
    Comments and blank lines are skipped."""
    values, stack = {}, []
    with open(path, encoding="utf-8") as stream:
        for line in stream:
            text = line.split(" #")[0].rstrip() if not line.lstrip().startswith("#") else ""
            if not text.strip() or text.strip().startswith("- "):
                continue
            depth = (len(text) - len(text.lstrip(" "))) // 2
            key, _, value = text.strip().partition(":")
            stack = stack[:depth] + [key.strip()]
            if value.strip():
                values[".".join(stack)] = value.strip()
    return values


def _list_length(text):
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        inner = text[1:-1].strip()
        return len(inner.split(",")) if inner else 0
    return 1


def _ready_config(configs, name):
    """The ready experiment file of that name under configs/ (its `name:` key), or None."""
    if not configs or not os.path.isdir(configs):
        return None
    for root, _, files in sorted(os.walk(configs)):
        for file in sorted(files):
            if file.endswith(".yaml"):
                path = os.path.join(root, file)
                if read_experiment_yaml(path).get("name") == name:
                    return path
    return None


def reductions(run, ready):
    """Why a run is smaller than the ready experiment it came from (empty: a full run). run and
    ready are read_experiment_yaml dicts; ready may be None (then only what the run says itself)."""
    why = []
    if run.get("evaluation.only_folds", "[]").strip() not in ("[]", ""):
        why.append(f"only folds {run['evaluation.only_folds']}")
    if ready is None:
        return why

    def integer(values, key, default):
        try:
            return int(float(values.get(key, default)))
        except ValueError:
            return int(default)

    for key, default, what in (("training.epochs", "1000", "epochs"), ("evaluation.folds", "10", "folds"),
                               ("evaluation.repeats", "1", "repeats")):
        ours, theirs = integer(run, key, default), integer(ready, key, default)
        if ours < theirs:
            why.append(f"{ours} of {theirs} {what}")
    if integer(run, "dataset.max_nodes", "0") > 0 and integer(ready, "dataset.max_nodes", "0") == 0:
        why.append(f"graphs above {run['dataset.max_nodes']} nodes dropped")
    for key, value in ready.items():
        if key.startswith("sweep.parameters.") and _list_length(run.get(key, "[]")) < _list_length(value):
            why.append(f"{_list_length(run.get(key, '[]'))} of {_list_length(value)} values of {key[17:]}")
    return why


def load_study(folder, configs=DEFAULT_CONFIGS):
    """One row per experiment folder under `folder` that has a summary.csv: experiment, dataset,
    variant, protocol, optimistic, mean and std (%), jobs_completed, jobs_total (-1: unknown),
    per_graph, reduced (list of reasons, empty for a full run), ying (% or None), errica ((mean,
    std) or None), in the order of the figure (dataset, variant, cluster rule, full before reduced,
    protocol)."""
    if not os.path.isdir(folder):
        raise StudyError(f"{folder} (argument FOLDER): not a folder")
    rows = []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        summary = os.path.join(path, "summary.csv")
        if not os.path.isfile(summary):
            continue
        final = [r for r in read_csv(summary) if r.get("row", ("",))[0] == "final"]
        if not final:
            raise StudyError(f"{summary}:1:1: row: no row 'final' (the experiment's figure)")
        r = final[0]
        row = AttrDict(experiment=_field(summary, r, "experiment")[0], folder=path,
                       dataset=published.canonical_dataset(_field(summary, r, "dataset")[0]),
                       variant=published.canonical_variant(_field(summary, r, "variant")[0]),
                       protocol=_field(summary, r, "protocol")[0],
                       optimistic=_field(summary, r, "optimistic")[0] == "yes",
                       mean=_number(summary, r, "accuracy_mean_pct"), std=_number(summary, r, "accuracy_std_pct"),
                       jobs_completed=-1, jobs_total=-1)
        report = os.path.join(path, "report.csv")
        if os.path.isfile(report):
            for rr in read_csv(report):
                if _field(report, rr, "experiment")[0] == row.experiment:
                    row.jobs_completed = int(_number(report, rr, "jobs_completed"))
                    row.jobs_total = int(_number(report, rr, "jobs_total"))
        yaml_path = os.path.join(path, "experiment.yaml")
        run = read_experiment_yaml(yaml_path) if os.path.isfile(yaml_path) else {}
        row.per_graph = run.get("model.cluster_rule") == "per_graph"
        ready = _ready_config(configs, row.experiment)
        row.reduced = reductions(run, read_experiment_yaml(ready) if ready else None)
        if 0 <= row.jobs_completed < row.jobs_total:
            row.reduced.insert(0, f"{row.jobs_completed} of {row.jobs_total} jobs")
        row.ying = published.ying_2018(row.dataset, row.variant)
        row.errica = published.errica_2020(row.dataset, row.variant)
        rows.append(row)
    if not rows:
        raise StudyError(f"{folder} (argument FOLDER): no experiment folder with a summary.csv in it")
    return sorted(rows, key=_order)


def _order(row):
    def index(order, name):
        return order.index(name) if name in order else len(order)

    return (index(published.DATASET_ORDER, row.dataset), row.dataset, index(published.VARIANT_ORDER, row.variant),
            row.variant, row.per_graph, bool(row.reduced), row.protocol != "paper", row.experiment)


# ---------------------------------------------------------------------------------------------
# The figure.

def _model_key(row):
    return (row.dataset, row.variant, row.per_graph, bool(row.reduced))


def study_slots(rows):
    """The rows (in load_study's order) grouped by model: dataset, variant, cluster rule, full or
    reduced. Each group is one slot of the x axis."""
    slots = []
    for row in rows:
        if slots and _model_key(slots[-1][0]) == _model_key(row):
            slots[-1].append(row)
        else:
            slots.append([row])
    return slots


def study_marks(slots):
    """What the figure draws, one dict per marker: series (a SERIES key), x (slot + the series'
    offset), y and err (%), marker ("o", "s" for per-graph runs, "_" Table 1, "D" Errica et al.),
    filled (False: a reduced run)."""
    marks = []
    for x, slot in enumerate(slots):
        first = slot[0]
        for row in slot:
            series = "ours_paper" if row.protocol == "paper" else "ours_fair"
            marks.append(dict(series=series, x=x + SERIES[series][2], y=row.mean, err=row.std,
                              marker="s" if row.per_graph else "o", filled=not row.reduced))
        if first.ying is not None:
            marks.append(dict(series="ying", x=x + SERIES["ying"][2], y=first.ying, err=0.0, marker="_", filled=True))
        if first.errica is not None:
            marks.append(dict(series="errica", x=x + SERIES["errica"][2], y=first.errica[0], err=first.errica[1],
                              marker="D", filled=True))
    return marks


LABEL_GAP = 1.8  # % of accuracy between two values written above neighbouring marks


def label_heights(marks):
    """Where each mark's value is written (% of accuracy): above its error bar, raised where it
    would overlap the value of a mark drawn before it less than 0.25 slots to the side."""
    placed = []
    heights = []
    for mark in marks:
        y = mark["y"] + mark["err"]
        for x, other in sorted(placed, key=lambda p: p[1]):
            if abs(x - mark["x"]) < 0.25 and abs(y - other) < LABEL_GAP:
                y = other + LABEL_GAP
        placed.append((mark["x"], y))
        heights.append(y)
    return heights


def _draw_mark(ax, mark, label_y):
    colour = SERIES[mark["series"]][1]
    thin = mark["marker"] == "_"
    ax.errorbar([mark["x"]], [mark["y"]], yerr=[mark["err"]], fmt="none", ecolor=colour, elinewidth=1.3, capsize=4,
                zorder=2)
    ax.plot(mark["x"], mark["y"], linestyle="none", marker=mark["marker"], markersize=16 if thin else 8,
            markeredgewidth=2.5 if thin else 1.2, color=colour, markeredgecolor=colour,
            markerfacecolor=colour if mark["filled"] else "white", zorder=3, gid=mark["series"])
    # The value above its error bar, where no other series is drawn.
    value = f"{mark['y']:.1f}" if mark["series"] == "errica" else f"{mark['y']:.2f}"
    ax.annotate(value, (mark["x"], label_y), xytext=(0, 7 if mark["err"] > 0 else 9),
                textcoords="offset points", ha="center", va="bottom", fontsize=7, color=colour)


def _tick_label(slot, width):
    """Variant, cluster rule and what was reduced, each line wrapped to `width` characters."""
    first = slot[0]
    lines = [published.VARIANT_NAMES.get(first.variant, first.variant)]
    if first.per_graph:
        lines.append("per-graph clusters")
    if first.reduced:
        lines.append("reduced:")
        lines += sorted({why for row in slot for why in row.reduced})
    return "\n".join(textwrap.fill(line, width) for line in lines)


def _name_datasets(ax, slots):
    """A vertical line between datasets, each dataset's name above its slots."""
    top = ax.get_ylim()[1]
    x = 0
    while x < len(slots):
        end = x
        while end + 1 < len(slots) and slots[end + 1][0].dataset == slots[x][0].dataset:
            end += 1
        ax.text((x + end) / 2, top, slots[x][0].dataset, ha="center", va="bottom", fontsize=10, fontweight="bold")
        if end + 1 < len(slots):
            ax.axvline(end + 0.5, color="grey", linewidth=0.8)
        x = end + 1


def _legend(ax, series_drawn):
    """Outside the axes, on the right: the series drawn, and what squares and hollow markers mean."""
    symbols = {"ours_paper": "o", "ours_fair": "o", "ying": "_", "errica": "D"}
    handles = [plt.Line2D([], [], linestyle="none", marker=symbols[key], markersize=12 if key == "ying" else 7,
                          markeredgewidth=2.5 if key == "ying" else 1.2, color=colour, label=label)
               for key, (label, colour, _) in SERIES.items() if key in series_drawn]
    handles.append(plt.Line2D([], [], linestyle="none", marker="s", markersize=7, color="grey",
                              label="square: per-graph cluster counts\n(the paper's rule: circle)"))
    handles.append(plt.Line2D([], [], linestyle="none", marker="o", markersize=7, color="grey",
                              markerfacecolor="white", label="hollow: reduced run\n(the label says how)"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize=8,
              labelspacing=1.0)


def study_figure(rows):
    """Per model (study_slots) one slot on the x axis: ours as mean +- std (gid "ours_paper" or
    "ours_fair", one marker per run), the paper's Table 1 figure (gid "ying") and Errica et al.'s
    mean +- std (gid "errica") where they exist (study_marks); datasets separated by vertical lines
    and named above their slots; the legend outside the axes."""
    slots = study_slots(rows)
    marks = study_marks(slots)
    fig = plt.figure(figsize=FIGURE_INCHES, dpi=DPI)
    ax = fig.add_subplot(1, 1, 1)
    for mark, label_y in zip(marks, label_heights(marks)):
        _draw_mark(ax, mark, label_y)
    # Axis: the data with room for the error bars and the values written above them.
    low = min(m["y"] - m["err"] for m in marks)
    high = max(m["y"] + m["err"] for m in marks)
    pad = max(3.0, 0.08 * (high - low))
    ax.set_ylim(max(0.0, math.floor((low - pad) / 5) * 5), min(100.0, math.ceil((high + pad) / 5) * 5))
    ax.set_xlim(-0.6, len(slots) - 0.4)
    ax.set_ylabel("accuracy (%), mean +- std over the outer folds")
    ax.grid(axis="y", alpha=0.3)
    # Tick labels wrapped to the width of a slot (about 6 pixels per character at size 8), less two
    # characters so that neighbouring labels keep a gap (names break at their hyphens).
    width = max(8, int(FIGURE_PIXELS[0] * (0.76 - 0.07) / len(slots) / 6) - 2)
    labels = [_tick_label(slot, width) for slot in slots]
    ax.set_xticks(range(len(slots)))
    ax.set_xticklabels(labels, fontsize=8)
    _name_datasets(ax, slots)
    _legend(ax, {m["series"] for m in marks})
    ax.set_title(f"DiffPool and GraphSAGE: our runs ({len(rows)}) beside the published accuracies", fontsize=11,
                 pad=22)
    lines = max(label.count("\n") + 1 for label in labels)
    fig.subplots_adjust(left=0.07, right=0.76, top=0.88, bottom=0.06 + 0.03 * lines)
    return fig


def plot_study(folder, out, configs=DEFAULT_CONFIGS):
    """Writes the study figure of the experiments under `folder` to `out` (PNG); returns the rows."""
    rows = load_study(folder, configs)
    fig = study_figure(rows)
    directory = os.path.dirname(os.path.abspath(out))
    os.makedirs(directory, exist_ok=True)
    fig.savefig(out, dpi=DPI)
    plt.close(fig)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python3 -m diffpool_results.study",
        description="Draw our accuracy per dataset and variant beside Ying et al. 2018 (Table 1) and Errica et al. "
                    "2020, from the published experiment folders (summary.csv, report.csv, experiment.yaml).")
    parser.add_argument("folder", help="folder of experiment folders, e.g. results/published")
    parser.add_argument("--out", required=True, help="the PNG file to write (its folder is created)")
    parser.add_argument("--configs", default=DEFAULT_CONFIGS,
                        help="ready experiments a run is compared with to call it reduced (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        rows = plot_study(args.folder, args.out, args.configs)
    except (StudyError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for row in rows:
        state = "reduced (" + ", ".join(row.reduced) + ")" if row.reduced else "full"
        print(f"{row.dataset} {row.variant}{' per-graph' if row.per_graph else ''} {row.protocol}: "
              f"{row.mean:.2f} +- {row.std:.2f}, {state}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
