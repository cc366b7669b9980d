#pragma once
// A small RAII wrapper over the serial HDF5 C library (1.10), in the style of HighFive.
//
//   File      one open HDF5 file (create with truncation, open read-only, open read-write)
//   Group     a group inside a file; File and Group are both a Location (something that holds objects)
//   Dataset   an n-dimensional array of float/double/int32/int64/uint8/uint64, or UTF-8 strings
//   Object    what File, Group and Dataset share: attributes (scalar int64/double/string, 1-D numbers)
//   Handle    owns one hid_t and closes it with the matching H5?close; the destructor never throws
//
// Data are row-major (C order), as HDF5, numpy and h5py store them: an Array<T> holds the values and
// the shape, values.size() == product(shape), an empty shape meaning a scalar.
//
// Errors: every failed HDF5 call throws diffpool::LibraryError. Its message names the operation, the
// object path and the file, followed by the HDF5 error stack (collected with H5Ewalk2); HDF5's own
// printing to stderr is switched off for the duration of every call made here. Reading a value of a
// type the file does not hold losslessly (float from int, int32 from int64) throws diffpool::InputError.
// Wrong arguments (shape and value count disagree) are internal errors (DP_CHECK, diffpool::Error).
//
// HDF5 (serial build) is not thread-safe: use these types from one thread at a time. One writer per
// file: while a process has a file open for writing, HDF5's file locking makes other processes fail
// to open it (the error message says how to bypass that, see FileLocking).
#include <hdf5.h>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "engine/core/error.hpp"

namespace diffpool::hdf5 {

// ---------------------------------------------------------------------------------------------
// One lock for the whole HDF5 library in this process.
//
// The serial HDF5 build keeps global state (identifiers, the error stack, caches), so two threads
// must never be inside it at the same time, even on different files. Every complete operation of
// results/ (write_file_atomically, is_readable_hdf5, the job record and summary readers and writers)
// holds this mutex; code that uses File, Group or Dataset directly from more than one thread must
// hold it too, for as long as any of those objects is alive:
//
//   const std::scoped_lock lock(diffpool::hdf5::library_mutex());
//
// It is recursive, so a locked operation may call another one.
std::recursive_mutex& library_mutex() noexcept;

// ---------------------------------------------------------------------------------------------
// Handle: owns one hid_t.

class Handle {
 public:
  using CloseFunction = herr_t (*)(hid_t);

  Handle() noexcept = default;
  // Takes ownership of `id` (which may be negative: an invalid, empty handle), closed by `close`.
  Handle(hid_t id, CloseFunction close) noexcept : id_(id), close_(close) {}
  ~Handle() { close_quietly(); }

  Handle(Handle&& other) noexcept : id_(other.id_), close_(other.close_) { other.id_ = H5I_INVALID_HID; }
  Handle& operator=(Handle&& other) noexcept;
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  hid_t id() const noexcept { return id_; }
  bool valid() const noexcept { return id_ >= 0; }
  explicit operator bool() const noexcept { return valid(); }

  // Closes now; a failure throws LibraryError (the destructor closes too but ignores failures).
  void close();
  // Gives up ownership without closing.
  hid_t release() noexcept;

 private:
  void close_quietly() noexcept;

