/*
 * merge-model: what the parts of the model test share.
 */
#ifndef MERGE_MODEL_H
#define MERGE_MODEL_H

#include <stdbool.h>
#include <stdint.h>

/*
 * Run ncases cases of the model of format 2's IMAP rules
 * (merge-model-imap.c) from seed; the number of failed cases, and in
 * *slot7 how often two pair merges gave one slot-7 UID to two messages.
 * owner: the variant where each replica numbers what the merge could not
 * keep, from its own slot (no UID may then ever name two messages).
 */
unsigned long long imap_model_run(uint64_t seed, unsigned long long ncases,
				  bool owner, unsigned long long *slot7);

#endif
