// Experiment files: every malformed file gives its specific message with line and column, before
// any work starts; plans are deterministic.
#include <gtest/gtest.h>

#include "runner/config.hpp"
#include "runner/plan.hpp"
#include "tests/test_util.hpp"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace diffpool {
namespace {

struct BadCase {
  const char* name;
  const char* yaml;
  const char* expected;  // substring of the error message
};

class BadExperimentFile : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadExperimentFile, NamesPlaceKeyAndValue) {
  const BadCase& c = GetParam();
  try {
    parse_experiment(c.yaml, "bad.yaml");
    FAIL() << "no error for case " << c.name;
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(c.expected), std::string::npos)
        << "case " << c.name << ": message was: " << e.what() << "\nexpected to contain: " << c.expected;
  }
}

const BadCase kBadCases[] = {
    {"typo in a key", "name: x\nmodel:\n  hiden_dim: 64\n",
     "bad.yaml:3:3: unknown key 'model.hiden_dim' (did you mean 'hidden_dim'?)"},
    {"unknown section", "name: x\nmodle:\n  hidden_dim: 64\n", "bad.yaml:2:1: unknown key 'modle' (did you mean 'model'?)"},
    {"not a number", "model:\n  hidden_dim: sixty\n", "bad.yaml:2:15: model.hidden_dim: expected an integer, got 'sixty'"},
    {"float for an integer", "training:\n  epochs: 10.5\n", "bad.yaml:2:11: training.epochs: expected an integer, got '10.5'"},
    {"out of range", "model:\n  dropout: 1.5\n", "bad.yaml:2:12: model.dropout: 1.5 is out of range: allowed [0, 1)"},
    {"negative learning rate", "training:\n  learning_rate: -0.1\n",
     "bad.yaml:2:18: training.learning_rate: -0.1 is out of range: allowed (0, 10]"},
    {"unknown variant", "model:\n  variant: diffpol\n",
     "bad.yaml:2:12: model.variant: unknown model variant 'diffpol': expected diffpool, diffpool-nolp, diffpool-det or graphsage"},
    {"unknown protocol", "evaluation:\n  protocol: cv\n",
     "bad.yaml:2:13: evaluation.protocol: unknown protocol 'cv': expected paper, holdout or nested"},
    {"bool expected", "model:\n  batch_norm: maybe\n", "bad.yaml:2:15: model.batch_norm: expected true or false, got 'maybe'"},
    {"list of integers", "model:\n  conv_layers: [2, x]\n", "model.conv_layers: expected an integer, got 'x'"},
    {"section is not a mapping", "model: 3\n", "bad.yaml:1:8: model: expected a mapping of keys, got '3'"},
    {"YAML syntax", "model:\n  hidden_dim: [1, 2\n", "bad.yaml:3:1: YAML syntax error"},
    {"fold outside folds", "evaluation:\n  folds: 5\n  only_folds: [7]\n",
     "evaluation.only_folds: 7 is out of range: allowed 0 to 4"},
    {"sweep key outside model/training/dataset", "sweep:\n  parameters:\n    evaluation.folds: [2, 3]\n",
     "bad.yaml:3:5: sweep.parameters.evaluation.folds: only model.*, training.* and dataset.* keys can be swept"},
    {"distribution in a grid", "sweep:\n  parameters:\n    training.learning_rate: {log_uniform: [0.0001, 0.01]}\n",
     "a distribution needs sweep.mode: random"},
    {"bad distribution range", "sweep:\n  mode: random\n  parameters:\n    training.learning_rate: {log_uniform: [0, 0.01]}\n",
     "invalid range [0, 0.01] (log_uniform needs 0 < low <= high)"},
    {"empty value list", "sweep:\n  parameters:\n    model.hidden_dim: []\n", "the list of values is empty"},
    {"pooling levels for DiffPool", "model:\n  variant: diffpool\n  pool_levels: 0\n",
     "model.pool_levels: variant diffpool needs at least one pooling level"},
    {"bad dtype", "training:\n  dtype: f16\n", "bad.yaml:2:10: training.dtype: unknown dtype 'f16': expected f32 or f64"},
    {"bad backend", "backend:\n  kind: tpu\n", "bad.yaml:2:9: backend.kind: unknown backend 'tpu': expected cpu, cuda or auto"},
    {"bad matmul precision", "backend:\n  matmul_precision: bf16\n",
     "bad.yaml:2:21: backend.matmul_precision: unknown matmul precision 'bf16': expected fp32 or tf32"},
    {"bad huge pages", "backend:\n  huge_pages: always\n",
     "bad.yaml:2:15: backend.huge_pages: unknown huge pages 'always': expected auto, on or off"},
    {"tf32 with f64 training", "training:\n  dtype: f64\nbackend:\n  matmul_precision: tf32\n",
     "bad.yaml:4:21: backend.matmul_precision: tf32 reduces f32 products, but training.dtype is f64"},
    {"bad features", "dataset:\n  features: colour\n", "bad.yaml:2:13: dataset.features: unknown feature mode 'colour'"},
    {"name with a slash", "name: a/b\n", "name: 'a/b' is not usable as a folder name"},
    {"empty file", "", "bad.yaml: the experiment file is empty"},
    // A key given twice is an error, not "the first wins", at any depth.
    {"duplicate key", "model:\n  hidden_dim: 8\n  hidden_dim: 16\n",
     "bad.yaml:3:3: duplicate key 'hidden_dim' (first given at line 2)"},
    {"duplicate section", "model:\n  hidden_dim: 8\nmodel:\n  hidden_dim: 16\n", "bad.yaml:3:1: duplicate key 'model'"},
    {"duplicate sweep key", "sweep:\n  parameters:\n    model.hidden_dim: [8]\n    model.hidden_dim: [16]\n",
     "bad.yaml:4:5: duplicate key 'model.hidden_dim'"},
    {"second document", "name: a\n---\nname: b\n", "bad.yaml:3:1: a second YAML document (after '---')"},
    // Sweep values are checked like the key's own value, at the list element's place.
    {"unknown sweep key", "sweep:\n  parameters:\n    model.hiden_dim: [8, 16]\n",
     "bad.yaml:3:5: sweep.parameters: unknown key 'model.hiden_dim' (did you mean 'model.hidden_dim'?)"},
    {"negative learning rate in a sweep", "sweep:\n  parameters:\n    training.learning_rate: [0.01, -0.1]\n",
     "bad.yaml:3:36: training.learning_rate: -0.1 is out of range: allowed (0, 10]"},
    {"non-numeric learning rate in a sweep", "sweep:\n  parameters:\n    training.learning_rate:\n      - 0.01\n      - fast\n",
     "bad.yaml:5:9: training.learning_rate: expected a number, got 'fast'"},
    {"unknown name in a sweep", "sweep:\n  parameters:\n    model.readout: [max, median]\n",
     "bad.yaml:3:26: model.readout: unknown readout 'median': expected max, mean or sum"},
    {"distribution bound out of range", "sweep:\n  mode: random\n  parameters:\n    model.dropout: {uniform: [0.1, 1.5]}\n",
     "bad.yaml:4:36: model.dropout: 1.5 is out of range: allowed [0, 1)"},
    {"real distribution for an integer key", "sweep:\n  mode: random\n  parameters:\n    model.hidden_dim: {uniform: [8, 64]}\n",
     "sweep.parameters.model.hidden_dim: uniform draws real numbers, but model.hidden_dim takes integers (use int_uniform)"},
    {"key without a value", "model:\n  hidden_dim:\n  dropout: 0.1\n",
     "bad.yaml:2:3: model.hidden_dim: no value (leave the key out to use its default)"},
    {"explicit null", "training:\n  epochs: ~\n", "bad.yaml:2:3: training.epochs: no value"},
    {"empty conv_layers", "model:\n  conv_layers: []\n",
     "bad.yaml:2:16: model.conv_layers: the list is empty: give at least one value"},
    // The job count is refused from the settings, before anything is expanded.
    {"sweep too large",
     "evaluation:\n  folds: 10\n  repeats: 10\nsweep:\n  parameters:\n    model.hidden_dim: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n"
     "    model.embedding_dim: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n    training.epochs: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]\n",
     "bad.yaml:5:3: sweep: the experiment expands to 110000 jobs (1100 sweep points x 10 folds x 10 repeats), more than the "
     "limit of 100000"},
    {"random search too large", "evaluation:\n  repeats: 1000\nsweep:\n  mode: random\n  samples: 101\n  parameters:\n"
     "    model.hidden_dim: [8, 16]\n",
     "sweep: the experiment expands to 1010000 jobs (101 sweep points x 10 folds x 1000 repeats)"},
};
INSTANTIATE_TEST_SUITE_P(Table, BadExperimentFile, ::testing::ValuesIn(kBadCases));

