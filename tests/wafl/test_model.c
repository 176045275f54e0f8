/*
 * tests/wafl/test_model.c: the model-based randomized test.
 *
 * Thousands of random operations through the public wafl API — CREATE
 * (unchecked, guarded, exclusive), WRITE (random, extending, sparse far
 * offsets, all three stable modes), truncate up and down, MKDIR, RMDIR,
 * REMOVE, RENAME (files and directories, over existing targets, across
 * directories, into the own subtree), LINK, SYMLINK, MKNOD, SETATTR (mode,
 * owner, times), COMMIT, snapshots (create, delete, rollback), CPs,
 * remounts and kill-and-replay — against tests/lib/tl_model.c.  Every
 * result is predicted, errors included (-EEXIST, -ENOENT, -ENOTEMPTY,
 * -EISDIR, -ENOTDIR, -EINVAL, -EFBIG).
 *
 * After every CP, every remount and every replay the whole tree is read
 * back (READDIR in short pages, LOOKUP, GETATTR, READ, READLINK) and
 * compared with the model exactly, and wafl_check must be clean.  A
 * snapshot's tree is read back, in turn through the public API (snap != 0
 * objects) and through the on-disk tree itself, and compared with the model
 * as it was when the snapshot was taken.  After a kill the NVLOG replay
 * must give exactly the state tm_recover (tl_model.h) allows.
 *
 * Seeded and deterministic: the seed is printed; FILER_SEED=<seed> repeats
 * a run, FILER_TEST_SCALE / FILER_SOAK change its length (tl_model.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tests/lib/tl_model.h"
#include "tests/lib/tl_tmpdir.h"
#include "tests/lib/tl_wafl.h"
#include "wafl/dir.h"
#include "wafl/wafl_impl.h"

/* A failed test leaves by longjmp: its scratch directory (on tmpfs) is
 * removed here. */
static char *scratch_dir;

static void scratch_note(const struct tl_fs *f)
{
	free(scratch_dir);
	scratch_dir = f != NULL ? strdup(f->dir) : NULL;
}

static int scratch_teardown(void **state)
{
	if (scratch_dir != NULL)
		tl_tmpdir_remove(scratch_dir);
	scratch_dir = NULL;
	return 0;
}

#define MT_DENSE	(256u * 1024u)
#define MT_MAXSNAP	6
#define MT_MAXDEAD	64

struct mt_snap {
	char name[32];
	uint64_t id;
	struct tmodel *m;
};

struct mt {
	struct tl_fs *f;
	bool rollback;			/* snapshot events may roll back */
	struct tmodel *m;
	struct tm_journal jn;		/* operations since the last CP */
	uint64_t seed, rng;
	uint64_t opno;
	struct mt_snap snaps[MT_MAXSNAP];
	int nsnaps;
	uint64_t snapseq;
	struct wafl_obj dead[MT_MAXDEAD];
	int ndead;
	/* what the run did */
	uint64_t nops, nerr, cps, remounts, replays, snapc, snapd, rollbacks;
	uint64_t snapchecks, stale_checks;
	uint64_t errs[8];
};

static bool mt_trace;

static const int err_codes[8] = {
	EEXIST, ENOENT, ENOTEMPTY, EISDIR, ENOTDIR, EINVAL, EFBIG, 0,
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#define MT_FAIL(t, ...) do {						\
	print_message("test_model: seed 0x%" PRIx64 " (FILER_SEED=0x%"	\
	    PRIx64 " repeats it), after %" PRIu64 " operations\n",	\
	    (t)->seed, (t)->seed, (t)->opno);				\
	fail_msg(__VA_ARGS__);						\
} while (0)

/* --------------------------------------------------------- verification */

/* The model is durable as it stands (a CP, a remount): a new journal. */
static void mt_durable(struct mt *t)
{
	tm_journal_free(&t->jn);
	tm_journal_start(&t->jn, t->m);
}

static uint64_t mt_open_gen(struct mt *t)
{
	return __atomic_load_n(&t->f->v->open_gen, __ATOMIC_ACQUIRE);
}

