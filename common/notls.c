/*
 * notls: keep libgit2 from reading the CA bundle in maildag-lda,
 * maildag-syncd and maildag.
 *
 * Debian's libgit2 1.5.1 is built with mbedTLS and libssh2 and, when it
 * is initialised (repo_global_init), parses every certificate of
 * /etc/ssl/certs/ca-certificates.crt: 3.4 ms of CPU in each delivery,
 * a third of maildag-lda's run time (bench/lda).  maildag-lda
 * never opens a network connection, so it defines these functions
 * itself; the dynamic linker binds libgit2's calls to them, for this
 * program only.  With a libgit2 built against other libraries they are
 * simply never called.
 *
 * maildag-syncd links it too: its peers are ssh:// (libssh2, whose
 * crypto is OpenSSL's) or file://, never libgit2's https, and its
 * webhooks go through libcurl (OpenSSL); yet each whole-history check
 * child (maildag-check, one per merge of a peer's mail) initialises
 * libgit2 afresh and parsed the bundle again: about 8% of the CPU of
 * bench/lifecycle's two daemons and deliveries (perf, t6016).
 *
 * maildag (the admin tool) links it too: its peers are the same, and
 * "maildag serve", the forced command a peer's key runs for every
 * session or git push and fetch, held the parsed bundle for as long as
 * it ran: 0.56 MB of heap, 40 % of an idle session's private memory on
 * the peer's side (t6085, doc/session-progress.md).
 */
#include "autoconf.h"

int mbedtls_x509_crt_parse_file(void *chain, const char *path);
int mbedtls_x509_crt_parse_path(void *chain, const char *path);

int mbedtls_x509_crt_parse_file(void *chain, const char *path)
{
	(void)chain;
	(void)path;
	return 0;	/* no certificate loaded, none needed */
}

int mbedtls_x509_crt_parse_path(void *chain, const char *path)
{
	(void)chain;
	(void)path;
	return 0;
}
