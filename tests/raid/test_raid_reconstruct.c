/*
 * tests/raid/test_raid_reconstruct.c: parity and reconstruction checked
 * against a plain reference (tests/lib/gf_ref.c), for every combination of
 * up to P failed disks per group, P = 1, 2, 3, several geometries, random
 * data (STYLE.md 13; the shape of ZFS's raidz_test).
 *
 * For each geometry:
 *   1. write random data (full stripes, then partial and unaligned writes
 *      so both write paths leave parity), flush;
 *   2. read every parity block straight from the image files and compare it
 *      with the reference parity of the written data (R3);
 *   3. for every set of up to P failed disks in group 0 (and a rotating
 *      set in group 1 when there are two groups), alternately opened with
 *      those paths missing or failed by raid_fail_disk() after open:
 *      every VBN reads back what was written (R1), and raid_reconstruct()
 *      of every VBN returns the written data whenever the block's own disk
 *      plus the failed ones are at most P, and an error otherwise;
 *   4. with P >= 2, a silently corrupted second disk is stepped around by
 *      raid_reconstruct()'s later attempts.
 * The reference itself is first checked against ISA-L's definitions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <isa-l/erasure_code.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "raid/raid.h"
#include "tests/lib/gf_ref.h"
#include "tests/lib/tl_raid.h"

#define DISK_BLOCKS	16

/* ---- the reference against ISA-L's own definitions ---- */

static void test_ref_field_matches_isal(void **state)
{
	for (unsigned a = 0; a < 256; a++) {
		for (unsigned b = 0; b < 256; b++)
			assert_int_equal(gf_ref_mul((uint8_t)a, (uint8_t)b),
			    gf_mul((unsigned char)a, (unsigned char)b));
		if (a != 0) {
			assert_int_equal(gf_ref_inv((uint8_t)a),
			    gf_inv((unsigned char)a));
			assert_int_equal(gf_ref_mul((uint8_t)a,
			    gf_ref_inv((uint8_t)a)), 1);
		}
	}
	/* The polynomial is 0x11d: x^8 = x^4 + x^3 + x^2 + 1. */
	assert_int_equal(gf_ref_mul(0x80, 2), 0x1d);
}

static void test_ref_cauchy_matches_isal(void **state)
{
	unsigned char a[(RAID_MAX_DATA + RAID_MAX_PARITY) * RAID_MAX_DATA];

	for (unsigned n = 1; n <= RAID_MAX_DATA; n++) {
		for (unsigned p = 2; p <= RAID_MAX_PARITY; p++) {
			gf_gen_cauchy1_matrix(a, (int)(n + p), (int)n);
			for (unsigned i = 0; i < p; i++)
				for (unsigned j = 0; j < n; j++)
					assert_int_equal(gf_ref_coef(n, p, i, j),
					    a[(n + i) * n + j]);
		}
		assert_int_equal(gf_ref_coef(n, 1, 0, 0), 1);
	}
}

/* The reference encode equals ISA-L's encode with the same matrix, and the
 * reference decode recovers every erasure pattern of up to P blocks. */
static void test_ref_encode_decode(void **state)
{
	const unsigned len = 512;
	uint64_t rng = 7;

	for (unsigned n = 1; n <= 8; n++) {
		for (unsigned p = 1; p <= 3; p++) {
			uint8_t blk[11][512], isal[3][512], out[8][512];
			const uint8_t *data[8];
			uint8_t *par[3], *outp[8];
			unsigned char mat[11 * 8], tbl[32 * 8 * 3];
			unsigned char *src[8], *dst[3];

			for (unsigned k = 0; k < n + p; k++)
				tl_fill_random(blk[k], len, &rng);
			for (unsigned j = 0; j < n; j++) {
				data[j] = blk[j];
				src[j] = blk[j];
				outp[j] = out[j];
			}
			for (unsigned i = 0; i < p; i++) {
				par[i] = blk[n + i];
				dst[i] = isal[i];
			}
			gf_ref_encode(n, p, len, data, par);
			if (p >= 2) {
				gf_gen_cauchy1_matrix(mat, (int)(n + p), (int)n);
				ec_init_tables((int)n, (int)p, &mat[n * n], tbl);
				ec_encode_data((int)len, (int)n, (int)p, tbl, src,
				    dst);
				for (unsigned i = 0; i < p; i++)
					assert_memory_equal(par[i], isal[i], len);
			} else {
				for (unsigned b = 0; b < len; b++) {
					uint8_t x = 0;
					for (unsigned j = 0; j < n; j++)
						x ^= blk[j][b];
					assert_int_equal(x, par[0][b]);
				}
			}
			/* Every erasure set of size <= p. */
			for (unsigned m = 0; m < (1u << (n + p)); m++) {
				const uint8_t *bl[11];
				if ((unsigned)__builtin_popcount(m) > p)
					continue;
				for (unsigned k = 0; k < n + p; k++)
					bl[k] = (m & (1u << k)) ? NULL : blk[k];
				assert_int_equal(gf_ref_decode(n, p, len, bl,
				    outp), 0);
				for (unsigned j = 0; j < n; j++)
					assert_memory_equal(out[j], blk[j], len);
			}
		}
	}
}

