/*
 * tests/lib/gf_ref.c: reference GF(2^8) parity (see gf_ref.h).
 */
#include "tests/lib/gf_ref.h"

#include <stdlib.h>
#include <string.h>

uint8_t gf_ref_mul(uint8_t a, uint8_t b)
{
	unsigned x = a, y = b, r = 0;

	while (y != 0) {
		if (y & 1)
			r ^= x;
		x <<= 1;
		if (x & 0x100)
			x ^= 0x11d;
		y >>= 1;
	}
	return (uint8_t)r;
}

uint8_t gf_ref_inv(uint8_t a)
{
	/* a^254 = a^-1 in GF(2^8), since a^255 = 1 for a != 0. */
	uint8_t r = 1;

	for (int i = 0; i < 254; i++)
		r = gf_ref_mul(r, a);
	return r;
}

/* t[x] = c * x for every x: the same products, computed once per block. */
static void mul_row(uint8_t c, uint8_t t[256])
{
	for (unsigned x = 0; x < 256; x++)
		t[x] = gf_ref_mul(c, (uint8_t)x);
}

uint8_t gf_ref_coef(unsigned n, unsigned p, unsigned i, unsigned j)
{
	if (p == 1)
		return 1;
	return gf_ref_inv((uint8_t)((n + i) ^ j));
}

void gf_ref_encode(unsigned n, unsigned p, size_t len,
    const uint8_t *const *data, uint8_t *const *parity)
{
	for (unsigned i = 0; i < p; i++) {
		uint8_t *q = parity[i];

		memset(q, 0, len);
		for (unsigned j = 0; j < n; j++) {
			uint8_t t[256];
			mul_row(gf_ref_coef(n, p, i, j), t);
			for (size_t b = 0; b < len; b++)
				q[b] ^= t[data[j][b]];
		}
	}
}

/* Row k of the generator matrix. */
static void gen_row(unsigned n, unsigned p, unsigned k, uint8_t *row)
{
	for (unsigned j = 0; j < n; j++) {
		if (k < n)
			row[j] = (uint8_t)(j == k);
		else
			row[j] = gf_ref_coef(n, p, k - n, j);
	}
}

int gf_ref_decode(unsigned n, unsigned p, size_t len,
    const uint8_t *const *blocks, uint8_t *const *out)
{
	uint8_t m[GF_REF_MAX_DISKS][2 * GF_REF_MAX_DISKS];
	const uint8_t *src[GF_REF_MAX_DISKS];
	unsigned rows = 0;

	if (n > GF_REF_MAX_DISKS || n + p > 2 * GF_REF_MAX_DISKS)
		return -1;
	/* Pick the first n surviving blocks; [G_sel | I]. */
	for (unsigned k = 0; k < n + p && rows < n; k++) {
		if (blocks[k] == NULL)
			continue;
		gen_row(n, p, k, m[rows]);
		for (unsigned j = 0; j < n; j++)
			m[rows][n + j] = (uint8_t)(j == rows);
		src[rows++] = blocks[k];
	}
	if (rows < n)
		return -1;
	/* Gauss-Jordan: [G_sel | I] -> [I | G_sel^-1]. */
	for (unsigned c = 0; c < n; c++) {
		unsigned piv = c;
		while (piv < n && m[piv][c] == 0)
			piv++;
		if (piv == n)
			return -1;	/* singular: the code is not MDS */
		if (piv != c) {
			uint8_t t[2 * GF_REF_MAX_DISKS];
			memcpy(t, m[c], sizeof(t));
			memcpy(m[c], m[piv], sizeof(t));
			memcpy(m[piv], t, sizeof(t));
		}
		uint8_t inv = gf_ref_inv(m[c][c]);
		for (unsigned j = 0; j < 2 * n; j++)
			m[c][j] = gf_ref_mul(m[c][j], inv);
		for (unsigned r = 0; r < n; r++) {
			uint8_t f = m[r][c];
			if (r == c || f == 0)
				continue;
			for (unsigned j = 0; j < 2 * n; j++)
				m[r][j] ^= gf_ref_mul(f, m[c][j]);
		}
	}
	/* data[j] = sum over r of inv[j][r] * src[r]. */
	for (unsigned j = 0; j < n; j++) {
		memset(out[j], 0, len);
		for (unsigned r = 0; r < n; r++) {
			uint8_t t[256];
			if (m[j][n + r] == 0)
				continue;
			mul_row(m[j][n + r], t);
			for (size_t b = 0; b < len; b++)
				out[j][b] ^= t[src[r][b]];
		}
	}
	return 0;
}
