/* expf and logf for code from TVM's LLVM backend (LLVM lowers llvm.exp.f32 / llvm.log.f32 to
 * these calls). Debian's picolibc has no rv32imf/ilp32 build, so the two are written here:
 * single precision throughout (RV32F; a double would need soft-float helpers), Cody-Waite
 * range reduction and a short polynomial. tests/coral/test_mathf.py measures the error against
 * numpy's float64 results over the whole range: within 1 ulp of the correctly rounded value.
 * Compiled with the scalar -march and -fno-builtin: clang must not turn the code back into
 * calls to itself. */
#include <stdint.h>

static float from_bits(uint32_t bits) {
    union { uint32_t u; float f; } v = {bits};
    return v.f;
}

static uint32_t to_bits(float f) {
    union { float f; uint32_t u; } v = {f};
    return v.u;
}

/* 2^k for -126 <= k <= 127 as a float. */
static float pow2i(int32_t k) { return from_bits((uint32_t)(k + 127) << 23); }

/* ln 2 split so that k * LN2_HI is exact for |k| < 2^11 (LN2_HI has 12 trailing zero bits). */
#define LN2_HI 6.93145751953125e-01f
#define LN2_LO 1.42860682030941723212e-06f
#define LOG2E 1.44269504088896338700f

float expf(float x) {
    if (x != x)
        return x;                      /* NaN */
    if (x > 88.72283935546875f)
        return from_bits(0x7f800000u); /* overflow to +inf (expf(88.7228...) is FLT_MAX) */
    if (x < -103.972084045410156f)
        return 0.0f;                   /* below half the smallest subnormal */
    /* x = k ln2 + r, |r| <= ln2 / 2. */
    float kf = x * LOG2E;
    int32_t k = (int32_t)(kf + (kf < 0.0f ? -0.5f : 0.5f));
    float r = (x - (float)k * LN2_HI) - (float)k * LN2_LO;
    /* e^r by its Taylor series to r^7: the truncation error is below 5e-9 relative. */
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r * r + r;
    p = p + 1.0f;
    /* Scale by 2^k in two steps: k may be 128 (just below overflow) or reach into subnormals. */
    if (k > 127)
        return p * pow2i(127) * pow2i(k - 127);
    if (k < -126)
        return p * pow2i(-126) * pow2i(k + 126);
    return p * pow2i(k);
}

float logf(float x) {
    uint32_t bits = to_bits(x);
    if (x != x || (bits >> 31))
        return x == 0.0f ? from_bits(0xff800000u) : from_bits(0x7fc00000u); /* -0 -> -inf, < 0 -> NaN */
    if (x == 0.0f)
        return from_bits(0xff800000u);
    if (bits >= 0x7f800000u)
        return x;                      /* +inf */
    int32_t e = 0;
    if (bits < 0x00800000u) {          /* subnormal: scale into the normal range first */
        x *= 8388608.0f;               /* 2^23 */
        bits = to_bits(x);
        e = -23;
    }
    e += (int32_t)(bits >> 23) - 127;
    float m = from_bits((bits & 0x007fffffu) | 0x3f800000u); /* [1, 2) */
    if (m > 1.41421356237309504880f) {                        /* -> [sqrt(1/2), sqrt(2)) */
        m *= 0.5f;
        e += 1;
    }
    /* log m = 2 atanh(s), s = (m - 1) / (m + 1), |s| <= 0.1716: the series to s^11. */
    float f = m - 1.0f;
    float s = f / (2.0f + f);
    float s2 = s * s;
    float q = 2.0f / 11.0f;
    q = q * s2 + 2.0f / 9.0f;
    q = q * s2 + 2.0f / 7.0f;
    q = q * s2 + 2.0f / 5.0f;
    q = q * s2 + 2.0f / 3.0f;
    /* 2s = f - s f: keeps the leading term exact when f is small. */
    float log_m = (f - s * f) + s * s2 * q;
    float ef = (float)e;
    return ef * LN2_HI + (log_m + ef * LN2_LO);
}
