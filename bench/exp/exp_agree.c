/* Agreement of the fast paths of kernels_c/hk_exp.h (NEON, Helium, Cortex-M asm) with the portable
 * C, on the target itself, over fixed input sets (random, wide, edge values, masked, tails).
 *
 * For every set x kernel x variant it prints
 *     R <set> <kernel> <exp> <n> <mismatches> <flushed> <hash of portable> <hash of fast>
 * where a mismatch is an output whose bits differ (NaNs compare equal), "flushed" counts outputs
 * the portable C gives as a subnormal and the fast path as 0 (armv7 NEON flushes denormals; they
 * are not counted as mismatches), and a hash is FNV-1a over the output bits with NaN written as
 * 0x7FC00000 (the host recomputes it from hilkit.models.quake). Last line: "DONE <mismatches>";
 * the exit status is 1 if there was any mismatch. Linux: stdout; bare metal: semihosting. */
#include <stdint.h>

#include "hk_exp.h"

#if defined(__linux__) || defined(__APPLE__)
#include <stdio.h>
static void out(const char *s) { fputs(s, stdout); }
#else
void hk_semihost_puts(const char *s);
static void out(const char *s) { hk_semihost_puts(s); }
#endif

#define NMAX 1100
static float xin[NMAX], yc[NMAX], yf[NMAX];
static uint32_t lcg_state;

static uint32_t lcg(void)
{
    lcg_state = lcg_state * 1664525u + 1013904223u;
    return lcg_state;
}

/* n values (int in [-2^23, 2^23)) * 2^-shift + offset, exactly as hilkit's test regenerates them */
static int make_ints(int n, int shift, float offset)
{
    float scale = 1.0f;
    for (int k = 0; k < shift; k++) {
        scale *= 0.5f;
    }
    for (int i = 0; i < n; i++) {
        int32_t v = (int32_t)(lcg() >> 8) - 8388608;
        xin[i] = (float)v * scale + offset;
    }
    return n;
}

static const uint32_t edge_bits[] = {
    /* clang-format off */
    0xff800000u, /* -inf */ 0xc2c80000u, /* -100 */ 0xc2b00000u, /* -88 */ 0xc2ae0000u, /* -87 */
    0xc2b20000u, /* -89 */  0x00000000u, /* 0 */   0x80000000u, /* -0 */  0x42b00000u, /* 88 */
    0x42b20000u, /* 89 */   0x42b17218u, /* 88.72 */ 0x42b18000u, /* 88.75 */ 0x7f800000u, /* inf */
    0x00000001u, /* min subnormal */ 0x807fffffu, /* -max subnormal */ 0x00800000u, /* FLT_MIN */
    0x7f7fffffu, /* FLT_MAX */ 0xff7fffffu, /* -FLT_MAX */ 0x3f800000u, /* 1 */ 0xbf800000u, /* -1 */
    0x4e6e6b28u, /* 1e9 */  0xce6e6b28u, /* -1e9 */ 0x43800000u, /* 256 */ 0x43808000u, /* 257 */
    0x7fc00000u, /* NaN */  0xffc00000u, /* -NaN */ 0x7f800001u, /* sNaN */
    /* clang-format on */
};
#define NEDGE ((int)(sizeof edge_bits / sizeof edge_bits[0]))

/* Input set k; returns its length (0: no more sets). */
static int make_set(int k)
{
    lcg_state = 2024u + (uint32_t)k;
    switch (k) {
    case 0:
        return make_ints(1000, 19, 0.0f); /* [-16, 16) */
    case 1:
        return make_ints(1023, 16, 0.0f); /* [-128, 128) */
    case 2:
        for (int i = 0; i < 517; i++) { /* any bit pattern: NaN, inf, subnormal, huge */
            uint32_t u = lcg();
            memcpy(&xin[i], &u, 4);
        }
        return 517;
    case 3:
    case 4: { /* the edge values; set 4 without NaN and +inf (a softmax worth checking) */
        int n = 0;
        for (int i = 0; i < NEDGE; i++) {
            if (k == 4 && (edge_bits[i] & 0x7f800000u) == 0x7f800000u && edge_bits[i] != 0xff800000u) {
                continue;
            }
            memcpy(&xin[n++], &edge_bits[i], 4);
        }
        return n;
    }
    case 5:
        return make_ints(300, 21, 1000.0f); /* [996, 1004): softmax's unfolded path */
    case 6: {                               /* masked attention: every third -inf */
        int n = make_ints(333, 19, 0.0f);
        for (int i = 0; i < n; i += 3) {
            xin[i] = -INFINITY;
        }
        return n;
    }
    case 7:
        return make_ints(1000, 14, -256.0f); /* [-768, 256): softmax folds, far elements underflow */
    default:
        if (k >= 8 && k < 8 + 19) {
            return make_ints(k - 7, 19, 0.0f); /* lengths 1..19: every tail */
        }
        return 0;
    }
}