// Found by tests/fuzz (corpus/experiment/regression-scalar-document-with-set): --set on a document
// that is a scalar or a list escaped as yaml-cpp's BadSubscript (an internal error, exit 1).
TEST(ExperimentFile, OverrideOnADocumentThatIsNotAMapping) {
  for (const char* text : {"just a scalar\n", "- a\n- b\n"}) {
    try {
      parse_experiment(text, "s.yaml", {"model.hidden_dim=8"});
      FAIL() << text;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("command line '--set model.hidden_dim=8': cannot set 'model.hidden_dim': "
                                           "the experiment document is not a mapping"), std::string::npos)
          << e.what();
    }
  }
}

// Found by tests/fuzz (corpus/experiment/regression-stray-comma): yaml-cpp 0.7's LoadAll never
// returns on " ,", so validate hung while its memory grew; it is a syntax error with a position.
TEST(ExperimentFile, StrayCommaIsASyntaxErrorNotAHang) {
  for (const char* text : {" ,\n", ",\n"}) {
    try {
      parse_experiment(text, "bad.yaml");
      FAIL() << text;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("bad.yaml:"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("YAML syntax error"), std::string::npos) << e.what();
    }
  }
}

// --set: every problem names the --set argument, never a file position.
struct OverrideCase {
  const char* name;
  const char* override_text;
  const char* expected;
};

