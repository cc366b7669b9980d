#pragma once
// Builds the experiment summary (results/summary.hpp) from the job files of an output folder: the
// common part (counts, hosts, failures) here, the per-point rows, winners and figure by the
// protocol's module (runner/protocol/).
#include <string>
#include <vector>

#include "results/summary.hpp"
#include "runner/job_runner.hpp"
#include "runner/plan.hpp"

namespace diffpool {

ExperimentSummary build_summary(const ExperimentPlan& plan, const OutputLayout& layout, int ranks,
                                const std::string& backend);

// The summary as a table for the terminal.
std::string format_summary(const ExperimentSummary& summary);

}  // namespace diffpool