/* Generation of the newest root on the disks (a read-only mount neither
 * replays nor writes). */
static uint64_t root_gen_on_disk(struct tl_fs *f)
{
	struct wafl_mount_opts mo = { .readonly = true, .no_cp_thread = true };
	wafl_vol_t *v;

	assert_int_equal(wafl_mount(f->raid, &mo, &v), 0);
	uint64_t g = wafl_generation(v);
	assert_int_equal(wafl_unmount(v), 0);
	return g;
}

static void mt_check(struct mt *t, const char *when)
{
	struct wafl_check_result res;
	int rc = wafl_check(t->f->v, &res);

	if (rc != 0 || res.errors != 0)
		MT_FAIL(t, "wafl_check after %s: rc %d, %" PRIu64 " errors, "
		    "first: %s", when, rc, res.errors, res.first_error);
}

static void mt_verify(struct mt *t, const char *when)
{
	struct tm_backend b;
	struct wafl_obj root;
	char err[512];

	assert_int_equal(wafl_root(t->f->v, &root), 0);
	tm_backend_live(&b, t->f->v);
	struct tmodel *o = tm_observe(&b, &root, t->m, MT_DENSE, err, sizeof(err));
	if (o == NULL)
		MT_FAIL(t, "reading the tree after %s: %s", when, err);
	if (tm_diff(t->m, o, TM_DIFF_OBJS, err, sizeof(err)) != 0) {
		tm_free(o);
		MT_FAIL(t, "tree differs from the model after %s: %s", when,
		    err);
	}
	tm_free(o);
	/* Dead handles stay dead (ESTALE), across remounts and replays. */
	for (int i = 0; i < t->ndead; i++) {
		struct wafl_attr a;
		int rc = wafl_getattr(t->f->v, &t->dead[i], &a);
		if (rc != -ESTALE)
			MT_FAIL(t, "GETATTR of removed inode %" PRIu64 " gen %u "
			    "after %s: %d, expected -ESTALE", t->dead[i].ino,
			    t->dead[i].gen, when, rc);
		t->stale_checks++;
	}
}

/* ------------------------------------- a snapshot's tree, via internals */

struct snapfs {
	struct wafl_vol *v;
	uint64_t id;
	struct wafl_dinode ifile;
};

static int sn_inode(struct snapfs *s, const struct wafl_obj *o,
    struct wafl_dinode *di)
{
	int rc;

	if (o->snap != s->id)
		return -ESTALE;
	pthread_rwlock_rdlock(&s->v->cp_lock);
	rc = tree_read_inode(s->v, &s->ifile, o->ino, di);
	pthread_rwlock_unlock(&s->v->cp_lock);
	if (rc == 0 && (di->mode == 0 || di->gen != o->gen))
		rc = -ESTALE;
	return rc;
}

static enum wafl_type sn_type(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFDIR:	return WAFL_DIR;
	case S_IFLNK:	return WAFL_LNK;
	case S_IFIFO:	return WAFL_FIFO;
	case S_IFCHR:	return WAFL_CHR;
	case S_IFBLK:	return WAFL_BLK;
	case S_IFSOCK:	return WAFL_SOCK;
	default:	return WAFL_REG;
	}
}

static int sn_getattr(void *ctx, const struct wafl_obj *o,
    struct wafl_attr *a)
{
	struct wafl_dinode di;
	int rc = sn_inode(ctx, o, &di);

	if (rc != 0)
		return rc;
	memset(a, 0, sizeof(*a));
	a->type = sn_type(di.mode);
	a->mode = di.mode & 07777;
	a->nlink = di.nlink;
	a->uid = di.uid;
	a->gid = di.gid;
	a->size = di.size;
	a->rdev_major = di.rdev_major;
	a->rdev_minor = di.rdev_minor;
	a->fileid = o->ino;
	a->atime_ns = di.atime_ns;
	a->mtime_ns = di.mtime_ns;
	a->ctime_ns = di.ctime_ns;
	a->gen = di.gen;
	return 0;
}

