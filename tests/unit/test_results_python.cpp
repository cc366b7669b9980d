// The Python side of results/: the package results/python/diffpool_results read with Debian's
// /usr/bin/python3 (python3-h5py, numpy, matplotlib, pandas). Writes a realistic experiment folder (four
// jobs: two folds x two sweep points, 6 epochs, 2 pooling levels, 5 graphs of unequal sizes with
// outputs each; a summary; a recorded failure), then
//   - checks load_job / load_experiment value by value (tests/unit/check_results_python.py),
//   - renders every plot and checks each PNG's pixel size from its header,
//   - runs `diffpool report --plots` (run_report), including a failing Python,
//   - checks that the published figures the plots draw are those of the report,
//   - checks that h5dump -H reads a job file.
// Each test is skipped with a message when /usr/bin/python3 (or h5py, matplotlib, h5dump) is missing.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "results/job_record.hpp"
#include "results/report.hpp"
#include "results/summary.hpp"
#include "tests/test_util.hpp"
#include "tests/unit/results_fixtures.hpp"

namespace diffpool {
namespace {

namespace fs = std::filesystem;

const fs::path kPython = "/usr/bin/python3";

std::pair<int, std::string> run_command(const std::string& command) {
  std::string output;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return {-1, "popen failed"};
  std::array<char, 4096> buffer;
  while (const std::size_t n = std::fread(buffer.data(), 1, buffer.size(), pipe)) output.append(buffer.data(), n);
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

std::string quoted(const fs::path& path) { return "'" + path.string() + "'"; }
fs::path python_dir() { return fs::path(testing::source_dir()) / "results" / "python"; }
std::string python_command() {
  return "PYTHONPATH=" + quoted(python_dir()) + " MPLBACKEND=Agg " + kPython.string();
}

// Width and height from a PNG's IHDR chunk; {0, 0} when the file is not a PNG.
std::pair<uint32_t, uint32_t> png_size(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::array<unsigned char, 24> header{};
  in.read(reinterpret_cast<char*>(header.data()), header.size());
  if (in.gcount() != 24) return {0, 0};
  const std::array<unsigned char, 8> signature = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (!std::equal(signature.begin(), signature.end(), header.begin())) return {0, 0};
  if (std::string(header.begin() + 12, header.begin() + 16) != "IHDR") return {0, 0};
  auto be32 = [&](int at) {
    return (uint32_t{header[at]} << 24) | (uint32_t{header[at + 1]} << 16) | (uint32_t{header[at + 2]} << 8) |
           uint32_t{header[at + 3]};
  };
  return {be32(16), be32(20)};
}

// The plots of one graph with two pooling levels, and their pixel sizes
// (diffpool_results.plots.FIGURE_PIXELS).
std::map<std::string, std::pair<uint32_t, uint32_t>> expected_plots(int64_t graph, std::vector<int> folds,
                                                                    bool accuracy) {
  std::map<std::string, std::pair<uint32_t, uint32_t>> files;
  for (const int fold : folds) files[fmt::format("curves_fold{}.png", fold)] = {1200, 800};
  for (int level = 0; level < 2; ++level) {
    files[fmt::format("assignment_graph{}_level{}.png", graph, level)] = {800, 600};
    files[fmt::format("clusters_graph{}_level{}.png", graph, level)] = {800, 800};
    files[fmt::format("pooled_adjacency_graph{}_level{}.png", graph, level)] = {700, 600};
  }
  if (accuracy) {  // an experiment folder: also its confusion matrix
    files["accuracy_points.png"] = {1000, 600};
    files["confusion.png"] = {900, 750};
  }
  return files;
}

void expect_plots(const fs::path& dir, const std::map<std::string, std::pair<uint32_t, uint32_t>>& expected) {
  std::set<std::string> found;
  for (const auto& entry : fs::directory_iterator(dir)) found.insert(entry.path().filename().string());
  std::set<std::string> wanted;
  for (const auto& [name, size] : expected) wanted.insert(name);
  EXPECT_EQ(found, wanted);
  for (const auto& [name, size] : expected) {
    const fs::path path = dir / name;
    ASSERT_TRUE(fs::exists(path)) << path;
    EXPECT_GT(fs::file_size(path), 1000u) << path;
    EXPECT_EQ(png_size(path), size) << path;
  }
}

class ResultsPython : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kPython)) GTEST_SKIP() << "no /usr/bin/python3: install python3, python3-h5py, python3-matplotlib";
    if (run_command(kPython.string() + " -c 'import h5py, numpy, matplotlib, pandas'").first != 0) {
      GTEST_SKIP() << "Debian's python3-h5py / python3-numpy / python3-matplotlib / python3-pandas are not all "
                      "installed (jobs/install-deps.sh --tests)";
    }
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / fmt::format("diffpool-results-python-{}-{}", ::getpid(), info->name());
    fs::remove_all(dir_);
    experiment_ = dir_ / "synthetic-enzymes";
    fs::create_directories(experiment_ / "jobs");
    fs::create_directories(experiment_ / "failed");
    for (int fold = 0; fold < 2; ++fold) {
      for (int64_t point = 0; point < 2; ++point) {
        const JobRecord record = testing::make_job_record(fold, point);
        write_job_record(experiment_ / "jobs" / (record.job_id + ".h5"), record);
      }
    }
    job_ = experiment_ / "jobs" / (testing::make_job_record(0, 1).job_id + ".h5");
    write_summary(experiment_ / "summary.h5", testing::make_summary());
    std::ofstream(experiment_ / "failed" / "00000000000abc99.txt")
        << "job 00000000000abc99\nphase train\npoint 1 training.learning_rate=0.0001\nfold 1\nrepeat 0\n"
           "reason numerical failure: loss is NaN, at epoch 4\n";
  }
  // DIFFPOOL_KEEP_TEST_FILES=1 keeps the folder (its path is printed), to look at the plots.
  void TearDown() override {
    if (const char* keep = std::getenv("DIFFPOOL_KEEP_TEST_FILES"); keep && *keep && *keep != '0') {
      std::printf("kept %s\n", dir_.c_str());
      return;
    }
    std::error_code ignored;
    if (!dir_.empty()) fs::remove_all(dir_, ignored);
  }
  fs::path dir_, experiment_, job_;
};

