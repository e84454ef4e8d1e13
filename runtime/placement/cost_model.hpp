// ⑤ place: inputs of a placement policy the runtime measures or assumes
// (the policy itself is public: <ferry/placement.hpp>; its default, the cost
// model, is cost_model.cpp).
#pragma once

#include <cstdint>
#include <string_view>

#include <ferry/placement.hpp>

namespace ferry::placement_inputs {

/// The figures the cost model assumes for a link over `transport` (a
/// transport name: "ucx/shm", "ucx/tcp", "ofi/shm", ...) to a node of `kind`:
/// measured on this kind of machine (docs/mobility.md, "Placement"), not
/// probed at run time. A DPU's link is the emulated one (`ferry launch
/// --dpu`: 1 Gbit/s unless --dpu-rate says otherwise).
link_figures for_transport(std::string_view transport, std::uint32_t kind);

/// This machine's 1-minute load average per core, x1000 (what a node
/// reports with its heartbeats, and the caller's own load).
std::uint32_t machine_load_permille();

}  // namespace ferry::placement_inputs
