// Job records, experiment summaries and `diffpool report` (results/job_record.hpp, summary.hpp,
// report.hpp): round trips, the CSV and table formats, folder handling, and concurrent use of
// the HDF5 library from several threads. No dataset is needed.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "results/atomic_file.hpp"
#include "results/checksum_block.hpp"
#include "results/hdf5.hpp"
#include "results/job_record.hpp"
#include "results/report.hpp"
#include "results/statistics.hpp"
#include "results/summary.hpp"
#include "tests/unit/results_fixtures.hpp"

namespace diffpool {
namespace {

namespace fs = std::filesystem;
using testing::make_job_record;
using testing::make_summary;

class ResultsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           fmt::format("diffpool-results-{}-{}-{}", ::getpid(), info->test_suite_name(), info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }
  fs::path dir_;
};

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Field by field, with NaN == NaN (nothing here is NaN, but the comparison must not hide one).
void expect_same(double a, double b, const std::string& what) {
  if (std::isnan(a) && std::isnan(b)) return;
  EXPECT_EQ(a, b) << what;
}

void expect_same(const Metrics& a, const Metrics& b, const std::string& what) {
  expect_same(a.loss, b.loss, what + ".loss");
  expect_same(a.classification_loss, b.classification_loss, what + ".classification_loss");
  expect_same(a.link_loss, b.link_loss, what + ".link_loss");
  expect_same(a.entropy_loss, b.entropy_loss, what + ".entropy_loss");
  expect_same(a.accuracy, b.accuracy, what + ".accuracy");
  EXPECT_EQ(a.graphs, b.graphs) << what << ".graphs";
  EXPECT_EQ(a.cluster_usage, b.cluster_usage) << what << ".cluster_usage";
}

void expect_same(const std::optional<Metrics>& a, const std::optional<Metrics>& b, const std::string& what) {
  ASSERT_EQ(a.has_value(), b.has_value()) << what;
  if (a) expect_same(*a, *b, what);
}

void expect_same_outputs(const std::vector<GraphOutputs>& a, const std::vector<GraphOutputs>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    const std::string what = fmt::format("outputs[{}]", i);
    EXPECT_EQ(a[i].graph, b[i].graph) << what;
    EXPECT_EQ(a[i].label, b[i].label) << what;
    EXPECT_EQ(a[i].prediction, b[i].prediction) << what;
    EXPECT_EQ(a[i].logits, b[i].logits) << what;
    EXPECT_EQ(a[i].graph_embedding, b[i].graph_embedding) << what;
    ASSERT_EQ(a[i].levels.size(), b[i].levels.size()) << what;
    for (std::size_t l = 0; l < a[i].levels.size(); ++l) {
      const auto &x = a[i].levels[l], &y = b[i].levels[l];
      EXPECT_EQ(x.rows, y.rows) << what << " level " << l;
      EXPECT_EQ(x.embedding_dim, y.embedding_dim) << what << " level " << l;
      EXPECT_EQ(x.clusters, y.clusters) << what << " level " << l;
      EXPECT_EQ(x.embedding, y.embedding) << what << " level " << l;
      EXPECT_EQ(x.assignment, y.assignment) << what << " level " << l;
      EXPECT_EQ(x.pooled_adjacency, y.pooled_adjacency) << what << " level " << l;
    }
  }
}

void expect_same(const JobRecord& a, const JobRecord& b, bool with_outputs) {
  EXPECT_EQ(a.job_id, b.job_id);
  EXPECT_EQ(a.experiment_id, b.experiment_id);
  EXPECT_EQ(a.experiment_name, b.experiment_name);
  EXPECT_EQ(a.protocol, b.protocol);
  EXPECT_EQ(a.phase, b.phase);
  EXPECT_EQ(a.point, b.point);
  EXPECT_EQ(a.point_label, b.point_label);
  EXPECT_EQ(a.fold, b.fold);
  EXPECT_EQ(a.repeat, b.repeat);
  EXPECT_EQ(a.seed, b.seed);
  EXPECT_EQ(a.dataset, b.dataset);
  EXPECT_EQ(a.variant, b.variant);
  EXPECT_EQ(a.settings, b.settings);
  EXPECT_EQ(a.config_yaml, b.config_yaml);
  EXPECT_EQ(a.train, b.train);
  EXPECT_EQ(a.validation, b.validation);
  EXPECT_EQ(a.test, b.test);
  ASSERT_EQ(a.epochs.size(), b.epochs.size());
  for (std::size_t e = 0; e < a.epochs.size(); ++e) {
    const std::string what = fmt::format("epochs[{}]", e);
    EXPECT_EQ(a.epochs[e].epoch, b.epochs[e].epoch) << what;
    expect_same(a.epochs[e].train, b.epochs[e].train, what + ".train");
    expect_same(a.epochs[e].validation, b.epochs[e].validation, what + ".validation");
    expect_same(a.epochs[e].test, b.epochs[e].test, what + ".test");
    EXPECT_EQ(a.epochs[e].test_predictions, b.epochs[e].test_predictions) << what;
    EXPECT_EQ(a.epochs[e].grad_norm, b.epochs[e].grad_norm) << what;
    EXPECT_EQ(a.epochs[e].train_seconds, b.epochs[e].train_seconds) << what;
    EXPECT_EQ(a.epochs[e].eval_seconds, b.epochs[e].eval_seconds) << what;
  }
  EXPECT_EQ(a.status, b.status);
  EXPECT_EQ(a.failure, b.failure);
  EXPECT_EQ(a.best_epoch, b.best_epoch);
  expect_same(a.best_validation, b.best_validation, "best_validation");
  EXPECT_EQ(a.has_test, b.has_test);
  expect_same(a.test_metrics, b.test_metrics, "test_metrics");
  EXPECT_EQ(a.predictions.graphs, b.predictions.graphs);
  EXPECT_EQ(a.predictions.labels, b.predictions.labels);
  EXPECT_EQ(a.predictions.predictions, b.predictions.predictions);
  EXPECT_EQ(a.predictions.epoch, b.predictions.epoch);
  EXPECT_EQ(a.outputs_split, b.outputs_split);
  if (with_outputs) {
    expect_same_outputs(a.outputs, b.outputs);
    EXPECT_EQ(a.output_edges, b.output_edges);
  } else {
    EXPECT_TRUE(b.outputs.empty());
    EXPECT_TRUE(b.output_edges.empty());
  }
  EXPECT_EQ(a.host, b.host);
  EXPECT_EQ(a.rank, b.rank);
  EXPECT_EQ(a.backend, b.backend);
  EXPECT_EQ(a.version, b.version);
  EXPECT_EQ(a.git_revision, b.git_revision);
  EXPECT_EQ(a.dataset_digest, b.dataset_digest);
  EXPECT_EQ(a.wall_seconds, b.wall_seconds);
  EXPECT_EQ(a.started_at, b.started_at);
  EXPECT_EQ(a.finished_at, b.finished_at);
}

// ---------------------------------------------------------------------------------------------
// Job records.

TEST_F(ResultsTest, JobRecordRoundTripsWithOutputs) {
  const JobRecord record = make_job_record(0, 1);
  const fs::path path = dir_ / "job.h5";
  write_job_record(path, record);
  ASSERT_TRUE(hdf5::is_readable_hdf5(path));
  expect_same(record, read_job_record(path, true), true);
  expect_same(record, read_job_record(path, false), false);
  // Only the final file is left behind.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);
}

