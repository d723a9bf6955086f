/*
 * pushproto: one small push (a maildag-like delivery commit: a 4 kB
 * blob, its shard tree, the root tree, the commit) timed four ways, for
 * doc/persistent-peers.md.  An experiment, not maildag code.
 *
 *   pushproto fresh SRC URL KEY N
 *	what maildag-syncd's push child does today: libgit2, a new ssh
 *	connection per push (git_remote_connect + git_remote_upload)
 *   pushproto raw HOST PORT USER KEY CMD N
 *	libssh2 alone, a new connection each time, split: TCP, handshake
 *	(key exchange), user auth, channel open + exec CMD, first byte
 *	(git's ref advertisement)
 *   pushproto mux SRC HOST PORT USER KEY PATH N
 *	one libssh2 session kept open; each push is a new channel running
 *	git-receive-pack (the forced command) and libgit2's own push over
 *	it, through a smart subtransport of ours (git_transport_register)
 *   pushproto session SRC HOST PORT USER KEY N
 *	one libssh2 session and one channel kept open to a long-lived
 *	server (sessiond, the forced command), speaking a framed protocol:
 *	"PUSH <old> <new> <len>\n" + a pack of new ^ old, answered
 *	"OK <new>\n" once the peer's ref is durable
 *   pushproto idle SRC HOST PORT USER KEY SECONDS KEEPALIVE
 *	the session above, idle: wake-ups and memory of the client
 *   pushproto fan SRC HOST PORT USER N KEY...
 *	one kept session per KEY (K peers), each push to all of them:
 *	the first ack and the last
 *   pushproto follow SRC HOST PORT USER KEY COUNT
 *	the daemon's side alone: each time SRC's refs/heads/mail moves,
 *	push it over the kept session; "ack <id> <time>" per ack
 *   pushproto pipe SRC N CMD...
 *	the same framed protocol to CMD over a pipe (no ssh): what the
 *	server side costs alone, and the file:// counterpart
 *
 * SRC is a bare repository with refs/heads/mail; each push first makes
 * a new commit there (not timed).  Prints one line per push with the
 * phases in ms, then p50/p90 of each phase.  Host keys are not checked
 * (the fingerprint is printed once); this measures, it does not protect.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <git2.h>
#include <git2/sys/transport.h>
#include <libssh2.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAXN 10000
#define MAXPH 6

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void die(const char *what)
{
	const git_error *e = git_error_last();
	fprintf(stderr, "pushproto: %s%s%s\n", what, e ? ": " : "",
		e ? e->message : "");
	exit(1);
}

/* --- phases ----------------------------------------------------------- */

static const char *ph_name[MAXPH];
static double ph[MAXN][MAXPH];
static int nph, nrun;

static int cmpd(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double p)
{
	int i = (int)(p / 100 * n + 0.999999);
	if (i < 1)
		i = 1;
	if (i > n)
		i = n;
	qsort(v, n, sizeof *v, cmpd);
	return v[i - 1];
}

static void report(const char *mode)
{
	double v[MAXN];
	struct rusage ru;

	printf("%s: %d pushes\n%-34s %8s %8s\n", mode, nrun, "phase", "p50 ms",
	       "p90 ms");
	for (int p = 0; p < nph; p++) {
		for (int i = 0; i < nrun; i++)
			v[i] = ph[i][p];
		printf("%-34s %8.2f", ph_name[p], pct(v, nrun, 50));
		printf(" %8.2f\n", pct(v, nrun, 90));
	}
	getrusage(RUSAGE_SELF, &ru);
	printf("client cpu %.1f ms per push (user+sys), max rss %ld kB\n",
	       (ru.ru_utime.tv_sec * 1e3 + ru.ru_utime.tv_usec / 1e3 +
		ru.ru_stime.tv_sec * 1e3 + ru.ru_stime.tv_usec / 1e3) / nrun,
	       ru.ru_maxrss);
}

/* --- the source repository: one new delivery-like commit --------------- */

static git_repository *src;

