#include "runner/mpi_session.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "engine/core/error.hpp"

namespace diffpool {

namespace {
void check(int code, const char* call) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  MPI_Error_string(code, text, &length);
  throw LibraryError(fmt::format("MPI: {} failed: {}", call, std::string(text, static_cast<std::size_t>(length))));
}
}  // namespace

bool MpiSession::launched_by_mpi() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK"})
    if (const char* v = std::getenv(name); v && *v) return true;
  return false;
}

MpiSession::MpiSession(int* argc, char*** argv) {
  if (!launched_by_mpi()) return;
  int provided = 0;
  check(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
  active_ = true;
  if (provided < MPI_THREAD_FUNNELED)
    throw LibraryError("MPI: the library does not provide MPI_THREAD_FUNNELED (rank 0 trains in a second thread)");
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  check(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "MPI_Comm_rank");
  check(MPI_Comm_size(MPI_COMM_WORLD, &size_), "MPI_Comm_size");
  MPI_Comm node;
  check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node), "MPI_Comm_split_type");
  check(MPI_Comm_rank(node, &local_rank_), "MPI_Comm_rank (node)");
  MPI_Comm_free(&node);
}

MpiSession::~MpiSession() {
  if (active_) MPI_Finalize();
}

void MpiSession::send(int destination, Tag tag, const MessageHeader& header, const std::string& text) const {
  if (!active_) return;
  std::vector<char> buffer(sizeof(MessageHeader) + text.size());
  std::memcpy(buffer.data(), &header, sizeof header);
  std::memcpy(buffer.data() + sizeof header, text.data(), text.size());
  check(MPI_Send(buffer.data(), static_cast<int>(buffer.size()), MPI_BYTE, destination, static_cast<int>(tag), MPI_COMM_WORLD),
        "MPI_Send");
}

std::optional<Message> MpiSession::receive(const MPI_Status& status) const {
  int count = 0;
  check(MPI_Get_count(&status, MPI_BYTE, &count), "MPI_Get_count");
  std::vector<char> buffer(static_cast<std::size_t>(count));
  check(MPI_Recv(buffer.data(), count, MPI_BYTE, status.MPI_SOURCE, status.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE),
        "MPI_Recv");
  DP_CHECK(buffer.size() >= sizeof(MessageHeader), "MPI message of {} bytes from rank {}", buffer.size(), status.MPI_SOURCE);
  Message m;
  m.tag = static_cast<Tag>(status.MPI_TAG);
  m.source = status.MPI_SOURCE;
  std::memcpy(&m.header, buffer.data(), sizeof(MessageHeader));
  m.text.assign(buffer.data() + sizeof(MessageHeader), buffer.size() - sizeof(MessageHeader));
  return m;
}

std::optional<Message> MpiSession::poll() const {
  if (!active_) return std::nullopt;
  int flag = 0;
  MPI_Status status;
  check(MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &status), "MPI_Iprobe");
  if (!flag) return std::nullopt;
  return receive(status);
}

std::optional<Message> MpiSession::poll(int source, Tag tag) const {
  if (!active_) return std::nullopt;
  int flag = 0;
  MPI_Status status;
  check(MPI_Iprobe(source, static_cast<int>(tag), MPI_COMM_WORLD, &flag, &status), "MPI_Iprobe");
  if (!flag) return std::nullopt;
  return receive(status);
}

void MpiSession::abort(int code) const {
  std::fflush(stdout);
  std::fflush(stderr);
  if (active_) MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

void MpiSession::leave(int code) {
  std::fflush(stdout);
  std::fflush(stderr);
  std::_Exit(code);
}

void MpiSession::barrier() const {
  if (active_) check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
}

bool MpiSession::any(bool value) const {
  if (!active_) return value;
  int local = value ? 1 : 0, global = 0;
  check(MPI_Allreduce(&local, &global, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD), "MPI_Allreduce");
  return global != 0;
}

std::vector<std::string> MpiSession::gather(const std::string& value) const {
  if (!active_) return {value};
  int length = static_cast<int>(value.size());
  std::vector<int> lengths(static_cast<std::size_t>(size_));
  check(MPI_Gather(&length, 1, MPI_INT, lengths.data(), 1, MPI_INT, 0, MPI_COMM_WORLD), "MPI_Gather");
  std::vector<int> displacements(static_cast<std::size_t>(size_), 0);
  int total = 0;
  for (int r = 0; r < size_; ++r) {
    displacements[static_cast<std::size_t>(r)] = total;
    total += lengths[static_cast<std::size_t>(r)];
  }
  std::vector<char> all(static_cast<std::size_t>(std::max(total, 1)));
  check(MPI_Gatherv(value.data(), length, MPI_CHAR, all.data(), lengths.data(), displacements.data(), MPI_CHAR, 0,
                    MPI_COMM_WORLD),
        "MPI_Gatherv");
  std::vector<std::string> out;
  if (rank_ != 0) return out;
  for (int r = 0; r < size_; ++r)
    out.emplace_back(all.data() + displacements[static_cast<std::size_t>(r)], static_cast<std::size_t>(lengths[static_cast<std::size_t>(r)]));
  return out;
}

}  // namespace diffpool
