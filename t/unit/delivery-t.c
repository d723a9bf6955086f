/*
 * delivery-t: the delivery record (common/delivery.c): the messages it
 * writes for one and for several deliveries, and under another subject,
 * read back; and the search for a recent delivery of some bytes in a
 * scratch repository's history.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tap.h"
#include "delivery.h"
#include "fsutil.h"
#include "log.h"
#include "repo.h"
#include "xalloc.h"

#define PATH1 "new/4f/1795326400.M2P2R0123456789abcdefQ1.mx1,S=2211"
#define PATH2 ".Sent/cur/3c/1795326361.M1P1Q1.mx1,S=211:2,S"

static void blob_of(struct oid *out, int i)
{
	char hex[OID_HEXSZ + 1];

	snprintf(hex, sizeof hex, "%040x", i);
	oid_fromstr(out, hex);
}

/* The items of message as "path blob" lines. */
static char *items(const char *message)
{
	struct strbuf sb = STRBUF_INIT;
	struct delivery_item it;
	const char *pos = message;

	while (delivery_record_next(&it, &pos))
		strbuf_addf(&sb, "%.*s %s\n", (int)it.path_len, it.path,
			    it.has_blob ? oid_hex(&it.blob) : "-");
	return strbuf_detach(&sb, NULL);
}

static void test_format_parse(void)
{
	struct delivery_record d = DELIVERY_RECORD_INIT;
	struct strbuf msg = STRBUF_INIT;
	struct oid b1, b2;
	char *got;

	blob_of(&b1, 1);
	blob_of(&b2, 2);
	delivery_record_add(&d, "", PATH1, &b1);
	delivery_record_message(&msg, &d, NULL);
	is_str(msg.buf, "deliver to INBOX\n\nPath: " PATH1 "\nBlob: "
	       "0000000000000000000000000000000000000001\n", "one message");
	ok(delivery_message_is_delivery(msg.buf), "is a delivery");
	got = items(msg.buf);
	is_str(got, PATH1 " 0000000000000000000000000000000000000001\n",
	       "read back");
	free(got);

	strbuf_reset(&msg);
	delivery_record_release(&d);
	delivery_record_add(&d, ".Sent", PATH2, &b2);
	delivery_record_message(&msg, &d, NULL);
	ok(!strncmp(msg.buf, "deliver to Sent\n\n", 17), "to a folder");
	delivery_record_add(&d, "", PATH1, &b1);
	strbuf_reset(&msg);
	delivery_record_message(&msg, &d, NULL);
	ok(!strncmp(msg.buf, "deliver 2 messages\n\n", 20), "two messages");
	got = items(msg.buf);
	is_str(got, PATH2 " 0000000000000000000000000000000000000002\n"
	       PATH1 " 0000000000000000000000000000000000000001\n",
	       "both read back, in order, the folder's path whole");
	free(got);

	strbuf_reset(&msg);
	delivery_record_message(&msg, &d, "mail client: 1 flag changed");
	ok(!strncmp(msg.buf, "mail client: 1 flag changed\n\nPath: ", 35),
	   "under another subject");
	ok(!delivery_message_is_delivery(msg.buf),
	   "which is not a delivery alone");
	got = items(msg.buf);
	ok(got && strstr(got, PATH2 " ") != NULL, "its record is read still");
	free(got);

	got = items("deliver to INBOX\n\nPath: " PATH1 "\nBlob: 12ab\n");
	is_str(got, PATH1 " -\n", "a Blob line that is no id is not one");
	free(got);
	ok(!delivery_message_is_delivery("merge\n"), "a merge is no delivery");
	strbuf_release(&msg);
	delivery_record_release(&d);
}

/* Commit message on top of refs/heads/mail, at time when. */
static void commit_msg(struct repo *r, const char *message, time_t when)
{
	struct oid head, tree, c;

	if (repo_ref_read(&head, r, REF_MAIL) < 0 ||
	    repo_commit_tree(&tree, r, &head) < 0 ||
	    repo_commit(&c, r, &tree, &head, 1, message, when, NULL, NULL) < 0 ||
	    repo_ref_cas(r, REF_MAIL, &c, &head, "test") < 0)
		log_fatal("cannot commit");
}

static void test_find(const char *dir)
{
	struct delivery_record d = DELIVERY_RECORD_INIT;
	struct strbuf msg = STRBUF_INIT;
	char *path = xasprintf("%s/repo.git", dir);
	struct repo *r;
	struct oid b1, b2, b3, found, head;

	if (repo_open(&r, path, REPO_CREATE) < 0)
		log_fatal("cannot create '%s'", path);
	blob_of(&b1, 1);
	blob_of(&b2, 2);
	blob_of(&b3, 3);
	/* an old delivery of b3, then a recent one of b1 and b2 */
	delivery_record_add(&d, "", PATH1, &b3);
	delivery_record_message(&msg, &d, NULL);
	commit_msg(r, msg.buf, time(NULL) - 30 * 24 * 3600);
	delivery_record_release(&d);
	strbuf_reset(&msg);
	delivery_record_add(&d, "", PATH1, &b1);
	delivery_record_add(&d, ".Sent", PATH2, &b2);
	delivery_record_message(&msg, &d, NULL);
	commit_msg(r, msg.buf, -1);
	repo_ref_read(&head, r, REF_MAIL);
	commit_msg(r, "mail client: 1 flag changed\n", -1);

	ok(delivery_find_recent(&found, r, &b2, 3600) == 0 &&
	   oid_equal(&found, &head), "the second message of a group");
	ok(delivery_find_recent(&found, r, &b1, 3600) == 0 &&
	   oid_equal(&found, &head), "the first");
	is_int(delivery_find_recent(&found, r, &b3, 7 * 24 * 3600), E_NOTFOUND,
	       "a delivery older than the window is not looked at");
	ok(delivery_find_recent(&found, r, &b3, 60 * 24 * 3600) == 0,
	   "within a wider one it is");

	/* through dovecot-lda: stored b2 (Sieve edited it), input b4 */
	{
		struct delivery_item it;
		struct oid b4;
		const char *pos;
		blob_of(&b4, 4);
		delivery_record_release(&d);
		strbuf_reset(&msg);
		delivery_record_add(&d, ".Junk", PATH2, &b2);
		delivery_record_input(&d, &b4);
		delivery_record_message(&msg, &d, NULL);
		pos = msg.buf;
		ok(strstr(msg.buf, "\nInput: ") &&
		   delivery_record_next(&it, &pos) && it.has_blob &&
		   oid_equal(&it.blob, &b2) && !delivery_record_next(&it, &pos),
		   "an Input line leaves the pairs as they are");
		commit_msg(r, msg.buf, -1);
		repo_ref_read(&head, r, REF_MAIL);
		ok(delivery_find_recent(&found, r, &b4, 3600) == 0 &&
		   oid_equal(&found, &head), "found by its input");
	}
	repo_free(r);
	strbuf_release(&msg);
	delivery_record_release(&d);
	free(path);
}

int main(void)
{
	char tmpl[] = "/tmp/delivery-t.XXXXXX";

	log_init("delivery-t", LOG_TO_STDERR, LOG_LVL_ERROR);
	repo_global_init();
	if (!mkdtemp(tmpl))
		log_fatal("mkdtemp: failed");
	test_format_parse();
	test_find(tmpl);
	rm_rf(tmpl);
	return tap_done();
}