static void new_commit(git_oid *out, git_oid *parent_out)
{
	static unsigned n;
	char name[128], body[4096], path[160];
	git_oid blob, tree_id, parent;
	git_reference *ref = NULL;
	git_commit *pc = NULL;
	git_tree *pt = NULL, *nt = NULL;
	git_signature *sig;
	git_tree_update up;
	FILE *r = fopen("/dev/urandom", "r");

	if (!r || fread(body, 1, 3000, r) != 3000)
		die("urandom");
	fclose(r);
	for (int i = 0; i < 3000; i++)
		body[i] = 'A' + (unsigned char)body[i] % 26;
	memcpy(body + 3000, "\n", 2);
	snprintf(name, sizeof name, "%ld.M%uP%d.proto,S=3001", (long)time(NULL),
		 n++, getpid());
	snprintf(path, sizeof path, "new/%02x/%s", (unsigned)(n * 37) & 0xff,
		 name);
	if (git_blob_create_from_buffer(&blob, src, body, 3001) < 0 ||
	    git_reference_name_to_id(&parent, src, "refs/heads/mail") < 0 ||
	    git_commit_lookup(&pc, src, &parent) < 0 ||
	    git_commit_tree(&pt, pc) < 0)
		die("source repository");
	up.action = GIT_TREE_UPDATE_UPSERT;
	git_oid_cpy(&up.id, &blob);
	up.filemode = GIT_FILEMODE_BLOB;
	up.path = path;
	if (git_tree_create_updated(&tree_id, src, pt, 1, &up) < 0 ||
	    git_tree_lookup(&nt, src, &tree_id) < 0 ||
	    git_signature_new(&sig, "maildag", "maildag@localhost", time(NULL), 0) < 0 ||
	    git_commit_create(out, src, NULL, sig, sig, NULL, "deliver\n", nt, 1,
			      (const git_commit **)&pc) < 0 ||
	    git_reference_create(&ref, src, "refs/heads/mail", out, 1, "proto") < 0)
		die("commit");
	if (parent_out)
		git_oid_cpy(parent_out, &parent);
	git_signature_free(sig);
	git_reference_free(ref);
	git_tree_free(nt);
	git_tree_free(pt);
	git_commit_free(pc);
}

/* --- credentials for libgit2's own ssh -------------------------------- */

static const char *key_path;

static int cb_cred(git_credential **out, const char *url, const char *user,
		   unsigned allowed, void *payload)
{
	(void)url;
	(void)payload;
	if (allowed & GIT_CREDENTIAL_USERNAME)
		return git_credential_username_new(out, user);
	return git_credential_ssh_key_new(out, user, NULL, key_path, NULL);
}

static int cb_cert(git_cert *cert, int valid, const char *host, void *p)
{
	(void)cert;
	(void)valid;
	(void)host;
	(void)p;
	return 0;
}

static int cb_update(const char *ref, const char *status, void *p)
{
	(void)p;
	if (status) {
		fprintf(stderr, "pushproto: %s rejected: %s\n", ref, status);
		exit(1);
	}
	return 0;
}

static void push_once(git_remote *remote, double *t_connect, double *t_upload)
{
	git_remote_callbacks cbs;
	git_push_options opts;
	char *spec = "+refs/heads/mail:refs/peers/a/mail";
	git_strarray specs = { &spec, 1 };
	double t0 = now_ms();

	git_remote_init_callbacks(&cbs, GIT_REMOTE_CALLBACKS_VERSION);
	cbs.credentials = cb_cred;
	cbs.certificate_check = cb_cert;
	cbs.push_update_reference = cb_update;
	if (git_remote_connect(remote, GIT_DIRECTION_PUSH, &cbs, NULL, NULL) < 0)
		die("connect");
	*t_connect = now_ms() - t0;
	git_push_options_init(&opts, GIT_PUSH_OPTIONS_VERSION);
	opts.callbacks = cbs;
	t0 = now_ms();
	if (git_remote_upload(remote, &specs, &opts) < 0)
		die("upload");
	git_remote_disconnect(remote);
	*t_upload = now_ms() - t0;
}