struct sn_dirctx {
	struct snapfs *s;
	struct wafl_dinode di;
};

static int sn_df_read(void *ctx, uint64_t fbn, void *buf)
{
	struct sn_dirctx *d = ctx;

	return tree_read_block(d->s->v, &d->di, fbn, buf);
}

static int sn_df_modify(void *ctx, uint64_t fbn, uint8_t **blk)
{
	return -EROFS;
}

static uint64_t sn_df_nblocks(void *ctx)
{
	struct sn_dirctx *d = ctx;

	return d->di.size / WAFL_BLOCK_SIZE;
}

struct sn_ents {
	char (*name)[WAFL_NAME_MAX + 1];
	uint64_t *ino;
	size_t n, cap;
};

static int sn_collect(void *arg, const struct dir_ent *ent)
{
	struct sn_ents *e = arg;

	if (e->n == e->cap) {
		e->cap = e->cap ? e->cap * 2 : 16;
		e->name = realloc(e->name, e->cap * sizeof(*e->name));
		e->ino = realloc(e->ino, e->cap * sizeof(*e->ino));
		if (e->name == NULL || e->ino == NULL)
			return -ENOMEM;
	}
	snprintf(e->name[e->n], sizeof(e->name[e->n]), "%s", ent->name);
	e->ino[e->n] = ent->ino;
	e->n++;
	return 0;
}

static int sn_list(void *ctx, const struct wafl_obj *dir, uint64_t *dotdot,
    int (*fn)(void *arg, const char *name, const struct wafl_obj *o),
    void *arg)
{
	struct snapfs *s = ctx;
	struct sn_dirctx d = { .s = s };
	struct sn_ents e = { 0 };
	struct dirfile df = {
		.ctx = &d, .read = sn_df_read, .modify = sn_df_modify,
		.nblocks = sn_df_nblocks, .hash_key = s->v->fsi.dir_key,
	};
	int rc = sn_inode(s, dir, &d.di);

	if (rc == 0 && !S_ISDIR(d.di.mode))
		rc = -ENOTDIR;
	if (rc == 0) {
		*dotdot = dir->ino == WAFL_INO_ROOTDIR ? WAFL_INO_ROOTDIR :
		    d.di.parent;
		pthread_rwlock_rdlock(&s->v->cp_lock);
		rc = dir_iterate(&df, 2, sn_collect, &e);
		pthread_rwlock_unlock(&s->v->cp_lock);
	}
	for (size_t i = 0; rc == 0 && i < e.n; i++) {
		struct wafl_dinode cdi;
		struct wafl_obj o = { e.ino[i], 0, s->id };
		pthread_rwlock_rdlock(&s->v->cp_lock);
		rc = tree_read_inode(s->v, &s->ifile, o.ino, &cdi);
		pthread_rwlock_unlock(&s->v->cp_lock);
		if (rc == 0 && cdi.mode == 0)
			rc = -ESTALE;
		o.gen = cdi.gen;
		if (rc == 0)
			rc = fn(arg, e.name[i], &o);
	}
	free(e.name);
	free(e.ino);
	return rc;
}

static int sn_read(void *ctx, const struct wafl_obj *o, uint64_t off,
    uint32_t len, void *buf, uint32_t *got, bool *eof)
{
	struct snapfs *s = ctx;
	struct wafl_dinode di;
	uint8_t blk[WAFL_BLOCK_SIZE];
	int rc = sn_inode(s, o, &di);

	*got = 0;
	*eof = false;
	if (rc != 0)
		return rc;
	if (off >= di.size) {
		*eof = true;
		return 0;
	}
	if (len > di.size - off)
		len = (uint32_t)(di.size - off);
	pthread_rwlock_rdlock(&s->v->cp_lock);
	for (uint32_t done = 0; rc == 0 && done < len;) {
		uint64_t pos = off + done;
		uint32_t in = (uint32_t)(pos % WAFL_BLOCK_SIZE);
		uint32_t k = WAFL_BLOCK_SIZE - in;
		if (k > len - done)
			k = len - done;
		rc = tree_read_block(s->v, &di, pos / WAFL_BLOCK_SIZE, blk);
		memcpy((uint8_t *)buf + done, blk + in, k);
		done += k;
	}
	pthread_rwlock_unlock(&s->v->cp_lock);
	*got = len;
	*eof = off + len >= di.size;
	return rc;
}

