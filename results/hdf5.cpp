#include "results/hdf5.hpp"

#include "results/checksum_block.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstring>
#include <system_error>
#include <utility>

namespace diffpool::hdf5 {

namespace {

// ---------------------------------------------------------------------------------------------
// Errors.

// Switches off HDF5's automatic printing of its error stack to stderr for one call of ours and
// restores what was there before, so code elsewhere in the process that wants the printing keeps it.
class Quiet {
 public:
  Quiet() noexcept {
    H5Eget_auto2(H5E_DEFAULT, &previous_function_, &previous_data_);
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  }
  ~Quiet() { H5Eset_auto2(H5E_DEFAULT, previous_function_, previous_data_); }
  Quiet(const Quiet&) = delete;
  Quiet& operator=(const Quiet&) = delete;

 private:
  H5E_auto2_t previous_function_ = nullptr;
  void* previous_data_ = nullptr;
};

// The current error stack, outermost call (the API function) first, root cause last, as
// "function(): description" lines; clears the stack. Must run before any other HDF5 call, since
// every API call starts by clearing the stack.
std::vector<std::string> take_error_stack() {
  std::vector<std::string> lines;
  auto collect = [](unsigned, const H5E_error2_t* error, void* data) -> herr_t {
    try {
      auto& out = *static_cast<std::vector<std::string>*>(data);
      std::string line = fmt::format("{}(): {}", error->func_name ? error->func_name : "?",
                                     error->desc ? error->desc : "(no description)");
      std::replace(line.begin(), line.end(), '\n', ' ');  // H5F_open puts a ctime() string in its text
      out.push_back(std::move(line));
    } catch (...) {
      return -1;
    }
    return 0;
  };
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, collect, &lines);
  H5Eclear2(H5E_DEFAULT);
  return lines;
}

std::string join_stack(const std::vector<std::string>& stack) {
  if (stack.empty()) return "(HDF5 reported no error stack)";
  std::string joined;
  for (const auto& line : stack) {
    if (!joined.empty()) joined += "; ";
    joined += line;
  }
  return joined;
}

// HDF5's own words for a file lock held by another process ("unable to lock file, errno = 11").
// Matching "lock" alone would also match "superblock", which every damaged file's stack names.
bool mentions_locking(const std::vector<std::string>& stack) {
  return std::any_of(stack.begin(), stack.end(),
                     [](const std::string& line) { return line.find("unable to lock file") != std::string::npos; });
}

// The stack of a file that exists but is not a whole HDF5 file: no signature (not HDF5, or
// zeroed), a superblock that cannot be read, or an end of file before the one it records.
bool mentions_damage(const std::vector<std::string>& stack) {
  return std::any_of(stack.begin(), stack.end(), [](const std::string& line) {
    for (const char* words : {"signature", "superblock", "truncated", "bad object header", "checksum"}) {
      if (line.find(words) != std::string::npos) return true;
    }
    return false;
  });
}

// Reads a name through the HDF5 "ask for the length, then fill" protocol; "" on failure.
template <class Getter>
std::string query_name(Getter getter) {
  const auto length = getter(nullptr, 0);
  if (length <= 0) {
    H5Eclear2(H5E_DEFAULT);
    return {};
  }
  std::string name(static_cast<std::size_t>(length) + 1, '\0');
  if (getter(name.data(), name.size()) < 0) {
    H5Eclear2(H5E_DEFAULT);
    return {};
  }
  name.resize(static_cast<std::size_t>(length));
  return name;
}

std::string object_path_of(hid_t id) {
  return query_name([id](char* buffer, std::size_t size) { return H5Iget_name(id, buffer, size); });
}
std::string file_name_of(hid_t id) {
  return query_name([id](char* buffer, std::size_t size) { return H5Fget_name(id, buffer, size); });
}

std::string join_path(const std::string& base, std::string_view name) {
  if (name.empty()) return base.empty() ? std::string("/") : base;
  if (name.front() == '/' || base.empty()) return std::string(name);
  if (base.back() == '/') return base + std::string(name);
  return base + "/" + std::string(name);
}

// What a name given with a location means: a path to an object, or an attribute of the location.
enum class NameKind { object_path, attribute };

// "'/metrics/loss' in file 'job.h5'" or "'unit' of '/metrics/loss' in file 'job.h5'".
std::string describe_place(hid_t location, std::string_view name, NameKind kind) {
  const std::string object = object_path_of(location);
  std::string file = file_name_of(location);
  if (file.empty()) file = "?";
  if (kind == NameKind::attribute) {
    return fmt::format("'{}' of '{}' in file '{}'", name, object.empty() ? "?" : object, file);
  }
  return fmt::format("'{}' in file '{}'", join_path(object, name), file);
}

// Throws LibraryError for a failed call on `name` relative to the object `location`, e.g.
// "HDF5: cannot open dataset '/metrics/loss' in file 'job.h5': H5Dopen2(): ...; ...".
[[noreturn]] void throw_error(std::string_view operation, hid_t location, std::string_view name,
                              NameKind kind = NameKind::object_path) {
  const auto stack = take_error_stack();
  throw LibraryError(
      fmt::format("HDF5: {} {}: {}", operation, describe_place(location, name, kind), join_stack(stack)));
}

hid_t check_id(hid_t id, std::string_view operation, hid_t location, std::string_view name,
               NameKind kind = NameKind::object_path) {
  if (id < 0) throw_error(operation, location, name, kind);
  return id;
}
void check_status(herr_t status, std::string_view operation, hid_t location, std::string_view name,
                  NameKind kind = NameKind::object_path) {
  if (status < 0) throw_error(operation, location, name, kind);
}

enum class OpenMode { create, read_only, read_write };

[[noreturn]] void throw_file_error(OpenMode mode, const std::filesystem::path& path) {
  const auto stack = take_error_stack();
  const std::string what =
      mode == OpenMode::create
          ? fmt::format("create file '{}'", path.string())
          : fmt::format("open file '{}' for {}", path.string(), mode == OpenMode::read_only ? "reading" : "writing");
  std::string hint;
  std::error_code ignored;
  if (mode != OpenMode::create && !std::filesystem::exists(path, ignored)) {
    hint = "the file does not exist. ";
  } else if (mentions_locking(stack) && mode == OpenMode::read_only) {
    hint = "the file is locked: another process has it open for writing (HDF5 file locking). Wait until "
           "the writer has closed it, or start the reading process with HDF5_USE_FILE_LOCKING=FALSE in its "
           "environment to read it anyway (contents read while a writer is active may be incomplete). ";
  } else if (mentions_locking(stack)) {
    hint = "the file is locked: another process has it open (HDF5 allows one writer per file and no "
           "readers while it writes; HDF5_USE_FILE_LOCKING=FALSE disables the lock, at the risk of "
           "corrupting the file). ";
  } else if (mode != OpenMode::create && mentions_damage(stack)) {
    hint = "the file is damaged: it is truncated or corrupt, not a complete HDF5 file (a copy cut short, "
           "a full disk, or a writer killed outside diffpool's atomic writes). ";
  }
  throw LibraryError(fmt::format("HDF5: cannot {}: {}HDF5 error stack: {}", what, hint, join_stack(stack)));
}

// ---------------------------------------------------------------------------------------------
// Types.

hid_t memory_type(ElementType type) {
  switch (type) {
    case ElementType::float32: return H5T_NATIVE_FLOAT;
    case ElementType::float64: return H5T_NATIVE_DOUBLE;
    case ElementType::int32: return H5T_NATIVE_INT32;
    case ElementType::int64: return H5T_NATIVE_INT64;
    case ElementType::uint8: return H5T_NATIVE_UINT8;
    case ElementType::uint64: return H5T_NATIVE_UINT64;
  }
  DP_CHECK(false, "unknown ElementType {}", static_cast<int>(type));
  return H5I_INVALID_HID;
}

hid_t file_type(ElementType type) {
  switch (type) {
    case ElementType::float32: return H5T_IEEE_F32LE;
    case ElementType::float64: return H5T_IEEE_F64LE;
    case ElementType::int32: return H5T_STD_I32LE;
    case ElementType::int64: return H5T_STD_I64LE;
    case ElementType::uint8: return H5T_STD_U8LE;
    case ElementType::uint64: return H5T_STD_U64LE;
  }
  DP_CHECK(false, "unknown ElementType {}", static_cast<int>(type));
  return H5I_INVALID_HID;
}

std::size_t element_size(ElementType type) {
  switch (type) {
    case ElementType::float32: return 4;
    case ElementType::float64: return 8;
    case ElementType::int32: return 4;
    case ElementType::int64: return 8;
    case ElementType::uint8: return 1;
    case ElementType::uint64: return 8;
  }
  return 1;
}

bool is_float(ElementType type) { return type == ElementType::float32 || type == ElementType::float64; }
bool is_signed(ElementType type) { return type == ElementType::int32 || type == ElementType::int64; }

// "float32", "int16", "uint8", "string", ...
std::string describe_type(hid_t type) {
  const std::size_t bits = 8 * H5Tget_size(type);
  switch (H5Tget_class(type)) {
    case H5T_INTEGER: return fmt::format("{}int{}", H5Tget_sign(type) == H5T_SGN_NONE ? "u" : "", bits);
    case H5T_FLOAT: return fmt::format("float{}", bits);
    case H5T_STRING: return "string";
    case H5T_COMPOUND: return "compound";
    case H5T_ENUM: return "enum";
    case H5T_ARRAY: return "array";
    case H5T_VLEN: return "variable-length sequence";
    case H5T_OPAQUE: return "opaque";
    case H5T_REFERENCE: return "reference";
    case H5T_BITFIELD: return "bitfield";
    case H5T_TIME: return "time";
    default: return "unknown type";
  }
}

// Whether HDF5's conversion of the stored type into `requested` keeps every value: same class and
// no narrowing (int32 -> int64 and float32 -> float64 are fine; int64 -> int32, int -> float are not).
bool converts_losslessly(hid_t stored, ElementType requested) {
  const std::size_t stored_size = H5Tget_size(stored);
  const std::size_t requested_size = element_size(requested);
  switch (H5Tget_class(stored)) {
    case H5T_FLOAT: return is_float(requested) && stored_size <= requested_size;
    case H5T_INTEGER: {
      if (is_float(requested)) return false;
      const bool stored_signed = H5Tget_sign(stored) != H5T_SGN_NONE;
      if (is_signed(requested)) return stored_signed ? stored_size <= requested_size : stored_size < requested_size;
      return !stored_signed && stored_size <= requested_size;
    }
    default: return false;
  }
}

void check_readable_as(hid_t stored, ElementType requested, std::string_view what, hid_t object,
                       std::string_view name, NameKind kind) {
  if (converts_losslessly(stored, requested)) return;
  throw InputError(fmt::format("HDF5: {} {} holds {}, which cannot be read as {} without loss", what,
                               describe_place(object, name, kind), describe_type(stored),
                               element_type_name(requested)));
}

// A variable-length UTF-8 string type.
Handle make_string_type(H5T_cset_t cset = H5T_CSET_UTF8) {
  Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  if (!type || H5Tset_size(type.id(), H5T_VARIABLE) < 0 || H5Tset_cset(type.id(), cset) < 0) {
    throw_error("cannot make a string type for", H5I_INVALID_HID, "");
  }
  return type;
}

// ---------------------------------------------------------------------------------------------
// Dataspaces and property lists.

Handle make_space(const Dimensions& shape, hid_t location, std::string_view name,
                  NameKind kind = NameKind::object_path) {
  if (shape.empty()) {
    return Handle(check_id(H5Screate(H5S_SCALAR), "cannot make a scalar dataspace for", location, name, kind),
                  H5Sclose);
  }
  const std::vector<hsize_t> dims(shape.begin(), shape.end());
  return Handle(check_id(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
                         "cannot make a dataspace for", location, name, kind),
                H5Sclose);
}

// The extents of a dataspace: {} for a scalar, {0} for HDF5's "null" (no data) dataspace.
Dimensions read_shape(hid_t space, hid_t location, std::string_view name, NameKind kind = NameKind::object_path) {
  const H5S_class_t space_class = H5Sget_simple_extent_type(space);
  if (space_class == H5S_NULL) return Dimensions{0};
  if (space_class == H5S_SCALAR) return {};
  const int rank = H5Sget_simple_extent_ndims(space);
  if (rank < 0) throw_error("cannot read the shape of", location, name, kind);
  std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
  check_status(H5Sget_simple_extent_dims(space, dims.data(), nullptr), "cannot read the shape of", location,
               name, kind);
  return Dimensions(dims.begin(), dims.end());
}

// A damaged file can claim any shape. Values never take more than what the file stores for them
// inflated by deflate's largest ratio (about 1032:1), so a larger claim is refused before anything
// is allocated (tests/fuzz found a shape of 2^40 elements: an allocation of 8 TiB).
void check_claimed_size(const Dimensions& shape, std::size_t element_bytes, hsize_t stored_bytes, hid_t location,
                        std::string_view name, NameKind kind) {
  constexpr uint64_t kMaxInflation = 1100;
  uint64_t bytes = element_bytes;
  for (const auto extent : shape) {
    if (extent != 0 && bytes > UINT64_MAX / extent) {
      bytes = UINT64_MAX;
      break;
    }
    bytes *= extent;
  }
  if (bytes / kMaxInflation <= stored_bytes) return;
  throw InputError(fmt::format("HDF5: {} has shape {} ({} bytes of values), but the file stores {} bytes for it: "
                               "the file is damaged", describe_place(location, name, kind),
                               format_shape(shape), bytes, stored_bytes));
}

// Link creation: make missing intermediate groups, names are UTF-8.
Handle link_create_properties(hid_t location, std::string_view name) {
  Handle lcpl(check_id(H5Pcreate(H5P_LINK_CREATE), "cannot make link properties for", location, name),
              H5Pclose);
  check_status(H5Pset_create_intermediate_group(lcpl.id(), 1), "cannot set link properties for", location,
               name);
  check_status(H5Pset_char_encoding(lcpl.id(), H5T_CSET_UTF8), "cannot set link properties for", location,
               name);
  return lcpl;
}

// Chunks of whole trailing rows, about 256 KiB: HDF5's default chunk cache is 1 MiB per dataset and
// chunks between 10 KiB and 1 MiB read and compress well. The leading extents are halved first.
std::vector<hsize_t> choose_chunk(const Dimensions& shape, std::size_t bytes_per_element,
                                  const Dimensions& requested) {
  std::vector<hsize_t> chunk(shape.begin(), shape.end());
  if (!requested.empty()) {
    DP_CHECK(requested.size() == shape.size(), "chunk shape {} does not match the rank of shape {}",
             format_shape(requested), format_shape(shape));
    for (std::size_t d = 0; d < shape.size(); ++d) {
      DP_CHECK(requested[d] > 0, "chunk shape {} has a zero extent", format_shape(requested));
      chunk[d] = std::min<hsize_t>(requested[d], shape[d]);
    }
    return chunk;
  }
  constexpr std::size_t target_bytes = std::size_t{256} << 10;
  auto bytes = [&] {
    std::size_t total = bytes_per_element;
    for (const auto extent : chunk) total *= extent;
    return total;
  };
  for (std::size_t d = 0; d < chunk.size() && bytes() > target_bytes; ++d) {
    while (chunk[d] > 1 && bytes() > target_bytes) chunk[d] = (chunk[d] + 1) / 2;
  }
  return chunk;
}

// ---------------------------------------------------------------------------------------------
// Strings (datasets and attributes share this).

void check_holds_strings(hid_t stored, hid_t owner, std::string_view name, NameKind kind) {
  if (H5Tget_class(stored) == H5T_STRING) return;
  throw InputError(fmt::format("HDF5: {} {} holds {}, not strings", kind == NameKind::attribute ? "attribute" : "dataset",
                               describe_place(owner, name, kind), describe_type(stored)));
}

// Reads `count` strings from `source` (a dataset, or an attribute when `is_attribute`), whose stored
// type is `stored`; `owner` and `name` say where it is, for messages. Variable-length and
// fixed-length strings (numpy's "S" arrays) are both read.
std::vector<std::string> read_string_values(hid_t source, bool is_attribute, hid_t stored, hid_t space,
                                            std::size_t count, hid_t owner, std::string_view name) {
  const NameKind kind = is_attribute ? NameKind::attribute : NameKind::object_path;
  const char* what = is_attribute ? "attribute" : "dataset";
  check_holds_strings(stored, owner, name, kind);
  auto read = [&](hid_t type, void* buffer) {
    const herr_t status = is_attribute ? H5Aread(source, type, buffer)
                                       : H5Dread(source, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buffer);
    check_status(status, fmt::format("cannot read {}", what), owner, name, kind);
  };
  std::vector<std::string> values;
  values.reserve(count);
  if (count == 0) return values;
  const H5T_cset_t cset = H5Tget_cset(stored);
  if (H5Tis_variable_str(stored) > 0) {
    const Handle type = make_string_type(cset);
    std::vector<char*> pointers(count, nullptr);
    read(type.id(), pointers.data());
    for (const char* pointer : pointers) values.emplace_back(pointer ? pointer : "");
#if H5_VERSION_GE(1, 12, 0)
    H5Treclaim(type.id(), space, H5P_DEFAULT, pointers.data());
#else
    H5Dvlen_reclaim(type.id(), space, H5P_DEFAULT, pointers.data());
#endif
    return values;
  }
  const std::size_t size = H5Tget_size(stored);
  const Handle type(check_id(H5Tcopy(stored), "cannot copy the string type of", owner, name, kind), H5Tclose);
  const bool space_padded = H5Tget_strpad(stored) == H5T_STR_SPACEPAD;
  std::vector<char> buffer(count * size);
  read(type.id(), buffer.data());
  for (std::size_t i = 0; i < count; ++i) {
    std::string_view text(buffer.data() + i * size, size);
    if (space_padded) {
      text = text.substr(0, text.find_last_not_of(' ') + 1);
    } else if (const auto end = text.find('\0'); end != std::string_view::npos) {
      text = text.substr(0, end);
    }
    values.emplace_back(text);
  }
  return values;
}

void check_no_nul(std::string_view value, std::string_view path) {
  DP_CHECK(value.find('\0') == std::string_view::npos,
           "string for '{}' contains a NUL character, which HDF5 strings cannot hold", path);
}

// ---------------------------------------------------------------------------------------------
// Iteration callbacks.

herr_t collect_link_name(hid_t, const char* name, const H5L_info_t*, void* data) {
  try {
    static_cast<std::vector<std::string>*>(data)->emplace_back(name);
  } catch (...) {
    return -1;
  }
  return 0;
}

herr_t collect_attribute_name(hid_t, const char* name, const H5A_info_t*, void* data) {
  try {
    static_cast<std::vector<std::string>*>(data)->emplace_back(name);
  } catch (...) {
    return -1;
  }
  return 0;
}

// Opens every object a hard link leads to (reads its header); stops at the first failure.
herr_t open_linked_object(hid_t group, const char* name, const H5L_info_t* info, void*) {
  if (info->type != H5L_TYPE_HARD) return 0;
  const hid_t object = H5Oopen(group, name, H5P_DEFAULT);
  if (object < 0) return -1;
  return H5Oclose(object) < 0 ? -1 : 0;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Handle.

Handle& Handle::operator=(Handle&& other) noexcept {
  if (this != &other) {
    close_quietly();
    id_ = std::exchange(other.id_, H5I_INVALID_HID);
    close_ = other.close_;
  }
  return *this;
}

void Handle::close() {
  if (!valid() || close_ == nullptr) return;
  const Quiet quiet;
  const hid_t id = std::exchange(id_, H5I_INVALID_HID);
  // Ask for the names before closing: afterwards the id is gone.
  const std::string path = object_path_of(id);
  const std::string file = file_name_of(id);
  if (close_(id) < 0) {
    const auto stack = take_error_stack();
    throw LibraryError(fmt::format("HDF5: cannot close '{}' in file '{}': {}", path, file, join_stack(stack)));
  }
}

hid_t Handle::release() noexcept { return std::exchange(id_, H5I_INVALID_HID); }

void Handle::close_quietly() noexcept {
  if (!valid() || close_ == nullptr) return;
  const Quiet quiet;
  if (close_(std::exchange(id_, H5I_INVALID_HID)) < 0) H5Eclear2(H5E_DEFAULT);
}

// ---------------------------------------------------------------------------------------------
// Element types and shapes.

std::string_view element_type_name(ElementType type) {
  switch (type) {
    case ElementType::float32: return "float32";
    case ElementType::float64: return "float64";
    case ElementType::int32: return "int32";
    case ElementType::int64: return "int64";
    case ElementType::uint8: return "uint8";
    case ElementType::uint64: return "uint64";
  }
  return "unknown";
}

std::size_t element_count(const Dimensions& shape) {
  std::size_t count = 1;
  for (const auto extent : shape) count *= extent;
  return count;
}

std::string format_shape(const Dimensions& shape) {
  if (shape.size() == 1) return fmt::format("({},)", shape[0]);
  return fmt::format("({})", fmt::join(shape, ", "));
}

// ---------------------------------------------------------------------------------------------
// Object.

std::string Object::name() const {
  const Quiet quiet;
  return object_path_of(id());
}

std::string Object::file_name() const {
  const Quiet quiet;
  return file_name_of(id());
}

void Object::set_attribute(std::string_view name, std::string_view value) {
  const Quiet quiet;
  const std::string attribute_name(name);
  check_no_nul(value, attribute_name);
  if (H5Aexists(id(), attribute_name.c_str()) > 0) {
    check_status(H5Adelete(id(), attribute_name.c_str()), "cannot replace attribute", id(), attribute_name, NameKind::attribute);
  }
  const Handle type = make_string_type();
  const Handle space = make_space({}, id(), attribute_name, NameKind::attribute);
  const Handle attribute(check_id(H5Acreate2(id(), attribute_name.c_str(), type.id(), space.id(), H5P_DEFAULT,
                                             H5P_DEFAULT),
                                  "cannot create attribute", id(), attribute_name, NameKind::attribute),
                         H5Aclose);
  const std::string text(value);
  const char* pointer = text.c_str();
  check_status(H5Awrite(attribute.id(), type.id(), &pointer), "cannot write attribute", id(), attribute_name, NameKind::attribute);
}

void Object::set_numeric_attribute(std::string_view name, ElementType type, const void* data,
                                   const Dimensions& shape) {
  const Quiet quiet;
  const std::string attribute_name(name);
  if (H5Aexists(id(), attribute_name.c_str()) > 0) {
    check_status(H5Adelete(id(), attribute_name.c_str()), "cannot replace attribute", id(), attribute_name, NameKind::attribute);
  }
  const Handle space = make_space(shape, id(), attribute_name, NameKind::attribute);
  const Handle attribute(check_id(H5Acreate2(id(), attribute_name.c_str(), file_type(type), space.id(),
                                             H5P_DEFAULT, H5P_DEFAULT),
                                  "cannot create attribute", id(), attribute_name, NameKind::attribute),
                         H5Aclose);
  if (element_count(shape) == 0) return;
  check_status(H5Awrite(attribute.id(), memory_type(type), data), "cannot write attribute", id(),
               attribute_name, NameKind::attribute);
}

void Object::read_numeric_attribute(std::string_view name, ElementType type,
                                    const detail::Allocate& allocate) const {
  const Quiet quiet;
  const std::string attribute_name(name);
  const Handle attribute(check_id(H5Aopen(id(), attribute_name.c_str(), H5P_DEFAULT), "cannot open attribute",
                                  id(), attribute_name, NameKind::attribute),
                         H5Aclose);
  const Handle stored(check_id(H5Aget_type(attribute.id()), "cannot read the type of attribute", id(),
                               attribute_name, NameKind::attribute),
                      H5Tclose);
  check_readable_as(stored.id(), type, "attribute", id(), attribute_name, NameKind::attribute);
  const Handle space(check_id(H5Aget_space(attribute.id()), "cannot read the shape of attribute", id(),
                              attribute_name, NameKind::attribute),
                     H5Sclose);
  const Dimensions shape = read_shape(space.id(), id(), attribute_name, NameKind::attribute);
  check_claimed_size(shape, H5Tget_size(memory_type(type)), H5Aget_storage_size(attribute.id()), id(), attribute_name,
                     NameKind::attribute);
  void* data = allocate(shape);
  if (element_count(shape) == 0) return;
  check_status(H5Aread(attribute.id(), memory_type(type), data), "cannot read attribute", id(), attribute_name, NameKind::attribute);
}

std::string Object::read_string_attribute(std::string_view name) const {
  const Quiet quiet;
  const std::string attribute_name(name);
  const Handle attribute(check_id(H5Aopen(id(), attribute_name.c_str(), H5P_DEFAULT), "cannot open attribute",
                                  id(), attribute_name, NameKind::attribute),
                         H5Aclose);
  const Handle stored(check_id(H5Aget_type(attribute.id()), "cannot read the type of attribute", id(),
                               attribute_name, NameKind::attribute),
                      H5Tclose);
  const Handle space(check_id(H5Aget_space(attribute.id()), "cannot read the shape of attribute", id(),
                              attribute_name, NameKind::attribute),
                     H5Sclose);
  const Dimensions shape = read_shape(space.id(), id(), attribute_name, NameKind::attribute);
  check_holds_strings(stored.id(), id(), attribute_name, NameKind::attribute);
  if (element_count(shape) != 1) {
    throw InputError(fmt::format("HDF5: attribute {} has shape {}, not a single string",
                                 describe_place(id(), attribute_name, NameKind::attribute), format_shape(shape)));
  }
  return read_string_values(attribute.id(), true, stored.id(), space.id(), 1, id(), attribute_name).front();
}

bool Object::has_attribute(std::string_view name) const {
  const Quiet quiet;
  const std::string attribute_name(name);
  const htri_t exists = H5Aexists(id(), attribute_name.c_str());
  if (exists < 0) throw_error("cannot look up attribute", id(), attribute_name, NameKind::attribute);
  return exists > 0;
}

std::vector<std::string> Object::attribute_names() const {
  const Quiet quiet;
  std::vector<std::string> names;
  check_status(H5Aiterate2(id(), H5_INDEX_NAME, H5_ITER_INC, nullptr, collect_attribute_name, &names),
               "cannot list the attributes of", id(), "");
  return names;
}

void Object::remove_attribute(std::string_view name) {
  const Quiet quiet;
  const std::string attribute_name(name);
  check_status(H5Adelete(id(), attribute_name.c_str()), "cannot remove attribute", id(), attribute_name, NameKind::attribute);
}

// ---------------------------------------------------------------------------------------------
// Dataset.

Dimensions Dataset::shape() const {
  const Quiet quiet;
  const Handle space(check_id(H5Dget_space(id()), "cannot read the shape of dataset", id(), ""), H5Sclose);
  return read_shape(space.id(), id(), "");
}

bool Dataset::holds_strings() const {
  const Quiet quiet;
  const Handle stored(check_id(H5Dget_type(id()), "cannot read the type of dataset", id(), ""), H5Tclose);
  return H5Tget_class(stored.id()) == H5T_STRING;
}

std::string Dataset::stored_type_name() const {
  const Quiet quiet;
  const Handle stored(check_id(H5Dget_type(id()), "cannot read the type of dataset", id(), ""), H5Tclose);
  return describe_type(stored.id());
}

void Dataset::read_numeric(ElementType type, const detail::Allocate& allocate) const {
  const Quiet quiet;
  const Handle stored(check_id(H5Dget_type(id()), "cannot read the type of dataset", id(), ""), H5Tclose);
  check_readable_as(stored.id(), type, "dataset", id(), "", NameKind::object_path);
  const Handle space(check_id(H5Dget_space(id()), "cannot read the shape of dataset", id(), ""), H5Sclose);
  const Dimensions shape = read_shape(space.id(), id(), "");
  check_claimed_size(shape, H5Tget_size(memory_type(type)), H5Dget_storage_size(id()), id(), "",
                     NameKind::object_path);
  void* data = allocate(shape);
  if (element_count(shape) == 0) return;
  check_status(H5Dread(id(), memory_type(type), H5S_ALL, H5S_ALL, H5P_DEFAULT, data), "cannot read dataset",
               id(), "");
}

std::string Dataset::read_string() const {
  const Quiet quiet;
  const Handle stored(check_id(H5Dget_type(id()), "cannot read the type of dataset", id(), ""), H5Tclose);
  const Handle space(check_id(H5Dget_space(id()), "cannot read the shape of dataset", id(), ""), H5Sclose);
  const Dimensions shape = read_shape(space.id(), id(), "");
  check_holds_strings(stored.id(), id(), "", NameKind::object_path);
  if (!shape.empty()) {
    throw InputError(fmt::format("HDF5: dataset '{}' in file '{}' has shape {}, not a scalar string",
                                 object_path_of(id()), file_name_of(id()), format_shape(shape)));
  }
  return read_string_values(id(), false, stored.id(), space.id(), 1, id(), "").front();
}

std::vector<std::string> Dataset::read_strings() const {
  const Quiet quiet;
  const Handle stored(check_id(H5Dget_type(id()), "cannot read the type of dataset", id(), ""), H5Tclose);
  const Handle space(check_id(H5Dget_space(id()), "cannot read the shape of dataset", id(), ""), H5Sclose);
  const Dimensions shape = read_shape(space.id(), id(), "");
  check_holds_strings(stored.id(), id(), "", NameKind::object_path);
  if (shape.size() != 1) {
    throw InputError(fmt::format("HDF5: dataset '{}' in file '{}' has shape {}, not a 1-D array of strings",
                                 object_path_of(id()), file_name_of(id()), format_shape(shape)));
  }
  return read_string_values(id(), false, stored.id(), space.id(), shape[0], id(), "");
}

// ---------------------------------------------------------------------------------------------
// Location.

Group Location::create_group(std::string_view path) {
  const Quiet quiet;
  const std::string group_path(path);
  const Handle lcpl = link_create_properties(id(), group_path);
  return Group(Handle(check_id(H5Gcreate2(id(), group_path.c_str(), lcpl.id(), H5P_DEFAULT, H5P_DEFAULT),
                               "cannot create group", id(), group_path),
                      H5Gclose));
}

Group Location::require_group(std::string_view path) {
  return exists(path) ? open_group(path) : create_group(path);
}

Group Location::open_group(std::string_view path) const {
  const Quiet quiet;
  const std::string group_path(path.empty() ? "." : path);
  return Group(Handle(check_id(H5Gopen2(id(), group_path.c_str(), H5P_DEFAULT), "cannot open group", id(),
                               group_path),
                      H5Gclose));
}

Dataset Location::open_dataset(std::string_view path) const {
  const Quiet quiet;
  const std::string dataset_path(path);
  return Dataset(Handle(check_id(H5Dopen2(id(), dataset_path.c_str(), H5P_DEFAULT), "cannot open dataset",
                                 id(), dataset_path),
                        H5Dclose));
}

bool Location::exists(std::string_view path) const {
  const Quiet quiet;
  // H5Lexists fails (rather than answering false) when an intermediate group is missing, so walk
  // the path one component at a time.
  std::string prefix = !path.empty() && path.front() == '/' ? "/" : "";
  std::size_t start = 0;
  bool any_component = false;
  while (start <= path.size()) {
    const std::size_t end = std::min(path.find('/', start), path.size());
    const std::string_view component = path.substr(start, end - start);
    start = end + 1;
    if (component.empty() || component == ".") continue;
    if (!prefix.empty() && prefix.back() != '/') prefix += '/';
    prefix += component;
    any_component = true;
    const htri_t link_exists = H5Lexists(id(), prefix.c_str(), H5P_DEFAULT);
    if (link_exists <= 0) {
      // A component that is a dataset, not a group, makes the next lookup fail: also "no".
      H5Eclear2(H5E_DEFAULT);
      return false;
    }
  }
  if (!any_component) return true;  // "", "/", ".": the location itself
  // The link exists; a dangling soft link leads nowhere.
  const htri_t object_exists = H5Oexists_by_name(id(), prefix.c_str(), H5P_DEFAULT);
  H5Eclear2(H5E_DEFAULT);
  return object_exists > 0;
}

std::vector<std::string> Location::children() const {
  const Quiet quiet;
  std::vector<std::string> names;
  check_status(H5Literate(id(), H5_INDEX_NAME, H5_ITER_INC, nullptr, collect_link_name, &names),
               "cannot list the children of", id(), "");
  return names;
}

Dataset Location::write_numeric(std::string_view path, ElementType type, const void* data, std::size_t count,
                                const Dimensions& shape, const DatasetOptions& options) {
  const Quiet quiet;
  const std::string dataset_path(path);
  DP_CHECK(count == element_count(shape), "dataset '{}': {} values do not fill shape {}", dataset_path, count,
           format_shape(shape));
  DP_CHECK(options.gzip_level >= 0 && options.gzip_level <= 9, "dataset '{}': gzip level {} is not in 0..9",
           dataset_path, options.gzip_level);
  const Handle space = make_space(shape, id(), dataset_path);
  const Handle dcpl(check_id(H5Pcreate(H5P_DATASET_CREATE), "cannot make dataset properties for", id(),
                             dataset_path),
                    H5Pclose);
  if (options.gzip_level > 0 && !shape.empty() && count > 0) {
    const auto chunk = choose_chunk(shape, element_size(type), options.chunk_shape);
    check_status(H5Pset_chunk(dcpl.id(), static_cast<int>(chunk.size()), chunk.data()),
                 "cannot set the chunk shape of", id(), dataset_path);
    if (options.shuffle) check_status(H5Pset_shuffle(dcpl.id()), "cannot set shuffling for", id(), dataset_path);
    check_status(H5Pset_deflate(dcpl.id(), static_cast<unsigned>(options.gzip_level)),
                 "cannot set gzip compression for", id(), dataset_path);
  }
  const Handle lcpl = link_create_properties(id(), dataset_path);
  Handle dataset(check_id(H5Dcreate2(id(), dataset_path.c_str(), file_type(type), space.id(), lcpl.id(),
                                     dcpl.id(), H5P_DEFAULT),
                          "cannot create dataset", id(), dataset_path),
                 H5Dclose);
  if (count > 0) {
    check_status(H5Dwrite(dataset.id(), memory_type(type), H5S_ALL, H5S_ALL, H5P_DEFAULT, data),
                 "cannot write dataset", id(), dataset_path);
  }
  return Dataset(std::move(dataset));
}

Dataset Location::write_string(std::string_view path, std::string_view value) {
  return write_string_values(path, {std::string(value)}, true);
}

Dataset Location::write_strings(std::string_view path, const std::vector<std::string>& values) {
  return write_string_values(path, values, false);
}

Dataset Location::write_string_values(std::string_view path, const std::vector<std::string>& values,
                                      bool scalar) {
  const Quiet quiet;
  const std::string dataset_path(path);
  std::vector<const char*> pointers;
  pointers.reserve(values.size());
  for (const auto& value : values) {
    check_no_nul(value, dataset_path);
    pointers.push_back(value.c_str());
  }
  const Handle type = make_string_type();
  const Handle space = make_space(scalar ? Dimensions{} : Dimensions{values.size()}, id(), dataset_path);
  const Handle lcpl = link_create_properties(id(), dataset_path);
  Handle dataset(check_id(H5Dcreate2(id(), dataset_path.c_str(), type.id(), space.id(), lcpl.id(), H5P_DEFAULT,
                                     H5P_DEFAULT),
                          "cannot create dataset", id(), dataset_path),
                 H5Dclose);
  if (!pointers.empty()) {
    check_status(H5Dwrite(dataset.id(), type.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, pointers.data()),
                 "cannot write dataset", id(), dataset_path);
  }
  return Dataset(std::move(dataset));
}

// ---------------------------------------------------------------------------------------------
// File.

namespace {
// H5Fcreate of `path` with a user block of that many bytes (0: none) and these access properties.
hid_t create_file(const std::filesystem::path& path, std::size_t user_block_bytes, hid_t access_properties) {
  Handle fcpl;
  if (user_block_bytes > 0) {
    fcpl = Handle(H5Pcreate(H5P_FILE_CREATE), H5Pclose);
    if (!fcpl || H5Pset_userblock(fcpl.id(), user_block_bytes) < 0) throw_file_error(OpenMode::create, path);
  }
  const hid_t id = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, fcpl ? fcpl.id() : H5P_DEFAULT, access_properties);
  if (id < 0) throw_file_error(OpenMode::create, path);
  return id;
}
}  // namespace

File File::create(const std::filesystem::path& path, std::size_t user_block_bytes) {
  const Quiet quiet;
  return File(Handle(create_file(path, user_block_bytes, H5P_DEFAULT), H5Fclose), path);
}

File File::create_in_memory(const std::filesystem::path& name, std::size_t user_block_bytes) {
  const Quiet quiet;
  Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  if (!fapl || H5Pset_fapl_core(fapl.id(), std::size_t{1} << 20, false) < 0) throw_file_error(OpenMode::create, name);
  return File(Handle(create_file(name, user_block_bytes, fapl.id()), H5Fclose), name);
}

std::vector<char> File::image() {
  flush();
  const Quiet quiet;
  const ssize_t size = H5Fget_file_image(id(), nullptr, 0);
  if (size < 0) throw_error("cannot take the image of", id(), "");
  std::vector<char> bytes(static_cast<std::size_t>(size));
  if (size > 0 && H5Fget_file_image(id(), bytes.data(), bytes.size()) != size) throw_error("cannot take the image of", id(), "");
  return bytes;
}

File File::open_read_only(const std::filesystem::path& path, FileLocking locking) {
  verify_checksum_block(path);  // a damaged file never reaches libhdf5
  const Quiet quiet;
  Handle fapl;
  hid_t access_properties = H5P_DEFAULT;
  if (locking == FileLocking::disabled) {
    fapl = Handle(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
    if (!fapl || H5Pset_file_locking(fapl.id(), false, true) < 0) {
      throw_file_error(OpenMode::read_only, path);
    }
    access_properties = fapl.id();
  }
  const hid_t id = H5Fopen(path.c_str(), H5F_ACC_RDONLY, access_properties);
  if (id < 0) throw_file_error(OpenMode::read_only, path);
  return File(Handle(id, H5Fclose), path);
}

std::optional<File> File::open_if_readable(const std::filesystem::path& path) noexcept {
  try {
    std::error_code error;
    if (!std::filesystem::is_regular_file(path, error)) return std::nullopt;
    const ChecksumCheck check = verify_checksum_block(path);  // throws for a damaged file
    if (check == ChecksumCheck::absent && !damage_of(path).empty()) return std::nullopt;
    const std::scoped_lock lock(library_mutex());
    const Quiet quiet;
    const hid_t id = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    H5Eclear2(H5E_DEFAULT);
    if (id < 0) return std::nullopt;
    return File(Handle(id, H5Fclose), path);
  } catch (...) {
    return std::nullopt;
  }
}

File File::open_read_write(const std::filesystem::path& path) {
  verify_checksum_block(path);
  const Quiet quiet;
  const hid_t id = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  if (id < 0) throw_file_error(OpenMode::read_write, path);
  return File(Handle(id, H5Fclose), path);
}

void File::flush() {
  const Quiet quiet;
  check_status(H5Fflush(id(), H5F_SCOPE_GLOBAL), "cannot flush", id(), "");
}

std::size_t File::open_object_count() const {
  const Quiet quiet;
  const ssize_t count = H5Fget_obj_count(id(), H5F_OBJ_ALL);
  if (count < 0) throw_error("cannot count the open objects of", id(), "");
  return static_cast<std::size_t>(count);
}

std::recursive_mutex& library_mutex() noexcept {
  static std::recursive_mutex mutex;
  return mutex;
}

bool is_readable_hdf5(const std::filesystem::path& path) noexcept { return damage_of(path).empty(); }

std::string damage_of(const std::filesystem::path& path) noexcept {
  try {
    std::error_code error;
    if (!std::filesystem::is_regular_file(path, error)) return "not a regular file";
    if (std::filesystem::file_size(path, error) == 0) return "empty (0 bytes)";
    // Plain reads, outside the library lock: throws for a damaged file, which libhdf5 never parses.
    ChecksumCheck check = ChecksumCheck::absent;
    try {
      check = verify_checksum_block(path);
    } catch (const DamagedFileError& e) {
      return e.reason().empty() ? std::string(e.what()) : e.reason();
    }
    const std::scoped_lock lock(library_mutex());
    const Quiet quiet;
    // Opening checks the superblock and that the file is as long as the superblock says (a cut
    // file fails here), and fails while another process holds the file open for writing. A file
    // of an earlier version (no checksum block) is then checked object by object: visiting every
    // link opens every object header. A verified file needs no walk: its bytes are the ones the
    // writer sealed after closing it, so every object reads as it was written (the walk was most
    // of the cost of a check, and a resumed run checks every finished job file).
    const Handle file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
    std::string why;
    if (!file.valid()) {
      // Told apart only now, to open the file once when it is whole.
      why = H5Fis_hdf5(path.c_str()) <= 0 ? "no HDF5 signature"
                                          : "libhdf5 cannot open it (or another process holds it open for writing)";
    }
    else if (check == ChecksumCheck::absent &&
             H5Lvisit(file.id(), H5_INDEX_NAME, H5_ITER_INC, open_linked_object, nullptr) < 0)
      why = "libhdf5 cannot read one of its objects";
    H5Eclear2(H5E_DEFAULT);
    return why;
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unreadable";
  }
}

}  // namespace diffpool::hdf5
