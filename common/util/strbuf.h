/*
 * strbuf: a growable, always NUL-terminated byte buffer (git's strbuf).
 *
 * buf is never NULL after strbuf_init(); len excludes the terminating NUL;
 * the buffer may hold NUL bytes.
 */
#ifndef STRBUF_H
#define STRBUF_H

#include <stdarg.h>
#include <stddef.h>

struct strbuf {
	char *buf;
	size_t len;
	size_t alloc;
};

/* Never written to: what an empty buffer's buf points at. */
extern char strbuf_slopbuf[];
#define STRBUF_INIT { strbuf_slopbuf, 0, 0 }

void strbuf_init(struct strbuf *sb, size_t hint);
/* Free the contents; the struct may be reused after strbuf_init(). */
void strbuf_release(struct strbuf *sb);
/* Hand the buffer to the caller, who frees it; sb is left empty. */
char *strbuf_detach(struct strbuf *sb, size_t *len);
void strbuf_grow(struct strbuf *sb, size_t extra);
void strbuf_reset(struct strbuf *sb);
void strbuf_setlen(struct strbuf *sb, size_t len);
/* Drop len bytes at pos (at most what is there). */
void strbuf_remove(struct strbuf *sb, size_t pos, size_t len);
void strbuf_add(struct strbuf *sb, const void *data, size_t len);
void strbuf_addstr(struct strbuf *sb, const char *s);
void strbuf_addch(struct strbuf *sb, int c);
/* Append the rest of fd (EINTR retried): 0, or -1 with errno set. */
int strbuf_read_fd(struct strbuf *sb, int fd);
/* strbuf_addf() with a va_list (which it leaves for the caller to end). */
void strbuf_vaddf(struct strbuf *sb, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
void strbuf_addf(struct strbuf *sb, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
