// ⑥ Waiting: yielding the CPU while polling for frames (docs/architecture.md,
// "Waiting"). Defined in member.cpp, with the rest of the session's waiting.
#pragma once

namespace ferry::session {

/// sched_yield(), timed, for a thread that polls: what the yield took tells
/// whether another thread was waiting for this CPU. Alone on its CPU a
/// yield returns in about 1.2 µs here; one that let another thread run took
/// 3.5 µs (a thread of the same process) to 10 µs (another process): the
/// line is 2.5 µs. Two threads that poll for each other's frames can end up
/// on the same CPU (both woke there after an idle spell, and the scheduler
/// may leave them so for many milliseconds), and a poller that spins its
/// full budget before yielding then makes each round trip wait for two
/// spins: 40 µs instead of 1.1 (docs/architecture.md, "Waiting").
void yield_cpu();
/// Whether this thread's last yield_cpu() let another thread run (its CPU
/// is shared): then it yields as soon as an idle turn finds nothing,
/// instead of after its polling budget. The next yield that returns at once
/// clears it.
[[nodiscard]] bool cpu_shared() noexcept;

}  // namespace ferry::session
