/*
 * tests/lib/tl_pattern.h: known, incompressible file content for tests
 * and benchmarks that write through a client and check what comes back.
 *
 * The content of stream `seed` is a function of the offset alone: the
 * 8 bytes at offset 8k are tl_mix64(seed << 40 ^ k), so any 8-aligned
 * piece can be written or checked on its own, in any order.
 */
#ifndef FILER_TESTS_LIB_TL_PATTERN_H
#define FILER_TESTS_LIB_TL_PATTERN_H

#include <stddef.h>
#include <stdint.h>

/* splitmix64's finaliser: also a small PRNG step (x = tl_mix64(x)). */
uint64_t tl_mix64(uint64_t x);

/* b[0..n) = the content of seed at off (off 8-aligned; a partial last
 * word is cut short). */
void tl_pattern_fill(uint8_t *b, size_t n, uint64_t seed, uint64_t off);

/* The offset of the first 8-byte word of b[0..n) (n a multiple of 8)
 * that differs from the content of seed at off, or -1. */
long tl_pattern_mismatch(const uint8_t *b, size_t n, uint64_t seed,
    uint64_t off);

#endif
