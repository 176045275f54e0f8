/*
 * tests/nfsd/fuzz_rpc.c: libFuzzer target over the RPC/XDR decode path
 * (make fuzz).  Input byte 0 selects the mode:
 *   even: the rest is a whole call record, decoded as received;
 *   odd:  a valid call header (AUTH_SYS) for program/procedure chosen by
 *         bytes 1-2 is prepended to the rest, so every procedure's argument
 *         decoder is reached quickly.
 * nfsd_rpc_decode_only decodes header, credential and arguments and frees
 * everything, and nfsd_read_count reads a READ's count the way the event
 * thread does: ASan/UBSan catch what goes wrong.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nfsd/nfsd_impl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
	return 4;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 3 || size > NFSD_MAX_RECORD)
		return 0;
	if ((data[0] & 1) == 0) {
		nfsd_rpc_decode_only(data + 1, size - 1);
		(void)nfsd_read_count(data + 1, size - 1);
		return 0;
	}
	uint8_t *buf = malloc(size + 64);
	size_t n = 0;
	if (buf == NULL)
		return 0;
	bool mnt = data[1] & 1;
	n += put32(buf + n, 0x12345678);
	n += put32(buf + n, 0);				/* CALL */
	n += put32(buf + n, 2);
	n += put32(buf + n, mnt ? MOUNT_PROG : NFS_PROG);
	n += put32(buf + n, 3);
	n += put32(buf + n, data[2] % (mnt ? 6 : 22));
	n += put32(buf + n, 1);				/* AUTH_SYS */
	n += put32(buf + n, 20);
	n += put32(buf + n, 0);				/* stamp */
	n += put32(buf + n, 0);				/* machine name "" */
	n += put32(buf + n, 0);				/* uid */
	n += put32(buf + n, 0);				/* gid */
	n += put32(buf + n, 0);				/* gids */
	n += put32(buf + n, 0);				/* verf */
	n += put32(buf + n, 0);
	memcpy(buf + n, data + 3, size - 3);
	nfsd_rpc_decode_only(buf, n + size - 3);
	(void)nfsd_read_count(buf, n + size - 3);
	free(buf);
	return 0;
}