static void mode_fresh(const char *url, int n)
{
	git_remote *remote;
	git_oid id;

	ph_name[0] = "connect (tcp, kex, auth, exec, advert)";
	ph_name[1] = "upload (negotiate, pack, ref, report)";
	ph_name[2] = "total";
	nph = 3;
	for (int i = 0; i <= n; i++) {
		new_commit(&id, NULL);
		if (git_remote_create_anonymous(&remote, src, url) < 0)
			die("remote");
		push_once(remote, &ph[nrun][0], &ph[nrun][1]);
		ph[nrun][2] = ph[nrun][0] + ph[nrun][1];
		git_remote_free(remote);
		if (i)	/* the first carries the whole history */
			nrun++;
	}
	report("fresh: libgit2, a new ssh connection per push");
}

/* --- libssh2 ------------------------------------------------------------- */

static int tcp_connect(const char *host, int port)
{
	struct sockaddr_in sa = { 0 };
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	sa.sin_family = AF_INET;
	sa.sin_port = htons(port);
	inet_pton(AF_INET, host, &sa.sin_addr);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		perror("connect");
		exit(1);
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return fd;
}

struct ssh {
	int fd;
	LIBSSH2_SESSION *s;
};

/* phases: t[0] tcp, t[1] handshake, t[2] auth */
static void ssh_open(struct ssh *c, const char *host, int port,
		     const char *user, const char *key, double *t)
{
	double t0 = now_ms();
	static int printed;

	c->fd = tcp_connect(host, port);
	t[0] = now_ms() - t0;
	t0 = now_ms();
	c->s = libssh2_session_init();
	libssh2_session_set_blocking(c->s, 1);
	if (libssh2_session_handshake(c->s, c->fd)) {
		fprintf(stderr, "pushproto: handshake failed\n");
		exit(1);
	}
	if (!printed++) {
		const unsigned char *h = (const unsigned char *)
			libssh2_hostkey_hash(c->s, LIBSSH2_HOSTKEY_HASH_SHA256);
		fprintf(stderr, "host key sha256 %02x%02x%02x%02x...\n", h[0],
			h[1], h[2], h[3]);
	}
	t[1] = now_ms() - t0;
	t0 = now_ms();
	if (libssh2_userauth_publickey_fromfile(c->s, user, NULL, key, NULL)) {
		char *msg;
		libssh2_session_last_error(c->s, &msg, NULL, 0);
		fprintf(stderr, "pushproto: auth failed: %s\n", msg);
		exit(1);
	}
	t[2] = now_ms() - t0;
}

static void ssh_close(struct ssh *c)
{
	libssh2_session_disconnect(c->s, "bye");
	libssh2_session_free(c->s);
	close(c->fd);
}

static LIBSSH2_CHANNEL *ssh_exec(struct ssh *c, const char *cmd)
{
	LIBSSH2_CHANNEL *ch = libssh2_channel_open_session(c->s);

	if (!ch || libssh2_channel_exec(ch, cmd)) {
		char *msg;
		libssh2_session_last_error(c->s, &msg, NULL, 0);
		fprintf(stderr, "pushproto: exec '%s': %s\n", cmd, msg);
		exit(1);
	}
	return ch;
}

static void mode_raw(const char *host, int port, const char *user,
		     const char *key, const char *cmd, int n)
{
	struct ssh c;
	char buf[4];

	ph_name[0] = "tcp connect";
	ph_name[1] = "handshake (kex, host key)";
	ph_name[2] = "user auth (publickey)";
	ph_name[3] = "channel open + exec";
	ph_name[4] = "first byte from the command";
	ph_name[5] = "total";
	nph = 6;
	for (int i = 0; i < n; i++) {
		LIBSSH2_CHANNEL *ch;
		double t0;
		ssh_open(&c, host, port, user, key, ph[nrun]);
		t0 = now_ms();
		ch = ssh_exec(&c, cmd);
		ph[nrun][3] = now_ms() - t0;
		t0 = now_ms();
		if (libssh2_channel_read(ch, buf, 1) != 1) {
			fprintf(stderr, "pushproto: no answer from '%s'\n", cmd);
			exit(1);
		}
		ph[nrun][4] = now_ms() - t0;
		ph[nrun][5] = 0;
		for (int p = 0; p < 5; p++)
			ph[nrun][5] += ph[nrun][p];
		libssh2_channel_free(ch);
		ssh_close(&c);
		nrun++;
	}
	report("raw: libssh2, a new connection, up to the first byte");
}