class BadOverride : public ::testing::TestWithParam<OverrideCase> {};

TEST_P(BadOverride, NamesTheArgument) {
  const OverrideCase& c = GetParam();
  try {
    parse_experiment("name: x\n", "e.yaml", {c.override_text});
    FAIL() << "no error for case " << c.name;
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(c.expected), std::string::npos)
        << "case " << c.name << ": message was: " << e.what() << "\nexpected to contain: " << c.expected;
    EXPECT_EQ(std::string(e.what()).find("e.yaml"), std::string::npos) << e.what();
  }
}

const OverrideCase kBadOverrides[] = {
    {"not an integer", "model.hidden_dim=abc",
     "command line '--set model.hidden_dim=abc': model.hidden_dim: expected an integer, got 'abc'"},
    {"empty value", "model.hidden_dim=", "command line '--set model.hidden_dim=': the value is empty"},
    {"blank value", "training.epochs=  ", "command line '--set training.epochs=  ': the value is empty"},
    {"unknown key", "model.hiden_dim=3",
     "command line '--set model.hiden_dim=3': unknown key 'model.hiden_dim' (did you mean 'model.hidden_dim'?)"},
    {"unknown section", "modle.hidden_dim=3", "command line '--set modle.hidden_dim=3': unknown key 'modle.hidden_dim'"},
    {"no equals sign", "model.hidden_dim", "command line '--set model.hidden_dim': expected key=value"},
    {"empty list", "model.conv_layers=[]", "command line '--set model.conv_layers=[]': model.conv_layers: the list is empty"},
    {"fold outside folds", "evaluation.only_folds=[12]",
     "command line '--set evaluation.only_folds=[12]': evaluation.only_folds: 12 is out of range: allowed 0 to 9"},
};
INSTANTIATE_TEST_SUITE_P(Table, BadOverride, ::testing::ValuesIn(kBadOverrides));

// The flags of `diffpool train` go through the same ranges, and the error names the flag.
struct FlagCase {
  const char* key;
  const char* value;
  const char* argument;
  const char* expected;  // empty: valid
};

class TrainFlag : public ::testing::TestWithParam<FlagCase> {};

TEST_P(TrainFlag, IsCheckedAgainstTheSchema) {
  const FlagCase& c = GetParam();
  if (std::string(c.expected).empty()) {
    EXPECT_NO_THROW(check_setting_value(c.key, c.value, c.argument));
    return;
  }
  try {
    check_setting_value(c.key, c.value, c.argument);
    FAIL() << c.argument << " was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(c.expected), std::string::npos) << e.what();
  }
}

const FlagCase kTrainFlags[] = {
    {"training.epochs", "0", "--epochs 0", "command line '--epochs 0': training.epochs: 0 is out of range: allowed 1 to 1000000"},
    {"training.epochs", "-5", "--epochs -5", "command line '--epochs -5': training.epochs: -5 is out of range"},
    {"training.epochs", "ten", "--epochs ten", "command line '--epochs ten': training.epochs: expected an integer, got 'ten'"},
    {"training.epochs", "", "--epochs ", "command line '--epochs ': the value is empty"},
    {"training.seed", "-1", "--seed -1", "command line '--seed -1': training.seed: -1 is out of range"},
    {"backend.cpu_threads", "0", "--threads 0", "command line '--threads 0': backend.cpu_threads: 0 is out of range: allowed 1 to 1024"},
    {"evaluation.folds", "0", "--folds 0", "command line '--folds 0': evaluation.folds: 0 is out of range: allowed 2 to 1000"},
    {"backend.kind", "tpu", "--backend tpu", "command line '--backend tpu': backend.kind: unknown backend 'tpu'"},
    {"training.epochs", "5", "--epochs 5", ""},
    {"training.seed", "0", "--seed 0", ""},
    {"evaluation.folds", "2", "--folds 2", ""},
};
INSTANTIATE_TEST_SUITE_P(Table, TrainFlag, ::testing::ValuesIn(kTrainFlags));

