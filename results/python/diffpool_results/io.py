"""load_job, load_summary, load_experiment: diffpool HDF5 result files as Python objects and numpy arrays.

Every object returned here is an AttrDict: a dict whose keys are also attributes (job.metrics is
job["metrics"]). Arrays are numpy arrays exactly as stored (float64 metrics, float32 model outputs,
int64 indices). The layouts are described in results/README.md ("Job files", "Summary").
"""
import os
import glob

import h5py
import numpy as np

JOB_FORMAT = "diffpool-job"
SUMMARY_FORMAT = "diffpool-summary"
SCHEMA_VERSION = 1

METRIC_PARTS = ("loss", "classification_loss", "link_loss", "entropy_loss", "accuracy")


class AttrDict(dict):
    """A dict whose keys can also be read and written as attributes."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name, value):
        self[name] = value

    def __dir__(self):
        return list(self.keys()) + list(super().__dir__())


class Job(AttrDict):
    """One job file: identity and outcome attributes, settings, splits, metrics, result, outputs."""


class GraphOutput(AttrDict):
    """What the model computed for one graph: label, prediction, logits, graph_embedding, edges, levels."""


class Level(AttrDict):
    """One level of one graph: embedding [rows, dim], assignment [rows, clusters] (None at the last
    level), pooled_adjacency [clusters, clusters] (None at the last level)."""


class Summary(AttrDict):
    """summary.h5: attributes, environment, and the tables points, winners, failures."""


def _attributes(obj):
    out = {}
    for key, value in obj.attrs.items():
        if isinstance(value, bytes):
            value = value.decode("utf-8")
        elif isinstance(value, np.ndarray):
            value = value.copy()
        elif isinstance(value, np.integer):
            value = int(value)
        elif isinstance(value, np.floating):
            value = float(value)
        out[key] = value
    return out


def _string(dataset):
    value = dataset.asstr()[()]
    return value if isinstance(value, str) else str(value)


def _check_format(f, expected, path):
    fmt = f.attrs.get("format")
    if isinstance(fmt, bytes):
        fmt = fmt.decode()
    if fmt != expected:
        raise ValueError(f"{path}: not a {expected} file (root attribute 'format' is {fmt!r})")
    version = int(f.attrs["schema_version"])
    if version != SCHEMA_VERSION:
        raise ValueError(f"{path}: schema version {version}, this reader knows version {SCHEMA_VERSION}")


def parse_settings(text):
    """The canonical settings ("key=value" lines) as a dict of strings."""
    settings = {}
    for line in text.splitlines():
        if "=" in line:
            key, value = line.split("=", 1)
            settings[key.strip()] = value.strip()
    return settings


def _metrics_of_group(group):
    m = AttrDict((name, float(group.attrs[name])) for name in METRIC_PARTS)
    m.graphs = int(group.attrs["graphs"])
    # Per pooling level (float64 [L]); empty without pooling and in files written before it.
    m.cluster_usage = np.asarray(group.attrs.get("cluster_usage", np.zeros(0)), dtype=np.float64).reshape(-1)
    return m


def _read_outputs(f):
    outputs = {}
    group = f["outputs"]
    graph_ids = [int(g) for g in np.atleast_1d(group.attrs.get("graphs", np.zeros(0, np.int64)))]
    for graph in graph_ids:
        g = group[f"graphs/{graph}"]
        out = GraphOutput(
            graph=int(g.attrs["graph"]),
            label=int(g.attrs["label"]),
            prediction=int(g.attrs["prediction"]),
            logits=g["logits"][()] if "logits" in g else np.zeros(0, np.float32),
            graph_embedding=g["graph_embedding"][()] if "graph_embedding" in g else np.zeros(0, np.float32),
            edges=g["edges"][()] if "edges" in g else None,
            levels=[],
        )
        for l in range(int(g.attrs["levels"])):
            lg = g[f"level{l}"]
            rows, dim, clusters = (int(lg.attrs["rows"]), int(lg.attrs["embedding_dim"]), int(lg.attrs["clusters"]))
            out.levels.append(Level(
                rows=rows, embedding_dim=dim, clusters=clusters,
                embedding=lg["embedding"][()] if "embedding" in lg else np.zeros((rows, dim), np.float32),
                assignment=lg["assignment"][()] if "assignment" in lg else None,
                pooled_adjacency=lg["pooled_adjacency"][()] if "pooled_adjacency" in lg else None,
            ))
        outputs[graph] = out
    return graph_ids, outputs


def _read_predictions(f):
    """/predictions: every test graph's label and prediction (None when the job had no test split,
    or the file was written before they were stored)."""
    if "predictions" not in f:
        return None
    group = f["predictions"]
    attrs = _attributes(group)
    return AttrDict(
        split=attrs.get("split", "test"),
        epoch=int(attrs["epoch"]),
        graphs=group["graphs"][()],
        label=group["label"][()],
        prediction=group["prediction"][()],
        per_epoch=group["per_epoch"][()] if "per_epoch" in group else None,
    )


class DamagedFileError(ValueError):
    """A result file that is there but cannot be read whole (truncated, corrupt, not HDF5); the
    message names the file."""


def _verify_checksum_block(path):
    """Checks the checksum block of a result file before h5py opens it, as the C++ readers do
    (results/checksum_block.hpp): its first 512 bytes record the length and the CRC-32 of the rest.
    Raises DamagedFileError with the C++ message; a file without the block (written by an earlier
    version: the HDF5 signature at byte 0) or one that cannot be opened is left to h5py."""
    import struct
    import zlib
    magic, block = b"\x89diffpool-h5\r\n\x1a\n", 512

    def damaged(kind, detail):
        raise DamagedFileError(f"cannot open file '{path}' for reading: the file is damaged ({kind}): {detail}")

    try:
        f = open(path, "rb")
    except OSError:
        return
    with f:
        size = os.fstat(f.fileno()).st_size
        header = f.read(block)
        if header.startswith(b"\x89HDF\r\n\x1a\n"):
            return
        if header and len(header) < len(magic) and magic.startswith(header):
            damaged("truncated", f"it is {size} bytes long, a part of a checksum header")
        if not header.startswith(magic):
            damaged("not a result file", "it is empty (0 bytes)" if size == 0 else
                    f"it is {size} bytes long and starts neither with the checksum header of diffpool's result "
                    "files nor with an HDF5 signature")
        if len(header) < block:
            damaged("truncated", f"it is {size} bytes long, shorter than its {block}-byte checksum header")
        version, header_bytes, content_bytes, content_crc, header_crc = struct.unpack_from("<IIQII", header, 16)
        if zlib.crc32(header[:36]) != header_crc:
            damaged("corrupt", f"its checksum header (the first {block} bytes) does not match its own CRC-32")
        if version != 1:
            raise DamagedFileError(f"cannot open file '{path}' for reading: its checksum header has format version "
                                   f"{version}, and this diffpool reads version 1 (the file was written by a newer "
                                   "diffpool)")
        if header_bytes != block:
            damaged("corrupt", f"its checksum header says the HDF5 data start at byte {header_bytes}, not {block}")
        if size != content_bytes + block:
            damaged("truncated" if size < content_bytes + block else "corrupt",
                    f"it is {size} bytes long, and its checksum header records {content_bytes + block} "
                    f"({content_bytes} + {block} bytes of header)")
        crc, read = 0, 0
        while piece := f.read(1 << 20):
            crc, read = zlib.crc32(piece, crc), read + len(piece)
        if read != content_bytes:
            damaged("truncated", f"{read} bytes after its checksum header could be read, and the header records "
                    f"{content_bytes}")
        if crc != content_crc:
            damaged("corrupt", f"the CRC-32 of its {read} bytes after the checksum header is {crc:#010x}, and the "
                    f"header records {content_crc:#010x}")


def _read_or_damaged(path, read):
    """read(), with h5py's failures on a truncated or corrupt file raised as DamagedFileError."""
    _verify_checksum_block(path)
    try:
        return read()
    except DamagedFileError:
        raise
    except (OSError, KeyError, RuntimeError, TypeError) as error:
        raise DamagedFileError(f"{path}: damaged (truncated or corrupt), cannot be read: {error}") from None


