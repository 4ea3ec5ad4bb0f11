/* Kernel bench firmware for the conv/dense kernels (hk_conv.h, hk_conv_sparse.h, hk_dense.h).
 *
 * Built on the board layer (hk_board.h) like boards/test/hk_echo.c, so the same program runs
 * natively, under qemu-user and under qemu-system; the host drives it over the board's link
 * (bench/pruning/kbench.py). Each kernel call sits alone between hk_mark_begin and hk_mark_end, so
 * the QEMU plugin counts exactly that call's instructions.
 *
 * Banner "HKB1 <board id>\n", then commands (little-endian):
 *   'C' hdr:i32[13] data:f32/u16/i32...  conv  -> status:u32, y:f32[F*OH*OW]
 *       hdr = variant, C, H, W, F, OH, OW, k, stride, pad_top, pad_left, relu, nnz
 *       variant 0 naive hk_conv2d_f32 (w [F][C][k][k]); 1 hk_conv2d_blocked_f32; 2 its portable C
 *       path hk_conv2d_blocked_f32_c (w blocked);
 *       3 sparse (nnz weights, nnz u16 offsets, F+1 i32 starts)
 *       then bias f32[F], x f32[C*H*W]
 *   'D' hdr:i32[4] W b x                    dense -> status:u32, y:f32[n_out]
 *       hdr = variant, n_in, n_out, relu; variant 0 the original two-accumulator loop, 1 hk_dense_f32,
 *       2 hk_dense_f32_c (W row-major), 3 hk_dense_blocked_f32, 4 hk_dense_blocked_f32_c (W blocked)
 *   'N'                                     an empty marked span (the marker overhead) -> status:u32
 *   'X' status:u8                           exit
 * Variants >= 16 (conv and dense) run compiled case number variant - 16 instead: kbench.py can
 * generate a C file that defines cases calling a kernel with constant shapes, exactly as the
 * generated model.c does, then includes this file (HK_KB_CASES; see kbench.py `build`).
 * Status 0 is success; 1 means the case does not fit the buffer pool; 2 an unknown case. */
#include <stdint.h>
#include <string.h>

#include "hk_board.h"
#include "hk_conv.h"
#include "hk_conv_sparse.h"
#include "hk_dense.h"

#ifndef HK_KB_POOL
#define HK_KB_POOL 65536 /* floats shared by all the arrays of one case */
#endif

__attribute__((noinline, used)) void hk_mark_begin(void) { __asm__ volatile("" ::: "memory"); }
__attribute__((noinline, used)) void hk_mark_end(void) { __asm__ volatile("nop" ::: "memory"); }

/* A compiled case: every array in the layout of its kernel (unused ones are ignored). */
typedef void (*hk_kb_case)(const float *x, const float *w, const uint16_t *off, const int32_t *start, const float *b,
                           float *y, float *s);
#ifdef HK_KB_CASES
static int hk_kb_case_count(void);
static hk_kb_case hk_kb_case_get(int i);
#else
static int hk_kb_case_count(void) { return 0; }
static hk_kb_case hk_kb_case_get(int i)
{
    (void)i;
    return 0;
}
#endif

static float g_pool[HK_KB_POOL];
static uint16_t g_off[HK_KB_POOL / 2]; /* sparse offsets */
static int32_t g_start[4097];          /* sparse filter starts */

static int get_byte(void)
{
    int c = hk_board_getc();
    if (c < 0) {
        hk_board_exit(0);
    }
    return c;
}

static uint32_t get_u32(void)
{
    uint32_t v = 0;
    int i;
    for (i = 0; i < 4; i++) {
        v |= (uint32_t)get_byte() << (8 * i);
    }
    return v;
}

static void get_words(void *dst, size_t n, size_t size)
{
    uint8_t *p = (uint8_t *)dst;
    size_t i;
    for (i = 0; i < n * size; i++) {
        p[i] = (uint8_t)get_byte();
    }
}

/* Skip input bytes of a case that does not fit. */
static void skip(size_t n)
{
    while (n-- > 0u) {
        (void)get_byte();
    }
}

static void put_u32(uint32_t v)
{
    uint8_t b[4];
    int i;
    for (i = 0; i < 4; i++) {
        b[i] = (uint8_t)(v >> (8 * i));
    }
    hk_board_write(b, 4);
}

