#include "common/crc32c.h"

#include <pthread.h>

#include <isa-l/crc.h>

uint32_t fl_crc32c(uint32_t crc, const void *buf, size_t len)
{
	/* ISA-L's crc32_iscsi neither inverts its input nor its output. */
	return ~crc32_iscsi((unsigned char *)(uintptr_t)buf, (int)len, ~crc);
}

/*
 * fl_crc32c_cat4k.  A CRC is affine in its starting value and its data
 * together, so fl_crc32c(c, B) = fl_crc32c(0, B) ^ S(c) for every B of
 * 4096 bytes, where S(c) = fl_crc32c(c, Z) ^ fl_crc32c(0, Z) (Z: 4096
 * zero bytes) is linear in c.  S is kept as four tables of 256 entries,
 * one per byte of c, built from its values at the 32 unit vectors.
 */
static uint32_t cat4k_tab[4][256];
static pthread_once_t cat4k_once = PTHREAD_ONCE_INIT;

static void cat4k_init(void)
{
	static const uint8_t zero[4096];
	const uint32_t z0 = fl_crc32c(0, zero, sizeof(zero));
	uint32_t col[32];

	for (unsigned i = 0; i < 32; i++)
		col[i] = fl_crc32c(1u << i, zero, sizeof(zero)) ^ z0;
	for (unsigned j = 0; j < 4; j++) {
		for (unsigned v = 0; v < 256; v++) {
			uint32_t s = 0;

			for (unsigned b = 0; b < 8; b++)
				if (v & (1u << b))
					s ^= col[8 * j + b];
			cat4k_tab[j][v] = s;
		}
	}
}

uint32_t fl_crc32c_cat4k(uint32_t crc, uint32_t block_crc)
{
	(void)pthread_once(&cat4k_once, cat4k_init);
	return block_crc ^ cat4k_tab[0][crc & 0xff] ^
	    cat4k_tab[1][(crc >> 8) & 0xff] ^ cat4k_tab[2][(crc >> 16) & 0xff] ^
	    cat4k_tab[3][crc >> 24];
}
