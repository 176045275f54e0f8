/*
 * mirror/source.c: the source of a relationship.
 *
 * THEORY
 *   The destination serves the root it last adopted.  The source ships
 *   newer roots two ways, and every root it ships, and the one the
 *   destination acknowledged, stays held (wafl_hold_root) until a newer
 *   acknowledgement: so no later CP reuses a block the destination may
 *   still serve, and the destination's writes never touch such a block
 *   (M1).
 *
 *   cp (sync mode)  The CP observer copies each CP's blocks as the CP
 *       writes them, then its root, into a bounded backlog; the sender
 *       streams them as BEGIN(cp), BLOCK..., ROOT.  The observer never
 *       waits: past the bound the backlog is dropped and the relationship
 *       is catching up.  Only whole CPs are queued (a CP whose first block
 *       was not queued is skipped entirely).
 *   walk (baseline, catch-up, async)  Hold the newest root g, then send
 *       BEGIN(walk, d, g, fsinfo g), every block of g born after d
 *       (wafl_birth_walk, then the snapshot trees, snapwalk.c) and ROOT.
 *       g - d is kept odd (M2): when the newest root is an even distance
 *       away, the one before it is sent and the next round takes one step.
 *
 *   After a walk the backlog continues the stream at g + 1 if it holds
 *   that CP whole; otherwise another walk follows.  Either way the
 *   relationship returns to in-sync by itself.
 *
 * STATES  uninitialized -> transferring (baseline) -> in-sync <->
 *         catching-up; quiesced; (broken-off is the destination's)
 *
 * CONCURRENCY
 *   One sender thread owns the connection and the holds; during the
 *   walk of a transfer the connection is lent to the walk's pipe
 *   (wpipe.c), whose thread sends what the sender thread reads, and is
 *   back once mir_wpipe_finish returns.  The observer
 *   (CP thread) and callers share `lock` with it for the backlog and the
 *   statistics.  With nothing to send the thread waits on its socket for
 *   ACKs; whatever gives it work (a CP's blocks or root, kick, quiesce,
 *   stop) also writes its eventfd, so a CP never waits out that wait.
 *
 * HEARTBEATS
 *   The destination serves one connection at a time and must give up a
 *   source that vanished without closing its connection, or that
 *   source's restarted self would wait behind it for good.  It tells the
 *   two apart by silence: while the link is up the sender writes
 *   something at least every mir_heartbeat_ms (a quarter of the io
 *   timeout), a HEARTBEAT when it has nothing else to write (beat): idle
 *   in the session, waiting for an acknowledgement with every hold
 *   taken, and walking the blocks a resumed baseline does not send.
 *
 * RETRIES
 *   A link that drops is tried again after retry_ms (200 ms): the
 *   destination is most likely there again.  A session refused (the
 *   destination refuses the handshake: wrong key, link options, unknown
 *   relationship; or this side refuses it after STATUS: a volume too
 *   small, another file system, a root no longer retained) fails the
 *   same way until an administrator acts, so the wait after each refusal
 *   in a row doubles, from retry_ms up to retry_max_ms (30 s), and starts
 *   again at the first session begun.  An unknown relationship stops at
 *   2 s: the destination's half may only be starting.  A refusal is
 *   logged when it differs from the last one logged, else at most once a
 *   minute with the count of those not logged.  mir_source_retry (and
 *   resume) end the wait at once: an administrator's action on the
 *   relationship is tried without waiting out the back-off.
 */
#include <errno.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/assert.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "mirror/mir_impl.h"
#include "mirror/mirror.h"
#include "mirror/wire.h"

#define MAX_OWN_HOLDS	6u	/* of WAFL_MAX_HOLDS (8) */
#define MAX_UNACKED	(MAX_OWN_HOLDS + 2u)	/* held, and one that is not:
						   a resumed baseline's */
#define CPW_RING	256u	/* CPs whose block counts are kept */
#define RATE_WINDOW_NS	500000000ull	/* progress: rate sample period */
/* A refusal repeated unchanged is logged once in this long. */
#define REFUSAL_LOG_NS	60000000000ull
/* A destination that does not know the relationship (ECONNREFUSED,
 * "unknown relationship") may only be starting its half: the back-off
 * after that refusal stops here. */
#define RETRY_UNKNOWN_MAX_MS	2000u

enum { Q_BLOCKS = 1, Q_ROOT };

struct qitem {
	struct qitem *next;
	int type;
	uint64_t gen;
	uint64_t vbn;
	uint32_t n;
	struct wafl_cp_blkinfo *info;	/* blocks: n entries */
	uint8_t *blk[];		/* n pool blocks (wafl_blk_alloc), or the
				 * fsinfo block */
};

struct mir_source {
	wafl_vol_t *v;
	struct mir_source_opts o;
	uint8_t key[MIR_KEY_MAX];
	char host[256];
	pthread_t thr;
	bool running;
	_Atomic bool stop;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	/* observer (under lock) */
	bool armed;
	uint64_t obs_gen;
	bool obs_ok;
	struct qitem *qhead, **qtail;
	uint64_t backlog;
	bool overflow;
	bool quiesced, kicked;
	/* The sender thread waits on its socket for ACKs; new work (a CP's
	 * blocks or root, a kick, quiesce, stop) ends the wait at once
	 * through wake_fd (an eventfd), written only while idle is set. */
	bool idle;
	int wake_fd;
	struct mir_source_stats st;

	/* sender thread only */
	uint64_t holds[MAX_OWN_HOLDS];
	unsigned nholds;
	uint64_t acked, sent;
	/* Roots sent on this connection and not acknowledged yet, oldest
	 * first: the only generations an ACK may name. */
	uint64_t unacked[MAX_UNACKED];
	unsigned nunacked;
	bool need_walk;
	bool in_cp;			/* a cp transfer is open */
	uint64_t cp_gen;
	/* The destination's baseline checkpoint this session resumes
	 * (target generation, blocks of the walk it holds), or 0. */
	uint64_t resume_gen, resume_blocks;
	/* A resumed walk of this fallback base found a bad block: the next
	 * session starts the baseline over instead. */
	uint64_t base_walk_bad;
	/* The root a baseline (a walk from 0) is sending, or 0: kept held
	 * by mir_source_stop while nothing is acknowledged, so that a
	 * restarted source resumes it after the destination's checkpoint. */
	uint64_t baseline_gen;
	/* This connection's bytes and compressed BLOCKs so far (lock):
	 * published after every block, every round of the session and with
	 * every ACK, so the counters move while the link is up. */
	uint64_t conn_bytes_out, conn_compressed, conn_delta;
	/* Blocks each recent CP wrote (observer, under lock): the estimated
	 * size of a catch-up walk. */
	uint64_t cpw_gen[CPW_RING];
	uint64_t cpw_blocks[CPW_RING];
	uint64_t base_snap;		/* fallback snapshot's gen (M6) */

	/* Refusals (RETRIES above).  retry_now (lock) ends the back-off
	 * wait; the rest is the sender thread's. */
	bool retry_now;
	bool refused;			/* this attempt was refused */
	bool refused_unknown;		/* as an unknown relationship */
	uint32_t backoff_ms;		/* the last back-off (0: none) */
	struct fl_log_repeat refusal_log;
};

const char *mir_state_name(enum mir_state s)
{
	switch (s) {
	case MIR_UNINITIALIZED: return "uninitialized";
	case MIR_TRANSFERRING: return "transferring";
	case MIR_IN_SYNC: return "in-sync";
	case MIR_CATCHING_UP: return "catching-up";
	case MIR_QUIESCED: return "quiesced";
	case MIR_BROKEN_OFF: return "broken-off";
	}
	return "?";
}