TEST_F(ResultsTest, JobFileLayout) {
  const JobRecord record = make_job_record(0, 1);
  const fs::path path = dir_ / "job.h5";
  write_job_record(path, record);
  const hdf5::File file = hdf5::File::open_read_only(path);
  EXPECT_EQ(file.read_attribute<std::string>("format"), "diffpool-job");
  EXPECT_EQ(file.read_attribute<int64_t>("schema_version"), kJobFileSchemaVersion);
  EXPECT_EQ(file.read_attribute<uint64_t>("seed"), record.seed);
  EXPECT_EQ(file.children(),
            (std::vector<std::string>{"config", "metrics", "outputs", "predictions", "result", "settings", "splits"}));
  // Per-epoch columns: NaN where a split was not measured.
  const auto validation_accuracy = file.read_dataset<double>("metrics/validation_accuracy").values;
  ASSERT_EQ(validation_accuracy.size(), 6u);
  EXPECT_TRUE(std::isnan(validation_accuracy[2]));
  EXPECT_DOUBLE_EQ(validation_accuracy[0], 0.5 + 0.05 - 0.02);
  const auto test_loss = file.read_dataset<double>("metrics/test_loss").values;
  EXPECT_TRUE(std::isnan(test_loss[0]));
  EXPECT_FALSE(std::isnan(test_loss[1]));
  EXPECT_EQ(file.read_dataset<uint8_t>("metrics/test_measured").values,
            (std::vector<uint8_t>{0, 1, 0, 1, 0, 1}));
  // Test predictions: every test graph, and per epoch with -1 where the test split was not measured.
  const hdf5::Group predictions = file.open_group("predictions");
  EXPECT_EQ(predictions.read_attribute<std::string>("split"), "test");
  EXPECT_EQ(predictions.read_attribute<int64_t>("epoch"), 5);
  EXPECT_EQ(predictions.read_dataset<int64_t>("graphs").values, (std::vector<int64_t>{0, 10, 20, 30}));
  EXPECT_EQ(predictions.read_dataset<int32_t>("label").values, (std::vector<int32_t>{0, 1, 2, 0}));
  EXPECT_EQ(predictions.read_dataset<int32_t>("prediction").values, (std::vector<int32_t>{0, 2, 1, 0}));
  const auto per_epoch = predictions.read_dataset<int32_t>("per_epoch");
  EXPECT_EQ(per_epoch.shape, (hdf5::Dimensions{6, 4}));
  EXPECT_EQ(std::vector<int32_t>(per_epoch.values.begin(), per_epoch.values.begin() + 8),
            (std::vector<int32_t>{-1, -1, -1, -1, 2, 1, 0, 2}));  // epoch 1 not measured; epoch 2: (g / 2 + 2) % 3
  // Outputs: graph list, shapes, and compression of the large arrays only.
  EXPECT_EQ(file.open_group("outputs").read_attribute<std::vector<int64_t>>("graphs"),
            (std::vector<int64_t>{3, 8, 12, 20, 31}));
  EXPECT_EQ(file.open_dataset("outputs/graphs/31/level0/embedding").shape(), (hdf5::Dimensions{150, 32}));
  EXPECT_EQ(file.open_dataset("outputs/graphs/31/level0/assignment").shape(), (hdf5::Dimensions{150, 6}));
  EXPECT_EQ(file.open_dataset("outputs/graphs/31/level1/pooled_adjacency").shape(), (hdf5::Dimensions{2, 2}));
  EXPECT_EQ(file.open_dataset("outputs/graphs/12/edges").shape(), (hdf5::Dimensions{4, 2}));
  EXPECT_FALSE(file.exists("outputs/graphs/31/level2/assignment"));  // the last level has none
  EXPECT_TRUE(file.exists("outputs/graphs/31/level2/embedding"));
  auto is_chunked = [&](const char* name) {
    const hdf5::Dataset d = file.open_dataset(name);
    const hid_t plist = H5Dget_create_plist(d.id());
    const bool chunked = H5Pget_layout(plist) == H5D_CHUNKED;
    H5Pclose(plist);
    return chunked;
  };
  EXPECT_TRUE(is_chunked("outputs/graphs/31/level0/embedding"));  // 150 x 32 = 4800 values
  EXPECT_FALSE(is_chunked("outputs/graphs/12/level0/embedding"));
}

TEST_F(ResultsTest, FailedJobRecordRoundTrips) {
  JobRecord record = make_job_record(1, 0, 3);
  record.status = "failed";
  record.failure = "numerical failure: loss is NaN at epoch 4";
  record.best_epoch = 0;
  record.best_validation = {};
  record.has_test = false;
  record.test_metrics = {};
  record.predictions = {};
  for (EpochMetrics& e : record.epochs) e.test_predictions.clear();
  record.outputs.clear();
  record.output_edges.clear();
  record.outputs_split.clear();
  record.validation.clear();
  record.point_label.clear();
  const fs::path path = dir_ / "failed.h5";
  write_job_record(path, record);
  expect_same(record, read_job_record(path, true), true);

  // No epochs at all.
  record.epochs.clear();
  write_job_record(path, record);
  expect_same(record, read_job_record(path, true), true);
}

TEST_F(ResultsTest, ReadingOtherFilesFailsWithAMessage) {
  write_summary(dir_ / "summary.h5", make_summary());
  try {
    read_job_record(dir_ / "summary.h5");
    FAIL() << "no exception";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("is not a diffpool job file"), std::string::npos) << e.what();
  }
  write_job_record(dir_ / "job.h5", make_job_record(0, 0));
  EXPECT_THROW(read_summary(dir_ / "job.h5"), InputError);
  EXPECT_THROW(read_job_record(dir_ / "missing.h5"), LibraryError);
}

// A job file written before predictions were stored (no /predictions group) reads with them empty;
// so does a job without a test split (the nested protocol's selection).
TEST_F(ResultsTest, JobFilesWithoutPredictionsStayReadable) {
  JobRecord record = make_job_record(1, 0);
  record.predictions = {};
  for (EpochMetrics& e : record.epochs) e.test_predictions.clear();
  const fs::path path = dir_ / "old.h5";
  write_job_record(path, record);
  EXPECT_FALSE(hdf5::File::open_read_only(path).exists("predictions"));
  const JobRecord read = read_job_record(path, true);
  expect_same(record, read, true);
  EXPECT_TRUE(read.predictions.empty());
  // Predictions without the test graphs they belong to, or of the wrong length, are internal errors.
  JobRecord bad = make_job_record(0, 0);
  bad.predictions.predictions.pop_back();
  EXPECT_THROW(write_job_record(dir_ / "bad.h5", bad), Error);
  bad = make_job_record(0, 0);
  bad.epochs[1].test_predictions.push_back(0);
  EXPECT_THROW(write_job_record(dir_ / "bad.h5", bad), Error);
  bad = make_job_record(0, 0);
  bad.predictions = {};
  EXPECT_THROW(write_job_record(dir_ / "bad.h5", bad), Error);
  EXPECT_FALSE(fs::exists(dir_ / "bad.h5"));
}

TEST_F(ResultsTest, MismatchedEdgeListsAreAnInternalError) {
  JobRecord record = make_job_record(0, 0);
  record.output_edges.pop_back();
  EXPECT_THROW(write_job_record(dir_ / "job.h5", record), Error);
  EXPECT_FALSE(fs::exists(dir_ / "job.h5"));
}

