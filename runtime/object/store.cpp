#include <ferry/store.hpp>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <unordered_map>

#include <fmt/format.h>

#include "backing.hpp"
#include "object_layout.hpp"

namespace ferry {

namespace {

struct entry {
  std::shared_ptr<segment> seg;  // shared: store::pin() keeps it mapped for a running call
  layout::header hdr;
  // Orders writes of this object's bytes (exclusive) against copies out of
  // them (shared). Taken after the store's lock, which any mode of suffices:
  // a write to one object, a journal's fdatasync included, holds up no
  // other object's readers.
  std::unique_ptr<std::shared_mutex> bytes = std::make_unique<std::shared_mutex>();
  std::span<std::byte> data() { return seg->image().subspan(hdr.data_offset, hdr.data_size); }
};

status unknown(object_id id) {
  return make_error(errc::not_found, fmt::format("no object {} in this store", id.to_string()));
}

status no_memory(std::uint64_t bytes) {
  return make_error(errc::out_of_memory, fmt::format("cannot allocate {} bytes", bytes));
}

/// `v` resized to `size` zero bytes; allocation failure is out_of_memory.
result<void> resize_buffer(std::vector<std::byte>& v, std::uint64_t size) {
  try {
    v.resize(size);
  } catch (const std::bad_alloc&) {
    return no_memory(size);
  } catch (const std::length_error&) {
    return no_memory(size);
  }
  return {};
}

/// An exported copy of an image made what an export hands out: its moves
/// field raised by `add_moves`, then sealed. Sealing the copy covers writes
/// made through local() without flush(); one seal (a pass over the image:
/// docs/object-format.md, "Checksum") for both.
result<void> seal_export(std::span<std::byte> image, std::uint64_t add_moves) {
  if (add_moves != 0) {
    FERRY_TRY(const layout::header h, layout::read_header(image));
    layout::set_moves(image, h.moves + add_moves);
  }
  layout::seal(image);
  return {};
}

}  // namespace

struct store::impl {
  std::unique_ptr<backing> back;
  // Guards the maps, the counters and each entry's shape (its segment and
  // header): shared to use an object, exclusive to create, re-lay-out or
  // remove one. Bytes are guarded by their entry's own lock (entry::bytes).
  mutable std::shared_mutex mu;
  std::unordered_map<object_id, entry> objects;
  std::unordered_map<object_id, status> damaged;
  std::atomic<std::size_t> damaged_count{0};  // damaged.size(), read without the lock (damage_of)
  std::uint64_t used = 0;      // image bytes of the objects in `objects`
  std::uint64_t reserved = 0;  // bytes of live reserve() handles
  std::uint64_t limit = 0;     // 0: none

  // May the images grow from `old_size` to `new_size` bytes? (lock held)
  status admit(std::uint64_t old_size, std::uint64_t new_size) const {
    if (limit == 0 || new_size <= old_size || used + reserved - old_size + new_size <= limit) return {};
    return make_error(errc::out_of_memory,
                      fmt::format("an image of {} bytes would exceed the store's memory limit ({} of {} bytes in use)",
                                  new_size, used + reserved, limit));
  }
  // Make `e` the entry of `id`, keeping `used` right.
  void put_entry(object_id id, entry e) {
    auto [it, fresh] = objects.try_emplace(id);
    if (!fresh) used -= it->second.seg->image().size();
    used += e.seg->image().size();
    it->second = std::move(e);
  }

  // Lookup with the lock held; corrupt objects answer with why they are.
  result<entry*> find(object_id id) {
    if (auto it = objects.find(id); it != objects.end()) return &it->second;
    if (auto it = damaged.find(id); it != damaged.end()) return it->second;
    return unknown(id);
  }

  status check_range(object_id id, const entry& e, std::uint64_t off, std::uint64_t len) const {
    if (off > e.hdr.data_size || e.hdr.data_size - off < len) return out_of_range(id, off, len, e.hdr.data_size);
    return {};
  }

