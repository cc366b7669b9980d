// The HDF5 wrapper (results/hdf5.hpp) and atomic result files (results/atomic_file.hpp):
// round trips of every element type and rank (empty, scalar, compressed), attributes, groups,
// strings, error messages, file locking, atomic writes, unreadable files, and two independent
// readers of what we write (h5py with Debian's /usr/bin/python3, and h5dump).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "results/atomic_file.hpp"
#include "results/hdf5.hpp"
#include "tests/test_util.hpp"

namespace diffpool::hdf5 {
namespace {

namespace fs = std::filesystem;
using testing::quoted;
using testing::run_command;

static_assert(!std::is_copy_constructible_v<Handle> && std::is_nothrow_move_constructible_v<Handle>);
static_assert(!std::is_copy_constructible_v<File> && std::is_move_constructible_v<File>);
static_assert(!std::is_copy_constructible_v<Dataset> && std::is_move_constructible_v<Dataset>);

// Each test gets its own empty directory, removed afterwards.
class Hdf5Test : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = std::string(info->test_suite_name()) + "-" + info->name();
    for (char& c : name) {
      if (c == '/') c = '_';
    }
    dir_ = fs::temp_directory_path() / ("diffpool-hdf5-" + std::to_string(::getpid()) + "-" + name);
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }
  fs::path path(const std::string& file_name) const { return dir_ / file_name; }
  std::vector<fs::path> files_in_dir() const {
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(dir_)) files.push_back(entry.path().filename());
    return files;
  }

  fs::path dir_;
};

// Runs a shell command, returns (exit status, stdout and stderr together).
template <class Function>
std::string message_of(Function function) {
  try {
    function();
  } catch (const std::exception& error) {
    return error.what();
  }
  return "(no exception)";
}

// Distinct values for a shape, with the type's extremes first where there is room.
template <class T>
std::vector<T> values_for(const Dimensions& shape) {
  std::vector<T> values(element_count(shape));
  for (std::size_t i = 0; i < values.size(); ++i) {
    if constexpr (std::is_floating_point_v<T>) {
      values[i] = static_cast<T>(0.5 * static_cast<double>(i) - 3.25);
    } else {
      values[i] = static_cast<T>(i % 100 + 2);
    }
  }
  if (values.size() >= 2) {
    values[0] = std::numeric_limits<T>::lowest();
    values[1] = std::numeric_limits<T>::max();
  }
  if constexpr (std::is_floating_point_v<T>) {
    if (values.size() >= 4) {
      values[2] = std::numeric_limits<T>::infinity();
      values[3] = std::numeric_limits<T>::denorm_min();
    }
  }
  return values;
}

// ---------------------------------------------------------------------------------------------
// Round trips.

template <class T>
class Hdf5RoundTrip : public Hdf5Test {};
using NumericTypes = ::testing::Types<float, double, std::int32_t, std::int64_t, std::uint8_t>;
TYPED_TEST_SUITE(Hdf5RoundTrip, NumericTypes);

TYPED_TEST(Hdf5RoundTrip, EveryRankEmptyAndCompressed) {
  using T = TypeParam;
  const std::vector<Dimensions> shapes = {{}, {0}, {1}, {7}, {3, 4}, {0, 5}, {2, 3, 4}, {2, 0, 4}, {64, 33, 5}};
  const fs::path file_path = this->path("round_trip.h5");
  {
    File file = File::create(file_path);
    for (std::size_t i = 0; i < shapes.size(); ++i) {
      const auto values = values_for<T>(shapes[i]);
      file.write_dataset(fmt::format("plain/d{}", i), values, shapes[i]);
      file.write_dataset(fmt::format("gzip/d{}", i), values, shapes[i], DatasetOptions::compressed(6));
    }
    // A 1-D convenience overload.
    file.write_dataset("plain/vector", values_for<T>({5}));
    file.close();
  }
  const File file = File::open_read_only(file_path);
  for (const char* layout : {"plain", "gzip"}) {
    for (std::size_t i = 0; i < shapes.size(); ++i) {
      SCOPED_TRACE(fmt::format("{}/d{} shape {}", layout, i, format_shape(shapes[i])));
      const Array<T> array = file.read_dataset<T>(fmt::format("{}/d{}", layout, i));
      EXPECT_EQ(array.shape, shapes[i]);
      EXPECT_EQ(array.values, values_for<T>(shapes[i]));
      EXPECT_EQ(file.open_dataset(fmt::format("{}/d{}", layout, i)).stored_type_name(),
                element_type_name(element_type_of<T>()));
    }
  }
  EXPECT_EQ(file.read_dataset<T>("plain/vector").shape, Dimensions{5});
}