TEST_F(ResultsTest, GraphEdgesAreLocalAndListedOnce) {
  // Two graphs: a triangle (global 0-2) and a path 3-4-5; CSR is symmetric.
  GraphDataset d;
  d.node_offsets = {0, 3, 6};
  d.adjacency_offsets = {0, 2, 4, 6, 7, 9, 10};
  d.adjacency_targets = {1, 2, 0, 2, 0, 1, 4, 3, 5, 4};
  d.labels = {0, 1};
  EXPECT_EQ(graph_edges(d, 0), (std::vector<int32_t>{0, 1, 0, 2, 1, 2}));
  EXPECT_EQ(graph_edges(d, 1), (std::vector<int32_t>{0, 1, 1, 2}));
}

TEST_F(ResultsTest, ListJobFilesSkipsTemporaryFiles) {
  EXPECT_TRUE(list_job_files(dir_).empty());
  fs::create_directories(dir_ / "jobs");
  write_job_record(dir_ / "jobs" / "b.h5", make_job_record(0, 1));
  write_job_record(dir_ / "jobs" / "a.h5", make_job_record(0, 0));
  std::ofstream(dir_ / "jobs" / "c.h5.tmp.123") << "partial";
  std::ofstream(dir_ / "jobs" / "notes.txt") << "x";
  EXPECT_EQ(list_job_files(dir_), (std::vector<fs::path>{dir_ / "jobs" / "a.h5", dir_ / "jobs" / "b.h5"}));
}

// ---------------------------------------------------------------------------------------------
// Summaries.

void expect_same(const ExperimentSummary& a, const ExperimentSummary& b) {
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.experiment_id, b.experiment_id);
  EXPECT_EQ(a.protocol, b.protocol);
  EXPECT_EQ(a.dataset, b.dataset);
  EXPECT_EQ(a.variant, b.variant);
  EXPECT_EQ(a.folds, b.folds);
  EXPECT_EQ(a.repeats, b.repeats);
  EXPECT_EQ(a.jobs_total, b.jobs_total);
  EXPECT_EQ(a.jobs_completed, b.jobs_completed);
  EXPECT_EQ(a.jobs_failed, b.jobs_failed);
  ASSERT_EQ(a.points.size(), b.points.size());
  for (std::size_t i = 0; i < a.points.size(); ++i) {
    const auto &x = a.points[i], &y = b.points[i];
    EXPECT_EQ(x.point, y.point);
    EXPECT_EQ(x.label, y.label);
    EXPECT_EQ(x.jobs, y.jobs);
    expect_same(x.validation_mean, y.validation_mean, "points.validation_mean");
    expect_same(x.validation_std, y.validation_std, "points.validation_std");
    expect_same(x.test_mean, y.test_mean, "points.test_mean");
    expect_same(x.test_std, y.test_std, "points.test_std");
    EXPECT_EQ(x.paper_best_epoch, y.paper_best_epoch);
    expect_same(x.paper_accuracy, y.paper_accuracy, "points.paper_accuracy");
    expect_same(x.paper_std, y.paper_std, "points.paper_std");
  }
  ASSERT_EQ(a.winners.size(), b.winners.size());
  for (std::size_t i = 0; i < a.winners.size(); ++i) {
    const auto &x = a.winners[i], &y = b.winners[i];
    EXPECT_EQ(x.fold, y.fold);
    EXPECT_EQ(x.point, y.point);
    EXPECT_EQ(x.validation, y.validation);
    expect_same(x.test_mean, y.test_mean, "points.test_mean");
    expect_same(x.test_std, y.test_std, "points.test_std");
    EXPECT_EQ(x.runs, y.runs);
  }
  expect_same(a.accuracy_mean, b.accuracy_mean, "accuracy_mean");
  expect_same(a.accuracy_std, b.accuracy_std, "accuracy_std");
  expect_same(a.accuracy_std_population, b.accuracy_std_population, "accuracy_std_population");
  EXPECT_EQ(a.has_split_seed, b.has_split_seed);
  EXPECT_EQ(a.split_seed, b.split_seed);
  EXPECT_EQ(a.accuracy_label, b.accuracy_label);
  EXPECT_EQ(a.optimistic, b.optimistic);
  ASSERT_EQ(a.failures.size(), b.failures.size());
  for (std::size_t i = 0; i < a.failures.size(); ++i) {
    const auto &x = a.failures[i], &y = b.failures[i];
    EXPECT_EQ(x.job_id, y.job_id);
    EXPECT_EQ(x.point, y.point);
    EXPECT_EQ(x.fold, y.fold);
    EXPECT_EQ(x.repeat, y.repeat);
    EXPECT_EQ(x.phase, y.phase);
    EXPECT_EQ(x.reason, y.reason);
  }
  ASSERT_EQ(a.jobs.size(), b.jobs.size());
  for (std::size_t i = 0; i < a.jobs.size(); ++i) {
    const auto &x = a.jobs[i], &y = b.jobs[i];
    EXPECT_EQ(x.job_id, y.job_id);
    EXPECT_EQ(x.phase, y.phase);
    EXPECT_EQ(x.point, y.point);
    EXPECT_EQ(x.fold, y.fold);
    EXPECT_EQ(x.repeat, y.repeat);
    EXPECT_EQ(x.epochs, y.epochs);
    EXPECT_EQ(x.best_epoch, y.best_epoch);
    expect_same(x.validation_accuracy, y.validation_accuracy, "jobs.validation_accuracy");
    expect_same(x.test_accuracy, y.test_accuracy, "jobs.test_accuracy");
    EXPECT_EQ(x.test_split, y.test_split);
    EXPECT_EQ(x.host, y.host);
    EXPECT_EQ(x.git_revision, y.git_revision);
    EXPECT_EQ(x.seconds, y.seconds);
    EXPECT_EQ(x.dataset_digest, y.dataset_digest);
    EXPECT_EQ(x.cluster_usage, y.cluster_usage) << "job " << i;
    ASSERT_EQ(x.validation_curve.size(), y.validation_curve.size()) << "job " << i;
    for (std::size_t e = 0; e < x.validation_curve.size(); ++e)
      expect_same(x.validation_curve[e], y.validation_curve[e], "jobs.validation_curve");
  }
  EXPECT_EQ(a.version, b.version);
  EXPECT_EQ(a.git_revision, b.git_revision);
  EXPECT_EQ(a.backend, b.backend);
  EXPECT_EQ(a.hosts, b.hosts);
  EXPECT_EQ(a.ranks, b.ranks);
  EXPECT_EQ(a.updated_at, b.updated_at);
}

TEST_F(ResultsTest, SummaryRoundTrips) {
  const ExperimentSummary summary = make_summary();
  write_summary(dir_ / "summary.h5", summary);
  expect_same(summary, read_summary(dir_ / "summary.h5"));
}

// A summary written before its job rows recorded the dataset's digest reads back with "" there.
TEST_F(ResultsTest, SummaryWithoutDatasetDigestsStaysReadable) {
  const ExperimentSummary summary = make_summary();
  ASSERT_EQ(summary.jobs.front().dataset_digest, "0123456789abcdef");
  write_summary(dir_ / "summary.h5", summary);
  {
    hdf5::File file = hdf5::File::open_read_write(dir_ / "summary.h5");
    ASSERT_GE(H5Ldelete(file.id(), "jobs/dataset_digest", H5P_DEFAULT), 0);
  }
  hdf5::seal_checksum_block(dir_ / "summary.h5");  // the edit is the writer's, not damage
  const ExperimentSummary read = read_summary(dir_ / "summary.h5");
  ASSERT_EQ(read.jobs.size(), summary.jobs.size());
  for (const SummaryJob& j : read.jobs) EXPECT_EQ(j.dataset_digest, "");
  EXPECT_EQ(read.jobs.back().git_revision, summary.jobs.back().git_revision);
}

