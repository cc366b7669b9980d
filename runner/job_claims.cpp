#include "runner/job_claims.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <chrono>
#include <fstream>
#include <random>
#include <sstream>
#include <vector>

#include <fmt/format.h>

#include "runner/job_runner.hpp"

namespace diffpool {

namespace fs = std::filesystem;

namespace {

std::string first_line(const fs::path& file) {
  std::ifstream in(file);
  std::string line;
  std::getline(in, line);
  return line;
}

// Field 22 of /proc/<pid>/stat: the process's start in clock ticks since boot (0 when unknown).
// Fields are counted after the command name's closing parenthesis, which may itself hold spaces.
int64_t process_start_ticks(int64_t pid) {
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::size_t close = text.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(text.substr(close + 1));
  std::string field;
  for (int i = 3; i <= 22 && fields >> field; ++i)
    if (i == 22) return std::strtoll(field.c_str(), nullptr, 10);
  return 0;
}

std::string random_token() {
  std::random_device device;
  const uint64_t bits = (static_cast<uint64_t>(device()) << 32) ^ device() ^
                        static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
                        (static_cast<uint64_t>(getpid()) << 16);
  return fmt::format("{:016x}", bits);
}

double mtime_seconds(const struct stat& st) {
  return static_cast<double>(st.st_mtim.tv_sec) + 1e-9 * static_cast<double>(st.st_mtim.tv_nsec);
}

std::string text_of(const ClaimHolder& h) {
  return fmt::format("diffpool job claim\nrun {}\nhost {}\nboot {}\npid {}\nstarted {}\nclaimed {}\n", h.run, h.host,
                     h.boot, h.pid, h.started, h.claimed_at);
}

}  // namespace

std::string ClaimHolder::describe() const {
  return fmt::format("host {}, process {}, claimed at {}, last refreshed {:.0f} s ago", host.empty() ? "unknown" : host,
                     pid, claimed_at.empty() ? "an unknown time" : claimed_at, idle_seconds);
}

JobClaims::JobClaims(fs::path folder, int timeout_seconds)
    : folder_(std::move(folder)),
      timeout_seconds_(std::max(1, timeout_seconds)),
      refresh_interval_(std::clamp(timeout_seconds / 4, 1, 60)) {
  self_.run = random_token();
  self_.host = host_name();
  self_.boot = first_line("/proc/sys/kernel/random/boot_id");
  self_.pid = getpid();
  self_.started = process_start_ticks(self_.pid);
}

JobClaims::~JobClaims() { release_all(); }

void JobClaims::ensure_folder() {
  std::error_code error;
  if (!fs::is_directory(folder_, error)) fs::create_directories(folder_, error);
}

JobClaims::Created JobClaims::create(const fs::path& file) {
  ClaimHolder claim = self_;
  claim.claimed_at = iso_time_now();
  const std::string content = text_of(claim);
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    if (errno == EEXIST) return Created::exists;
    if (!warned_) {
      warned_ = true;
      fmt::print(stderr,
                 "warning: cannot create the job claim '{}': {}; jobs run without claims until they can be made "
                 "(another run into this folder may train the same jobs meanwhile)\n",
                 file.string(), std::strerror(errno));
    }
    return Created::failed;
  }
  // A claim whose text did not fit (a full disk) still claims: its age, not its text, ends it.
  [[maybe_unused]] const ssize_t written = ::write(fd, content.data(), content.size());
  ::close(fd);
  return Created::created;
}

std::optional<ClaimHolder> JobClaims::read(const fs::path& file) {
  std::ifstream in(file);
  if (!in) return std::nullopt;
  std::string line;
  if (!std::getline(in, line) || line != "diffpool job claim") return std::nullopt;
  ClaimHolder h;
  bool has_run = false;
  while (std::getline(in, line)) {
    const std::size_t space = line.find(' ');
    if (space == std::string::npos) continue;
    const std::string key = line.substr(0, space), value = line.substr(space + 1);
    if (key == "run") h.run = value, has_run = true;
    else if (key == "host") h.host = value;
    else if (key == "boot") h.boot = value;
    else if (key == "pid") h.pid = std::strtoll(value.c_str(), nullptr, 10);
    else if (key == "started") h.started = std::strtoll(value.c_str(), nullptr, 10);
    else if (key == "claimed") h.claimed_at = value;
  }
  if (!has_run) return std::nullopt;
  return h;
}

