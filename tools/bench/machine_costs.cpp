// ferry-machine-costs: what this machine charges for the kernel work that
// waiting between processes takes — a system call, a switch from one
// process to another on a core, a wake-up of a blocked process on another
// core. With more processes than cores (the pointer chase's 4 servers on
// 2 cores) every hop of a chase pays some of these, ferry and its baselines
// alike; `make bench` writes them into docs/bench/machine.txt next to the
// figures they bound.
//
// Each line: what, microseconds, how measured. A case that cannot run here
// (one core, an affinity the cpuset refuses) says so instead of a figure.
#include <sched.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <new>
#include <optional>

namespace {

using clock_type = std::chrono::steady_clock;

double us_since(clock_type::time_point t0, double n) {
  return std::chrono::duration<double, std::micro>(clock_type::now() - t0).count() / n;
}

bool pin_to(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return sched_setaffinity(0, sizeof set, &set) == 0;
}

// A child process running `body`, then exiting; waited for by the caller.
template <class Body>
pid_t spawn(Body body) {
  const pid_t pid = fork();
  if (pid == 0) {
    body();
    _exit(0);
  }
  return pid;
}

bool waited(pid_t pid) {
  int status = 0;
  return pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

double system_call() {
  constexpr int n = 200000;
  const auto t0 = clock_type::now();
  for (int i = 0; i < n; ++i) (void)getppid();
  return us_since(t0, n);
}

double lone_yield() {
  constexpr int n = 100000;
  const auto t0 = clock_type::now();
  for (int i = 0; i < n; ++i) sched_yield();
  return us_since(t0, n);
}

// Two processes pass a token through one cache line of shared memory
// `passes` times each way, this one on CPU 0, the other on `other_cpu`; each
// waits for its turn spinning, or yielding the CPU between looks. The time
// of one pass, in microseconds.
std::optional<double> token_passing(int passes, int other_cpu, bool yield) {
  void* page = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) return std::nullopt;
  auto* token = new (page) std::atomic<int>(0);
  const auto limit = clock_type::now() + std::chrono::seconds(20);
  // Wait until the token is `value`; false once past the limit. The clock
  // is read every 1024 looks while spinning, at every look while yielding.
  const auto wait_for = [&](int value) {
    for (unsigned looks = 1; token->load(std::memory_order_acquire) != value; ++looks) {
      if ((yield || looks % 1024 == 0) && clock_type::now() > limit) return false;
      if (yield) sched_yield();
    }
    return true;
  };
  const pid_t child = spawn([&] {
    if (!pin_to(other_cpu)) _exit(1);
    for (int i = 0; i < passes; ++i) {
      if (!wait_for(1)) _exit(1);
      token->store(0, std::memory_order_release);
    }
  });
  std::optional<double> us;
  if (child > 0 && pin_to(0)) {
    const auto t0 = clock_type::now();
    bool late = false;
    for (int i = 0; i < passes && !late; ++i) {
      token->store(1, std::memory_order_release);
      late = !wait_for(0);
    }
    if (!late) us = us_since(t0, 2.0 * passes);
  }
  if (child > 0 && !us) kill(child, SIGKILL);
  if (!waited(child)) us.reset();
  munmap(page, 4096);
  return us;
}

// Two processes on CPU 0, yielding while they wait: every pass is one switch
// from one process to the other.
std::optional<double> yield_switch() { return token_passing(20000, 0, true); }

// A process on CPU 0 and one on CPU 1, spinning while they wait: a pass is
// the line moving from one core's cache to the other's, what every message
// through UCX's shared-memory transport pays at least twice. This VM's two
// cores are not always as close: a bare UCX round trip over shared memory
// has taken 0.21-0.37 us and 0.9-1.2 us within minutes of each other
// (docs/bench/README.md, "The machine's two speeds"), and this figure with
// it: 0.06-0.07 us in the fast minutes, 0.22-0.27 us in the slow ones. It
// says which of the two a recording began in.
std::optional<double> line_handover() { return token_passing(200000, 1, false); }

// A process on CPU 0 and one on CPU 1, each blocked in read() on an
// eventfd until the other writes it: a round trip is two wake-ups.
std::optional<double> wake_up() {
  constexpr int trips = 5000;
  const int there = eventfd(0, 0), back = eventfd(0, 0);
  if (there < 0 || back < 0) return std::nullopt;
  const pid_t child = spawn([&] {
    if (!pin_to(1)) _exit(1);
    std::uint64_t v;
    for (int i = 0; i < trips; ++i) {
      if (read(there, &v, sizeof v) != sizeof v) _exit(1);
      v = 1;
      if (write(back, &v, sizeof v) != sizeof v) _exit(1);
    }
  });
  std::optional<double> us;
  if (child > 0 && pin_to(0)) {
    const auto t0 = clock_type::now();
    std::uint64_t v = 1;
    bool ok = true;
    for (int i = 0; i < trips && ok; ++i) {
      v = 1;
      ok = write(there, &v, sizeof v) == sizeof v && read(back, &v, sizeof v) == sizeof v;
    }
    if (ok) us = us_since(t0, 2.0 * trips);
  }
  if (child > 0 && !us) kill(child, SIGKILL);  // it would wait in read() for ever
  if (!waited(child)) us.reset();
  close(there);
  close(back);
  return us;
}

void line(const char* what, std::optional<double> us, const char* how) {
  if (us) std::printf("%s: %.2f us (%s)\n", what, *us, how);
  else std::printf("%s: not measured here (%s)\n", what, how);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1) {
    const bool help = std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0;
    std::fprintf(help ? stdout : stderr,
                 "usage: ferry-machine-costs\n"
                 "What this machine charges for a system call, a switch between two processes on one core, a\n"
                 "cache line handed between the two cores and a wake-up of a blocked process on another core:\n"
                 "the work behind every hop between processes. Takes about a second; the last two need two cores.\n");
    return help ? 0 : 2;
  }
  const bool two_cores = sysconf(_SC_NPROCESSORS_ONLN) >= 2;
  line("system call", system_call(), "getppid, 200000 calls");
  line("sched_yield with nothing else to run", lone_yield(), "100000 calls");
  line("switch between two processes on one core", yield_switch(),
       "two processes on CPU 0 passing a token through shared memory, yielding while they wait");
  line("cache line handed from one core to the other", two_cores ? line_handover() : std::nullopt,
       two_cores ? "two processes on CPU 0 and CPU 1 spinning on one shared line, half a round trip" : "one core");
  line("wake-up of a blocked process on another core", two_cores ? wake_up() : std::nullopt,
       two_cores ? "eventfd ping-pong between CPU 0 and CPU 1, half a round trip" : "one core");
  return 0;
}
