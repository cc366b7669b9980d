#pragma once
// Writing a file so that a crash, kill or preemption at any moment leaves either no file or a
// complete one at the final path, never a half-written one (HDF5 cannot read a file whose writer
// died before flushing and closing it; a half-written experiment.id would mix experiments).
//
// One function does it for every kind of file: the file is written under a temporary name in the
// same directory (so the rename cannot cross file systems), closed and fsync'ed, then renamed over
// the final path (rename is atomic in POSIX), and the directory is fsync'ed so that the rename
// itself survives a power loss. A killed writer leaves only "<final>.tmp.<pid>", which readers
// never look at; it can be removed once that process is known to be gone. Text and HDF5 files
// have thin adapters below.
#include <filesystem>
#include <functional>
#include <string_view>

#include "results/hdf5.hpp"

namespace diffpool {

// "<final_path>.tmp.<pid of this process>".
std::filesystem::path atomic_temporary_path(const std::filesystem::path& final_path);

// Calls write(temporary), which must create the file at `temporary`, fill it and close it; then
// fsyncs it, renames it over `final_path` (replacing an existing file) and fsyncs the directory.
// If anything throws (write, fsync, rename), the temporary file is removed, `final_path` is left as
// it was, and the exception propagates.
void write_atomically(const std::filesystem::path& final_path,
                      const std::function<void(const std::filesystem::path& temporary)>& write);

// A text (or any byte) file, through write_atomically.
void write_text_file_atomically(const std::filesystem::path& path, std::string_view text);

namespace hdf5 {

using diffpool::atomic_temporary_path;

// An HDF5 file, through write_atomically: creates the file, calls write(file), flushes and closes
// it, all under library_mutex(). Groups and datasets opened inside `write` must be closed when it
// returns (it is an error to keep one: the file could not be closed).
void write_file_atomically(const std::filesystem::path& final_path, const std::function<void(File&)>& write);

}  // namespace hdf5
}  // namespace diffpool