/* ---- raid against the reference ---- */

struct geom {
	uint32_t ngroups, n, p;
};

/* Data-area offset of every member image, found from known contents. */
static void find_offsets(struct tl_vol *t, int64_t *off)
{
	uint32_t w = t->ndata + t->nparity;
	uint64_t per_group = (uint64_t)t->ndata * t->disk_blocks;
	uint8_t par[RAID_MAX_PARITY][TL_BS];

	for (uint32_t g = 0; g < t->ngroups; g++) {
		const uint8_t *data[RAID_MAX_DATA];
		uint8_t *pp[RAID_MAX_PARITY];
		uint64_t vbn0 = g * per_group;

		for (uint32_t j = 0; j < t->ndata; j++) {
			size_t disk;
			uint64_t blk;
			assert_int_equal(raid_vbn_locate(t->v, vbn0 + j, &disk,
			    &blk), 0);
			/* raid.h: data disk = v % N, disk block = stripe. */
			assert_int_equal(disk, tl_disk(t, g, j));
			assert_int_equal(blk, 0);
			data[j] = tl_shadow(t, vbn0 + j);
		}
		for (uint32_t i = 0; i < t->nparity; i++)
			pp[i] = par[i];
		gf_ref_encode(t->ndata, t->nparity, TL_BS, data, pp);
		for (uint32_t k = 0; k < w; k++) {
			size_t d = tl_disk(t, g, k);
			const void *expect = k < t->ndata ? data[k] :
			    par[k - t->ndata];
			off[d] = tl_find_data_offset(t->paths[d], expect, 0);
			if (off[d] < 0)
				fail_msg("%s (group %u position %u): the %s of "
				    "stripe 0 is nowhere in the image",
				    t->paths[d], g, k, k < t->ndata ?
				    "written data" : "reference parity");
		}
	}
}

/* Every parity block on disk equals the reference parity of the shadow. */
static void check_parity_on_disk(struct tl_vol *t)
{
	int64_t off[TL_MAX_PATHS];
	uint64_t per_group = (uint64_t)t->ndata * t->disk_blocks;
	uint8_t par[RAID_MAX_PARITY][TL_BS], img[TL_BS];

	find_offsets(t, off);
	for (uint32_t g = 0; g < t->ngroups; g++) {
		for (uint64_t s = 0; s < t->disk_blocks; s++) {
			uint64_t vbn0 = g * per_group + s * t->ndata;
			const uint8_t *data[RAID_MAX_DATA];
			uint8_t *pp[RAID_MAX_PARITY];

			for (uint32_t j = 0; j < t->ndata; j++)
				data[j] = tl_shadow(t, vbn0 + j);
			for (uint32_t i = 0; i < t->nparity; i++)
				pp[i] = par[i];
			gf_ref_encode(t->ndata, t->nparity, TL_BS, data, pp);
			for (uint32_t i = 0; i < t->nparity; i++) {
				size_t disk;
				uint64_t blk;
				assert_int_equal(raid_parity_locate(t->v,
				    vbn0 + (s % t->ndata), i, &disk, &blk), 0);
				assert_int_equal(disk,
				    tl_disk(t, g, t->ndata + i));
				assert_int_equal(blk, s);
				assert_int_equal(tl_image_read_block(
				    t->paths[disk], off[disk], blk, img), 0);
				if (memcmp(img, par[i], TL_BS) != 0)
					fail_msg("group %u stripe %llu parity "
					    "%u on %s differs from the "
					    "reference", g,
					    (unsigned long long)s, i,
					    t->paths[disk]);
			}
		}
	}
}

/* Random writes through both paths, mirrored in the shadow. */
static void write_dataset(struct tl_vol *t, uint64_t seed)
{
	uint64_t rng = seed * 977 + 1;

	assert_int_equal(tl_vol_fill(t, seed), 0);
	for (int i = 0; i < 24; i++) {
		uint64_t vbn = tl_rand_below(&rng, t->nvbns);
		uint32_t max = (uint32_t)FL_MIN(t->nvbns - vbn,
		    3 * (uint64_t)t->ndata);
		uint32_t n = 1 + (uint32_t)tl_rand_below(&rng, max);
		assert_int_equal(tl_vol_write_random(t, vbn, n, &rng), 0);
	}
	assert_int_equal(raid_flush(t->v), 0);
}

