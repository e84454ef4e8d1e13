// ③⑤ Moving an object to another node: the byte copy, the directory update,
// the gate that keeps calls and object operations exactly-once while an
// object moves, and the two-phase end that keeps a move crash-consistent.
// The protocol, and what survives a crash at each step, is in
// docs/mobility.md, "Migration"; in short, at the source (the owner):
//
//   1. freeze    object_migrate arrives: new work on the object (invokes,
//                object frames, further moves) is held here from now on
//   2. drain     wait until work admitted before the freeze has ended (its
//                writes sealed: durable, for a persistent store)
//   3. prepare   seal the export's header over the stored image (its move
//                count one higher) and send the image from where it is
//                stored to the destination in parts of at most kImagePartBytes
//                (object_image frames, a few in flight), which assembles
//                them, stores the image as *pending* (move_log: incoming
//                image + `in` record, durable), holds frames for the
//                object, and acks the last part
//   4. commit    write the `out` record (durable): the commit point. Learn
//                the new owner, remove the local copy
//   5. finish    answer the requester, re-inject the held frames (they go
//                to the new owner, which holds them until the commit lands),
//                send object_commit: the destination installs the image,
//                registers itself with the home, drops the pending state,
//                runs the frames it held and acks; the source then erases
//                its `out` record
//
// A failure before step 4 aborts the move (object_abort: the destination
// drops its pending image; the object stays here). A node restarted with a
// record resolves the move (recover(), ask_sources()): a source with `out`
// drops any copy it still has; a destination with `in` asks the source
// (object_move_query), which answers commit if it holds `out`, else abort.
// At every instant exactly one node serves the object, and a crash leaves
// at most a pending image, which the records resolve to live or dropped.
// While the source of an object pending here is declared dead, the frames
// for it fail with peer_dead instead of waiting (source_dead/source_back);
// the pending image and its record stay until the source answers.
//
// Test-only fault injection: node_config::crash_at names a step (the
// `kStep...` names below); the node _exits when it reaches it.
//
// Threads: admit()/hold() and the frame handlers run on the driving thread;
// release() on any thread; the source's steps 2–5, which wait (for the
// calls on the object, for the destination), on a mover thread (the image's
// parts leave from the driving thread)
// (exec::dispatch_policy::move_work), never an object thread; the
// destination's store and log I/O on an object thread.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <ferry/store.hpp>


#include "calls/call_table.hpp"
#include "directory/router.hpp"
#include "exec/dispatch.hpp"
#include "object/move_log.hpp"
#include "session/member.hpp"
#include "wire/frames.hpp"

namespace ferry::object {

class migration {
 public:
  /// `reinject`: the node's frame entry, for held frames once a move ends
  /// (called on the driving thread).
  /// `crash_at`: a step name to _exit at (tests), or empty.
  migration(store& objects, move_log& log, directory::router& router, session::member& member,
            calls::call_table& calls, exec::dispatch_policy& policy, std::function<void(wire::frame&&)> reinject,
            std::string crash_at = {})
      : store_(objects),
        log_(log),
        router_(router),
        member_(member),
        calls_(calls),
        policy_(policy),
        reinject_(std::move(reinject)),
        crash_at_(std::move(crash_at)) {}

  // Fault-injection steps (node_config::crash_at).
  static constexpr std::string_view kStepSourceImageSent = "source-image-sent";  ///< image sent, no answer yet
  static constexpr std::string_view kStepSourceCommitted = "source-committed";   ///< `out` written, copy kept
  static constexpr std::string_view kStepSourceRemoved = "source-removed";       ///< copy removed, commit not sent
  static constexpr std::string_view kStepDestStored = "dest-image-stored";       ///< pending image, no `in` record
  static constexpr std::string_view kStepDestPrepared = "dest-prepared";         ///< `in` written, not acked
  static constexpr std::string_view kStepSourceAnswered = "source-answered";  ///< requester answered, held frames passed on, commit not sent
  static constexpr std::string_view kStepDestCommitArrived = "dest-commit-arrived";  ///< acked, commit arrived, not installed
  static constexpr std::string_view kStepDestInstalled = "dest-installed";       ///< image live, records not cleared

  /// Before the node serves (its member not started): resolve moves this
  /// node committed as a source before it stopped (drop the copies it still
  /// has), hold frames for objects pending here, drop pending images nobody
  /// acknowledged.
  void recover();
  /// Ask the source of every object pending here what became of its move
  /// (after join; again when `source` restarts: only its objects).
  void ask_sources(wire::node_index only = wire::kNoNode);
  /// Tell the homes of objects this node moved away whose moves have not
  /// landed yet (an `out` record) where they are: the destination registers
  /// only when the commit reaches it, and a home that forgot this node (it
  /// restarted) would otherwise answer not_found meanwhile. After join; again
  /// when a home restarts (`only_home`: just its objects).
  void announce_moved(wire::node_index only_home = wire::kNoNode);
  /// Driving thread: `source` was declared dead. The objects pending here
  /// from it stay pending (durable: only its answer decides their moves),
  /// but their frames no longer wait for it: those held fail now with
  /// peer_dead, and so do new ones until it is back (source_back).
  void source_dead(wire::node_index source);
  /// Driving thread: `source` restarted, or was heard from again after it
  /// was declared dead: hold the frames of its objects pending here again,
  /// and ask it what became of their moves.
  void source_back(wire::node_index source);

