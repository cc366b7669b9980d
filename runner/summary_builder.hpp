#pragma once
// Builds the experiment summary (results/summary.hpp) from the job files of an output folder,
// according to the protocol, and picks each fold's winning sweep point.
#include <map>
#include <string>
#include <vector>

#include "results/summary.hpp"
#include "runner/job_runner.hpp"
#include "runner/plan.hpp"

namespace diffpool {

// What the winner selection needs of a finished selection (or holdout) job.
struct SelectionResult {
  int64_t point = 0;
  int fold = 0;
  double validation_accuracy = 0;
};

// The winning point of a fold: the highest mean validation accuracy (ties: the lowest index).
// -1 when there is no result for the fold.
int64_t fold_winner(const std::vector<SelectionResult>& results, int fold);

ExperimentSummary build_summary(const ExperimentPlan& plan, const OutputLayout& layout, int ranks,
                                const std::string& backend);

// The summary as a table for the terminal.
std::string format_summary(const ExperimentSummary& summary);

}  // namespace diffpool
