// Job claims (runner/job_claims.hpp): one run at a time holds a job; a claim of a process gone
// from this host is taken over at once, one of another host (or of a hung process) only after it
// was not refreshed for the timeout; refreshes keep a claim (and write it again after a purge); a
// claim is given back on release and when its holder ends.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "runner/job_claims.hpp"
#include "tests/test_util.hpp"

namespace diffpool {
namespace {

namespace fs = std::filesystem;

fs::path fresh_folder(const std::string& name) {
  const fs::path folder = fs::path(testing::binary_dir()) / name;
  fs::remove_all(folder);
  return folder;  // JobClaims creates it
}

// Moves the file's modification time `seconds` into the past.
void age(const fs::path& file, double seconds) {
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  struct timespec times[2];
  times[0] = st.st_atim;
  times[1] = st.st_mtim;
  times[1].tv_sec -= static_cast<time_t>(seconds);
  ASSERT_EQ(::utimensat(AT_FDCWD, file.c_str(), times, 0), 0);
}

double idle_seconds(const fs::path& file) {
  const auto modified = fs::last_write_time(file);
  return std::chrono::duration<double>(fs::file_time_type::clock::now() - modified).count();
}

void write_claim(const fs::path& file, const std::string& run, const std::string& host, const std::string& boot, long pid,
                 long started) {
  std::ofstream out(file);
  out << "diffpool job claim\nrun " << run << "\nhost " << host << "\nboot " << boot << "\npid " << pid << "\nstarted "
      << started << "\nclaimed 2026-01-01T00:00:00Z\n";
}

TEST(JobClaims, OneRunAtATimeHoldsAJob) {
  const fs::path folder = fresh_folder("claims_one_run");
  JobClaims first(folder, 300), second(folder, 300);
  const JobClaims::Attempt a = first.claim("job1");
  ASSERT_TRUE(a.claimed);
  EXPECT_FALSE(a.replaced);
  const std::optional<ClaimHolder> written = JobClaims::read(first.file("job1"));
  ASSERT_TRUE(written);
  EXPECT_EQ(written->run, first.run_token());
  EXPECT_EQ(written->pid, static_cast<int64_t>(getpid()));
  EXPECT_TRUE(first.claim("job1").claimed) << "a claim this run holds is its own";

  // The second run (a live process on this host: this one) is refused and told who holds it.
  const JobClaims::Attempt b = second.claim("job1");
  EXPECT_FALSE(b.claimed);
  ASSERT_TRUE(b.holder);
  EXPECT_EQ(b.holder->run, first.run_token());
  ASSERT_TRUE(second.holder("job1"));
  EXPECT_FALSE(first.holder("job1")) << "its own claim is not another run's";
  EXPECT_TRUE(second.claim("job2").claimed) << "other jobs are free";

  first.release("job1");
  EXPECT_FALSE(fs::exists(first.file("job1")));
  EXPECT_FALSE(second.holder("job1"));
  EXPECT_TRUE(second.claim("job1").claimed);
  EXPECT_EQ(JobClaims::read(second.file("job1"))->run, second.run_token());
  first.release("job1");  // no longer its claim: the file stays
  EXPECT_TRUE(fs::exists(second.file("job1")));
}

TEST(JobClaims, TheClaimsOfARunAreGivenBackWhenItEnds) {
  const fs::path folder = fresh_folder("claims_end");
  {
    JobClaims run(folder, 300);
    ASSERT_TRUE(run.claim("a").claimed);
    ASSERT_TRUE(run.claim("b").claimed);
    run.release("a");
    EXPECT_EQ(run.held(), 1);
  }
  EXPECT_FALSE(fs::exists(folder / "a"));
  EXPECT_FALSE(fs::exists(folder / "b"));
  int files = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(folder)) ++files;
  EXPECT_EQ(files, 0) << "nothing of the run is left in claims/";
}

TEST(JobClaims, AClaimOfAProcessGoneFromThisHostIsTakenOverAtOnce) {
  const fs::path folder = fresh_folder("claims_gone_here");
  JobClaims run(folder, 300);
  ASSERT_TRUE(run.claim("probe").claimed);
  const ClaimHolder self = *JobClaims::read(run.file("probe"));
  // The same host and boot, and a process id that names another process now (or none): the
  // process that claimed the job was killed; its start time does not match.
  write_claim(folder / "job", "deadbeefdeadbeef", self.host, self.boot, self.pid, self.started + 1);
  const JobClaims::Attempt a = run.claim("job");
  ASSERT_TRUE(a.claimed);
  ASSERT_TRUE(a.replaced);
  EXPECT_EQ(a.replaced->run, "deadbeefdeadbeef");
  EXPECT_EQ(JobClaims::read(run.file("job"))->run, run.run_token());
  // Nothing is left beside the claims (the stale one renamed aside is removed).
  for (const auto& entry : fs::directory_iterator(folder))
    EXPECT_TRUE(entry.path().filename() == "probe" || entry.path().filename() == "job" ||
                entry.path().filename().string().rfind(".clock-", 0) == 0)
        << entry.path();
}

TEST(JobClaims, AClaimOfAHungProcessOnThisHostGoesStaleWithTheTimeout) {
  // The holder lives (this process) but stopped refreshing its claim: stopped, or hung.
  const fs::path folder = fresh_folder("claims_hung_here");
  JobClaims hung(folder, 60), next(folder, 60);
  ASSERT_TRUE(hung.claim("job").claimed);
  EXPECT_FALSE(next.claim("job").claimed);
  age(hung.file("job"), 100);
  const JobClaims::Attempt a = next.claim("job");
  ASSERT_TRUE(a.claimed);
  ASSERT_TRUE(a.replaced);
  EXPECT_EQ(a.replaced->run, hung.run_token());
  hung.release("job");  // the claim is not its own any more: it stays
  ASSERT_TRUE(fs::exists(next.file("job")));
  EXPECT_EQ(JobClaims::read(next.file("job"))->run, next.run_token());
}

TEST(JobClaims, ARunThatWakesAfterItsClaimWasTakenOverSaysSoAndLeavesIt) {
  const fs::path folder = fresh_folder("claims_woken");
  JobClaims woken(folder, 10), next(folder, 10);  // refreshed every 2 s
  ASSERT_TRUE(woken.claim("job").claimed);
  age(woken.file("job"), 100);  // it did not refresh for 100 s
  ASSERT_TRUE(next.claim("job").claimed);
  age(next.file("job"), 4);  // so that a refresh by the woken run would show
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  ::testing::internal::CaptureStderr();
  woken.refresh_if_due();
  const std::string said = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(said.find("the claim of job job was taken over by another run"), std::string::npos) << said;
  EXPECT_EQ(woken.held(), 0);
  EXPECT_GT(idle_seconds(next.file("job")), 3) << "the woken run refreshed the other run's claim";
  EXPECT_EQ(JobClaims::read(next.file("job"))->run, next.run_token());
}

TEST(JobClaims, AClaimOfAnotherHostStandsUntilItIsNotRefreshedForTheTimeout) {
  const fs::path folder = fresh_folder("claims_other_host");
  fs::create_directories(folder);
  write_claim(folder / "job", "0123456789abcdef", "other-node", "another-boot", 1234, 99);
  JobClaims run(folder, 60);
  JobClaims::Attempt a = run.claim("job");
  EXPECT_FALSE(a.claimed) << "a claim refreshed just now on another host stands";
  ASSERT_TRUE(a.holder);
  EXPECT_EQ(a.holder->host, "other-node");
  EXPECT_LT(a.holder->idle_seconds, 30);
  EXPECT_NE(a.holder->describe().find("host other-node, process 1234"), std::string::npos) << a.holder->describe();

  age(folder / "job", 50);  // within the timeout
  EXPECT_FALSE(run.claim("job").claimed);
  ASSERT_TRUE(run.holder("job"));
  age(folder / "job", 20);  // 70 s: past it
  EXPECT_FALSE(run.holder("job")) << "stale";
  a = run.claim("job");
  ASSERT_TRUE(a.claimed);
  ASSERT_TRUE(a.replaced);
  EXPECT_EQ(a.replaced->host, "other-node");
  EXPECT_GT(a.replaced->idle_seconds, 60);
}

TEST(JobClaims, AClaimWithoutItsTextCountsByItsAgeAlone) {
  // A claim is created, then written: a run that reads it between the two sees an empty file.
  const fs::path folder = fresh_folder("claims_empty");
  fs::create_directories(folder);
  std::ofstream(folder / "job").flush();
  JobClaims run(folder, 60);
  EXPECT_FALSE(run.claim("job").claimed);
  age(folder / "job", 120);
  const JobClaims::Attempt a = run.claim("job");
  EXPECT_TRUE(a.claimed);
  EXPECT_TRUE(a.replaced);
}

TEST(JobClaims, RefreshesKeepAClaimAndWriteItAgainAfterAPurge) {
  const fs::path folder = fresh_folder("claims_refresh");
  JobClaims run(folder, 10);  // refreshed every 2 s
  EXPECT_EQ(run.refresh_interval(), std::chrono::seconds(2));
  ASSERT_TRUE(run.claim("job").claimed);
  ASSERT_TRUE(run.claim("gone").claimed);
  age(run.file("job"), 100);
  fs::remove(run.file("gone"));
  run.refresh_if_due();  // not due yet
  EXPECT_GT(idle_seconds(run.file("job")), 90);
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  run.refresh_if_due();
  EXPECT_LT(idle_seconds(run.file("job")), 5);
  ASSERT_TRUE(fs::exists(run.file("gone"))) << "a claim deleted under its run is written again";
  EXPECT_EQ(JobClaims::read(run.file("gone"))->run, run.run_token());
  JobClaims other(folder, 10);
  EXPECT_FALSE(other.claim("job").claimed);
}

}  // namespace
}  // namespace diffpool
