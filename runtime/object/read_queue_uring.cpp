// The read queue on io_uring: one ring per thread that reads ahead, reads
// submitted as they are started and reaped as they are waited for.
#include <liburing.h>

#include <cerrno>

#include "read_queue.hpp"

namespace ferry::object {
namespace {

class uring_queue final : public read_queue {
 public:
  ~uring_queue() override { io_uring_queue_exit(&ring_); }  // the owner waited for every read first
  bool init(unsigned depth) { return io_uring_queue_init(depth, &ring_, 0) == 0; }

  bool start(int fd, void* into, std::uint32_t length, std::uint64_t offset, std::uint64_t tag) override {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (!sqe) return false;
    io_uring_prep_read(sqe, fd, into, length, offset);
    io_uring_sqe_set_data64(sqe, tag);
    int rc;
    while ((rc = io_uring_submit(&ring_)) == -EINTR) {
    }
    return rc == 1;
  }

  done wait() override {
    io_uring_cqe* cqe = nullptr;
    int rc;
    while ((rc = io_uring_wait_cqe(&ring_, &cqe)) == -EINTR) {
    }
    if (rc < 0) return {~std::uint64_t{0}, rc};  // no completion to report: the caller drops what it had in flight
    const done d{io_uring_cqe_get_data64(cqe), cqe->res};
    io_uring_cqe_seen(&ring_, cqe);
    return d;
  }

 private:
  io_uring ring_{};
};

}  // namespace

std::unique_ptr<read_queue> read_queue::open(unsigned depth) {
  auto q = std::make_unique<uring_queue>();
  if (!q->init(depth)) return nullptr;  // the kernel refused a ring (qemu-user, seccomp): read synchronously
  return q;
}

}  // namespace ferry::object
