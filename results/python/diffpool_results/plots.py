"""Plots of diffpool results (matplotlib, Agg backend, PNG files of fixed pixel sizes).

    python3 -m diffpool_results.plots FOLDER --out DIR [--graph N] [--job ID]

FOLDER is an experiment output folder (summary.h5, jobs/*.h5) or a single job file. Written files
(sizes in pixels, width x height, see FIGURE_PIXELS):

    curves_fold<f>.png                     learning curves of fold f: total, classification, link
                                           and entropy loss, accuracy (train / validation / test),
                                           gradient norm; best epoch and reported test accuracy
                                           marked                                      1200 x 800
    assignment_graph<g>_level<l>.png       the assignment matrix S of graph g at level l (heat map)
                                                                                        800 x 600
    clusters_graph<g>_level<l>.png         graph g at level l, nodes coloured by their argmax
                                           cluster in S_l (level 0: the input graph; level l >= 1:
                                           the pooled graph A_l of the level before); colour
                                           key of the clusters beside it                   800 x 800
    pooled_adjacency_graph<g>_level<l>.png the pooled adjacency A_{l+1} = S_l^T A_l S_l   700 x 600
    accuracy_points.png                    accuracy per sweep point (validation and test mean +-
                                           std; the paper protocol's figure), one dot per job,
                                           the published figures as labelled lines        1000 x 600
    confusion.png                          confusion matrix of the evaluations the experiment's
                                           figure comes from (stored test predictions), per-class
                                           accuracy                                         900 x 750

Which job is drawn: per fold, the completed job of that fold's winning sweep point (summary.h5),
phase train/retrain before select, lowest repeat; for the graph plots, the first such job that
saved outputs for graph N (--graph), or the job given with --job; without --graph, its first
saved graph.
"""
import argparse
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402

from . import published  # noqa: E402
from .confusion import confusion_matrix  # noqa: E402
from .io import DamagedFileError, load_experiment, load_job  # noqa: E402
from .layout import adjacency_from_edges, layout_from_edges, spring_layout  # noqa: E402

DPI = 100
FIGURE_INCHES = {
    "curves": (12, 8),
    "assignment": (8, 6),
    "clusters": (8, 8),
    "pooled_adjacency": (7, 6),
    "accuracy": (10, 6),
}
FIGURE_PIXELS = {kind: (int(w * DPI), int(h * DPI)) for kind, (w, h) in FIGURE_INCHES.items()}

SPLIT_STYLE = {
    "train": dict(color="tab:blue", linestyle="-"),
    "validation": dict(color="tab:orange", linestyle="--"),
    "test": dict(color="tab:green", linestyle=":"),
}


def _figure(kind):
    return plt.figure(figsize=FIGURE_INCHES[kind], dpi=DPI)


def _save(fig, path):
    # No bbox_inches="tight": the pixel size must stay exactly FIGURE_PIXELS.
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _job_title(job):
    point = f"point {job.point}" + (f" ({job.point_label})" if job.point_label else "")
    return (f"{job.experiment_name}: {job.dataset} {job.variant}, {job.protocol} protocol, fold {job.fold}, "
            f"{point}, repeat {job.repeat}, {job.phase}\njob {job.job_id}")


# ---------------------------------------------------------------------------------------------
# Learning curves.

def reported_test(job):
    """(epoch, accuracy as a fraction) of the test figure the job reports, or None without one.
    Holdout and nested jobs test the restored model of their best validation epoch; the paper
    protocol tests the last epoch's model (runner/protocol/paper.cpp: its figure comes from the
    curves), as does a job without a best epoch."""
    test = job.result.test if job.get("result") is not None else None
    if test is None or math.isnan(test.accuracy):
        return None
    epochs = job.metrics["epoch"]
    if job.protocol != "paper" and job.best_epoch > 0:
        return int(job.best_epoch), float(test.accuracy)
    return (int(epochs[-1]) if len(epochs) else 0), float(test.accuracy)


def plot_learning_curves(job, path):
    """Loss parts, accuracy and gradient norm per epoch of one job (train / validation / test), and
    the cluster usage of each pooling level where the job file records it."""
    return _save(learning_curves_figure(job), path)