def load_job(path, outputs=True):
    """Reads one job file (DamagedFileError, naming it, when it cannot be read whole); see _load_job."""
    path = os.fspath(path)
    return _read_or_damaged(path, lambda: _load_job(path, outputs))


def _load_job(path, outputs=True):
    """Reads one job file.

    Returns a Job with
      path, and every root attribute (job_id, experiment_id, experiment_name, protocol, phase, point,
        point_label, fold, repeat, seed, dataset, variant, status, failure, best_epoch, host, rank,
        backend, version, git_revision, wall_seconds, started_at, finished_at, schema_version);
      attrs: the root attributes as a dict;
      settings (str, key=value lines), settings_dict (dict), config (str, YAML);
      splits: {"train", "validation", "test"} -> int64 arrays of dataset graph indices;
      metrics: column name -> 1-D array, one entry per epoch (epoch, train_loss, ..., validation_accuracy,
        test_accuracy, grad_norm, train_seconds, eval_seconds, and for pooling models
        {validation,test}_cluster_usage_level<l>; NaN where a split was not measured);
      result: best_epoch, has_test, best_validation (loss parts, accuracy, graphs, cluster_usage: one
        per pooling level, empty without), test (same, or None);
      predictions: every test graph of the evaluation result.test measured, whatever
        output.max_graphs says: graphs (int64 [n], dataset indices), label, prediction (int32 [n];
        result.test.accuracy == mean(label == prediction)), epoch (the epoch whose weights made
        them), per_epoch (int32 [E, n], row e - 1 for epoch e, -1 where the test split was not
        measured; None unless the test split was measured during training, as the paper protocol
        does); None for a job without a test split and for files written before they were stored;
      outputs_split (str), graphs (list of graph indices with outputs, in file order);
      outputs: graph index -> GraphOutput (label, prediction, logits, graph_embedding, edges [E, 2] or
        None, levels: list of Level(embedding, assignment, pooled_adjacency, rows, clusters,
        embedding_dim)); empty when outputs=False.
    """
    path = os.fspath(path)
    with h5py.File(path, "r") as f:
        _check_format(f, JOB_FORMAT, path)
        attrs = _attributes(f)
        job = Job(attrs)
        job.path = path
        job.attrs = attrs
        job.seed = int(f.attrs["seed"])
        job.settings = _string(f["settings"])
        job.settings_dict = parse_settings(job.settings)
        job.config = _string(f["config"])
        job.splits = AttrDict((name, f[f"splits/{name}"][()]) for name in ("train", "validation", "test"))
        job.metrics = AttrDict((name, ds[()]) for name, ds in f["metrics"].items())
        result = f["result"]
        job.result = AttrDict(
            best_epoch=int(result.attrs["best_epoch"]),
            has_test=bool(result.attrs["has_test"]),
            best_validation=_metrics_of_group(result["best_validation"]),
            test=_metrics_of_group(result["test"]) if "test" in result else None,
        )
        job.predictions = _read_predictions(f)
        job.outputs_split = _attributes(f["outputs"]).get("split", "")
        job.graphs = [int(g) for g in np.atleast_1d(f["outputs"].attrs.get("graphs", np.zeros(0, np.int64)))]
        job.outputs = AttrDict()
        if outputs:
            _, job.outputs = _read_outputs(f)
    return job