TEST_F(ResultsPython, LoadJobAndLoadExperimentGiveTheWrittenValues) {
  const fs::path script = fs::path(testing::source_dir()) / "tests/unit/check_results_python.py";
  const auto [status, output] =
      run_command(python_command() + " " + quoted(script) + " " + quoted(experiment_) + " " + quoted(job_));
  EXPECT_EQ(status, 0) << output;
  EXPECT_NE(output.find("results python check passed"), std::string::npos) << output;
}

TEST_F(ResultsPython, PlotsCommandWritesEveryPlot) {
  const fs::path out = dir_ / "plots";
  const auto [status, output] = run_command(python_command() + " -m diffpool_results.plots " + quoted(experiment_) +
                                            " --out " + quoted(out) + " --graph 31");
  ASSERT_EQ(status, 0) << output;
  EXPECT_NE(output.find("wrote 10 plots to"), std::string::npos) << output;
  expect_plots(out, expected_plots(31, {0, 1}, true));

  // One job file on its own: its curves and its first graph.
  const fs::path single = dir_ / "single";
  const auto [status2, output2] = run_command(python_command() + " -m diffpool_results.plots " + quoted(job_) +
                                              " --out " + quoted(single));
  ASSERT_EQ(status2, 0) << output2;
  expect_plots(single, expected_plots(3, {0}, false));

  // A graph no job saved: a clear message, exit status 1.
  const auto [status3, output3] = run_command(python_command() + " -m diffpool_results.plots " +
                                              quoted(experiment_) + " --out " + quoted(dir_ / "none") + " --graph 999");
  EXPECT_NE(status3, 0);
  EXPECT_NE(output3.find("saved outputs for graph 999"), std::string::npos) << output3;
}

TEST_F(ResultsPython, ReportWritesPlotsAndShowsPythonErrors) {
  const fs::path out = dir_ / "report-plots";
  std::ostringstream stdout_text, stderr_text;
  ReportOptions options;
  options.results = {experiment_.string()};
  options.plots = out.string();
  options.python = kPython.string();
  ASSERT_EQ(run_report(options, stdout_text, stderr_text), 0) << stderr_text.str() << stdout_text.str();
  EXPECT_NE(stdout_text.str().find("wrote 10 plots to"), std::string::npos) << stdout_text.str();
  // Default graph: the first saved graph of the preferred job (a winner, lowest point: fold 1, point 0).
  expect_plots(out, expected_plots(1, {0, 1}, true));

  // Several folders: one subfolder each.
  const fs::path copy = dir_ / "copy";
  fs::copy(experiment_, copy, fs::copy_options::recursive);
  options.results = {experiment_.string(), copy.string()};
  options.plots = (dir_ / "many").string();
  options.graph = 27;
  ASSERT_EQ(run_report(options, stdout_text, stderr_text), 0) << stderr_text.str();
  expect_plots(dir_ / "many" / "synthetic-enzymes", expected_plots(27, {0, 1}, true));
  expect_plots(dir_ / "many" / "copy", expected_plots(27, {0, 1}, true));

  // A package that cannot be imported: status 1 and Python's own error.
  ::setenv("DIFFPOOL_PYTHON_DIR", (dir_ / "no-such-dir").c_str(), 1);
  std::ostringstream out3, err3;
  options.results = {experiment_.string()};
  options.plots = (dir_ / "broken").string();
  const int status = run_report(options, out3, err3);
  ::unsetenv("DIFFPOOL_PYTHON_DIR");
  EXPECT_EQ(status, 1);
  EXPECT_NE(err3.str().find("the plots of"), std::string::npos) << err3.str();
  EXPECT_NE(err3.str().find("No module named 'diffpool_results'"), std::string::npos) << err3.str();
}