TEST(ExperimentFile, SweepPointsNameTheirOrigin) {
  // Each value is valid on its own; the combination of point 0 is not.
  ExperimentConfig base =
      parse_experiment("name: x\nmodel:\n  variant: diffpool\nsweep:\n  parameters:\n    model.pool_levels: [0, 1]\n", "e.yaml");
  try {
    make_plan(base);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("sweep point 0 (model.pool_levels=0): model.pool_levels: variant diffpool needs at least "
                                         "one pooling level"),
              std::string::npos)
        << e.what();
  }
}

TEST(ExperimentFile, SizeIsLimitedBeforeReading) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "diffpool_test_config_size";
  std::filesystem::create_directories(dir);
  const std::string big = (dir / "big.yaml").string();
  {
    std::ofstream out(big);
    out << "name: big\n";
    out << std::string(kMaxExperimentFileBytes, '#') << "\n";  // a comment: valid YAML, only too long
  }
  try {
    load_experiment(big);
    FAIL() << "a file over the limit was read";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(big + ": the experiment file is larger than the limit of 1048576 bytes"),
              std::string::npos)
        << e.what();
  }
  {
    std::ofstream out(big);
    out << "name: small\n";
    out << std::string(kMaxExperimentFileBytes - 100, '#') << "\n";
  }
  EXPECT_EQ(load_experiment(big).name, "small");
  std::filesystem::remove_all(dir);
  // An endless file fails as fast as a large one.
  EXPECT_THROW(load_experiment("/dev/zero"), ConfigError);
}

TEST(Plan, ThousandsOfPointsStaySmall) {
  // 2000 grid points: each point's document is its own (sharing the swept value nodes merged all
  // documents into one yaml-cpp memory pool, which took minutes and gigabytes).
  const auto start = std::chrono::steady_clock::now();
  ExperimentPlan p = make_plan(parse_experiment(
      "name: g\nevaluation:\n  folds: 2\nsweep:\n  parameters:\n    model.hidden_dim: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n"
      "    model.embedding_dim: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n    training.epochs: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n"
      "    training.batch_size: [1, 2]\n",
      "g.yaml"));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(p.points.size(), 2000u);
  EXPECT_EQ(p.points[1999].label, "model.embedding_dim=10 model.hidden_dim=10 training.batch_size=2 training.epochs=10");
  EXPECT_LT(seconds, 30.0);
}

TEST(ExperimentFile, FoldsAreCheckedAgainstTheDataset) {
  // run and train make this check when they load the dataset, before any job starts.
  const ExperimentConfig c = parse_experiment("name: x\nevaluation:\n  folds: 12\n", "f.yaml");
  GraphDataset d;
  d.name = "TINY";
  d.labels.assign(11, 0);
  try {
    check_against_dataset(c, d);
    FAIL() << "12 folds of 11 graphs were accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("f.yaml:3:10: evaluation.folds: 12 folds, but dataset TINY has 11 graphs: allowed 2 to 11"),
              std::string::npos)
        << e.what();
  }
  d.labels.assign(12, 0);
  EXPECT_NO_THROW(check_against_dataset(c, d));
}

TEST(ModelConfig, ValidateUsesTheSchemaRanges) {
  // The engine's own check accepts and refuses what the experiment files do (they share model_limits).
  ModelConfig m;
  EXPECT_NO_THROW(m.validate());
  m.dense_degree_eps = 2.0;  // was accepted by validate() while the parser refused it
  EXPECT_THROW(m.validate(), InputError);
  EXPECT_THROW(parse_experiment("model:\n  dense_degree_eps: 2\n", "m.yaml"), ConfigError);
  m = ModelConfig{};
  m.conv_layers.clear();
  EXPECT_THROW(m.validate(), InputError);
  m = ModelConfig{};
  m.batch_norm_eps = 0.0;
  EXPECT_THROW(m.validate(), InputError);
  m = ModelConfig{};
  m.hidden_dim = (1 << 16) + 1;
  EXPECT_THROW(m.validate(), InputError);
  EXPECT_THROW(parse_experiment("model:\n  hidden_dim: 65537\n", "m.yaml"), ConfigError);
  m.hidden_dim = 1 << 16;
  EXPECT_NO_THROW(m.validate());
}

