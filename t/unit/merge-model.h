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
 * *numbered how many UIDs replicas gave at apply to messages a merge
 * left unnumbered.
 */
unsigned long long imap_model_run(uint64_t seed, unsigned long long ncases,
				  unsigned long long *numbered);

#endif
