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

// A summary's identity and environment from the plan (name, id, protocol, dataset, variant, folds,
// split seed, repeats; this build's version and revision, now), with no jobs yet.
ExperimentSummary summary_of_plan(const ExperimentPlan& plan, int ranks, const std::string& backend);

// Fills the job rows, hosts, counts, per-point rows, winners and figure of `summary` from completed
// jobs (any order; a job must appear once): what build_summary does with the job files of a folder
// and `diffpool merge` with the job rows of several summaries. jobs_total is the plan's job count,
// jobs_failed the size of summary->failures (set them first).
void summarise_jobs(const ExperimentPlan& plan, std::vector<SummaryJob> jobs, ExperimentSummary* summary);

// The summary as a table for the terminal.
std::string format_summary(const ExperimentSummary& summary);

}  // namespace diffpool
