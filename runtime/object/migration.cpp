#include "object/migration.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>

#include <fmt/format.h>

#include "core/anonymous_mapping.hpp"
#include "directory/notify.hpp"
#include "wire/object_layout.hpp"

namespace ferry::object {

using wire::frame;
using wire::frame_type;

namespace {
// How long a move waits for work already running on its object, and for the
// destination's answers, before it gives up (before the commit point the
// object then stays; after it, the destination finishes the move when it
// asks, see recover()).
constexpr auto kDrainLimit = std::chrono::seconds(5);
constexpr auto kCopyLimit = std::chrono::seconds(30);
}  // namespace

void migration::step(std::string_view name) const {
  if (!crash_at_.empty() && name == crash_at_) ::_exit(86);
}

void migration::step_on_driver(std::string_view name) {
  if (crash_at_.empty() || name != crash_at_) return;
  member_.post([] { ::_exit(86); });
  for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
}

namespace {
// What a frame for an object pending here from a dead source gets.
status stranded(const object_id& id, wire::node_index self) {
  return make_error(errc::peer_dead,
                    fmt::format("object {} is moving to node {} from a node that stopped answering; the move is "
                                "decided when that node is back",
                                id.to_string(), self));
}
}  // namespace

std::optional<migration::admission> migration::admit(const object_id& id, frame& f) {
  if (id.is_nil()) return admission{};
  if (hold(id, f)) return std::nullopt;
  return counted(id);
}

std::optional<migration::admission> migration::try_admit(const object_id& id) {
  if (id.is_nil()) return admission{};
  if (moving_count_.load(std::memory_order_acquire) != 0) {
    std::lock_guard lock(mu_);
    if (moving_.contains(id)) return std::nullopt;
  }
  return counted(id);
}

migration::admission migration::counted(const object_id& id) {
  auto& active = count_of(id).active;
  active.fetch_add(1, std::memory_order_acq_rel);
  return admission{&active};
}

migration::work_count& migration::count_of(const object_id& id) {
  if (last_ != nullptr && last_id_ == id) return *last_;
  if (work_.size() >= sweep_at_) sweep_idle();
  work_count& c = work_.try_emplace(id).first->second;  // a node's element: it stays where it is until erased
  last_id_ = id;
  last_ = &c;
  return c;
}

void migration::sweep_idle() {
  // Both counts rise only here, on the driving thread; a 0 read here is
  // final, and the thread that made it has let go of the entry.
  std::erase_if(work_, [](const auto& entry) {
    return entry.second.active.load(std::memory_order_acquire) == 0 &&
           entry.second.drains.load(std::memory_order_acquire) == 0;
  });
  last_ = nullptr;
  sweep_at_ = std::max(kFirstSweep, 2 * work_.size());
}

bool migration::hold(const object_id& id, frame& f) {
  if (moving_count_.load(std::memory_order_acquire) == 0) return false;
  {
    std::lock_guard lock(mu_);
    auto it = moving_.find(id);
    if (it == moving_.end()) return false;
    if (!it->second.source_dead) {
      it->second.frames.push_back(std::move(f));
      return true;
    }
  }
  if (fail_held(f, stranded(id, member_.self()))) return true;
  std::lock_guard lock(mu_);  // nobody waits on it (a query): kept for when the source is back
  if (auto it = moving_.find(id); it != moving_.end()) it->second.frames.push_back(std::move(f));
  return true;
}

bool migration::start_hold(const object_id& id) {
  std::lock_guard lock(mu_);
  if (!moving_.emplace(id, held{}).second) return false;
  moving_count_.fetch_add(1, std::memory_order_acq_rel);
  return true;
}

bool migration::fail_held(frame& f, const status& s) {
  if (f.type == frame_type::invoke) {
    const auto& call = std::get<wire::invoke_body>(f.body);
    (void)member_.send(call.origin, {frame_type::error, member_.self(), call.origin_call,
                                     wire::error_body{s.code(), s.message()}});
    return true;
  }
  if (f.type == frame_type::object_move_query || f.call == 0) return false;
  answer(f, s);
  return true;
}

void migration::source_dead(wire::node_index source) {
  drop_assemblies(source);  // it sends no further part; a restarted source starts its moves again
  std::vector<std::pair<object_id, std::vector<frame>>> failed;
  for (const auto& [id, in] : log_.list(move_log::side::in)) {
    if (in.peer != source) continue;
    std::lock_guard lock(mu_);
    auto it = moving_.find(id);
    if (it == moving_.end() || it->second.source_dead) continue;  // installed already, or failing already
    it->second.source_dead = true;
    failed.emplace_back(id, std::move(it->second.frames));
    it->second.frames.clear();
  }
  for (auto& [id, frames] : failed)
    for (auto& f : frames)
      if (!hold(id, f)) reinject_(std::move(f));  // the move ended meanwhile: as usual
}

void migration::source_back(wire::node_index source) {
  drop_assemblies(source);
  for (const auto& [id, in] : log_.list(move_log::side::in)) {
    if (in.peer != source) continue;
    std::lock_guard lock(mu_);
    if (auto it = moving_.find(id); it != moving_.end()) it->second.source_dead = false;
  }
  ask_sources(source);
}

void migration::answer(const frame& f, const status& s) {
  if (s.ok()) {
    (void)member_.send(f.source, {frame_type::ack, member_.self(), f.call, wire::empty_body{}});
    return;
  }
  (void)member_.send(f.source, {frame_type::error, member_.self(), f.call, wire::error_body{s.code(), s.message()}});
}

void migration::on_migrate(frame&& f) {
  const auto [id, to, unused] = std::get<wire::dir_register_body>(f.body);
  if (hold(id, f)) return;  // moving from here, or pending here: after that move
  if (!store_.stat(id)) {  // not (or no longer) here: towards the owner, like any object frame
    const auto next = router_.next_hop(id);
    if (!next) return answer(f, make_error(errc::not_found, fmt::format("no node holds object {}", id.to_string())));
    if (auto s = member_.send(*next, f); !s.ok()) return answer(f, s);  // a dead owner: say so now
    directory::hint_owner(member_, router_, f.source, id, *next);
    return;
  }
  if (to >= router_.nodes())
    return answer(f, make_error(errc::invalid_argument,
                                fmt::format("cannot move object {} to node {}: the cluster has {} nodes", id.to_string(),
                                            to, router_.nodes())));
  if (to == member_.self()) return answer(f, {});
  {
    std::lock_guard lock(mu_);
    if (auto it = moving_.find(id); it != moving_.end()) {  // a second move waits for the first
      it->second.frames.push_back(std::move(f));
      return;
    }
    moving_.emplace(id, held{});
    moving_count_.fetch_add(1, std::memory_order_acq_rel);
  }
  // Frozen: every admission on the object so far is counted in `work`,
  // which this move holds until its drain is over.
  work_count* work = &count_of(id);
  work->drains.fetch_add(1, std::memory_order_relaxed);
  policy_.move_work([this, f = std::move(f), id, to, work] {
    status s;
    std::uint64_t version = 0;
    bool committed = false;
    try {
      s = move(id, *work, to, version, committed);
    } catch (const std::bad_alloc&) {
      s = make_error(errc::out_of_memory, fmt::format("node {} ran out of memory moving object {}", member_.self(),
                                                      id.to_string()));
    }
    work->drains.fetch_sub(1, std::memory_order_release);  // the last touch of `work`
    if (s.ok()) {  // the answer carries the version, so the requester's cache takes the new owner
      std::vector<std::uint8_t> v(8);
      layout::store_u64(reinterpret_cast<std::byte*>(v.data()), version);
      (void)member_.send(f.source, {frame_type::reply, member_.self(), f.call, wire::reply_body{std::move(v)}});
    } else {
      answer(f, s);
    }
    // The held frames go to the destination, which holds them until the
    // commit lands; the requester need not wait for it either.
    finish(id);
    if (committed) {
      step_on_driver(kStepSourceAnswered);  // after the held frames were passed on
      commit_to(to, id, version);
    }
  });
}

status migration::tell(frame_type type, wire::node_index to, const object_id& id, std::uint64_t version) {
  const wire::dir_register_body body{id, to, version};
  if (type != frame_type::object_commit) return member_.send(to, {type, member_.self(), 0, body});
  auto w = std::make_shared<calls::answer_waiter>();
  const std::uint64_t call = calls_.add({to, {}, wire::kNoNode, false}, calls::completion_for(w));
  if (auto s = member_.send(to, {type, member_.self(), call, body}); !s.ok()) (void)calls_.complete(call, {}, std::move(s));
  if (!w->wait_until(std::chrono::steady_clock::now() + kCopyLimit)) {
    calls_.cancel(call);
    return make_error(errc::timeout, fmt::format("node {} did not answer within {} s", to, kCopyLimit.count()));
  }
  return w->s;
}

namespace {
// A move's image on its way out (the source's step 3). Its parts leave from
// the driving thread: a few answered parts are in flight, and each answer
// sends the next ones there, so no part waits for another thread to hand
// it over (from the mover thread, every part cost the driver a wake-up).
// The first part, every kImagePartsPerAnswer-th and the last ask for an
// answer; the others carry call id 0, and a failure shows at the next
// answered one. The mover waits for the end: the last part's answer (the
// image stored as pending), the first failure, or kCopyLimit without any
// answer.
class image_sender : public std::enable_shared_from_this<image_sender> {
 public:
  image_sender(session::member& member, calls::call_table& calls, object_id id, wire::node_index to,
               store::image_in_place image, std::function<void()> all_sent)
      : member_(member),
        calls_(calls),
        id_(id),
        to_(to),
        image_(std::move(image)),
        size_(image_.image.size()),
        first_part_(first_part_of(image_)),
        all_sent_(std::move(all_sent)) {}