TEST_F(ResultsTest, EmptySummaryRoundTrips) {
  ExperimentSummary summary;
  summary.name = "nothing yet";
  write_summary(dir_ / "summary.h5", summary);
  expect_same(summary, read_summary(dir_ / "summary.h5"));
}

TEST_F(ResultsTest, PaperSummaryRoundTripsAndIsOptimisticInTheCsv) {
  ExperimentSummary s = make_summary();
  s.protocol = "paper";
  s.optimistic = true;
  s.points[0].paper_best_epoch = 412;
  s.points[0].paper_accuracy = 0.6425;
  s.points[0].paper_std = 0.04;
  s.accuracy_label = "best epoch of the fold-averaged validation curve (optimistic)";
  write_summary(dir_ / "summary.h5", s);
  expect_same(s, read_summary(dir_ / "summary.h5"));
  write_summary_csv(dir_ / "summary.csv", s);
  const std::string csv = read_text(dir_ / "summary.csv");
  EXPECT_NE(csv.find("synthetic-enzymes,ENZYMES,diffpool,paper,point,0,training.learning_rate=0.001,2,73.0000,1.0000,"
                     "71.0000,2.0000,412,64.2500,4.0000,,,,yes,,,,\n"),
            std::string::npos)
      << csv;
  // Point 1 has no paper figure (NaN): empty cells, no 0.
  EXPECT_NE(csv.find("paper,point,1,training.learning_rate=0.0001,2,74.0000,1.5000,70.0000,3.0000,,,,,,,yes,,,,\n"),
            std::string::npos)
      << csv;
  EXPECT_NE(csv.find(",final,,,4,,,,,,,,70.0000,1.4142,best epoch of the fold-averaged validation curve "
                     "(optimistic),yes,,,,1.0000\n"),
            std::string::npos)
      << csv;
}

TEST_F(ResultsTest, SummaryCsv) {
  ExperimentSummary s = make_summary();
  s.points[1].label = "model.readout=max, \"quoted\"";
  write_summary_csv(dir_ / "summary.csv", s);
  EXPECT_EQ(read_text(dir_ / "summary.csv"),
            "experiment,dataset,variant,protocol,row,point,label,jobs,validation_mean_pct,validation_std_pct,"
            "test_mean_pct,test_std_pct,paper_best_epoch,paper_accuracy_pct,paper_std_pct,accuracy_mean_pct,"
            "accuracy_std_pct,measure,optimistic,fold,tied_points,tie_break,accuracy_std_population_pct\n"
            "synthetic-enzymes,ENZYMES,diffpool,holdout,point,0,training.learning_rate=0.001,2,73.0000,1.0000,"
            "71.0000,2.0000,,,,,,,no,,,,\n"
            "synthetic-enzymes,ENZYMES,diffpool,holdout,point,1,\"model.readout=max, \"\"quoted\"\"\",2,74.0000,"
            "1.5000,70.0000,3.0000,,,,,,,no,,,,\n"
            // One row per outer fold's winner: its point and label, runs, validation, test; fold 1 was a tie.
            "synthetic-enzymes,ENZYMES,diffpool,holdout,winner,1,\"model.readout=max, \"\"quoted\"\"\",1,74.0000,,"
            "71.0000,0.0000,,,,,,,no,0,1,,\n"
            "synthetic-enzymes,ENZYMES,diffpool,holdout,winner,0,training.learning_rate=0.001,1,75.0000,,69.0000,"
            "0.0000,,,,,,,no,1,2,lowest sweep point index among the tied points,\n"
            "synthetic-enzymes,ENZYMES,diffpool,holdout,final,,,4,,,,,,,,70.0000,1.4142,test accuracy of per-fold "
            "winners,no,,,,1.0000\n");
  EXPECT_EQ(csv_field("plain"), "plain");
  EXPECT_EQ(csv_field("a\nb"), "\"a\nb\"");
}

// ---------------------------------------------------------------------------------------------
// Thread safety: job files and summaries written and read from several threads at once.

