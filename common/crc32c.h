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
/*
 * fl_crc32c(crc, B) for a 4096-byte B whose own fl_crc32c(0, B) is
 * block_crc, without reading B: a frame's checksum over a block whose
 * checksum is already known (a block pointer's), in 32 table lookups.
 */
uint32_t fl_crc32c_cat4k(uint32_t crc, uint32_t block_crc);

#endif