def learning_curves_figure(job):
    """The figure of plot_learning_curves; the accuracy panel is axes[4], the reported test
    accuracy on it a star (gid "reported_test")."""
    m = job.metrics
    epochs = m["epoch"]
    fig = _figure("curves")
    panels = [("loss", "total loss"), ("classification_loss", "classification loss"),
              ("link_loss", "link-prediction loss"), ("entropy_loss", "entropy loss"),
              ("accuracy", "accuracy")]
    # Cluster usage per pooling level (evaluations of DiffPool models): a seventh panel.
    usage = sorted(name for name in m if "_cluster_usage_level" in name and not np.all(np.isnan(m[name])))
    axes = fig.subplots(2, 4 if usage else 3)
    if usage:
        ax = axes.flat[6]
        for name in usage:
            split, level = name.split("_cluster_usage_level")
            sparse = bool(np.isnan(m[name]).any())
            ax.plot(epochs, m[name], linewidth=1.2, marker="o" if sparse else None, markersize=3,
                    linestyle=SPLIT_STYLE[split].get("linestyle", "-"), color=f"C{int(level)}",
                    label=f"{split}, level {level}")
        ax.set_title("cluster usage (share chosen)")
        ax.set_xlabel("epoch")
        ax.set_ylim(0, 1.05)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        axes.flat[7].axis("off")
    for ax, (name, title) in zip(axes.flat, panels):
        for split, style in SPLIT_STYLE.items():
            values = m.get(f"{split}_{name}")
            if values is None or np.all(np.isnan(values)):
                continue
            if name == "accuracy":
                values = 100.0 * values
            # Markers where the split was measured only on some epochs (lines break at NaN).
            sparse = bool(np.isnan(values).any())
            ax.plot(epochs, values, label=split, linewidth=1.2, marker="o" if sparse else None, markersize=3,
                    **style)
        ax.set_title(title + (" (%)" if name == "accuracy" else ""))
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    ax = axes.flat[5]
    ax.plot(epochs, m["grad_norm"], color="tab:purple", linewidth=1.0)
    ax.set_title("gradient norm (last step, before clipping)" if not usage else "gradient norm (before clipping)")
    ax.set_xlabel("epoch")
    ax.grid(alpha=0.3)
    if job.best_epoch > 0:
        for ax in axes.flat:
            if ax.axison:
                ax.axvline(job.best_epoch, color="grey", linewidth=0.8, linestyle="-.")
    reported = reported_test(job)
    if reported is not None:
        epoch, accuracy = reported
        axes.flat[4].plot([epoch], [100.0 * accuracy], linestyle="none", marker="*", markersize=15,
                          color=SPLIT_STYLE["test"]["color"], markeredgecolor="black", zorder=5, gid="reported_test",
                          label=f"test accuracy reported: {100.0 * accuracy:.2f} % (model of epoch {epoch})")
    handles, labels = axes.flat[4].get_legend_handles_labels()
    if job.best_epoch > 0:
        handles.append(plt.Line2D([], [], color="grey", linewidth=0.8, linestyle="-."))
        labels.append(f"best epoch {job.best_epoch}")
    if labels:
        fig.legend(handles, labels, loc="lower center", ncol=len(labels))
    if len(epochs) == 0:
        fig.text(0.5, 0.5, "no epochs recorded", ha="center", va="center", fontsize=16, color="grey")
    title = _job_title(job)
    if job.status != "completed":
        title += f" - {job.status}: {job.failure}"
    fig.suptitle(title, fontsize=10)
    fig.subplots_adjust(left=0.06, right=0.98, top=0.88, bottom=0.1, hspace=0.35, wspace=0.25)
    return fig


# ---------------------------------------------------------------------------------------------
# Per-graph plots.

def _graph_title(job, out, level):
    return (f"{job.dataset} graph {out.graph} (label {out.label}, predicted {out.prediction}), level {level}"
            f"\njob {job.job_id}, fold {job.fold}")


