#pragma once
// Claims on the jobs a run is training, kept in its output folder (claims/<job id>), so that
// independent runs of one experiment into one folder never train the same job at the same time:
// a job script submitted twice, a requeued job whose first run still lives on a node the
// scheduler gave up on, a second allocation started to help a long sweep, array tasks whose fold
// lists overlap. Each run takes a job's claim before training it and gives it back when the job
// ends (completed, failed, or checkpointed by a stop); a job another live run holds is left to
// that run, and its result is taken from the job file it writes.
//
// A claim is a small text file created with O_EXCL (atomic on local file systems, NFS and Lustre
// alike), naming the run, host, boot, process id and start. Its holder refreshes its modification
// time regularly; it goes stale when its process is gone (same host and boot: the process id no
// longer names that process) or when it was not refreshed for `timeout_seconds` by the file
// server's clock (another host: a crashed node, a killed job; or a hung process). No file locks:
// they are not reliable on the parallel file systems of clusters (Lustre mounted without flock, NFS
// lock managers that lose their state). A stale claim is taken over by renaming it aside first, so
// two runs taking over the same stale claim at once do not both keep it; in the worst case (a race
// within one file-system round trip) a job runs twice, as it would without claims, and its result
// file, written atomically, is the same either way.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <set>
#include <optional>
#include <string>

namespace diffpool {

// Who holds a claim, as its file says.
struct ClaimHolder {
  std::string run;   // the holding run's token (random, one per run: every rank of an MPI run shares it)
  std::string host;  // host name of the process that holds it
  std::string boot;  // that host's boot id (/proc/sys/kernel/random/boot_id)
  int64_t pid = 0;
  int64_t started = 0;      // the process's start time in clock ticks since boot (/proc/<pid>/stat)
  std::string claimed_at;   // UTC time of the claim, for messages
  double idle_seconds = 0;  // since the holder last refreshed it, by the file server's clock
  // "host h, process p, claimed at T, last refreshed 12 s ago"
  std::string describe() const;
};

class JobClaims {
 public:
  // `folder`: the output folder's claims/ (created when missing). `timeout_seconds`: how long a
  // claim whose holder stopped refreshing it stays valid (output.claim_timeout_seconds).
  JobClaims(std::filesystem::path folder, int timeout_seconds);
  ~JobClaims();  // gives back every claim still held
  JobClaims(const JobClaims&) = delete;
  JobClaims& operator=(const JobClaims&) = delete;

  struct Attempt {
    bool claimed = false;
    std::optional<ClaimHolder> holder;    // not claimed: the live run that holds it
    std::optional<ClaimHolder> replaced;  // claimed by taking over a stale claim: whose it was
  };
  // Claims the job, unless another live run holds it. A claim this run already holds is claimed.
  Attempt claim(const std::string& job_id);
  // The live holder of the job's claim other than this run, or nothing (free, stale, or ours).
  std::optional<ClaimHolder> holder(const std::string& job_id);
  // Gives the claim back (removes its file if it is still this run's).
  void release(const std::string& job_id);
  void release_all();
  // Refreshes every claim this run holds when a refresh is due (a quarter of the timeout, at most
  // a minute, since the last); a claim file deleted meanwhile (a scratch purge) is written again,
  // and one another run took over meanwhile (this run was stopped or hung past the timeout) is
  // said on stderr and left to that run (no longer held).
  void refresh_if_due();

  const std::string& run_token() const { return self_.run; }
  std::filesystem::path file(const std::string& job_id) const { return folder_ / job_id; }
  int64_t held() const { return static_cast<int64_t>(held_.size()); }
  std::chrono::seconds refresh_interval() const { return refresh_interval_; }

  // The claim file's holder (idle_seconds left 0), or nothing when there is no readable claim.
  static std::optional<ClaimHolder> read(const std::filesystem::path& file);

 private:
  enum class Liveness { alive, gone };
  // Whether the claim in `file` (with text `h`, or none readable: one being written this instant,
  // or a stray file, which only its age can end) still stands; `seen` gets its holder and how
  // long it has gone without a refresh.
  Liveness liveness(const std::optional<ClaimHolder>& h, const std::filesystem::path& file, ClaimHolder* seen);
  double server_now();  // the file server's clock: the modification time of a file touched now
  // O_EXCL. `failed`: the file could not be made (a full disk, no inodes left): said once, and the
  // job runs unclaimed, as every job did before claims existed.
  enum class Created { created, exists, failed };
  Created create(const std::filesystem::path& file);
  void ensure_folder();

  std::filesystem::path folder_;
  int timeout_seconds_;
  std::chrono::seconds refresh_interval_;
  ClaimHolder self_;  // claimed_at set per claim
  std::set<std::string> held_;  // job ids this run holds
  bool warned_ = false;         // a claim could not be made (said once)
  std::chrono::steady_clock::time_point last_refresh_ = std::chrono::steady_clock::now();
};

}  // namespace diffpool
