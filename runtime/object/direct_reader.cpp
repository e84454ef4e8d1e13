#include "direct_reader.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "read_queue.hpp"

namespace ferry::object {
namespace {

constexpr std::uint64_t kBlock = direct_file::kBlock, kAlign = direct_file::kAlign;
constexpr unsigned kAhead = direct_file::kAheadBlocks;
constexpr std::uint64_t kNoBlock = ~std::uint64_t{0};

std::uint64_t align_up(std::uint64_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

status io_error(std::string_view what, const std::filesystem::path& p, int err) {
  return make_error(errc::io_error, fmt::format("{} {}: {}", what, p.string(), std::strerror(err)));
}

struct aligned_free {
  void operator()(std::byte* p) const { std::free(p); }
};
using aligned_bytes = std::unique_ptr<std::byte, aligned_free>;

// A block's worth of memory O_DIRECT may read into; empty if there is none.
aligned_bytes block_buffer() { return aligned_bytes(static_cast<std::byte*>(std::aligned_alloc(kAlign, kBlock))); }

// A block of a file, read ahead or being read.
struct block {
  std::uint64_t index = kNoBlock;  // which block of the file; kNoBlock: none
  aligned_bytes bytes;
  bool in_flight = false;
  std::int64_t got = 0;  // bytes read, or -errno
};

// What one thread reads of one file at a time (direct_reader.hpp, "Read-ahead").
class thread_reader {
 public:
  ~thread_reader() { settle(); }

  result<void> read(const std::shared_ptr<direct_file>& f, std::uint64_t offset, std::span<std::byte> out, bool ahead) {
    const std::uint64_t end = offset + out.size();
    const bool in_order = ahead && last_ == f.get() && offset == next_;
    if (file_ && (file_ != f || !in_order || blocks_version_ != f->version())) settle();
    last_ = f.get();
    next_ = end;
    for (std::uint64_t at = offset; at < end;) {
      const std::uint64_t index = at / kBlock, to = std::min(end, (index + 1) * kBlock);
      std::span<std::byte> piece = out.subspan(at - offset, to - at);
      block* b = file_ ? held(index) : nullptr;
      if (b) wait_for(*b);
      if (b && b->got >= 0 && index * kBlock + static_cast<std::uint64_t>(b->got) >= to) {
        std::memcpy(piece.data(), b->bytes.get() + (at - index * kBlock), piece.size());
      } else {
        FERRY_TRY_STATUS(read_now(*f, at, piece));  // not read ahead, or its read failed: this one reports why
      }
      at = to;
    }
    if (in_order && end < f->size()) {
      start_ahead(f, end / kBlock);
    } else if (end >= f->size()) {
      settle();  // at the end of the file: let it go
    }
    return {};
  }

 private:
  // Bytes [at, +out.size()) within one block, read now into the bounce
  // buffer (whole aligned pages: O_DIRECT) and copied out.
  result<void> read_now(const direct_file& f, std::uint64_t at, std::span<std::byte> out) {
    if (!bounce_ && !(bounce_ = block_buffer()))
      return make_error(errc::out_of_memory, fmt::format("cannot allocate {} bytes for O_DIRECT", kBlock));
    const std::uint64_t first = at / kAlign * kAlign, length = align_up(at + out.size()) - first;
    ssize_t n;
    while ((n = ::pread(f.fd(), bounce_.get(), length, static_cast<off_t>(first))) < 0 && errno == EINTR) {
    }
    if (n < 0) return io_error("pread (O_DIRECT)", f.path(), errno);
    // The file is a whole image: a short read may only end at its end.
    if (static_cast<std::uint64_t>(n) < at + out.size() - first)
      return make_error(errc::io_error, fmt::format("{}: short read", f.path().string()));
    std::memcpy(out.data(), bounce_.get() + (at - first), out.size());
    return {};
  }

  block* held(std::uint64_t index) {
    for (auto& b : blocks_)
      if (b.index == index) return &b;
    return nullptr;
  }

  // Keep blocks [first, first + kAhead) of `f` (those inside it) read or in
  // flight, reusing the blocks before `first`.
  void start_ahead(const std::shared_ptr<direct_file>& f, std::uint64_t first) {
    if (!queue_ready()) return;
    if (!file_) {
      file_ = f;
      blocks_version_ = f->version();
    }
    for (std::uint64_t index = first; index < first + kAhead && index * kBlock < f->size(); ++index) {
      if (held(index)) continue;
      auto spare = std::find_if(blocks_.begin(), blocks_.end(),
                                [&](const block& b) { return !b.in_flight && (b.index == kNoBlock || b.index < first); });
      if (spare == blocks_.end()) return;
      if (!spare->bytes && !(spare->bytes = block_buffer())) return;
      const auto length = static_cast<std::uint32_t>(std::min(kBlock, align_up(f->size() - index * kBlock)));
      spare->index = index;
      spare->got = 0;
      spare->in_flight = queue_->start(f->fd(), spare->bytes.get(), length, index * kBlock,
                                       static_cast<std::uint64_t>(spare - blocks_.begin()));
      if (!spare->in_flight) {
        // Not submitted, but perhaps queued in the ring: this buffer may
        // still be read into, so it is never used again, nor the queue.
        (void)spare->bytes.release();
        *spare = block{};
        queue_broken_ = true;
        return;
      }
    }
  }

  void wait_for(block& b) {
    while (b.in_flight) {
      const auto done = queue_->wait();
      if (done.tag >= kAhead) {  // the ring failed: reads may still land in the buffers, so they are never reused
        for (auto& lost : blocks_)
          if (lost.in_flight) {
            (void)lost.bytes.release();
            lost = block{};
          }
        queue_broken_ = true;
        return;
      }
      blocks_[done.tag].got = done.result;
      blocks_[done.tag].in_flight = false;
    }
  }

  // Wait for every read in flight, drop every block and let the file go.
  void settle() {
    for (auto& b : blocks_) {
      wait_for(b);
      b.index = kNoBlock;
    }
    file_.reset();
  }

  bool queue_ready() {
    if (!queue_ && !queue_tried_) {
      queue_tried_ = true;
      queue_ = read_queue::open(kAhead);
    }
    return queue_ && !queue_broken_;
  }

  aligned_bytes bounce_;
  std::unique_ptr<read_queue> queue_;
  bool queue_tried_ = false, queue_broken_ = false;
  std::array<block, kAhead> blocks_;
  std::shared_ptr<direct_file> file_;  // the file blocks_ hold: kept open while they do
  std::uint64_t blocks_version_ = 0;   // the file's version when the first of them started
  const direct_file* last_ = nullptr;  // the file this thread read last (only compared)
  std::uint64_t next_ = kNoBlock;      // where a read in order of it starts
};

}  // namespace

result<std::shared_ptr<direct_file>> direct_file::open(const std::filesystem::path& path, std::uint64_t size) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC);
  if (fd < 0 && errno == EINVAL)
    return make_error(errc::unsupported, fmt::format("{}: its file system does not do O_DIRECT", path.string()));
  if (fd < 0) return io_error("open (O_DIRECT)", path, errno);
  return std::shared_ptr<direct_file>(new direct_file(path, fd, size));
}

direct_file::~direct_file() { ::close(fd_); }

result<void> direct_file::read(const std::shared_ptr<direct_file>& file, std::uint64_t offset, std::span<std::byte> out,
                               bool ahead) {
  thread_local thread_reader reader;
  return reader.read(file, offset, out, ahead);
}

}  // namespace ferry::object
