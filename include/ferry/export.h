/* ferry/export.h — FERRY_API marks what libferry exports.
 *
 * libferry is built with hidden visibility: a symbol is part of its ABI only
 * if a public header declares it FERRY_API (the C API of <ferry/ferry.h>, the
 * classes and functions of the C++ headers). Everything else stays inside
 * the library, so programs cannot come to depend on it. */
#ifndef FERRY_EXPORT_H
#define FERRY_EXPORT_H

#if defined(__GNUC__) || defined(__clang__)
#define FERRY_API __attribute__((visibility("default")))
#else
#define FERRY_API
#endif

#endif /* FERRY_EXPORT_H */