// Whether a dataset is chunked and deflate-compressed, read from its creation properties.
bool is_chunked_and_deflated(const Dataset& dataset) {
  const Handle dcpl(H5Dget_create_plist(dataset.id()), H5Pclose);
  if (H5Pget_layout(dcpl.id()) != H5D_CHUNKED) return false;
  for (int i = 0; i < H5Pget_nfilters(dcpl.id()); ++i) {
    unsigned flags = 0;
    std::size_t count = 0;
    unsigned config = 0;
    if (H5Pget_filter2(dcpl.id(), static_cast<unsigned>(i), &flags, &count, nullptr, 0, nullptr, &config) ==
        H5Z_FILTER_DEFLATE) {
      return true;
    }
  }
  return false;
}

TEST_F(Hdf5Test, CompressedDataIsChunkedAndSmaller) {
  // 4 MB of very compressible floats (a repeating pattern), gzip level 4, automatic chunks.
  const Dimensions shape = {1000, 1000};
  std::vector<float> values(element_count(shape));
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i % 13) * 0.25f;
  std::vector<std::int64_t> labels(3 * 40 * 50);
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<std::int64_t>(i % 5);
  {
    File file = File::create(path("compressed.h5"));
    const Dataset dataset = file.write_dataset("assignments", values, shape, DatasetOptions::compressed(4));
    EXPECT_TRUE(is_chunked_and_deflated(dataset));
    // An explicit chunk shape larger than the data is clamped to it.
    const Dataset labels_dataset = file.write_dataset("labels", labels, {3, 40, 50},
                                                      DatasetOptions{.gzip_level = 9, .chunk_shape = {1, 64, 50}, .shuffle = true});
    EXPECT_TRUE(is_chunked_and_deflated(labels_dataset));
    const Dataset plain = file.write_dataset("plain", labels, {3, 40, 50});
    EXPECT_FALSE(is_chunked_and_deflated(plain));
  }
  EXPECT_LT(fs::file_size(path("compressed.h5")), values.size() * sizeof(float) / 10);
  const File file = File::open_read_only(path("compressed.h5"));
  const auto array = file.read_dataset<float>("assignments");
  EXPECT_EQ(array.shape, shape);
  EXPECT_EQ(array.values, values);
  EXPECT_EQ(file.read_dataset<std::int64_t>("labels").values, labels);
}

TEST_F(Hdf5Test, WideningReadsAreAllowedNarrowingOnesThrow) {
  {
    File file = File::create(path("types.h5"));
    file.write_dataset("int32", std::vector<std::int32_t>{-1, 2, 3});
    file.write_dataset("float32", std::vector<float>{0.5f, 1.5f});
    file.write_dataset("uint8", std::vector<std::uint8_t>{0, 255});
    file.write_dataset("int64", std::vector<std::int64_t>{1});
  }
  const File file = File::open_read_only(path("types.h5"));
  EXPECT_EQ(file.read_dataset<std::int64_t>("int32").values, (std::vector<std::int64_t>{-1, 2, 3}));
  EXPECT_EQ(file.read_dataset<double>("float32").values, (std::vector<double>{0.5, 1.5}));
  EXPECT_EQ(file.read_dataset<std::int32_t>("uint8").values, (std::vector<std::int32_t>{0, 255}));
  EXPECT_THROW(file.read_dataset<std::int32_t>("int64"), InputError);
  EXPECT_THROW(file.read_dataset<std::uint8_t>("int32"), InputError);
  EXPECT_THROW(file.read_dataset<float>("int32"), InputError);
  EXPECT_THROW(file.read_dataset<std::int32_t>("float32"), InputError);
  const std::string message = message_of([&] { file.read_dataset<float>("int32"); });
  EXPECT_NE(message.find("'/int32'"), std::string::npos) << message;
  EXPECT_NE(message.find("holds int32"), std::string::npos) << message;
  EXPECT_NE(message.find("as float32"), std::string::npos) << message;
  EXPECT_THROW(file.read_string("int32"), InputError);
  EXPECT_THROW(file.read_strings("int32"), InputError);
}

TEST_F(Hdf5Test, ShapeAndValueCountMustAgree) {
  File file = File::create(path("shape.h5"));
  EXPECT_THROW(file.write_dataset("x", std::vector<float>(5), {2, 3}), Error);
  DatasetOptions bad_level;
  bad_level.gzip_level = 12;
  EXPECT_THROW(file.write_dataset("y", std::vector<float>(6), {2, 3}, bad_level), Error);
  EXPECT_FALSE(file.exists("x"));
}

// ---------------------------------------------------------------------------------------------
// Attributes, groups, strings.

