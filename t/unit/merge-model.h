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

/* What the format 2 tree model (merge-model-v2.c) did. */
struct v2_totals {
	unsigned long long cases, failed, merges, numbered, messages;
};

/*
 * Run the cases job, job + jobs, ... below ncases of the format 2 tree
 * model from seed, in an in-memory repository of its own; the number of
 * failed cases (t filled in).
 */
unsigned long long v2_model_run(uint64_t seed, unsigned long long ncases,
				int job, int jobs, struct v2_totals *t);

/* One case of the format 2 tree model whose choices are data[0..size)
 * (t/fuzz/fuzz-merge.c); the number of failures. */
unsigned long long v2_model_bytes(const uint8_t *data, size_t size);

#endif
