# cmake -P script: install ferry, configure the consumer with the project
# compiler under test, build it, run it; then check that the build of mobile
# code ferry must refuse fails with the plugin's message.
#
#   FERRY_BINARY_DIR, CONSUMER_SOURCE_DIR, FAIL_SOURCE_DIR, WORK_DIR
#   CMAKE_TOOLCHAIN_FILE     project compiler: ferry's toolchain (clang 19), or
#   CONSUMER_CC/CONSUMER_CXX project compiler: these (GCC)
cmake_policy(VERSION 3.25)
file(REMOVE_RECURSE "${WORK_DIR}")
set(prefix "${WORK_DIR}/prefix")
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}")
  endif()
endfunction()
# Build <target> of <dir>: it must fail with output matching <regex>.
function(build_must_fail dir target regex)
  execute_process(COMMAND ${CMAKE_COMMAND} --build "${dir}" --target ${target}
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(rc EQUAL 0)
    message(FATAL_ERROR "building ${target} succeeded; expected it to fail with /${regex}/:\n${out}")
  endif()
  if(NOT out MATCHES "${regex}")
    message(FATAL_ERROR "building ${target} failed without /${regex}/:\n${out}")
  endif()
  message(STATUS "${target}: build fails as expected (/${regex}/)")
endfunction()

if(CONSUMER_CXX)
  set(compiler_args "-DCMAKE_C_COMPILER=${CONSUMER_CC}" "-DCMAKE_CXX_COMPILER=${CONSUMER_CXX}")
  set(gcc ON)
else()
  set(compiler_args "-DCMAKE_TOOLCHAIN_FILE=${CMAKE_TOOLCHAIN_FILE}")
  set(gcc OFF)
endif()

run(${CMAKE_COMMAND} --install "${FERRY_BINARY_DIR}" --prefix "${prefix}")
run(${CMAKE_COMMAND} -S "${CONSUMER_SOURCE_DIR}" -B "${WORK_DIR}/build" -G Ninja
    "-DCMAKE_PREFIX_PATH=${prefix}" ${compiler_args})
run(${CMAKE_COMMAND} --build "${WORK_DIR}/build")
run("${WORK_DIR}/build/consumer")
run("${WORK_DIR}/build/ifunc_consumer")

run(${CMAKE_COMMAND} -S "${FAIL_SOURCE_DIR}" -B "${WORK_DIR}/fail" -G Ninja
    "-DCMAKE_PREFIX_PATH=${prefix}" ${compiler_args})
build_must_fail("${WORK_DIR}/fail" misuse
  "\\[ferry-param\\] parameter 'p' of ferry::mobile function 'deref' has type 'const std::uint64_t \\*'")
if(gcc)
  build_must_fail("${WORK_DIR}/fail" static_fn
    "\\[ferry-linkage\\] ferry::mobile function 'hidden' has internal linkage")
else()
  run(${CMAKE_COMMAND} --build "${WORK_DIR}/fail" --target static_fn)
  run("${WORK_DIR}/fail/static_fn")
endif()
