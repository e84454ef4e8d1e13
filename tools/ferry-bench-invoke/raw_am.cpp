#include "raw_am.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>

#include <fmt/format.h>

namespace ferry::bench {
namespace {

constexpr auto kWaitLimit = std::chrono::seconds(20);
constexpr auto kDozeAfter = std::chrono::milliseconds(1);  // serve(): idle this long, poll every kDozeTurn
constexpr auto kDozeTurn = std::chrono::milliseconds(1);

}  // namespace

result<std::unique_ptr<raw_am>> raw_am::create(const std::string& kind, const std::string& tls,
                                               const std::string& provider) {
  if (kind == "ucx") return make_raw_ucx(tls);
  if (kind == "ofi") return make_raw_ofi(provider);
  return make_error(errc::unsupported, fmt::format("no raw baseline for transport '{}'", kind));
}

result<void> raw_am::serve(int idle_timeout_ms) {
  auto last = std::chrono::steady_clock::now();
  unsigned spins = 0;
  bool dozing = false;
  while (!stop_ || !to_answer_.empty()) {
    if (progress() != 0) {
      last = std::chrono::steady_clock::now();
      dozing = false;
    }
    while (!to_answer_.empty()) {
      FERRY_TRY_STATUS(answer(to_answer_.front().to, to_answer_.front().value));
      to_answer_.pop_front();
    }
    if (dozing) std::this_thread::sleep_for(kDozeTurn);
    if (dozing || ++spins % 4096 == 0) {
      const auto idle = std::chrono::steady_clock::now() - last;
      if (idle > std::chrono::milliseconds(idle_timeout_ms))
        return make_error(errc::timeout, fmt::format("no message from the bench client for {} ms", idle_timeout_ms));
      dozing = idle > kDozeAfter;
    }
  }
  // Let the last answers leave before the endpoint goes.
  for (int i = 0; i < 10000; ++i) progress();
  return {};
}

// Progress until `answers_` reaches `target` (bounded in time).
result<void> raw_am::wait_answers(std::uint64_t target) {
  const auto limit = std::chrono::steady_clock::now() + kWaitLimit;
  unsigned spins = 0;
  while (answers_ < target) {
    progress();
    if (++spins % 4096 == 0 && std::chrono::steady_clock::now() > limit)
      return make_error(errc::timeout, "the raw bench peer stopped answering");
  }
  return {};
}

result<double> raw_am::round_trip_us(std::size_t payload, int iterations, int batches) {
  std::vector<double> per_batch;
  for (int b = -1; b < batches; ++b) {  // batch -1 warms up
    FERRY_TRY(const double us, batch_us(payload, iterations, 0));
    if (b >= 0) per_batch.push_back(us);
  }
  std::sort(per_batch.begin(), per_batch.end());
  return per_batch[per_batch.size() / 2];
}

result<double> raw_am::batch_us(std::size_t payload, int iterations, int lead_in) {
  payload_.assign(std::max<std::size_t>(payload, 1), 0x5a);
  auto t0 = std::chrono::steady_clock::now();
  for (int i = -lead_in; i < iterations; ++i) {
    if (i == 0) t0 = std::chrono::steady_clock::now();
    FERRY_TRY_STATUS(send_request(kind::ping, payload_.data(), payload));
    FERRY_TRY_STATUS(wait_answers(answers_ + 1));
  }
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / iterations;
}

result<double> raw_am::rate(int window, int total, std::size_t payload) {
  payload_.assign(std::max<std::size_t>(payload, 1), 0x5a);
  const std::uint64_t base = answers_;
  const auto t0 = std::chrono::steady_clock::now();
  const auto limit = t0 + kWaitLimit;
  unsigned spins = 0;
  for (int sent = 0; sent < total;) {
    if (++spins % 4096 == 0 && std::chrono::steady_clock::now() > limit)
      return make_error(errc::timeout, "the raw bench peer stopped answering");
    while (sent < total && static_cast<std::int64_t>(sent) - static_cast<std::int64_t>(answers_ - base) < window) {
      FERRY_TRY_STATUS(send_request(kind::ping, payload_.data(), payload));
      ++sent;
    }
    progress();
  }
  FERRY_TRY_STATUS(wait_answers(base + total));
  return total / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

result<double> raw_am::stream(std::span<const std::uint8_t> source, std::size_t slice, int window) {
  if (slice == 0 || source.empty()) return make_error(errc::invalid_argument, "an empty stream");
  const std::uint64_t base = answers_;
  const std::size_t slices = (source.size() + slice - 1) / slice;
  const auto t0 = std::chrono::steady_clock::now();
  const auto limit = t0 + kWaitLimit;
  unsigned spins = 0;
  for (std::size_t sent = 0; sent < slices;) {
    if (++spins % 4096 == 0 && std::chrono::steady_clock::now() > limit)
      return make_error(errc::timeout, "the raw bench peer stopped answering");
    while (sent < slices && sent - (answers_ - base) < static_cast<std::size_t>(window)) {
      const std::size_t offset = sent * slice;
      FERRY_TRY_STATUS(send_request(kind::slice, source.data() + offset, std::min(slice, source.size() - offset),
                                    place{offset, source.size()}));
      ++sent;
    }
    progress();
  }
  FERRY_TRY_STATUS(wait_answers(base + slices));
  return static_cast<double>(source.size()) / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::uint8_t* raw_am::slice_destination(place at, std::size_t length) {
  if (at.total > (std::uint64_t{1} << 34) || at.offset > at.total || length > at.total - at.offset) {
    fmt::print(stderr, "bench server: a slice of {} bytes at {} does not fit an array of {} (not put in place)\n", length,
               at.offset, at.total);
    return nullptr;
  }
  if (sink_.size() < at.total) sink_.resize(at.total);
  return sink_.data() + at.offset;
}

result<std::uint64_t> raw_am::stop() {
  static const std::uint64_t bye = 0;
  FERRY_TRY_STATUS(send_request(kind::stop, &bye, sizeof bye));
  FERRY_TRY_STATUS(wait_answers(answers_ + 1));
  return last_answer_;
}

void raw_am::queue_answer(std::uint64_t to, kind k) {
  to_answer_.push_back({to, k == kind::stop ? digest(sink_) : kDone});
}

std::uint64_t raw_am::digest(std::span<const std::uint8_t> bytes) {
  // FNV-1a over 8-byte words (the tail padded with zeros), with the length.
  std::uint64_t h = 0xcbf29ce484222325ull ^ bytes.size();
  for (std::size_t i = 0; i < bytes.size(); i += 8) {
    std::uint64_t w = 0;
    std::memcpy(&w, bytes.data() + i, std::min<std::size_t>(8, bytes.size() - i));
    h = (h ^ w) * 0x100000001b3ull;
  }
  return bytes.empty() ? 0 : h;
}

}  // namespace ferry::bench
