/*
 * gen-maildir: make synthetic mail for the benchmarks in bench/.
 *
 *   gen-maildir [-s seed] maildir DIR COUNT   COUNT messages in DIR/cur
 *   gen-maildir [-s seed] msgs DIR COUNT      COUNT message files DIR/NNNNNN.eml
 *   gen-maildir [-s seed] big FILE MB         one message of about MB megabytes
 *
 * Messages look like real mail: a Received chain, the usual headers, a
 * text body of word salad and, for about a third of them, a base64
 * attachment. Sizes are log-uniform between 2 and 20 KB, so the median is
 * about 6 KB and the mean about 8 KB. Every message is unique (its
 * Message-ID and body differ), so no tool gets to share objects.
 *
 * The Maildir names are Dovecot-style, `<sec>.M<usec>P<pid>Q<n>.<host>,
 * S=<size>:2,<flags>`, with times spread over the past years, and each
 * file's mtime is the time in its name, as a delivery would leave it.
 * Output is written without fsync: it is a fixture, not mail.
 * The same seed gives the same bytes.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
	/* xorshift64*: fast and good enough for word salad */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

static unsigned rndn(unsigned n)
{
	return (unsigned)(rnd() % n);
}

static const char *const words[] = {
	"the", "of", "and", "to", "a", "in", "is", "it", "you", "that", "he",
	"was", "for", "on", "are", "with", "as", "I", "his", "they", "be",
	"at", "one", "have", "this", "from", "or", "had", "by", "not", "but",
	"what", "some", "we", "can", "out", "other", "were", "all", "there",
	"when", "up", "use", "your", "how", "said", "an", "each", "she",
	"which", "do", "their", "time", "if", "will", "way", "about", "many",
	"then", "them", "would", "write", "like", "so", "these", "her", "long",
	"make", "thing", "see", "him", "two", "has", "look", "more", "day",
	"could", "go", "come", "did", "number", "sound", "no", "most", "people",
	"my", "over", "know", "water", "than", "call", "first", "who", "may",
	"down", "side", "been", "now", "find", "patch", "kernel", "build",
	"release", "meeting", "invoice", "server", "mailbox", "delivery",
	"review", "commit", "branch", "thanks", "regards", "tomorrow", "issue",
	"config", "report", "attached", "please", "question", "update",
};
#define NWORDS (sizeof words / sizeof words[0])

static const char *const names[] = {
	"Alice Martin", "Bob Keller", "Carol Nguyen", "Dan Okafor",
	"Erin Schmidt", "Frank Rossi", "Grace Lee", "Hiro Tanaka",
	"Ines Garcia", "Jan Novak", "Kim Larsen", "Lena Petrova",
};
#define NNAMES (sizeof names / sizeof names[0])

struct buf {
	char *p;
	size_t len, cap;
};

static void buf_grow(struct buf *b, size_t more)
{
	if (b->len + more + 1 <= b->cap)
		return;
	while (b->len + more + 1 > b->cap)
		b->cap = b->cap ? b->cap * 2 : 65536;
	b->p = realloc(b->p, b->cap);
	if (!b->p) {
		perror("realloc");
		exit(2);
	}
}

