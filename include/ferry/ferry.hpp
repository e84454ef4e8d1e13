// ferry/ferry.hpp — everything a ferry C++ program includes: the whole public
// C++ API of libferry (ferry::ferry). Every header it includes is public and
// includes only the standard library and other public ferry headers.
#pragma once

#include <ferry/code_object.hpp>
#include <ferry/code_registry.hpp>
#include <ferry/mobile.hpp>
#include <ferry/object_id.hpp>
#include <ferry/ref.hpp>
#include <ferry/runtime.hpp>
#include <ferry/status.hpp>
#include <ferry/store.hpp>