TEST_F(ResultsTest, ConcurrentWritersAndReadersInOneProcess) {
  const JobRecord record = make_job_record(1, 1);
  const ExperimentSummary summary = make_summary();
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      try {
        for (int i = 0; i < 8; ++i) {
          const fs::path job = dir_ / fmt::format("job-{}-{}.h5", t, i);
          const fs::path sum = dir_ / fmt::format("summary-{}.h5", t);
          write_job_record(job, record);
          write_summary(sum, summary);
          if (read_job_record(job, true).outputs.size() != record.outputs.size()) ++failures;
          if (read_summary(sum).points.size() != summary.points.size()) ++failures;
          if (!hdf5::is_readable_hdf5(job)) ++failures;
        }
      } catch (const std::exception& e) {
        ADD_FAILURE() << e.what();
        ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
}

// ---------------------------------------------------------------------------------------------
// The report.

TEST(Report, PublishedFigures) {
  EXPECT_EQ(canonical_dataset_name("D&D"), "DD");
  EXPECT_EQ(canonical_dataset_name("reddit_multi_12k"), "REDDIT-MULTI-12K");
  EXPECT_EQ(canonical_variant_name("DIFFPOOL_NOLP"), "diffpool-nolp");
  const auto ying = ying_2018_accuracy("D&D", "diffpool");
  ASSERT_TRUE(ying);
  EXPECT_DOUBLE_EQ(ying->mean, 80.64);
  EXPECT_FALSE(ying->has_std);
  EXPECT_DOUBLE_EQ(ying_2018_accuracy("COLLAB", "diffpool-det")->mean, 82.13);
  EXPECT_DOUBLE_EQ(ying_2018_accuracy("REDDIT-MULTI-12K", "graphsage")->mean, 42.24);
  EXPECT_FALSE(ying_2018_accuracy("NCI1", "diffpool"));
  const auto errica = errica_2020_accuracy("ENZYMES", "diffpool");
  ASSERT_TRUE(errica);
  EXPECT_DOUBLE_EQ(errica->mean, 59.5);
  EXPECT_DOUBLE_EQ(errica->std, 5.6);
  EXPECT_DOUBLE_EQ(errica_2020_accuracy("REDDIT-BINARY", "diffpool")->mean, 89.1);
  EXPECT_FALSE(errica_2020_accuracy("ENZYMES", "graphsage"));  // Errica et al. report DiffPool only here
}

std::vector<ReportRow> synthetic_rows() {
  ReportRow paper;
  paper.folder = "results/enzymes-paper";
  paper.experiment = "enzymes-paper";
  paper.dataset = "ENZYMES";
  paper.variant = "diffpool";
  paper.protocol = "paper";
  paper.summarised = true;
  paper.optimistic = true;
  paper.mean_pct = 63.1;
  paper.std_pct = 4.2;
  paper.measure = "best epoch of the fold-averaged validation curve";
  paper.completed = 10;
  paper.total = 10;
  paper.ying = ying_2018_accuracy("ENZYMES", "diffpool");
  paper.cluster_usage = {0.5412, kNotApplicable};

  ReportRow nested = paper;
  nested.folder = "results/enzymes-nested";
  nested.experiment = "enzymes-nested";
  nested.protocol = "nested";
  nested.optimistic = false;
  nested.mean_pct = 58.25;
  nested.std_pct = 5.125;
  nested.measure = "test accuracy of per-fold winners";
  nested.completed = 118;
  nested.failed = 2;
  nested.total = 120;
  nested.ying.reset();
  nested.errica = errica_2020_accuracy("ENZYMES", "diffpool");
  nested.population_std_pct = 4.8625;
  nested.cluster_usage = {0.605};

  ReportRow dd;
  dd.folder = "results/dd-sage";
  dd.experiment = "dd-sage";
  dd.dataset = "DD";
  dd.variant = "graphsage";
  dd.protocol = "holdout";
  dd.summarised = false;
  dd.completed = 3;
  dd.failed = 1;
  dd.total = -1;
  // Unsorted on purpose: DD comes after ENZYMES in the table.
  return {dd, nested, paper};
}

TEST(Report, TableFormatting) {
  const std::string table = format_report_table(synthetic_rows());
  // Ours on Errica et al.'s convention (population std) sits beside their figure.
  const std::string expected_rows =
      "dataset  variant    protocol            ours (%)        jobs done/total  failed  Ying et al. 2018, Table 1  ours, population std  Errica et al. 2020  clusters used  experiment\n"
      "-------  ---------  ------------------  --------------  ---------------  ------  -------------------------  --------------------  ------------------  -------------  ---------------------------------------\n"
      "ENZYMES  diffpool   paper (optimistic)  63.10 +- 4.20   10/10            0       62.53                                                                0.54/-         enzymes-paper (results/enzymes-paper)\n"
      "ENZYMES  diffpool   nested              58.25 +- 5.12   118/120          2                                  58.25 +- 4.86         59.5 +- 5.6         0.60           enzymes-nested (results/enzymes-nested)\n"
      "\n"
      "DD       graphsage  holdout             not summarised  3/?              1                                  -                     -                   -              dd-sage (results/dd-sage)\n";
  EXPECT_NE(table.find(expected_rows), std::string::npos) << table;
  EXPECT_NE(table.find("Graph classification accuracy in %"), std::string::npos);
  EXPECT_NE(table.find("Ying et al. 2018, Table 1: accuracy with the authors' protocol"), std::string::npos);
  EXPECT_NE(table.find("Errica et al. 2020: DiffPool under stratified 10-fold CV"), std::string::npos);
  EXPECT_NE(table.find("Standard deviations: ours (column 'ours') is the sample standard deviation"), std::string::npos);
  EXPECT_NE(table.find("Errica et al.'s code reports the population one (divides by n)"), std::string::npos);
  EXPECT_NE(table.find("Clusters used: per pooling level"), std::string::npos);
}

TEST(Report, Csv) {
  EXPECT_EQ(format_report_csv(synthetic_rows()),
            "dataset,variant,protocol,optimistic,summarised,accuracy_mean_pct,accuracy_std_pct,measure,"
            "jobs_completed,jobs_failed,jobs_total,ying2018_table1_pct,errica2020_mean_pct,errica2020_std_pct,"
            "experiment,folder,accuracy_std_population_pct,paired_baseline,paired_folds,paired_fold_differences_pct,"
            "paired_mean_difference_pct,paired_ci95_low_pct,paired_ci95_high_pct,paired_t,paired_degrees_of_freedom,"
            "paired_p_value,cluster_usage_per_level\n"
            "ENZYMES,diffpool,paper,yes,yes,63.1000,4.2000,best epoch of the fold-averaged validation curve,10,0,"
            "10,62.53,,,enzymes-paper,results/enzymes-paper,,,,,,,,,,,0.5412;\n"
            "ENZYMES,diffpool,nested,no,yes,58.2500,5.1250,test accuracy of per-fold winners,118,2,120,,59.5,5.6,"
            "enzymes-nested,results/enzymes-nested,4.8625,,,,,,,,,,0.6050\n"
            "DD,graphsage,holdout,no,no,,,,3,1,,,,,dd-sage,results/dd-sage,,,,,,,,,,,\n");
}

// The report's cluster usage: the jobs of each fold's winning point, not the nested protocol's
// selection jobs nor the points that lost; per level over the jobs that record it.
TEST(Report, ClusterUsageComesFromTheJobsBehindTheFigure) {
  ExperimentSummary s = make_summary();
  ASSERT_EQ(s.jobs[1].phase, "select");
  ASSERT_EQ(s.jobs[1].point, 0);
  ASSERT_EQ(s.jobs[1].fold, 1);  // fold 1's winner is point 0
  const std::vector<double> expected = {(0.5 + 0.625) / 2, 0.25};
  EXPECT_EQ(reported_cluster_usage(s), expected);
  s.jobs[1].cluster_usage = {0.0, 0.0};  // a selection job of the winning point
  SummaryJob loser = s.jobs[0];          // fold 0 chose point 1: point 0 lost there
  loser.job_id = "0000000000000a04";
  loser.point = 0;
  loser.cluster_usage = {1.0, 1.0, 1.0};
  s.jobs.push_back(loser);
  EXPECT_EQ(reported_cluster_usage(s), expected);
  s.jobs[2].cluster_usage = {kNotApplicable, 0.75};  // a level not measured in one job
  EXPECT_EQ(reported_cluster_usage(s), (std::vector<double>{0.5, 0.5}));
  s.jobs[0].cluster_usage = {};
  s.jobs[2].cluster_usage = {};
  EXPECT_TRUE(reported_cluster_usage(s).empty());  // GraphSAGE, or a summary from before
}

TEST_F(ResultsTest, ReportReadsFoldersAndWritesTheCsv) {
  // A summarised experiment, one with job files only (and a recorded failure), and an empty folder.
  const fs::path done = dir_ / "done", pending = dir_ / "pending", empty = dir_ / "empty";
  fs::create_directories(done / "jobs");
  fs::create_directories(pending / "jobs");
  fs::create_directories(pending / "failed");
  fs::create_directories(empty);
  write_summary(done / "summary.h5", make_summary());
  write_job_record(pending / "jobs" / "a.h5", make_job_record(0, 0));
  write_job_record(pending / "jobs" / "b.h5", make_job_record(1, 0));
  std::ofstream(pending / "failed" / "c.txt") << "job c\nreason out of memory\n";

  const ReportRow row = read_report_row(done);
  EXPECT_TRUE(row.summarised);
  EXPECT_EQ(row.dataset, "ENZYMES");
  EXPECT_EQ(row.protocol, "holdout");
  EXPECT_DOUBLE_EQ(row.mean_pct, 70.0);
  EXPECT_EQ(row.completed, 4);
  EXPECT_EQ(row.failed, 1);
  EXPECT_EQ(row.total, 5);
  ASSERT_TRUE(row.errica);
  EXPECT_DOUBLE_EQ(row.errica->mean, 59.5);
  EXPECT_FALSE(row.ying);
  // The winners' jobs (fold 0 point 1, fold 1 point 0), the selection job of fold 1's point left
  // out: level 0 averaged over both, level 1 recorded by one.
  EXPECT_EQ(row.cluster_usage, (std::vector<double>{(0.5 + 0.625) / 2, 0.25}));
  EXPECT_EQ(reported_cluster_usage(make_summary()), row.cluster_usage);

  const ReportRow pending_row = read_report_row(pending);
  EXPECT_FALSE(pending_row.summarised);
  EXPECT_EQ(pending_row.completed, 2);
  EXPECT_EQ(pending_row.failed, 1);
  EXPECT_EQ(pending_row.experiment, "synthetic-enzymes");

  try {
    read_report_row(empty);
    FAIL() << "no exception";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("neither summary.h5 nor job files"), std::string::npos) << e.what();
  }

  // The whole command: exit status 0 for summarised folders only; the CSV lands in the first folder.
  std::ostringstream out, err;
  EXPECT_EQ(run_report(ReportOptions{{done.string()}, "", "", -1, "", ""}, out, err), 0) << err.str();
  EXPECT_NE(out.str().find("70.00 +- 1.41"), std::string::npos) << out.str();
  EXPECT_TRUE(fs::exists(done / "report.csv"));
  EXPECT_EQ(read_text(done / "report.csv"), format_report_csv({row}));

  // Not summarised, and not an experiment: reported, the CSV where asked; status 2, since a folder
  // that holds no results is bad input.
  std::ostringstream out2, err2;
  const fs::path csv = dir_ / "all.csv";
  EXPECT_EQ(run_report(ReportOptions{{done.string(), pending.string(), empty.string()}, csv.string(), "", -1, "", ""},
                       out2, err2),
            2);
  EXPECT_NE(out2.str().find("has not been summarised"), std::string::npos) << out2.str();
  EXPECT_NE(out2.str().find("`diffpool run <experiment.yaml>`"), std::string::npos) << out2.str();
  EXPECT_NE(err2.str().find("neither summary.h5 nor job files"), std::string::npos) << err2.str();
  EXPECT_EQ(read_text(csv), format_report_csv({row, pending_row}));
}

