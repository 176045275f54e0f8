/*
 * raid/label.c: encode, decode and validate disk labels (format in
 * raid/label.h).  Label bytes from disk are hostile until decoded here
 * (STYLE.md 6): every field is range-checked before anyone uses it.
 */
#include "raid/label.h"

#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"
#include "common/err.h"
#include "common/util.h"
#include "raid/raid_impl.h"

void raid_label_encode(const struct raid_label *l, uint8_t *b)
{
	memset(b, 0, RAID_LABEL_SIZE);
	fl_put_le64(b + 0, RAID_LABEL_MAGIC);
	fl_put_le32(b + 8, RAID_LABEL_VERSION);
	memcpy(b + 16, l->vol_uuid, 16);
	memcpy(b + 32, l->disk_uuid, 16);
	fl_put_le64(b + 48, l->generation);
	fl_put_le64(b + 56, l->seq);
	fl_put_le32(b + 64, l->ngroups);
	fl_put_le32(b + 68, l->group);
	fl_put_le32(b + 72, l->position);
	fl_put_le32(b + 76, l->ndata);
	fl_put_le32(b + 80, l->nparity);
	fl_put_le32(b + 84, l->flags);
	fl_put_le64(b + 88, l->disk_blocks);
	fl_put_le64(b + 96, l->data_off);
	fl_put_le64(b + 104, l->intent_off);
	fl_put_le32(b + 112, l->intent_blocks);
	fl_put_le32(b + 116, l->region_stripes);
	fl_put_le64(b + 120, l->create_ns);
	fl_put_le64(b + 128, l->journal_off);
	fl_put_le32(b + 136, l->journal_blocks);
	fl_put_le32(b + 140, l->journal_slots);
	for (unsigned i = 0; i < RAID_LABEL_MEMBERS; i++) {
		uint8_t *m = b + RAID_LABEL_MEMBER_OFF +
		    i * RAID_LABEL_MEMBER_SIZE;
		memcpy(m, l->member[i].uuid, 16);
		fl_put_le32(m + 16, l->member[i].state);
	}
	fl_put_le32(b + 12, fl_crc32c(0, b, RAID_LABEL_SIZE));
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			return false;
	return true;
}