def plot_assignment(job, out, level, path):
    """The assignment matrix S_l [rows, clusters] as a heat map (rows sum to 1)."""
    return _save(assignment_figure(job, out, level), path)


def assignment_figure(job, out, level):
    """The figure of plot_assignment, its colour bar the key of the assignment probabilities."""
    lv = out.levels[level]
    s = lv.assignment
    fig = _figure("assignment")
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(s, aspect="auto", interpolation="nearest", cmap="viridis", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, label="assignment probability")
    used = len(np.unique(np.argmax(s, axis=1))) if s.size else 0
    ax.set_xlabel(f"cluster ({lv.clusters}; {used} used as argmax)")
    ax.set_ylabel("node" if level == 0 else f"cluster of level {level}")
    ax.set_title(_graph_title(job, out, level) + f": S [{s.shape[0]} x {s.shape[1]}]", fontsize=10)
    fig.subplots_adjust(left=0.1, right=0.98, top=0.88, bottom=0.1)
    return fig


def plot_pooled_adjacency(job, out, level, path):
    """The pooled adjacency A_{l+1} = S_l^T A_l S_l [clusters, clusters] as a heat map."""
    return _save(pooled_adjacency_figure(job, out, level), path)


def pooled_adjacency_figure(job, out, level):
    """The figure of plot_pooled_adjacency, its colour bar the key of the edge weights."""
    a = out.levels[level].pooled_adjacency
    fig = _figure("pooled_adjacency")
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(a, interpolation="nearest", cmap="magma")
    fig.colorbar(image, ax=ax, label="edge weight")
    ax.set_xlabel("cluster")
    ax.set_ylabel("cluster")
    ax.set_title(_graph_title(job, out, level) + f": pooled adjacency [{a.shape[0]} x {a.shape[1]}]", fontsize=10)
    fig.subplots_adjust(left=0.1, right=0.98, top=0.88, bottom=0.1)
    return fig


def level_adjacency(out, level):
    """The dense adjacency the level works on, and how it was obtained: level 0 the input graph's
    edges (or S S^T when the job file holds no edges), level l >= 1 the pooled adjacency of level l-1."""
    lv = out.levels[level]
    if level == 0:
        if out.edges is not None:
            return adjacency_from_edges(lv.rows, out.edges), "input graph"
        s = lv.assignment.astype(np.float64)
        return s @ s.T, "edges not stored: S S^T shown"
    return np.asarray(out.levels[level - 1].pooled_adjacency, dtype=np.float64), f"pooled graph A_{level}"


def _weighted_edges(out, level):
    """(i, j, weight in (0, 1], how the graph was obtained, positions) of the graph at `level`:
    every edge of the input graph, or the pairs of a weighted adjacency above 1% of its largest
    weight (weights relative to the largest)."""
    lv = out.levels[level]
    n = lv.rows
    if level == 0 and out.edges is not None:
        e = np.asarray(out.edges, dtype=np.int64).reshape(-1, 2)
        e = e[e[:, 0] != e[:, 1]]
        return e[:, 0], e[:, 1], np.ones(len(e)), "input graph", layout_from_edges(n, e)
    adjacency, source = level_adjacency(out, level)
    weights = np.abs(adjacency)
    np.fill_diagonal(weights, 0.0)
    upper = np.triu(weights, k=1)
    top = upper.max() if upper.size else 0.0
    if top <= 0:
        return (np.zeros(0, np.int64),) * 2 + (np.zeros(0), source, spring_layout(weights))
    i, j = np.nonzero(upper > 0.01 * top)
    return i, j, upper[i, j] / top, source, spring_layout(weights)


def plot_clusters(job, out, level, path):
    """The graph of level `level` with nodes coloured by their argmax cluster in S_level."""
    return _save(clusters_figure(job, out, level), path)


# Up to this many clusters in use, each gets its own colour (tab10, tab20 above ten) and a legend
# entry; above, the colour follows the cluster index on a continuous map with a colour bar as the key.
CLUSTER_LEGEND_MAX = 20


