// Rank 0's naps between looks at the workers' messages (runner/idle_wait.hpp).
#include "runner/idle_wait.hpp"

#include <gtest/gtest.h>

namespace diffpool {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

JobEndForecast forecast(Clock::time_point not_before, int epochs_left, double epoch_seconds) {
  JobEndForecast f;
  f.not_before = not_before;
  f.epochs_left = epochs_left;
  f.shortest_epoch_seconds = epoch_seconds;
  return f;
}

TEST(IdleBackoff, DoublesFromOneMillisecondToATenthOfASecondAndStartsOver) {
  IdleBackoff b;
  std::vector<int64_t> naps;
  for (int i = 0; i < 9; ++i) naps.push_back(b.next().count());
  EXPECT_EQ(naps, (std::vector<int64_t>{1000, 2000, 4000, 8000, 16000, 32000, 64000, 100000, 100000}));
  b.reset();
  EXPECT_EQ(b.next(), microseconds(1000));
}

TEST(IdleWait, NothingExpectedSleepsTheLongestNap) {
  IdleWait w(milliseconds(2000));
  const auto now = Clock::now();
  EXPECT_EQ(w.next(now, false, {}), milliseconds(2000));
  w.activity();
  EXPECT_EQ(w.next(now, false, {}), milliseconds(2000));
}

TEST(IdleWait, AWorkerThatMaySpeakAnyMomentIsLookedForWithTheBackoff) {
  IdleWait w(milliseconds(2000));
  const auto now = Clock::now();
  EXPECT_EQ(w.next(now, true, {}), milliseconds(1));
  EXPECT_EQ(w.next(now, true, {}), milliseconds(2));
  EXPECT_EQ(w.next(now, true, {}), milliseconds(4));
  w.activity();
  EXPECT_EQ(w.next(now, true, {}), milliseconds(1));
  for (int i = 0; i < 20; ++i) EXPECT_LE(w.next(now, true, {}), milliseconds(100));
}

TEST(IdleWait, AJobFarFromItsEndIsLookedAtHalfWayToItsEarliestEnd) {
  IdleWait w(milliseconds(2000));
  const auto now = Clock::now();
  // 10 epochs of at least 0.1 s: the job cannot end within 1 s; look again at half of that.
  EXPECT_EQ(w.next(now, false, {forecast(now, 10, 0.1)}), milliseconds(500));
  // The report was read later than it was sent: the forecast counts from before it.
  EXPECT_EQ(w.next(now, false, {forecast(now - milliseconds(200), 10, 0.1)}), milliseconds(400));
  // Far away: the longest nap bounds it.
  EXPECT_EQ(w.next(now, false, {forecast(now, 1000, 0.1)}), milliseconds(2000));
  // The nearest of several jobs decides.
  EXPECT_EQ(w.next(now, false, {forecast(now, 1000, 0.1), forecast(now, 4, 0.1), forecast(now, 50, 0.1)}),
            milliseconds(200));
}

TEST(IdleWait, AJobWithinAnEpochOfItsEndIsLookedForWithTheBackoff) {
  IdleWait w(milliseconds(2000));
  const auto start = Clock::now();
  const JobEndForecast f = forecast(start, 10, 0.1);
  // Halving the time left: 500, 250, 125 ms; within an epoch (100 ms) of the end, the backoff.
  auto now = start;
  std::vector<int64_t> naps;
  for (int i = 0; i < 6; ++i) {
    const microseconds nap = w.next(now, false, {f});
    naps.push_back(nap.count());
    now += nap;
  }
  EXPECT_EQ(naps, (std::vector<int64_t>{500000, 250000, 125000, 62500, 1000, 2000}));
  // Past the forecast end (the job runs slower than its fastest pace): still the backoff, at most
  // a tenth of a second, however late.
  for (int i = 0; i < 20; ++i) EXPECT_LE(w.next(start + milliseconds(5000), false, {f}), milliseconds(100));
  // The last epoch: the backoff whatever the pace.
  IdleWait last(milliseconds(2000));
  EXPECT_EQ(last.next(start, false, {forecast(start, 1, 100.0)}), milliseconds(1));
  EXPECT_EQ(last.next(start, false, {forecast(start, 0, 100.0)}), milliseconds(2));
}

TEST(IdleWait, ANewForecastFarFromItsEndStartsTheBackoffOver) {
  IdleWait w(milliseconds(2000));
  const auto now = Clock::now();
  for (int i = 0; i < 10; ++i) w.next(now, true, {});
  EXPECT_EQ(w.next(now, true, {}), milliseconds(100));
  EXPECT_EQ(w.next(now, false, {forecast(now, 100, 0.01)}), milliseconds(500));  // the next job
  EXPECT_EQ(w.next(now, false, {forecast(now, 1, 0.01)}), milliseconds(1));      // its last epoch
}

TEST(IdleWait, TheLongestNapIsNeverShorterThanTheBackoffsLongest) {
  IdleWait w(milliseconds(10));
  EXPECT_EQ(w.longest(), milliseconds(100));
}

}  // namespace
}  // namespace diffpool
