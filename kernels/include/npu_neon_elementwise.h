/* arm64 NEON element-wise microkernels (cpp/src/neon_elementwise.cc emits the calls): 256-entry
 * table lookups (lut: sigmoid, hard-swish, ...; requantize). Bit-exact to kernels/ref
 * (tests/coral/test_arm64_target.py, in qemu-aarch64). */
#ifndef NPU_NEON_ELEMENTWISE_H
#define NPU_NEON_ELEMENTWISE_H

#include <arm_neon.h>
#include <stdint.h>

/* y[i] = table[(uint8_t)x[i]] for i in [begin, end): the table as four 64-byte blocks held in 16
 * registers; tbl looks up the first block (an index past it gives 0), tbx the others (the index less
 * the block's start; past the block the previous result stays), 16 bytes at a time. */
static __attribute__((noinline, unused)) void npu_neon_lookup(const int8_t* table, const int8_t* x, int8_t* y,
                                                              int64_t begin, int64_t end) {
    const int8x16x4_t t0 = vld1q_s8_x4(table), t1 = vld1q_s8_x4(table + 64), t2 = vld1q_s8_x4(table + 128),
                      t3 = vld1q_s8_x4(table + 192);
    int64_t i = begin;
    for (; i + 16 <= end; i += 16) {
        const uint8x16_t index = vreinterpretq_u8_s8(vld1q_s8(x + i));
        int8x16_t r = vqtbl4q_s8(t0, index);
        r = vqtbx4q_s8(r, t1, vsubq_u8(index, vdupq_n_u8(64)));
        r = vqtbx4q_s8(r, t2, vsubq_u8(index, vdupq_n_u8(128)));
        r = vqtbx4q_s8(r, t3, vsubq_u8(index, vdupq_n_u8(192)));
        vst1q_s8(y + i, r);
    }
    for (; i < end; ++i) y[i] = table[(uint8_t)x[i]];
}

#endif /* NPU_NEON_ELEMENTWISE_H */