TEST(ExperimentFile, EveryShippedConfigValidates) {
  int checked = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(testing::source_dir() + "/configs")) {
    if (entry.path().extension() != ".yaml") continue;
    SCOPED_TRACE(entry.path().string());
    EXPECT_NO_THROW(make_plan(load_experiment(entry.path().string())));
    ++checked;
  }
  EXPECT_GE(checked, 40);
}

TEST(Plan, GridTimesFoldsTimesRepeatsWithDeterministicIds) {
  const char* yaml =
      "name: p\nevaluation:\n  folds: 3\n  repeats: 2\nsweep:\n  parameters:\n    model.hidden_dim: [8, 16]\n"
      "    training.learning_rate: [0.01, 0.001, 0.0001]\n";
  ExperimentPlan a = make_plan(parse_experiment(yaml, "p.yaml"));
  ExperimentPlan b = make_plan(parse_experiment(yaml, "p.yaml"));
  ASSERT_EQ(a.points.size(), 6u);
  ASSERT_EQ(a.jobs.size(), 6u * 3 * 2);
  EXPECT_EQ(a.points[1].label, "model.hidden_dim=8 training.learning_rate=0.001");
  EXPECT_EQ(a.points[1].config.model.hidden_dim, 8);
  EXPECT_DOUBLE_EQ(a.points[1].config.training.learning_rate, 0.001);
  EXPECT_EQ(a.experiment_id, b.experiment_id);
  std::set<std::string> ids;
  for (const JobSpec& j : a.jobs) {
    EXPECT_EQ(job_id(a, j, j.point), job_id(b, b.jobs[static_cast<std::size_t>(j.index)], j.point));
    ids.insert(job_id(a, j, j.point));
  }
  EXPECT_EQ(ids.size(), a.jobs.size()) << "job ids collide";
  // Changing a setting changes the experiment and the ids; choosing folds does not.
  ExperimentPlan c = make_plan(parse_experiment(yaml, "p.yaml", {"training.epochs=7"}));
  EXPECT_NE(c.experiment_id, a.experiment_id);
  ExperimentPlan d = make_plan(parse_experiment(yaml, "p.yaml", {"evaluation.only_folds=[1]"}));
  EXPECT_EQ(d.experiment_id, a.experiment_id);
  EXPECT_EQ(d.jobs.size(), 12u);
  EXPECT_EQ(job_id(d, d.jobs[0], d.jobs[0].point), job_id(a, a.jobs[12], a.jobs[12].point));
}

TEST(Plan, PointsKeepTheirSettingsAndRebuildTheirDocument) {
  // A point holds its typed settings only; the document its jobs record is rebuilt from the base's
  // and equals the file with the point's values set on the command line.
  const char* yaml =
      "name: p\nmodel:\n  hidden_dim: 32\nevaluation:\n  folds: 2\nsweep:\n  parameters:\n    model.hidden_dim: [8, 16]\n"
      "    training.learning_rate: [0.01, 0.001]\n";
  const ExperimentPlan plan = make_plan(parse_experiment(yaml, "p.yaml"));
  ASSERT_EQ(plan.points.size(), 4u);
  for (const SweepPoint& p : plan.points) {
    EXPECT_TRUE(p.config.document.IsNull()) << p.label;
    EXPECT_TRUE(p.config.sweep.parameters.empty()) << p.label;
  }
  const ExperimentConfig by_hand =
      parse_experiment(yaml, "p.yaml", {"model.hidden_dim=16", "training.learning_rate=0.001"});
  EXPECT_EQ(plan.points[3].label, "model.hidden_dim=16 training.learning_rate=0.001");
  EXPECT_EQ(YAML::Dump(point_document(plan, 3)), YAML::Dump(by_hand.document));
  EXPECT_EQ(plan.points[3].config.canonical_settings(), by_hand.canonical_settings());
  EXPECT_EQ(YAML::Dump(plan.base.document), YAML::Dump(parse_experiment(yaml, "p.yaml").document))
      << "expanding the points changed the base's document";

  // Without a sweep, the one point's document is the file's, left whole by the expansion.
  const char* plain = "name: q\nmodel:\n  hidden_dim: 24\nevaluation:\n  folds: 2\n";
  const ExperimentPlan single = make_plan(parse_experiment(plain, "q.yaml"));
  ASSERT_EQ(single.points.size(), 1u);
  EXPECT_TRUE(single.points[0].config.document.IsNull());
  EXPECT_EQ(YAML::Dump(point_document(single, 0)), YAML::Dump(parse_experiment(plain, "q.yaml").document));
  EXPECT_NE(YAML::Dump(point_document(single, 0)).find("hidden_dim: 24"), std::string::npos);
}

