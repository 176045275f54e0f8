/*
 * raid/parity.c: the erasure code of a group, on ISA-L.
 *
 * The (N+P) x N encode matrix E has the identity on top (rows 0..N-1 are
 * the data disks) and one row per parity disk below:
 *   P = 1:  row N is all ones, so parity is the XOR of the data (RAID-4);
 *           encoded with xor_gen when the buffers allow it.
 *   P >= 2: rows N..N+P-1 are ISA-L's gf_gen_cauchy1_matrix rows,
 *           E[N+p][j] = 1 / ((N+p) XOR j) in GF(2^8) (polynomial 0x11d).
 *           Any N rows of a Cauchy-extended identity are independent (MDS).
 *
 * Decoding is one path for every P: take the N rows of the blocks at hand,
 * invert that N x N submatrix B (gf_invert_matrix), and produce any wanted
 * row r as (E[r] * B^-1) applied to the blocks at hand (ec_encode_data).
 */
#include <errno.h>
#include <isa-l/erasure_code.h>
#include <isa-l/raid.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/err.h"
#include "raid/raid_impl.h"

int raid_code_init(struct raid_code *c, unsigned n, unsigned p)
{
	if (n < 1 || n > RAID_MAX_DATA || p < 1 || p > RAID_MAX_PARITY)
		return -EINVAL;
	memset(c, 0, sizeof(*c));
	c->n = n;
	c->p = p;
	if (p == 1) {
		for (unsigned i = 0; i < n; i++)
			c->enc[i * n + i] = 1;
		for (unsigned j = 0; j < n; j++)
			c->enc[n * n + j] = 1;
	} else {
		gf_gen_cauchy1_matrix(c->enc, (int)(n + p), (int)n);
	}
	ec_init_tables((int)n, (int)p, &c->enc[n * n], c->enc_tbls);
	return 0;
}

static bool aligned32(const void *p)
{
	return ((uintptr_t)p & 31u) == 0;
}

void raid_code_encode(const struct raid_code *c, size_t len,
    uint8_t *const *data, uint8_t *const *parity)
{
	ASSERT(len % 64 == 0 && len <= INT32_MAX);
	if (c->p == 1 && c->n >= 2) {
		void *v[RAID_MAX_DATA + 1];
		bool ok = aligned32(parity[0]);

		for (unsigned j = 0; j < c->n; j++) {
			v[j] = data[j];
			ok = ok && aligned32(data[j]);
		}
		v[c->n] = parity[0];
		if (ok && xor_gen((int)c->n + 1, (int)len, v) == 0)
			return;
	}
	ec_encode_data((int)len, (int)c->n, (int)c->p,
	    (unsigned char *)c->enc_tbls, (unsigned char **)data,
	    (unsigned char **)parity);
}

int raid_code_plan(const struct raid_code *c, const unsigned *rows_in,
    unsigned nout, const unsigned *rows_out, struct raid_plan *pl)
{
	const unsigned n = c->n;
	uint8_t b[RAID_MAX_DATA * RAID_MAX_DATA];
	uint8_t inv[RAID_MAX_DATA * RAID_MAX_DATA];
	uint8_t coef[RAID_MAX_WIDTH * RAID_MAX_DATA];

	if (nout == 0 || nout > RAID_MAX_WIDTH)
		return -EINVAL;
	for (unsigned i = 0; i < n; i++) {
		if (rows_in[i] >= n + c->p)
			return -EINVAL;
		memcpy(&b[i * n], &c->enc[rows_in[i] * n], n);
	}
	if (gf_invert_matrix(b, inv, (int)n) != 0)
		return -EINVAL;
	for (unsigned o = 0; o < nout; o++) {
		const uint8_t *e;

		if (rows_out[o] >= n + c->p)
			return -EINVAL;
		e = &c->enc[rows_out[o] * n];
		for (unsigned j = 0; j < n; j++) {
			uint8_t s = 0;

			for (unsigned k = 0; k < n; k++)
				s ^= gf_mul(e[k], inv[k * n + j]);
			coef[o * n + j] = s;
		}
	}
	pl->nout = nout;
	ec_init_tables((int)n, (int)nout, coef, pl->tbls);
	return 0;
}

void raid_code_apply(const struct raid_code *c, const struct raid_plan *pl,
    size_t len, uint8_t *const *src, uint8_t *const *dst)
{
	ASSERT(len <= INT32_MAX);
	ec_encode_data((int)len, (int)c->n, (int)pl->nout,
	    (unsigned char *)pl->tbls, (unsigned char **)src,
	    (unsigned char **)dst);
}

int raid_code_solve(const struct raid_code *c, const unsigned *rows_in,
    uint8_t *const *src, unsigned nout, const unsigned *rows_out,
    uint8_t *const *dst, size_t len)
{
	struct raid_plan *pl;
	int err;

	if (nout == 0)
		return 0;
	pl = malloc(sizeof(*pl));
	if (pl == NULL)
		return -ENOMEM;
	err = raid_code_plan(c, rows_in, nout, rows_out, pl);
	if (err == 0)
		raid_code_apply(c, pl, len, src, dst);
	free(pl);
	return err;
}