def cluster_colours(cluster, clusters):
    """RGBA colour per node from its argmax cluster, and the key: ("legend", {cluster: colour}) for
    at most CLUSTER_LEGEND_MAX clusters in use (tab20 in the order of the cluster index), else
    ("colorbar", ScalarMappable) over the cluster indices 0 .. clusters - 1."""
    used = sorted(int(c) for c in np.unique(cluster))
    if len(used) <= CLUSTER_LEGEND_MAX:
        cmap = plt.get_cmap("tab10" if len(used) <= 10 else "tab20")
        key = {c: cmap(rank) for rank, c in enumerate(used)}
        return np.array([key[int(c)] for c in cluster]).reshape(-1, 4), ("legend", key)
    norm = matplotlib.colors.Normalize(vmin=0, vmax=max(clusters - 1, 1))
    mappable = matplotlib.cm.ScalarMappable(norm=norm, cmap="turbo")
    return mappable.to_rgba(np.asarray(cluster)), ("colorbar", mappable)


def clusters_figure(job, out, level):
    """The figure of plot_clusters. The colour key beside the axes: a legend "cluster k: n nodes"
    (or a colour bar of the cluster index above CLUSTER_LEGEND_MAX clusters in use); for a weighted
    graph a second legend keys the edge opacity to the weight."""
    lv = out.levels[level]
    n = lv.rows
    i, j, w, source, pos = _weighted_edges(out, level)
    cluster = np.argmax(lv.assignment, axis=1) if lv.assignment is not None and n else np.zeros(n, dtype=int)
    fig = _figure("clusters")
    ax = fig.add_subplot(1, 1, 1)
    # Edges: every edge of a 0/1 graph; for weighted graphs those above 1% of the largest weight,
    # with opacity and width following the weight.
    weighted = source != "input graph"
    if len(w):
        segments = np.stack([pos[i], pos[j]], axis=1)
        ax.add_collection(LineCollection(segments, colors=_edge_colours(w), linewidths=_edge_widths(w), zorder=1))
    colours, (key_kind, key) = cluster_colours(cluster, max(lv.clusters, 1))
    size = float(np.clip(3000.0 / max(n, 1), 8, 300))
    ax.scatter(pos[:, 0], pos[:, 1], c=colours, s=size, edgecolors="black", linewidths=0.3, zorder=2, gid="nodes")
    used = len(np.unique(cluster))
    ax.set_title(_graph_title(job, out, level) +
                 f"\n{n} nodes ({source}), coloured by argmax cluster: {used} of {lv.clusters} clusters used",
                 fontsize=10)
    ax.set_aspect("equal")
    ax.set_xlim(-1.1, 1.1)
    ax.set_ylim(-1.1, 1.1)
    ax.axis("off")
    fig.subplots_adjust(left=0.02, right=0.78, top=0.86, bottom=0.02)
    if key_kind == "legend":
        counts = np.bincount(cluster, minlength=max(key) + 1 if key else 1)
        handles = [plt.Line2D([], [], linestyle="none", marker="o", markersize=8, markerfacecolor=colour,
                              markeredgecolor="black", markeredgewidth=0.3,
                              label=f"cluster {c}: {counts[c]} node{'s' if counts[c] != 1 else ''}")
                   for c, colour in key.items()]
        legend = fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.79, 0.86), fontsize=8,
                            title="argmax cluster", title_fontsize=9, frameon=False)
        legend.set_gid("cluster_key")
    else:
        bar_axes = fig.add_axes([0.82, 0.35, 0.03, 0.5])
        fig.colorbar(key, cax=bar_axes, label="argmax cluster (index)")
        bar_axes.set_gid("cluster_key")
    if weighted and len(w):
        shown = [1.0, 0.5, 0.1]
        handles = [plt.Line2D([], [], color=_edge_colours([v])[0], linewidth=float(_edge_widths([v])[0]),
                              label=f"{v:g} x the largest") for v in shown]
        legend = fig.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.79, 0.04), fontsize=8,
                            title="edge weight", title_fontsize=9, frameon=False)
        legend.set_gid("edge_key")
    return fig


