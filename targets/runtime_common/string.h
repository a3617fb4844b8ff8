/* The part of <string.h> the runtime implements (string.c): there is no C library on the
 * chip, and clang's freestanding headers stop at stddef.h/stdint.h. */
#ifndef NPU_STRING_H
#define NPU_STRING_H

#include <stddef.h>

void *memset(void *dst, int value, size_t n);
void *memcpy(void *restrict dst, const void *restrict src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);

#endif /* NPU_STRING_H */