// ---------------------------------------------------------------------------------------------
// Statistics: the t distribution and the paired t-test. Reference values were computed with
// scipy 1.10.1 (Debian 12's python3-scipy): scipy.special.betainc(a, b, x),
// scipy.stats.t.cdf(t, df), scipy.stats.t.ppf(p, df) and scipy.stats.ttest_rel(a, b), printed
// with repr(); the hand-computed cases use the closed forms of 1 and 2 degrees of freedom.

TEST(Statistics, IncompleteBetaMatchesScipy) {
  struct Case {
    double a, b, x, expected;
  };
  const Case cases[] = {
      {0.5, 0.5, 0.3, 0.3690101195655454},   {2.0, 3.0, 0.4, 0.5247999999999999},
      {4.5, 0.5, 0.9, 0.3434363961379135},   {10.0, 20.0, 0.35, 0.592386663663905},
      {50.0, 0.5, 0.99, 0.31730439787419623},
  };
  for (const Case& c : cases) {
    // lgamma(a + b) of a = 50 carries an absolute error near 1e-14, so a relative 1e-13.
    EXPECT_NEAR(regularized_incomplete_beta(c.a, c.b, c.x), c.expected, 1e-13 * c.expected)
        << "a=" << c.a << " b=" << c.b << " x=" << c.x;
  }
  // I_x(a, 1) = x^a and I_x(1, b) = 1 - (1 - x)^b (from the definition).
  EXPECT_NEAR(regularized_incomplete_beta(3.0, 1.0, 0.7), std::pow(0.7, 3.0), 1e-15);
  EXPECT_NEAR(regularized_incomplete_beta(1.0, 2.5, 0.2), 1.0 - std::pow(0.8, 2.5), 1e-15);
  EXPECT_EQ(regularized_incomplete_beta(2.0, 3.0, 0.0), 0.0);
  EXPECT_EQ(regularized_incomplete_beta(2.0, 3.0, 1.0), 1.0);
  EXPECT_THROW(regularized_incomplete_beta(0.0, 1.0, 0.5), Error);
  EXPECT_THROW(regularized_incomplete_beta(1.0, 1.0, 1.5), Error);
}

TEST(Statistics, StudentTMatchesScipyAndClosedForms) {
  struct Case {
    double df, x, expected;
  };
  const Case cdf[] = {
      {1, 1.0, 0.7500000000000002},   {2, -0.5, 0.33333333333333337}, {3, 0.7, 0.7328365008476182},
      {4, 1.96, 0.9392226800749083},  {9, 2.5, 0.9830690861585071},   {9, -4.0, 0.0015552141551929267},
      {29, 1.2, 0.8800744363676873},  {100, 3.3, 0.99932969023902},   {9, 0.0, 0.5},
  };
  for (const Case& c : cdf) EXPECT_NEAR(student_t_cdf(c.x, c.df), c.expected, 1e-14) << "cdf df=" << c.df << " t=" << c.x;
  const Case ppf[] = {
      {1, 0.975, 12.706204736432095}, {2, 0.975, 4.302652729911275},   {4, 0.975, 2.7764451051977987},
      {9, 0.975, 2.2621571627409915}, {9, 0.995, 3.2498355440153697},  {29, 0.975, 2.045229642132703},
      {100, 0.975, 1.9839715184496334}, {9, 0.025, -2.262157162740992}, {3, 0.6, 0.27667066230490933},
  };
  // scipy's t.ppf (cephes stdtrit) is itself accurate to about 1e-10 relative: for 1 and 2
  // degrees of freedom it is 2.6e-10 and 1.6e-10 away from the closed forms below, which ours
  // meets to 1e-15. So the tolerance against scipy's quantiles is 1e-9 relative.
  for (const Case& c : ppf) {
    EXPECT_NEAR(student_t_quantile(c.x, c.df), c.expected, 1e-9 * std::fabs(c.expected)) << "ppf df=" << c.df << " p=" << c.x;
  }
  // By hand: 1 degree of freedom is the Cauchy distribution, CDF = 1/2 + atan(t) / pi; with 2,
  // CDF = 1/2 + t / (2 sqrt(2 + t^2)), whose quantile is t = (2p - 1) sqrt(2 / (1 - (2p - 1)^2)).
  const double pi = std::acos(-1.0);
  for (const double t : {-30.0, -2.0, -0.3, 0.0, 0.8, 5.0}) {
    EXPECT_NEAR(student_t_cdf(t, 1), 0.5 + std::atan(t) / pi, 1e-15) << t;
    EXPECT_NEAR(student_t_cdf(t, 2), 0.5 + t / (2 * std::sqrt(2 + t * t)), 1e-15) << t;
  }
  for (const double p : {0.01, 0.3, 0.5, 0.9, 0.975, 0.999}) {
    const double q = 2 * p - 1;
    EXPECT_NEAR(student_t_quantile(p, 2), q * std::sqrt(2 / (1 - q * q)), 1e-12 * std::max(1.0, std::fabs(q))) << p;
    EXPECT_NEAR(student_t_quantile(p, 1), std::tan(pi * (p - 0.5)), 1e-12 * std::max(1.0, std::fabs(std::tan(pi * (p - 0.5)))))
        << p;
  }
  // The quantile inverts the CDF, for non-integer degrees of freedom too.
  for (const double df : {0.5, 3.7, 250.0})
    for (const double p : {0.001, 0.2, 0.75, 0.9999}) EXPECT_NEAR(student_t_cdf(student_t_quantile(p, df), df), p, 1e-13);
  EXPECT_EQ(student_t_cdf(std::numeric_limits<double>::infinity(), 5), 1.0);
  EXPECT_EQ(student_t_cdf(-1e300, 5), 0.0);
  EXPECT_THROW(student_t_quantile(1.0, 5), Error);
}

