#pragma once
// How long an MPI rank that waits for messages may sleep before it looks again. Open MPI can only be
// polled (a blocking receive spins a core), so a waiting rank naps; these classes choose the naps.

#include <algorithm>
#include <chrono>
#include <optional>
#include <vector>

namespace diffpool {

// A nap that doubles while nothing happens: 1 ms after something happened, up to 100 ms. While
// messages flow they are answered within milliseconds; a rank waiting for long-running work wakes
// 10 times a second (a fixed 2 ms nap cost rank 0 about 1% of a core over whole experiments).
class IdleBackoff {
 public:
  std::chrono::microseconds next() {
    const std::chrono::microseconds delay = delay_;
    delay_ = std::min(delay_ * 2, kLongest);
    return delay;
  }
  void reset() { delay_ = kShortest; }

  static constexpr std::chrono::microseconds kShortest{1000}, kLongest{100000};

 private:
  std::chrono::microseconds delay_ = kShortest;
};

// What a worker's latest epoch report says of when its job can end at the earliest: `epochs_left`
// more epochs (the configured epochs, or fewer where early stopping could end it sooner), each
// taking at least `shortest_epoch_seconds` (its fastest pace so far; 0 before it is known, which
// forecasts nothing), counted from `not_before`, a time before the report was sent (rank 0's
// previous look at its messages).
struct JobEndForecast {
  using Clock = std::chrono::steady_clock;
  Clock::time_point not_before;
  int epochs_left = 0;
  double shortest_epoch_seconds = 0;

  // The earliest the job's result can arrive.
  Clock::time_point earliest_end() const {
    return not_before + std::chrono::duration_cast<Clock::duration>(
                            std::chrono::duration<double>(epochs_left * std::max(0.0, shortest_epoch_seconds)));
  }
};

// Rank 0's nap between two looks at the workers' messages. Its own job wakes it at once (a
// condition variable); a worker's message cannot, so it has to look in time:
//  - a worker that may speak any moment (it has not asked for work yet, its job has sent no epoch
//    report yet, or the run is stopping) is looked for with the doubling IdleBackoff;
//  - a worker whose job reported epochs is looked for at half the time left to that job's
//    earliest end, then again at half of what remains, and with the IdleBackoff from the last
//    epoch on: its result is answered within milliseconds, and rank 0 wakes a few times per job
//    instead of 10 times a second;
//  - a worker waiting for a job that is not ready yet needs nothing until another job ends;
//  - nothing else keeps rank 0 awake longer than `longest` (heartbeats, the progress display).
class IdleWait {
 public:
  using Clock = std::chrono::steady_clock;
  explicit IdleWait(std::chrono::microseconds longest) : longest_(std::max(longest, IdleBackoff::kLongest)) {}

  // Something happened (a request, a result, a job started): look again soon.
  void activity() { backoff_.reset(); }

  // The nap from `now`: `expect_soon` says whether some worker may speak any moment; `forecasts`
  // holds one entry per worker job with an epoch report.
  std::chrono::microseconds next(Clock::time_point now, bool expect_soon, const std::vector<JobEndForecast>& forecasts) {
    std::chrono::microseconds nap = longest_;
    bool near = expect_soon;
    for (const JobEndForecast& f : forecasts) {
      const auto left = std::chrono::duration_cast<std::chrono::microseconds>(f.earliest_end() - now);
      // Within an epoch of the end (or past it: the result is written after the last epoch).
      if (f.epochs_left <= 1 || left <= std::chrono::duration_cast<std::chrono::microseconds>(
                                            std::chrono::duration<double>(f.shortest_epoch_seconds))) {
        near = true;
        continue;
      }
      nap = std::min(nap, std::max(IdleBackoff::kShortest, left / 2));
    }
    if (near) return std::min(nap, backoff_.next());
    backoff_.reset();  // a job that nears its end starts over from the shortest nap
    return nap;
  }

  std::chrono::microseconds longest() const { return longest_; }

 private:
  std::chrono::microseconds longest_;
  IdleBackoff backoff_;
};

}  // namespace diffpool
