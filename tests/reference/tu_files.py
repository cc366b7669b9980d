"""Plain-numpy reader of the TU Dortmund graph-classification text format.

Written for the reference tests and the padded PyTorch benchmark; it does not use the C++ loader
(engine/data/tu_dataset.cpp) nor PyTorch Geometric, so it can check the former.

Files of dataset NAME in <data_dir>/<NAME>/ (each may instead be <file>.txt.gz):
  NAME_A.txt                 one edge "i, j" per line, 1-based global node ids
  NAME_graph_indicator.txt   graph id (1-based) of every node
  NAME_graph_labels.txt      class of every graph
  NAME_node_labels.txt       optional, one integer label per node
  NAME_node_attributes.txt   optional, comma-separated floats per node

Conventions (the same as the C++ loader's documented ones, dataset.hpp):
  - edges made symmetric, duplicates and self-loops removed;
  - classes numbered by ascending numeric value of the raw label;
  - "automatic" features: one-hot node labels (values in ascending order) followed by the node
    attributes as float32; without either, ten constant ones per node.
"""
import gzip
import os

import numpy as np


def _open_text(folder, name, part, required=True):
    base = os.path.join(folder, f"{name}_{part}.txt")
    for path, opener in ((base, open), (base + ".gz", gzip.open)):
        if os.path.exists(path):
            with opener(path, "rt") as f:
                return f.read()
    if required:
        raise FileNotFoundError(f"{base}[.gz] not found (TU dataset {name} in {folder})")
    return None


def _numbers(text, dtype):
    return np.array(text.replace(",", " ").split(), dtype=dtype)


class TUDataset:
    """All graphs of one TU dataset, packed: node v of graph g is node_offsets[g] + local index."""

    def __init__(self, data_dir, name, constant_dim=10):
        folder = os.path.join(data_dir, name)
        self.name = name
        indicator = _numbers(_open_text(folder, name, "graph_indicator"), np.int64) - 1
        if indicator.size == 0 or np.any(np.diff(indicator) < 0):
            raise ValueError(f"{name}: graph indicator must list nodes graph by graph")
        num_graphs = int(indicator.max()) + 1
        counts = np.bincount(indicator, minlength=num_graphs)
        self.node_offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        num_nodes = int(self.node_offsets[-1])

        raw_labels = _numbers(_open_text(folder, name, "graph_labels"), np.float64)
        self.class_values = np.unique(raw_labels)
        self.labels = np.searchsorted(self.class_values, raw_labels).astype(np.int64)
        if self.labels.size != num_graphs:
            raise ValueError(f"{name}: {self.labels.size} graph labels for {num_graphs} graphs")

        edges = _numbers(_open_text(folder, name, "A"), np.int64).reshape(-1, 2) - 1
        edges = np.concatenate([edges, edges[:, ::-1]])  # symmetric
        edges = edges[edges[:, 0] != edges[:, 1]]       # no self-loops
        edges = np.unique(edges, axis=0)                 # sorted by (row, col), no duplicates
        if np.any(indicator[edges[:, 0]] != indicator[edges[:, 1]]):
            raise ValueError(f"{name}: an edge crosses graphs")
        self.edges = edges  # [E, 2] global ids, both directions
        self.edge_offsets = np.searchsorted(edges[:, 0], self.node_offsets)  # edges of graph g

        parts = []
        node_labels = _open_text(folder, name, "node_labels", required=False)
        if node_labels is not None:
            values = _numbers(node_labels, np.int64)
            distinct = np.unique(values)
            onehot = np.zeros((num_nodes, distinct.size), dtype=np.float32)
            onehot[np.arange(num_nodes), np.searchsorted(distinct, values)] = 1.0
            parts.append(onehot)
        attributes = _open_text(folder, name, "node_attributes", required=False)
        if attributes is not None:
            parts.append(_numbers(attributes, np.float32).reshape(num_nodes, -1))
        if not parts:
            parts.append(np.ones((num_nodes, constant_dim), dtype=np.float32))
        self.features = np.concatenate(parts, axis=1)  # float32 [num_nodes, F]

    @property
    def num_graphs(self):
        return self.labels.size

    @property
    def num_classes(self):
        return self.class_values.size

    @property
    def num_features(self):
        return self.features.shape[1]

    def num_nodes(self, g):
        return int(self.node_offsets[g + 1] - self.node_offsets[g])

    @property
    def max_nodes(self):
        return int(np.diff(self.node_offsets).max())

    def graph(self, g):
        """(features [n, F] float32, local edges [E_g, 2] int64, label) of graph g."""
        lo, hi = int(self.node_offsets[g]), int(self.node_offsets[g + 1])
        e = self.edges[self.edge_offsets[g]:self.edge_offsets[g + 1]] - lo
        return self.features[lo:hi], e, int(self.labels[g])