/* The dense kernel as it was before register blocking: the bench's baseline. */
HK_INLINE void kb_dense_naive(const float *x, int n_in, const float *w, const float *b, float *y, int n_out, int relu)
{
    for (int o = 0; o < n_out; o++) {
        const float *row = w + (size_t)o * (size_t)n_in;
        float acc0 = 0.0f, acc1 = 0.0f;
        int i = 0;
        for (; i + 1 < n_in; i += 2) {
            acc0 += row[i] * x[i];
            acc1 += row[i + 1] * x[i + 1];
        }
        for (; i < n_in; i++) {
            acc0 += row[i] * x[i];
        }
        float v = b[o] + (acc0 + acc1);
        y[o] = (relu && v < 0.0f) ? 0.0f : v;
    }
}

/* One out-of-line copy of each kernel: the marked span holds exactly one call. */
__attribute__((noinline)) static void dense_naive(const float *x, int n_in, const float *w, const float *b, float *y,
                                                  int n_out, int relu)
{
    kb_dense_naive(x, n_in, w, b, y, n_out, relu);
}
__attribute__((noinline)) static void conv_naive(const float *x, hk_dims in, const float *w, const float *b, float *y,
                                                 hk_dims out, hk_conv_params p, int relu)
{
    hk_conv2d_f32(x, in, w, b, y, out, p, relu);
}
__attribute__((noinline)) static void conv_blocked(const float *x, hk_dims in, const float *w, const float *b, float *y,
                                                   hk_dims out, hk_conv_params p, int relu, float *s)
{
    hk_conv2d_blocked_f32(x, in, w, b, y, out, p, relu, s);
}
__attribute__((noinline)) static void conv_blocked_scalar(const float *x, hk_dims in, const float *w, const float *b,
                                                          float *y, hk_dims out, hk_conv_params p, int relu, float *s)
{
    hk_conv2d_blocked_f32_c(x, in, w, b, y, out, p, relu, s);
}
__attribute__((noinline)) static void conv_sparse(const float *x, hk_dims in, const float *w, const uint16_t *off,
                                                  const int32_t *start, const float *b, float *y, hk_dims out,
                                                  hk_conv_params p, int relu, float *s)
{
    hk_conv2d_sparse_f32(x, in, w, off, start, b, y, out, p, relu, s);
}
__attribute__((noinline)) static void dense_fast(const float *x, int n_in, const float *w, const float *b, float *y,
                                                 int n_out, int relu)
{
    hk_dense_f32(x, n_in, w, b, y, n_out, relu);
}
__attribute__((noinline)) static void dense_scalar(const float *x, int n_in, const float *w, const float *b, float *y,
                                                   int n_out, int relu)
{
    hk_dense_f32_c(x, n_in, w, b, y, n_out, relu);
}
__attribute__((noinline)) static void dense_blocked(const float *x, int n_in, const float *w, const float *b, float *y,
                                                    int n_out, int relu)
{
    hk_dense_blocked_f32(x, n_in, w, b, y, n_out, relu);
}
__attribute__((noinline)) static void dense_blocked_c(const float *x, int n_in, const float *w, const float *b,
                                                      float *y, int n_out, int relu)
{
    hk_dense_blocked_f32_c(x, n_in, w, b, y, n_out, relu);
}
__attribute__((noinline)) static void none(void) { __asm__ volatile("" ::: "memory"); }

