// ferry/ferry.hpp — everything a ferry C++ program includes.
#pragma once

#include <ferry/code_object.hpp>
#include <ferry/code_registry.hpp>
#include <ferry/mobile.hpp>
#include <ferry/object_id.hpp>
#include <ferry/ref.hpp>
#include <ferry/status.hpp>
#include <ferry/store.hpp>
