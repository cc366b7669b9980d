#pragma once
// MPI for the task farm: initialised only when the process was started by an MPI launcher
// (mpirun, srun --mpi=pmix), so `diffpool run` without a launcher needs no MPI runtime at all.
// Messages are typed by an enum of tags and carry a fixed-size, trivially copyable header; a
// variable-length text (a failure reason) follows the header in the same message and is sized
// with MPI_Probe + MPI_Get_count.
#include <mpi.h>

#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

namespace diffpool {

enum class Tag : int {
  request = 1,   // worker -> master: ready for a job
  assign = 2,    // master -> worker: run job `job` with sweep point `point`
  done = 3,      // worker -> master: a job ended (status, metrics; failure reason follows)
  progress = 4,  // worker -> master: epoch `epoch` of `epochs` of job `job` finished; it can end after
                //   epoch `last_epoch` at the earliest, and its fastest epoch took `seconds`
  stop = 5,      // master -> worker: checkpoint the running job and stop (preemption)
  shutdown = 6,  // master -> worker: no more work
  heartbeat = 7, // both ways, every quarter of backend.heartbeat_seconds: "still here" (no payload)
};

struct MessageHeader {
  int64_t job = -1;
  int64_t point = -1;
  int32_t status = 0;
  int32_t epoch = 0;
  int32_t epochs = 0;
  int32_t last_epoch = 0;
  int32_t resumed_epoch = 0;  // progress: the epochs a resumed job had before this run
  int32_t waiting_for_space = 0;  // progress: 1 when the job waits for room to write its result
  double validation_accuracy = 0;
  double test_accuracy = 0;
  double seconds = 0;
};
static_assert(std::is_trivially_copyable_v<MessageHeader>, "MPI messages are sent as bytes");

struct Message {
  Tag tag = Tag::request;
  int source = 0;
  MessageHeader header;
  std::string text;
};

class MpiSession {
 public:
  // Initialises MPI (MPI_THREAD_FUNNELED: only the main thread calls MPI) when launched by an MPI
  // launcher; otherwise this is a session of one rank without MPI.
  MpiSession(int* argc, char*** argv);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

  bool active() const { return active_; }
  int rank() const { return rank_; }
  int size() const { return size_; }
  int local_rank() const { return local_rank_; }  // rank among the ranks of this node

  void send(int destination, Tag tag, const MessageHeader& header, const std::string& text = {}) const;
  // A waiting message (any source, any tag), if there is one; never blocks.
  std::optional<Message> poll() const;
  // A waiting message with this tag from this source, if there is one.
  std::optional<Message> poll(int source, Tag tag) const;
  void barrier() const;
  // Lets all ranks agree: true when any rank passes true.
  bool any(bool value) const;
  // Strings of all ranks at rank 0 (others get an empty vector).
  std::vector<std::string> gather(const std::string& value) const;

  // Ends every rank with `code` (MPI_Abort; mpirun exits with it): for rank 0 when a rank is lost,
  // since MPI_Finalize would wait for it forever.
  [[noreturn]] void abort(int code) const;
  // Ends this process with `code` without MPI_Finalize (which would wait for ranks it can no
  // longer reach), after flushing stdout and stderr: for a worker that lost rank 0.
  [[noreturn]] static void leave(int code);

  // True when the environment shows an MPI launcher (OMPI_COMM_WORLD_SIZE, PMIX_RANK, PMI_SIZE).
  static bool launched_by_mpi();

 private:
  std::optional<Message> receive(const MPI_Status& status) const;
  bool active_ = false;
  int rank_ = 0;
  int size_ = 1;
  int local_rank_ = 0;
};

}  // namespace diffpool