  /// Work on one object admitted by admit() or try_admit(), counted until
  /// release() takes it back (exactly once). Empty for the nil id: nothing
  /// is counted for it.
  class admission {
   public:
    admission() = default;

   private:
    friend class migration;
    explicit admission(std::atomic<std::uint32_t>* active) : active_(active) {}
    std::atomic<std::uint32_t>* active_ = nullptr;
  };

  /// Driving thread: may work on object `id` (an invoke routed by it, an
  /// object frame) start now? Then it is counted until release(). Nothing
  /// while `id` moves: `f` is taken and held until the move ends.
  std::optional<admission> admit(const object_id& id, wire::frame& f);
  /// Driving thread: the same for work that cannot be held (a put whose
  /// data is still in the transport's buffer): counted until release(), or
  /// nothing while `id` moves (nothing held: the caller takes admit()'s way
  /// with a frame of its own).
  std::optional<admission> try_admit(const object_id& id);
  /// Work admitted as `a` has ended (any thread).
  static void release(admission a) {
    if (a.active_) a.active_->fetch_sub(1, std::memory_order_release);
  }

  /// object_migrate (driving thread): move the object, or pass the request
  /// on towards its owner.
  void on_migrate(wire::frame&& f);
  /// How a move's image travels (docs/mobility.md, "Migration"): in
  /// object_image frames of at most kImagePartBytes each (a frame stays
  /// within the 64 KiB buffers the transports keep however many are in
  /// flight, so no part is copied into fresh memory, and an image of any
  /// size moves: none nears wire::kMaxFrame). The first part, every
  /// kImagePartsPerAnswer-th and the last ask for an answer; at most
  /// kImageAnswersInFlight of those are unanswered at a time (about 2 MiB in
  /// flight). The source's driving thread sends them, each answer sending
  /// the next ones (image_sender in migration.cpp).
  static constexpr std::uint64_t kImagePartBytes = 60 << 10;
  static constexpr std::uint64_t kImagePartsPerAnswer = 8;
  static constexpr std::size_t kImageAnswersInFlight = 4;

  /// object_image (driving thread, as the frame is handled): `part` is the
  /// part's bytes (a view of the transport's buffer, or the frame's own).
  /// A part is written into the image being assembled from its source, in
  /// the pending store's room for it (store::pending_image: memory, or on a
  /// persistent node a file in the pending store's directory), its blocks
  /// hashed as they complete, and answered with ack if it asks for an
  /// answer; the whole image (its last part) is stored as pending, with no
  /// copy and no pass over it (its checksum checked by those digests):
  /// here when images_in_place(), else on an object thread, with a sync of
  /// its file and a rename (store_image). A part out of order, or past the
  /// end of its image, is refused (bad_format) and its image dropped; so is
  /// a first part beyond the pending store's memory limit (out_of_memory),
  /// and a part the pending store cannot write (io_error: a full disk). A
  /// refusal at a part that asked for no answer goes with the image's next
  /// answered part.
  void on_image(const wire::frame& f, std::span<const std::byte> part);
  /// True if this node stores a move's image as its last part is handled,
  /// on the network thread (exec/dispatch.hpp): its pending images are kept
  /// in memory, so storing one is a check of the assembled image's digests,
  /// which becomes the pending object as it is, and no file is written.
  [[nodiscard]] bool images_in_place() const { return !log_.incoming().persistent(); }
  /// Images being assembled from their parts now (diagnostics, tests).
  [[nodiscard]] std::size_t images_assembling() const {
    return assembling_count_.load(std::memory_order_relaxed);
  }
  /// object_commit / object_abort (an object thread): make the pending
  /// image live, or drop it.
  void on_commit(const wire::frame& f);
  void on_abort(const wire::frame& f);
  /// object_move_query (driving thread): answer with commit or abort.
  void on_query(wire::frame&& f);
  /// Driving thread: frames for an object pending here (or moving away) are
  /// held (`f` taken) until the move ends; true if held (or, for an object
  /// whose source is dead, answered with peer_dead).
  bool hold(const object_id& id, wire::frame& f);

  /// An image of `id` is pending here (a move to this node not yet landed).
  [[nodiscard]] bool arriving(const object_id& id) const { return log_.find(move_log::side::in, id).has_value(); }
  /// Objects moved away from this node (diagnostics, tests).
  [[nodiscard]] std::uint64_t moved_out() const { return moved_out_.load(std::memory_order_relaxed); }
  /// Objects moving away from this node or to it now, whose requests it
  /// holds until their move ends (diagnostics, tests).
  [[nodiscard]] std::uint64_t moving() const { return moving_count_.load(std::memory_order_acquire); }

