# ferry_add_mobile(<target> [TARGETS <arch>...])
#
# Makes the [[ferry::mobile]] functions of <target>'s C/C++ sources travel
# (docs/plugin.md):
#  * every source is compiled once more per architecture in TARGETS (default:
#    x86_64 aarch64) by ferry's clang 19 (FERRY_CLANG / FERRY_CLANGXX, whatever
#    the project's compiler) with `-O2 -fplugin-arg-ferry-emit=<side file>`,
#    producing that triple's code objects (those compiles see the target's
#    include directories and compile definitions, not its compile options,
#    which may be host-specific); misuse of [[ferry::mobile]] fails them, and
#    so the build;
#  * when the project's compiler for a language is clang 19, the target's own
#    compiles of that language run the ferry plugin too
#    (-fplugin=libferry-plugin.so): the same checks, and each mobile function
#    gets an address-index record (`&fn` -> its code object);
#  * otherwise (GCC, or another clang) the target's own compiles do not see
#    the plugin: one per-triple compile per source also writes that source's
#    address-index records as a C source (-fplugin-arg-ferry-index=<file>),
#    added to <target>, which names each mobile function by its symbol. A
#    mobile function with internal linkage (static, anonymous namespace) has
#    no symbol to name: that is a build error ([ferry-linkage]);
#  * ferry-pack merges the side files into fat code objects and generates a
#    source, added to <target>, that carries them in the retained ELF section
#    `ferry_code` and registers them at start-up (<ferry/code_registry.hpp>).
# <target> is linked to ferry::ferry. The aarch64 compiles need the
# aarch64-linux-gnu cross headers (Debian: g++-aarch64-linux-gnu).
#
# Inputs set by ferry's build tree or its package config:
#   FERRY_PLUGIN_PATH  the plugin .so (a plain path: OBJECT_DEPENDS rejects
#                      generator expressions)
#   FERRY_PLUGIN_DEP   what the per-triple compiles depend on for it
#   FERRY_PACK         the ferry-pack executable target
#   FERRY_CLANG, FERRY_CLANGXX  the clang 19 that loads the plugin (C, C++)
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
  if(NOT FERRY_PLUGIN_PATH OR NOT FERRY_PACK OR NOT FERRY_CLANG OR NOT FERRY_CLANGXX)
    message(FATAL_ERROR "ferry_add_mobile: FERRY_PLUGIN_PATH/FERRY_PACK/FERRY_CLANG/FERRY_CLANGXX unset: "
                        "use find_package(ferry)")
  endif()
  foreach(compiler IN ITEMS "${FERRY_CLANG}" "${FERRY_CLANGXX}")
    if(NOT EXISTS "${compiler}")
      message(FATAL_ERROR "ferry_add_mobile(${target}): ferry's clang 19 '${compiler}' does not exist "
                          "(code objects are always compiled by the clang that loads the ferry plugin)")
    endif()
  endforeach()
  # Languages whose compiler runs the plugin itself (clang 19); the others
  # (GCC, ...) get generated address-index sources instead.
  get_property(languages GLOBAL PROPERTY ENABLED_LANGUAGES)
  set(plugin_langs "")
  set(foreign_langs "")
  foreach(lang IN ITEMS C CXX)
    if(NOT lang IN_LIST languages)
      continue()
    endif()
    if(CMAKE_${lang}_COMPILER_ID STREQUAL "Clang" AND CMAKE_${lang}_COMPILER_VERSION MATCHES "^19\\.")
      list(APPEND plugin_langs ${lang})
    else()
      list(APPEND foreign_langs ${lang})
    endif()
  endforeach()
  set(FERRY_MOBILE_CLANG_C "${FERRY_CLANG}")
  set(FERRY_MOBILE_CLANG_CXX "${FERRY_CLANGXX}")
  # The address index is compiled for the host: its symbols come from the
  # per-triple compile for the host's architecture when there is one.
  list(GET ARG_TARGETS 0 index_arch)
  foreach(arch IN LISTS ARG_TARGETS)
    if(CMAKE_SYSTEM_PROCESSOR MATCHES "^${arch}$")
      set(index_arch ${arch})
    endif()
  endforeach()
  if("C" IN_LIST languages)
    set(index_ext c)
    set(index_lang C)
  else()
    set(index_ext cpp)
    set(index_lang CXX)
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
  set(index_sources "")
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
    get_filename_component(abs "${src}" ABSOLUTE BASE_DIR "${source_dir}")
    file(RELATIVE_PATH rel "${source_dir}" "${abs}")
    string(MAKE_C_IDENTIFIER "${rel}" stem)
    if(lang IN_LIST plugin_langs)
      set_property(SOURCE "${abs}" TARGET_DIRECTORY ${target} APPEND PROPERTY OBJECT_DEPENDS "${FERRY_PLUGIN_PATH}")
    endif()
    foreach(arch IN LISTS ARG_TARGETS)
      set(side "${out_dir}/${stem}.${arch}.fco")
      set(outputs "${side}")
      set(index_flag "")
      set(comment "ferry: ${arch} code objects of ${rel}")
      if(lang IN_LIST foreign_langs AND arch STREQUAL index_arch)
        set(index "${out_dir}/${stem}.index.${index_ext}")
        list(APPEND outputs "${index}")
        set(index_flag "-fplugin-arg-ferry-index=${index}")
        list(APPEND index_sources "${index}")
        string(APPEND comment " (and its address index)")
      endif()
      add_custom_command(OUTPUT ${outputs}
        COMMAND ${FERRY_MOBILE_CLANG_${lang}} -target ${FERRY_MOBILE_TRIPLE_${arch}} ${std_flag} -O2
                "${inc_flags}" "${def_flags}"
                "-fplugin=${FERRY_PLUGIN_PATH}" "-fplugin-arg-ferry-emit=${side}" ${index_flag}
                -MD -MT "${side}" -MF "${side}.d"
                -S -emit-llvm -o /dev/null "${abs}"
        DEPENDS "${abs}" ${FERRY_PLUGIN_DEP}
        DEPFILE "${side}.d"
        COMMENT "${comment}"
        COMMAND_EXPAND_LISTS VERBATIM)
      list(APPEND side_files "${side}")
    endforeach()
  endforeach()

  # The generated source is C unless the project has no C compiler.
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
  target_sources(${target} PRIVATE "${generated}" ${index_sources})
  # The index sources declare each mobile function with a made-up type (the
  # real one may not be expressible in C): kept out of LTO, where GCC would
  # compare it with the definition (-Wlto-type-mismatch).
  if(index_sources AND CMAKE_${index_lang}_COMPILER_ID MATCHES "^(GNU|Clang)$")
    set_property(SOURCE ${index_sources} TARGET_DIRECTORY ${target} APPEND PROPERTY COMPILE_OPTIONS -fno-lto)
  endif()
  # UBSan's checks are emitted by clang's front end into the very IR the
  # plugin extracts, where they would be calls no node allows: ferry's own
  # sanitizer build (FERRY_SANITIZE) compiles sources with mobile code
  # without UBSan (ASan stays; its pass runs after the extraction).
  set(plugin_flags "-fplugin=${FERRY_PLUGIN_PATH}")
  if(FERRY_SANITIZER_FLAGS)
    list(APPEND plugin_flags -fno-sanitize=undefined)
  endif()
  if(NOT foreign_langs)
    target_compile_options(${target} PRIVATE ${plugin_flags})
  elseif(plugin_langs)
    target_compile_options(${target} PRIVATE "$<$<COMPILE_LANGUAGE:${plugin_langs}>:${plugin_flags}>")
  endif()
  if(FERRY_PLUGIN_DEP AND TARGET ${FERRY_PLUGIN_DEP})
    add_dependencies(${target} ${FERRY_PLUGIN_DEP})
  endif()
  # The runtime: libferry, unless the target already links ferry's internal
  # build (ferry's own tools and tests, inside this source tree): one copy of
  # the runtime per process.
  _ferry_links_internal(${target} internal)
  if(NOT internal)
    target_link_libraries(${target} PRIVATE ferry::ferry)
  endif()
endfunction()

# Does <target> link ferry_internal, directly or through libraries it links?
function(_ferry_links_internal target out)
  set(found FALSE)
  set(todo ${target})
  set(seen "")
  while(todo AND NOT found)
    list(POP_FRONT todo t)
    if(t IN_LIST seen OR NOT TARGET ${t})
      continue()
    endif()
    list(APPEND seen ${t})
    if(t STREQUAL "ferry_internal")
      set(found TRUE)
      break()
    endif()
    get_target_property(type ${t} TYPE)
    set(props INTERFACE_LINK_LIBRARIES)
    if(NOT type STREQUAL "INTERFACE_LIBRARY")
      list(APPEND props LINK_LIBRARIES)
    endif()
    foreach(prop IN LISTS props)
      get_target_property(libs ${t} ${prop})
      if(libs)
        list(APPEND todo ${libs})
      endif()
    endforeach()
  endwhile()
  set(${out} ${found} PARENT_SCOPE)
endfunction()
