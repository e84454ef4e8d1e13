// ⑤ place: inputs of a placement policy the runtime measures or assumes
// (the policy itself is public: <ferry/placement.hpp>; its default, the cost
// model, is cost_model.cpp).
#pragma once

#include <cstdint>
#include <string_view>

#include <ferry/placement.hpp>

namespace ferry::placement_inputs {

/// The figures the cost model assumes for a link over `transport` (a
/// transport name: "ucx/shm", "ucx/tcp", "ofi/shm", ...) to a node of `kind`
/// until this process has measured it (measured_links): figures measured on
/// this kind of machine (docs/mobility.md, "Placement"). A DPU's is a slow
/// emulated link, 1 Gbit/s and 50 µs (`ferry launch --dpu` gives 10 Gbit/s
/// and 5 µs unless told otherwise: measured_links corrects the bandwidth
/// once data has moved).
link_figures for_transport(std::string_view transport, std::uint32_t kind);

/// This machine's 1-minute load average per core, x1000 (what a node
/// reports with its heartbeats, and the caller's own load).
std::uint32_t machine_load_permille();

}  // namespace ferry::placement_inputs