/* Check every VBN through raid_read and raid_reconstruct, with failed[]
 * (member disk indexes, nfailed of them) out of service. */
static void check_all(struct tl_vol *t, const size_t *failed, int nfailed,
    const char *how)
{
	uint8_t buf[TL_BS];
	uint8_t *all;
	int err;
	uint64_t bad = tl_vol_verify(t, &err);
	struct raid_status st;

	if (bad != 0)
		fail_msg("%llu wrong or unreadable blocks (%s) with %d "
		    "disks out, first error %s", (unsigned long long)bad,
		    how, nfailed, fl_strerror(err));
	/* One read of the whole volume, across stripes and groups. */
	all = malloc(t->nvbns * TL_BS);
	assert_non_null(all);
	assert_int_equal(raid_read(t->v, 0, (uint32_t)t->nvbns, all), 0);
	assert_int_equal(tl_first_diff_block(all, t->shadow, t->nvbns), -1);
	free(all);

	raid_status(t->v, &st);
	assert_int_equal(st.degraded, nfailed > 0);
	assert_false(st.offline);

	for (uint64_t vbn = 0; vbn < t->nvbns; vbn++) {
		size_t own;
		uint64_t blk;
		uint32_t g = (uint32_t)(vbn / ((uint64_t)t->ndata *
		    t->disk_blocks));
		unsigned lost = 1;
		int rc;

		assert_int_equal(raid_vbn_locate(t->v, vbn, &own, &blk), 0);
		for (int f = 0; f < nfailed; f++) {
			if (failed[f] != own &&
			    failed[f] / (t->ndata + t->nparity) == g)
				lost++;
		}
		memset(buf, 0xa5, sizeof(buf));
		rc = raid_reconstruct(t->v, vbn, 0, buf);
		if (lost <= t->nparity) {
			if (rc != 0)
				fail_msg("reconstruct vbn %llu (%s, %u lost): "
				    "%s", (unsigned long long)vbn, how, lost,
				    fl_strerror(rc));
			if (memcmp(buf, tl_shadow(t, vbn), TL_BS) != 0)
				fail_msg("reconstruct vbn %llu (%s, %u lost) "
				    "returned wrong data",
				    (unsigned long long)vbn, how, lost);
		} else if (rc == 0) {
			fail_msg("reconstruct vbn %llu claims success with %u "
			    "blocks of its stripe lost and P = %u (%s)",
			    (unsigned long long)vbn, lost, t->nparity, how);
		}
	}
}

/* The k-th subset (in mask order) of w positions with at most p members. */
static unsigned nth_subset(unsigned w, unsigned p, unsigned k)
{
	unsigned seen = 0;

	for (;;) {
		for (unsigned m = 0; m < (1u << w); m++) {
			if ((unsigned)__builtin_popcount(m) > p)
				continue;
			if (seen++ == k)
				return m;
		}
		k %= seen;
		seen = 0;
	}
}