static int sn_readlink(void *ctx, const struct wafl_obj *o, char *buf,
    size_t bufsz, size_t *len)
{
	struct wafl_dinode di;
	uint32_t got;
	bool eof;
	int rc = sn_inode(ctx, o, &di);

	if (rc != 0)
		return rc;
	if (!S_ISLNK(di.mode) || di.size + 1 > bufsz)
		return -EINVAL;
	if (di.flags & WAFL_INO_INLINE)
		memcpy(buf, di.u.inline_data, di.size);
	else if ((rc = sn_read(ctx, o, 0, (uint32_t)di.size, buf, &got,
	    &eof)) != 0)
		return rc;
	buf[di.size] = '\0';
	*len = di.size;
	return 0;
}

static void mt_verify_snap(struct mt *t, int i)
{
	struct mt_snap *sp = &t->snaps[i];
	struct snapfs s = { .v = t->f->v, .id = sp->id };
	struct tm_backend b = {
		.ctx = &s, .list = sn_list, .getattr = sn_getattr,
		.read = sn_read, .readlink = sn_readlink,
	};
	struct wafl_obj root;
	char err[512];
	int rc;

	/* Every other time through the public API (snap != 0 objects, as
	 * nfsd's .snapshot serves them), else through the on-disk tree. */
	if (t->snapchecks % 2 == 0)
		tm_backend_live(&b, t->f->v);
	assert_int_equal(wafl_snap_root(t->f->v, sp->id, &root), 0);
	assert_true(root.snap == sp->id);
	pthread_rwlock_rdlock(&t->f->v->cp_lock);
	rc = snap_ifile(t->f->v, sp->id, &s.ifile);
	pthread_rwlock_unlock(&t->f->v->cp_lock);
	assert_int_equal(rc, 0);
	struct tmodel *o = tm_observe(&b, &root, sp->m, MT_DENSE, err, sizeof(err));
	if (o == NULL)
		MT_FAIL(t, "reading snapshot %s: %s", sp->name, err);
	if (tm_diff(sp->m, o, TM_DIFF_OBJS, err, sizeof(err)) != 0) {
		tm_free(o);
		MT_FAIL(t, "snapshot %s differs from the model of its time: %s",
		    sp->name, err);
	}
	tm_free(o);
	t->snapchecks++;
}

static void mt_verify_snap_list(struct mt *t)
{
	struct wafl_snapinfo si[MT_MAXSNAP + 4];
	size_t n = 0;

	assert_int_equal(wafl_snap_list(t->f->v, si, MT_MAXSNAP + 4, &n), 0);
	if (n != (size_t)t->nsnaps)
		MT_FAIL(t, "%zu snapshots listed, expected %d", n, t->nsnaps);
	for (int i = 0; i < t->nsnaps; i++) {
		bool found = false;
		for (size_t j = 0; j < n; j++)
			if (strcmp(si[j].name, t->snaps[i].name) == 0 &&
			    si[j].id == t->snaps[i].id)
				found = true;
		if (!found)
			MT_FAIL(t, "snapshot %s missing from the list",
			    t->snaps[i].name);
	}
}

/* -------------------------------------------------------------- events */

static void mt_cp(struct mt *t, const char *why)
{
	if (mt_trace)
		print_message("event: CP (%s)\n", why);
	int rc = wafl_sync(t->f->v);

	if (rc != 0)
		MT_FAIL(t, "wafl_sync (%s): %d", why, rc);
	t->cps++;
	mt_durable(t);
	mt_verify(t, why);
	mt_check(t, why);
	mt_verify_snap_list(t);
	if (t->nsnaps > 0)
		mt_verify_snap(t, (int)tm_below(&t->rng, (uint64_t)t->nsnaps));
}