def _edge_colours(w):
    """Black with opacity 0.15 .. 0.75 following the relative weight w in (0, 1]."""
    colours = np.zeros((len(w), 4))
    colours[:, 3] = 0.15 + 0.6 * np.asarray(w)
    return colours


def _edge_widths(w):
    return 0.6 + 1.5 * np.asarray(w)


# ---------------------------------------------------------------------------------------------
# Accuracy per sweep point.

def point_table(exp):
    """Per sweep point: point, label, validation/test mean and std (fractions), paper accuracy and std
    (NaN outside the paper protocol), jobs. From summary.h5, else computed from the job files."""
    s = exp.summary
    if s is not None and len(s.points):
        p = s.points
        paper = s.protocol == "paper"
        return [dict(point=int(p.point[i]), label=str(p.label[i]), jobs=int(p.jobs[i]),
                     validation=(float(p.validation_mean[i]), float(p.validation_std[i])),
                     test=(float(p.test_mean[i]), float(p.test_std[i])),
                     paper=(float(p.paper_accuracy[i]), float(p.paper_std[i])) if paper else None)
                for i in range(len(p))]
    rows = {}
    for j in exp.jobs:
        if j.status != "completed" or j.phase == "retrain":
            continue
        r = rows.setdefault(j.point, dict(point=j.point, label=j.point_label, v=[], t=[]))
        r["v"].append(j.result.best_validation.accuracy)
        if j.result.test is not None:
            r["t"].append(j.result.test.accuracy)

    def stats(values):
        if not values:
            return (math.nan, math.nan)
        a = np.asarray(values, dtype=np.float64)
        return (float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0)

    return [dict(point=r["point"], label=r["label"], jobs=len(r["v"]), validation=stats(r["v"]),
                 test=stats(r["t"]), paper=None) for _, r in sorted(rows.items())]


def fold_accuracies(exp, table):
    """The per-job accuracies (fractions) behind the means of point_table: point -> {"validation",
    "test", "paper"} -> list, in fold order. Validation at the best epoch and test of every completed
    job that is not a retraining (as point_table counts them); under the paper protocol, "paper" is
    each job's test-fold accuracy at the point's paper_best_epoch (the epoch of the figure)."""
    s = exp.summary
    paper_epoch = {}
    if s is not None and s.protocol == "paper" and len(s.points):
        paper_epoch = {int(p): int(e) for p, e in zip(s.points.point, s.points.paper_best_epoch)}
    values = {r["point"]: dict(validation=[], test=[], paper=[]) for r in table}
    for j in exp.jobs:
        if j.status != "completed" or j.phase == "retrain" or j.point not in values:
            continue
        v = values[j.point]
        v["validation"].append(j.result.best_validation.accuracy)
        if j.result.test is not None:
            v["test"].append(j.result.test.accuracy)
        epoch, curve = paper_epoch.get(j.point, 0), j.metrics.get("test_accuracy")
        if 0 < epoch and curve is not None and epoch <= len(curve) and not math.isnan(curve[epoch - 1]):
            v["paper"].append(float(curve[epoch - 1]))
    return values


def _experiment_identity(exp):
    """(dataset, variant, protocol) of an experiment, from its summary or its first job; None when unknown."""
    s = exp.summary
    if s is not None and s.dataset:
        return s.dataset, s.variant, s.protocol
    if exp.jobs:
        j = exp.jobs[0]
        return j.dataset, j.variant, j.protocol
    return None


def plot_accuracy_points(exp, path):
    """Bar chart: validation and test accuracy (mean +- std over folds and repeats) per sweep point."""
    return _save(accuracy_points_figure(exp), path)


