# LLVM for a cross build of the node (FERRY_TARGET_TRIPLE, see
# toolchain.cmake): the target's libLLVM (libllvm19:<arch>) with the build
# machine's LLVM headers. Debian cannot co-install llvm-19-dev for two
# architectures, and the headers differ in one file only:
# llvm/Config/llvm-config.h (host triple and native-target macros). That file
# is generated here, in the build tree, from the installed one; nothing of
# LLVM is copied into the source tree.
#
# Defines what find_package(LLVM) would for ferry's use: the LLVM target,
# LLVM_INCLUDE_DIRS, LLVM_DEFINITIONS, LLVM_PACKAGE_VERSION.
set(_host_config "${FERRY_LLVM_ROOT}/include/llvm/Config/llvm-config.h")
set(_cross_lib "/usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/libLLVM.so.19.1")
if(NOT EXISTS "${_cross_lib}")
  message(FATAL_ERROR "cross build for ${FERRY_TARGET_TRIPLE}: ${_cross_lib} is missing "
                      "(install libllvm19:${FERRY_DEB_ARCH}; `make deps-aarch64` does)")
endif()
file(READ "${_host_config}" _config)
string(REGEX MATCH "#define LLVM_HOST_TRIPLE \"([^\"]*)\"" _ "${_config}")
set(_host_triple "${CMAKE_MATCH_1}")
string(REPLACE "${_host_triple}" "${FERRY_LLVM_TRIPLE}" _config "${_config}")
# The native target of the build machine's LLVM (X86) becomes the target's.
string(REGEX MATCH "#define LLVM_NATIVE_ARCH ([A-Za-z0-9]+)" _ "${_config}")
set(_host_native "${CMAKE_MATCH_1}")
string(REGEX REPLACE "LLVMInitialize${_host_native}" "LLVMInitialize${FERRY_LLVM_NATIVE}" _config "${_config}")
string(REPLACE "#define LLVM_NATIVE_ARCH ${_host_native}" "#define LLVM_NATIVE_ARCH ${FERRY_LLVM_NATIVE}"
       _config "${_config}")
set(_cross_include "${PROJECT_BINARY_DIR}/llvm-cross/include")
file(CONFIGURE OUTPUT "${_cross_include}/llvm/Config/llvm-config.h" CONTENT "${_config}" @ONLY)

string(REGEX MATCH "#define LLVM_VERSION_STRING \"([^\"]*)\"" _ "${_config}")
set(LLVM_PACKAGE_VERSION "${CMAKE_MATCH_1}")
set(LLVM_INCLUDE_DIRS "${_cross_include}" "${FERRY_LLVM_ROOT}/include")
set(LLVM_DEFINITIONS "-D_GNU_SOURCE -D__STDC_CONSTANT_MACROS -D__STDC_FORMAT_MACROS -D__STDC_LIMIT_MACROS")
if(NOT TARGET LLVM)
  add_library(LLVM SHARED IMPORTED)
  set_target_properties(LLVM PROPERTIES IMPORTED_LOCATION "${_cross_lib}")
endif()
message(STATUS "LLVM ${LLVM_PACKAGE_VERSION} for ${FERRY_TARGET_TRIPLE}: ${_cross_lib}, headers of ${_host_triple} "
               "with a generated llvm-config.h")
