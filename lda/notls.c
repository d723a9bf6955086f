/*
 * notls: keep libgit2 from reading the CA bundle in maildag-lda and
 * maildag-syncd.
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
