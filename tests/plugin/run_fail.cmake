# cmake -P: SOURCE must produce exactly its `expected-error` diagnostics with
# the plugin (clang -verify), and compile without it (attribute ignored with
# a warning), so headers stay portable.
cmake_policy(VERSION 3.25)
if(SOURCE MATCHES "\\.c$")
  set(cc ${C_COMPILER})
  set(std "")
else()
  set(cc ${COMPILER})
  set(std -std=c++20)
endif()
execute_process(
  COMMAND ${cc} ${std} -O2 -I${INCLUDE} -fplugin=${PLUGIN} -Xclang -verify
          -Xclang -verify-ignore-unexpected=note -S -emit-llvm -o /dev/null ${SOURCE}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${SOURCE}: diagnostics with the plugin differ from the expected ones:\n${out}")
endif()
execute_process(
  COMMAND ${cc} ${std} -O2 -I${INCLUDE} -S -emit-llvm -o /dev/null ${SOURCE}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${SOURCE}: does not compile without the plugin:\n${out}")
endif()
if(NOT out MATCHES "unknown attribute '(ferry::mobile|mobile|ferry_mobile)' ignored")
  message(FATAL_ERROR "${SOURCE}: expected an 'unknown attribute' warning without the plugin, got:\n${out}")
endif()
