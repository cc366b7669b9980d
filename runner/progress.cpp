#include "runner/progress.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>

namespace diffpool {

bool show_live_progress(OutputSettings::ProgressDisplay setting, bool stdout_is_terminal, bool launched_by_mpi) {
  switch (setting) {
    case OutputSettings::ProgressDisplay::live: return true;
    case OutputSettings::ProgressDisplay::plain: return false;
    case OutputSettings::ProgressDisplay::automatic: return stdout_is_terminal && !launched_by_mpi;
  }
  return false;
}

namespace {
std::string duration_text(double seconds) {
  if (!(seconds >= 0) || seconds > 1e8) return "?";
  const auto s = static_cast<int64_t>(seconds + 0.5);
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m{:02d}s", s / 60, s % 60);
  return fmt::format("{}h{:02d}m", s / 3600, (s % 3600) / 60);
}
}  // namespace

Progress::Progress(int64_t jobs_total, int64_t jobs_already_done, double cost_total, int interval_seconds, bool terminal)
    : total_(jobs_total), done_(jobs_already_done), cost_total_(cost_total), interval_(interval_seconds), terminal_(terminal) {}

void Progress::started(int64_t job, double cost) {
  std::lock_guard<std::mutex> lock(mutex_);
  running_[job] = Running{cost, 0};
}

void Progress::epoch(int64_t job, int epoch, int epochs, int resumed_epoch, bool waiting_for_space) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = running_.find(job);
  if (it == running_.end() || epochs <= 0) return;
  it->second.fraction = static_cast<double>(epoch) / epochs;
  it->second.resumed = std::clamp(static_cast<double>(resumed_epoch) / epochs, 0.0, 1.0);
  it->second.waiting_for_space = waiting_for_space;
}

void Progress::finished(int64_t job, bool failed) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = running_.find(job);
  if (it != running_.end()) {
    cost_done_ += it->second.cost;
    cost_done_this_run_ += it->second.cost * (1 - it->second.resumed);
    running_.erase(it);
  }
  ++done_this_run_;
  if (failed) ++failed_;
  else ++done_;
}

void Progress::interrupted(int64_t job) {
  std::lock_guard<std::mutex> lock(mutex_);
  running_.erase(job);
}

void Progress::elsewhere(int64_t jobs) {
  std::lock_guard<std::mutex> lock(mutex_);
  elsewhere_ = jobs;
}

void Progress::finished_elsewhere(double cost) {
  std::lock_guard<std::mutex> lock(mutex_);
  cost_done_ += cost;
  ++done_;
}

std::string Progress::status() const {
  const double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
  double cost_now = cost_done_, cost_this_run = cost_done_this_run_;
  int64_t waiting = 0;
  for (const auto& [job, r] : running_) {
    waiting += r.waiting_for_space ? 1 : 0;
    cost_now += r.cost * std::max(r.fraction, r.resumed);
    cost_this_run += r.cost * std::max(0.0, r.fraction - r.resumed);
  }
  // The pace is this run's own work (a resumed job's earlier epochs were not done in `elapsed`);
  // the remaining cost is the total less what is done before and during this run, running jobs
  // counted by their unfinished part.
  const double rate = elapsed > 0 ? cost_this_run / elapsed : 0;
  const double remaining = cost_total_ - cost_now;
  const double eta = rate > 0 ? remaining / rate : -1;
  const double per_minute = elapsed > 0 ? 60.0 * static_cast<double>(done_this_run_) / elapsed : 0;
  return fmt::format("jobs {}/{} done, {} running{}{}, {} failed | {:.1f} jobs/min | elapsed {} | ETA {}", done_, total_,
                     running_.size(), waiting > 0 ? fmt::format(" ({} waiting for space)", waiting) : "",
                     elsewhere_ > 0 ? fmt::format(", {} in another run", elsewhere_) : "", failed_,
                     per_minute, duration_text(elapsed),
                     done_ + failed_ >= total_ ? "0s" : duration_text(eta));
}

void Progress::line(const std::string& text) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (live_line_) std::fputs("\r\033[K", stdout);
  live_line_ = false;
  std::fputs(text.c_str(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

void Progress::tick(bool force) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto now = Clock::now();
  const double since = std::chrono::duration<double>(now - last_print_).count();
  if (terminal_) {
    if (!force && since < 0.5) return;
    std::fputs(fmt::format("\r\033[K{}", status()).c_str(), stdout);
    live_line_ = true;
  } else {
    if (!force && since < interval_) return;
    std::fputs(fmt::format("[progress] {}\n", status()).c_str(), stdout);
  }
  std::fflush(stdout);
  last_print_ = now;
}

void Progress::finish() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (live_line_) std::fputs("\r\033[K", stdout);
  live_line_ = false;
  std::fputs(fmt::format("[progress] {}\n", status()).c_str(), stdout);
  std::fflush(stdout);
}

}  // namespace diffpool
