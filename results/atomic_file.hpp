#pragma once
// Writing a result file so that a crash, kill or preemption at any moment leaves either no file or
// a complete one at the final path, never a half-written HDF5 file (HDF5 cannot read a file whose
// writer died before flushing and closing it).
//
// The file is written under a temporary name in the same directory (so the rename cannot cross
// file systems), flushed, closed and fsync'ed, then renamed over the final path (rename is atomic
// in POSIX), and the directory is fsync'ed so that the rename itself survives a power loss.
// A killed writer leaves only "<final>.tmp.<pid>", which readers never look at; it can be removed
// once that process is known to be gone.
#include <filesystem>
#include <functional>

#include "results/hdf5.hpp"

namespace diffpool::hdf5 {

// "<final_path>.tmp.<pid of this process>".
std::filesystem::path atomic_temporary_path(const std::filesystem::path& final_path);

// Creates the temporary file, calls write(file), then flushes, closes, fsyncs and renames it over
// `final_path` (replacing an existing file). If anything throws (write, HDF5, fsync, rename), the
// temporary file is removed, `final_path` is left as it was, and the exception propagates.
// Groups and datasets opened inside `write` must be closed when it returns (it is an error to keep
// one: the file could not be closed).
void write_file_atomically(const std::filesystem::path& final_path, const std::function<void(File&)>& write);

}  // namespace diffpool::hdf5