/* Quiesced is reported once the thread has closed the link, and only
 * while the caller has not resumed meanwhile (mir_source_resume leaves
 * the state at once). */
static void set_state_locked(struct mir_source *s, enum mir_state st)
{
	if (st == MIR_QUIESCED && !s->quiesced)
		st = s->st.state;
	if (s->st.state != st) {
		fl_info("mirror", "source: %s -> %s",
		    mir_state_name(s->st.state), mir_state_name(st));
		s->st.state = st;
		/* In sync again: the last error is over, and becomes
		 * the resolved one. */
		if (st == MIR_IN_SYNC && s->st.last_error[0] != '\0') {
			fl_info("mirror", "source: in sync again (the last "
			    "error was: %s)", s->st.last_error);
			memcpy(s->st.resolved_error, s->st.last_error,
			    sizeof(s->st.resolved_error));
			s->st.resolved_time = (uint64_t)time(NULL);
			s->st.last_error[0] = '\0';
			s->st.last_error_time = 0;
		}
	}
}

static void set_state(struct mir_source *s, enum mir_state st)
{
	pthread_mutex_lock(&s->lock);
	set_state_locked(s, st);
	pthread_mutex_unlock(&s->lock);
}

static void set_error(struct mir_source *s, const char *what, int rc)
{
	pthread_mutex_lock(&s->lock);
	snprintf(s->st.last_error, sizeof(s->st.last_error), "%s: %s", what,
	    fl_strerror(rc));
	s->st.last_error_time = (uint64_t)time(NULL);
	pthread_mutex_unlock(&s->lock);
	fl_warn("mirror", "source: %s: %s", what, fl_strerror(rc));
}

/* A session refused, by either side: last_error says why (every time),
 * the log once per change of text or once a minute (RETRIES above). */
static void set_refusal(struct mir_source *s, const char *what, int rc)
{
	char msg[sizeof(s->st.last_error)];
	uint64_t now = fl_now_mono_ns();

	snprintf(msg, sizeof(msg), "%s: %s", what, fl_strerror(rc));
	pthread_mutex_lock(&s->lock);
	memcpy(s->st.last_error, msg, sizeof(msg));
	s->st.last_error_time = (uint64_t)time(NULL);
	pthread_mutex_unlock(&s->lock);
	s->refused = true;
	s->refused_unknown = rc == -ECONNREFUSED;
	uint64_t was_ns = s->refusal_log.ns, more;
	if (!fl_log_repeat_due(&s->refusal_log, msg, now, REFUSAL_LOG_NS,
	    &more))
		return;
	if (more > 0)
		fl_warn("mirror", "source: %s (refused %llu more times in the "
		    "last %llu s; retrying every %u ms)", msg,
		    (unsigned long long)more,
		    (unsigned long long)((now - was_ns) / 1000000000ull),
		    s->backoff_ms);
	else
		fl_warn("mirror", "source: %s", msg);
}

/* The open connection's counters, for status (under lock). */
static void conn_publish(struct mir_source *s, const struct mir_conn *c)
{
	s->conn_bytes_out = c->bytes_out;
	s->conn_compressed = c->blocks_compressed;
	s->conn_delta = c->blocks_delta;
}

/* ------------------------------------------------------------ backlog */

static int drain_acks(struct mir_source *s, struct mir_conn *c, int wait_ms);