static void mt_remount(struct mt *t)
{
	if (mt_trace)
		print_message("event: remount\n");
	tl_fs_remount(t->f);
	t->remounts++;
	mt_durable(t);
	mt_verify(t, "remount");
	mt_check(t, "remount");
	for (int i = 0; i < t->nsnaps; i++)
		mt_verify_snap(t, i);
}

/* Kill without a final CP.  The NVLOG (in the page cache) holds every
 * logged operation since the last CP; UNSTABLE writes since then that no
 * CP or COMMIT made durable are lost (NFS lets them be: the write verifier
 * changes).  The model must find exactly that state. */
static void mt_replay(struct mt *t)
{
	struct tm_backend b;
	struct wafl_obj root;
	char err[1024];

	if (mt_trace)
		print_message("event: kill and replay\n");
	wafl_abandon(t->f->v);
	t->f->v = NULL;
	tl_fs_reopen_raid(t->f);
	uint64_t g = root_gen_on_disk(t->f);
	tl_fs_mount(t->f);
	t->replays++;
	assert_int_equal(wafl_root(t->f->v, &root), 0);
	tm_backend_live(&b, t->f->v);
	struct tmodel *o = tm_observe(&b, &root, t->m, MT_DENSE, err,
	    sizeof(err));
	if (o == NULL)
		MT_FAIL(t, "reading the tree after kill and replay: %s", err);
	struct tmodel *r = tm_recover(&t->jn, g, t->jn.n, o,
	    TM_DIFF_OBJS | TM_DIFF_ADOPT, err, sizeof(err));
	tm_free(o);
	if (r == NULL)
		MT_FAIL(t, "after kill and NVLOG replay: %s", err);
	tm_free(t->m);
	t->m = r;
	mt_durable(t);
	mt_verify(t, "kill and NVLOG replay");
	assert_int_equal(wafl_sync(t->f->v), 0);
	mt_check(t, "kill and NVLOG replay");
}

static void mt_snap_event(struct mt *t)
{
	uint64_t r = tm_below(&t->rng, 100);

	if (t->rollback && t->nsnaps > 0 && r < 25) {
		int i = (int)tm_below(&t->rng, (uint64_t)t->nsnaps);
		if (mt_trace)
			print_message("event: rollback to %s\n", t->snaps[i].name);
		int rc = wafl_snap_rollback(t->f->v, t->snaps[i].name);
		if (rc != 0)
			MT_FAIL(t, "rollback to %s: %d", t->snaps[i].name, rc);
		tm_free(t->m);
		t->m = tm_clone(t->snaps[i].m);
		t->ndead = 0;	/* handles from after the snapshot: unknown */
		t->rollbacks++;
		mt_durable(t);
		mt_verify(t, "rollback");
		mt_check(t, "rollback");
		return;
	}
	if (t->nsnaps > 0 && (r < 45 || t->nsnaps == MT_MAXSNAP)) {
		int i = (int)tm_below(&t->rng, (uint64_t)t->nsnaps);
		if (mt_trace)
			print_message("event: snapshot delete %s\n",
			    t->snaps[i].name);
		assert_int_equal(wafl_snap_delete(t->f->v, t->snaps[i].name), 0);
		assert_int_equal(wafl_snap_delete(t->f->v, t->snaps[i].name),
		    -ENOENT);
		tm_free(t->snaps[i].m);
		t->snaps[i] = t->snaps[--t->nsnaps];
		t->snapd++;
		mt_durable(t);
		return;
	}
	struct mt_snap *sp = &t->snaps[t->nsnaps];
	snprintf(sp->name, sizeof(sp->name), "s%" PRIu64, t->snapseq++);
	if (mt_trace)
		print_message("event: snapshot create %s\n", sp->name);
	int rc = wafl_snap_create(t->f->v, sp->name, &sp->id);
	if (rc != 0)
		MT_FAIL(t, "snapshot create %s: %d", sp->name, rc);
	assert_int_equal(wafl_snap_create(t->f->v, sp->name, NULL), -EEXIST);
	sp->m = tm_clone(t->m);
	t->nsnaps++;
	mt_durable(t);
	t->snapc++;
	mt_verify_snap(t, t->nsnaps - 1);
}

