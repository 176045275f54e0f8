/*
 * tests/lib/gf_ref.h: a plain reference for RAID parity, written for the
 * tests and deliberately slow and obvious (no tables, no SIMD), so that the
 * ISA-L based raid/ code is checked against something independent.
 *
 * Field: GF(2^8) with the polynomial x^8 + x^4 + x^3 + x^2 + 1 (0x11d), the
 * one ISA-L uses.  Multiplication is shift-and-add; the inverse is a^254.
 *
 * Code: for N data and P parity blocks the generator matrix G has N + P
 * rows and N columns: rows 0..N-1 the identity, and
 *   P = 1:  row N is all ones (plain XOR parity);
 *   P >= 2: row N + i, column j is 1 / ((N + i) ^ j), the Cauchy matrix of
 *           ISA-L's gf_gen_cauchy1_matrix().
 * Parity block i is sum over j of G[N + i][j] * data[j], byte by byte.
 * Every N x N submatrix of G is invertible (MDS), so any N surviving blocks
 * give the data back: gf_ref_decode() does it by Gauss-Jordan elimination.
 */
#ifndef FILER_TESTS_LIB_GF_REF_H
#define FILER_TESTS_LIB_GF_REF_H

#include <stddef.h>
#include <stdint.h>

#define GF_REF_MAX_DISKS	64

uint8_t gf_ref_mul(uint8_t a, uint8_t b);
uint8_t gf_ref_inv(uint8_t a);		/* a != 0 */

/* Coefficient of data column j in parity row i (0..P-1) for N data. */
uint8_t gf_ref_coef(unsigned n, unsigned p, unsigned i, unsigned j);

/*
 * parity[i] (i < p) = parity i of data[0..n-1], each len bytes.  The
 * parity buffers are overwritten.
 */
void gf_ref_encode(unsigned n, unsigned p, size_t len,
    const uint8_t *const *data, uint8_t *const *parity);

/*
 * Recover every data block from any n of the n + p blocks of a stripe.
 * blocks[k] (k < n + p, data first then parity) points at block k, or is
 * NULL when block k is lost; out[j] receives data block j (out must not
 * alias blocks).  Returns 0, or
 * -1 when fewer than n blocks survive.
 */
int gf_ref_decode(unsigned n, unsigned p, size_t len,
    const uint8_t *const *blocks, uint8_t *const *out);

#endif
