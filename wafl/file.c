/*
 * wafl/file.c: byte-range reads and writes on active files, and size
 * changes (truncate / sparse extend).  Symlinks of up to WAFL_INLINE_MAX
 * bytes live inline in the inode; everything else goes through the block
 * tree (wnode.c).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/assert.h"
#include "common/err.h"
#include "common/util.h"
#include "wafl/dir.h"
#include "wafl/wafl_impl.h"

int wn_read(struct wnode *wn, uint64_t off, uint32_t len, void *buf,
    uint32_t *got, bool *eof)
{
	const struct wafl_dinode *di = &wn->di;
	uint8_t *blk = NULL;
	uint32_t done = 0;
	int rc = 0;

	if (off >= di->size) {
		*got = 0;
		*eof = true;
		return 0;
	}
	if ((uint64_t)len > di->size - off)
		len = (uint32_t)(di->size - off);
	if (di->flags & WAFL_INO_INLINE) {
		memcpy(buf, di->u.inline_data + off, len);
		*got = len;
		*eof = true;
		return 0;
	}
	blk = wafl_blk_alloc();
	if (blk == NULL)
		return -ENOMEM;
	while (done < len) {
		uint64_t pos = off + done;
		uint64_t fbn = pos / WAFL_BLOCK_SIZE;
		uint32_t boff = (uint32_t)(pos % WAFL_BLOCK_SIZE);
		uint32_t n = FL_MIN(WAFL_BLOCK_SIZE - boff, len - done);
		if (n == WAFL_BLOCK_SIZE) {
			/* Whole blocks, up to the end of their level-1
			 * parent: straight into the caller's buffer.  On an
			 * error, the blocks read before it count in *got. */
			uint64_t run = FL_MIN((len - done) / WAFL_BLOCK_SIZE,
			    WAFL_BPS_PER_BLOCK - fbn % WAFL_BPS_PER_BLOCK);
			uint32_t nread;
			rc = wn_read_blocks(wn, fbn, (uint32_t)run,
			    (uint8_t *)buf + done, &nread);
			done += nread * WAFL_BLOCK_SIZE;
			if (rc != 0)
				break;
			continue;
		}
		rc = wn_read_block(wn, fbn, blk);
		if (rc != 0)
			break;
		memcpy((uint8_t *)buf + done, blk + boff, n);
		done += n;
	}
	wafl_blk_free(blk);
	*got = done;
	*eof = off + done >= di->size;
	return rc;
}

/* ------------------------------------------------ reads without a copy */

const uint8_t wafl_zero_block[WAFL_BLOCK_SIZE] __attribute__((aligned(64)));

struct wafl_rdvec *rdvec_alloc(uint32_t count)
{
	uint32_t cap = count / WAFL_BLOCK_SIZE + 2;
	struct wafl_rdvec *rv = calloc(1, sizeof(*rv) + (size_t)cap *
	    (sizeof(struct iovec) + sizeof(void *) + sizeof(uint8_t *)));

	if (rv == NULL)
		return NULL;
	rv->cap = cap;
	rv->iov = (struct iovec *)(void *)(rv + 1);
	rv->loan = (void **)(void *)(rv->iov + cap);
	rv->blk = (uint8_t **)(void *)(rv->loan + cap);
	return rv;
}

void wafl_rdvec_free(struct wafl_rdvec *rv)
{
	if (rv == NULL)
		return;
	for (uint32_t i = 0; i < rv->nloan; i++)
		bcache_return(rv->loan[i]);
	for (uint32_t i = 0; i < rv->nblk; i++)
		wafl_blk_free(rv->blk[i]);
	free(rv->buf);
	free(rv);
}

void rdvec_keep_loan(struct wafl_rdvec *rv, void *ticket)
{
	VERIFY(rv->nloan < rv->cap);
	rv->loan[rv->nloan++] = ticket;
}

void rdvec_keep_block(struct wafl_rdvec *rv, uint8_t *blk)
{
	VERIFY(rv->nblk < rv->cap);
	rv->blk[rv->nblk++] = blk;
}

/* Append len bytes at p; a piece that continues the last one in memory
 * joins it. */
void rdvec_add(struct wafl_rdvec *rv, const uint8_t *p, uint32_t len)
{
	struct iovec *last = rv->niov > 0 ? &rv->iov[rv->niov - 1] : NULL;

	rv->len += len;
	if (last != NULL && (const uint8_t *)last->iov_base + last->iov_len ==
	    p) {
		last->iov_len += len;
		return;
	}
	VERIFY(rv->niov < rv->cap);
	rv->iov[rv->niov].iov_base = (void *)(uintptr_t)p;
	rv->iov[rv->niov].iov_len = len;
	rv->niov++;
}

int wn_read_vec(struct wnode *wn, uint64_t off, uint32_t len,
    struct wafl_rdvec *rv, uint32_t *got, bool *eof)
{
	const struct wafl_dinode *di = &wn->di;
	const uint8_t *data[WAFL_BPS_PER_BLOCK];
	uint32_t done = 0;
	int rc = 0;