def accuracy_points_figure(exp):
    """The figure of plot_accuracy_points: per sweep point a bar per series (mean +- std) with one dot
    per job over it (gid "folds_<series>"; spread evenly across the bar in fold order), the reported
    figure as a line (gid "reported"), the published figures of the dataset and variant as labelled
    lines (gid "published_ying2018", "published_errica2020"; Errica et al.'s std as a band), and the
    legend outside the axes, on the right."""
    table = point_table(exp)
    per_fold = fold_accuracies(exp, table)
    fig = _figure("accuracy")
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(len(table))
    series = [("validation", "validation (best epoch)", "tab:orange"), ("test", "test", "tab:green")]
    if any(r["paper"] is not None for r in table):
        series.append(("paper", "paper protocol (optimistic)", "tab:red"))
    width = 0.8 / len(series)
    for k, (key, label, color) in enumerate(series):
        centres = x + (k - (len(series) - 1) / 2) * width
        means = np.array([100.0 * r[key][0] if r[key] else np.nan for r in table])
        stds = np.array([100.0 * r[key][1] if r[key] else np.nan for r in table])
        # A figure that does not apply is NaN (no bar); matplotlib fails on error bars that are all NaN.
        stds = np.where(np.isfinite(stds), stds, 0.0)
        ax.bar(centres, means, width, yerr=stds, capsize=3, color=color, label=label, alpha=0.45,
               error_kw=dict(elinewidth=1.0, ecolor="black"))
        dots_x, dots_y = [], []
        for centre, r in zip(centres, table):
            values = per_fold[r["point"]][key]
            spread = np.linspace(-0.3, 0.3, len(values)) * width if len(values) > 1 else np.zeros(len(values))
            dots_x += list(centre + spread)
            dots_y += [100.0 * v for v in values]
        if dots_x:
            ax.scatter(dots_x, dots_y, s=14, color=color, edgecolors="black", linewidths=0.5, zorder=3,
                       gid=f"folds_{key}")
    s = exp.summary
    if s is not None:
        ax.axhline(100.0 * s.accuracy_mean, color="black", linewidth=1.0, linestyle="--", gid="reported",
                   label=f"reported: {100 * s.accuracy_mean:.2f} +- {100 * s.accuracy_std:.2f}"
                         + (" (optimistic)" if s.optimistic else ""))
    identity = _experiment_identity(exp)
    if identity is not None:
        ying = published.ying_2018(identity[0], identity[1])
        if ying is not None:
            ax.axhline(ying, color="tab:purple", linewidth=1.4, linestyle=(0, (6, 3)), gid="published_ying2018",
                       label=f"{published.YING_SOURCE}: {ying:.2f}\n(the paper's protocol)")
        errica = published.errica_2020(identity[0], identity[1])
        if errica is not None:
            mean, std = errica
            ax.axhspan(mean - std, mean + std, color="tab:brown", alpha=0.08, linewidth=0)
            ax.axhline(mean, color="tab:brown", linewidth=1.4, linestyle=(0, (1, 2)), gid="published_errica2020",
                       label=f"{published.ERRICA_SOURCE}: {mean:.1f} +- {std:.1f}\n(nested CV; band: +- std)")
    labels = [f"{r['point']}" + (f"\n{r['label']}" if r["label"] and len(r["label"]) <= 40 else "") for r in table]
    ax.set_xticks(x)
    ax.set_xticklabels(labels, fontsize=7)
    ax.set_xlabel("sweep point")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.grid(axis="y", alpha=0.3)
    handles, names = ax.get_legend_handles_labels()
    if any(per_fold[r["point"]][key] for r in table for key, _, _ in series):
        handles.append(plt.Line2D([], [], linestyle="none", marker="o", markersize=4, color="grey",
                                  markeredgecolor="black", markeredgewidth=0.5))
        names.append("one dot per job (fold),\nin fold order")
    # Outside the axes: never over a bar, a dot or a line.
    ax.legend(handles, names, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize=8)
    if s is not None:
        title = (f"{s.name}: {s.dataset} {s.variant}, {s.protocol} protocol"
                 + (" (optimistic)" if s.optimistic else "") + f", {s.jobs_completed}/{s.jobs_total} jobs")
    elif exp.jobs:
        j = exp.jobs[0]
        title = f"{j.experiment_name}: {j.dataset} {j.variant}, {j.protocol} protocol (not summarised)"
    else:
        title = "accuracy per sweep point"
    ax.set_title(title, fontsize=10)
    fig.subplots_adjust(left=0.07, right=0.72, top=0.92, bottom=0.16)
    return fig