/* --- mux: libgit2's push over channels of one kept session ---------------- */

static struct ssh kept;
static const char *mux_path;
static double t_exec;	/* the last channel's open + exec */

struct chan_stream {
	git_smart_subtransport_stream parent;
	LIBSSH2_CHANNEL *ch;
};

struct chan_sub {
	git_smart_subtransport parent;
	struct chan_stream *cur;
};

static int cs_read(git_smart_subtransport_stream *s, char *buf, size_t len,
		   size_t *got)
{
	ssize_t r = libssh2_channel_read(((struct chan_stream *)s)->ch, buf, len);

	if (r < 0)
		return -1;
	*got = (size_t)r;
	return 0;
}

static int cs_write(git_smart_subtransport_stream *s, const char *buf,
		    size_t len)
{
	struct chan_stream *cs = (struct chan_stream *)s;

	while (len) {
		ssize_t w = libssh2_channel_write(cs->ch, buf, len);
		if (w < 0)
			return -1;
		buf += w;
		len -= (size_t)w;
	}
	return 0;
}

static void cs_free(git_smart_subtransport_stream *s)
{
	struct chan_stream *cs = (struct chan_stream *)s;
	struct chan_sub *sub = (struct chan_sub *)s->subtransport;

	libssh2_channel_send_eof(cs->ch);
	libssh2_channel_close(cs->ch);
	libssh2_channel_free(cs->ch);
	if (sub->cur == cs)
		sub->cur = NULL;
	free(cs);
}

static int sub_action(git_smart_subtransport_stream **out,
		      git_smart_subtransport *t, const char *url,
		      git_smart_service_t action)
{
	struct chan_sub *sub = (struct chan_sub *)t;
	struct chan_stream *cs;
	char cmd[4200];
	double t0;

	(void)url;
	if (action == GIT_SERVICE_RECEIVEPACK && sub->cur) {
		*out = &sub->cur->parent;
		return 0;
	}
	if (action != GIT_SERVICE_RECEIVEPACK_LS)
		return -1;
	cs = calloc(1, sizeof *cs);
	cs->parent.subtransport = t;
	cs->parent.read = cs_read;
	cs->parent.write = cs_write;
	cs->parent.free = cs_free;
	snprintf(cmd, sizeof cmd, "git-receive-pack '%s'", mux_path);
	t0 = now_ms();
	cs->ch = ssh_exec(&kept, cmd);
	t_exec = now_ms() - t0;
	sub->cur = cs;
	*out = &cs->parent;
	return 0;
}

static int sub_close(git_smart_subtransport *t)
{
	(void)t;
	return 0;
}

static void sub_free(git_smart_subtransport *t)
{
	free(t);
}

static int sub_new(git_smart_subtransport **out, git_transport *owner,
		   void *param)
{
	struct chan_sub *sub = calloc(1, sizeof *sub);

	(void)owner;
	(void)param;
	sub->parent.action = sub_action;
	sub->parent.close = sub_close;
	sub->parent.free = sub_free;
	*out = &sub->parent;
	return 0;
}

static git_smart_subtransport_definition mux_def = { sub_new, 0, NULL };

static int transport_new(git_transport **out, git_remote *owner, void *param)
{
	(void)param;
	return git_transport_smart(out, owner, &mux_def);
}

