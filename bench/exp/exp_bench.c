/* Benchmark of the exp kernels of kernels_c/hk_exp.h over N floats (default 1024).
 *
 * For every kernel (softmax, logistic, gelu, gelu_tanh) x exp variant (libm, quake1, quake2) it
 * calls hk_bench_begin(), the kernel, hk_bench_end(); the QEMU plugin hk_insn counts the guest
 * instructions between entering the two markers (one line per span; the first span is empty and
 * measures the marker overhead). It then prints the outputs, so the host can check them:
 *     K <kernel> <exp>                      (one per kernel, in span order)
 *     Y <word> <word> ...                   (the output bits in hex, 16 words a line)
 * With HK_BENCH_TIMING (host build), it also times the kernels: R rounds, each round running
 * every kernel once in turn (interleaved), and prints the median "T <kernel> <exp> <ns/elt>".
 *
 * Bare metal (mps2-an386, mps3-an547): link with m_startup.c; output goes through semihosting.
 * Linux (host, rpi4, rpi2): output on stdout. */
#if defined(HK_BENCH_TIMING) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 199309L /* clock_gettime under -std=c99 */
#endif
#include <stdint.h>

#include "hk_exp.h"

#ifndef HK_BENCH_N
#define HK_BENCH_N 1024
#endif

#if defined(__linux__) || defined(__APPLE__)
#include <stdio.h>
static void out(const char *s) { fputs(s, stdout); }
#else
void hk_semihost_puts(const char *s);
static void out(const char *s) { hk_semihost_puts(s); }
#endif

typedef void (*kernel_fn)(const float *x, float *y, int n);

__attribute__((noinline)) static void k_none(const float *x, float *y, int n)
{
    (void)x;
    (void)y;
    (void)n;
}

/* One out-of-line copy of each kernel, so the marked span holds exactly one call. */
#define HK_BENCH_WRAP(op, v)                                                            \
    __attribute__((noinline)) static void b_##op##_##v(const float *x, float *y, int n) \
    {                                                                                   \
        hk_##op##_##v##_f32(x, y, n);                                                   \
    }
HK_BENCH_WRAP(softmax, libm)
HK_BENCH_WRAP(softmax, quake1)
HK_BENCH_WRAP(softmax, quake2)
HK_BENCH_WRAP(logistic, libm)
HK_BENCH_WRAP(logistic, quake1)
HK_BENCH_WRAP(logistic, quake2)
HK_BENCH_WRAP(gelu, libm)
HK_BENCH_WRAP(gelu, quake1)
HK_BENCH_WRAP(gelu, quake2)
HK_BENCH_WRAP(gelu_tanh, libm)
HK_BENCH_WRAP(gelu_tanh, quake1)
HK_BENCH_WRAP(gelu_tanh, quake2)

static const struct {
    const char *op, *exp;
    kernel_fn fn;
} kernels[] = {
    {"softmax", "libm", b_softmax_libm},
    {"softmax", "quake1", b_softmax_quake1},
    {"softmax", "quake2", b_softmax_quake2},
    {"logistic", "libm", b_logistic_libm},
    {"logistic", "quake1", b_logistic_quake1},
    {"logistic", "quake2", b_logistic_quake2},
    {"gelu", "libm", b_gelu_libm},
    {"gelu", "quake1", b_gelu_quake1},
    {"gelu", "quake2", b_gelu_quake2},
    {"gelu_tanh", "libm", b_gelu_tanh_libm},
    {"gelu_tanh", "quake1", b_gelu_tanh_quake1},
    {"gelu_tanh", "quake2", b_gelu_tanh_quake2},
};
#define NK ((int)(sizeof kernels / sizeof kernels[0]))

static volatile uint32_t marks;

__attribute__((noinline, noipa)) void hk_bench_begin(void) { marks = marks + 1u; }

__attribute__((noinline, noipa)) void hk_bench_end(void) { marks = marks + 2u; }

static float xs[HK_BENCH_N], ys[HK_BENCH_N];

/* The bench input: HK_BENCH_N floats uniform in [-8, 8), from a fixed LCG (same on every board). */
static void make_input(void)
{
    uint32_t s = 12345u;
    for (int i = 0; i < HK_BENCH_N; i++) {
        s = s * 1664525u + 1013904223u;
        xs[i] = (float)(s >> 8) * (16.0f / 16777216.0f) - 8.0f;
    }
}

static void put_hex(char *p, uint32_t v)
{
    for (int k = 7; k >= 0; k--) {
        p[k] = "0123456789abcdef"[v & 15u];
        v >>= 4;
    }
}

static void print_outputs(const char *op, const char *exp)
{
    char line[16 * 9 + 4];
    out("K ");
    out(op);
    out(" ");
    out(exp);
    out("\n");
    for (int i = 0; i < HK_BENCH_N; i += 16) {
        char *p = line;
        *p++ = 'Y';
        for (int j = i; j < i + 16 && j < HK_BENCH_N; j++) {
            uint32_t u;
            memcpy(&u, &ys[j], 4);
            *p++ = ' ';
            put_hex(p, u);
            p += 8;
        }
        *p++ = '\n';
        *p = 0;
        out(line);
    }
}

#ifdef HK_BENCH_TIMING
#include <stdlib.h>
#include <time.h>
#define ROUNDS 301
#define INNER 8
static double samples[NK][ROUNDS];

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void timing(void)
{
    for (int r = -10; r < ROUNDS; r++) { /* 10 warm-up rounds */
        for (int k = 0; k < NK; k++) {
            double t0 = now_ns();
            for (int j = 0; j < INNER; j++) {
                kernels[k].fn(xs, ys, HK_BENCH_N);
            }
            double t1 = now_ns();
            if (r >= 0) {
                samples[k][r] = (t1 - t0) / INNER / HK_BENCH_N;
            }
        }
    }
    for (int k = 0; k < NK; k++) {
        qsort(samples[k], ROUNDS, sizeof(double), cmp_double);
        printf("T %s %s %.6f\n", kernels[k].op, kernels[k].exp, samples[k][ROUNDS / 2]);
    }
}
#endif

int main(void)
{
    make_input();
    for (int k = -1; k < NK; k++) { /* k = -1: the empty span (call overhead) */
        kernel_fn fn = k < 0 ? k_none : kernels[k].fn;
        hk_bench_begin();
        fn(xs, ys, HK_BENCH_N);
        hk_bench_end();
        if (k >= 0) {
            print_outputs(kernels[k].op, kernels[k].exp);
        }
    }
#ifdef HK_BENCH_TIMING
    timing();
#endif
    return 0;
}
