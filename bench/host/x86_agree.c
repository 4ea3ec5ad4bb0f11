/* Outputs of the dense, token-dense, conv, attention and layer-norm kernels over many shapes, for
 * comparing the x86-64 SIMD paths (kernels_c/hk_<op>_x86.h) with the portable C: build this file
 * twice with the same flags, once with -DHK_NN_PORTABLE, and compare the two outputs
 * (tests/test_x86_paths.py).
 *
 * Prints "PATH nn=<x86 lanes or 0> exp=<lanes or 0> norm=<lanes of the layer norm, or 0>", then per
 * case "C <name>" and the outputs' bits as hex words, 8 a line. The inputs come from an LCG and include the values that
 * could tell orders or ReLUs apart: -0, tiny and huge magnitudes, and (in some cases) NaN and inf. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "hk_attention.h"
#include "hk_conv.h"
#include "hk_dense.h"
#include "hk_norm.h"

#define MAXF 20000
static float xin[MAXF], wrow[MAXF], wblk[MAXF], bias[512], yout[MAXF], scratch[MAXF];
static uint32_t lcg_state = 12345u;

static uint32_t lcg(void)
{
    lcg_state = lcg_state * 1664525u + 1013904223u;
    return lcg_state;
}

/* Mostly uniform in [-1, 1); with special = 1 also -0, 1e-30, 1e30, and rarely NaN / inf. */
static float value(int special)
{
    const uint32_t r = lcg();
    const float u = (float)(int32_t)(r >> 8) * (1.0f / 8388608.0f) - 1.0f;
    if (special) {
        switch (r & 63u) {
        case 0:
            return -0.0f;
        case 1:
            return 1e-30f;
        case 2:
            return -1e30f;
        case 3:
            return special > 1 ? (float)NAN : 0.0f;
        case 4:
            return special > 1 ? (float)INFINITY : 0.0f;
        default:
            break;
        }
    }
    return u;
}

static void fill(float *p, int n, int special)
{
    for (int i = 0; i < n; i++) {
        p[i] = value(special);
    }
}

static void print_case(const char *name, const float *y, int n)
{
    printf("C %s\n", name);
    for (int i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &y[i], 4);
        printf("%08x%c", (unsigned)u, (i % 8 == 7 || i == n - 1) ? '\n' : ' ');
    }
}

static void dense_cases(void)
{
    static const int ins[] = {1, 3, 4, 7, 24, 33, 64};
    static const int outs[] = {1, 2, 3, 4, 5, 8, 10, 12, 16, 20, 24, 31, 32, 36, 48, 72};
    char name[96];
    for (unsigned a = 0; a < sizeof ins / sizeof ins[0]; a++) {
        for (unsigned c = 0; c < sizeof outs / sizeof outs[0]; c++) {
            const int n_in = ins[a], n_out = outs[c];
            const int special = (int)((a + c) % 3);
            fill(xin, n_in, special);
            fill(wrow, n_in * n_out, 1);
            fill(bias, n_out, 1);
            hk_nn_block_weights(wrow, n_out, n_in, wblk);
            for (int relu = 0; relu < 2; relu++) {
                hk_dense_blocked_f32(xin, n_in, wblk, bias, yout, n_out, relu);
                snprintf(name, sizeof name, "dense %d %d relu%d", n_in, n_out, relu);
                print_case(name, yout, n_out);
            }
            for (int t = 1; t <= 9; t += 2) {
                fill(xin, t * n_in, special);
                hk_token_dense_f32(xin, t, n_in, wblk, bias, yout, n_out);
                snprintf(name, sizeof name, "token_dense t%d %d %d", t, n_in, n_out);
                print_case(name, yout, t * n_out);
            }
        }
    }
}

static void conv_one(int C, int H, int W, int F, int k, int stride, int same, int relu, int special)
{
    const int pad = same ? (k - 1) / 2 : 0;
    const int oh = same ? (H + stride - 1) / stride : (H - k) / stride + 1;
    const int ow = same ? (W + stride - 1) / stride : (W - k) / stride + 1;
    if (oh <= 0 || ow <= 0) {
        return;
    }
    const hk_dims in = {C, H, W}, out = {F, oh, ow};
    const hk_conv_params p = {k, stride, pad, pad};
    fill(xin, C * H * W, special);
    fill(wrow, F * C * k * k, 1);
    fill(bias, F, 1);
    hk_conv2d_block_weights(wrow, F, C, k, wblk);
    hk_conv2d_blocked_f32(xin, in, wblk, bias, yout, out, p, relu, scratch);
    char name[96];
    snprintf(name, sizeof name, "conv C%d %dx%d F%d k%d s%d %s relu%d", C, H, W, F, k, stride, same ? "same" : "valid",
             relu);
    print_case(name, yout, F * oh * ow);
}