  /// Driving thread: send parts while fewer than kImageAnswersInFlight
  /// answered parts are unanswered.
  void pump() {
    if (pumping_) return;  // an answer that came while this one sends: its loop sends on
    pumping_ = true;
    while (next_ < size_ && !ended()) {
      const auto n = std::min<std::uint64_t>(migration::kImagePartBytes, size_ - next_);
      const bool answered = part_ % migration::kImagePartsPerAnswer == 0 || next_ + n == size_;
      if (answered && asked_ - answered_count() >= migration::kImageAnswersInFlight) break;
      std::uint64_t call = 0;
      if (answered) {
        call = calls_.add({to_, {}, wire::kNoNode, false}, calls::completion_for(shared_from_this()));
        calls_asked_.push_back(call);
        ++asked_;
      }
      const auto s = member_.send(to_, {frame_type::object_image, member_.self(), call,
                                        wire::object_image_body{id_, size_, next_, {}}},
                                  part_bytes(next_, n));
      next_ += n;
      ++part_;
      if (!s.ok()) {
        if (call != 0) (void)calls_.complete(call, {}, status(s));
        else end(s);
      } else if (next_ == size_ && all_sent_) {
        all_sent_();
      }
    }
    pumping_ = false;
  }

  /// An answered part's answer (the driving thread, or the thread that
  /// failed its call).
  void on_answer(std::span<const std::uint8_t>, status&& s) {
    {
      std::lock_guard lock(mu_);
      ++answers_;
      if (!s.ok() && !done_) {
        result_ = std::move(s);
        done_ = true;
      } else if (answers_ == parts_asked_total() && !done_) {
        done_ = true;  // the last part's answer: the image is stored
      }
    }
    cv_.notify_all();
    if (member_.driving()) pump();
    else member_.post([self = shared_from_this()] { self->pump(); });
  }