TEST_F(Hdf5Test, AttributesOnFilesGroupsAndDatasets) {
  {
    File file = File::create(path("attributes.h5"));
    file.set_attribute("seed", 42);
    file.set_attribute("big", std::int64_t{1} << 40);
    file.set_attribute("learning_rate", 0.001);
    file.set_attribute("ratio", 0.25f);
    file.set_attribute("variant", "DIFFPOOL");
    file.set_attribute("note", std::string("gr\u00fc\u00dfe \u0394"));
    file.set_attribute("empty_text", "");
    Group group = file.create_group("metrics");
    group.set_attribute("folds", std::vector<std::int32_t>{1, 2, 3});
    group.set_attribute("weights", std::vector<double>{0.5, 1.5});
    group.set_attribute("bytes", std::vector<std::uint8_t>{1, 2, 250});
    group.set_attribute("empty", std::vector<float>{});
    Dataset dataset = group.write_dataset("loss", std::vector<float>{1.0f, 0.5f});
    dataset.set_attribute("unit", "nats");
    dataset.set_attribute("steps", std::vector<std::int64_t>{10, 20});
    dataset.set_attribute("unit", "bits");  // replaces
    dataset.set_attribute("scale", std::vector<float>{0.25f});
  }
  const File file = File::open_read_only(path("attributes.h5"));
  EXPECT_EQ(file.read_attribute<std::int64_t>("seed"), 42);
  EXPECT_EQ(file.read_attribute<std::int64_t>("big"), std::int64_t{1} << 40);
  EXPECT_EQ(file.read_attribute<double>("learning_rate"), 0.001);
  EXPECT_EQ(file.read_attribute<double>("ratio"), 0.25);
  EXPECT_EQ(file.read_attribute<std::string>("variant"), "DIFFPOOL");
  EXPECT_EQ(file.read_attribute<std::string>("note"), "gr\u00fc\u00dfe \u0394");
  EXPECT_EQ(file.read_attribute<std::string>("empty_text"), "");
  EXPECT_EQ(file.attribute_names(),
            (std::vector<std::string>{"big", "empty_text", "learning_rate", "note", "ratio", "seed", "variant"}));
  EXPECT_TRUE(file.has_attribute("seed"));
  EXPECT_FALSE(file.has_attribute("missing"));
  EXPECT_THROW(file.read_attribute<double>("seed"), InputError);         // int64 as double
  EXPECT_THROW(file.read_attribute<std::int64_t>("variant"), InputError);  // string as number
  EXPECT_THROW(file.read_attribute<std::string>("seed"), InputError);
  const std::string missing = message_of([&] { file.read_attribute<double>("missing"); });
  EXPECT_NE(missing.find("cannot open attribute 'missing' of '/' in file"), std::string::npos) << missing;

  const Group group = file.open_group("metrics");
  EXPECT_EQ(group.read_attribute<std::vector<std::int32_t>>("folds"), (std::vector<std::int32_t>{1, 2, 3}));
  EXPECT_EQ(group.read_attribute<std::vector<std::int64_t>>("folds"), (std::vector<std::int64_t>{1, 2, 3}));
  EXPECT_EQ(group.read_attribute<std::vector<double>>("weights"), (std::vector<double>{0.5, 1.5}));
  EXPECT_EQ(group.read_attribute<std::vector<std::uint8_t>>("bytes"), (std::vector<std::uint8_t>{1, 2, 250}));
  EXPECT_TRUE(group.read_attribute<std::vector<float>>("empty").empty());
  EXPECT_THROW(group.read_attribute<std::int32_t>("folds"), InputError);  // 3 values, not a scalar

  const Dataset dataset = file.open_dataset("metrics/loss");
  EXPECT_EQ(dataset.read_attribute<std::string>("unit"), "bits");
  EXPECT_EQ(dataset.read_attribute<std::vector<std::int64_t>>("steps"), (std::vector<std::int64_t>{10, 20}));
  EXPECT_EQ(dataset.read_attribute<float>("scale"), 0.25f);  // a 1-element vector reads as a scalar
  EXPECT_EQ(dataset.attribute_names(), (std::vector<std::string>{"scale", "steps", "unit"}));
}

TEST_F(Hdf5Test, NestedGroupsExistsAndChildren) {
  File file = File::create(path("groups.h5"));
  Group c = file.create_group("a/b/c");
  EXPECT_EQ(c.name(), "/a/b/c");
  EXPECT_EQ(c.file_name(), path("groups.h5").string());
  c.write_dataset("values", std::vector<double>{1.0});
  file.write_dataset("a/x/y/deep", std::vector<std::int32_t>{1, 2});  // intermediate groups on write
  file.create_group("a/b/d");
  Group b = file.open_group("/a/b");
  b.create_group("e");
  EXPECT_TRUE(file.exists("a"));
  EXPECT_TRUE(file.exists("/a/b/c"));
  EXPECT_TRUE(file.exists("a/b/c/values"));
  EXPECT_TRUE(file.exists("a/x/y/deep"));
  EXPECT_TRUE(file.exists(""));
  EXPECT_TRUE(file.exists("/"));
  EXPECT_TRUE(b.exists("c/values"));
  EXPECT_FALSE(file.exists("missing"));
  EXPECT_FALSE(file.exists("a/missing/further"));
  EXPECT_FALSE(file.exists("a/b/c/values/beyond_a_dataset"));
  EXPECT_EQ(file.children(), (std::vector<std::string>{"a"}));
  EXPECT_EQ(b.children(), (std::vector<std::string>{"c", "d", "e"}));
  EXPECT_EQ(file.open_group("a").children(), (std::vector<std::string>{"b", "x"}));
  EXPECT_TRUE(file.open_group("a/b/d").children().empty());
  EXPECT_EQ(file.require_group("a/b").name(), "/a/b");  // exists: opened
  EXPECT_EQ(file.require_group("a/new/one").name(), "/a/new/one");
  EXPECT_THROW(file.create_group("a/b"), LibraryError);
  EXPECT_THROW(file.write_dataset("a/b/c/values", std::vector<double>{2.0}), LibraryError);
  EXPECT_EQ(file.read_dataset<double>("a/b/c/values").values, std::vector<double>{1.0});
}