# ---------------------------------------------------------------------------------------------
# Choosing jobs, and the command line.

def _winners(exp):
    if exp.summary is None:
        return {}
    w = exp.summary.winners
    return {int(w.fold[i]): int(w.point[i]) for i in range(len(w))}


def _preference(job, winners):
    """Sort key: completed, the fold's winning point, train/retrain before select, low repeat."""
    winner = winners.get(job.fold)
    return (job.status != "completed", winner is not None and job.point != winner, job.phase == "select",
            job.repeat, job.point, job.job_id)


def representative_jobs(exp):
    """One job per fold (see the module docstring)."""
    winners = _winners(exp)
    chosen = {}
    for job in exp.jobs:
        best = chosen.get(job.fold)
        if best is None or _preference(job, winners) < _preference(best, winners):
            chosen[job.fold] = job
    return [chosen[f] for f in sorted(chosen)]


def output_job(exp, graph=None, job_id=None):
    """The job whose outputs are drawn, loaded with its outputs, or None."""
    winners = _winners(exp)
    candidates = [j for j in exp.jobs if j.graphs]
    if job_id is not None:
        candidates = [j for j in exp.jobs if j.job_id == job_id]
        if not candidates:
            raise SystemExit(f"no job {job_id} in {exp.folder}")
    if graph is not None:
        candidates = [j for j in candidates if graph in j.graphs]
        if not candidates:
            raise SystemExit(f"no job in {exp.folder} saved outputs for graph {graph}")
    if not candidates:
        return None
    best = min(candidates, key=lambda j: _preference(j, winners))
    return load_job(best.path, outputs=True)


def plot_graph(job, graph, out_dir):
    """Every per-graph plot of one graph of a job (loaded with outputs); returns the paths."""
    out = job.outputs[graph]
    written = []
    for level, lv in enumerate(out.levels):
        if lv.assignment is None:
            continue
        written.append(plot_assignment(job, out, level, os.path.join(out_dir, f"assignment_graph{graph}_level{level}.png")))
        written.append(plot_clusters(job, out, level, os.path.join(out_dir, f"clusters_graph{graph}_level{level}.png")))
        if lv.pooled_adjacency is not None:
            written.append(plot_pooled_adjacency(
                job, out, level, os.path.join(out_dir, f"pooled_adjacency_graph{graph}_level{level}.png")))
    return written


FIGURE_INCHES["confusion"] = (9, 7.5)
FIGURE_PIXELS["confusion"] = (900, 750)


def plot_confusion_matrix(confusion, path, title=""):
    """A confusion matrix (confusion.confusion_matrix or confusion_from_labels) as a heat map of the
    fraction of each true class (rows) predicted as each class (columns), every cell labelled with
    its count and percentage, and each class's accuracy and graph count beside its row."""
    return _save(confusion_figure(confusion, title), path)