  /// The mover thread: the destination's verdict on the image.
  status wait() {
    std::unique_lock lock(mu_);
    for (std::uint64_t seen = answers_; !done_; seen = answers_) {
      if (!cv_.wait_for(lock, kCopyLimit, [&] { return done_ || answers_ != seen; })) {
        done_ = true;
        result_ = make_error(errc::timeout, fmt::format("node {} did not take object {} within {} s", to_,
                                                        id_.to_string(), kCopyLimit.count()));
      }
    }
    status result = result_;
    lock.unlock();
    member_.post([self = shared_from_this()] { self->cancel_outstanding(); });
    return result;
  }

 private:
  // The first part: the export's header, then the stored image's bytes.
  static large_bytes first_part_of(const store::image_in_place& image) {
    const auto n = std::min<std::uint64_t>(migration::kImagePartBytes, image.image.size());
    large_bytes part(static_cast<std::size_t>(n));
    std::memcpy(part.data(), image.head.data(), image.head.size());
    std::memcpy(part.data() + image.head.size(), image.image.data() + image.head.size(), n - image.head.size());
    return part;
  }
  // The bytes of the part at `offset`: the first part's own, else the
  // stored image's in place.
  std::span<const std::uint8_t> part_bytes(std::uint64_t offset, std::uint64_t n) const {
    if (offset == 0) return first_part_;
    return {reinterpret_cast<const std::uint8_t*>(image_.image.data()) + offset, static_cast<std::size_t>(n)};
  }