TEST(Statistics, PairedTTestByHandAndAgainstScipy) {
  // By hand: differences 1, 2, 3: mean 2, sd 1, t = 2 / (1 / sqrt 3) = 2 sqrt 3 with 2 degrees of
  // freedom: p = 1 - t / sqrt(2 + t^2) = 1 - sqrt(12 / 14); t_{0.975, 2} = 0.95 sqrt(2 / 0.0975),
  // CI = 2 +- t_{0.975, 2} / sqrt 3.
  const PairedTTest hand = paired_t_test({11, 22, 33}, {10, 20, 30});
  EXPECT_EQ(hand.n, 3);
  EXPECT_DOUBLE_EQ(hand.mean_difference, 2.0);
  EXPECT_DOUBLE_EQ(hand.sd_difference, 1.0);
  EXPECT_DOUBLE_EQ(hand.degrees_of_freedom, 2.0);
  EXPECT_NEAR(hand.t, 2 * std::sqrt(3.0), 1e-14);
  EXPECT_NEAR(hand.p_value, 1 - std::sqrt(12.0 / 14.0), 1e-14);
  const double q = 0.95 * std::sqrt(2 / 0.0975);
  EXPECT_NEAR(hand.ci_low, 2 - q / std::sqrt(3.0), 1e-12);
  EXPECT_NEAR(hand.ci_high, 2 + q / std::sqrt(3.0), 1e-12);

  // scipy.stats.ttest_rel(a, b) -> statistic 3.4278352311686073, pvalue 0.007533985341941715; the
  // interval mean +- scipy.stats.t.ppf(0.975, 9) * sd / sqrt(10) = [0.9633969386357006, 4.702603061364298].
  const std::vector<double> a = {63.33, 58.33, 61.67, 55.0, 66.67, 60.0, 56.67, 65.0, 61.67, 58.33};
  const std::vector<double> b = {60.0, 56.67, 61.67, 51.67, 60.0, 61.67, 53.33, 58.33, 60.0, 55.0};
  const PairedTTest r = paired_t_test(a, b);
  EXPECT_NEAR(r.t, 3.4278352311686073, 1e-12);
  EXPECT_NEAR(r.p_value, 0.007533985341941715, 1e-14);
  EXPECT_NEAR(r.mean_difference, 2.8329999999999997, 1e-12);
  EXPECT_NEAR(r.ci_low, 0.9633969386357006, 1e-9);  // through scipy's t.ppf: 1e-10 relative (above)
  EXPECT_NEAR(r.ci_high, 4.702603061364298, 1e-9);
  // Swapping the two negates the difference; the p-value stays.
  const PairedTTest swapped = paired_t_test(b, a);
  EXPECT_NEAR(swapped.t, -r.t, 1e-12);
  EXPECT_NEAR(swapped.p_value, r.p_value, 1e-15);
  EXPECT_NEAR(swapped.ci_low, -r.ci_high, 1e-12);

  // Every difference equal: no spread (scipy: t = inf, p = 0; or NaN for no difference at all).
  const PairedTTest constant = paired_t_test({2, 3, 4}, {1, 2, 3});
  EXPECT_TRUE(std::isinf(constant.t) && constant.t > 0);
  EXPECT_EQ(constant.p_value, 0.0);
  EXPECT_EQ(constant.ci_low, 1.0);
  EXPECT_EQ(constant.ci_high, 1.0);
  EXPECT_TRUE(std::isnan(paired_t_test({1, 2}, {1, 2}).p_value));
  EXPECT_THROW(paired_t_test({1.0}, {2.0}), InputError);
  EXPECT_THROW(paired_t_test({1, 2, 3}, {1, 2}), InputError);
}

// ---------------------------------------------------------------------------------------------
// Fields that do not apply, the standard-deviation convention and ties.

TEST_F(ResultsTest, FieldsThatDoNotApplyAreNaNNeverZero) {
  // Defaults: nothing measured is NaN (a 0 would read as "0 % accuracy").
  const PointSummary point;
  EXPECT_TRUE(std::isnan(point.test_mean) && std::isnan(point.paper_accuracy) && std::isnan(point.paper_std));
  const ExperimentSummary empty;
  EXPECT_TRUE(std::isnan(empty.accuracy_mean) && std::isnan(empty.accuracy_std_population));
  // Stored as NaN in summary.h5 (h5py reads nan), an empty cell in the CSV.
  ExperimentSummary s = make_summary();
  s.points[0].test_mean = s.points[0].test_std = kNotApplicable;  // a nested selection row: no test split
  write_summary(dir_ / "summary.h5", s);
  const ExperimentSummary back = read_summary(dir_ / "summary.h5");
  EXPECT_TRUE(std::isnan(back.points[0].test_mean));
  EXPECT_TRUE(std::isnan(back.points[1].paper_accuracy));
  EXPECT_NE(format_summary_csv(s).find("point,0,training.learning_rate=0.001,2,73.0000,1.0000,,,,,,,,,no,"),
            std::string::npos)
      << format_summary_csv(s);
  // The report prints "-" for a figure that does not apply.
  ReportRow row = synthetic_rows()[1];
  row.mean_pct = row.std_pct = row.population_std_pct = kNotApplicable;
  const std::string table = format_report_table({row});
  EXPECT_NE(table.find("ENZYMES  diffpool  nested    -         118/120          2                                  -          "),
            std::string::npos)
      << table;
  EXPECT_EQ(table.find("nan"), std::string::npos) << table;
}

TEST_F(ResultsTest, OlderSummariesReadWithoutTheNewFields) {
  // A summary.h5 written before accuracy_std_population, split_seed, tie_rule existed.
  write_summary(dir_ / "summary.h5", make_summary());
  {
    const std::scoped_lock lock(hdf5::library_mutex());
    hdf5::File file = hdf5::File::open_read_write(dir_ / "summary.h5");
    EXPECT_EQ(file.read_attribute<std::string>("tie_rule"), kTieRule);
    EXPECT_EQ(file.read_attribute<uint64_t>("split_seed"), 0xfedcba9876543210ULL);
    file.remove_attribute("accuracy_std_population");
    file.remove_attribute("split_seed");
    file.remove_attribute("tie_rule");
  }
  {  // Those versions had no checksum block either (and the edit above left it stale).
    const std::string bytes = read_text(dir_ / "summary.h5");
    std::ofstream(dir_ / "summary.h5", std::ios::binary | std::ios::trunc) << bytes.substr(hdf5::kChecksumBlockBytes);
  }
  const ExperimentSummary s = read_summary(dir_ / "summary.h5");
  EXPECT_FALSE(s.has_split_seed);
  EXPECT_TRUE(std::isnan(s.accuracy_std_population));
  // The report derives the population std from the sample one over the same 2 fold figures.
  const ReportRow row = read_report_row(dir_);
  EXPECT_NEAR(row.population_std_pct, 1.4142135623730951 * std::sqrt(0.5), 1e-12);
  EXPECT_FALSE(row.has_split_seed);
}

