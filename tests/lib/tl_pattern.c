/*
 * tests/lib/tl_pattern.c: known file content (see tl_pattern.h).
 */
#include "tests/lib/tl_pattern.h"

#include <string.h>

uint64_t tl_mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint64_t word(uint64_t seed, uint64_t off)
{
	return tl_mix64((seed << 40) ^ (off >> 3));
}

void tl_pattern_fill(uint8_t *b, size_t n, uint64_t seed, uint64_t off)
{
	for (size_t i = 0; i < n; i += 8) {
		uint64_t w = word(seed, off + i);

		memcpy(b + i, &w, n - i < 8 ? n - i : 8);
	}
}

long tl_pattern_mismatch(const uint8_t *b, size_t n, uint64_t seed,
    uint64_t off)
{
	for (size_t i = 0; i + 8 <= n; i += 8) {
		uint64_t w = word(seed, off + i);

		if (memcmp(b + i, &w, 8) != 0)
			return (long)(off + i);
	}
	return -1;
}