TEST(Plan, HashedPieceByPieceEqualsHashedWhole) {
  EXPECT_EQ(Fnv1a().add("point 0\n").add("model.hidden_dim=8\n").hex(), hash_hex("point 0\nmodel.hidden_dim=8\n"));
  EXPECT_EQ(Fnv1a().hex(), hash_hex(""));
  EXPECT_NE(hash_hex("a"), hash_hex("b"));
}

TEST(Plan, NestedRetrainsDependOnTheirFoldsSelection) {
  ExperimentPlan p = make_plan(parse_experiment(
      "name: n\nevaluation:\n  protocol: nested\n  folds: 3\n  repeats: 2\nsweep:\n  parameters:\n    training.learning_rate: [0.01, 0.001]\n",
      "n.yaml"));
  int select = 0, retrain = 0;
  for (const JobSpec& j : p.jobs) {
    if (j.phase == Phase::select) {
      ++select;
      EXPECT_TRUE(p.dependencies(j).empty());
    } else {
      ++retrain;
      EXPECT_EQ(j.point, -1);
      const auto deps = p.dependencies(j);
      EXPECT_EQ(deps.size(), 2u);
      for (int64_t d : deps) EXPECT_EQ(p.jobs[static_cast<std::size_t>(d)].fold, j.fold);
    }
  }
  EXPECT_EQ(select, 6);
  EXPECT_EQ(retrain, 6);
}

TEST(Plan, RandomSearchIsSeeded) {
  const char* yaml =
      "name: r\nsweep:\n  mode: random\n  samples: 5\n  seed: 3\n  parameters:\n    training.learning_rate: {log_uniform: [0.0001, 0.1]}\n"
      "    model.hidden_dim: {int_uniform: [8, 64]}\n";
  ExperimentPlan a = make_plan(parse_experiment(yaml, "r.yaml"));
  ExperimentPlan b = make_plan(parse_experiment(yaml, "r.yaml"));
  ASSERT_EQ(a.points.size(), 5u);
  for (std::size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(a.points[i].label, b.points[i].label);
    EXPECT_GE(a.points[i].config.training.learning_rate, 0.0001);
    EXPECT_LE(a.points[i].config.training.learning_rate, 0.1);
    EXPECT_GE(a.points[i].config.model.hidden_dim, 8);
    EXPECT_LE(a.points[i].config.model.hidden_dim, 64);
  }
}

TEST(Plan, LongestJobsAreEstimatedLongest) {
  ExperimentPlan p = make_plan(parse_experiment(
      "name: c\nmodel:\n  hidden_dim: 8\nevaluation:\n  folds: 2\nsweep:\n  parameters:\n    training.epochs: [5, 500]\n"
      "    model.embedding_dim: [8, 64]\n",
      "c.yaml"));
  // Cost grows with epochs and width: the (500 epochs, width 64) point is the most expensive.
  double best = 0;
  int64_t best_point = -1;
  for (const JobSpec& j : p.jobs)
    if (j.cost > best) {
      best = j.cost;
      best_point = j.point;
    }
  EXPECT_EQ(p.points[static_cast<std::size_t>(best_point)].label, "model.embedding_dim=64 training.epochs=500");
}

TEST(Splits, JobSplitsFollowTheProtocol) {
  std::vector<int32_t> labels(60);
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<int32_t>(i % 3);
  ExperimentPlan paper = make_plan(parse_experiment("evaluation:\n  protocol: paper\n  folds: 5\n", "x.yaml"));
  Split s = job_split(paper, paper.jobs[0], labels);
  EXPECT_EQ(s.validation, s.test) << "the paper protocol validates on the test fold";
  ExperimentPlan holdout = make_plan(parse_experiment("evaluation:\n  protocol: holdout\n  folds: 5\n", "x.yaml"));
  Split h = job_split(holdout, holdout.jobs[0], labels);
  EXPECT_EQ(h.test.size(), 12u);
  EXPECT_FALSE(h.validation.empty());
  std::set<int64_t> all(h.train.begin(), h.train.end());
  for (int64_t i : h.validation) EXPECT_TRUE(all.insert(i).second);
  for (int64_t i : h.test) EXPECT_TRUE(all.insert(i).second);
  EXPECT_EQ(all.size(), labels.size());
}

// ---- the schema: job ids, every key, the README --------------------------------------------------

