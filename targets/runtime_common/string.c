/* memset, memcpy, memmove, memcmp: clang emits calls to them (struct copies, zeroing) even
 * with -ffreestanding. Plain C, compiled with the scalar -march (no vector stores before the
 * vector unit is set up) and -fno-builtin (so clang does not turn these loops back into calls
 * to themselves). */
#include <stdint.h>
#include <string.h> /* ours, beside this file */

typedef uint32_t __attribute__((may_alias)) word_t; /* a word view of any bytes */

void *memset(void *dst, int value, size_t n) {
    unsigned char *d = dst;
    while (n--)
        *d++ = (unsigned char)value;
    return dst;
}

void *memcpy(void *restrict dst, const void *restrict src, size_t n) {
    unsigned char *d = dst;
    const unsigned char *s = src;
    /* Word copies when both are aligned: 4x fewer instructions for tensor-sized copies. */
    if ((((uintptr_t)d | (uintptr_t)s) & 3) == 0) {
        for (; n >= 4; n -= 4, d += 4, s += 4)
            *(word_t *)d = *(const word_t *)s;
    }
    while (n--)
        *d++ = *s++;
    return dst;
}

void *memmove(void *dst, const void *src, size_t n) {
    unsigned char *d = dst;
    const unsigned char *s = src;
    if (d < s) {
        while (n--)
            *d++ = *s++;
    } else {
        while (n--) /* backwards: dst overlaps the end of src */
            d[n] = s[n];
    }
    return dst;
}

int memcmp(const void *a, const void *b, size_t n) {
    const unsigned char *x = a, *y = b;
    for (; n; n--, x++, y++)
        if (*x != *y)
            return *x - *y;
    return 0;
}
