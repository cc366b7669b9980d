"""Checks the Python reader (results/python/diffpool_results) against files written by
test_results_python.cpp, value by value, with the formulas of tests/unit/results_fixtures.hpp.

Usage: PYTHONPATH=results/python /usr/bin/python3 check_results_python.py EXPERIMENT_DIR JOB_FILE
(exit status 0 and "results python check passed").
"""
import math
import sys

import numpy as np

from diffpool_results import load_experiment, load_job
from diffpool_results.io import rows

CLUSTERS = (6, 2, 0)
EMBEDDING_DIM = 32
CLASSES = 3
OUTPUT_GRAPHS = {0: [(3, 7), (8, 23), (12, 4), (20, 61), (31, 150)], 1: [(1, 5), (5, 150), (9, 12), (14, 40), (27, 9)]}


def expect(condition, message):
    if not condition:
        raise AssertionError(message)


def wave(g, l, k, r, c):
    return np.sin(0.1 * g + 0.7 * l + 0.013 * np.asarray(r, dtype=np.float64) + 0.029 * np.asarray(c, dtype=np.float64) + k)


def grid(g, l, k, rows_, cols):
    r, c = np.meshgrid(np.arange(rows_), np.arange(cols), indexing="ij")
    return wave(g, l, k, r, c).astype(np.float32)


def close(a, b, what, atol=1e-6):
    a, b = np.asarray(a), np.asarray(b)
    expect(a.shape == b.shape, f"{what}: shape {a.shape}, expected {b.shape}")
    expect(np.allclose(a, b, atol=atol, rtol=0, equal_nan=True), f"{what}: {a} != {b}")


def metrics(epoch, offset, loss_shift, accuracy_shift):
    e = float(epoch)
    return dict(loss=2.0 / e + offset + loss_shift, classification_loss=1.5 / e + offset + loss_shift,
                link_loss=0.4 / e + loss_shift, entropy_loss=0.1 / e + loss_shift,
                accuracy=0.5 + 0.05 * e + accuracy_shift)