/* Under lock: end the sender thread's idle wait. */
static void wake_sender(struct mir_source *s)
{
	uint64_t one = 1;

	if (!s->idle || s->wake_fd < 0)
		return;
	s->idle = false;
	if (write(s->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		fl_warn("mirror", "source: waking the sender: %s",
		    strerror(errno));
}

static void qitem_free(struct qitem *q)
{
	if (q == NULL)
		return;
	for (uint32_t i = 0; i < q->n; i++)
		wafl_blk_free(q->blk[i]);
	free(q->info);
	free(q);
}

static void queue_drop(struct mir_source *s)
{
	struct qitem *q = s->qhead;

	while (q != NULL) {
		struct qitem *n = q->next;
		qitem_free(q);
		q = n;
	}
	s->qhead = NULL;
	s->qtail = &s->qhead;
	s->backlog = 0;
}

static void queue_push(struct mir_source *s, int type, uint64_t gen,
    uint64_t vbn, uint32_t n, const uint8_t *const *blocks,
    const struct wafl_cp_blkinfo *info)
{
	size_t bytes = (size_t)n * WAFL_BLOCK_SIZE;

	if (s->backlog + bytes > s->o.backlog_max_bytes) {
		if (!s->overflow)
			fl_warn("mirror", "source: backlog over %llu bytes at "
			    "CP %llu: catching up instead",
			    (unsigned long long)s->o.backlog_max_bytes,
			    (unsigned long long)gen);
		s->overflow = true;
		s->obs_ok = false;
		s->st.overflows++;
		queue_drop(s);
		return;
	}
	/* The copies go to pool blocks: memory already faulted in.  A
	 * CP's worth of fresh malloc memory (tens of megabytes, given back
	 * when sent) cost a page fault per 4 KiB, on the CP's thread. */
	struct qitem *q = calloc(1, sizeof(*q) + n * sizeof(q->blk[0]));
	struct wafl_cp_blkinfo *in = info != NULL && q != NULL ?
	    malloc(n * sizeof(*in)) : NULL;
	bool ok = q != NULL && (info == NULL || in != NULL);
	if (q != NULL)
		q->info = in;
	for (uint32_t i = 0; ok && i < n; i++) {
		q->blk[i] = wafl_blk_alloc();
		ok = q->blk[i] != NULL;
		if (ok) {
			memcpy(q->blk[i], blocks[i], WAFL_BLOCK_SIZE);
			q->n = i + 1;
		}
	}
	if (!ok) {
		qitem_free(q);
		s->overflow = true;
		s->obs_ok = false;
		queue_drop(s);
		return;
	}
	if (in != NULL)
		memcpy(in, info, n * sizeof(*in));
	q->type = type;
	q->gen = gen;
	q->vbn = vbn;
	*s->qtail = q;
	s->qtail = &q->next;
	s->backlog += bytes;
	pthread_cond_broadcast(&s->cond);
	wake_sender(s);
}

static void obs_blocks(void *arg, uint64_t gen, uint64_t first_vbn,
    uint32_t n, const uint8_t *const *blocks,
    const struct wafl_cp_blkinfo *info)
{
	struct mir_source *s = arg;

	pthread_mutex_lock(&s->lock);
	unsigned slot = (unsigned)(gen % CPW_RING);
	if (s->cpw_gen[slot] != gen) {
		s->cpw_gen[slot] = gen;
		s->cpw_blocks[slot] = 0;
	}
	s->cpw_blocks[slot] += n;
	if (gen != s->obs_gen) {
		s->obs_gen = gen;
		s->obs_ok = s->armed && !s->overflow;	/* whole CPs only */
	}
	if (s->obs_ok)
		queue_push(s, Q_BLOCKS, gen, first_vbn, n, blocks, info);
	pthread_mutex_unlock(&s->lock);
}

static void obs_root(void *arg, uint64_t gen, const void *fsinfo)
{
	struct mir_source *s = arg;

	pthread_mutex_lock(&s->lock);
	if (s->obs_ok && gen == s->obs_gen)
		queue_push(s, Q_ROOT, gen, 0, 1,
		    (const uint8_t *const[]){ fsinfo }, NULL);
	s->obs_ok = false;
	s->st.source_gen = gen;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

/* mir_source_quiesce was called (and no resume since). */
static bool quiesce_wanted(struct mir_source *s)
{
	pthread_mutex_lock(&s->lock);
	bool q = s->quiesced;
	pthread_mutex_unlock(&s->lock);
	return q;
}

static struct qitem *queue_pop(struct mir_source *s)
{
	pthread_mutex_lock(&s->lock);
	struct qitem *q = s->qhead;
	if (q != NULL) {
		s->qhead = q->next;
		if (s->qhead == NULL)
			s->qtail = &s->qhead;
		s->backlog -= (uint64_t)q->n * WAFL_BLOCK_SIZE;
	}
	pthread_mutex_unlock(&s->lock);
	return q;
}


/* -------------------------------------------------------------- holds */

static bool held(struct mir_source *s, uint64_t gen)
{
	for (unsigned i = 0; i < s->nholds; i++)
		if (s->holds[i] == gen)
			return true;
	return false;
}

/* Hold gen's root once.  A root just written may not be in the ring yet
 * (the CP publishes it after the observer ran): wait for it briefly. */
static int hold(struct mir_source *s, uint64_t gen)
{
	int rc;

	if (held(s, gen))
		return 0;
	if (s->nholds == MAX_OWN_HOLDS)
		return -ENOSPC;
	for (int i = 0;; i++) {
		rc = wafl_hold_root(s->v, gen);
		if (rc != -ENOENT || wafl_generation(s->v) >= gen || i > 5000)
			break;
		usleep(1000);
	}
	if (rc == 0)
		s->holds[s->nholds++] = gen;
	return rc;
}

/* Hold the newest root at an odd distance from d (M2), chosen and held
 * at once: CPs completing meanwhile cannot take it out of the ring. */
static int hold_newest(struct mir_source *s, uint64_t d, uint64_t *g)
{
	int rc;

	if (s->nholds == MAX_OWN_HOLDS)
		return -ENOSPC;
	rc = wafl_hold_newest(s->v, d, g);
	if (rc != 0)
		return rc;
	if (held(s, *g))
		wafl_release_root(s->v, *g);	/* one reference each */
	else
		s->holds[s->nholds++] = *g;
	return 0;
}

/* Release every hold but those in [keep_from, inf) and `also`. */
static void release_below(struct mir_source *s, uint64_t keep_from,
    uint64_t also)
{
	for (unsigned i = 0; i < s->nholds;) {
		if (s->holds[i] < keep_from && s->holds[i] != also) {
			wafl_release_root(s->v, s->holds[i]);
			s->holds[i] = s->holds[--s->nholds];
		} else {
			i++;
		}
	}
}

static void release_all(struct mir_source *s)
{
	release_below(s, UINT64_MAX, 0);
}

/* ------------------------------------------------------------ sending */

static int send_root(struct mir_conn *c, uint64_t gen, const void *fsinfo)
{
	struct mir_root r = { .gen = gen, .fsinfo = fsinfo };

	mir_root_encode(mir_conn_payload(c), &r);
	return mir_send_buf(c, MIR_MSG_ROOT, 8 + MIR_BLOCK);
}

/* Root gen went out: its acknowledgement may come.  More roots than the
 * holds allow are never outstanding; the oldest would go first. */
static void note_sent(struct mir_source *s, uint64_t gen)
{
	if (s->nunacked == MAX_UNACKED) {
		s->nunacked--;
		memmove(s->unacked, s->unacked + 1,
		    s->nunacked * sizeof(s->unacked[0]));
	}
	s->unacked[s->nunacked++] = gen;
}

/* Take one ACK (or ERROR) frame; the caller knows one is waiting. */
static int take_ack(struct mir_source *s, struct mir_conn *c)
{
	struct mir_hdr h;
	uint64_t a;
	int rc = mir_recv(c, &h);

	if (rc != 0)
		return rc;
	if (h.type == MIR_MSG_ERROR) {
		struct mir_error e;
		if (mir_error_decode(mir_conn_payload(c), h.length, &e) == 0)
			fl_warn("mirror", "source: destination reports: %s",
			    e.text);
		return -ECONNABORTED;
	}
	if (h.type != MIR_MSG_ACK ||
	    mir_u64_decode(mir_conn_payload(c), h.length, &a) != 0)
		return FL_ERR(-FL_EPROTO);
	/* Only a root sent and not yet acknowledged.  A walk from d to g
	 * sends root g alone; an acknowledgement of a generation between
	 * them, or of one acknowledged already, would release roots the
	 * destination may still serve (M1). */
	unsigned k = 0;
	while (k < s->nunacked && s->unacked[k] != a)
		k++;
	if (a <= s->acked || a > s->sent || k == s->nunacked) {
		fl_warn("mirror", "source: the destination acknowledges "
		    "generation %llu, which was not sent to it (acknowledged "
		    "%llu, sent %llu): closing the link",
		    (unsigned long long)a, (unsigned long long)s->acked,
		    (unsigned long long)s->sent);
		return FL_ERR(-FL_EPROTO);
	}
	s->acked = a;
	s->nunacked -= k + 1;
	memmove(s->unacked, s->unacked + k + 1,
	    s->nunacked * sizeof(s->unacked[0]));
	release_below(s, a, 0);
	if (s->base_snap != 0 && a > s->base_snap &&
	    mir_base_drop_older(s->v, a) == 0) {
		s->base_snap = mir_base_snapshot(s->v, 0);
		pthread_mutex_lock(&s->lock);
		s->st.base_snap_gen = s->base_snap;
		pthread_mutex_unlock(&s->lock);
	}
	pthread_mutex_lock(&s->lock);
	s->st.acked_gen = a;
	conn_publish(s, c);	/* the transfer's bytes, whole */
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/*
 * Nothing to send: wait up to wait_ms for an ACK, or until new work is
 * queued (wake_sender), whichever is first.  Without the wake-up a CP's
 * first blocks and its root would sit in the queue for the rest of the
 * wait.
 */
static int idle_wait(struct mir_source *s, struct mir_conn *c, int wait_ms)
{
	uint64_t v;
	int rc;

	pthread_mutex_lock(&s->lock);
	bool work = s->qhead != NULL || s->kicked || s->quiesced ||
	    s->overflow || s->stop;
	s->idle = !work;
	pthread_mutex_unlock(&s->lock);
	rc = mir_readable_or(c, work ? 0 : wait_ms, s->wake_fd);
	pthread_mutex_lock(&s->lock);
	s->idle = false;
	pthread_mutex_unlock(&s->lock);
	while (s->wake_fd >= 0 && read(s->wake_fd, &v, sizeof(v)) > 0)
		;
	if (rc <= 0)
		return rc;
	rc = take_ack(s, c);
	return rc != 0 ? rc : drain_acks(s, c, 0);
}

static int drain_acks(struct mir_source *s, struct mir_conn *c, int wait_ms)
{
	int rc;

	while ((rc = mir_readable(c, wait_ms)) > 0) {
		rc = take_ack(s, c);
		if (rc != 0)
			return rc;
		wait_ms = 0;
	}
	return rc;
}

/* Nothing written on the link for a heartbeat interval: a HEARTBEAT, so
 * that the destination knows this source is alive (HEARTBEATS above). */
static int beat(struct mir_source *s, struct mir_conn *c)
{
	uint32_t ms = mir_heartbeat_ms(s->o.io_timeout_ms);
	uint8_t p[MIR_HEARTBEAT_SIZE];

	if (fl_now_mono_ns() - c->tx_ns < (uint64_t)ms * 1000000ull)
		return 0;
	mir_heartbeat_encode(p, ms);
	return mir_send(c, MIR_MSG_HEARTBEAT, p, sizeof(p));
}

struct walk_ctx {
	struct mir_source *s;
	struct mir_conn *c;
	uint64_t target;
	uint64_t blocks;
	struct mir_vset *seen;
	/* Shared by the active and snapshot walks of one transfer. */
	struct walk_prog *prog;
};

/* Position in the walk's block order, and progress for status. */
struct walk_prog {
	uint64_t pos;			/* blocks of the walk passed so far */
	uint64_t skip;			/* the first `skip` are not sent */
	uint64_t t_sample, bytes_sample;
	double rate;			/* bytes/s, moving average */
};

/* Progress after one more block (sent or not). */
static void walk_progress(struct mir_source *s, struct walk_prog *p,
    bool final)
{
	uint64_t now = fl_now_mono_ns();

	if (!final && now - p->t_sample < RATE_WINDOW_NS)
		return;
	pthread_mutex_lock(&s->lock);
	uint64_t done = s->st.walk_bytes_done;
	double dt = (double)(now - p->t_sample) / 1e9;
	if (dt > 0 && p->t_sample != 0) {
		double r = (double)(done - p->bytes_sample) / dt;
		/* Half-second samples, weight 0.2: about 5 s of memory. */
		p->rate = p->rate == 0 ? r : 0.8 * p->rate + 0.2 * r;
	}
	p->t_sample = now;
	p->bytes_sample = done;
	s->st.walk_rate_bps = (uint64_t)p->rate;
	uint64_t total = s->st.walk_bytes_total;
	if (total != 0 && total < done)
		total = s->st.walk_bytes_total = done;	/* beyond estimate */
	if (final)
		s->st.walk_eta_s = 0;
	else if (total == 0 || p->rate < 1)
		s->st.walk_eta_s = UINT64_MAX;
	else
		s->st.walk_eta_s = (uint64_t)((double)(total - done) /
		    p->rate + 0.5);
	pthread_mutex_unlock(&s->lock);
}

static int walk_send(void *arg, uint64_t vbn, uint64_t birth,
    uint32_t cksum, const void *data, unsigned flags)
{
	struct walk_ctx *w = arg;
	struct walk_prog *p = w->prog;
	int rc;

	if (w->s->stop)
		return -ECANCELED;
	/* A quiesce ends a walk too (a throttled baseline may take hours):
	 * the holds stay, and resume continues after the checkpoint. */
	if ((p->pos & 15) == 0 && quiesce_wanted(w->s))
		return -ECANCELED;
	/* Blocks a resumed baseline skips, or slow reads: nothing written. */
	if ((p->pos & 15) == 0 && (rc = beat(w->s, w->c)) != 0)
		return rc;
	if (w->seen != NULL) {
		rc = mir_vset_add(w->seen, vbn);
		if (rc < 0)
			return rc;
	}
	/* A resumed baseline: the destination holds the walk's first
	 * blocks (same held root, same order). */
	if (p->pos++ < p->skip) {
		pthread_mutex_lock(&w->s->lock);
		w->s->st.walk_bytes_done += WAFL_BLOCK_SIZE;
		pthread_mutex_unlock(&w->s->lock);
		p->bytes_sample += WAFL_BLOCK_SIZE;	/* not in the rate */
		return 0;
	}
	w->blocks++;
	rc = mir_send_block_win(w->c, w->target, vbn, birth, cksum, data, 0,
	    (flags & WAFL_WALK_META) != 0);
	pthread_mutex_lock(&w->s->lock);
	w->s->st.walk_bytes_done += WAFL_BLOCK_SIZE;
	conn_publish(w->s, w->c);
	pthread_mutex_unlock(&w->s->lock);
	walk_progress(w->s, p, false);
	return rc;
}

/* The walk's size in bytes, estimated: a baseline sends the root's blocks
 * in use (snapshot-only blocks besides), a catch-up at most what the CPs
 * after d wrote.  0 if unknown. */
static uint64_t walk_estimate(struct mir_source *s, uint64_t d, uint64_t g,
    const struct wafl_fsinfo *f)
{
	uint64_t blocks = 0;

	if (d == 0) {
		uint8_t *blk = malloc(WAFL_BLOCK_SIZE);
		struct wafl_rootblk rb;
		if (blk != NULL && s->o.raid != NULL &&
		    raid_read(s->o.raid, f->root.vbn, 1, blk) == 0 &&
		    wafl_rootblk_decode(blk, &rb) == 0)
			blocks = rb.blocks_used;
		free(blk);
		if (blocks == 0) {
			struct wafl_fsstat fs;
			if (wafl_statfs(s->v, &fs) == 0)
				blocks = (fs.tbytes - fs.fbytes) /
				    WAFL_BLOCK_SIZE;
		}
		return blocks * WAFL_BLOCK_SIZE;
	}
	if (g - d > CPW_RING)
		return 0;
	pthread_mutex_lock(&s->lock);
	for (uint64_t gen = d + 1; gen <= g; gen++) {
		unsigned slot = (unsigned)(gen % CPW_RING);
		if (s->cpw_gen[slot] != gen) {
			blocks = 0;	/* a CP not observed: unknown */
			break;
		}
		blocks += s->cpw_blocks[slot];
	}
	pthread_mutex_unlock(&s->lock);
	return blocks * WAFL_BLOCK_SIZE;
}

/*
 * A transfer by birth generation from s->sent (0: baseline) to the newest
 * root at an odd distance (M2).
 */
static int do_walk(struct mir_source *s, struct mir_conn *c)
{
	uint64_t d = s->sent, g = 0;
	uint8_t *fsi = NULL;
	struct wafl_fsinfo f;
	struct mir_vset seen = { 0 };
	struct wafl_bp snaps[MIR_MAX_SNAP_ROOTS];
	size_t nsnaps = 0;
	int rc;

	struct walk_prog prog = { 0 };

	if (d == 0 && s->resume_gen != 0) {
		/* Resume the destination's checkpointed baseline: its
		 * target is held here, or kept by a fallback snapshot
		 * (session_start checked). */
		g = s->resume_gen;
		prog.skip = s->resume_blocks;
		rc = 0;
	}
	if (g == 0) {
		if (wafl_generation(s->v) <= d) {
			s->need_walk = false;
			return 0;
		}
		rc = hold_newest(s, d, &g);
		if (rc == -EALREADY) {
			s->need_walk = false;
			return 0;
		}
	}
	s->resume_gen = s->resume_blocks = 0;
	if (rc != 0) {
		set_error(s, "hold for a transfer", rc);
		return rc;
	}
	if (d == 0)
		s->baseline_gen = g;
	set_state(s, d == 0 ? MIR_TRANSFERRING : MIR_CATCHING_UP);
	fsi = malloc(WAFL_BLOCK_SIZE);
	if (fsi == NULL)
		return -ENOMEM;
	rc = wafl_root_of(s->v, g, fsi);
	if (rc == 0)
		rc = wafl_fsinfo_decode(fsi, &f);
	if (rc == 0 && s->o.raid != NULL)
		rc = mir_snap_roots(s->o.raid, &f, d, snaps,
		    MIR_MAX_SNAP_ROOTS, &nsnaps);
	if (rc != 0) {
		set_error(s, "reading the root to send", rc);
		goto out;
	}
	struct mir_begin b = { .kind = MIR_XFER_WALK, .base = d, .target = g,
	    .resume = prog.skip };
	memcpy(b.fsinfo, fsi, WAFL_BLOCK_SIZE);
	mir_begin_encode(mir_conn_payload(c), &b);
	rc = mir_send_buf(c, MIR_MSG_BEGIN, 32 + MIR_BLOCK);
	if (rc != 0)
		goto out;
	uint64_t est = walk_estimate(s, d, g, &f);
	pthread_mutex_lock(&s->lock);
	s->st.walk_active = true;
	s->st.walk_bytes_done = 0;
	s->st.walk_bytes_total = est;
	s->st.walk_rate_bps = 0;
	s->st.walk_eta_s = UINT64_MAX;
	if (prog.skip != 0) {
		s->st.baseline_resumes++;
		s->st.blocks_not_resent += prog.skip;
	}
	pthread_mutex_unlock(&s->lock);
	prog.t_sample = fl_now_mono_ns();
	if (prog.skip != 0)
		fl_info("mirror", "source: baseline of generation %llu resumes "
		    "after the %llu blocks the destination checkpointed",
		    (unsigned long long)g, (unsigned long long)prog.skip);
	else
		fl_info("mirror", "source: transfer of generation %llu after "
		    "%llu (%zu snapshot trees, about %llu MiB)",
		    (unsigned long long)g, (unsigned long long)d, nsnaps,
		    (unsigned long long)(est >> 20));
	struct walk_ctx w = { .s = s, .c = c, .target = g,
	    .seen = nsnaps > 0 ? &seen : NULL, .prog = &prog };
	/* Read on this thread, send on the pipe's (wpipe.c): the disks
	 * and the link work at once. */
	struct mir_wpipe *pipe;
	rc = mir_wpipe_start(walk_send, &w, &pipe);
	if (rc == 0)
		rc = mir_wpipe_finish(pipe, wafl_birth_walk(s->v, g, d,
		    mir_wpipe_push, pipe));
	for (size_t i = 0; rc == 0 && i < nsnaps; i++) {
		struct walk_ctx ws = w;
		ws.seen = NULL;	/* mir_tree_walk adds to seen itself */
		ws.blocks = 0;
		rc = mir_tree_walk(s->o.raid, &snaps[i], d, &seen, walk_send,
		    &ws);
		w.blocks += ws.blocks;
	}
	if (rc == 0 && prog.pos < prog.skip) {
		/* The checkpoint names more blocks than this walk has,
		 * which the same root cannot do.  The destination verified
		 * what it holds against this root's checksums, so its
		 * verdict on the ROOT stands; say it. */
		fl_warn("mirror", "source: the destination's checkpoint (%llu "
		    "blocks) is longer than the walk (%llu)",
		    (unsigned long long)prog.skip,
		    (unsigned long long)prog.pos);
	}
	if (rc == 0)
		rc = send_root(c, g, fsi);
	walk_progress(s, &prog, true);
	pthread_mutex_lock(&s->lock);
	s->st.walk_active = false;
	s->st.blocks_sent_walk += w.blocks;	/* interrupted ones too */
	pthread_mutex_unlock(&s->lock);
	if (rc == -ECANCELED)
		goto out;		/* stopped or quiesced: no error */
	if (rc != 0) {
		set_error(s, "transfer by birth generation", rc);
		/* A tree only a fallback snapshot kept, read after all: the
		 * next session starts the baseline over rather than try the
		 * same walk again. */
		if (rc == -FL_ECORRUPT && d == 0 && !held(s, g))
			s->base_walk_bad = g;
		goto out;
	}
	s->sent = g;
	note_sent(s, g);
	s->need_walk = false;
	pthread_mutex_lock(&s->lock);
	s->st.sent_gen = g;
	s->st.transfers_walk++;
	s->st.last_walk_blocks = w.blocks;
	s->st.last_walk_base = d;
	s->st.last_walk_target = g;
	pthread_mutex_unlock(&s->lock);
out:
	mir_vset_free(&seen);
	free(fsi);
	return rc;
}

/* Send one backlog item of the CP stream. */
static int send_item(struct mir_source *s, struct mir_conn *c,
    struct qitem *q)
{
	int rc = 0;

	if (q->gen <= s->sent && !s->in_cp)
		return 0;		/* covered by a walk */
	if (!s->in_cp) {
		if (q->gen != s->sent + 1 || q->type != Q_BLOCKS) {
			s->need_walk = true;	/* a gap in the stream */
			return 0;
		}
		struct mir_begin b = { .kind = MIR_XFER_CP, .base = s->sent,
		    .target = q->gen };
		mir_begin_encode(mir_conn_payload(c), &b);
		rc = mir_send_buf(c, MIR_MSG_BEGIN, 32 + MIR_BLOCK);
		if (rc != 0)
			return rc;
		s->in_cp = true;
		s->cp_gen = q->gen;
		/* The stream continues from what was sent, CP by CP as
		 * they are written: in sync from here (after a catch-up
		 * walk, not only once the stream falls idle). */
		set_state(s, MIR_IN_SYNC);
	}
	if (q->gen != s->cp_gen)
		return FL_ERR(-EINVAL);	/* a CP without its root: internal */
	if (q->type == Q_BLOCKS) {
		for (uint32_t i = 0; i < q->n && rc == 0; i++)
			rc = mir_send_block_win(c, q->gen, q->vbn + i, q->gen,
			    q->info[i].cksum, q->blk[i],
			    q->info[i].prev_vbn, q->info[i].meta);
		pthread_mutex_lock(&s->lock);
		s->st.blocks_sent_cp += q->n;
		conn_publish(s, c);
		pthread_mutex_unlock(&s->lock);
		return rc;
	}
	/* The root: hold it before the destination can serve it (M1).
	 * With every hold taken, wait for an acknowledgement, but not past
	 * the fallback bound: a destination that takes frames and never
	 * acknowledges would otherwise keep the frees behind its roots
	 * pending for good.  Giving the link up lets fallback_check turn
	 * those roots into snapshots (M6) before the next connection. */
	while (s->nholds >= MAX_OWN_HOLDS && rc == 0 && !s->stop) {
		rc = beat(s, c);
		if (rc == 0)
			rc = drain_acks(s, c, 100);
		if (rc == 0 && quiesce_wanted(s))
			rc = -ECANCELED;	/* the link closes: quiesced */
		if (rc == 0 && s->nholds >= MAX_OWN_HOLDS &&
		    wafl_pending_blocks_unpinned(s->v) > s->o.fallback_blocks) {
			rc = -ETIMEDOUT;
			set_error(s, "no acknowledgement while the frees behind "
			    "the destination's roots passed the fallback bound",
			    rc);
		}
	}
	if (rc != 0)
		return rc;
	rc = hold(s, q->gen);
	if (rc != 0) {
		uint8_t p[8];
		mir_u64_encode(p, q->gen);
		s->in_cp = false;
		s->need_walk = true;
		fl_warn("mirror", "source: cannot hold CP %llu (%s): catching "
		    "up instead", (unsigned long long)q->gen, fl_strerror(rc));
		return mir_send(c, MIR_MSG_ABORT, p, 8);
	}
	rc = send_root(c, q->gen, q->blk[0]);
	if (rc != 0)
		return rc;
	s->in_cp = false;
	s->sent = q->gen;
	note_sent(s, q->gen);
	pthread_mutex_lock(&s->lock);
	s->st.sent_gen = q->gen;
	s->st.transfers_cp++;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/*
 * The target of an interrupted baseline that a fallback turned into
 * snapshot mirror.base.<gen> while the destination was away: the
 * snapshot's root is that root exactly (M6), and an adopted root keeps
 * the snapshots it names (wafl_snap_adopt_root), which the walk sends
 * too, so the baseline resumes from it instead of starting over.  It is
 * not held again (a hold is taken only on a ring or held root): the walk
 * reads it while the snapshot lasts, and the snapshot goes only once the
 * destination acknowledges a newer root.  Deleted by hand meanwhile (or
 * adopted by an older version, whose base did not keep its snapshots),
 * the walk fails its checksums and the next session starts over.
 */
static bool base_resumable(struct mir_source *s, uint64_t gen)
{
	if (mir_base_snapshot(s->v, gen) != gen || gen == s->base_walk_bad)
		return false;
	fl_info("mirror", "source: the baseline's root %llu is kept by "
	    "fallback snapshot mirror.base.%llu: the baseline resumes from it",
	    (unsigned long long)gen, (unsigned long long)gen);
	return true;
}

/* Connected and authenticated: decide where the destination stands.  A
 * refusal is told to the destination too (ERROR), before the link
 * closes, so that its status says why nothing comes. */
static int session_start(struct mir_source *s, struct mir_conn *c,
    const struct mir_status_msg *sm)
{
	uint8_t fsi[WAFL_BLOCK_SIZE];
	struct wafl_fsinfo f;
	int rc;

	rc = wafl_root_of(s->v, wafl_generation(s->v), fsi);
	if (rc == 0)
		rc = wafl_fsinfo_decode(fsi, &f);
	if (rc != 0)
		return rc;
	if (sm->nvbns < f.nvbns) {
		/* The destination would refuse every root: say why here. */
		char what[128];
		snprintf(what, sizeof(what), "the destination's volume has %llu "
		    "blocks, fewer than this file system's %llu",
		    (unsigned long long)sm->nvbns, (unsigned long long)f.nvbns);
		set_refusal(s, what, -ENOSPC);
		mir_send_error_quiet(c, ENOSPC, "the destination's volume has "
		    "%llu blocks, fewer than the source's file system's %llu",
		    (unsigned long long)sm->nvbns, (unsigned long long)f.nvbns);
		return -ENOSPC;
	}
	bool same_fs = sm->has_fs && memcmp(sm->fs_uuid, f.fs_uuid, 16) == 0;
	if (!same_fs) {
		if (!s->o.allow_baseline) {
			set_refusal(s, "destination holds another file system "
			    "and baselines are not allowed", -EPERM);
			mir_send_error_quiet(c, EPERM, "the destination holds "
			    "another file system, and the source may not send "
			    "it a baseline");
			return -EPERM;
		}
		s->resume_gen = s->resume_blocks = 0;
		if (sm->ckpt_gen != 0 &&
		    memcmp(sm->fs_uuid, f.fs_uuid, 16) == 0 &&
		    (held(s, sm->ckpt_gen) || base_resumable(s, sm->ckpt_gen))) {
			/* An interrupted baseline whose target is still held
			 * here: continue it where the destination's
			 * checkpoint says. */
			release_below(s, UINT64_MAX, sm->ckpt_gen);
			s->resume_gen = sm->ckpt_gen;
			s->resume_blocks = sm->ckpt_blocks;
		} else {
			if (sm->ckpt_gen != 0) {
				fl_warn("mirror", "source: the destination "
				    "checkpointed a baseline of generation "
				    "%llu (%llu blocks), which is not held "
				    "here (%s): the baseline starts over",
				    (unsigned long long)sm->ckpt_gen,
				    (unsigned long long)sm->ckpt_blocks,
				    memcmp(sm->fs_uuid, f.fs_uuid, 16) != 0 ?
				    "another file system" : "the source "
				    "restarted or released it");
				pthread_mutex_lock(&s->lock);
				s->st.baseline_restarts++;
				snprintf(s->st.last_error,
				    sizeof(s->st.last_error), "baseline "
				    "started over: the destination's "
				    "checkpoint (generation %llu, %llu "
				    "blocks) is not held here",
				    (unsigned long long)sm->ckpt_gen,
				    (unsigned long long)sm->ckpt_blocks);
				s->st.last_error_time = (uint64_t)time(NULL);
				pthread_mutex_unlock(&s->lock);
			}
			release_all(s);
		}
		s->acked = s->sent = 0;
	} else {
		/* Its root must be retained here, or its blocks may have
		 * been reused since: then no incremental transfer is safe. */
		rc = hold(s, sm->gen);
		if (rc != 0 && s->base_snap != 0 &&
		    mir_base_snapshot(s->v, sm->gen) == sm->gen)
			rc = 0;		/* retained by the snapshot (M6) */
		if (rc != 0) {
			set_refusal(s, "the destination's generation is no "
			    "longer retained here (resync needed)", rc);
			mir_send_error_quiet(c, rc, "the destination's "
			    "generation %llu is no longer retained on the "
			    "source (resync needed)",
			    (unsigned long long)sm->gen);
			return rc;
		}
		release_below(s, UINT64_MAX, sm->gen);
		s->acked = s->sent = sm->gen;
	}
	s->backoff_ms = 0;
	s->refusal_log = (struct fl_log_repeat){ 0 };
	pthread_mutex_lock(&s->lock);
	s->st.sessions++;
	s->st.retry_delay_ms = 0;
	s->st.acked_gen = s->acked;
	s->st.sent_gen = s->sent;
	/* A destination that already serves the newest root is in sync from
	 * the moment that is published: status never shows it acknowledged
	 * with no lag and still catching up. */
	if (s->o.mode == MIR_SYNC && s->acked != 0 &&
	    s->acked >= wafl_generation(s->v))
		set_state_locked(s, MIR_IN_SYNC);
	queue_drop(s);
	s->overflow = false;
	s->armed = s->o.mode == MIR_SYNC;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	s->in_cp = false;
	s->need_walk = true;
	s->nunacked = 0;
	return 0;
}

static int session(struct mir_source *s, struct mir_conn *c)
{
	int rc = 0;

	while (rc == 0 && !s->stop) {
		pthread_mutex_lock(&s->lock);
		conn_publish(s, c);
		bool quiesced = s->quiesced;
		bool overflow = s->overflow;
		if (s->kicked)
			s->need_walk = true;
		s->kicked = false;
		if (overflow) {
			queue_drop(s);
			s->overflow = false;
		}
		pthread_mutex_unlock(&s->lock);
		if (quiesced)
			return -ECANCELED;
		if (overflow) {
			if (s->in_cp) {
				uint8_t p[8];
				mir_u64_encode(p, s->cp_gen);
				rc = mir_send(c, MIR_MSG_ABORT, p, 8);
				s->in_cp = false;
			}
			s->need_walk = true;
		}
		if (rc == 0 && s->need_walk && !s->in_cp)
			rc = do_walk(s, c);
		if (rc != 0)
			break;
		struct qitem *q = queue_pop(s);
		if (q != NULL) {
			rc = send_item(s, c, q);
			qitem_free(q);
			if (rc == 0)
				rc = drain_acks(s, c, 0);
			continue;
		}
		/* Idle with the stream behind the volume: CPs that were
		 * not queued whole (armed mid-CP, overflow) need a walk. */
		if (!s->in_cp && s->o.mode == MIR_SYNC &&
		    wafl_generation(s->v) > s->sent) {
			pthread_mutex_lock(&s->lock);
			bool empty = s->qhead == NULL;
			pthread_mutex_unlock(&s->lock);
			if (empty && wafl_generation(s->v) > s->sent) {
				s->need_walk = true;
				continue;
			}
		}
		if (!s->in_cp && !s->need_walk)
			set_state(s, MIR_IN_SYNC);
		rc = beat(s, c);
		if (rc == 0)
			rc = idle_wait(s, c, 20);
	}
	return rc;
}

/* The destination is away: past the bound its root becomes a snapshot
 * and every hold goes (retain.c, M6). */
static void fallback_check(struct mir_source *s)
{
	uint64_t base = 0;

	if (s->nholds == 0)
		return;			/* nothing held: nothing pending */
	if (s->acked != 0) {
		/* Back from an earlier fallback, the destination serves a
		 * root a fallback snapshot keeps: the roots sent since are
		 * the holds, and they are bounded the same way (they used
		 * to stay held for as long as it stayed away). */
		if (mir_base_snapshot(s->v, s->acked) == s->acked) {
			if (wafl_pending_blocks_unpinned(s->v) <=
			    s->o.fallback_blocks)
				return;
		} else if (!held(s, s->acked) ||
		    mir_base_fallback(s->v, s->acked,
		    s->o.fallback_blocks) != 1) {
			return;
		}
		base = s->acked;
		/* Every root sent since: the destination may have adopted
		 * one whose acknowledgement the link lost (M1), and serve
		 * it when it comes back. */
		for (unsigned i = 0; i < s->nholds; i++)
			if (s->holds[i] > s->acked &&
			    mir_base_fallback(s->v, s->holds[i], 0) != 1)
				return;
	} else {
		/* Restarted while the destination is away: which adopted
		 * root it serves is not known yet, so each becomes a
		 * snapshot (a few: what the last run had sent). */
		if (wafl_pending_blocks_unpinned(s->v) <=
		    s->o.fallback_blocks)
			return;
		for (unsigned i = 0; i < s->nholds; i++) {
			if (mir_base_fallback(s->v, s->holds[i], 0) != 1)
				return;
			if (s->holds[i] > base)
				base = s->holds[i];
		}
	}
	/* M6: once the holds go, the snapshot retains the served root. */
	ASSERT(mir_base_snapshot(s->v, base) == base);
	release_all(s);
	s->base_snap = base;
	if (s->acked != 0)
		s->sent = s->acked;
	pthread_mutex_lock(&s->lock);
	s->st.fallbacks++;
	s->st.base_snap_gen = base;
	pthread_mutex_unlock(&s->lock);
}

/* Wait ms before the next attempt, or less: stop or an administrator's
 * action (mir_source_retry, resume) ends it, and so does a quiesce when
 * the wait is a back-off after refusals (a quiesce after a link loss
 * takes effect once retry_ms has passed, as it always did). */
static void retry_wait(struct mir_source *s, uint32_t ms, bool backoff)
{
	struct timespec ts;
	int rc = 0;

	fl_deadline_ts(&ts, (uint64_t)ms * 1000u);
	pthread_mutex_lock(&s->lock);
	while (rc == 0 && !s->stop && !s->retry_now &&
	    !(backoff && s->quiesced))
		rc = pthread_cond_timedwait(&s->cond, &s->lock, &ts);
	s->retry_now = false;
	pthread_mutex_unlock(&s->lock);
}

static void *source_thread(void *arg)
{
	struct mir_source *s = arg;
	struct mir_peer_cfg pc = { .key = s->key, .key_len = s->o.key_len };

	(void)pthread_setname_np(pthread_self(), "mir-source");
	memcpy(pc.id, s->o.rel_id, MIR_ID_SIZE);
	pc.compress = s->o.compress;
	pc.tls = s->o.tls;
	uint64_t quiesce_check_ns = 0;
	while (!s->stop) {
		if (quiesce_wanted(s)) {
			set_state(s, MIR_QUIESCED);
			/* The link is closed: the destination is away, and
			 * the frees behind its held roots are bounded as
			 * for any absence (a quiesce may last days); looked
			 * at once a second (a scan of the pending list). */
			uint64_t now = fl_now_mono_ns();
			if (now - quiesce_check_ns >= 1000000000ull) {
				fallback_check(s);
				quiesce_check_ns = now;
			}
			usleep(20000);
			continue;
		}
		fallback_check(s);
		pthread_mutex_lock(&s->lock);
		s->retry_now = false;
		pthread_mutex_unlock(&s->lock);
		s->refused = false;
		int fd = mir_tcp_connect(s->host, s->o.port, s->o.io_timeout_ms);
		if (fd < 0) {
			retry_wait(s, s->o.retry_ms, false);
			continue;
		}
		struct mir_conn c;
		struct mir_status_msg sm;
		int rc = mir_conn_init(&c, fd, s->o.io_timeout_ms, &s->stop);
		if (rc == 0)
			mir_conn_throttle(&c, s->o.throttle_bps);
		if (rc == 0) {
			pthread_mutex_lock(&s->lock);
			s->st.connects++;
			pthread_mutex_unlock(&s->lock);
			rc = mir_handshake_source(&c, &pc, &sm);
			pthread_mutex_lock(&s->lock);
			conn_publish(s, &c);
			pthread_mutex_unlock(&s->lock);
			if (rc != 0 && c.peer_error[0] != '\0') {
				char what[MIR_ERRTEXT_MAX + 40];
				snprintf(what, sizeof(what), "handshake: the "
				    "destination refused: %s", c.peer_error);
				set_refusal(s, what, rc);
			} else if (rc == -EACCES) {
				/* The destination's proof does not verify:
				 * another key. */
				set_refusal(s, "handshake", rc);
			} else if (rc != 0) {
				set_error(s, "handshake", rc);
			}
		}
		if (rc == 0)
			rc = session_start(s, &c, &sm);
		if (rc == 0) {
			rc = mir_window_create(MIR_WINDOW_BLOCKS, &c.win);
			if (rc != 0)
				set_error(s, "the link's window", rc);
		}
		if (rc == 0)
			rc = session(s, &c);
		pthread_mutex_lock(&s->lock);
		s->armed = false;
		queue_drop(s);
		s->st.bytes_out += c.bytes_out;
		s->conn_bytes_out = s->conn_compressed = s->conn_delta = 0;
		s->st.blocks_compressed += c.blocks_compressed;
		s->st.blocks_delta += c.blocks_delta;
		if (rc != -ECANCELED)
			s->st.link_losses++;
		uint32_t wait_ms = s->o.retry_ms;
		if (s->refused) {
			/* RETRIES: the next attempt would most likely be
			 * refused the same way. */
			uint32_t max = s->o.retry_max_ms;
			if (s->refused_unknown && max > RETRY_UNKNOWN_MAX_MS)
				max = RETRY_UNKNOWN_MAX_MS;
			if (max < s->o.retry_ms)
				max = s->o.retry_ms;
			s->backoff_ms = s->backoff_ms == 0 ? s->o.retry_ms :
			    s->backoff_ms > max / 2 ? max : s->backoff_ms * 2;
			wait_ms = s->backoff_ms;
			s->st.refusals++;
			s->st.retry_delay_ms = wait_ms;
		}
		pthread_mutex_unlock(&s->lock);
		mir_conn_close(&c);
		s->in_cp = false;
		if (s->stop)
			break;
		if (rc != -ECANCELED) {
			if (!s->refused)
				fl_info("mirror", "source: link lost (%s); "
				    "reconnecting", fl_strerror(rc));
			set_state(s, s->acked == 0 ? MIR_UNINITIALIZED :
			    MIR_CATCHING_UP);
		}
		retry_wait(s, wait_ms, s->refused);
	}
	return NULL;
}

/* ------------------------------------------------------------ the API */

int mir_source_start(wafl_vol_t *v, const struct mir_source_opts *o,
    mir_source_t **out)
{
	struct mir_source *s;
	int rc;

	if (o->key == NULL || o->key_len < MIR_KEY_MIN ||
	    o->key_len > MIR_KEY_MAX || o->host == NULL ||
	    strlen(o->host) >= 256 || o->port == 0)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	s->v = v;
	s->o = *o;
	memcpy(s->key, o->key, o->key_len);
	s->o.key = s->key;
	snprintf(s->host, sizeof(s->host), "%s", o->host);
	s->o.host = s->host;
	s->o.last_error = NULL;
	if (o->last_error != NULL && o->last_error[0] != '\0') {
		snprintf(s->st.last_error, sizeof(s->st.last_error), "%s",
		    o->last_error);
		s->st.last_error_time = (uint64_t)time(NULL);
	}
	if (s->o.mode == 0)
		s->o.mode = MIR_SYNC;
	if (s->o.backlog_max_bytes == 0)
		s->o.backlog_max_bytes = 64ull << 20;
	if (s->o.retry_ms == 0)
		s->o.retry_ms = 200;
	if (s->o.retry_max_ms == 0)
		s->o.retry_max_ms = 30000;
	if (s->o.io_timeout_ms == 0)
		s->o.io_timeout_ms = 10000;
	if (s->o.throttle_bps != 0 && s->o.throttle_bps < MIR_THROTTLE_MIN)
		s->o.throttle_bps = MIR_THROTTLE_MIN;
	s->qtail = &s->qhead;
	s->st.source_gen = wafl_generation(v);
	/* Holds that survived a restart (recorded in fsinfo, held again by
	 * mount) or a stop are this relationship's: adopt their reference,
	 * the session keeps the one the destination serves. */
	uint64_t gens[WAFL_FSI_HOLDS];
	size_t ng = 0;
	(void)wafl_held_roots(v, gens, WAFL_FSI_HOLDS, &ng);
	for (size_t i = 0; i < ng && i < WAFL_FSI_HOLDS &&
	    s->nholds < MAX_OWN_HOLDS; i++)
		s->holds[s->nholds++] = gens[i];
	if (s->o.fallback_blocks == 0) {
		struct wafl_fsstat fs;
		if (wafl_statfs(v, &fs) == 0)
			s->o.fallback_blocks = fs.tbytes / WAFL_BLOCK_SIZE / 10;
	}
	s->base_snap = mir_base_snapshot(v, 0);
	s->st.base_snap_gen = s->base_snap;
	s->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (s->wake_fd < 0)
		fl_warn("mirror", "source: eventfd: %s; a CP waits up to 20 "
		    "ms to be sent", strerror(errno));
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	struct wafl_cp_observer obs = { .arg = s, .blocks = obs_blocks,
	    .root = obs_root };
	wafl_set_observer(v, &obs);
	rc = pthread_create(&s->thr, NULL, source_thread, s);
	if (rc != 0) {
		wafl_set_observer(v, NULL);
		if (s->wake_fd >= 0)
			close(s->wake_fd);
		free(s);
		return -rc;
	}
	s->running = true;
	*out = s;
	return 0;
}

void mir_source_stop(mir_source_t *s)
{
	if (s == NULL)
		return;
	s->stop = true;
	pthread_mutex_lock(&s->lock);
	pthread_cond_broadcast(&s->cond);
	wake_sender(s);
	pthread_mutex_unlock(&s->lock);
	if (s->running)
		pthread_join(s->thr, NULL);
	if (s->wake_fd >= 0)
		close(s->wake_fd);
	wafl_set_observer(s->v, NULL);
	/* The acknowledged root stays held (and recorded in fsinfo), and
	 * so do the roots sent after it (the destination may serve one
	 * whose acknowledgement the link lost, M1): a restarted source
	 * continues from them by birth generation, and a resync after a
	 * break finds the common base.  With nothing acknowledged yet, the
	 * root of the baseline under way stays held instead: a restarted
	 * source (filerd's restart, mirror modify) resumes it after the
	 * destination's checkpoint.  A source stopped before it learned
	 * either (no session since it adopted its holds) keeps them all. */
	uint64_t keep = s->acked != 0 ? s->acked : s->baseline_gen;
	release_below(s, keep, 0);
	queue_drop(s);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	free(s);
}

void mir_source_stats(mir_source_t *s, struct mir_source_stats *st)
{
	pthread_mutex_lock(&s->lock);
	*st = s->st;
	st->bytes_out += s->conn_bytes_out;
	st->blocks_compressed += s->conn_compressed;
	st->blocks_delta += s->conn_delta;
	st->backlog_bytes = s->backlog;
	st->quiesce_requested = s->quiesced;
	pthread_mutex_unlock(&s->lock);
	st->source_gen = wafl_generation(s->v);
}

int mir_source_wait(mir_source_t *s, uint64_t gen, uint32_t timeout_ms)
{
	struct timespec ts;
	int rc = 0;

	if (gen == 0)
		gen = wafl_generation(s->v);
	fl_deadline_ts(&ts, (uint64_t)timeout_ms * 1000);
	pthread_mutex_lock(&s->lock);
	while (s->st.acked_gen < gen && rc == 0)
		rc = pthread_cond_timedwait(&s->cond, &s->lock, &ts);
	pthread_mutex_unlock(&s->lock);
	return rc == 0 ? 0 : -ETIMEDOUT;
}

void mir_source_kick(mir_source_t *s)
{
	pthread_mutex_lock(&s->lock);
	s->kicked = true;
	pthread_cond_broadcast(&s->cond);
	wake_sender(s);
	pthread_mutex_unlock(&s->lock);
}

void mir_source_retry(mir_source_t *s)
{
	pthread_mutex_lock(&s->lock);
	s->retry_now = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

/* The state says quiesced once the thread has closed the link (a caller
 * that waits for it knows nothing more is sent). */
void mir_source_quiesce(mir_source_t *s)
{
	pthread_mutex_lock(&s->lock);
	s->quiesced = true;
	wake_sender(s);
	pthread_mutex_unlock(&s->lock);
}

/* The state leaves quiesced here, not when the thread notices: a status
 * read right after resume never says quiesced. */
void mir_source_resume(mir_source_t *s)
{
	pthread_mutex_lock(&s->lock);
	s->quiesced = false;
	s->retry_now = true;
	pthread_cond_broadcast(&s->cond);
	if (s->st.state == MIR_QUIESCED) {
		/* Until the thread is connected and knows better. */
		s->st.state = s->st.acked_gen == 0 ? MIR_UNINITIALIZED :
		    MIR_CATCHING_UP;
		fl_info("mirror", "source: %s -> %s",
		    mir_state_name(MIR_QUIESCED), mir_state_name(s->st.state));
	}
	pthread_mutex_unlock(&s->lock);
}
