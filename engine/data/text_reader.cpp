#include "engine/data/text_reader.hpp"

#include <fmt/format.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <thread>

#include "engine/core/error.hpp"

namespace diffpool::text {

namespace {

constexpr std::size_t kBlockBytes = std::size_t{4} << 20;  // one fread / gzread
constexpr std::size_t kMinBlockBytes = std::size_t{64} << 10;

// Blocks (and the line buffer) of a small file are smaller: a 4 MB buffer per file would cost more
// than reading a file of a few lines. `bytes` is the file size (compressed for gzip, where 8x
// allows for typical inflation; larger files get whole blocks anyway).
std::size_t block_bytes_for(uint64_t bytes, bool gzip) {
  const uint64_t wanted = gzip ? bytes * 8 : bytes + 1;
  return static_cast<std::size_t>(std::clamp<uint64_t>(wanted, kMinBlockBytes, kBlockBytes));
}
constexpr int kReadAheadBlocks = 3;                         // inflated blocks waiting for the parser

}  // namespace

void throw_at(const std::string& path, int64_t line, const std::string& message) {
  throw InputError(fmt::format("{}:{}: {}", path, line, message));
}

std::string quote(std::string_view line) {
  constexpr std::size_t kMax = 80;
  if (line.size() <= kMax) return fmt::format("'{}'", line);
  return fmt::format("'{}...'", line.substr(0, kMax));
}

bool parse_real(const char*& p, const char* end, double& value) {
  const char* q = p;
  if (q < end && *q == '+') ++q;  // from_chars rejects an explicit plus sign
  if (q == end || *q == '+' || (*q == '-' && q != p)) return false;  // no "+-1" or "++1"
  double v = 0.0;
  auto [stop, error] = std::from_chars(q, end, v);
  if (error != std::errc() || !std::isfinite(v)) return false;
  value = v;
  p = stop;
  return true;
}

// ---- InputFile ---------------------------------------------------------------------------------
//
// Plain files are read with fread straight into the caller's buffer. Gzip files are inflated by a
// background thread into a ring of blocks; read() copies out of the ring. A zlib error is stored
// in its block and thrown by read() when the parser reaches it, so the message can name the line.

struct InputFile::Impl {
  std::string path;
  std::FILE* file = nullptr;
  gzFile gz = nullptr;
  uint64_t compressed_bytes = 0;  // size of the .gz file
  uint64_t allowed_bytes = 0;     // what it may inflate to (InputLimits)
  std::string limit_message;      // the error when it inflates to more
  std::size_t block_bytes = kBlockBytes;

  struct Block {
    std::vector<char> data;
    std::size_t size = 0;
    bool full = false;   // written by the inflater, not yet consumed
    bool last = false;   // end of file (possibly with an error)
    std::string error;   // zlib's message, when inflating failed
  };
  Block blocks[kReadAheadBlocks];
  std::mutex mutex;
  std::condition_variable changed;
  bool stop = false;
  int consume_index = 0;
  std::size_t consume_offset = 0;
  bool finished = false;  // the consumer saw the last block
  std::thread inflater;