static void mode_mux(const char *host, int port, const char *user,
		     const char *key, const char *path, int n)
{
	double t[3];
	git_remote *remote;
	git_oid id;

	mux_path = path;
	if (git_transport_register("mdssh", transport_new, NULL) < 0)
		die("register");
	ssh_open(&kept, host, port, user, key, t);
	fprintf(stderr, "kept session opened in %.1f ms\n", t[0] + t[1] + t[2]);
	ph_name[0] = "channel open + exec";
	ph_name[1] = "rest of connect (advert)";
	ph_name[2] = "upload (negotiate, pack, ref, report)";
	ph_name[3] = "total";
	nph = 4;
	for (int i = 0; i <= n; i++) {
		double c, u;
		new_commit(&id, NULL);
		if (git_remote_create_anonymous(&remote, src, "mdssh://peer/x") < 0)
			die("remote");
		push_once(remote, &c, &u);
		git_remote_free(remote);
		if (!i)
			continue;
		ph[nrun][0] = t_exec;
		ph[nrun][1] = c - t_exec;
		ph[nrun][2] = u;
		ph[nrun][3] = c + u;
		nrun++;
	}
	report("mux: one ssh session kept, a channel + receive-pack per push");
	ssh_close(&kept);
}

/* --- session: the framed protocol ----------------------------------------- */

struct conn {
	/* either a channel or a pair of pipe descriptors */
	LIBSSH2_CHANNEL *ch;
	int rfd, wfd;
};

static void conn_write(struct conn *c, const char *buf, size_t len)
{
	while (len) {
		ssize_t w = c->ch ? libssh2_channel_write(c->ch, buf, len)
				  : write(c->wfd, buf, len);
		if (w <= 0) {
			fprintf(stderr, "pushproto: write failed\n");
			exit(1);
		}
		buf += w;
		len -= (size_t)w;
	}
}

static void conn_readline(struct conn *c, char *line, size_t max)
{
	size_t n = 0;

	while (n + 1 < max) {
		ssize_t r = c->ch ? libssh2_channel_read(c->ch, line + n, 1)
				  : read(c->rfd, line + n, 1);
		if (r <= 0) {
			fprintf(stderr, "pushproto: the server went away\n");
			exit(1);
		}
		if (line[n++] == '\n')
			break;
	}
	line[n] = '\0';
}

/* Pack of new ^ old (old may be zero: everything). */
static void make_pack(git_buf *out, const git_oid *newid, const git_oid *old)
{
	git_packbuilder *pb;
	git_revwalk *w;

	if (git_packbuilder_new(&pb, src) < 0 || git_revwalk_new(&w, src) < 0 ||
	    git_revwalk_push(w, newid) < 0 ||
	    (!git_oid_is_zero(old) && git_revwalk_hide(w, old) < 0) ||
	    git_packbuilder_insert_walk(pb, w) < 0 ||
	    git_packbuilder_write_buf(out, pb) < 0)
		die("pack");
	git_revwalk_free(w);
	git_packbuilder_free(pb);
}

static void session_pushes(struct conn *c, int n, const char *label)
{
	git_oid acked, id;
	char line[256], hdr[200], hex_old[GIT_OID_HEXSZ + 1], hex_new[GIT_OID_HEXSZ + 1];

	memset(&acked, 0, sizeof acked);
	ph_name[0] = "build the pack (libgit2)";
	ph_name[1] = "send + peer stores + ack";
	ph_name[2] = "total";
	nph = 3;
	for (int i = 0; i <= n; i++) {
		git_buf pack = { 0 };
		double t0;
		new_commit(&id, NULL);
		t0 = now_ms();
		make_pack(&pack, &id, &acked);
		ph[nrun][0] = now_ms() - t0;
		git_oid_tostr(hex_old, sizeof hex_old, &acked);
		git_oid_tostr(hex_new, sizeof hex_new, &id);
		snprintf(hdr, sizeof hdr, "PUSH %s %s %zu\n", hex_old, hex_new,
			 pack.size);
		t0 = now_ms();
		conn_write(c, hdr, strlen(hdr));
		conn_write(c, pack.ptr, pack.size);
		conn_readline(c, line, sizeof line);
		ph[nrun][1] = now_ms() - t0;
		if (strncmp(line, "OK ", 3) || strncmp(line + 3, hex_new, 40)) {
			fprintf(stderr, "pushproto: refused: %s", line);
			exit(1);
		}
		ph[nrun][2] = ph[nrun][0] + ph[nrun][1];
		git_oid_cpy(&acked, &id);
		git_buf_dispose(&pack);
		if (i)
			nrun++;
	}
	report(label);
}

