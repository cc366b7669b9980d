#pragma once
// Progress of a run, shown by rank 0: jobs done / running / failed, throughput and ETA. On a
// terminal one live line is rewritten in place; otherwise (a batch log, or under an MPI launcher
// unless output.progress says live) a plain line is printed every few seconds. Events (a job finished or failed) are printed as lines of their own.
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "runner/config.hpp"

namespace diffpool {

// Whether rank 0 shows the live line (output.progress): `live` and `plain` are obeyed; `automatic`
// is live only on a terminal outside an MPI launcher, since ranks started by mpirun see a
// pseudo-terminal even when mpirun's own output goes to a file, which cannot be known from a rank.
bool show_live_progress(OutputSettings::ProgressDisplay setting, bool stdout_is_terminal, bool launched_by_mpi);

class Progress {
 public:
  Progress(int64_t jobs_total, int64_t jobs_already_done, double cost_total, int interval_seconds, bool terminal);

  void started(int64_t job, double cost);
  // `resumed_epoch`: the epochs the job's checkpoint held when this run took it up. They count as
  // done, but not towards this run's pace: a job resumed at epoch 800 of 1000 is not 80% done in
  // its first second. `waiting_for_space`: the job has trained and waits for room to write its
  // result (output.storage_wait_seconds); the status line counts such jobs.
  void epoch(int64_t job, int epoch, int epochs, int resumed_epoch = 0, bool waiting_for_space = false);
  void finished(int64_t job, bool failed);
  void interrupted(int64_t job);
  // Jobs another run into the same folder is training (shown in the status), and one of them
  // finished there: done, not this run's pace.
  void elsewhere(int64_t jobs);
  void finished_elsewhere(double cost);
  // Prints an event line (clearing the live line first).
  void line(const std::string& text);
  // Prints the status when due; `force` prints now.
  void tick(bool force = false);
  // The final status line.
  void finish();

  // How often the display wants tick(): the live line twice a second, plain lines every interval.
  double refresh_seconds() const { return terminal_ ? 0.5 : interval_; }

  int64_t done() const { return done_; }
  int64_t failed() const { return failed_; }

 private:
  std::string status() const;
  using Clock = std::chrono::steady_clock;
  struct Running {
    double cost = 1;
    double fraction = 0;  // of the job's epochs, done
    double resumed = 0;   // of them, done before this run
    bool waiting_for_space = false;
  };
  mutable std::mutex mutex_;
  int64_t total_, done_, failed_ = 0, done_this_run_ = 0, elsewhere_ = 0;
  double cost_total_, cost_done_ = 0;
  double cost_done_this_run_ = 0;  // of the jobs finished in this run, the part done in this run
  std::map<int64_t, Running> running_;
  Clock::time_point start_ = Clock::now(), last_print_ = Clock::now();
  int interval_;
  bool terminal_;
  bool live_line_ = false;
};

}  // namespace diffpool