def _table(group, skip=()):
    """A group of equally long 1-D columns as a numpy record array (strings as unicode); the
    datasets named in skip are not columns."""
    rows = int(group.attrs["rows"])
    names, arrays = [], []
    for name, ds in group.items():
        if name in skip:
            continue
        if h5py.check_string_dtype(ds.dtype) is not None:
            values = [str(v) for v in ds.asstr()[()]]
            width = max([1] + [len(v) for v in values])
            array = np.array(values, dtype=f"U{width}")
        else:
            array = ds[()]
        if array.shape != (rows,):
            raise ValueError(f"{group.file.filename}: {ds.name} has shape {array.shape}, the table has {rows} rows")
        names.append(name)
        arrays.append(array)
    dtype = np.dtype([(n, a.dtype) for n, a in zip(names, arrays)])
    table = np.rec.array(np.zeros(rows, dtype=dtype))
    for n, a in zip(names, arrays):
        table[n] = a
    return table


def rows(table):
    """A record array (summary table) as a list of dicts of Python values."""
    return [{name: table[name][i].item() for name in table.dtype.names} for i in range(len(table))]


def load_summary(path):
    """Reads summary.h5: a Summary with every root attribute (name, protocol, dataset, variant, folds,
    repeats, jobs_total, jobs_completed, jobs_failed, accuracy_mean, accuracy_std, accuracy_label,
    optimistic (bool)), environment (version, git_revision, backend, ranks, updated_at, hosts) and the
    tables points, winners, failures as numpy record arrays (points["test_mean"], points[0].label);
    jobs, the completed jobs the figures came from (job_id, phase, point, fold, repeat, epochs,
    best_epoch, validation_accuracy, test_accuracy, test_split, host, git_revision, seconds, and
    dataset_digest and cluster_usage_level<l> where the summary records them), as a
    record array too (empty in summaries written before it was stored), and validation_curves, the
    per-epoch validation accuracy of each of those jobs (a list of float64 arrays, NaN where an
    epoch was not validated)."""
    path = os.fspath(path)
    return _read_or_damaged(path, lambda: _load_summary(path))