static void mode_session(const char *host, int port, const char *user,
			 const char *key, int n)
{
	double t[3];
	struct conn c = { 0 };
	char line[256];

	ssh_open(&kept, host, port, user, key, t);
	c.ch = ssh_exec(&kept, "maildag-session 1");
	conn_readline(&c, line, sizeof line);	/* the server's hello */
	fprintf(stderr, "session opened in %.1f ms: %s", t[0] + t[1] + t[2], line);
	session_pushes(&c, n, "session: one ssh channel kept, framed pushes");
	libssh2_channel_free(c.ch);
	ssh_close(&kept);
}

/* "voluntary_ctxt_switches" and "VmRSS" of this process */
static void self_status(long *wakeups, long *rss_kb, long *anon_kb)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];

	while (f && fgets(line, sizeof line, f)) {
		sscanf(line, "voluntary_ctxt_switches: %ld", wakeups);
		sscanf(line, "VmRSS: %ld", rss_kb);
		sscanf(line, "RssAnon: %ld", anon_kb);
	}
	if (f)
		fclose(f);
}

/*
 * idle: one session to the server, then nothing but keepalives every
 * KEEPALIVE seconds (want_reply: a dead peer is found) for SECONDS;
 * prints the wake-ups (voluntary context switches) and the memory.
 */
static void mode_idle(const char *host, int port, const char *user,
		      const char *key, int seconds, int keepalive)
{
	double t[3], end;
	struct conn c = { 0 };
	char line[256];
	long w0 = 0, w1 = 0, rss = 0, anon = 0;
	int sent = 0;

	ssh_open(&kept, host, port, user, key, t);
	c.ch = ssh_exec(&kept, "maildag-session 1");
	conn_readline(&c, line, sizeof line);
	libssh2_keepalive_config(kept.s, 1, (unsigned)keepalive);
	libssh2_session_set_blocking(kept.s, 0);
	self_status(&w0, &rss, &anon);
	printf("idle: session up, rss %ld kB (anon %ld kB); pid %d\n", rss, anon,
	       (int)getpid());
	fflush(stdout);
	end = now_ms() + seconds * 1e3;
	while (now_ms() < end) {
		int next = keepalive;
		struct pollfd p = { kept.fd, POLLIN, 0 };
		if (libssh2_keepalive_send(kept.s, &next) == 0)
			sent++;
		if (poll(&p, 1, next * 1000) > 0) {
			char buf[256];
			/* the keepalive's reply; anything else is a bug here */
			while (libssh2_channel_read(c.ch, buf, sizeof buf) > 0)
				;
			if (libssh2_channel_eof(c.ch)) {
				printf("idle: the server closed the channel\n");
				break;
			}
		}
	}
	self_status(&w1, &rss, &anon);
	printf("idle: %d s, keepalive %d s: %ld wake-ups, rss %ld kB (anon %ld kB)\n",
	       seconds, keepalive, w1 - w0, rss, anon);
	(void)sent;
}

/*
 * fan: one kept session per key (each key's forced command is a sessiond
 * on a repository of its own: K peers), each push framed to all K at
 * once, the acks read as they come: the time until the first and until
 * all K acknowledged (a quorum of 2 is the first ack; "all" is what
 * bench/replication's five-peer figure counts).
 */
