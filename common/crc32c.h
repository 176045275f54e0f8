/*
 * common/crc32c.h: CRC-32C (Castagnoli), the checksum of every block pointer,
 * label and record.  Computed by ISA-L (crc32_iscsi).  Standard form: initial
 * value ~0, final complement; fl_crc32c(0, "123456789", 9) == 0xe3069283.
 * Chain by passing the previous result as crc.
 */
#ifndef FILER_COMMON_CRC32C_H
#define FILER_COMMON_CRC32C_H

#include <stddef.h>
#include <stdint.h>

uint32_t fl_crc32c(uint32_t crc, const void *buf, size_t len);

#endif
