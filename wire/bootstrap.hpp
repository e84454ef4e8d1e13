// Host-list bootstrap exchange, version 1 — the bytes a process and a data
// node's bootstrap port agree on (specification: docs/protocol.md, "Host-list
// bootstrap"; encoding: wire/codec.hpp, little-endian).
//
// One request and one answer per TCP connection, each sent as a u32 length
// followed by that many bytes (at most kMaxBootstrapMessage):
//
//   request: u16 magic 0xF7E2 | u8 version (1) | u8 ask | u32 nodes
//   answer:  u16 magic 0xF7E2 | u8 version (1) | u8 ask | u16 errc | u32 nodes |
//            u32 index | blob address | str message
//
// `nodes` is the length of the sender's host list: both sides check they
// were given the same list. `ask` = address: the answer carries the node's
// index and transport address. `ask` = member_index (node 0 only): the
// answer's index is a fresh client member index (>= nodes). A non-zero errc
// says why the node refused; the message says what to do.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <ferry/status.hpp>

#include "frames.hpp"

namespace ferry::wire {

inline constexpr std::uint16_t kBootstrapMagic = 0xF7E2;
inline constexpr std::uint8_t kBootstrapVersion = 1;
/// Largest request or answer (an answer carries one transport address).
inline constexpr std::size_t kMaxBootstrapMessage = std::size_t{1} << 20;

enum class bootstrap_ask : std::uint8_t {
  address = 1,       ///< "which node are you, and what is your transport address?"
  member_index = 2,  ///< "give this client a member index" (node 0)
};

struct bootstrap_request {
  bootstrap_ask ask = bootstrap_ask::address;
  std::uint32_t nodes = 0;  ///< entries in the requester's host list
};

struct bootstrap_answer {
  bootstrap_ask ask = bootstrap_ask::address;
  errc code = errc::ok;     ///< ok, or why the node refused
  std::uint32_t nodes = 0;  ///< entries in the node's host list
  node_index index = kNoNode;  ///< the node's index, or the granted member index
  std::vector<std::uint8_t> address;  ///< the node's transport address (ask = address)
  std::string message;      ///< the refusal, for humans
};

/// Encode (without the u32 length prefix).
std::vector<std::uint8_t> encode(const bootstrap_request& r);
std::vector<std::uint8_t> encode(const bootstrap_answer& a);
/// Decode and validate an untrusted message: bad_format / bad_version.
result<bootstrap_request> decode_bootstrap_request(std::span<const std::uint8_t> bytes);
result<bootstrap_answer> decode_bootstrap_answer(std::span<const std::uint8_t> bytes);

}  // namespace ferry::wire