TEST(Report, PairedComparisonOfTwoExperimentsOnTheSameFolds) {
  // Ten folds whose figures are the scipy example of PairedTTestByHandAndAgainstScipy.
  const std::vector<double> a = {63.33, 58.33, 61.67, 55.0, 66.67, 60.0, 56.67, 65.0, 61.67, 58.33};
  const std::vector<double> b = {60.0, 56.67, 61.67, 51.67, 60.0, 61.67, 53.33, 58.33, 60.0, 55.0};
  auto row = [](const std::string& folder, const std::string& variant, const std::vector<double>& figures) {
    ReportRow r;
    r.folder = folder;
    r.experiment = folder;
    r.dataset = "ENZYMES";
    r.variant = variant;
    r.protocol = "nested";
    r.summarised = true;
    r.folds = 10;
    r.has_split_seed = true;
    r.split_seed = 3;
    for (int f = 0; f < 10; ++f) {
      FoldWinner w;
      w.fold = f;
      w.test_mean = figures[static_cast<std::size_t>(f)] / 100;
      w.test_split = fmt::format("{:016x}", f);
      r.winners.push_back(w);
    }
    return r;
  };
  const ReportRow diffpool = row("runs/diffpool", "diffpool", a), sage = row("runs/sage", "graphsage", b);
  const PairedComparison c = compare_paired(diffpool, sage);
  EXPECT_EQ(c.paired_folds.size(), 10u);
  EXPECT_TRUE(c.unpaired_folds.empty());
  EXPECT_NEAR(c.test.t, 3.4278352311686073, 1e-9);  // scipy.stats.ttest_rel, as above
  EXPECT_NEAR(c.test.p_value, 0.007533985341941715, 1e-11);
  EXPECT_NEAR(c.test.ci_low, 0.9633969386357006, 1e-9);
  EXPECT_NEAR(c.test.ci_high, 4.702603061364298, 1e-9);
  const std::string text = format_paired_comparison(c);
  EXPECT_NE(text.find("  difference     +3.33   +1.66   +0.00   +3.33   +6.67   -1.67   +3.34   +6.67   +1.67   +3.33\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("mean difference +2.83 points, 95% CI [+0.96, +4.70] (t distribution, 9 degrees of freedom); "
                      "paired t-test t = 3.428, p = 0.007534 (two-sided)"),
            std::string::npos)
      << text;
  // The CSV row of the experiment carries the comparison; the baseline's row does not.
  const std::string csv = format_report_csv({diffpool, sage}, {c});
  EXPECT_NE(csv.find(",runs/sage,0;1;2;3;4;5;6;7;8;9,3.3300;1.6600;0.0000;3.3300;6.6700;-1.6700;3.3400;6.6700;1.6700;"
                     "3.3300,2.8330,0.9634,4.7026,3.42783523116"),
            std::string::npos)
      << csv;
  EXPECT_NE(csv.find(",9,0.00753398534194"), std::string::npos) << csv;
  EXPECT_NE(csv.find("runs/sage,runs/sage,,,,,,,,,,,\n"), std::string::npos) << csv;

  // A fold one of them has not finished is left out and named.
  ReportRow partial = diffpool;
  partial.winners.pop_back();
  const PairedComparison p = compare_paired(partial, sage);
  EXPECT_EQ(p.paired_folds.size(), 9u);
  EXPECT_EQ(p.unpaired_folds, std::vector<int>{9});
  EXPECT_NE(format_paired_comparison(p).find("paired on 9 folds (not finished in both: fold 9)"), std::string::npos);

  // Not the same splits: refused, naming every difference.
  auto refused = [&](const ReportRow& other, const std::string& expected) {
    try {
      compare_paired(diffpool, other);
      ADD_FAILURE() << "no error, expected: " << expected;
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
    }
  };
  ReportRow other = sage;
  other.dataset = "PROTEINS";
  other.split_seed = 4;
  refused(other, "not evaluated on the same splits: dataset ENZYMES vs PROTEINS; evaluation.split_seed 3 vs 4");
  other = sage;
  other.folds = 5;
  refused(other, "evaluation.folds 10 vs 5");
  other = sage;
  other.winners[4].test_split = "00000000000000ff";
  refused(other, "the test graphs of fold 4 (fingerprint 0000000000000004 vs 00000000000000ff)");
  other = sage;
  other.has_split_seed = false;
  refused(other, "predates stored split seeds");
  other = sage;
  other.summarised = false;
  refused(other, "has no summary.h5");
  other = sage;
  other.winners.resize(1);
  refused(other, "needs at least 2 outer folds that both have finished, they share 1");
}

TEST_F(ResultsTest, ReportCompareOptionPrintsTheComparisonAndRefusesOtherSplits) {
  // Two summarised experiments on the same 2 folds and split seed, and a third with another seed.
  const fs::path a = dir_ / "a", b = dir_ / "b", c = dir_ / "c";
  for (const fs::path& p : {a, b, c}) fs::create_directories(p);
  ExperimentSummary sa = make_summary(), sb = make_summary(), sc = make_summary();
  sa.name = "diffpool";
  sb.name = "graphsage";
  sb.variant = "graphsage";
  sb.winners[0].test_mean = 0.66;
  sb.winners[1].test_mean = 0.68;
  sc.name = "other-seed";
  sc.split_seed = 1;
  write_summary(a / "summary.h5", sa);
  write_summary(b / "summary.h5", sb);
  write_summary(c / "summary.h5", sc);

  std::ostringstream out, err;
  ReportOptions options{{a.string()}, "", "", -1, "", b.string()};
  EXPECT_EQ(run_report(options, out, err), 0) << err.str();
  // Both rows in the table, the baseline included; the comparison and the tie of fold 1.
  EXPECT_NE(out.str().find("graphsage ("), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("Paired comparison with graphsage (" + b.string() + ")"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("  difference     +5.00   +1.00\n"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("model selection was a tie (the same mean validation figure) in fold 1 (2 points); "
                           "broken by the lowest sweep point index among the tied points"),
            std::string::npos)
      << out.str();
  // Mean 3, sd 2 sqrt 2, t = 3 / 2 = 1.5 with 1 degree of freedom: p = 1 - 2 atan(1.5) / pi.
  EXPECT_NE(out.str().find(fmt::format("t = 1.500, p = {:.4g} (two-sided)", 1 - 2 * std::atan(1.5) / std::acos(-1.0))),
            std::string::npos)
      << out.str();
  // A comparison is not the first folder's own table: without --csv no CSV is written (a's own
  // report.csv is left alone); with it, the comparison's columns are there.
  EXPECT_FALSE(fs::exists(a / "report.csv"));
  EXPECT_NE(out.str().find("no CSV written"), std::string::npos) << out.str();
  const fs::path compared = dir_ / "compared.csv";
  std::ostringstream out1, err1;
  ReportOptions with_csv{{a.string()}, compared.string(), "", -1, "", b.string()};
  EXPECT_EQ(run_report(with_csv, out1, err1), 0) << err1.str();
  EXPECT_NE(read_text(compared).find(fmt::format(",{},0;1,5.0000;1.0000,3.0000,", b.string())), std::string::npos)
      << read_text(compared);

  std::ostringstream out2, err2;
  EXPECT_EQ(run_report(ReportOptions{{c.string()}, "", "", -1, "", b.string()}, out2, err2), 2);
  EXPECT_NE(err2.str().find("not evaluated on the same splits: evaluation.split_seed 1 vs 18364758544493064720"),
            std::string::npos)
      << err2.str();

  // Nothing to compare with: bad input too.
  std::ostringstream out3, err3;
  EXPECT_EQ(run_report(ReportOptions{{b.string()}, "", "", -1, "", b.string()}, out3, err3), 2);
  EXPECT_NE(err3.str().find("no experiment to compare with"), std::string::npos) << err3.str();
}

}  // namespace
}  // namespace diffpool
