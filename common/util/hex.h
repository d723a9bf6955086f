/*
 * hex: the lower-case hexadecimal digits git writes object ids and their
 * directory names with (and the merge its key suffixes), and the value
 * of a digit (%XX in a URL, an id read back).
 */
#ifndef HEX_H
#define HEX_H

#include <stdbool.h>
#include <stddef.h>

/* The value of hex digit c, of either case; -1 when c is not one. */
static inline int hex_value(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Are the n bytes at s all of 0-9 and a-f?  (A NUL among them is not.) */
static inline bool hex_is_lower(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

#endif