  hid_t id_ = H5I_INVALID_HID;
  CloseFunction close_ = nullptr;
};

// ---------------------------------------------------------------------------------------------
// Element types and shapes.

template <class T>
concept Numeric = std::same_as<T, float> || std::same_as<T, double> || std::same_as<T, std::int32_t> ||
                  std::same_as<T, std::int64_t> || std::same_as<T, std::uint8_t> ||
                  std::same_as<T, std::uint64_t>;

// How the numeric types are stored in files: IEEE little-endian floats, little-endian integers.
enum class ElementType { float32, float64, int32, int64, uint8, uint64 };

template <Numeric T>
constexpr ElementType element_type_of() {
  if constexpr (std::same_as<T, float>) return ElementType::float32;
  else if constexpr (std::same_as<T, double>) return ElementType::float64;
  else if constexpr (std::same_as<T, std::int32_t>) return ElementType::int32;
  else if constexpr (std::same_as<T, std::int64_t>) return ElementType::int64;
  else if constexpr (std::same_as<T, std::uint8_t>) return ElementType::uint8;
  else return ElementType::uint64;
}
std::string_view element_type_name(ElementType type);

using Dimensions = std::vector<std::size_t>;  // empty: a scalar
std::size_t element_count(const Dimensions& shape);  // product of the extents; 1 for a scalar
std::string format_shape(const Dimensions& shape);   // "(3, 4)", "()" for a scalar

template <Numeric T>
struct Array {
  std::vector<T> values;  // row-major, values.size() == element_count(shape)
  Dimensions shape;
};

// How a numeric dataset is laid out. The default is contiguous and uncompressed, best for small
// data. With gzip_level 1-9 the dataset is chunked, byte-shuffled and deflate-compressed; empty
// and scalar datasets are always stored contiguous (HDF5 cannot chunk them).
struct DatasetOptions {
  int gzip_level = 0;      // 0: no compression; 1 (fast) to 9 (small)
  Dimensions chunk_shape;  // empty: whole trailing rows, about 256 KiB per chunk
  bool shuffle = true;     // byte shuffle before deflate; helps floats compress

  static DatasetOptions compressed(int level = 4) { return DatasetOptions{level, {}, true}; }
};

// File locking (HDF5 >= 1.10.7): while a writer has a file open, readers in other processes fail.
// `disabled` reads anyway, like HDF5_USE_FILE_LOCKING=FALSE does for every open; the contents seen
// while a writer is active may be incomplete.
enum class FileLocking { library_default, disabled };

class Group;
class Dataset;

namespace detail {
template <class T>
struct IsVector : std::false_type {};
template <class T>
struct IsVector<std::vector<T>> : std::true_type {};
// Called with the stored shape; returns where to put element_count(shape) values.
using Allocate = std::function<void*(const Dimensions& shape)>;
}  // namespace detail

// ---------------------------------------------------------------------------------------------
// Object: a file (its root group), a group or a dataset; carries attributes.

class Object {
 public:
  hid_t id() const noexcept { return handle_.id(); }
  bool valid() const noexcept { return handle_.valid(); }
  // The object's path inside the file ("/" for a file, "/metrics/loss" for a dataset).
  std::string name() const;
  // The name of the file the object lives in, as it was opened.
  std::string file_name() const;
  // Closes the object now and reports a failure (the destructor closes quietly); afterwards
  // valid() is false. Closing a File whose groups or datasets are still open leaves HDF5 holding
  // the file open until they are closed too.
  void close() { handle_.close(); }

  // Scalar attributes: any integer is stored as int64, any floating-point value as float64, text as a
  // variable-length UTF-8 string. An existing attribute of the same name is replaced.
  template <std::integral T>
  void set_attribute(std::string_view name, T value) {
    if constexpr (std::is_unsigned_v<T> && sizeof(T) >= sizeof(std::int64_t)) {
      DP_CHECK(value <= static_cast<T>(std::numeric_limits<std::int64_t>::max()),
               "attribute '{}' = {} does not fit into int64", name, value);
    }
    const auto stored = static_cast<std::int64_t>(value);
    set_numeric_attribute(name, ElementType::int64, &stored, {});
  }
  template <std::floating_point T>
  void set_attribute(std::string_view name, T value) {
    const auto stored = static_cast<double>(value);
    set_numeric_attribute(name, ElementType::float64, &stored, {});
  }
  void set_attribute(std::string_view name, std::string_view value);
  // A scalar stored as uint64 (set_attribute stores every integer as int64): for 64-bit seeds and
  // hashes that may not fit into int64. Read back with read_attribute<std::uint64_t>.
  void set_unsigned_attribute(std::string_view name, std::uint64_t value) {
    set_numeric_attribute(name, ElementType::uint64, &value, {});
  }
  // 1-D numeric attributes.
  template <Numeric T>
  void set_attribute(std::string_view name, std::span<const T> values) {
    set_numeric_attribute(name, element_type_of<T>(), values.data(), Dimensions{values.size()});
  }
  template <Numeric T>
  void set_attribute(std::string_view name, const std::vector<T>& values) {
    set_attribute(name, std::span<const T>(values));
  }