int raid_label_decode(const uint8_t *b, struct raid_label *l,
    const char **why)
{
	uint8_t tmp[RAID_LABEL_SIZE];
	uint32_t crc;
	bool spare;

	*why = "";
	if (fl_get_le64(b) != RAID_LABEL_MAGIC) {
		*why = "bad label magic";
		return -FL_ECORRUPT;
	}
	memcpy(tmp, b, RAID_LABEL_SIZE);
	memset(tmp + 12, 0, 4);
	crc = fl_crc32c(0, tmp, RAID_LABEL_SIZE);
	if (crc != fl_get_le32(b + 12)) {
		*why = "bad label checksum";
		return -FL_ECORRUPT;
	}
	if (fl_get_le32(b + 8) != RAID_LABEL_VERSION) {
		*why = "unsupported label version";
		return -FL_ECORRUPT;
	}
	memset(l, 0, sizeof(*l));
	memcpy(l->vol_uuid, b + 16, 16);
	memcpy(l->disk_uuid, b + 32, 16);
	l->generation = fl_get_le64(b + 48);
	l->seq = fl_get_le64(b + 56);
	l->ngroups = fl_get_le32(b + 64);
	l->group = fl_get_le32(b + 68);
	l->position = fl_get_le32(b + 72);
	l->ndata = fl_get_le32(b + 76);
	l->nparity = fl_get_le32(b + 80);
	l->flags = fl_get_le32(b + 84);
	l->disk_blocks = fl_get_le64(b + 88);
	l->data_off = fl_get_le64(b + 96);
	l->intent_off = fl_get_le64(b + 104);
	l->intent_blocks = fl_get_le32(b + 112);
	l->region_stripes = fl_get_le32(b + 116);
	l->create_ns = fl_get_le64(b + 120);
	l->journal_off = fl_get_le64(b + 128);
	l->journal_blocks = fl_get_le32(b + 136);
	l->journal_slots = fl_get_le32(b + 140);
	for (unsigned i = 0; i < RAID_LABEL_MEMBERS; i++) {
		const uint8_t *m = b + RAID_LABEL_MEMBER_OFF +
		    i * RAID_LABEL_MEMBER_SIZE;
		memcpy(l->member[i].uuid, m, 16);
		l->member[i].state = fl_get_le32(m + 16);
	}

	/* Ranges (STYLE.md 6). */
	spare = (l->flags & RAID_LABEL_F_SPARE) != 0;
	if ((l->flags & ~(RAID_LABEL_F_CLEAN | RAID_LABEL_F_SPARE)) != 0) {
		*why = "unknown label flags";
		return -FL_ECORRUPT;
	}
	if (l->ngroups < 1 || l->ngroups > RAID_MAX_GROUPS ||
	    l->ndata < 1 || l->ndata > RAID_MAX_DATA ||
	    l->nparity < 1 || l->nparity > RAID_MAX_PARITY) {
		*why = "label geometry out of range";
		return -FL_ECORRUPT;
	}
	if (spare) {
		if (l->group != RAID_LABEL_NONE ||
		    l->position != RAID_LABEL_NONE) {
			*why = "spare label with a position";
			return -FL_ECORRUPT;
		}
	} else if (l->group >= l->ngroups ||
	    l->position >= l->ndata + l->nparity) {
		*why = "label group or position out of range";
		return -FL_ECORRUPT;
	}
	if (l->disk_blocks == 0 || l->disk_blocks > (1ull << 40) ||
	    l->region_stripes != RAID_REGION_STRIPES ||
	    l->intent_off != RAID_INTENT_OFF ||
	    l->intent_blocks != raid_intent_nblocks(l->disk_blocks) ||
	    l->journal_off != l->intent_off + l->intent_blocks ||
	    l->journal_slots != RAID_JOURNAL_SLOTS ||
	    l->journal_blocks != l->journal_slots * (1 + l->nparity) ||
	    l->data_off < l->journal_off + l->journal_blocks ||
	    l->data_off > (1ull << 32)) {
		*why = "label layout out of range";
		return -FL_ECORRUPT;
	}
	for (unsigned i = 0; i < RAID_LABEL_MEMBERS; i++) {
		if (i >= l->ndata + l->nparity || spare) {
			if (!all_zero(l->member[i].uuid, 16) ||
			    l->member[i].state != 0) {
				*why = "label member table has stray entries";
				return -FL_ECORRUPT;
			}
		} else if (l->member[i].state != RAID_DISK_OK &&
		    l->member[i].state != RAID_DISK_FAILED &&
		    l->member[i].state != RAID_DISK_MISSING) {
			*why = "label member state out of range";
			return -FL_ECORRUPT;
		}
	}
	if (!all_zero(b + 144, 112)) {
		*why = "label reserved bytes not zero";
		return -FL_ECORRUPT;
	}
	return 0;
}

int raid_label_read(struct raid_dev *d, struct raid_label *l,
    const char **why, bool *has_magic)
{
	uint8_t *buf = raid_balloc(RAID_LABEL_COPIES);
	struct raid_label c[RAID_LABEL_COPIES];
	const char *w = "no label";
	int err = 0, best = -1;

	*has_magic = false;
	if (buf == NULL)
		return -ENOMEM;
	if (d->size < RAID_LABEL_COPIES * RAID_BLOCK_SIZE) {
		*why = "device too small for a label";
		err = -FL_ECORRUPT;
		goto out;
	}
	err = raid_dev_pread(d, buf, RAID_LABEL_COPIES * RAID_BLOCK_SIZE, 0);
	if (err != 0) {
		*why = "cannot read the label";
		goto out;
	}
	for (unsigned i = 0; i < RAID_LABEL_COPIES; i++) {
		const uint8_t *b = buf + i * RAID_BLOCK_SIZE;
		const char *cw;

		if (fl_get_le64(b) == RAID_LABEL_MAGIC)
			*has_magic = true;
		if (raid_label_decode(b, &c[i], &cw) == 0) {
			if (best < 0 || c[i].seq > c[best].seq)
				best = (int)i;
		} else if (fl_get_le64(b) == RAID_LABEL_MAGIC || best < 0) {
			w = cw;
		}
	}
	if (best < 0) {
		*why = w;
		err = -FL_ECORRUPT;
		goto out;
	}
	*l = c[best];
	*why = "";
out:
	free(buf);
	return err;
}

int raid_label_write(struct raid_dev *d, const struct raid_label *l)
{
	uint8_t *buf = raid_balloc(1);
	int err;

	if (buf == NULL)
		return -ENOMEM;
	memset(buf, 0, RAID_BLOCK_SIZE);
	raid_label_encode(l, buf);
	err = raid_dev_pwrite(d, buf, RAID_BLOCK_SIZE,
	    (l->seq % RAID_LABEL_COPIES) * RAID_BLOCK_SIZE);
	if (err == 0)
		err = d->ops->sync(d);
	free(buf);
	return err;
}