static void test_geometry(void **state)
{
	const struct geom *gm = *state;
	struct tl_vol t;
	uint32_t w = gm->n + gm->p;
	unsigned combos = 0;

	fl_log_set_level(FL_LOG_ERR);	/* hundreds of degraded opens */
	assert_int_equal(tl_vol_create(&t, NULL, gm->ngroups, gm->n, gm->p,
	    DISK_BLOCKS, false), 0);
	write_dataset(&t, 1000 * gm->n + 10 * gm->p + gm->ngroups);
	check_parity_on_disk(&t);
	check_all(&t, NULL, 0, "healthy");
	tl_vol_close(&t);
	assert_int_equal(tl_vol_save_images(&t, "golden"), 0);

	for (unsigned m = 0; m < (1u << w); m++) {
		size_t failed[2 * RAID_MAX_PARITY];
		const char *paths[TL_MAX_PATHS];
		int nfailed = 0;
		bool by_request = (combos % 2) == 1;
		unsigned m1;

		if ((unsigned)__builtin_popcount(m) > gm->p)
			continue;
		for (unsigned k = 0; k < w; k++)
			if (m & (1u << k))
				failed[nfailed++] = tl_disk(&t, 0, k);
		if (gm->ngroups > 1) {
			m1 = nth_subset(w, gm->p, combos * 7 + 3);
			for (unsigned k = 0; k < w; k++)
				if (m1 & (1u << k))
					failed[nfailed++] = tl_disk(&t, 1, k);
		}
		combos++;

		assert_int_equal(tl_vol_restore_images(&t, "golden"), 0);
		for (size_t i = 0; i < t.npaths; i++)
			paths[i] = t.paths[i];
		if (!by_request) {
			for (int f = 0; f < nfailed; f++)
				paths[failed[f]] = NULL;
		}
		int rc = tl_vol_open_paths(&t, paths, t.npaths);
		if (rc != 0)
			fail_msg("open with %d disks out: %s", nfailed,
			    fl_strerror(rc));
		for (int f = 0; by_request && f < nfailed; f++)
			assert_int_equal(raid_fail_disk(t.v, failed[f],
			    "test"), 0);
		for (size_t d = 0; d < t.npaths; d++) {
			struct raid_disk_info info;
			bool out = false;
			for (int f = 0; f < nfailed; f++)
				out |= failed[f] == d;
			assert_int_equal(raid_disk_info(t.v, d, &info), 0);
			if (!out)
				assert_int_equal(info.state, RAID_DISK_OK);
			else
				assert_int_equal(info.state, by_request ?
				    RAID_DISK_FAILED : RAID_DISK_MISSING);
		}
		check_all(&t, failed, nfailed,
		    by_request ? "failed by request" : "missing at open");
		tl_vol_close(&t);
	}
	assert_true(combos >= 1 + w);

	/*
	 * P >= 2: a second disk of the stripe silently corrupt.  attempt 0
	 * may use it; some later attempt must step around it, and no attempt
	 * past the last returns data.
	 */
	if (gm->p >= 2) {
		uint8_t buf[TL_BS];
		bool good = false;
		unsigned attempt;
		size_t own, other;
		uint64_t blk;
		uint64_t vbn = 0;	/* stripe 0 of group 0 */

		assert_int_equal(tl_vol_restore_images(&t, "golden"), 0);
		t.fault_inject = true;
		assert_int_equal(tl_vol_open(&t), 0);
		assert_int_equal(raid_vbn_locate(t.v, vbn, &own, &blk), 0);
		other = gm->n > 1 ? tl_disk(&t, 0, 1) : tl_disk(&t, 0, gm->n);
		assert_int_equal(raid_fault_flip_bit(t.v, other, blk, 77), 0);
		for (attempt = 0; attempt < 10000; attempt++) {
			int rc = raid_reconstruct(t.v, vbn, attempt, buf);
			if (rc == -ENOENT)
				break;
			if (rc == 0 && memcmp(buf, tl_shadow(&t, vbn),
			    TL_BS) == 0)
				good = true;
		}
		assert_true(attempt < 10000);
		assert_true(attempt >= 2);
		if (!good)
			fail_msg("no reconstruct attempt (of %u) stepped "
			    "around the corrupt disk %zu", attempt, other);
		tl_vol_close(&t);
		t.fault_inject = false;
	} else {
		uint8_t buf[TL_BS];
		assert_int_equal(tl_vol_restore_images(&t, "golden"), 0);
		assert_int_equal(tl_vol_open(&t), 0);
		assert_int_equal(raid_reconstruct(t.v, 0, 1, buf), -ENOENT);
		tl_vol_close(&t);
	}
	tl_vol_destroy(&t);
	fl_log_set_level(FL_LOG_INFO);
}

static struct geom geoms[] = {
	{ 1, 1, 1 }, { 1, 3, 1 }, { 2, 4, 1 }, { 1, 8, 1 },
	{ 1, 1, 2 }, { 1, 3, 2 }, { 2, 4, 2 }, { 1, 8, 2 },
	{ 1, 1, 3 }, { 1, 3, 3 }, { 2, 4, 3 }, { 1, 8, 3 },
};

#define GEOM(name, i) \
	{ name, test_geometry, NULL, NULL, &geoms[i] }

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ref_field_matches_isal),
		cmocka_unit_test(test_ref_cauchy_matches_isal),
		cmocka_unit_test(test_ref_encode_decode),
		GEOM("raid4 1 group 1+1", 0),
		GEOM("raid4 1 group 3+1", 1),
		GEOM("raid4 2 groups 4+1", 2),
		GEOM("raid4 1 group 8+1", 3),
		GEOM("p2 1 group 1+2", 4),
		GEOM("p2 1 group 3+2", 5),
		GEOM("p2 2 groups 4+2", 6),
		GEOM("p2 1 group 8+2", 7),
		GEOM("p3 1 group 1+3", 8),
		GEOM("p3 1 group 3+3", 9),
		GEOM("p3 2 groups 4+3", 10),
		GEOM("p3 1 group 8+3", 11),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