static void do_conv(void)
{
    int32_t h[13];
    size_t i;
    for (i = 0; i < 13u; i++) {
        h[i] = (int32_t)get_u32();
    }
    const int variant = h[0], relu = h[11];
    const hk_dims in = {h[1], h[2], h[3]}, out = {h[4], h[5], h[6]};
    const hk_conv_params p = {h[7], h[8], h[9], h[10]};
    const size_t nnz = (size_t)h[12];
    const size_t nx = (size_t)in.c * (size_t)in.h * (size_t)in.w;
    const size_t ny = (size_t)out.c * (size_t)out.h * (size_t)out.w;
    const int sparse = variant == 3 || nnz > 0;
    const size_t nw = sparse ? nnz : (size_t)out.c * (size_t)in.c * (size_t)p.kernel * (size_t)p.kernel;
    const size_t nscratch = variant == 0 ? 0u : hk_conv2d_scratch_floats(in, out, p);
    const size_t nstart = sparse ? (size_t)out.c + 1u : 0u;
    const size_t bytes_in = 4u * (nw + (size_t)out.c + nx) + (sparse ? 2u * nnz + 4u * nstart : 0u);
    if (nw + (size_t)out.c + nx + ny + nscratch > (size_t)HK_KB_POOL || nnz > sizeof g_off / 2u ||
        nstart > sizeof g_start / 4u) {
        skip(bytes_in);
        put_u32(1u);
        return;
    }
    uint16_t *off = g_off;
    int32_t *start = g_start;
    float *w = g_pool, *b = w + nw, *x = b + out.c, *y = x + nx, *s = y + ny;
    get_words(w, nw, 4);
    if (sparse) {
        get_words(off, nnz, 2);
        get_words(start, nstart, 4);
    }
    get_words(b, (size_t)out.c, 4);
    get_words(x, nx, 4);
    if (variant >= 16) {
        if (variant - 16 >= hk_kb_case_count()) {
            put_u32(2u);
            return;
        }
        hk_kb_case fn = hk_kb_case_get(variant - 16);
        hk_mark_begin();
        fn(x, w, off, start, b, y, s);
        hk_mark_end();
        put_u32(0u);
        hk_board_write((const uint8_t *)y, ny * 4u);
        return;
    }
    hk_mark_begin();
    switch (variant) {
    case 0:
        conv_naive(x, in, w, b, y, out, p, relu);
        break;
    case 1:
        conv_blocked(x, in, w, b, y, out, p, relu, s);
        break;
    case 2:
        conv_blocked_scalar(x, in, w, b, y, out, p, relu, s);
        break;
    default:
        conv_sparse(x, in, w, off, start, b, y, out, p, relu, s);
        break;
    }
    hk_mark_end();
    put_u32(0u);
    hk_board_write((const uint8_t *)y, ny * 4u);
}

static void do_dense(void)
{
    int32_t h[4];
    size_t i;
    for (i = 0; i < 4u; i++) {
        h[i] = (int32_t)get_u32();
    }
    const int variant = h[0], n_in = h[1], n_out = h[2], relu = h[3];
    const size_t nw = (size_t)n_in * (size_t)n_out;
    const size_t total = nw + 2u * (size_t)n_out + (size_t)n_in;
    if (total > (size_t)HK_KB_POOL) {
        skip(4u * (nw + (size_t)n_out + (size_t)n_in));
        put_u32(1u);
        return;
    }
    float *w = g_pool, *b = w + nw, *x = b + n_out, *y = x + n_in;
    get_words(w, nw, 4);
    get_words(b, (size_t)n_out, 4);
    get_words(x, (size_t)n_in, 4);
    if (variant >= 16) {
        if (variant - 16 >= hk_kb_case_count()) {
            put_u32(2u);
            return;
        }
        hk_kb_case fn = hk_kb_case_get(variant - 16);
        hk_mark_begin();
        fn(x, w, 0, 0, b, y, 0);
        hk_mark_end();
        put_u32(0u);
        hk_board_write((const uint8_t *)y, (size_t)n_out * 4u);
        return;
    }
    hk_mark_begin();
    if (variant == 0) {
        dense_naive(x, n_in, w, b, y, n_out, relu);
    } else if (variant == 1) {
        dense_fast(x, n_in, w, b, y, n_out, relu);
    } else if (variant == 2) {
        dense_scalar(x, n_in, w, b, y, n_out, relu);
    } else if (variant == 3) {
        dense_blocked(x, n_in, w, b, y, n_out, relu);
    } else {
        dense_blocked_c(x, n_in, w, b, y, n_out, relu);
    }
    hk_mark_end();
    put_u32(0u);
    hk_board_write((const uint8_t *)y, (size_t)n_out * 4u);
}

int main(void)
{
    static const char banner[] = "HKB1 " HK_BOARD_ID "\n";
    hk_board_init();
    hk_board_write((const uint8_t *)banner, sizeof banner - 1);
    for (;;) {
        int cmd = get_byte();
        switch (cmd) {
        case 'C':
            do_conv();
            break;
        case 'D':
            do_dense();
            break;
        case 'N':
            hk_mark_begin();
            none();
            hk_mark_end();
            put_u32(0u);
            break;
        case 'X':
            hk_board_exit(get_byte());
            break;
        default:
            hk_board_exit(98);
        }
    }
}