static void conv_cases(void)
{
    static const int sizes[][2] = {{8, 8}, {4, 4}, {5, 7}, {3, 3}, {2, 9}, {9, 2}, {1, 1}, {12, 6}};
    static const int filters[] = {1, 3, 4, 6, 8, 16};
    for (unsigned s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        for (unsigned f = 0; f < sizeof filters / sizeof filters[0]; f++) {
            for (int k = 1; k <= 5; k += 2) {
                for (int stride = 1; stride <= 2; stride++) {
                    const int C = 1 + (int)((s + f + (unsigned)k) % 4);
                    const int special = (int)((s + f) % 3);
                    conv_one(C, sizes[s][0], sizes[s][1], filters[f], k, stride, 1, (int)(f & 1u), special);
                    conv_one(C, sizes[s][0], sizes[s][1], filters[f], k, stride, 0, (int)(~f & 1u), special);
                }
            }
        }
    }
}

/* through pointers: one copy of each variant (the kernels are always_inline) */
typedef void (*attention_fn)(const float *, int, int, int, const float *, const float *, const float *, const float *,
                             float, float *, float *);
static const attention_fn attention[3] = {hk_attention_libm_f32, hk_attention_quake1_f32, hk_attention_quake2_f32};

static void attention_cases(void)
{
    static const int shapes[][3] = {{16, 24, 2}, {1, 8, 1},  {3, 12, 3}, {7, 16, 2},  {9, 20, 4}, {17, 24, 2},
                                    {20, 36, 3}, {33, 8, 2}, {5, 6, 1},  {10, 32, 2}, {6, 40, 2}, {12, 28, 1}};
    char name[96];
    for (unsigned s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int t = shapes[s][0], d = shapes[s][1], heads = shapes[s][2];
        for (int e = 0; e < 3; e++) {
            fill(xin, t * d, 0);
            fill(wrow, 3 * d * d, 0);
            hk_nn_block_weights(wrow, 3 * d, d, wblk);
            fill(wrow, d * d, 0);
            fill(bias, 4 * d, 0);
            static float wout[4096];
            hk_nn_block_weights(wrow, d, d, wout);
            const float scale = 1.0f / (float)heads;
            attention[e](xin, t, d, heads, wblk, bias, wout, bias + 3 * d, scale, yout, scratch);
            snprintf(name, sizeof name, "attention t%d d%d h%d exp%d", t, d, heads, e);
            print_case(name, yout, t * d);
            if (e == 2) { /* in place: y == x */
                attention[e](xin, t, d, heads, wblk, bias, wout, bias + 3 * d, scale, xin, scratch);
                snprintf(name, sizeof name, "attention in place t%d d%d h%d", t, d, heads);
                print_case(name, xin, t * d);
            }
        }
    }
}

static void layernorm_cases(void)
{
    static const int dims[] = {1, 3, 4, 8, 12, 24, 33, 64};
    char name[96];
    for (unsigned k = 0; k < sizeof dims / sizeof dims[0]; k++) {
        for (int rows = 1; rows <= 20; rows += 3) {
            const int d = dims[k];
            fill(xin, rows * d, (int)(k % 3));
            fill(wrow, d, 1);
            fill(bias, d, 1);
            for (int inplace = 0; inplace < 2; inplace++) {
                float *y = inplace ? xin : yout;
                hk_layernorm_f32(xin, y, rows, d, wrow, bias);
                snprintf(name, sizeof name, "layernorm rows%d d%d%s", rows, d, inplace ? " in place" : "");
                print_case(name, y, rows * d);
            }
        }
    }
}

int main(void)
{
#if defined(HK_NN_X86)
    const int nn = HK__NW;
#else
    const int nn = 0;
#endif
#if defined(HK_EXP_X86)
    const int ex = HK__XW;
#else
    const int ex = 0;
#endif
#if defined(HK_NN_X86) /* the layer norm's x86 path declines in a GNU C mode with FMA contraction */
    static const float one[1] = {1.0f}, zero[1] = {0.0f};
    float probe[1] = {0.5f};
    const int norm = hk__layernorm_x86(probe, probe, 1, 1, one, zero) ? HK__NW : 0;
#else
    const int norm = 0;
#endif
    printf("PATH nn=%d exp=%d norm=%d\n", nn, ex, norm);
    dense_cases();
    conv_cases();
    attention_cases();
    layernorm_cases();
    printf("DONE\n");
    return 0;
}