 private:
  /// Work admitted on one object and not yet released. Entries are made
  /// and erased on the driving thread only, where every admission and every
  /// freeze happens; another thread touches one only through a pointer it
  /// was handed there: release()'s decrement (its last touch), or a drain
  /// that holds it (`drains`) until it is done.
  struct work_count {
    std::atomic<std::uint32_t> active{0};  ///< admitted, not yet released
    std::atomic<std::uint32_t> drains{0};  ///< moves waiting for `active` to reach 0
  };
  /// The entries are swept of idle objects when they reach this many (then
  /// twice the survivors): a node that saw many objects keeps only the busy.
  static constexpr std::size_t kFirstSweep = 256;

  /// Driving thread: one more admission counted for `id` (not nil).
  admission counted(const object_id& id);
  /// Driving thread: `id`'s count (made if new). The last one asked for is
  /// remembered, so a run of work on one object costs no lookup.
  work_count& count_of(const object_id& id);
  /// Driving thread: erase the entries nobody works on or drains.
  void sweep_idle();

  /// Step 3's sending (a mover thread): export `id`'s image, one move
  /// later, in place (store::export_image_in_place), and send it to `to` in
  /// parts from there; the version it carries, and the
  /// destination's answer to its last part (stored as pending, or why not).
  status send_image(const object_id& id, wire::node_index to, std::uint64_t& version);
  /// Store a whole image that arrived from `f.source` as pending, and
  /// answer `f` (any thread: an object thread for a persistent store).
  void store_image(const wire::frame& f, store::pending_image& image);
  /// Driving thread: drop the images being assembled from `source` (all of
  /// them, or only `id`'s).
  void drop_assemblies(wire::node_index source, const object_id* id = nullptr);

  /// Steps 2–4 (a mover thread), `work` being `id`'s count (held for
  /// this drain); the status the requester gets, the version the
  /// destination owns the object at, and whether the move passed its commit
  /// point (then step 5 follows: commit_to).
  status move(const object_id& id, const work_count& work, wire::node_index to, std::uint64_t& version,
              bool& committed);
  /// Send `type` (object_commit: a request, waited for up to `limit`) to
  /// `to` about `id`; the answer's status.
  status tell(wire::frame_type type, wire::node_index to, const object_id& id, std::uint64_t version);
  /// Source side of a decided move: commit to `to`, and erase the `out`
  /// record once it answers (a mover thread).
  void commit_to(wire::node_index to, const object_id& id, std::uint64_t version);
  /// Hold frames for `id` from now until finish(id); false if already held.
  bool start_hold(const object_id& id);
  /// Release the frames held for `id` (posted to the driving thread).
  void finish(const object_id& id);
  void answer(const wire::frame& f, const status& s);
  /// Answer a held frame's requester with `s` (an invoke's origin, an
  /// object frame's sender); false for frames nobody waits on (then kept).
  bool fail_held(wire::frame& f, const status& s);
  /// Test-only: _exit here if the node was told to crash at `step`.
  void step(std::string_view name) const;
  /// Test-only: the same, on the driving thread after the work posted so
  /// far (the calling thread waits there for the end).
  void step_on_driver(std::string_view name);

  store& store_;
  move_log& log_;
  directory::router& router_;
  session::member& member_;
  calls::call_table& calls_;
  exec::dispatch_policy& policy_;
  std::function<void(wire::frame&&)> reinject_;
  std::string crash_at_;

  /// Work in progress by object (count_of): a move drains its own
  /// object's only. Driving thread.
  std::unordered_map<object_id, work_count> work_;
  object_id last_id_{};
  work_count* last_ = nullptr;  ///< work_'s entry for last_id_, if any
  std::size_t sweep_at_ = kFirstSweep;
  std::atomic<std::uint32_t> moving_count_{0};  ///< entries in moving_: the warm path reads only this
  std::mutex mu_;
  struct held {
    std::vector<wire::frame> frames;
    /// Pending here from a source declared dead: frames fail instead.
    bool source_dead = false;
  };
  std::unordered_map<object_id, held> moving_;  ///< held frames by moving object
  std::atomic<std::uint64_t> moved_out_{0};
  /// An image arriving in parts, by source and object (driving thread):
  /// written in place into the pending store's room for it (memory, or a
  /// persistent store's file), which becomes the image with no copy,
  /// counted against the store's limit.
  struct assembly {
    store::pending_image image;
    std::uint64_t received = 0;
  };
  /// At most this many images assemble at once (a source runs two moves
  /// at a time): a further first part is refused with out_of_memory.
  static constexpr std::size_t kMaxAssemblies = 16;
  std::map<std::pair<wire::node_index, object_id>, assembly> assemblies_;
  /// Why an image was dropped at a part that asked for no answer (a write
  /// that failed, a part out of order), by source and object: its next
  /// answered part gets this instead of "expected its first part". At most
  /// kMaxAssemblies: a further one forgets the one with the lowest key.
  std::map<std::pair<wire::node_index, object_id>, status> refusals_;
  std::atomic<std::size_t> assembling_count_{0};
  /// Orders a pending image's record against an abort that overtook it.
  std::mutex pending_mu_;
  std::set<std::pair<object_id, wire::node_index>> aborted_early_;
  static constexpr std::size_t kMaxAbortedEarly = 4096;
};

}  // namespace ferry::object
