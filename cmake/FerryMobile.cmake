# ferry_add_mobile(<target> [TARGETS <arch>...])
#
# Makes the [[ferry::mobile]] functions of <target>'s C/C++ sources travel
# (docs/plugin.md):
#  * every source of <target> is compiled with the ferry plugin
#    (-fplugin=libferry-plugin.so): misuse of [[ferry::mobile]] is a compile
#    error, and each mobile function gets an address-index record;
#  * every source is compiled once more per architecture in TARGETS (default:
#    x86_64 aarch64) with `-O2 -fplugin-arg-ferry-emit=<side file>`, producing
#    that triple's code objects (those compiles see the target's include
#    directories and compile definitions, not its compile options, which may
#    be host-specific);
#  * ferry-pack merges the side files into fat code objects and generates a
#    source, added to <target>, that carries them in the retained ELF section
#    `ferry_code` and registers them at start-up (<ferry/code_registry.hpp>).
# <target> is linked to ferry::ferry. Needs clang 19 as the C/C++ compiler
# (the plugin is loaded by the compiler that built it) and, for aarch64, the
# aarch64-linux-gnu cross headers (Debian: g++-aarch64-linux-gnu).
#
# Inputs set by ferry's build tree or its package config:
#   FERRY_PLUGIN_PATH  the plugin .so (a plain path: OBJECT_DEPENDS rejects
#                      generator expressions)
#   FERRY_PLUGIN_DEP   what the per-triple compiles depend on for it
#   FERRY_PACK         the ferry-pack executable target
include_guard(GLOBAL)

set(FERRY_MOBILE_TRIPLE_x86_64 "x86_64-linux-gnu")
set(FERRY_MOBILE_TRIPLE_aarch64 "aarch64-linux-gnu")

function(ferry_add_mobile target)
  cmake_parse_arguments(ARG "" "" "TARGETS" ${ARGN})
  if(ARG_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "ferry_add_mobile(${target}): unknown arguments ${ARG_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT TARGET ${target})
    message(FATAL_ERROR "ferry_add_mobile(${target}): no such target")
  endif()
  if(NOT ARG_TARGETS)
    set(ARG_TARGETS x86_64 aarch64)
  endif()
  foreach(arch IN LISTS ARG_TARGETS)
    if(NOT DEFINED FERRY_MOBILE_TRIPLE_${arch})
      message(FATAL_ERROR "ferry_add_mobile(${target}): unknown architecture '${arch}' (known: x86_64 aarch64)")
    endif()
  endforeach()
  if(NOT FERRY_PLUGIN_PATH OR NOT FERRY_PACK)
    message(FATAL_ERROR "ferry_add_mobile: FERRY_PLUGIN_PATH/FERRY_PACK unset: use find_package(ferry)")
  endif()

  get_target_property(sources ${target} SOURCES)
  get_target_property(source_dir ${target} SOURCE_DIR)
  set(out_dir "${CMAKE_CURRENT_BINARY_DIR}/ferry_mobile/${target}")
  file(MAKE_DIRECTORY "${out_dir}")

  set(incs "$<TARGET_PROPERTY:${target},INCLUDE_DIRECTORIES>")
  set(defs "$<TARGET_PROPERTY:${target},COMPILE_DEFINITIONS>")
  set(inc_flags "$<$<BOOL:${incs}>:-I$<JOIN:${incs},;-I>>")
  set(def_flags "$<$<BOOL:${defs}>:-D$<JOIN:${defs},;-D>>")
  get_target_property(cxx_std ${target} CXX_STANDARD)
  if(NOT cxx_std)
    set(cxx_std ${CMAKE_CXX_STANDARD})
  endif()
  if(NOT cxx_std OR cxx_std LESS 20)
    set(cxx_std 20)
  endif()

  set(side_files "")
  set(has_cxx OFF)
  foreach(src IN LISTS sources)
    get_filename_component(ext "${src}" LAST_EXT)
    if(ext STREQUAL ".c")
      set(lang C)
      set(std_flag "")
    elseif(ext MATCHES "^\\.(cc|cpp|cxx|C)$")
      set(lang CXX)
      set(std_flag "-std=c++${cxx_std}")
      set(has_cxx ON)
    else()
      continue()
    endif()
    if(NOT CMAKE_${lang}_COMPILER_ID MATCHES "Clang")
      message(FATAL_ERROR "ferry_add_mobile(${target}): ${src} needs clang 19 (the ferry plugin's compiler), "
                          "not ${CMAKE_${lang}_COMPILER_ID}")
    endif()
    get_filename_component(abs "${src}" ABSOLUTE BASE_DIR "${source_dir}")
    set_property(SOURCE "${abs}" TARGET_DIRECTORY ${target} APPEND PROPERTY OBJECT_DEPENDS "${FERRY_PLUGIN_PATH}")
    file(RELATIVE_PATH rel "${source_dir}" "${abs}")
    string(MAKE_C_IDENTIFIER "${rel}" stem)
    foreach(arch IN LISTS ARG_TARGETS)
      set(side "${out_dir}/${stem}.${arch}.fco")
      add_custom_command(OUTPUT "${side}"
        COMMAND ${CMAKE_${lang}_COMPILER} -target ${FERRY_MOBILE_TRIPLE_${arch}} ${std_flag} -O2
                "${inc_flags}" "${def_flags}"
                "-fplugin=${FERRY_PLUGIN_PATH}" "-fplugin-arg-ferry-emit=${side}"
                -MD -MT "${side}" -MF "${side}.d"
                -S -emit-llvm -o /dev/null "${abs}"
        DEPENDS "${abs}" ${FERRY_PLUGIN_DEP}
        DEPFILE "${side}.d"
        COMMENT "ferry: ${arch} code objects of ${rel}"
        COMMAND_EXPAND_LISTS VERBATIM)
      list(APPEND side_files "${side}")
    endforeach()
  endforeach()

  # The generated source is C unless the project has no C compiler.
  get_property(languages GLOBAL PROPERTY ENABLED_LANGUAGES)
  if("C" IN_LIST languages)
    set(generated "${out_dir}/ferry_code_objects.c")
  else()
    set(generated "${out_dir}/ferry_code_objects.cpp")
  endif()
  add_custom_command(OUTPUT "${generated}"
    COMMAND ${FERRY_PACK} -o "${generated}" ${side_files}
    DEPENDS ${side_files} ${FERRY_PACK}
    COMMENT "ferry: packing code objects of ${target}"
    VERBATIM)
  target_sources(${target} PRIVATE "${generated}")
  target_compile_options(${target} PRIVATE "-fplugin=${FERRY_PLUGIN_PATH}")
  if(FERRY_PLUGIN_DEP AND TARGET ${FERRY_PLUGIN_DEP})
    add_dependencies(${target} ${FERRY_PLUGIN_DEP})
  endif()
  target_link_libraries(${target} PRIVATE ferry::ferry)
endfunction()