  // read_attribute<T>: T is a Numeric scalar (std::int64_t, double, ...), std::string, or a
  // std::vector of a Numeric type (any stored rank is flattened). Widening conversions are allowed
  // (int32 -> int64, float32 -> double); anything lossy throws InputError naming both types.
  template <class T>
  T read_attribute(std::string_view name) const;

  bool has_attribute(std::string_view name) const;
  std::vector<std::string> attribute_names() const;  // sorted by name
  void remove_attribute(std::string_view name);

 protected:
  Object() = default;
  explicit Object(Handle handle) : handle_(std::move(handle)) {}

  Handle handle_;

 private:
  void set_numeric_attribute(std::string_view name, ElementType type, const void* data,
                             const Dimensions& shape);
  void read_numeric_attribute(std::string_view name, ElementType type,
                              const detail::Allocate& allocate) const;
  std::string read_string_attribute(std::string_view name) const;
};

template <class T>
T Object::read_attribute(std::string_view name) const {
  if constexpr (std::same_as<T, std::string>) {
    return read_string_attribute(name);
  } else if constexpr (Numeric<T>) {
    T value{};
    read_numeric_attribute(name, element_type_of<T>(), [&](const Dimensions& shape) -> void* {
      if (element_count(shape) != 1) {
        throw InputError(fmt::format("HDF5: attribute '{}' of '{}' in file '{}' has shape {}, not a scalar",
                                     name, this->name(), this->file_name(), format_shape(shape)));
      }
      return &value;
    });
    return value;
  } else if constexpr (detail::IsVector<T>::value && Numeric<typename T::value_type>) {
    T values;
    read_numeric_attribute(name, element_type_of<typename T::value_type>(),
                           [&](const Dimensions& shape) -> void* {
                             values.resize(element_count(shape));
                             return values.data();
                           });
    return values;
  } else {
    static_assert(sizeof(T) == 0, "read_attribute<T>: T must be Numeric, std::string or std::vector<Numeric>");
  }
}

// ---------------------------------------------------------------------------------------------
// Dataset.

class Dataset : public Object {
 public:
  Dimensions shape() const;
  bool holds_strings() const;
  // "float32", "int64", "string", ...: the stored element type, for messages.
  std::string stored_type_name() const;

  template <Numeric T>
  Array<T> read() const {
    Array<T> array;
    read_numeric(element_type_of<T>(), [&](const Dimensions& shape) -> void* {
      array.shape = shape;
      array.values.resize(element_count(shape));
      return array.values.data();
    });
    return array;
  }
  std::string read_string() const;                // a scalar string dataset
  std::vector<std::string> read_strings() const;  // a 1-D string dataset

 private:
  friend class Location;
  explicit Dataset(Handle handle) : Object(std::move(handle)) {}
  void read_numeric(ElementType type, const detail::Allocate& allocate) const;
};

// ---------------------------------------------------------------------------------------------
// Location: a file or a group. Paths are relative ("a/b/c") or absolute ("/a/b/c"); every create
// makes the missing intermediate groups.

class Location : public Object {
 public:
  Group create_group(std::string_view path);   // fails if it exists
  Group require_group(std::string_view path);  // opens it, or creates it
  Group open_group(std::string_view path) const;
  Dataset open_dataset(std::string_view path) const;
  // Whether a link at `path` exists and leads to an object; false where an intermediate is missing.
  bool exists(std::string_view path) const;
  // Names of the direct children (groups, datasets, links), sorted by name.
  std::vector<std::string> children() const;

  // Numeric datasets, any rank (0-D scalar, 1-D, 2-D, 3-D, ...). Fails if `path` exists.
  template <Numeric T>
  Dataset write_dataset(std::string_view path, std::span<const T> values, const Dimensions& shape,
                        const DatasetOptions& options = {}) {
    return write_numeric(path, element_type_of<T>(), values.data(), values.size(), shape, options);
  }
  template <Numeric T>
  Dataset write_dataset(std::string_view path, const std::vector<T>& values, const Dimensions& shape,
                        const DatasetOptions& options = {}) {
    return write_dataset(path, std::span<const T>(values), shape, options);
  }
  // 1-D, shape (values.size()), uncompressed. (No options argument here: `{}` in the third place
  // must mean a scalar shape, without ambiguity.)
  template <Numeric T>
  Dataset write_dataset(std::string_view path, const std::vector<T>& values) {
    return write_dataset(path, std::span<const T>(values), Dimensions{values.size()});
  }
  template <Numeric T>
  Array<T> read_dataset(std::string_view path) const {
    return open_dataset(path).read<T>();
  }