def _load_summary(path):
    with h5py.File(path, "r") as f:
        _check_format(f, SUMMARY_FORMAT, path)
        summary = Summary(_attributes(f))
        summary.path = path
        summary.optimistic = bool(summary.optimistic)
        env = _attributes(f["environment"])
        env["hosts"] = [str(h) for h in f["environment/hosts"].asstr()[()]]
        summary.environment = AttrDict(env)
        for name in ("points", "winners", "failures"):
            summary[name] = _table(f[name])
        curves = ("curve_offsets", "validation_curves")
        if "jobs" in f:
            summary.jobs = _table(f["jobs"], skip=curves)
            offsets = f["jobs/curve_offsets"][()]
            values = f["jobs/validation_curves"][()]
            summary.validation_curves = [values[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]
        else:
            summary.jobs = np.rec.array(np.zeros(0, dtype=[("job_id", "U1")]))
            summary.validation_curves = []
    return summary


class Experiment(AttrDict):
    """An experiment output folder: folder, summary (or None), jobs (list of Job), job_table (record
    array, one row per job), failed (list of dicts from failed/*.txt), damaged (one message per job
    file that cannot be read, naming it; those jobs are not in jobs)."""

    def jobs_of_fold(self, fold):
        return [j for j in self.jobs if j.fold == fold]


def _read_failure_file(path):
    record = {"job_id": os.path.splitext(os.path.basename(path))[0]}
    with open(path, encoding="utf-8", errors="replace") as stream:
        for line in stream:
            key, _, value = line.rstrip("\n").partition(" ")
            if key and key != "job":
                record[key] = value
    return record


def _job_sort_key(job):
    return (job.fold, job.point, job.phase, job.repeat, job.job_id)


def load_experiment(folder, outputs=False):
    """Reads an experiment output folder: summary.h5 (None when missing) and every jobs/*.h5 (sorted by
    fold, point, phase, repeat). outputs=True also reads the per-graph model outputs of every job.
    job_table is a record array with one row per job: job_id, phase, point, point_label, fold, repeat,
    seed, status, best_epoch, validation_accuracy (at the best epoch), test_accuracy (NaN without a
    test split), epochs, wall_seconds, host, rank, file."""
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{folder}: not a folder")
    summary_path = os.path.join(folder, "summary.h5")
    exp = Experiment(folder=folder, summary=load_summary(summary_path) if os.path.exists(summary_path) else None)
    files = sorted(glob.glob(os.path.join(folder, "jobs", "*.h5")))
    # A damaged job file is no finished job: left out and named in exp.damaged (a rerun of the
    # experiment runs that job again).
    jobs, exp.damaged = [], []
    for p in files:
        try:
            jobs.append(load_job(p, outputs=outputs))
        except DamagedFileError as error:
            exp.damaged.append(str(error))
    exp.jobs = sorted(jobs, key=_job_sort_key)
    exp.failed = [_read_failure_file(p) for p in sorted(glob.glob(os.path.join(folder, "failed", "*.txt")))]
    if not exp.jobs and exp.summary is None:
        raise FileNotFoundError(f"{folder}: neither summary.h5 nor jobs/*.h5 (not an experiment output folder)")

    def text_column(values):
        width = max([1] + [len(v) for v in values])
        return np.array(values, dtype=f"U{width}")

    j = exp.jobs
    columns = [
        ("job_id", text_column([x.job_id for x in j])),
        ("phase", text_column([x.phase for x in j])),
        ("point", np.array([x.point for x in j], dtype=np.int64)),
        ("point_label", text_column([x.point_label for x in j])),
        ("fold", np.array([x.fold for x in j], dtype=np.int64)),
        ("repeat", np.array([x.repeat for x in j], dtype=np.int64)),
        ("seed", np.array([x.seed for x in j], dtype=np.uint64)),
        ("status", text_column([x.status for x in j])),
        ("best_epoch", np.array([x.best_epoch for x in j], dtype=np.int64)),
        ("validation_accuracy", np.array([x.result.best_validation.accuracy for x in j], dtype=np.float64)),
        ("test_accuracy", np.array([x.result.test.accuracy if x.result.test else np.nan for x in j],
                                   dtype=np.float64)),
        ("epochs", np.array([len(x.metrics["epoch"]) for x in j], dtype=np.int64)),
        ("wall_seconds", np.array([x.wall_seconds for x in j], dtype=np.float64)),
        ("host", text_column([x.host for x in j])),
        ("rank", np.array([x.rank for x in j], dtype=np.int64)),
        ("file", text_column([x.path for x in j])),
    ]
    table = np.rec.array(np.zeros(len(j), dtype=[(n, a.dtype) for n, a in columns]))
    for n, a in columns:
        table[n] = a
    exp.job_table = table
    return exp