/* The node an operation may free (to remember its handle as dead). */
static int mt_victim(const struct tmodel *m, const struct tm_op *op)
{
	const char *dir = NULL, *name = NULL;
	int d, x;

	if (op->k == TM_REMOVE || op->k == TM_RMDIR) {
		dir = op->path;
		name = op->name;
	} else if (op->k == TM_RENAME) {
		dir = op->path2;
		name = op->name2;
	} else {
		return -1;
	}
	d = tm_resolve(m, dir);
	if (d < 0 || m->n[d].type != WAFL_DIR)
		return -1;
	for (size_t i = 0; i < m->n[d].nent; i++)
		if (strcmp(m->n[d].ent[i].name, name) == 0) {
			x = m->n[d].ent[i].node;
			return m->n[x].obj_known ? x : -1;
		}
	return -1;
}

static void mt_op(struct mt *t, const struct tm_gen_opts *go)
{
	struct tm_op op;
	char desc[400];

	tm_gen(t->m, &t->rng, go, &op);
	int victim = mt_victim(t->m, &op);
	struct wafl_obj vobj = { 0 };
	if (victim >= 0)
		vobj = t->m->n[victim].obj;
	uint64_t g0 = mt_open_gen(t);
	int rc = tm_exec(t->f->v, t->m, &op);
	uint64_t g1 = mt_open_gen(t);
	tm_journal_add(&t->jn, &op, rc, g0, g1);
	int exp = tm_apply(t->m, &op, rc == 0 ? &op.out : NULL);
	t->opno++;
	if (mt_trace) {
		tm_op_describe(&op, desc, sizeof(desc));
		print_message("op %" PRIu64 ": %s -> %d\n", t->opno, desc, rc);
	}
	if (rc != exp) {
		tm_op_describe(&op, desc, sizeof(desc));
		MT_FAIL(t, "%s: returned %d (%s), the model expects %d (%s)",
		    desc, rc, fl_strerror(rc), exp, fl_strerror(exp));
	}
	t->nops++;
	if (rc != 0) {
		t->nerr++;
		for (int i = 0; i < 7; i++)
			if (-rc == err_codes[i])
				t->errs[i]++;
	}
	if (rc == 0 && op.post_valid) {
		int x = tm_resolve(t->m, op.path);
		if (x >= 0 && t->m->n[x].type == WAFL_REG &&
		    t->m->n[x].size != op.post_size) {
			tm_op_describe(&op, desc, sizeof(desc));
			MT_FAIL(t, "%s: post-op size %" PRIu64 ", model %" PRIu64,
			    desc, op.post_size, t->m->n[x].size);
		}
	}
	if (rc == 0 && victim >= 0 && !t->m->n[victim].live) {
		if (t->ndead == MT_MAXDEAD)
			t->dead[tm_below(&t->rng, MT_MAXDEAD)] = vobj;
		else
			t->dead[t->ndead++] = vobj;
	}
	tm_op_clear(&op);
}

/* ---------------------------------------------------------------- test */