	*got = 0;
	*eof = off >= di->size;
	if (*eof)
		return 0;
	if ((uint64_t)len > di->size - off)
		len = (uint32_t)(di->size - off);
	if (di->flags & WAFL_INO_INLINE)
		return FL_ERR(-EINVAL);
	while (done < len) {
		uint64_t pos = off + done;
		uint64_t fbn = pos / WAFL_BLOCK_SIZE;
		uint64_t last = (off + len - 1) / WAFL_BLOCK_SIZE;
		uint32_t boff = (uint32_t)(pos % WAFL_BLOCK_SIZE);
		/* Up to the range's last block or the parent's. */
		uint32_t n = (uint32_t)(FL_MIN(last, fbn | (WAFL_BPS_PER_BLOCK -
		    1)) - fbn + 1);
		rc = wn_lend_blocks(wn, fbn, n, rv, data);
		if (rc != 0)
			break;
		for (uint32_t i = 0; i < n; i++) {
			uint32_t k = FL_MIN(WAFL_BLOCK_SIZE - boff, len - done);
			rdvec_add(rv, data[i] + boff, k);
			done += k;
			boff = 0;
		}
	}
	*got = done;
	*eof = off + done >= di->size;
	return rc;
}

int wn_write(struct wnode *wn, uint64_t off, uint32_t len, const void *buf)
{
	struct wafl_dinode *di = &wn->di;
	uint32_t done = 0;
	int rc = 0;

	if (di->flags & WAFL_INO_INLINE)
		return FL_ERR(-EINVAL);
	if (off + len > WAFL_MAX_FILE_SIZE || off + len < off)
		return FL_ERR(-EFBIG);
	while (done < len) {
		uint64_t pos = off + done;
		uint64_t fbn = pos / WAFL_BLOCK_SIZE;
		uint32_t boff = (uint32_t)(pos % WAFL_BLOCK_SIZE);
		uint32_t n = FL_MIN(WAFL_BLOCK_SIZE - boff, len - done);
		uint8_t *blk;
		/* A whole block replaces the old one unread. */
		if (n == WAFL_BLOCK_SIZE && S_ISREG(di->mode)) {
			rc = wn_write_whole_block(wn, fbn,
			    (const uint8_t *)buf + done);
		} else {
			rc = n == WAFL_BLOCK_SIZE ?
			    wn_overwrite_block(wn, fbn, &blk) :
			    wn_modify_block(wn, fbn, &blk);
			if (rc == 0)
				memcpy(blk + boff, (const uint8_t *)buf + done,
				    n);
		}
		if (rc != 0)
			break;
		done += n;
	}
	if (off + done > di->size)
		di->size = off + done;
	wnode_dirty(wn);
	return rc;
}

int wn_set_size(struct wnode *wn, uint64_t size)
{
	struct wafl_dinode *di = &wn->di;
	int rc;

	if (size > WAFL_MAX_FILE_SIZE)
		return FL_ERR(-EFBIG);
	if (di->flags & WAFL_INO_INLINE)
		return FL_ERR(-EINVAL);
	if (size < di->size) {
		uint64_t first = FL_DIV_ROUND_UP(size, WAFL_BLOCK_SIZE);
		rc = wn_truncate_blocks(wn, first);
		if (rc != 0)
			return rc;
		/* Zero the tail of the last partial block. */
		if (size % WAFL_BLOCK_SIZE != 0) {
			uint8_t *blk;
			uint8_t *probe = malloc(WAFL_BLOCK_SIZE);
			if (probe == NULL)
				return -ENOMEM;
			rc = wn_read_block(wn, size / WAFL_BLOCK_SIZE, probe);
			bool zero = true;
			for (uint32_t i = size % WAFL_BLOCK_SIZE;
			    rc == 0 && i < WAFL_BLOCK_SIZE; i++)
				if (probe[i] != 0)
					zero = false;
			free(probe);
			if (rc != 0)
				return rc;
			if (!zero) {
				rc = wn_modify_block(wn,
				    size / WAFL_BLOCK_SIZE, &blk);
				if (rc != 0)
					return rc;
				memset(blk + size % WAFL_BLOCK_SIZE, 0,
				    WAFL_BLOCK_SIZE - size % WAFL_BLOCK_SIZE);
			}
		}
	}
	di->size = size;
	wnode_dirty(wn);
	return 0;
}

/* ---------------------------------------------------- directory files */

static int df_read(void *ctx, uint64_t fbn, void *buf)
{
	return wn_read_block(ctx, fbn, buf);
}

static int df_modify(void *ctx, uint64_t fbn, uint8_t **blk)
{
	struct wnode *wn = ctx;
	int rc = wn_modify_block(wn, fbn, blk);

	if (rc == 0 && wn->di.size < (fbn + 1) * WAFL_BLOCK_SIZE)
		wn->di.size = (fbn + 1) * WAFL_BLOCK_SIZE;
	return rc;
}

static uint64_t df_nblocks(void *ctx)
{
	const struct wnode *wn = ctx;

	return wn->di.size / WAFL_BLOCK_SIZE;
}

void wn_dirfile(struct wnode *wn, struct dirfile *df)
{
	df->ctx = wn;
	df->read = df_read;
	df->modify = df_modify;
	df->nblocks = df_nblocks;
	df->hash_key = wn->vol->fsi.dir_key;
}
