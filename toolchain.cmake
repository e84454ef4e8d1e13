# ferry toolchain: clang-19 / LLVM 19.1 from Debian, pinned by path.
#
# Why pinned: the Clang plugin must be loaded by the same clang that built it,
# and bitcode produced by LLVM 19 is what the JIT (LLVM 19) reads; a newer
# clang on PATH would produce bitcode LLVM 19 cannot parse (docs/platform-notes.md).
#
# Cross builds (the aarch64 DPU tier) include this file and then override
# FERRY_TARGET_TRIPLE / CMAKE_SYSTEM_PROCESSOR; everything target-specific is
# derived from those two variables.

set(FERRY_LLVM_ROOT "/usr/lib/llvm-19" CACHE PATH "Root of the LLVM/Clang 19.1 install")

if(NOT CMAKE_C_COMPILER)
  set(CMAKE_C_COMPILER "${FERRY_LLVM_ROOT}/bin/clang")
endif()
if(NOT CMAKE_CXX_COMPILER)
  set(CMAKE_CXX_COMPILER "${FERRY_LLVM_ROOT}/bin/clang++")
endif()

set(LLVM_DIR "${FERRY_LLVM_ROOT}/lib/cmake/llvm" CACHE PATH "LLVM 19 CMake package" FORCE)
set(Clang_DIR "${FERRY_LLVM_ROOT}/lib/cmake/clang" CACHE PATH "Clang 19 CMake package" FORCE)

# Prefer lld when it is installed: it links LLVM-heavy binaries several times
# faster than bfd on these 2-core machines.
if(EXISTS "${FERRY_LLVM_ROOT}/bin/ld.lld")
  set(CMAKE_EXE_LINKER_FLAGS_INIT "-fuse-ld=lld")
  set(CMAKE_SHARED_LINKER_FLAGS_INIT "-fuse-ld=lld")
  set(CMAKE_MODULE_LINKER_FLAGS_INIT "-fuse-ld=lld")
endif()

# Cross build of the node for a DPU (`make build-aarch64`, docs/devices.md):
#   cmake -B build/aarch64 -G Ninja -DCMAKE_TOOLCHAIN_FILE=toolchain.cmake \
#         -DFERRY_TARGET_TRIPLE=aarch64-linux-gnu -DFERRY_NODE_ONLY=ON -DFERRY_WITH_PMIX=OFF
# The same clang-19 compiles for the target (gcc's aarch64 cross package
# provides the C/C++ headers and start files); libraries come from Debian's
# multiarch packages (libllvm19:arm64, libucx-dev:arm64, ...), found through
# the target's pkg-config directory. cmake/FerryCrossLLVM.cmake supplies LLVM.
if(FERRY_TARGET_TRIPLE)
  if(FERRY_TARGET_TRIPLE MATCHES "^aarch64")
    set(CMAKE_SYSTEM_PROCESSOR aarch64)
    set(FERRY_DEB_ARCH arm64)
    set(FERRY_LLVM_NATIVE AArch64)
    set(FERRY_LLVM_TRIPLE aarch64-unknown-linux-gnu)
  else()
    message(FATAL_ERROR "FERRY_TARGET_TRIPLE=${FERRY_TARGET_TRIPLE}: only aarch64-linux-gnu cross builds are known")
  endif()
  set(CMAKE_SYSTEM_NAME Linux)
  set(CMAKE_C_COMPILER_TARGET ${FERRY_TARGET_TRIPLE})
  set(CMAKE_CXX_COMPILER_TARGET ${FERRY_TARGET_TRIPLE})
  set(CMAKE_LIBRARY_ARCHITECTURE ${FERRY_TARGET_TRIPLE})
  set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64)
  set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/${FERRY_TARGET_TRIPLE}/pkgconfig:/usr/share/pkgconfig")
endif()