#define MAXK 16
static void mode_fan(const char *host, int port, const char *user, int n,
		     int k, char **keys)
{
	static struct ssh s[MAXK];
	LIBSSH2_CHANNEL *ch[MAXK];
	double t[3];
	long w, rss0 = 0, rss1 = 0, anon0 = 0, anon1 = 0;
	git_oid acked, id;
	char line[256], hdr[200], ho[GIT_OID_HEXSZ + 1], hn[GIT_OID_HEXSZ + 1];

	self_status(&w, &rss0, &anon0);
	for (int i = 0; i < k; i++) {
		struct conn c = { 0 };
		ssh_open(&s[i], host, port, user, keys[i], t);
		c.ch = ch[i] = ssh_exec(&s[i], "maildag-session 1");
		conn_readline(&c, line, sizeof line);
	}
	self_status(&w, &rss1, &anon1);
	printf("fan: %d sessions open: rss %ld -> %ld kB, anon %ld -> %ld kB "
	       "(%.0f kB anon per session)\n", k, rss0, rss1, anon0, anon1,
	       (double)(anon1 - anon0) / k);
	memset(&acked, 0, sizeof acked);
	ph_name[0] = "build the pack";
	ph_name[1] = "first ack";
	ph_name[2] = "all acks";
	nph = 3;
	for (int i = 0; i <= n; i++) {
		git_buf pack = { 0 };
		struct pollfd pfd[MAXK];
		char got[MAXK][128];
		size_t len[MAXK] = { 0 };
		int left = k;
		double t0 = now_ms(), first = 0;

		new_commit(&id, NULL);
		t0 = now_ms();
		make_pack(&pack, &id, &acked);
		ph[nrun][0] = now_ms() - t0;
		git_oid_tostr(ho, sizeof ho, &acked);
		git_oid_tostr(hn, sizeof hn, &id);
		snprintf(hdr, sizeof hdr, "PUSH %s %s %zu\n", ho, hn, pack.size);
		t0 = now_ms();
		for (int j = 0; j < k; j++) {
			struct conn c = { ch[j], -1, -1 };
			libssh2_session_set_blocking(s[j].s, 1);
			conn_write(&c, hdr, strlen(hdr));
			conn_write(&c, pack.ptr, pack.size);
			libssh2_session_set_blocking(s[j].s, 0);
		}
		while (left) {
			int m = 0;
			for (int j = 0; j < k; j++) {
				ssize_t r;
				if (len[j] && got[j][len[j] - 1] == '\n')
					continue;
				while ((r = libssh2_channel_read(ch[j], got[j] + len[j], 1)) == 1)
					if (got[j][len[j]++] == '\n')
						break;
				if (len[j] && got[j][len[j] - 1] == '\n') {
					if (!first)
						first = now_ms() - t0;
					left--;
					continue;
				}
				pfd[m++] = (struct pollfd){ s[j].fd, POLLIN, 0 };
			}
			if (left)
				poll(pfd, m, 10);
		}
		ph[nrun][1] = first;
		ph[nrun][2] = now_ms() - t0;
		for (int j = 0; j < k; j++)
			if (strncmp(got[j], "OK ", 3)) {
				fprintf(stderr, "pushproto: peer %d refused\n", j);
				exit(1);
			}
		git_oid_cpy(&acked, &id);
		git_buf_dispose(&pack);
		if (i)
			nrun++;
	}
	report("fan: K kept sessions, each push to all K");
}

/*
 * follow: what the daemon's side of a kept session would do, alone: one
 * session to sessiond, then each time SRC's refs/heads/mail moves (a
 * maildag-lda delivery; inotify on refs/heads/), a pack of what the peer
 * lacks, framed, and the ack awaited.  Prints "ack <id> <wall time>" per
 * ack, for a harness to put beside the LDA's exit and the file's arrival.
 */