typedef void (*kfn)(const float *, float *, int);
static const struct {
    const char *op, *exp;
    kfn fast, portable;
} kernels[] = {
    {"exp", "quake1", hk_exp_quake1_f32, hk_exp_quake1_f32_c},
    {"exp", "quake2", hk_exp_quake2_f32, hk_exp_quake2_f32_c},
    {"softmax", "quake1", hk_softmax_quake1_f32, hk_softmax_quake1_f32_c},
    {"softmax", "quake2", hk_softmax_quake2_f32, hk_softmax_quake2_f32_c},
    {"logistic", "quake1", hk_logistic_quake1_f32, hk_logistic_quake1_f32_c},
    {"logistic", "quake2", hk_logistic_quake2_f32, hk_logistic_quake2_f32_c},
    {"gelu", "quake1", hk_gelu_quake1_f32, hk_gelu_quake1_f32_c},
    {"gelu", "quake2", hk_gelu_quake2_f32, hk_gelu_quake2_f32_c},
    {"gelu_tanh", "quake1", hk_gelu_tanh_quake1_f32, hk_gelu_tanh_quake1_f32_c},
    {"gelu_tanh", "quake2", hk_gelu_tanh_quake2_f32, hk_gelu_tanh_quake2_f32_c},
};
#define NK ((int)(sizeof kernels / sizeof kernels[0]))

static uint32_t canon(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return f != f ? 0x7fc00000u : u;
}

static uint32_t fnv(const float *y, int n)
{
    uint32_t h = 2166136261u;
    for (int i = 0; i < n; i++) {
        uint32_t u = canon(y[i]);
        for (int b = 0; b < 4; b++) {
            h = (h ^ ((u >> (8 * b)) & 0xffu)) * 16777619u;
        }
    }
    return h;
}

static char *put_u(char *p, uint32_t v)
{
    char tmp[12];
    int k = 0;
    do {
        tmp[k++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v);
    while (k) {
        *p++ = tmp[--k];
    }
    return p;
}

static char *put_hex(char *p, uint32_t v)
{
    for (int k = 7; k >= 0; k--) {
        p[k] = "0123456789abcdef"[v & 15u];
        v >>= 4;
    }
    return p + 8;
}

static char *put_s(char *p, const char *s)
{
    while (*s) {
        *p++ = *s++;
    }
    return p;
}

/* Every kernel on fixed-size static arrays: once inlined with a constant n, GCC checks the loop
 * bounds (-Waggressive-loop-optimizations, -Warray-bounds); this build runs with -Werror. */
#define HK_AGREE_SIZES(N)                                      \
    {                                                          \
        static float xs[N], ys[N];                             \
        hk_softmax_quake1_f32(xs, ys, N);                      \
        hk_softmax_quake2_f32(xs, ys, N);                      \
        hk_softmax_libm_f32(xs, ys, N);                        \
        hk_logistic_quake1_f32(xs, ys, N);                     \
        hk_logistic_quake2_f32(xs, ys, N);                     \
        hk_logistic_libm_f32(xs, ys, N);                       \
        hk_gelu_quake1_f32(xs, ys, N);                         \
        hk_gelu_quake2_f32(xs, ys, N);                         \
        hk_gelu_libm_f32(xs, ys, N);                           \
        hk_gelu_tanh_quake1_f32(xs, ys, N);                    \
        hk_gelu_tanh_quake2_f32(xs, ys, N);                    \
        hk_gelu_tanh_libm_f32(xs, ys, N);                      \
        hk_exp_quake1_f32(xs, ys, N);                          \
        hk_exp_quake2_f32(xs, ys, N);                          \
        hk_exp_libm_f32(xs, ys, N);                            \
        hk_softmax_quake2_f32_c(xs, ys, N);                    \
        ys[0] = hk_quake1_expf(xs[0]) + hk_quake2_expf(xs[0]); \
    }
void hk_agree_constant_sizes(void);
void hk_agree_constant_sizes(void)
{
    HK_AGREE_SIZES(7)
    HK_AGREE_SIZES(1000)
}

int main(void)
{
    uint32_t total = 0;
    char line[128];
    for (int set = 0;; set++) {
        int n = make_set(set);
        if (n == 0) {
            break;
        }
        for (int k = 0; k < NK; k++) {
            kernels[k].portable(xin, yc, n);
            kernels[k].fast(xin, yf, n);
            uint32_t bad = 0, flushed = 0;
            for (int i = 0; i < n; i++) {
                if (canon(yc[i]) == canon(yf[i])) {
                    continue;
                }
                if (yf[i] == 0.0f && yc[i] != 0.0f && fabsf(yc[i]) < 1.17549435e-38f) {
                    flushed++;
                } else {
                    bad++;
                }
            }
            total += bad;
            char *p = put_s(line, "R ");
            p = put_u(p, (uint32_t)set);
            p = put_s(p, " ");
            p = put_s(p, kernels[k].op);
            p = put_s(p, " ");
            p = put_s(p, kernels[k].exp);
            p = put_s(p, " ");
            p = put_u(p, (uint32_t)n);
            p = put_s(p, " ");
            p = put_u(p, bad);
            p = put_s(p, " ");
            p = put_u(p, flushed);
            p = put_s(p, " ");
            p = put_hex(p, fnv(yc, n));
            p = put_s(p, " ");
            p = put_hex(p, fnv(yf, n));
            p = put_s(p, "\n");
            *p = 0;
            out(line);
        }
    }
    char *p = put_s(line, "DONE ");
    p = put_u(p, total);
    p = put_s(p, "\n");
    *p = 0;
    out(line);
    return total ? 1 : 0;
}