TEST_F(Hdf5Test, Strings) {
  const std::vector<std::string> names = {"a", "bb", "", "\u00fcn\u00ef", std::string(1000, 'x')};
  {
    File file = File::create(path("strings.h5"));
    file.write_string("text", "h\u00e9llo \u0394");
    file.write_string("empty_text", "");
    file.write_strings("meta/names", names);
    file.write_strings("meta/none", {});
    EXPECT_TRUE(file.open_dataset("text").holds_strings());
    EXPECT_EQ(file.open_dataset("text").stored_type_name(), "string");
    EXPECT_THROW(file.write_string("nul", std::string("a\0b", 3)), Error);
  }
  const File file = File::open_read_only(path("strings.h5"));
  EXPECT_EQ(file.read_string("text"), "h\u00e9llo \u0394");
  EXPECT_EQ(file.read_string("empty_text"), "");
  EXPECT_EQ(file.read_strings("meta/names"), names);
  EXPECT_EQ(file.open_dataset("meta/names").shape(), Dimensions{names.size()});
  EXPECT_TRUE(file.read_strings("meta/none").empty());
  EXPECT_THROW(file.read_string("meta/names"), InputError);  // an array, not a scalar
  EXPECT_THROW(file.read_strings("text"), InputError);       // a scalar, not an array
  EXPECT_THROW(file.read_dataset<float>("text"), InputError);
}

// ---------------------------------------------------------------------------------------------
// Handles and errors.

TEST_F(Hdf5Test, HandlesMoveAndCloseOnce) {
  File file = File::create(path("handles.h5"));
  Group group = file.create_group("g");
  const hid_t id = group.id();
  Group moved = std::move(group);
  EXPECT_EQ(moved.id(), id);
  EXPECT_FALSE(group.valid());  // NOLINT(bugprone-use-after-move): a moved-from handle is empty
  EXPECT_EQ(file.open_object_count(), 2u);
  { Group temporary = std::move(moved); }
  EXPECT_EQ(file.open_object_count(), 1u);

  Handle handle(H5Screate(H5S_SCALAR), H5Sclose);
  ASSERT_TRUE(handle.valid());
  handle.close();
  EXPECT_FALSE(handle.valid());
  handle.close();  // a second close does nothing
  file.close();
  EXPECT_FALSE(file.valid());
}

TEST_F(Hdf5Test, ErrorMessagesNameFileAndPathAndNothingIsPrinted) {
  {
    File file = File::create(path("errors.h5"));
    file.write_dataset("metrics/loss", std::vector<float>{1.0f});
  }
  ::testing::internal::CaptureStderr();
  const std::string missing_file = message_of([&] { File::open_read_only(path("nowhere.h5")); });
  const std::string missing_file_rw = message_of([&] { File::open_read_write(path("nowhere.h5")); });
  const File file = File::open_read_only(path("errors.h5"));
  const std::string missing_dataset = message_of([&] { file.read_dataset<float>("metrics/missing"); });
  const Group metrics = file.open_group("metrics");
  const std::string relative = message_of([&] { metrics.open_dataset("absent"); });
  const std::string missing_group = message_of([&] { file.open_group("nothing/here"); });
  const std::string read_only = message_of([&] {
    File again = File::open_read_only(path("errors.h5"));
    again.write_dataset("new", std::vector<float>{1.0f});
  });
  const std::string create_in_missing_dir = message_of([&] { File::create(path("no/such/dir/x.h5")); });
  const std::string garbage = message_of([&] {
    std::ofstream(path("garbage.h5")) << "not an HDF5 file";
    File::open_read_only(path("garbage.h5"));
  });
  const std::string printed = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(printed, "") << "HDF5 printed its error stack";

  const std::string errors_h5 = path("errors.h5").string();
  EXPECT_NE(missing_file.find(path("nowhere.h5").string()), std::string::npos) << missing_file;
  EXPECT_NE(missing_file.find("does not exist"), std::string::npos) << missing_file;
  EXPECT_NE(missing_file_rw.find("does not exist"), std::string::npos) << missing_file_rw;
  EXPECT_NE(missing_dataset.find("cannot open dataset '/metrics/missing'"), std::string::npos) << missing_dataset;
  EXPECT_NE(missing_dataset.find(errors_h5), std::string::npos) << missing_dataset;
  EXPECT_NE(missing_dataset.find("H5Dopen2()"), std::string::npos) << missing_dataset;  // the HDF5 stack
  EXPECT_NE(relative.find("'/metrics/absent'"), std::string::npos) << relative;
  EXPECT_NE(missing_group.find("cannot open group '/nothing/here'"), std::string::npos) << missing_group;
  EXPECT_NE(read_only.find("cannot create dataset '/new'"), std::string::npos) << read_only;
  EXPECT_NE(create_in_missing_dir.find("cannot create file"), std::string::npos) << create_in_missing_dir;
  EXPECT_NE(garbage.find("cannot open file '" + path("garbage.h5").string() + "' for reading"), std::string::npos)
      << garbage;
  EXPECT_NE(create_in_missing_dir.find("no/such/dir/x.h5"), std::string::npos) << create_in_missing_dir;
  EXPECT_THROW(file.read_dataset<float>("metrics/missing"), LibraryError);
}