// Degenerate folders plot without errors: a failed job with no epochs, a job that saved no
// outputs, a summary with no points.
TEST_F(ResultsPython, PlotsOfFailedJobsAndEmptySummaries) {
  const fs::path folder = dir_ / "degenerate";
  fs::create_directories(folder / "jobs");
  JobRecord failed = testing::make_job_record(0, 0);
  failed.status = "failed";
  failed.failure = "out of memory";
  failed.epochs.clear();
  failed.best_epoch = 0;
  failed.has_test = false;
  failed.outputs.clear();
  failed.output_edges.clear();
  failed.outputs_split.clear();
  failed.predictions = {};
  write_job_record(folder / "jobs" / "failed.h5", failed);
  JobRecord plain = testing::make_job_record(1, 0, 2);
  plain.outputs.clear();
  plain.output_edges.clear();
  plain.outputs_split.clear();
  plain.predictions = {};  // as written before predictions were stored: no confusion matrix
  for (EpochMetrics& e : plain.epochs) e.test_predictions.clear();
  write_job_record(folder / "jobs" / "plain.h5", plain);
  ExperimentSummary summary;
  summary.name = "degenerate";
  write_summary(folder / "summary.h5", summary);

  const fs::path out = dir_ / "degenerate-plots";
  const auto [status, output] = run_command(python_command() + " -m diffpool_results.plots " + quoted(folder) +
                                            " --out " + quoted(out));
  ASSERT_EQ(status, 0) << output;
  EXPECT_NE(output.find("no job in"), std::string::npos) << output;
  EXPECT_NE(output.find("stored test predictions"), std::string::npos) << output;
  std::map<std::string, std::pair<uint32_t, uint32_t>> expected = {
      {"curves_fold0.png", {1200, 800}}, {"curves_fold1.png", {1200, 800}}, {"accuracy_points.png", {1000, 600}}};
  expect_plots(out, expected);
}

// The plots draw the published figures from diffpool_results.published, the report prints them
// from report.cpp: both tables hold the same entries, in both directions.
TEST_F(ResultsPython, PublishedFiguresOfThePlotsAreThoseOfTheReport) {
  const auto [status, output] = run_command(python_command() + " -m diffpool_results.published");
  ASSERT_EQ(status, 0) << output;
  std::set<std::string> python_entries;
  std::istringstream lines(output);
  for (std::string line; std::getline(lines, line);) {
    std::vector<std::string> f;
    std::istringstream fields(line);
    for (std::string field; std::getline(fields, field, ',');) f.push_back(field);
    if (line.back() == ',') f.emplace_back();
    ASSERT_EQ(f.size(), 5u) << line;
    const bool ying = f[0] == "ying2018";
    ASSERT_TRUE(ying || f[0] == "errica2020") << line;
    const auto cpp = ying ? ying_2018_accuracy(f[1], f[2]) : errica_2020_accuracy(f[1], f[2]);
    ASSERT_TRUE(cpp.has_value()) << "report.cpp has no figure for " << line;
    EXPECT_DOUBLE_EQ(cpp->mean, std::stod(f[3])) << line;
    EXPECT_EQ(cpp->has_std, !f[4].empty()) << line;
    if (cpp->has_std) {
      EXPECT_DOUBLE_EQ(cpp->std, std::stod(f[4])) << line;
    }
    python_entries.insert(f[0] + "," + f[1] + "," + f[2]);
  }
  // Every figure of report.cpp is in the Python table.
  for (const char* dataset : {"ENZYMES", "DD", "REDDIT-MULTI-12K", "COLLAB", "PROTEINS", "NCI1", "IMDB-BINARY",
                              "IMDB-MULTI", "REDDIT-BINARY"}) {
    for (const char* variant : {"diffpool", "diffpool-nolp", "diffpool-det", "graphsage"}) {
      EXPECT_EQ(ying_2018_accuracy(dataset, variant).has_value(),
                python_entries.count(fmt::format("ying2018,{},{}", dataset, variant)) == 1)
          << dataset << " " << variant;
      EXPECT_EQ(errica_2020_accuracy(dataset, variant).has_value(),
                python_entries.count(fmt::format("errica2020,{},{}", dataset, variant)) == 1)
          << dataset << " " << variant;
    }
  }
}

TEST_F(ResultsPython, H5dumpReadsTheJobFileHeader) {
  const fs::path h5dump = "/usr/bin/h5dump";
  if (!fs::exists(h5dump)) GTEST_SKIP() << "no /usr/bin/h5dump: install hdf5-tools";
  const auto [status, output] = run_command(h5dump.string() + " -H " + quoted(job_));
  EXPECT_EQ(status, 0) << output;
  for (const char* expected : {"GROUP \"metrics\"", "DATASET \"validation_accuracy\"", "GROUP \"level1\"",
                               "DATASET \"pooled_adjacency\"", "ATTRIBUTE \"schema_version\"",
                               "H5T_STD_U64LE"}) {
    EXPECT_NE(output.find(expected), std::string::npos) << expected << "\n" << output.substr(0, 2000);
  }
  const auto [status2, output2] = run_command(h5dump.string() + " -H " + quoted(experiment_ / "summary.h5"));
  EXPECT_EQ(status2, 0) << output2;
  EXPECT_NE(output2.find("GROUP \"winners\""), std::string::npos) << output2;
}

}  // namespace
}  // namespace diffpool