static void mode_follow(const char *src_path, const char *host, int port,
			const char *user, const char *key, int count)
{
	double t[3];
	struct conn c = { 0 };
	char line[256], hdr[200], ho[GIT_OID_HEXSZ + 1], hn[GIT_OID_HEXSZ + 1];
	char dir[4096], evbuf[4096];
	git_oid acked, mail;
	int ino, sent = 0;

	snprintf(dir, sizeof dir, "%s/refs/heads", src_path);
	if ((ino = inotify_init1(IN_CLOEXEC)) < 0 ||
	    inotify_add_watch(ino, dir, IN_MOVED_TO | IN_CLOSE_WRITE) < 0)
		die("inotify");
	ssh_open(&kept, host, port, user, key, t);
	c.ch = ssh_exec(&kept, "maildag-session 1");
	conn_readline(&c, line, sizeof line);
	memset(&acked, 0, sizeof acked);
	printf("ready\n");
	fflush(stdout);
	while (sent < count) {
		git_buf pack = { 0 };
		struct timespec ts;
		git_reference *r;

		/* the ref as it is now; wait for a change when it was sent */
		if (git_reference_lookup(&r, src, "refs/heads/mail") == 0) {
			git_oid_cpy(&mail, git_reference_target(r));
			git_reference_free(r);
		}
		if (git_oid_equal(&mail, &acked)) {
			if (read(ino, evbuf, sizeof evbuf) <= 0)
				die("inotify read");
			continue;
		}
		make_pack(&pack, &mail, &acked);
		git_oid_tostr(ho, sizeof ho, &acked);
		git_oid_tostr(hn, sizeof hn, &mail);
		snprintf(hdr, sizeof hdr, "PUSH %s %s %zu\n", ho, hn, pack.size);
		conn_write(&c, hdr, strlen(hdr));
		conn_write(&c, pack.ptr, pack.size);
		conn_readline(&c, line, sizeof line);
		clock_gettime(CLOCK_REALTIME, &ts);
		if (strncmp(line, "OK ", 3)) {
			fprintf(stderr, "pushproto: refused: %s", line);
			exit(1);
		}
		printf("ack %s %ld.%06ld\n", hn, (long)ts.tv_sec, ts.tv_nsec / 1000);
		fflush(stdout);
		git_oid_cpy(&acked, &mail);
		git_buf_dispose(&pack);
		sent++;
	}
}

static void mode_pipe(int n, char **argv)
{
	int in[2], out[2];
	struct conn c = { 0 };
	char line[256];
	pid_t pid;

	if (pipe(in) < 0 || pipe(out) < 0)
		die("pipe");
	if (!(pid = fork())) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		close(in[1]);
		close(out[0]);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	c.rfd = out[0];
	c.wfd = in[1];
	conn_readline(&c, line, sizeof line);
	session_pushes(&c, n, "pipe: the framed protocol to a local server");
	close(in[1]);
	waitpid(pid, NULL, 0);
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: see the comment at the top of pushproto.c\n");
		return 64;
	}
	git_libgit2_init();
	/* as maildag does (repo_global_init): objects and refs fsynced */
	git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, 1);
	libssh2_init(0);
	if (strcmp(argv[1], "raw") &&
	    git_repository_open_bare(&src, argv[2]) < 0)
		die("open the source repository");
	if (!strcmp(argv[1], "fresh") && argc == 6) {
		key_path = argv[4];
		mode_fresh(argv[3], atoi(argv[5]));
	} else if (!strcmp(argv[1], "raw") && argc == 8) {
		mode_raw(argv[2], atoi(argv[3]), argv[4], argv[5], argv[6],
			 atoi(argv[7]));
	} else if (!strcmp(argv[1], "mux") && argc == 9) {
		mode_mux(argv[3], atoi(argv[4]), argv[5], argv[6], argv[7],
			 atoi(argv[8]));
	} else if (!strcmp(argv[1], "session") && argc == 8) {
		mode_session(argv[3], atoi(argv[4]), argv[5], argv[6],
			     atoi(argv[7]));
	} else if (!strcmp(argv[1], "idle") && argc == 9) {
		mode_idle(argv[3], atoi(argv[4]), argv[5], argv[6], atoi(argv[7]),
			  atoi(argv[8]));
	} else if (!strcmp(argv[1], "fan") && argc >= 8) {
		mode_fan(argv[3], atoi(argv[4]), argv[5], atoi(argv[6]),
			 argc - 7, argv + 7);
	} else if (!strcmp(argv[1], "follow") && argc == 8) {
		mode_follow(argv[2], argv[3], atoi(argv[4]), argv[5], argv[6],
			    atoi(argv[7]));
	} else if (!strcmp(argv[1], "pipe") && argc >= 5) {
		mode_pipe(atoi(argv[3]), argv + 4);
	} else {
		fprintf(stderr, "pushproto: bad arguments\n");
		return 64;
	}
	return 0;
}