  // Build a new image of the given shape carrying over FOT and data, and make
  // it the object's image. Used by create, resize and FOT growth.
  result<void> reshape(object_id id, entry* old, std::uint32_t fot_capacity, std::uint64_t data_size,
                       std::span<const object_id> extra_fot = {}) {
    const std::uint64_t size = layout::image_size_for(fot_capacity, data_size);
    FERRY_TRY_STATUS(result<void>(admit(old ? old->seg->image().size() : 0, size)));
    if (!old && extra_fot.empty()) {
      // A new object: header and FOT built here, the zero data by the backing.
      std::vector<std::byte> prefix(layout::data_offset_for(fot_capacity));
      layout::init(prefix, id, fot_capacity, data_size);
      FERRY_TRY(auto seg, back->install_zero(id, prefix, size));
      FERRY_TRY(auto hdr, layout::read_header(seg->image()));
      put_entry(id, entry{std::move(seg), hdr});
      return {};
    }
    std::vector<std::byte> img;
    FERRY_TRY_STATUS(resize_buffer(img, size));
    layout::init(img, id, fot_capacity, data_size);
    std::uint32_t count = 0;
    if (old) {
      auto src = old->seg->image();
      for (std::uint32_t s = 1; s <= old->hdr.fot_count; ++s) layout::set_fot_entry(img, s, layout::fot_entry(src, s));
      count = old->hdr.fot_count;
      layout::set_moves(img, old->hdr.moves);
      const auto keep = std::min(old->hdr.data_size, data_size);
      std::memcpy(img.data() + layout::data_offset_for(fot_capacity), src.data() + old->hdr.data_offset, keep);
    }
    for (object_id x : extra_fot) layout::set_fot_entry(img, ++count, x);
    layout::set_fot_count(img, count);
    layout::seal(img);
    FERRY_TRY(auto seg, back->install(id, img));
    FERRY_TRY(auto hdr, layout::read_header(seg->image()));
    put_entry(id, entry{std::move(seg), hdr});
    return {};
  }
};

store::store(std::unique_ptr<backing> b) : impl_(std::make_unique<impl>()) {
  impl_->back = std::move(b);
  for (auto& [id, seg] : impl_->back->recover()) {
    if (!seg) {
      impl_->damaged[id] = seg.error();
      continue;
    }
    auto hdr = layout::validate((*seg)->image());
    if (hdr && hdr->id != id)
      hdr = make_error(errc::corrupt, fmt::format("file for object {} holds object {}", id.to_string(),
                                                  hdr->id.to_string()));
    if (!hdr) {
      impl_->damaged[id] = hdr.error();
      continue;
    }
    impl_->put_entry(id, entry{std::move(*seg), *hdr});
  }
  impl_->damaged_count.store(impl_->damaged.size(), std::memory_order_release);
}

store::~store() = default;

std::unique_ptr<store> store::open_memory() { return std::unique_ptr<store>(new store(make_memory_backing())); }

result<std::unique_ptr<store>> store::open_directory(const std::filesystem::path& dir) {
  FERRY_TRY(auto b, make_directory_backing(dir));
  return std::unique_ptr<store>(new store(std::move(b)));
}

std::string store::describe() const { return impl_->back->describe(); }

bool store::persistent() const { return impl_->back->persistent(); }

void store::set_memory_limit(std::uint64_t bytes) {
  std::unique_lock lock(impl_->mu);
  impl_->limit = bytes;
}

std::uint64_t store::memory_used() const {
  std::shared_lock lock(impl_->mu);
  return impl_->used;
}

result<std::shared_ptr<const void>> store::reserve(std::uint64_t bytes) {
  std::unique_lock lock(impl_->mu);
  auto* i = impl_.get();
  if (i->limit != 0 && (bytes > i->limit || i->used + i->reserved > i->limit - bytes))
    return make_error(errc::out_of_memory,
                      fmt::format("{} more bytes would exceed the memory limit ({} of {} bytes held by objects and "
                                  "running calls)",
                                  bytes, i->used + i->reserved, i->limit));
  i->reserved += bytes;
  // The handle points into this store: its holders (a running call's
  // context) end before the store does.
  return std::shared_ptr<const void>(nullptr, [i, bytes](const void*) {
    std::unique_lock l(i->mu);
    i->reserved -= bytes;
  });
}

status store::out_of_range(object_id id, std::uint64_t off, std::uint64_t len, std::uint64_t size) {
  return make_error(errc::out_of_bounds, fmt::format("object {}: range [{}, +{}) outside its {} bytes of data",
                                                     id.to_string(), off, len, size));
}

static object_info info_of(const entry& e) {
  return {e.hdr.id, e.hdr.data_size, e.hdr.fot_count, e.hdr.fot_capacity,
          layout::image_size_for(e.hdr.fot_capacity, e.hdr.data_size), e.hdr.moves};
}

result<object_info> store::create(std::uint64_t data_size, create_options opts) {
  return create(object_id::random(), data_size, opts);
}

result<object_info> store::create(object_id id, std::uint64_t data_size, create_options opts) {
  if (id.is_nil()) return make_error(errc::invalid_argument, "cannot create an object with the nil id");
  if (data_size > max_object_size)
    return make_error(errc::invalid_argument, fmt::format("object size {} exceeds the 2^48-byte limit", data_size));
  if (opts.fot_capacity > max_fot_entries)
    return make_error(errc::invalid_argument, fmt::format("FOT capacity {} exceeds {}", opts.fot_capacity,
                                                          max_fot_entries));
  std::unique_lock lock(impl_->mu);
  if (impl_->objects.contains(id) || impl_->damaged.contains(id))
    return make_error(errc::already_exists, fmt::format("object {} already exists", id.to_string()));
  FERRY_TRY_STATUS(impl_->reshape(id, nullptr, opts.fot_capacity, data_size));
  return info_of(impl_->objects.at(id));
}

result<object_info> store::stat(object_id id) const {
  std::shared_lock lock(impl_->mu);
  FERRY_TRY(entry * e, impl_->find(id));
  return info_of(*e);
}

bool store::holds(object_id id) const {
  std::shared_lock lock(impl_->mu);
  return impl_->objects.contains(id);  // a damaged object fails stat() too
}

result<object_info> store::resize(object_id id, std::uint64_t new_size) {
  if (new_size > max_object_size)
    return make_error(errc::invalid_argument, fmt::format("object size {} exceeds the 2^48-byte limit", new_size));
  std::unique_lock lock(impl_->mu);
  FERRY_TRY(entry * e, impl_->find(id));
  FERRY_TRY_STATUS(impl_->reshape(id, e, e->hdr.fot_capacity, new_size));
  return info_of(impl_->objects.at(id));
}

result<void> store::remove(object_id id) {
  std::unique_lock lock(impl_->mu);
  if (!impl_->objects.contains(id) && !impl_->damaged.contains(id)) return unknown(id);
  FERRY_TRY_STATUS(impl_->back->erase(id));
  if (auto it = impl_->objects.find(id); it != impl_->objects.end()) {
    impl_->used -= it->second.seg->image().size();
    impl_->objects.erase(it);
  }
  impl_->damaged.erase(id);
  impl_->damaged_count.store(impl_->damaged.size(), std::memory_order_release);
  return {};
}

std::vector<object_id> store::list() const {
  std::shared_lock lock(impl_->mu);
  std::vector<object_id> ids;
  ids.reserve(impl_->objects.size());
  for (const auto& [id, e] : impl_->objects) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  return ids;
}

std::optional<status> store::damage_of(object_id id) const {
  if (impl_->damaged_count.load(std::memory_order_acquire) == 0) return std::nullopt;  // the usual case
  std::shared_lock lock(impl_->mu);
  if (auto it = impl_->damaged.find(id); it != impl_->damaged.end()) return it->second;
  return std::nullopt;
}

std::vector<std::pair<object_id, status>> store::damaged() const {
  std::shared_lock lock(impl_->mu);
  std::vector<std::pair<object_id, status>> out(impl_->damaged.begin(), impl_->damaged.end());
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return out;
}

result<std::span<const std::byte>> segment::read_only_image() {
  const auto bytes = image();
  return std::span<const std::byte>(bytes.data(), bytes.size());
}

result<void> segment::read_at_rest(std::uint64_t image_offset, std::span<std::byte> out, bool) {
  std::memcpy(out.data(), image().data() + image_offset, out.size());
  return {};
}

result<std::unique_ptr<segment>> store::backing::adopt(store::backing&, object_id) {
  return make_error(errc::unsupported, "this store copies images it takes");
}

result<std::unique_ptr<segment>> store::backing::make_pending(std::uint64_t image_size) {
  return make_memory_segment(image_size);
}

result<std::unique_ptr<segment>> store::backing::install_pending(object_id id, std::unique_ptr<segment>& pending,
                                                                 const layout::seal_tree*) {
  return install(id, pending->image());
}

result<void> segment::write_pending(std::uint64_t image_offset, std::span<const std::byte> bytes) {
  std::memcpy(image().data() + image_offset, bytes.data(), bytes.size());
  return {};
}

result<void> store::read_at_rest(object_id id, std::uint64_t offset, std::span<std::byte> out, bool read_ahead) const {
  std::shared_ptr<segment> seg;  // the I/O runs unlocked; this keeps the segment alive
  std::uint64_t at = 0;
  {
    std::shared_lock lock(impl_->mu);
    FERRY_TRY(entry * e, impl_->find(id));
    if (auto s = impl_->check_range(id, *e, offset, out.size()); !s.ok()) return s;
    seg = e->seg;
    at = e->hdr.data_offset + offset;
  }
  if (out.empty()) return {};
  return seg->read_at_rest(at, out, read_ahead);
}

result<void> store::read(object_id id, std::uint64_t offset, std::span<std::byte> out) const {
  std::shared_lock lock(impl_->mu);
  FERRY_TRY(entry * e, impl_->find(id));
  if (auto s = impl_->check_range(id, *e, offset, out.size()); !s.ok()) return s;
  if (out.empty()) return {};  // an empty span may have no data (memcpy from/to null is undefined)
  std::shared_lock bytes(*e->bytes);
  std::memcpy(out.data(), e->data().data() + offset, out.size());
  return {};
}

result<void> store::check_range(object_id id, std::uint64_t offset, std::uint64_t length) const {
  std::shared_lock lock(impl_->mu);
  FERRY_TRY(entry * e, impl_->find(id));
  return impl_->check_range(id, *e, offset, length);
}

result<std::vector<std::byte>> store::read(object_id id, std::uint64_t offset, std::uint64_t length) const {
  // Validate before allocating: `length` may come from an untrusted peer.
  FERRY_TRY_STATUS(check_range(id, offset, length));
  std::vector<std::byte> out;
  FERRY_TRY_STATUS(resize_buffer(out, length));
  FERRY_TRY_STATUS(read(id, offset, out));
  return out;
}

result<void> store::write(object_id id, std::uint64_t offset, std::span<const std::byte> in) {
  std::shared_lock lock(impl_->mu);
  FERRY_TRY(entry * e, impl_->find(id));
  if (auto s = impl_->check_range(id, *e, offset, in.size()); !s.ok()) return s;
  std::unique_lock bytes(*e->bytes);
  const image_patch p{e->hdr.data_offset + offset, in};
  FERRY_TRY_STATUS(e->seg->commit({&p, 1}));
  return {};
}

result<std::span<std::byte>> store::local(object_id id) {
  std::shared_lock lock(impl_->mu);
  FERRY_TRY(entry * e, impl_->find(id));
  e->seg->lend_writable();
  return e->data();
}

result<store::pinned_bytes> store::pin(object_id id) {
  std::shared_lock lock(impl_->mu);
  FERRY_TRY(entry * e, impl_->find(id));
  e->seg->lend_writable();
  return pinned_bytes{e->data(), e->seg};
}

result<store::pinned_view> store::pin_read_only(object_id id) {
  std::shared_lock lock(impl_->mu);
  FERRY_TRY(entry * e, impl_->find(id));
  FERRY_TRY(auto image, e->seg->read_only_image());
  return pinned_view{image.subspan(e->hdr.data_offset, e->hdr.data_size), e->seg};
}

result<void> store::flush(object_id id) {
  std::shared_lock lock(impl_->mu);
  FERRY_TRY(entry * e, impl_->find(id));
  std::unique_lock bytes(*e->bytes);
  const image_range whole{0, e->seg->image().size()};
  return e->seg->reseal({&whole, 1});
}

result<void> store::flush(object_id id, std::span<const data_range> written) {
  std::shared_lock lock(impl_->mu);
  FERRY_TRY(entry * e, impl_->find(id));
  std::vector<image_range> ranges;
  ranges.reserve(written.size());
  for (const auto& w : written) {
    if (auto s = impl_->check_range(id, *e, w.offset, w.length); !s.ok()) return s;
    ranges.push_back({e->hdr.data_offset + w.offset, w.length});
  }
  std::unique_lock bytes(*e->bytes);
  return e->seg->reseal(ranges);
}

result<std::uint16_t> store::fot_add(object_id holder, object_id target) {
  if (target.is_nil()) return make_error(errc::invalid_argument, "cannot add the nil id to a FOT");
  std::unique_lock lock(impl_->mu);
  FERRY_TRY(entry * e, impl_->find(holder));
  auto img = e->seg->image();
  for (std::uint32_t s = 1; s <= e->hdr.fot_count; ++s)
    if (layout::fot_entry(img, s) == target) return static_cast<std::uint16_t>(s);
  const std::uint32_t slot = e->hdr.fot_count + 1;
  if (slot > max_fot_entries)
    return make_error(errc::out_of_bounds, fmt::format("object {}: FOT is full ({} entries)", holder.to_string(),
                                                       max_fot_entries));
  if (slot > e->hdr.fot_capacity) {
    const std::uint32_t cap = std::min<std::uint32_t>(max_fot_entries, std::max<std::uint32_t>(4, e->hdr.fot_capacity * 2));
    FERRY_TRY_STATUS(impl_->reshape(holder, e, cap, e->hdr.data_size, {&target, 1}));
    return static_cast<std::uint16_t>(slot);
  }
  std::byte entry_bytes[layout::kFotEntrySize];
  layout::store_u64(entry_bytes, target.hi);
  layout::store_u64(entry_bytes + 8, target.lo);
  std::byte count_bytes[4];
  std::memcpy(count_bytes, &slot, 4);
  const image_patch patches[] = {
      {layout::kHeaderSize + (slot - 1) * layout::kFotEntrySize, entry_bytes},
      {layout::kOffFotCount, count_bytes},
  };
  FERRY_TRY_STATUS(e->seg->commit(patches));
  e->hdr.fot_count = slot;
  return static_cast<std::uint16_t>(slot);
}

result<object_id> store::fot_get(object_id holder, std::uint16_t index) const {
  std::shared_lock lock(impl_->mu);
  FERRY_TRY(entry * e, impl_->find(holder));
  if (index == 0) return holder;
  if (index > e->hdr.fot_count)
    return make_error(errc::bad_fot_index, fmt::format("object {}: FOT index {} but the FOT has {} entries",
                                                       holder.to_string(), index, e->hdr.fot_count));
  return layout::fot_entry(e->seg->image(), index);
}

result<std::vector<std::byte>> store::export_image(object_id id, std::uint64_t add_moves) const {
  std::shared_lock lock(impl_->mu);
  FERRY_TRY(entry * e, impl_->find(id));
  std::vector<std::byte> out;
  try {
    std::shared_lock image_bytes(*e->bytes);
    const auto img = e->seg->image();
    out.assign(img.begin(), img.end());
  } catch (const std::bad_alloc&) {
    return no_memory(e->seg->image().size());
  }
  FERRY_TRY_STATUS(seal_export(out, add_moves));
  return out;
}

result<store::image_in_place> store::export_image_in_place(object_id id, std::uint64_t add_moves) const {
  image_in_place out;
  {
    std::shared_lock lock(impl_->mu);
    FERRY_TRY(entry * e, impl_->find(id));
    out.image = e->seg->image();
    out.keep = e->seg;
  }
  // The export's header, sealed over it and the rest in place: what
  // seal_export writes into a copy, without the copy.
  FERRY_TRY(const layout::header h, layout::read_header(out.image));
  out.head.assign(out.image.begin(), out.image.begin() + layout::kHeaderSize);
  layout::set_moves(out.head, h.moves + add_moves);
  layout::seal_split(out.head, out.image.subspan(layout::kHeaderSize));
  return out;
}

result<object_info> store::import_image(std::span<const std::byte> image) {
  FERRY_TRY(layout::header h, layout::validate(image));
  std::unique_lock lock(impl_->mu);
  if (impl_->objects.contains(h.id) || impl_->damaged.contains(h.id))
    return make_error(errc::already_exists, fmt::format("object {} already exists", h.id.to_string()));
  FERRY_TRY_STATUS(result<void>(impl_->admit(0, image.size())));
  FERRY_TRY(auto seg, impl_->back->install(h.id, image));
  impl_->put_entry(h.id, entry{std::move(seg), h});
  return info_of(impl_->objects.at(h.id));
}

struct store::pending_image::streamed {
  layout::seal_stream stream;
  bool in_order = true;  // every write continued where the one before ended
};

store::pending_image::pending_image() = default;
store::pending_image::pending_image(pending_image&&) noexcept = default;
store::pending_image& store::pending_image::operator=(pending_image&&) noexcept = default;
store::pending_image::~pending_image() = default;
std::uint64_t store::pending_image::size() const { return seg_ ? seg_->image().size() : 0; }
std::span<const std::byte> store::pending_image::bytes() const {
  return seg_ ? std::span<const std::byte>(seg_->image()) : std::span<const std::byte>{};
}

result<void> store::pending_image::write(std::uint64_t offset, std::span<const std::byte> bytes) {
  if (!seg_) return make_error(errc::invalid_argument, "writing into an empty pending image");
  if (offset > size() || bytes.size() > size() - offset)
    return make_error(errc::invalid_argument, fmt::format("{} bytes at offset {} pass the end of a pending image of {}",
                                                          bytes.size(), offset, size()));
  FERRY_TRY_STATUS(seg_->write_pending(offset, bytes));
  if (streamed_->in_order && offset == streamed_->stream.fed()) {
    streamed_->stream.feed(bytes);
  } else {
    streamed_->in_order = false;
  }
  return {};
}

result<store::pending_image> store::make_pending_image(std::uint64_t image_size) {
  if (image_size < layout::kHeaderSize)
    return make_error(errc::bad_format, fmt::format("an image of {} bytes is shorter than its header", image_size));
  pending_image image;
  FERRY_TRY(image.reserved_, reserve(image_size));
  FERRY_TRY(image.seg_, impl_->back->make_pending(image_size));
  image.streamed_ = std::make_unique<pending_image::streamed>(pending_image::streamed{layout::seal_stream(image_size)});
  return image;
}

result<object_info> store::import_image(pending_image& image) {
  if (!image.seg_) return make_error(errc::invalid_argument, "an empty pending image");
  // Checked before the lock: with the digests computed as it was written,
  // or else a checksum pass over the whole image.
  const auto& s = *image.streamed_;
  const layout::seal_tree* tree = s.in_order && s.stream.complete() ? &s.stream.tree() : nullptr;
  FERRY_TRY(layout::header h, tree ? layout::validate(image.bytes(), *tree) : layout::validate(image.bytes()));
  image.reserved_.reset();  // counted as the object's from here (the handle's release takes the lock)
  std::unique_lock lock(impl_->mu);
  if (impl_->objects.contains(h.id) || impl_->damaged.contains(h.id))
    return make_error(errc::already_exists, fmt::format("object {} already exists", h.id.to_string()));
  FERRY_TRY_STATUS(result<void>(impl_->admit(0, image.size())));
  FERRY_TRY(auto seg, impl_->back->install_pending(h.id, image.seg_, tree));
  image = pending_image{};
  impl_->put_entry(h.id, entry{std::move(seg), h});
  return info_of(impl_->objects.at(h.id));
}

result<object_info> store::take(store& from, object_id id) {
  if (&from == this) return stat(id);
  // Between memory stores the image changes hands; between directory
  // stores its file is renamed (backing::adopt); else, or when a rename
  // cannot do, it is copied.
  const bool in_memory = !impl_->back->persistent() && !from.impl_->back->persistent();
  if (in_memory || (impl_->back->persistent() && from.impl_->back->persistent())) {
    std::scoped_lock lock(from.impl_->mu, impl_->mu);
    FERRY_TRY(entry * e, from.impl_->find(id));
    if (impl_->objects.contains(id) || impl_->damaged.contains(id))
      return make_error(errc::already_exists, fmt::format("object {} already exists", id.to_string()));
    const std::uint64_t size = e->seg->image().size();
    FERRY_TRY_STATUS(result<void>(impl_->admit(0, size)));
    std::optional<entry> moved;
    if (in_memory) {
      moved = std::move(*e);
    } else if (auto adopted = impl_->back->adopt(*from.impl_->back, id); adopted) {
      moved = entry{std::move(*adopted), e->hdr};
    } else if (adopted.error().code() != errc::unsupported) {
      return adopted.error();
    }
    if (moved) {
      from.impl_->objects.erase(id);
      from.impl_->used -= size;
      impl_->put_entry(id, std::move(*moved));
      return info_of(impl_->objects.at(id));
    }
  }
  FERRY_TRY(auto info, copy_object(from, *this, id));
  FERRY_TRY_STATUS(from.remove(id));
  return info;
}

result<object_info> copy_object(const store& from, store& to, object_id id) {
  FERRY_TRY(auto image, from.export_image(id));
  return to.import_image(image);
}

}  // namespace ferry