// Job ids computed by the code before the settings schema (commit ac6c08a, `diffpool plan`): the
// canonical settings must stay byte for byte what they were, or every finished job would rerun.
TEST(Schema, JobIdsOfShippedExperimentsAreUnchanged) {
  struct Pinned {
    const char* file;
    const char* experiment_id;
    std::vector<std::pair<int, const char*>> jobs;  // job index, id
  };
  const Pinned pinned[] = {
      {"configs/quickstart.yaml", "bb585c80ecb1f6a9",
       {{0, "cbda1f7b30215882"}, {1, "8909b80566dbaed7"}, {2, "f7621e8621945149"}, {3, "01e7b040d2163040"}}},
      {"configs/paper/enzymes-diffpool.yaml", "69aa18f856c1b37d", {{0, "079a9c783eb24310"}, {1, "d2ec4a5631db7d67"}}},
      {"configs/fair/enzymes-diffpool.yaml", "9de3b4b416b92c5d", {{0, "ab5636559e88499f"}, {1, "ada8b8241b8db973"}}},
      // `diffpool plan` at commit 9ae1a1e, before job files stored the shortest form of numbers.
      {"configs/fair/proteins-graphsage.yaml", "e5bd45ed7434b329", {{0, "86925a3518467c63"}, {1, "a770c9e8f16f365f"}}},
      {"configs/paper/proteins-diffpool-det.yaml", "ef25a58c1cb44ecf", {{0, "b17595df9b08e735"}, {1, "89bdad609acfe38e"}}},
  };
  for (const Pinned& p : pinned) {
    SCOPED_TRACE(p.file);
    // The quickstart has since been lengthened (300 epochs, patience 50): set back to what it was
    // then, its ids must be those of then.
    std::vector<std::string> then;
    if (std::string(p.file) == "configs/quickstart.yaml") then = {"training.epochs=40", "training.patience=0"};
    ExperimentPlan plan = make_plan(load_experiment(testing::source_dir() + "/" + p.file, then));
    EXPECT_EQ(plan.experiment_id, p.experiment_id);
    for (const auto& [index, id] : p.jobs) {
      const JobSpec& j = plan.jobs.at(static_cast<std::size_t>(index));
      EXPECT_EQ(job_id(plan, j, j.point), id) << "job " << index;
    }
  }
}

// Another valid value for a key, derived from its schema entry alone.
std::string other_value(const SettingInfo& s) {
  switch (s.kind) {
    case SettingKind::string: return s.default_value + "x";
    case SettingKind::boolean: return s.default_value == "true" ? "false" : "true";
    case SettingKind::integer: {
      const long long d = std::stoll(s.default_value);
      return std::to_string(s.integers.contains(d + 1) ? d + 1 : d - 1);
    }
    case SettingKind::number: {
      const double d = std::stod(s.default_value);
      const double x = s.numbers.contains(d / 2) && d / 2 != d ? d / 2 : (s.numbers.lo + s.numbers.hi) / 2;
      return fmt::format("{:.17g}", x);
    }
    case SettingKind::integer_list: {
      const std::string inner = s.default_value.substr(1, s.default_value.size() - 2);
      return fmt::format("[{}{}{}]", inner, inner.empty() ? "" : ",", s.integers.lo);
    }
    case SettingKind::name:
      for (const std::string& c : s.choices)
        if (c != s.default_value) return c;
      break;
    case SettingKind::sweep_parameters: return "{training.epochs: [5]}";
  }
  ADD_FAILURE() << s.key << ": no other value";
  return s.default_value;
}

// Issue 12 item 9: every key of the schema (so a new key cannot be forgotten) changes the job
// ids, or only the experiment id, or neither, exactly as its entry says.
TEST(Schema, EveryKeyChangesTheIdsItClaimsTo) {
  const char* base_text = "name: t\n";
  const ExperimentPlan base = make_plan(parse_experiment(base_text, "t.yaml"));
  const std::string base_job = job_id(base, base.jobs[0], base.jobs[0].point);
  int job = 0, experiment = 0, none = 0;
  for (const SettingInfo& s : settings_schema()) {
    SCOPED_TRACE(s.key);
    const std::string value = other_value(s);
    ASSERT_NE(value, s.default_value);
    const ExperimentPlan changed = make_plan(parse_experiment(base_text, "t.yaml", {s.key + "=" + value}));
    const std::string changed_job = job_id(changed, changed.jobs[0], changed.jobs[0].point);
    switch (s.affects) {
      case Affects::job:
        ++job;
        EXPECT_NE(changed_job, base_job) << "the job id ignores " << s.key << "=" << value;
        EXPECT_NE(changed.experiment_id, base.experiment_id);
        if (s.kind != SettingKind::sweep_parameters) {
          EXPECT_NE(changed.points[0].config.canonical_settings().find(s.key + "="), std::string::npos);
        }
        break;
      case Affects::experiment:
        ++experiment;
        EXPECT_EQ(changed_job, base_job);
        EXPECT_NE(changed.experiment_id, base.experiment_id) << "the experiment id ignores " << s.key << "=" << value;
        break;
      case Affects::none:
        ++none;
        EXPECT_EQ(changed_job, base_job) << s.key << " is marked as not affecting results";
        EXPECT_EQ(changed.experiment_id, base.experiment_id) << s.key << " is marked as not affecting results";
        break;
    }
  }
  EXPECT_GE(job, 40);
  EXPECT_GE(experiment, 5);
  EXPECT_GE(none, 8);
}