def check_job(job, fold, point, with_outputs):
    # Identity and environment attributes.
    expect(job.job_id == f"{0xabc000 + fold * 16 + point:016x}", f"job_id {job.job_id}")
    expect(job.experiment_name == "synthetic-enzymes" and job.protocol == "holdout" and job.phase == "train",
           f"identity {job.experiment_name} {job.protocol} {job.phase}")
    expect(job.fold == fold and job.point == point and job.repeat == 0, f"fold/point {job.fold} {job.point}")
    expect(job.seed == 0xfedcba9876543210 + fold, f"seed {job.seed}")
    expect(job.dataset == "ENZYMES" and job.variant == "diffpool", "dataset/variant")
    expect(job.status == "completed" and job.failure == "" and job.best_epoch == 5, "outcome")
    expect(job.host == "node001" and job.rank == 3 and job.backend == "cpu", "environment")
    expect(job.wall_seconds == 12.5 and job.started_at == "2024-05-01T10:00:00Z", "times")
    expect(job.schema_version == 1, "schema_version")
    expect(job.settings_dict["dataset.name"] == "ENZYMES", f"settings {job.settings!r}")
    expect("gr\u00fc\u00dfe \u0394" in job.config, f"config {job.config!r}")
    # Splits.
    ids = np.arange(40)
    close(job.splits.test, ids[ids % 10 == fold], "splits.test")
    close(job.splits.validation, ids[(ids % 10 == 9) & (ids % 10 != fold)], "splits.validation")
    expect(job.splits.train.dtype == np.int64 and len(job.splits.train) == 40 - 4 - 4, "splits.train")
    # Metrics: one array per column, NaN where not measured.
    offset = 0.01 * (point + 2 * fold)
    m = job.metrics
    close(m["epoch"], np.arange(1, 7), "epoch")
    for e in range(1, 7):
        i = e - 1
        for prefix, loss_shift, acc_shift, measured in (("train", 0.0, 0.0, True), ("validation", 0.1, -0.02, e != 3),
                                                        ("test", 0.2, -0.04, e % 2 == 0)):
            want = metrics(e, offset, loss_shift, acc_shift)
            for name, value in want.items():
                got = m[f"{prefix}_{name}"][i]
                if measured:
                    expect(abs(got - value) < 1e-12, f"{prefix}_{name}[{i}] = {got}, expected {value}")
                else:
                    expect(math.isnan(got), f"{prefix}_{name}[{i}] = {got}, expected NaN")
        expect(m["grad_norm"][i] == 1 + 0.5 * e and m["train_seconds"][i] == 0.25 * e and
               m["eval_seconds"][i] == 0.125 * e, f"timings at epoch {e}")
    expect(list(m["validation_measured"]) == [1, 1, 0, 1, 1, 1], "validation_measured")
    # Result.
    r = job.result
    expect(r.best_epoch == 5 and r.has_test, "result")
    expect(abs(r.best_validation.accuracy - metrics(5, offset, 0.1, -0.02)["accuracy"]) < 1e-12, "best_validation")
    expect(abs(r.test.loss - metrics(5, offset, 0.2, -0.04)["loss"]) < 1e-12 and r.test.graphs == 60, "test")
    # Outputs.
    expect(job.outputs_split == "test", "outputs_split")
    expect(job.graphs == [g for g, _ in OUTPUT_GRAPHS[fold]], f"graphs {job.graphs}")
    if not with_outputs:
        expect(len(job.outputs) == 0, "outputs read although not asked for")
        return
    for g, n in OUTPUT_GRAPHS[fold]:
        out = job.outputs[g]
        expect(out.graph == g and out.label == g % CLASSES and out.prediction == (g // 2) % CLASSES, f"graph {g}")
        close(out.logits, grid(g, 0, 3, 1, CLASSES)[0], f"graph {g} logits")
        close(out.graph_embedding, grid(g, 0, 4, 1, 3 * EMBEDDING_DIM)[0], f"graph {g} graph_embedding")
        expect(out.logits.dtype == np.float32, "logits dtype")
        # Edges: ring plus chords, (low, high) pairs.
        edges = [(i, i + 1) for i in range(n - 1)] + ([(0, n - 1)] if n > 2 else []) + \
                [(i, i + 3) for i in range(0, n - 4, 5)]
        close(out.edges, np.array(edges, dtype=np.int32).reshape(-1, 2), f"graph {g} edges")
        expect(len(out.levels) == 3, f"graph {g}: {len(out.levels)} levels")
        rows_of = (n, CLUSTERS[0], CLUSTERS[1])
        for l, level in enumerate(out.levels):
            expect(level.rows == rows_of[l] and level.clusters == CLUSTERS[l], f"graph {g} level {l} sizes")
            close(level.embedding, grid(g, l, 0, rows_of[l], EMBEDDING_DIM), f"graph {g} level {l} embedding")
            if CLUSTERS[l] == 0:
                expect(level.assignment is None and level.pooled_adjacency is None, f"graph {g} last level")
                continue
            r, c = np.meshgrid(np.arange(rows_of[l]), np.arange(CLUSTERS[l]), indexing="ij")
            logits = 3.0 * wave(g, l, 1, 37 * r, 53 * c).astype(np.float32).astype(np.float64)
            s = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
            close(level.assignment, s, f"graph {g} level {l} assignment")
            close(level.assignment.sum(axis=1), np.ones(rows_of[l]), f"graph {g} level {l} rows of S", atol=1e-5)
            k = CLUSTERS[l]
            r, c = np.meshgrid(np.arange(k), np.arange(k), indexing="ij")
            a = np.abs(wave(g, l, 2, np.minimum(r, c), np.maximum(r, c)).astype(np.float32))
            close(level.pooled_adjacency, a, f"graph {g} level {l} pooled_adjacency")


def main(folder, job_path):
    job = load_job(job_path)
    check_job(job, fold=0, point=1, with_outputs=True)
    check_job(load_job(job_path, outputs=False), fold=0, point=1, with_outputs=False)

    exp = load_experiment(folder)
    expect(len(exp.jobs) == 4, f"{len(exp.jobs)} jobs")
    keys = [(j.fold, j.point) for j in exp.jobs]
    expect(keys == [(0, 0), (0, 1), (1, 0), (1, 1)], f"job order {keys}")
    for j in exp.jobs:
        check_job(j, j.fold, j.point, with_outputs=False)
    t = exp.job_table
    expect(list(t.fold) == [0, 0, 1, 1] and list(t.point) == [0, 1, 0, 1], "job_table fold/point")
    close(t.test_accuracy, [metrics(5, 0.01 * (p + 2 * f), 0.2, -0.04)["accuracy"] for f, p in keys], "job_table test")
    expect(t.status[0] == "completed" and t.epochs[0] == 6, "job_table status/epochs")
    expect(len(exp.failed) == 1 and exp.failed[0]["reason"].startswith("numerical failure"), f"failed {exp.failed}")

    s = exp.summary
    expect(s.name == "synthetic-enzymes" and s.protocol == "holdout" and s.optimistic is False, "summary attributes")
    expect(s.jobs_total == 5 and s.jobs_completed == 4 and s.jobs_failed == 1, "summary counts")
    expect(abs(s.accuracy_mean - 0.70) < 1e-15 and s.accuracy_label == "test accuracy of per-fold winners", "figure")
    expect(s.environment.hosts == ["node001", "node002"] and s.environment.ranks == 4, "environment")
    expect(list(s.points.point) == [0, 1] and s.points.label[1] == "training.learning_rate=0.0001", "points")
    close(s.points.test_mean, [0.71, 0.70], "points.test_mean")
    expect(list(s.winners.point) == [1, 0], "winners")
    # Ties, the split seed (beyond int64), the population std, and NaN where a field does not apply.
    expect(list(s.winners.tied) == [1, 2] and s.tie_rule.startswith("lowest sweep point index"), "winners.tied")
    expect(s.split_seed == 0xfedcba9876543210 and abs(s.accuracy_std_population - 0.01) < 1e-15, "split seed, std")
    expect(bool(np.all(np.isnan(s.points.paper_accuracy))), f"paper_accuracy {s.points.paper_accuracy}")
    expect(s.failures.reason[0].startswith("numerical failure") and s.failures.job_id[0] == "00000000000abc99",
           "failures")
    expect(rows(s.points)[0]["label"] == "training.learning_rate=0.001", "rows()")
    print("results python check passed")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
