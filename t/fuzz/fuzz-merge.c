/*
 * fuzz-merge: libFuzzer target for the merge of format 2 trees
 * (common/merge*.c).  Input: the choices of one case of the format 2
 * tree model (t/unit/merge-model-v2.c), one byte each: how many
 * replicas, then operations (deliver, expunge, flags, keywords, moves,
 * folders created and deleted) and syncs of pairs, each merge applied
 * with "number at apply".  Properties, an abort() when broken: every
 * merge is the same commit both ways round, every tree a replica shows
 * is valid format 2, no (folder, UIDVALIDITY, UID) ever names two
 * messages, and the replicas converge with nothing lost.
 */
#include "autoconf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "merge-model.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_init("fuzz-merge", LOG_TO_STDERR, LOG_LVL_ERROR);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 4096)
		return 0;
	if (v2_model_bytes(data, size)) {
		fprintf(stderr, "broken: a property of the format 2 merge\n");
		abort();
	}
	return 0;
}
