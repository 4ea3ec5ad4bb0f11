/* Whole-model bench of generated models (driven by bench/quake/model_bench.py).
 *
 * Links one or more builds of the same model, each model.c compiled with its hk_model_infer
 * renamed to hk_model_infer_<variant> (-Dhk_model_infer=hk_model_infer_<variant>), listed by
 *     -D'HKB_VARIANTS(X)=X(libm) X(quake2) ...'
 * and runs the HKB_N inputs of hkb_inputs.h through each:
 *   - every inference between hk_bench_begin() and hk_bench_end(), the markers the QEMU plugins
 *     count between (the first span is empty: the markers' own cost);
 *   - prints the outputs, so the host checks them: "K <variant>", then "Y <hex words>" per sample;
 *   - with HKB_TIMING (host), times every inference HKB_ROUNDS times, the variants taking turns at
 *     every input (interleaved, the order rotating); prints per variant the median time of each
 *     input averaged over the inputs, and the same of the minima: "T <variant> <median> <min>".
 * The `free` variant is the libm model.c compiled with -include free_exp.h: e^x costs a call that
 * returns 1, so libm minus free is the time spent computing expf. */
#if defined(HKB_TIMING) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 199309L /* clock_gettime under -std=c99 */
#endif
#include <stdint.h>

#include "hkb_inputs.h" /* HKB_N, HKB_N_IN, HKB_N_OUT, hkb_inputs[HKB_N][HKB_N_IN] */

#ifndef HKB_ROUNDS
#define HKB_ROUNDS 31
#endif

#if defined(__linux__) || defined(__APPLE__)
#include <stdio.h>
static void out(const char *s) { fputs(s, stdout); }
#else
void hk_semihost_puts(const char *s);
static void out(const char *s) { hk_semihost_puts(s); }
#endif

typedef int (*infer_fn)(const float *in, float *out);

#define HKB_DECLARE(v) int hk_model_infer_##v(const float *in, float *out);
HKB_VARIANTS(HKB_DECLARE)
#define HKB_ENTRY(v) {#v, hk_model_infer_##v},
static const struct {
    const char *name;
    infer_fn fn;
} variants[] = {HKB_VARIANTS(HKB_ENTRY)};
#define NV ((int)(sizeof variants / sizeof variants[0]))

/* The exp of the `free` variant: a call, no computation. */
float hk_free_expf(float x);
__attribute__((noinline)) float hk_free_expf(float x)
{
    (void)x;
    return 1.0f;
}

static volatile uint32_t marks;

__attribute__((noinline, noipa)) void hk_bench_begin(void) { marks = marks + 1u; }

__attribute__((noinline, noipa)) void hk_bench_end(void) { marks = marks + 2u; }

static float ys[HKB_N_OUT];

static void put_hex(char *p, uint32_t v)
{
    for (int k = 7; k >= 0; k--) {
        p[k] = "0123456789abcdef"[v & 15u];
        v >>= 4;
    }
}

static void print_outputs(void)
{
    char line[HKB_N_OUT * 9 + 4];
    int p = 0;
    line[p++] = 'Y';
    for (int i = 0; i < HKB_N_OUT; i++) {
        uint32_t w;
        const unsigned char *b = (const unsigned char *)&ys[i];
        w = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
        line[p++] = ' ';
        put_hex(line + p, w);
        p += 8;
    }
    line[p++] = '\n';
    line[p] = '\0';
    out(line);
}

#ifdef HKB_TIMING
#include <time.h>
static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static double median(double *v, int n)
{
    for (int i = 1; i < n; i++) { /* insertion sort: n is small */
        double t = v[i];
        int j = i - 1;
        while (j >= 0 && v[j] > t) {
            v[j + 1] = v[j];
            j--;
        }
        v[j + 1] = t;
    }
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Each inference is timed on its own, HKB_ROUNDS times, the variants taking turns at every input
 * (the order rotating), so a variant is never timed in a stretch of its own; the estimate is the
 * median of each input's times, averaged over the inputs (robust to the preemptions of a shared
 * machine, which hit single inferences). */
static void timing(void)
{
    static double ns[NV][HKB_N][HKB_ROUNDS];
    char line[96];
    for (int r = 0; r < HKB_ROUNDS; r++) {
        for (int i = 0; i < HKB_N; i++) {
            for (int k = 0; k < NV; k++) {
                const int v = (k + i + r) % NV;
                const double t0 = now_ns();
                variants[v].fn(hkb_inputs[i], ys);
                ns[v][i][r] = now_ns() - t0;
            }
        }
    }
    for (int v = 0; v < NV; v++) {
        double med = 0.0, lo = 0.0;
        for (int i = 0; i < HKB_N; i++) {
            med += median(ns[v][i], HKB_ROUNDS);
            lo += ns[v][i][0]; /* sorted by median() */
        }
        snprintf(line, sizeof line, "T %s %.3f %.3f\n", variants[v].name, med / HKB_N, lo / HKB_N);
        out(line);
    }
}
#endif

int main(void)
{
    hk_bench_begin();
    hk_bench_end();
    for (int v = 0; v < NV; v++) {
        out("K ");
        out(variants[v].name);
        out("\n");
        for (int i = 0; i < HKB_N; i++) {
            hk_bench_begin();
            const int rc = variants[v].fn(hkb_inputs[i], ys);
            hk_bench_end();
            if (rc != 0) {
                out("FAIL\n");
                return 2;
            }
            print_outputs();
        }
    }
#ifdef HKB_TIMING
    timing();
#endif
    return 0;
}