  void inflate_loop();
};

void InputFile::Impl::inflate_loop() {
  bool first = true;
  uint64_t inflated = 0;
  for (int index = 0;; index = (index + 1) % kReadAheadBlocks) {
    Block& block = blocks[index];
    {
      std::unique_lock lock(mutex);
      changed.wait(lock, [&] { return stop || !block.full; });
      if (stop) return;
    }
    // The block is ours until it is marked full.
    block.data.resize(block_bytes);
    int n = gzread(gz, block.data.data(), static_cast<unsigned>(block_bytes));
    std::string error;
    // gzread reports a truncated stream (Z_BUF_ERROR) only through gzerror. Bytes it inflated
    // before an error are dropped: after corruption they may be garbage, and a parse error on
    // garbage would hide the real cause.
    int code = Z_OK;
    const char* message = gzerror(gz, &code);
    if (n < 0 || code != Z_OK) {
      std::string_view text = message && *message ? message : "error";
      if (text.starts_with(path + ": ")) text.remove_prefix(path.size() + 2);  // zlib prefixes the path
      error = fmt::format("corrupt gzip data: zlib: {}", text);
    } else if (first && n > 0 && gzdirect(gz)) {
      // gzread passes a file without gzip header through unchanged; a .gz that is not gzip is broken.
      error = "not a gzip file (no gzip header), although its name ends in .gz";
    } else if (n > 0 && (inflated += static_cast<uint64_t>(n)) > allowed_bytes) {
      error = limit_message;  // a gzip bomb, or a file far more repetitive than any dataset
    }
    first = false;
    {
      std::lock_guard lock(mutex);
      block.size = error.empty() ? static_cast<std::size_t>(std::max(n, 0)) : 0;
      block.error = std::move(error);
      block.last = !block.error.empty() || n <= 0;
      block.full = true;
    }
    changed.notify_all();
    if (block.last) return;
  }
}

InputFile::InputFile(const std::string& path, bool gzip, const InputLimits& limits)
    : path_(path), limits_(limits), impl_(std::make_unique<Impl>()) {
  if (gzip) {
    impl_->gz = gzopen(path.c_str(), "rb");
    if (!impl_->gz) {
      throw InputError(fmt::format("{}: cannot open: {}", path, errno ? std::strerror(errno) : "zlib gzopen failed"));
    }
    std::error_code ignored;
    auto size = std::filesystem::file_size(path, ignored);
    impl_->compressed_bytes = ignored ? 0 : static_cast<uint64_t>(size);
    uint64_t by_ratio = impl_->compressed_bytes > UINT64_MAX / std::max<uint64_t>(limits.max_gzip_ratio, 1)
                            ? UINT64_MAX
                            : impl_->compressed_bytes * limits.max_gzip_ratio;
    impl_->block_bytes = block_bytes_for(impl_->compressed_bytes, true);
    impl_->allowed_bytes = std::min(limits.max_gzip_bytes, std::max(limits.gzip_floor_bytes, by_ratio));
    impl_->limit_message = fmt::format(
        "the file inflates to more than {} bytes, the limit for a gzip file of {} bytes ({} times its compressed "
        "size, at least {} and at most {} bytes; engine/README.md, \"Dataset files\"). A gzip bomb or a damaged "
        "file; if it is genuine, decompress it (gunzip): plain files have no such limit",
        impl_->allowed_bytes, impl_->compressed_bytes, limits.max_gzip_ratio, limits.gzip_floor_bytes,
        limits.max_gzip_bytes);
    gzbuffer(impl_->gz, static_cast<unsigned>(std::clamp<uint64_t>(impl_->compressed_bytes, 8u << 10, 256u << 10)));
    impl_->path = path;
    impl_->inflater = std::thread([impl = impl_.get()] { impl->inflate_loop(); });
  } else {
    impl_->file = std::fopen(path.c_str(), "rb");
    if (!impl_->file) throw InputError(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
    std::error_code unknown;
    auto size = std::filesystem::file_size(path, unknown);
    impl_->block_bytes = unknown ? kBlockBytes : block_bytes_for(static_cast<uint64_t>(size), false);
  }
}

std::size_t InputFile::block_bytes() const { return impl_->block_bytes; }

InputFile::~InputFile() {
  if (impl_->inflater.joinable()) {
    {
      std::lock_guard lock(impl_->mutex);
      impl_->stop = true;
    }
    impl_->changed.notify_all();
    impl_->inflater.join();
  }
  if (impl_->gz) gzclose(impl_->gz);
  if (impl_->file) std::fclose(impl_->file);
}

std::size_t InputFile::read(char* buffer, std::size_t capacity, int64_t line) {
  if (impl_->file) {
    std::size_t n = std::fread(buffer, 1, capacity, impl_->file);
    if (n == 0 && std::ferror(impl_->file)) throw_at(path_, line, fmt::format("read error: {}", std::strerror(errno)));
    return n;
  }
  Impl& impl = *impl_;
  std::size_t copied = 0;
  while (copied < capacity && !impl.finished) {
    Impl::Block& block = impl.blocks[impl.consume_index];
    {
      std::unique_lock lock(impl.mutex);
      impl.changed.wait(lock, [&] { return block.full; });
    }
    if (!block.error.empty()) throw_at(path_, line, block.error);
    std::size_t take = std::min(capacity - copied, block.size - impl.consume_offset);
    std::memcpy(buffer + copied, block.data.data() + impl.consume_offset, take);
    copied += take;
    impl.consume_offset += take;
    if (impl.consume_offset == block.size) {
      if (block.last) {
        impl.finished = true;
        break;
      }
      {
        std::lock_guard lock(impl.mutex);
        block.full = false;
      }
      impl.changed.notify_all();
      impl.consume_offset = 0;
      impl.consume_index = (impl.consume_index + 1) % kReadAheadBlocks;
    }
  }
  return copied;
}

// ---- LineReader ------------------------------------------------------------------------------

LineReader::LineReader(InputFile& file)
    : file_(file), max_line_bytes_(file.limits().max_line_bytes), buffer_(file.block_bytes()) {
  begin_ = end_ = buffer_.data();
}

void LineReader::line_too_long() const {
  std::size_t pending = static_cast<std::size_t>(end_ - begin_);
  throw_at(file_.path(), line_number_ + 1,
           fmt::format("line longer than {} bytes, the limit for one line (engine/README.md, \"Dataset files\"): "
                       "{}", max_line_bytes_, quote(std::string_view(begin_, pending))));
}

bool LineReader::refill() {
  if (at_end_) return false;
  // Keep the partial line at the front; when it fills the whole buffer, double the buffer (the line
  // limit bounds it: a small file's buffer starts small).
  std::size_t pending = static_cast<std::size_t>(end_ - begin_);
  if (pending > max_line_bytes_) line_too_long();
  std::memmove(buffer_.data(), begin_, pending);
  if (pending == buffer_.size()) buffer_.resize(buffer_.size() * 2);
  std::size_t n = file_.read(buffer_.data() + pending, buffer_.size() - pending, line_number_ + 1);
  begin_ = buffer_.data();
  end_ = begin_ + pending + n;
  if (n == 0) at_end_ = true;
  return n > 0;
}

}  // namespace diffpool::text