def confusion_figure(confusion, title=""):
    """The figure of plot_confusion_matrix: the heat map is axes[0], the per-class accuracies are
    the tick labels of its twin axes[1], the colour bar axes[2]."""
    matrix = np.asarray(confusion.matrix)
    classes = matrix.shape[0]
    totals = matrix.sum(axis=1)
    fractions = matrix / np.maximum(totals, 1)[:, None]
    fig = _figure("confusion")
    ax = fig.add_axes([0.10, 0.10, 0.60, 0.76])
    image = ax.imshow(fractions, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
    small = classes > 12
    for t in range(classes):
        for p in range(classes):
            if small and matrix[t, p] == 0:
                continue
            dark = fractions[t, p] > 0.55
            ax.text(p, t, f"{matrix[t, p]}" if small else f"{matrix[t, p]}\n{100 * fractions[t, p]:.0f}%",
                    ha="center", va="center", fontsize=7 if small else 9, color="white" if dark else "black")
    ax.set_xticks(range(classes))
    ax.set_yticks(range(classes))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    # Each true class's accuracy beside its row, under a heading of its own.
    accuracy = confusion.per_class_accuracy
    side = ax.twinx()
    side.set_ylim(ax.get_ylim())
    side.set_yticks(range(classes))
    side.set_yticklabels([f"{100 * a:.1f}% ({matrix[t, t]}/{n})" if not math.isnan(a) else "no graphs"
                          for t, (a, n) in enumerate(zip(accuracy, totals))], fontsize=8 if small else 9)
    side.text(1.02, 1.01, "accuracy per\ntrue class", transform=ax.transAxes, ha="left", va="bottom", fontsize=9)
    bar = fig.add_axes([0.90, 0.10, 0.02, 0.76])
    fig.colorbar(image, cax=bar, label="fraction of the true class's graphs")
    heading = f"{title}\n" if title else ""
    fig.suptitle(f"{heading}test accuracy {100 * confusion.accuracy:.2f}% over {confusion.graphs} test graphs"
                 + (f" ({confusion.description})" if confusion.get("description") else ""), fontsize=10)
    return fig


def plot_experiment_confusion(exp, path, log=print):
    """confusion.png of an experiment: the evaluations its figure comes from; None (and a note)
    when no job stored test predictions."""
    result = confusion_matrix(exp)
    if result is None:
        log(f"note: no job in {exp.folder} stored test predictions (written before they were), so no confusion matrix")
        return None
    if result.skipped:
        log(f"note: {len(result.skipped)} jobs without stored test predictions left out of the confusion matrix")
    job = next((j for j in exp.jobs if j.job_id in result.jobs), None)
    if job is not None:
        title = f"{job.experiment_name}: {job.dataset} {job.variant}"
    else:  # a folder that keeps only its summary and confusion.csv
        summary = exp.summary or {}
        title = (f"{summary.get('name', os.path.basename(os.path.normpath(exp.folder)))}: "
                 f"{summary.get('dataset', '')} {summary.get('variant', '')}").rstrip(": ")
    return plot_confusion_matrix(result, path, title)


def plot_all(folder, out_dir, graph=None, job_id=None, log=print):
    """Writes every plot of an experiment folder (or of one job file) into out_dir; returns the paths."""
    os.makedirs(out_dir, exist_ok=True)
    written = []
    if os.path.isfile(folder):
        job = load_job(folder, outputs=True)
        written.append(plot_learning_curves(job, os.path.join(out_dir, f"curves_fold{job.fold}.png")))
        if job.graphs:
            g = graph if graph is not None else job.graphs[0]
            if g not in job.outputs:
                raise SystemExit(f"{folder} holds no outputs for graph {g} (it has {job.graphs[:10]}...)")
            written += plot_graph(job, g, out_dir)
        return written

    exp = load_experiment(folder)
    for message in exp.damaged:
        log(f"warning: {message}; left out of the plots")
    for job in representative_jobs(exp):
        written.append(plot_learning_curves(job, os.path.join(out_dir, f"curves_fold{job.fold}.png")))
    job = output_job(exp, graph, job_id)
    if job is None:
        log(f"note: no job in {folder} saved model outputs (output.save_outputs), so no graph plots")
    else:
        written += plot_graph(job, graph if graph is not None else job.graphs[0], out_dir)
    if exp.jobs or exp.summary is not None:
        written.append(plot_accuracy_points(exp, os.path.join(out_dir, "accuracy_points.png")))
    confusion = plot_experiment_confusion(exp, os.path.join(out_dir, "confusion.png"), log)
    if confusion is not None:
        written.append(confusion)
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python3 -m diffpool_results.plots",
                                     description="Write the PNG plots of a diffpool experiment folder or job file.")
    parser.add_argument("folder", help="experiment output folder (summary.h5, jobs/*.h5) or one job file")
    parser.add_argument("--out", required=True, help="folder for the PNG files (created)")
    parser.add_argument("--graph", type=int, default=None, help="dataset graph index to draw (default: the first saved)")
    parser.add_argument("--job", default=None, help="job id whose outputs are drawn")
    args = parser.parse_args(argv)
    try:
        written = plot_all(args.folder, args.out, args.graph, args.job)
    except DamagedFileError as error:  # a damaged file named, not a traceback
        print(f"error: {error}", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    print(f"wrote {len(written)} plots to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