static void buf_add(struct buf *b, const char *s, size_t n)
{
	buf_grow(b, n);
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	buf_grow(b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

static void login(char *out, size_t n, const char *name)
{
	size_t i, j = 0;

	for (i = 0; name[i] && j + 1 < n; i++)
		out[j++] = name[i] == ' ' ? '.' : (char)(name[i] | 0x20);
	out[j] = '\0';
}

static void text_until(struct buf *b, size_t target)
{
	size_t col = 0;

	while (b->len < target) {
		const char *w = words[rndn(NWORDS)];
		size_t wl = strlen(w);

		if (col + wl + 1 > 72) {
			buf_add(b, rndn(6) ? "\n" : "\n\n", rndn(6) ? 1 : 2);
			col = 0;
		} else if (col) {
			buf_add(b, " ", 1);
			col++;
		}
		buf_add(b, w, wl);
		col += wl;
	}
	buf_add(b, "\n", 1);
}

static void base64_until(struct buf *b, size_t target)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char line[78];
	int i;

	/* random payload: like a compressed attachment, incompressible */
	while (b->len < target) {
		for (i = 0; i < 76; i++)
			line[i] = tab[rnd() & 63];
		line[76] = '\n';
		buf_add(b, line, 77);
	}
}

/* One message of about `size` bytes, delivered at time `t`. */
static void make_message(struct buf *b, size_t size, time_t t, unsigned n)
{
	const char *from = names[rndn(NNAMES)], *to = names[rndn(NNAMES)];
	char fl[64], tl[64], date[64];
	struct tm tm;
	int attach = size > 6000 && rndn(3) == 0;
	unsigned i, nwords;

	login(fl, sizeof fl, from);
	login(tl, sizeof tl, to);
	gmtime_r(&t, &tm);
	strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
	b->len = 0;
	buf_printf(b, "Return-Path: <%s@example.org>\n", fl);
	buf_printf(b, "Delivered-To: %s@example.net\n", tl);
	buf_printf(b, "Received: from mx.example.org (mx.example.org [192.0.2.%u])\n"
		   "\tby mail.example.net (Postfix) with ESMTPS id %08X%04X\n"
		   "\tfor <%s@example.net>; %s\n",
		   rndn(250) + 1, (unsigned)rnd(), n & 0xffff, tl, date);
	buf_printf(b, "Received: from [10.0.%u.%u] (unknown [198.51.100.%u])\n"
		   "\tby mx.example.org (Postfix) with ESMTPSA id %08X\n"
		   "\t; %s\n",
		   rndn(256), rndn(256), rndn(250) + 1, (unsigned)rnd(), date);
	buf_printf(b, "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.org;\n"
		   "\ts=mail; t=%ld; bh=", (long)t);
	base64_until(b, b->len + 1);
	b->len -= 77 - 44;	/* a 44-character body hash */
	buf_printf(b, "\nDate: %s\n", date);
	buf_printf(b, "From: %s <%s@example.org>\n", from, fl);
	buf_printf(b, "To: %s <%s@example.net>\n", to, tl);
	buf_printf(b, "Subject: Re:");
	nwords = 3 + rndn(7);
	for (i = 0; i < nwords; i++)
		buf_printf(b, " %s", words[rndn(NWORDS)]);
	buf_printf(b, "\nMessage-ID: <%ld.%u.%08x@example.org>\n",
		   (long)t, n, (unsigned)rnd());
	buf_printf(b, "MIME-Version: 1.0\n");
	if (!attach) {
		buf_printf(b, "Content-Type: text/plain; charset=utf-8\n"
			   "Content-Transfer-Encoding: 8bit\n\n");
		text_until(b, size);
		return;
	}
	buf_printf(b, "Content-Type: multipart/mixed; boundary=\"b%u\"\n\n"
		   "--b%u\nContent-Type: text/plain; charset=utf-8\n\n", n, n);
	text_until(b, b->len + size / 4);
	buf_printf(b, "\n--b%u\nContent-Type: application/pdf; name=\"doc%u.pdf\"\n"
		   "Content-Transfer-Encoding: base64\n"
		   "Content-Disposition: attachment; filename=\"doc%u.pdf\"\n\n",
		   n, n, n);
	base64_until(b, size > b->len + 200 ? size - 20 : b->len + 200);
	buf_printf(b, "\n--b%u--\n", n);
}

static size_t pick_size(void)
{
	/* log-uniform in [2 KB, 20 KB] */
	double u = (double)(rnd() >> 11) / 9007199254740992.0;
	double lo = 2048.0, hi = 20480.0;

	return (size_t)(lo * exp(u * log(hi / lo)));
}

static void write_file(const char *path, const struct buf *b, time_t mtime)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	size_t off = 0;

	if (fd < 0) {
		fprintf(stderr, "gen-maildir: open '%s': %s\n", path, strerror(errno));
		exit(2);
	}
	while (off < b->len) {
		ssize_t w = write(fd, b->p + off, b->len - off);

		if (w < 0) {
			fprintf(stderr, "gen-maildir: write '%s': %s\n", path, strerror(errno));
			exit(2);
		}
		off += (size_t)w;
	}
	if (mtime) {
		struct timespec ts[2] = { { mtime, 0 }, { mtime, 0 } };

		futimens(fd, ts);
	}
	close(fd);
}