static void run_model(uint64_t seed, uint64_t nops, const struct tm_gen_opts *go,
    bool rollback, const char *label)
{
	struct mt t = { 0 };
	struct wafl_obj root;
	const char *tr = getenv("FILER_MODEL_TRACE");
	struct wafl_attr ra;
	double t0 = now_s();

	t.seed = seed;
	t.rng = seed;
	t.rollback = rollback;
	mt_trace = tr != NULL && *tr != '\0' && strcmp(tr, "0") != 0;
	print_message("test_model %s: seed 0x%" PRIx64 " (FILER_SEED=0x%" PRIx64
	    " to repeat), %" PRIu64 " operations\n", label, seed, seed, nops);
	t.f = tl_fs_create(4, 1, 16384, false);
	scratch_note(t.f);
	assert_int_equal(wafl_root(t.f->v, &root), 0);
	assert_int_equal(wafl_getattr(t.f->v, &root, &ra), 0);
	t.m = tm_new(&root, &ra);
	tm_journal_start(&t.jn, t.m);
	mt_verify(&t, "mkfs");

	for (uint64_t i = 0; i < nops; i++) {
		uint64_t r = tm_below(&t.rng, 1000);
		if (r < 22)
			mt_cp(&t, "CP");
		else if (r < 24)
			mt_remount(&t);
		else if (r < 27)
			mt_replay(&t);
		else if (r < (rollback ? 60u : 37u))
			mt_snap_event(&t);
		mt_op(&t, go);
	}
	mt_cp(&t, "the last CP");
	mt_remount(&t);

	print_message("test_model %s: %" PRIu64 " operations (%" PRIu64
	    " expected errors: EEXIST %" PRIu64 " ENOENT %" PRIu64
	    " ENOTEMPTY %" PRIu64 " EISDIR %" PRIu64 " ENOTDIR %" PRIu64
	    " EINVAL %" PRIu64 " EFBIG %" PRIu64 "), %zu objects at the end; "
	    "%" PRIu64 " CPs, %" PRIu64 " remounts, %" PRIu64 " replays, "
	    "snapshots %" PRIu64 " created / %" PRIu64 " deleted / %" PRIu64
	    " rollbacks / %" PRIu64 " trees compared, %" PRIu64
	    " stale handles checked; %.1f s\n", label, t.nops, t.nerr,
	    t.errs[0], t.errs[1], t.errs[2], t.errs[3], t.errs[4], t.errs[5],
	    t.errs[6], tm_count(t.m), t.cps, t.remounts, t.replays, t.snapc,
	    t.snapd, t.rollbacks, t.snapchecks, t.stale_checks,
	    now_s() - t0);
	for (int i = 0; i < t.nsnaps; i++)
		tm_free(t.snaps[i].m);
	tm_journal_free(&t.jn);
	tm_free(t.m);
	scratch_note(NULL);
	tl_fs_destroy(t.f);
}

static uint64_t scaled(uint64_t n)
{
	double k = tm_scale() * (double)n;

	return k < 50 ? 50 : (uint64_t)k;
}

/* Everything, errors included, in a small name space (many collisions). */
static void test_model_mixed(void **state)
{
	struct tm_gen_opts go = {
		.name_pool = 10, .max_off = 192 * 1024, .far_off = 1ull << 40,
		.max_len = 16384, .big_writes = true, .odd_names = true,
		.errors = true, .exclusive = true, .max_nodes = 300,
	};

	run_model(tm_seed(), scaled(10000), &go, false, "mixed");
}

/* A wider name space: deeper trees, renames across directories. */
static void test_model_namespace(void **state)
{
	struct tm_gen_opts go = {
		.name_pool = 40, .max_off = 32 * 1024, .max_len = 4096,
		.errors = true, .exclusive = true, .max_nodes = 500,
	};

	run_model(tm_seed(), scaled(5000), &go, false, "namespace");
}

/* Snapshot rollback among everything else: the active tree becomes a
 * snapshot's, checked against the model of the snapshot's time. */
static void test_model_rollback(void **state)
{
	struct tm_gen_opts go = {
		.name_pool = 12, .max_off = 64 * 1024, .far_off = 1ull << 36,
		.max_len = 8192, .errors = true, .exclusive = true,
		.max_nodes = 200,
	};

	run_model(tm_seed(), scaled(2000), &go, true, "rollback");
}

int main(void)
{
	/* Power cuts are simulated in-process (NVLOG crash_sim, raid's fault
	 * injector); the host file system's fsync is not under test, so the
	 * volumes go to tmpfs unless TMPDIR says otherwise. */
	if (getenv("TMPDIR") == NULL && access("/dev/shm", W_OK) == 0)
		setenv("TMPDIR", "/dev/shm", 0);

	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_model_mixed, scratch_teardown),
		cmocka_unit_test_teardown(test_model_namespace, scratch_teardown),
		cmocka_unit_test_teardown(test_model_rollback, scratch_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