double JobClaims::server_now() {
  // The clock that set the claims' modification times is the file server's (NFS sets "now" on
  // the server); a file of our own touched now reads that clock, whatever the hosts' clocks say.
  const fs::path clock = folder_ / fmt::format(".clock-{}", self_.run);
  const int fd = ::open(clock.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd >= 0) {
    ::futimens(fd, nullptr);
    struct stat st {};
    const int r = ::fstat(fd, &st);
    ::close(fd);
    if (r == 0) return mtime_seconds(st);
  }
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

JobClaims::Liveness JobClaims::liveness(const std::optional<ClaimHolder>& text, const fs::path& file,
                                        ClaimHolder* seen) {
  *seen = text.value_or(ClaimHolder{});
  const ClaimHolder& h = *seen;
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) return Liveness::gone;
  seen->idle_seconds = std::max(0.0, server_now() - mtime_seconds(st));
  // On this host and boot the process table says at once that the holder is gone, without
  // waiting for the timeout (a run killed and started again on the same machine resumes its jobs
  // immediately). A holder that lives but stopped refreshing (a stopped or hung process) goes
  // stale with the timeout, as one of another host does.
  if (!h.boot.empty() && h.boot == self_.boot && h.host == self_.host && h.pid > 0 &&
      (h.started == 0 || process_start_ticks(h.pid) != h.started))
    return Liveness::gone;
  return seen->idle_seconds > timeout_seconds_ ? Liveness::gone : Liveness::alive;
}

JobClaims::Attempt JobClaims::claim(const std::string& job_id) {
  Attempt attempt;
  if (held_.count(job_id) != 0) {
    attempt.claimed = true;
    return attempt;
  }
  ensure_folder();
  const fs::path path = file(job_id);
  for (int tries = 0; tries < 4; ++tries) {
    if (create(path) != Created::exists) {  // created, or cannot be: the job runs either way
      held_.insert(job_id);
      attempt.claimed = true;
      return attempt;
    }
    std::optional<ClaimHolder> h = read(path);
    if (h && h->run == self_.run) {  // ours (written again after a purge)
      held_.insert(job_id);
      attempt.claimed = true;
      return attempt;
    }
    ClaimHolder seen;
    if (liveness(h, path, &seen) == Liveness::alive) {
      attempt.holder = seen;
      return attempt;
    }
    // Stale: rename it aside (only one of several runs doing this at once succeeds), check that
    // what was moved is the claim judged stale and not a fresh one another run made meanwhile,
    // then create ours.
    const fs::path aside = folder_ / fmt::format("{}.stale-{}", job_id, self_.run);
    if (::rename(path.c_str(), aside.c_str()) != 0) continue;  // gone already: try to create again
    const std::optional<ClaimHolder> moved = read(aside);
    const bool same = moved.has_value() == h.has_value() &&
                      (!moved || (moved->run == h->run && moved->pid == h->pid && moved->host == h->host));
    if (!same) {
      if (::link(aside.c_str(), path.c_str()) != 0) { /* a third claim is there now: it stands */ }
      ::unlink(aside.c_str());
      continue;
    }
    ::unlink(aside.c_str());
    attempt.replaced = seen;
  }
  // Lost every race: whoever holds it now keeps it.
  if (std::optional<ClaimHolder> now = holder(job_id)) attempt.holder = now;
  else attempt.holder = ClaimHolder{};
  return attempt;
}

std::optional<ClaimHolder> JobClaims::holder(const std::string& job_id) {
  if (held_.count(job_id) != 0) return std::nullopt;
  const fs::path path = file(job_id);
  std::error_code error;
  if (!fs::exists(path, error)) return std::nullopt;
  std::optional<ClaimHolder> h = read(path);
  if (h && h->run == self_.run) return std::nullopt;
  ClaimHolder seen;
  if (liveness(h, path, &seen) == Liveness::gone) return std::nullopt;
  return seen;
}

void JobClaims::release(const std::string& job_id) {
  if (held_.erase(job_id) == 0) return;
  const fs::path path = file(job_id);
  const std::optional<ClaimHolder> h = read(path);
  if (h && h->run == self_.run) ::unlink(path.c_str());
}

void JobClaims::release_all() {
  const std::set<std::string> ids = held_;
  for (const std::string& id : ids) release(id);
  std::error_code ignored;
  fs::remove(folder_ / fmt::format(".clock-{}", self_.run), ignored);
}

void JobClaims::refresh_if_due() {
  const auto now = std::chrono::steady_clock::now();
  if (held_.empty() || now - last_refresh_ < refresh_interval_) return;
  last_refresh_ = now;
  std::vector<std::string> lost;
  for (const std::string& id : held_) {
    const fs::path path = file(id);
    const std::optional<ClaimHolder> h = read(path);
    if (h && h->run != self_.run) {
      // Taken over while this run did not refresh it for the timeout (stopped, or hung): the
      // claim is the other run's now and is left alone; both train the job and write the same
      // result file.
      lost.push_back(id);
      fmt::print(stderr,
                 "warning: the claim of job {} was taken over by another run ({}) while this run did not refresh "
                 "it for more than {} s (stopped or hung?); both runs are training the job now and will write the "
                 "same result\n",
                 id, h->describe(), timeout_seconds_);
      continue;
    }
    if (::utimensat(AT_FDCWD, path.c_str(), nullptr, 0) == 0 || errno != ENOENT) continue;
    // Deleted (a scratch purge, or by hand): written again; if another run took it meanwhile, it
    // stands and the job runs in both (their result files are the same).
    ensure_folder();
    create(path);
  }
  for (const std::string& id : lost) held_.erase(id);
}

}  // namespace diffpool