  // Strings are variable-length UTF-8: a scalar dataset, or a 1-D array of strings.
  Dataset write_string(std::string_view path, std::string_view value);
  Dataset write_strings(std::string_view path, const std::vector<std::string>& values);
  std::string read_string(std::string_view path) const { return open_dataset(path).read_string(); }
  std::vector<std::string> read_strings(std::string_view path) const {
    return open_dataset(path).read_strings();
  }

 protected:
  Location() = default;
  explicit Location(Handle handle) : Object(std::move(handle)) {}

 private:
  Dataset write_numeric(std::string_view path, ElementType type, const void* data, std::size_t count,
                        const Dimensions& shape, const DatasetOptions& options);
  Dataset write_string_values(std::string_view path, const std::vector<std::string>& values, bool scalar);
};

class Group : public Location {
 private:
  friend class Location;
  explicit Group(Handle handle) : Location(std::move(handle)) {}
};

// ---------------------------------------------------------------------------------------------
// File.

class File : public Location {
 public:
  // Creates `path`, truncating an existing file. With user_block_bytes (0, or a power of two >= 512)
  // the HDF5 data start after that many bytes, which HDF5 leaves to the caller (the checksum block
  // of write_file_atomically, see checksum_block.hpp).
  static File create(const std::filesystem::path& path, std::size_t user_block_bytes = 0);
  // A file held in memory only (HDF5's core driver without a backing store): nothing is read from
  // or written to `name` (which names it in messages and path()); image() gives its bytes. Closing
  // it does no I/O, so it cannot fail for a full disk and leave HDF5 holding a half-flushed file.
  static File create_in_memory(const std::filesystem::path& name, std::size_t user_block_bytes = 0);
  // The bytes of a file made by create_in_memory, flushed, as from the end of its user block (the
  // caller writes the user block's bytes before them: HDF5 finds its signature after it).
  std::vector<char> image();
  // Both opens first check the file's checksum block with plain reads (verify_checksum_block): a
  // damaged file throws DamagedFileError (a LibraryError) naming it, and libhdf5 never sees it. A
  // file without the block (an earlier version's) gets libhdf5's own checks only.
  static File open_read_only(const std::filesystem::path& path,
                             FileLocking locking = FileLocking::library_default);
  static File open_read_write(const std::filesystem::path& path);
  // The file opened read-only when is_readable_hdf5(path) holds, else nothing; never throws. A
  // file whose checksum block verifies is opened once, as open_read_only would (the open is the
  // rest of the check: superblock, length, no writer holding it); one of an earlier version gets
  // is_readable_hdf5's object walk first. Hold library_mutex() while the file is used and closed.
  static std::optional<File> open_if_readable(const std::filesystem::path& path) noexcept;

  // Writes everything buffered to the operating system (not fsync: see write_file_atomically).
  void flush();
  // Open objects in this file (groups, datasets, attributes, types), this file handle included.
  std::size_t open_object_count() const;

  const std::filesystem::path& path() const noexcept { return path_; }

 private:
  File(Handle handle, std::filesystem::path path) : Location(std::move(handle)), path_(std::move(path)) {}
  std::filesystem::path path_;
};

// True when `path` is an HDF5 file whose checksum block matches and that opens, or, for a file
// without the block (an earlier version's), that opens and whose every object header (groups,
// datasets, attributes' owners) can be read: false for missing, empty, truncated or corrupt files,
// and for a file another process holds open for writing. Never prints and never throws. Raw data
// are read only by the checksum.
bool is_readable_hdf5(const std::filesystem::path& path) noexcept;

// Why `path` is not readable in the sense of is_readable_hdf5 ("truncated: it is 1000 bytes
// long, ...", "corrupt: ...", "not a regular file", "libhdf5 cannot open it", ...), or "" when it
// is. Never prints and never throws.
std::string damage_of(const std::filesystem::path& path) noexcept;

}  // namespace diffpool::hdf5