TEST(Schema, EveryKeyReadsItsOwnValueBack) {
  // Through --set and the canonical text: each enum name, list and number survives the round trip.
  for (const SettingInfo& s : settings_schema()) {
    if (s.affects != Affects::job || s.kind == SettingKind::sweep_parameters) continue;
    SCOPED_TRACE(s.key);
    std::vector<std::string> values = s.choices.empty() ? std::vector<std::string>{other_value(s)} : s.choices;
    for (const std::string& v : values) {
      const std::string canonical = parse_experiment("name: t\n", "t.yaml", {s.key + "=" + v}).canonical_settings();
      if (s.omitted_at_default && v == s.default_value) {
        EXPECT_EQ(canonical.find(s.key + "="), std::string::npos) << canonical;  // earlier ids stay
        continue;
      }
      EXPECT_NE(canonical.find(s.key + "=" + v + "\n"), std::string::npos) << canonical;
    }
  }
}

// Issue 11: job files store and print numbers in their shortest form (0.005), while the ids keep
// hashing the 17-digit form (pinned above). Both texts list the same keys, and every value of the
// stored text reads back to the same double as the id form's.
TEST(Schema, StoredSettingsAreShortestAndMeanTheSameAsTheIdForm) {
  const ExperimentConfig c = parse_experiment("name: t\ntraining:\n  learning_rate: 0.005\n", "t.yaml");
  EXPECT_NE(c.canonical_settings().find("training.learning_rate=0.0050000000000000001\n"), std::string::npos)
      << c.canonical_settings();
  EXPECT_NE(c.settings_text().find("training.learning_rate=0.005\n"), std::string::npos) << c.settings_text();
  for (const SettingInfo& s : settings_schema()) {
    if (s.affects != Affects::job || s.kind == SettingKind::sweep_parameters) continue;
    SCOPED_TRACE(s.key);
    const ExperimentConfig changed = parse_experiment("name: t\n", "t.yaml", {s.key + "=" + other_value(s)});
    std::istringstream id_lines(changed.canonical_settings()), stored_lines(changed.settings_text());
    std::string id_line, stored_line;
    while (std::getline(id_lines, id_line)) {
      ASSERT_TRUE(std::getline(stored_lines, stored_line)) << "the stored text lacks " << id_line;
      const std::string key = id_line.substr(0, id_line.find('='));
      ASSERT_EQ(stored_line.substr(0, stored_line.find('=')), key);
      const std::string id_value = id_line.substr(key.size() + 1), stored_value = stored_line.substr(key.size() + 1);
      const SettingInfo& info = *std::find_if(settings_schema().begin(), settings_schema().end(),
                                              [&](const SettingInfo& i) { return i.key == key; });
      if (info.kind == SettingKind::number) {
        EXPECT_EQ(std::stod(stored_value), std::stod(id_value)) << key;
        EXPECT_LE(stored_value.size(), id_value.size()) << key;
      } else {
        EXPECT_EQ(stored_value, id_value) << key;
      }
    }
    EXPECT_FALSE(std::getline(stored_lines, stored_line)) << "the stored text has more keys: " << stored_line;
  }
}

TEST(Schema, ReadmeKeyTablesAreGeneratedFromIt) {
  std::ifstream in(testing::source_dir() + "/configs/README.md");
  std::stringstream text;
  text << in.rdbuf();
  const std::string readme = text.str();
  EXPECT_EQ(with_generated_key_tables(readme), readme)
      << "configs/README.md differs from the schema: run build/diffpool schema --update configs/README.md";
  const std::string tables = schema_markdown();
  for (const SettingInfo& s : settings_schema()) {
    const std::string leaf = s.key.substr(s.key.find('.') + 1);
    EXPECT_NE(tables.find("| `" + leaf + "` |"), std::string::npos) << s.key;
  }
}

}  // namespace
}  // namespace diffpool
