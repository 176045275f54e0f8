#include "common/crc32c.h"

#include <isa-l/crc.h>

uint32_t fl_crc32c(uint32_t crc, const void *buf, size_t len)
{
	/* ISA-L's crc32_iscsi neither inverts its input nor its output. */
	return ~crc32_iscsi((unsigned char *)(uintptr_t)buf, (int)len, ~crc);
}