// A second process holds the file open for writing; HDF5's file lock makes our read-only open
// fail, and the message must tell the user how to bypass the lock.
TEST_F(Hdf5Test, LockedFileErrorMentionsFileLockingVariable) {
  const fs::path file_path = path("locked.h5");
  {
    File file = File::create(file_path);
    file.write_dataset("values", std::vector<std::int32_t>{1, 2, 3});
  }
  int ready[2];
  int release[2];
  ASSERT_EQ(::pipe(ready), 0);
  ASSERT_EQ(::pipe(release), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {  // the writer: open read-write, say so, wait to be released
    ::close(ready[0]);
    ::close(release[1]);
    int code = 0;
    try {
      File writer = File::open_read_write(file_path);
      const char byte = 'r';
      if (::write(ready[1], &byte, 1) != 1) code = 2;
      char answer = 0;
      if (::read(release[0], &answer, 1) != 1) code = 3;
    } catch (...) {
      code = 1;
    }
    ::_exit(code);
  }
  ::close(ready[1]);
  ::close(release[0]);
  char byte = 0;
  ASSERT_EQ(::read(ready[0], &byte, 1), 1) << "the writer process could not open the file";

  const std::string message = message_of([&] { File::open_read_only(file_path); });
  EXPECT_NE(message.find("HDF5_USE_FILE_LOCKING=FALSE"), std::string::npos) << message;
  EXPECT_NE(message.find(file_path.string()), std::string::npos) << message;
  EXPECT_NE(message.find("lock"), std::string::npos) << message;
  EXPECT_FALSE(is_readable_hdf5(file_path));
  EXPECT_FALSE(File::open_if_readable(file_path));
  // Reading with the lock disabled works (the writer has changed nothing).
  {
    const File reader = File::open_read_only(file_path, FileLocking::disabled);
    EXPECT_EQ(reader.read_dataset<std::int32_t>("values").values, (std::vector<std::int32_t>{1, 2, 3}));
  }
  // So does the environment variable the message names, in a process started with it (HDF5 1.10
  // reads it once, when the library initialises): h5dump fails without it and succeeds with it.
  if (fs::exists("/usr/bin/h5dump")) {
    const std::string dump = "/usr/bin/h5dump -d /values " + quoted(file_path);
    const auto [locked_status, locked_output] = run_command(dump);
    EXPECT_NE(locked_status, 0) << locked_output;
    const auto [status, output] = run_command("HDF5_USE_FILE_LOCKING=FALSE " + dump);
    EXPECT_EQ(status, 0) << output;
    EXPECT_NE(output.find("1, 2, 3"), std::string::npos) << output;
  }

  const char done = 'd';
  EXPECT_EQ(::write(release[1], &done, 1), 1);
  ::close(release[1]);
  ::close(ready[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "writer status " << status;
  EXPECT_TRUE(is_readable_hdf5(file_path));
  EXPECT_TRUE(File::open_if_readable(file_path));
}

// ---------------------------------------------------------------------------------------------
// Atomic files and unreadable files.

TEST_F(Hdf5Test, AtomicWriteLeavesOnlyTheFinalFile) {
  const fs::path final_path = path("job.h5");
  EXPECT_EQ(atomic_temporary_path(final_path).string(),
            final_path.string() + ".tmp." + std::to_string(::getpid()));
  write_file_atomically(final_path, [&](File& file) {
    EXPECT_EQ(file.path(), atomic_temporary_path(final_path));
    EXPECT_FALSE(fs::exists(final_path));  // nothing at the final path while writing
    file.write_dataset("metrics/accuracy", std::vector<double>{0.75, 0.8});
    file.set_attribute("job", "abc123");
  });
  EXPECT_EQ(files_in_dir(), std::vector<fs::path>{"job.h5"});
  EXPECT_TRUE(is_readable_hdf5(final_path));
  {
    const File file = File::open_read_only(final_path);
    EXPECT_EQ(file.read_dataset<double>("metrics/accuracy").values, (std::vector<double>{0.75, 0.8}));
    EXPECT_EQ(file.read_attribute<std::string>("job"), "abc123");
  }
  // Writing again replaces the file as a whole.
  write_file_atomically(final_path, [](File& file) { file.set_attribute("job", "def456"); });
  EXPECT_EQ(files_in_dir(), std::vector<fs::path>{"job.h5"});
  const File file = File::open_read_only(final_path);
  EXPECT_EQ(file.read_attribute<std::string>("job"), "def456");
  EXPECT_FALSE(file.exists("metrics"));
}

// The file is built in memory and written when the callback returns: a callback that closes it
// leaves nothing to write, which is an error naming the file, and no file.
TEST_F(Hdf5Test, AtomicWriteRefusesACallbackThatClosesTheFile) {
  const std::string message = message_of([&] {
    write_file_atomically(path("closed.h5"), [](File& file) {
      Group group = file.create_group("g");
      group.write_dataset("x", std::vector<double>{1.0, 2.0});
      group.close();
      EXPECT_FALSE(group.valid());
      file.close();
    });
  });
  EXPECT_NE(message.find("closed.h5"), std::string::npos) << message;
  EXPECT_NE(message.find("closed the file"), std::string::npos) << message;
  EXPECT_TRUE(files_in_dir().empty());
}

TEST_F(Hdf5Test, AtomicWriteInTheCurrentDirectory) {
  const fs::path previous = fs::current_path();
  fs::current_path(dir_);
  write_file_atomically("relative.h5", [](File& file) { file.write_string("text", "here"); });
  fs::current_path(previous);
  EXPECT_EQ(files_in_dir(), std::vector<fs::path>{"relative.h5"});
}

TEST_F(Hdf5Test, ExceptionInTheCallbackLeavesNoFile) {
  const fs::path final_path = path("failed.h5");
  EXPECT_THROW(write_file_atomically(final_path,
                                     [](File& file) {
                                       file.write_dataset("partial", std::vector<float>(1000, 1.0f));
                                       throw std::runtime_error("training diverged");
                                     }),
               std::runtime_error);
  EXPECT_TRUE(files_in_dir().empty());
  // An HDF5 failure inside the callback, too; an existing final file is left as it was.
  write_file_atomically(final_path, [](File& file) { file.set_attribute("version", 1); });
  const std::string message = message_of([&] {
    write_file_atomically(final_path, [](File& file) {
      file.set_attribute("version", 2);
      file.open_dataset("missing");
    });
  });
  EXPECT_NE(message.find("cannot open dataset '/missing'"), std::string::npos) << message;
  EXPECT_EQ(files_in_dir(), std::vector<fs::path>{"failed.h5"});
  EXPECT_EQ(File::open_read_only(final_path).read_attribute<std::int64_t>("version"), 1);
}

TEST_F(Hdf5Test, TextFilesTakeTheSameAtomicWrite) {
  const fs::path final_path = path("experiment.id");
  write_text_file_atomically(final_path, "abc quickstart\n");
  EXPECT_EQ(files_in_dir(), std::vector<fs::path>{"experiment.id"});
  write_text_file_atomically(final_path, "def other\n");  // replaces the file as a whole
  std::ifstream in(final_path);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "def other\n");
  // The generic form: whatever the callback writes at the temporary path; a throw leaves the
  // final file as it was and no temporary.
  EXPECT_THROW(write_atomically(final_path,
                                [&](const fs::path& temporary) {
                                  EXPECT_EQ(temporary, atomic_temporary_path(final_path));
                                  std::ofstream(temporary) << "partial";
                                  throw std::runtime_error("disk full");
                                }),
               std::runtime_error);
  EXPECT_EQ(files_in_dir(), std::vector<fs::path>{"experiment.id"});
  // A file that cannot be created (its folder is a file) is an error naming it, and leaves nothing.
  const std::string message = message_of([&] { write_text_file_atomically(final_path / "inside", "x"); });
  EXPECT_NE(message.find("experiment.id/inside.tmp."), std::string::npos) << message;
  EXPECT_EQ(files_in_dir(), std::vector<fs::path>{"experiment.id"});
}

TEST_F(Hdf5Test, AtomicWriteRefusesObjectsKeptOpen) {
  std::optional<Group> kept;
  const std::string message = message_of([&] {
    write_file_atomically(path("kept.h5"), [&](File& file) { kept = file.create_group("g"); });
  });
  EXPECT_NE(message.find("still open"), std::string::npos) << message;
  kept.reset();
  EXPECT_TRUE(files_in_dir().empty());
}

// A writer process rewrites the same result file in a loop and is SIGKILLed at varying moments:
// at the final path there is then either nothing or a complete file, never a partial one.
TEST_F(Hdf5Test, KillAtAnyMomentLeavesNoFileOrACompleteOne) {
  const fs::path final_path = path("killed.h5");
  constexpr std::size_t values_per_file = 200000;  // 800 KB uncompressed: a write takes a while
  int complete_files = 0;
  for (int round = 0; round < 6; ++round) {
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      try {
        for (std::int64_t iteration = 0;; ++iteration) {
          write_file_atomically(final_path, [&](File& file) {
            file.write_dataset("values", std::vector<float>(values_per_file, static_cast<float>(iteration)));
            file.set_attribute("iteration", iteration);
          });
        }
      } catch (...) {
      }
      ::_exit(1);
    }
    if (round == 5) {  // the last writer dies while it replaces an existing file
      for (int wait = 0; wait < 2000 && !fs::exists(final_path); ++wait) ::usleep(5000);
    }
    ::usleep(static_cast<useconds_t>(2000 + 7000 * round));
    ::kill(child, SIGKILL);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the writer stopped on its own, status " << status;
    if (!fs::exists(final_path)) continue;
    ASSERT_TRUE(is_readable_hdf5(final_path)) << "round " << round;
    const File file = File::open_read_only(final_path);
    const auto iteration = static_cast<float>(file.read_attribute<std::int64_t>("iteration"));
    const auto values = file.read_dataset<float>("values").values;
    ASSERT_EQ(values.size(), values_per_file);
    EXPECT_TRUE(std::all_of(values.begin(), values.end(), [&](float v) { return v == iteration; }));
    ++complete_files;
  }
  // Only the final file and the killed writers' temporaries (which readers never open) remain.
  for (const auto& name : files_in_dir()) {
    EXPECT_TRUE(name == "killed.h5" || name.string().starts_with("killed.h5.tmp.")) << name;
  }
  EXPECT_GT(complete_files, 0) << "no complete file was checked";
}

TEST_F(Hdf5Test, TruncatedAndCorruptFilesAreUnreadable) {
  {
    File file = File::create(path("good.h5"));
    file.write_dataset("a/embeddings", std::vector<float>(20000, 0.5f), {200, 100});
    file.write_strings("a/names", {"x", "y"});
    file.set_attribute("seed", 1);
  }
  const auto size = fs::file_size(path("good.h5"));
  auto copy_truncated = [&](const std::string& name, std::uintmax_t bytes) {
    fs::copy_file(path("good.h5"), path(name));
    fs::resize_file(path(name), bytes);
  };
  copy_truncated("half.h5", size / 2);
  copy_truncated("header_only.h5", 96);
  copy_truncated("one_byte_short.h5", size - 1);
  std::ofstream(path("garbage.h5")) << std::string(4096, 'g');
  std::ofstream(path("empty.h5"));

  ::testing::internal::CaptureStderr();
  EXPECT_TRUE(is_readable_hdf5(path("good.h5")));
  for (const char* name : {"half.h5", "header_only.h5", "one_byte_short.h5", "garbage.h5", "empty.h5",
                           "missing.h5"}) {
    EXPECT_FALSE(is_readable_hdf5(path(name))) << name;
  }
  EXPECT_FALSE(is_readable_hdf5(dir_));  // a directory
  const std::string truncated = message_of([&] { File::open_read_only(path("half.h5")); });
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  EXPECT_NE(truncated.find("truncated"), std::string::npos) << truncated;
  EXPECT_NE(truncated.find("half.h5"), std::string::npos) << truncated;
  // Every damaged file is called damaged, by name; none gets the advice about file locking (the
  // stack of a damaged file names the "superblock", which once read as a lock).
  for (const char* name : {"half.h5", "header_only.h5", "one_byte_short.h5", "garbage.h5", "empty.h5"}) {
    const std::string message = message_of([&] { File::open_read_only(path(name)); });
    EXPECT_NE(message.find("damaged"), std::string::npos) << message;
    EXPECT_NE(message.find(path(name).string()), std::string::npos) << message;
    EXPECT_EQ(message.find("HDF5_USE_FILE_LOCKING"), std::string::npos) << message;
    EXPECT_EQ(message.find("is locked"), std::string::npos) << message;
  }
}

// ---------------------------------------------------------------------------------------------
// Independent readers: h5py (Debian's python3-h5py) and h5dump (hdf5-tools).

void write_interop_file(const fs::path& file_path) {
  write_file_atomically(file_path, [](File& file) {
    file.set_attribute("seed", 42);
    file.set_attribute("learning_rate", 0.001);
    file.set_attribute("variant", "DIFFPOOL");
    file.set_attribute("note", "gr\u00fc\u00dfe \u0394");
    Group metrics = file.create_group("metrics");
    metrics.set_attribute("folds", std::vector<std::int32_t>{1, 2, 3});
    metrics.set_attribute("weights", std::vector<double>{0.5, 1.5});
    metrics.set_attribute("bytes", std::vector<std::uint8_t>{1, 2, 250});
    metrics.set_attribute("empty", std::vector<float>{});
    Dataset loss = metrics.write_dataset("loss", std::vector<float>{0.5f, 0.25f, 0.125f, 0.0625f});
    loss.set_attribute("unit", "nats");
    loss.set_attribute("scale", std::vector<float>{0.25f});
    loss.set_attribute("steps", std::vector<std::int64_t>{10, 20});
    metrics.write_dataset("accuracy", std::vector<double>{0.1, 0.2, 0.3, 0.4, 0.5, 0.6}, {2, 3});
    metrics.write_dataset("epochs", std::vector<std::int64_t>{250}, {});
    file.write_dataset("embeddings", std::vector<std::int32_t>{-3, -2, -1, 0, 1, 2, 3, 4}, {2, 2, 2});
    file.write_dataset("mask", std::vector<std::uint8_t>{0, 1, 255, 7, 3});
    file.write_dataset("empty", std::vector<float>{}, {0, 4}, DatasetOptions::compressed());
    std::vector<std::int64_t> adjacency(4 * 30 * 50);
    for (std::size_t i = 0; i < adjacency.size(); ++i) adjacency[i] = static_cast<std::int64_t>(i % 7);
    file.write_dataset("levels/0/pooled/adjacency", adjacency, {4, 30, 50}, DatasetOptions::compressed(4));
    file.write_string("text", "h\u00e9llo \u0394");
    file.write_strings("names", {"a", "bb", "", "\u00fcn\u00ef"});
  });
}

TEST_F(Hdf5Test, H5pyReadsWhatWeWrite) {
  const fs::path python = "/usr/bin/python3";
  if (!fs::exists(python)) GTEST_SKIP() << "no /usr/bin/python3: install python3 and python3-h5py";
  if (run_command(python.string() + " -c 'import h5py'").first != 0) {
    GTEST_SKIP() << "Debian's python3-h5py is not installed (/usr/bin/python3 -c 'import h5py' failed)";
  }
  write_interop_file(path("interop.h5"));
  const fs::path script = fs::path(testing::source_dir()) / "tests/unit/check_hdf5_with_h5py.py";
  const auto [status, output] = run_command(python.string() + " " + quoted(script) + " " + quoted(path("interop.h5")));
  EXPECT_EQ(status, 0) << output;
  EXPECT_NE(output.find("h5py check passed"), std::string::npos) << output;
}

TEST_F(Hdf5Test, H5dumpReadsWhatWeWrite) {
  const fs::path h5dump = "/usr/bin/h5dump";
  if (!fs::exists(h5dump)) GTEST_SKIP() << "no /usr/bin/h5dump: install hdf5-tools";
  write_interop_file(path("interop.h5"));
  const auto [status, output] = run_command(h5dump.string() + " " + quoted(path("interop.h5")));
  EXPECT_EQ(status, 0) << output;
  for (const char* expected :
       {"DATASET \"loss\"", "ATTRIBUTE \"seed\"", "(0): 42", "\"DIFFPOOL\"", "DATASET \"adjacency\"",
        "DATASPACE  SIMPLE { ( 4, 30, 50 ) / ( 4, 30, 50 ) }", "H5T_IEEE_F32LE", "H5T_STD_U8LE", "\"bb\"",
        "0.0625"}) {
    EXPECT_NE(output.find(expected), std::string::npos) << "missing '" << expected << "' in\n" << output;
  }
  // The filters of the compressed dataset, from the properties dump.
  const auto [properties_status, properties] =
      run_command(h5dump.string() + " -p -H -d /levels/0/pooled/adjacency " + quoted(path("interop.h5")));
  EXPECT_EQ(properties_status, 0) << properties;
  EXPECT_NE(properties.find("COMPRESSION DEFLATE { LEVEL 4 }"), std::string::npos) << properties;
  EXPECT_NE(properties.find("SHUFFLE"), std::string::npos) << properties;
  EXPECT_NE(properties.find("CHUNKED"), std::string::npos) << properties;
}

// A damaged file can claim any shape (tests/fuzz found 2^40 elements, an 8 TiB allocation): a shape
// larger than what the file stores is refused as damaged before anything is allocated. Here a
// chunked dataset of 2^40 int64 that was never written (HDF5 stores nothing for it).
TEST_F(Hdf5Test, ClaimedShapeLargerThanTheStoredData) {
  const fs::path file_path = path("claims.h5");
  {
    const hsize_t dims[1] = {hsize_t{1} << 40}, chunk[1] = {1024};
    const hid_t file = H5Fcreate(file_path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    const hid_t space = H5Screate_simple(1, dims, nullptr);
    const hid_t properties = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(properties, 1, chunk);
    const hid_t dataset = H5Dcreate2(file, "huge", H5T_STD_I64LE, space, H5P_DEFAULT, properties, H5P_DEFAULT);
    ASSERT_GE(dataset, 0);
    H5Dclose(dataset);
    H5Pclose(properties);
    H5Sclose(space);
    H5Fclose(file);
  }
  const File file = File::open_read_only(file_path);
  try {
    (void)file.read_dataset<std::int64_t>("huge");
    FAIL() << "a shape of 2^40 elements with nothing stored was read";
  } catch (const InputError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("'/huge' in file '" + file_path.string() + "' has shape (1099511627776,) "
                           "(8796093022208 bytes of values), but the file stores 0 bytes for it: the file is damaged"),
              std::string::npos) << message;
  }
}

}  // namespace
}  // namespace diffpool::hdf5
