"""Reads a file written by test_hdf5.cpp (Hdf5Interop.H5pyReadsWhatWeWrite) with h5py and checks
every value, dtype, shape and attribute; an independent reader for the results/ HDF5 wrapper.

Usage: /usr/bin/python3 check_hdf5_with_h5py.py FILE.h5   (exit status 0 and "h5py check passed")
"""
import sys

import h5py
import numpy as np


def expect(condition, message):
    if not condition:
        raise AssertionError(message)


def expect_array(dataset, dtype, values):
    expected = np.asarray(values, dtype=dtype)
    actual = dataset[()]
    expect(dataset.dtype == np.dtype(dtype), f"{dataset.name}: dtype {dataset.dtype}, expected {np.dtype(dtype)}")
    expect(actual.shape == expected.shape, f"{dataset.name}: shape {actual.shape}, expected {expected.shape}")
    expect(np.array_equal(actual, expected), f"{dataset.name}: values {actual}, expected {expected}")


def main(path):
    with h5py.File(path, "r") as f:
        # Root attributes: scalar int64, float64 and UTF-8 string.
        expect(f.attrs["seed"] == 42 and f.attrs["seed"].dtype == np.int64, f"seed: {f.attrs['seed']!r}")
        expect(f.attrs["learning_rate"] == 0.001 and f.attrs["learning_rate"].dtype == np.float64,
               f"learning_rate: {f.attrs['learning_rate']!r}")
        expect(f.attrs["variant"] == "DIFFPOOL", f"variant: {f.attrs['variant']!r}")
        expect(f.attrs["note"] == "gr\u00fc\u00dfe \u0394", f"note: {f.attrs['note']!r}")

        # Groups.
        expect(sorted(f.keys()) == ["embeddings", "empty", "levels", "mask", "metrics", "names", "text"],
               f"root keys {sorted(f.keys())}")
        expect(isinstance(f["levels/0/pooled"], h5py.Group), "levels/0/pooled is not a group")

        # Numeric datasets of every type and rank.
        expect_array(f["metrics/loss"], np.float32, [0.5, 0.25, 0.125, 0.0625])
        expect_array(f["metrics/accuracy"], np.float64, [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]])
        expect_array(f["embeddings"], np.int32, np.arange(8).reshape(2, 2, 2) - 3)
        expect_array(f["mask"], np.uint8, [0, 1, 255, 7, 3])
        expect_array(f["empty"], np.float32, np.zeros((0, 4)))
        expect_array(f["metrics/epochs"], np.int64, 250)  # a 0-D (scalar) dataset

        # Compressed, chunked 3-D int64.
        big = f["levels/0/pooled/adjacency"]
        expect(big.compression == "gzip" and big.compression_opts == 4,
               f"adjacency compression {big.compression} {big.compression_opts}")
        expect(big.chunks is not None and big.shuffle, f"adjacency chunks {big.chunks} shuffle {big.shuffle}")
        expect_array(big, np.int64, (np.arange(4 * 30 * 50) % 7).reshape(4, 30, 50))

        # Strings: scalar and 1-D, variable-length UTF-8.
        expect(f["text"].shape == () and f["text"].asstr()[()] == "h\u00e9llo \u0394", f"text {f['text'][()]!r}")
        names = f["names"]
        expect(h5py.check_string_dtype(names.dtype).encoding == "utf-8", f"names dtype {names.dtype}")
        expect(list(names.asstr()[()]) == ["a", "bb", "", "\u00fcn\u00ef"], f"names {names[()]!r}")

        # Attributes on a group and a dataset: 1-D vectors of each type, strings.
        metrics = f["metrics"]
        expect(np.array_equal(metrics.attrs["folds"], np.array([1, 2, 3], dtype=np.int32))
               and metrics.attrs["folds"].dtype == np.int32, f"folds {metrics.attrs['folds']!r}")
        expect(np.array_equal(metrics.attrs["weights"], [0.5, 1.5]) and metrics.attrs["weights"].dtype == np.float64,
               f"weights {metrics.attrs['weights']!r}")
        expect(metrics.attrs["bytes"].dtype == np.uint8 and list(metrics.attrs["bytes"]) == [1, 2, 250],
               f"bytes {metrics.attrs['bytes']!r}")
        expect(metrics.attrs["empty"].shape == (0,), f"empty attribute {metrics.attrs['empty']!r}")
        loss = f["metrics/loss"]
        expect(loss.attrs["unit"] == "nats", f"unit {loss.attrs['unit']!r}")
        expect(np.array_equal(loss.attrs["scale"], np.array([0.25], dtype=np.float32))
               and loss.attrs["scale"].dtype == np.float32, f"scale {loss.attrs['scale']!r}")
        expect(np.array_equal(loss.attrs["steps"], np.array([10, 20], dtype=np.int64)), f"steps {loss.attrs['steps']!r}")
    print("h5py check passed")


if __name__ == "__main__":
    main(sys.argv[1])