static void mkdir_p(const char *dir)
{
	char tmp[4096];
	size_t i, n = strlen(dir);

	if (n >= sizeof tmp) {
		fprintf(stderr, "gen-maildir: path too long\n");
		exit(2);
	}
	memcpy(tmp, dir, n + 1);
	for (i = 1; i <= n; i++) {
		if (tmp[i] != '/' && tmp[i] != '\0')
			continue;
		tmp[i] = '\0';
		if (mkdir(tmp, 0700) < 0 && errno != EEXIST) {
			fprintf(stderr, "gen-maildir: mkdir '%s': %s\n", tmp, strerror(errno));
			exit(2);
		}
		tmp[i] = dir[i];
	}
}

static void usage(void)
{
	fprintf(stderr,
		"usage: gen-maildir [-s seed] maildir DIR COUNT\n"
		"       gen-maildir [-s seed] msgs DIR COUNT\n"
		"       gen-maildir [-s seed] big FILE MB\n");
	exit(64);
}

int main(int argc, char **argv)
{
	static const char *const flags[] = { "S", "S", "S", "RS", "FS", "", "S", "PS" };
	struct buf b = { 0 };
	char path[4096];
	unsigned long i, count;
	int opt;

	while ((opt = getopt(argc, argv, "s:")) != -1) {
		if (opt != 's')
			usage();
		rng_state ^= strtoull(optarg, NULL, 0) * 0x9e3779b97f4a7c15ULL + 1;
	}
	argc -= optind;
	argv += optind;
	if (argc != 3)
		usage();
	count = strtoul(argv[2], NULL, 10);

	if (!strcmp(argv[0], "maildir")) {
		const char *sub[] = { "cur", "new", "tmp" };
		time_t t = 1600000000;

		for (i = 0; i < 3; i++) {
			snprintf(path, sizeof path, "%s/%s", argv[1], sub[i]);
			mkdir_p(path);
		}
		for (i = 0; i < count; i++) {
			size_t size = pick_size();
			int n;

			t += 60 + rndn(1800);
			make_message(&b, size, t, (unsigned)i);
			n = snprintf(path, sizeof path,
				     "%s/cur/%ld.M%uP%uQ%lu.bench,S=%zu:2,%s",
				     argv[1], (long)t, rndn(1000000),
				     1000 + rndn(60000), i + 1, b.len,
				     flags[rndn(8)]);
			if (n < 0 || (size_t)n >= sizeof path)
				usage();
			write_file(path, &b, t);
		}
	} else if (!strcmp(argv[0], "msgs")) {
		mkdir_p(argv[1]);
		for (i = 0; i < count; i++) {
			make_message(&b, pick_size(), time(NULL), (unsigned)i);
			snprintf(path, sizeof path, "%s/%06lu.eml", argv[1], i);
			write_file(path, &b, 0);
		}
	} else if (!strcmp(argv[0], "big")) {
		size_t size = count * 1024 * 1024;

		/* text, then megabytes of base64 */
		buf_printf(&b, "From: Big Sender <big@example.org>\nTo: someone@example.net\n"
			   "Subject: a %lu MB attachment\nMessage-ID: <big.%08x@example.org>\n"
			   "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"bb\"\n\n"
			   "--bb\nContent-Type: text/plain\n\nsee attachment\n\n"
			   "--bb\nContent-Type: application/octet-stream; name=\"big.bin\"\n"
			   "Content-Transfer-Encoding: base64\n\n",
			   count, (unsigned)rnd());
		base64_until(&b, size - 8);
		buf_printf(&b, "--bb--\n");
		write_file(argv[1], &b, 0);
	} else {
		usage();
	}
	free(b.p);
	return 0;
}