  // Every answered part of the image (known once the sizes are).
  std::uint64_t parts_asked_total() const {
    const std::uint64_t parts = (size_ + migration::kImagePartBytes - 1) / migration::kImagePartBytes;
    return (parts - 1) / migration::kImagePartsPerAnswer + 1 + ((parts - 1) % migration::kImagePartsPerAnswer != 0);
  }
  std::uint64_t answered_count() {
    std::lock_guard lock(mu_);
    return answers_;
  }
  bool ended() {
    std::lock_guard lock(mu_);
    return done_;
  }
  void end(status s) {
    {
      std::lock_guard lock(mu_);
      if (done_) return;
      result_ = std::move(s);
      done_ = true;
    }
    cv_.notify_all();
  }
  // Driving thread, once the mover has its answer: nothing more waits on them.
  void cancel_outstanding() {
    next_ = size_;
    for (const auto call : calls_asked_) (void)calls_.cancel(call);
    calls_asked_.clear();
  }

  session::member& member_;
  calls::call_table& calls_;
  const object_id id_;
  const wire::node_index to_;
  const store::image_in_place image_;  // the stored image, kept mapped while the parts leave
  const std::uint64_t size_;
  const large_bytes first_part_;
  std::function<void()> all_sent_;
  // The driving thread's.
  std::uint64_t next_ = 0;   // the next part's offset
  std::uint64_t part_ = 0;   // the next part's index
  std::uint64_t asked_ = 0;  // answered parts sent
  std::vector<std::uint64_t> calls_asked_;
  bool pumping_ = false;
  // Shared with the mover and with completions.
  std::mutex mu_;
  std::condition_variable cv_;
  std::uint64_t answers_ = 0;
  bool done_ = false;
  status result_;
};
}  // namespace

status migration::send_image(const object_id& id, wire::node_index to, std::uint64_t& version) {
  // Sent from the stored image in place (the object is frozen), its header
  // the export's, in parts that fit the buffers the transports keep however
  // many are in flight: one pass hashes the image, nothing copies it but
  // the transport.
  FERRY_TRY(auto image, store_.export_image_in_place(id, 1));
  version = layout::load_u64(image.head.data() + layout::kOffMoves);
  auto sender = std::make_shared<image_sender>(member_, calls_, id, to, std::move(image),
                                               [this] { step(kStepSourceImageSent); });
  member_.post([sender] { sender->pump(); });
  return sender->wait();
}

status migration::move(const object_id& id, const work_count& work, wire::node_index to, std::uint64_t& version,
                       bool& committed) {
  // 2. drain: the work admitted on this object before the freeze ends (and
  // seals its writes). Only its own: the call that asked for the move runs
  // on another object (cx.migrate of a call's own object is refused).
  // Looked at often at first (most work is short), then every millisecond.
  const auto drain_until = std::chrono::steady_clock::now() + kDrainLimit;
  auto pause = std::chrono::microseconds(25);
  while (work.active.load(std::memory_order_acquire) != 0) {
    if (std::chrono::steady_clock::now() > drain_until)
      return make_error(errc::timeout, fmt::format("object {} stayed busy for {} s: not moved (calls or object "
                                                   "operations on it ran that long)",
                                                   id.to_string(), kDrainLimit.count()));
    std::this_thread::sleep_for(pause);
    pause = std::min(2 * pause, std::chrono::microseconds(1000));
  }
  // 3. prepare: the sealed image, one move later, to the destination, which
  // stores it durably as pending before it answers.
  auto sent = send_image(id, to, version);
  // 4. commit: durable, or the move is off.
  if (auto committed = sent.ok() ? log_.put(move_log::side::out, id, {to, version}) : result<void>(sent); !committed) {
    (void)tell(frame_type::object_abort, to, id, version);  // best effort: a restarted destination asks
    return make_error(committed.code(), fmt::format("moving object {} to node {}: {}", id.to_string(), to,
                                                    committed.error().message()));
  }
  committed = true;
  step(kStepSourceCommitted);
  router_.learn(id, to, version);
  auto removed = store_.remove(id);
  moved_out_.fetch_add(1, std::memory_order_relaxed);
  step(kStepSourceRemoved);
  if (!removed)
    return make_error(removed.code(), fmt::format("object {} moved to node {}, but removing it here failed: {}",
                                                  id.to_string(), to, removed.error().message()));
  return {};
}

void migration::commit_to(wire::node_index to, const object_id& id, std::uint64_t version) {
  if (tell(frame_type::object_commit, to, id, version).ok()) (void)log_.erase(move_log::side::out, id);
}

void migration::finish(const object_id& id) {
  member_.post([this, id] {
    std::vector<frame> frames;
    {
      std::lock_guard lock(mu_);
      auto it = moving_.find(id);
      if (it == moving_.end()) return;
      frames = std::move(it->second.frames);
      moving_.erase(it);
      moving_count_.fetch_sub(1, std::memory_order_acq_rel);
    }
    for (auto& f : frames) reinject_(std::move(f));
  });
}

namespace {
// What answering a frame needs of it (its sender and call), without its bytes.
frame answer_to(const frame& f) { return {f.type, f.source, f.call, wire::empty_body{}}; }
}  // namespace

void migration::on_image(const frame& f, std::span<const std::byte> part) {
  if (f.source >= router_.nodes()) return answer(f, make_error(errc::invalid_argument, "only a node moves objects"));
  const auto& p = std::get<wire::object_image_body>(f.body);
  const auto key = std::pair{f.source, p.id};
  const auto refuse = [&](status s) {
    drop_assemblies(f.source, &p.id);
    if (f.call != 0) return answer(f, s);
    // Unanswered: the image's next answered part carries the reason.
    if (refusals_.size() >= kMaxAssemblies) refusals_.erase(refusals_.begin());
    refusals_.insert_or_assign(key, std::move(s));
  };
  if (p.offset > p.image_size || part.size() > p.image_size - p.offset)
    return refuse(make_error(errc::bad_format, fmt::format("a part of object {}'s image at offset {} ({} bytes) "
                                                           "passes its end ({} bytes)",
                                                           p.id.to_string(), p.offset, part.size(), p.image_size)));
  auto it = assemblies_.find(key);
  if (p.offset == 0) {  // a new image (a source that retries a move starts again)
    if (it != assemblies_.end()) assemblies_.erase(it);
    refusals_.erase(key);
    if (assemblies_.size() >= kMaxAssemblies)
      return refuse(make_error(errc::out_of_memory, fmt::format("node {} is taking {} images already: object {} "
                                                                "not taken",
                                                                member_.self(), assemblies_.size(), p.id.to_string())));
    auto image = log_.incoming().make_pending_image(p.image_size);
    if (!image) return refuse(image.error());
    it = assemblies_.emplace(key, assembly{std::move(*image), 0}).first;
  } else if (const auto r = it == assemblies_.end() ? refusals_.find(key) : refusals_.end(); r != refusals_.end()) {
    // Refused at a part nobody was answered for (a full disk, say): this
    // one says why; the parts after it find nothing and stay unanswered.
    if (f.call != 0) {
      answer(f, r->second);
      refusals_.erase(r);
    }
    return;
  } else if (it == assemblies_.end() || it->second.received != p.offset ||
             it->second.image.size() != p.image_size) {
    return refuse(make_error(
        errc::bad_format, fmt::format("a part of object {}'s image at offset {}: expected {}", p.id.to_string(),
                                      p.offset,
                                      it == assemblies_.end()
                                          ? std::string("its first part")
                                          : fmt::format("offset {} of {} bytes", it->second.received,
                                                        it->second.image.size()))));
  }
  if (auto written = it->second.image.write(p.offset, part); !written) return refuse(written.error());
  it->second.received += part.size();
  assembling_count_.store(assemblies_.size(), std::memory_order_relaxed);
  if (it->second.received < p.image_size) {
    if (f.call != 0) answer(f, {});
    return;
  }
  auto whole = std::make_shared<store::pending_image>(std::move(it->second.image));
  assemblies_.erase(it);
  assembling_count_.store(assemblies_.size(), std::memory_order_relaxed);
  if (images_in_place()) return store_image(f, *whole);
  policy_.blocking([this, to = answer_to(f), whole] { store_image(to, *whole); });
}

void migration::drop_assemblies(wire::node_index source, const object_id* id) {
  const auto of_it = [&](const auto& entry) {
    return entry.first.first == source && (id == nullptr || entry.first.second == *id);
  };
  std::erase_if(assemblies_, of_it);
  std::erase_if(refusals_, of_it);
  assembling_count_.store(assemblies_.size(), std::memory_order_relaxed);
}

void migration::store_image(const frame& f, store::pending_image& image) {
  // The header's shape only: the whole image, checksum included, is checked
  // once, by import_image, before anything here acts on it (a checksum
  // pass is one over the whole image; it was made twice).
  auto hdr = layout::read_header(image.bytes());
  if (!hdr) return answer(f, hdr.error());
  const object_id id = hdr->id;
  if (store_.stat(id))
    return answer(f, make_error(errc::already_exists, fmt::format("node {} already holds object {}", member_.self(),
                                                                  id.to_string())));
  auto stored = log_.incoming().import_image(image);
  if (!stored && stored.error().code() == errc::already_exists) {
    // A pending image from a move the sender aborted, the abort lost (the
    // sender owns the object). Checked again: a rare path.
    (void)log_.incoming().remove(id);
    stored = log_.incoming().import_image(image);
  }
  if (!stored) return answer(f, stored.error());  // a corrupt image: nothing here has changed
  (void)start_hold(id);  // already held: a pending image from an aborted move the abort did not reach
  // The sender owns the object: an `out` record here is from an earlier move
  // away whose destination never confirmed (that move ended long ago), and
  // an `in` record is from a move the sender aborted.
  (void)log_.erase(move_log::side::out, id);
  (void)log_.erase(move_log::side::in, id);
  step(kStepDestStored);
  std::unique_lock lock(pending_mu_);
  auto recorded = log_.put(move_log::side::in, id, {f.source, stored->moves});
  if (recorded && aborted_early_.erase({id, f.source}) != 0)
    recorded = make_error(errc::cancelled, fmt::format("node {} aborted the move of object {}", f.source, id.to_string()));
  if (!recorded) {
    (void)log_.erase(move_log::side::in, id);
    (void)log_.incoming().remove(id);
    finish(id);
    return answer(f, recorded.error());
  }
  step(kStepDestPrepared);
  answer(f, {});
  // Its source may have been declared dead while the image was being stored
  // (source_dead() found no record then): its frames must not wait here.
  if (const auto live = member_.live_members(); std::find(live.begin(), live.end(), f.source) == live.end())
    member_.post([this, source = f.source] { source_dead(source); });
}

void migration::on_commit(const frame& f) {
  const auto& d = std::get<wire::dir_register_body>(f.body);
  const auto pending = log_.find(move_log::side::in, d.id);
  if (pending && pending->peer == f.source) step(kStepDestCommitArrived);
  if (!pending || pending->peer != f.source) {
    // Already live here (a second commit: the answer to a query crossed the
    // first), or not ours to take.
    if (store_.stat(d.id)) return answer(f, {});
    return answer(f, make_error(errc::not_found, fmt::format("node {} has no pending image of object {} from node {}",
                                                             member_.self(), d.id.to_string(), f.source)));
  }
  if (!store_.stat(d.id)) {  // the pending image becomes the object: handed over in memory, its file renamed, or copied
    // Copied but not removed from incoming() is live all the same (removed again below).
    if (auto taken = store_.take(log_.incoming(), d.id); !taken && !store_.stat(d.id)) return answer(f, taken.error());
  }
  step(kStepDestInstalled);
  router_.learn(d.id, member_.self(), pending->version);
  directory::tell_home(member_, router_, d.id, member_.self(), pending->version);
  (void)log_.incoming().remove(d.id);  // taken already, unless a crash came between a copy and its removal
  (void)log_.erase(move_log::side::in, d.id);
  answer(f, {});
  finish(d.id);  // the calls held here run now
}

void migration::on_abort(const frame& f) {
  const auto& d = std::get<wire::dir_register_body>(f.body);
  member_.post([this, source = f.source, id = d.id] { drop_assemblies(source, &id); });  // a move given up midway
  std::unique_lock lock(pending_mu_);
  const auto pending = log_.find(move_log::side::in, d.id);
  if (!pending || pending->peer != f.source) {
    // Its image may still be being stored (the source gave up waiting):
    // on_image drops it then. Bounded: a node sends one per failed move.
    if (aborted_early_.size() < kMaxAbortedEarly && !store_.stat(d.id)) aborted_early_.insert({d.id, f.source});
    return;
  }
  (void)log_.incoming().remove(d.id);
  (void)log_.erase(move_log::side::in, d.id);
  finish(d.id);  // the calls held here go back to the owner
}

void migration::on_query(frame&& f) {
  const auto d = std::get<wire::dir_register_body>(f.body);
  if (f.source >= router_.nodes()) return;
  if (hold(d.id, f)) return;  // moving now: answered from what the move decides
  const auto out = log_.find(move_log::side::out, d.id);
  if (!out || out->peer != f.source) {
    (void)tell(frame_type::object_abort, f.source, d.id, 0);
    return;
  }
  policy_.move_work([this, to = f.source, id = d.id, v = out->version] { commit_to(to, id, v); });
}

void migration::recover() {
  for (const auto& [id, out] : log_.list(move_log::side::out)) {
    // Committed before this node stopped: the destination owns it.
    if (store_.stat(id)) (void)store_.remove(id);
    router_.learn(id, out.peer, out.version);
  }
  const auto pending = log_.list(move_log::side::in);
  for (const auto& id : log_.incoming().list()) {
    const bool recorded = std::any_of(pending.begin(), pending.end(), [&](const auto& p) { return p.first == id; });
    if (!recorded) (void)log_.incoming().remove(id);  // never acknowledged: the source aborted
  }
  for (const auto& [id, in] : pending) {
    // Installed already: it was committed (ask_sources() lets the source
    // erase its record). Only pending: held until the source answers.
    if (store_.stat(id)) continue;
    if (log_.incoming().stat(id)) {
      (void)start_hold(id);
    } else {
      (void)log_.erase(move_log::side::in, id);  // cannot be: the image is stored before its record
    }
  }
}

void migration::ask_sources(wire::node_index only) {
  for (const auto& [id, in] : log_.list(move_log::side::in))
    if (only == wire::kNoNode || in.peer == only)
      (void)member_.send(in.peer, {frame_type::object_move_query, member_.self(), 0,
                                   wire::dir_register_body{id, member_.self(), in.version}});
}

void migration::announce_moved(wire::node_index only_home) {
  for (const auto& [id, out] : log_.list(move_log::side::out))
    if (only_home == wire::kNoNode || router_.home_of(id) == only_home)
      directory::tell_home(member_, router_, id, out.peer, out.version);
}

}  // namespace ferry::object
