/* Test driver for the int8 kernels (kernels_c/hk_*_s8.h): reads requests, runs one kernel per
 * request, writes its output. Built natively with the sanitizers by tests/test_kernels_s8.py (stdin
 * and stdout), and included by bench/int8/s8bench.c, which runs the same requests on every board
 * over the board's link with each kernel call between instruction-count markers.
 *
 * Request (little-endian int32 unless said): op, out_bytes, scratch_bytes, n_ints, ints[n_ints],
 * n_bufs, then per buffer its byte length and bytes. Buffers land 8-byte aligned in a static pool,
 * followed by the output and the scratch. Response: status u32 (0 ok, 1 does not fit the pool,
 * 2 unknown op), then out_bytes bytes of output when the status is 0.
 *
 * ops (ints / buffers -> output):
 *   0 none       (nothing; the empty marked span)
 *   1 srdhm      - / a i32[], b i32[] -> i32[]            2 rdbp  - / x i32[], e i32[] -> i32[]
 *   3 mbqm       - / x, M, shift i32[] -> i32[]
 *   4 requantize out_zp, act_min, act_max / acc, M, shift i32[] -> i8[]
 *  10 conv2d     N H W C  O KH KW I  OH OW  sh sw ph pw dh dw  in_zp out_zp act_min act_max has_bias
 *                / x, w, bias, mult, shift (scratch: hk_conv2d_s8_scratch_bytes)
 *  11 dwconv2d   N H W C  KH KW M  OH OW  sh sw ph pw dh dw  in_zp out_zp act_min act_max has_bias
 *                / x, w, bias, mult, shift
 *  12 fc         B n_in n_out in_zp w_zp out_zp act_min act_max has_bias mult shift / x, w, bias
 *  13 fc per-ch  B n_in n_out in_zp w_zp out_zp act_min act_max has_bias / x, w, bias, mult, shift
 *  20 avgpool    N H W C  OH OW  fh fw sh sw ph pw act_min act_max / x    21 maxpool: the same
 *  22 mean       outer count inner in_zp out_zp mult shift / x
 *  30 add        n in1_zp in2_zp out_zp left_shift m1 s1 m2 s2 mo so act_min act_max / x1, x2
 *  31 add bcast  d[4] s1[4] s2[4] then the 12 values of op 30 after n / x1, x2
 *  40 softmax    rows depth mult left_shift diff_min / x
 *  41 logistic   n in_zp mult left_shift radius / x
 *  50 pad        N H W C pads[8] value / x
 *  51 concat     n outer inner sizes[n] / x_0 .. x_{n-1}
 *  52 quantize   n zp / x f32[], scale f32 -> i8[]       53 dequantize  n zp / x i8[], scale f32 -> f32[]
 *  54 requant    n in_zp out_zp mult shift / x -> i8[]
 *  >= 100        compiled case op - 100 (S8_CASES; see bench/int8/s8bench.py): the body s8_<op> of
 *                 one op above with its ints as literals; the request brings the same buffers. */
#include <stdint.h>
#include <string.h>

#include "hk_add_s8.h"
#include "hk_conv_s8.h"
#include "hk_fc_s8.h"
#include "hk_pool_s8.h"
#include "hk_shape_s8.h"
#include "hk_softmax_s8.h"

#ifndef S8_POOL_BYTES
#define S8_POOL_BYTES (8u * 1024u * 1024u)
#endif
#define S8_MAX_INTS 64
#define S8_MAX_BUFS 16

#if defined(__GNUC__)
#define S8_NOINLINE __attribute__((noinline))
#else
#define S8_NOINLINE
#endif

/* The program that includes this file may supply the link and the markers (bench/int8/s8bench.c);
 * by default the link is stdin/stdout and the markers do nothing. */
#ifndef S8_EMBEDDED
#include <stdio.h>
static int s8_getc(void)
{
    return getchar();
}
static void s8_write(const void *p, size_t n)
{
    fwrite(p, 1, n, stdout);
}
static void s8_mark_begin(void)
{
}
static void s8_mark_end(void)
{
}
#endif

/* One request as the kernels see it: the ints, the buffers, the output and the scratch. */
typedef struct {
    int op;
    const int32_t *v;
    uint8_t *const *b;
    const int32_t *len;
    void *y;
    void *scratch;
} s8_req;

/* Every op (and every compiled case) is one out-of-line function of this type, so a marked span is
 * exactly one indirect call, the same as the empty span the bench subtracts. */
typedef void (*s8_fn)(const s8_req *r);

#ifdef S8_CASES
static int s8_case_count(void);
static s8_fn s8_case_get(int i);
#else
static int s8_case_count(void)
{
    return 0;
}
static s8_fn s8_case_get(int i)
{
    (void)i;
    return 0;
}
#endif

static uint64_t g_pool[S8_POOL_BYTES / 8u];

static int s8_byte(int *eof)
{
    int c = s8_getc();
    if (c < 0) {
        *eof = 1;
        return 0;
    }
    return c;
}

static int32_t s8_i32(int *eof)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        v |= (uint32_t)s8_byte(eof) << (8 * i);
    }
    return hk_s8_wrap(v);
}

static void s8_put_u32(uint32_t v)
{
    uint8_t b[4];
    for (int i = 0; i < 4; i++) {
        b[i] = (uint8_t)(v >> (8 * i));
    }
    s8_write(b, 4);
}

/* ---------------------------------------------------------------- ops */

/* Each op body is inline and reads its ints from v: op_<name> passes the request's, a compiled
 * case (S8_CASES) a static const array of literals, which the compiler folds into the kernel. */
#define S8_I32(i) ((const int32_t *)(void *)r->b[i])
#define S8_OP(name)                                                                                     \
    S8_NOINLINE static void op_##name(const s8_req *r)                                                  \
    {                                                                                                   \
        s8_##name(r, r->v);                                                                             \
    }

HK_INLINE void s8_conv(const s8_req *r, const int32_t *v)
{
    const hk_s8_dims in = {v[0], v[1], v[2], v[3]}, f = {v[4], v[5], v[6], v[7]}, out = {v[0], v[8], v[9], v[4]};
    const hk_s8_conv_params p = {v[16], v[17], {v[10], v[11]}, {v[12], v[13]}, {v[14], v[15]}, {v[18], v[19]}};
    const hk_s8_requant q = {S8_I32(3), S8_I32(4)};
    hk_conv2d_s8(&p, &q, &in, (const int8_t *)r->b[0], &f, (const int8_t *)r->b[1], v[20] ? S8_I32(2) : NULL, &out,
                 (int8_t *)r->y, (int16_t *)r->scratch);
}
S8_OP(conv)

HK_INLINE void s8_dwconv(const s8_req *r, const int32_t *v)
{
    const hk_s8_dims in = {v[0], v[1], v[2], v[3]}, f = {1, v[4], v[5], v[3] * v[6]};
    const hk_s8_dims out = {v[0], v[7], v[8], v[3] * v[6]};
    const hk_s8_dw_params p = {v[15], v[16], v[6], {v[9], v[10]}, {v[11], v[12]}, {v[13], v[14]}, {v[17], v[18]}};
    const hk_s8_requant q = {S8_I32(3), S8_I32(4)};
    hk_dwconv2d_s8(&p, &q, &in, (const int8_t *)r->b[0], &f, (const int8_t *)r->b[1], v[19] ? S8_I32(2) : NULL,
                   &out, (int8_t *)r->y);
}
S8_OP(dwconv)

HK_INLINE void s8_fc(const s8_req *r, const int32_t *v)
{
    const hk_s8_fc_params p = {v[3], v[4], v[5], {v[6], v[7]}};
    const hk_s8_quant q = {v[9], v[10]};
    hk_fc_s8(&p, &q, v[0], v[1], (const int8_t *)r->b[0], v[2], (const int8_t *)r->b[1], v[8] ? S8_I32(2) : NULL,
             (int8_t *)r->y);
}
S8_OP(fc)

HK_INLINE void s8_fc_pc(const s8_req *r, const int32_t *v)
{
    const hk_s8_fc_params p = {v[3], v[4], v[5], {v[6], v[7]}};
    const hk_s8_requant q = {S8_I32(3), S8_I32(4)};
    hk_fc_per_channel_s8(&p, &q, v[0], v[1], (const int8_t *)r->b[0], v[2], (const int8_t *)r->b[1],
                         v[8] ? S8_I32(2) : NULL, (int8_t *)r->y);
}
S8_OP(fc_pc)

HK_INLINE void s8_avgpool(const s8_req *r, const int32_t *v)
{
    const hk_s8_dims in = {v[0], v[1], v[2], v[3]}, out = {v[0], v[4], v[5], v[3]};
    const hk_s8_pool_params p = {{v[6], v[7]}, {v[8], v[9]}, {v[10], v[11]}, {v[12], v[13]}};
    hk_avgpool2d_s8(&p, &in, (const int8_t *)r->b[0], &out, (int8_t *)r->y);
}
S8_OP(avgpool)

HK_INLINE void s8_maxpool(const s8_req *r, const int32_t *v)
{
    const hk_s8_dims in = {v[0], v[1], v[2], v[3]}, out = {v[0], v[4], v[5], v[3]};
    const hk_s8_pool_params p = {{v[6], v[7]}, {v[8], v[9]}, {v[10], v[11]}, {v[12], v[13]}};
    hk_maxpool2d_s8(&p, &in, (const int8_t *)r->b[0], &out, (int8_t *)r->y);
}
S8_OP(maxpool)

HK_INLINE void s8_mean(const s8_req *r, const int32_t *v)
{
    const hk_s8_mean_params p = {v[3], v[4], v[5], v[6]};
    hk_mean_s8(&p, v[0], v[1], v[2], (const int8_t *)r->b[0], (int8_t *)r->y);
}
S8_OP(mean)

HK_INLINE hk_s8_add_params s8_add_params(const int32_t *v)
{
    const hk_s8_add_params p = {v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], {v[10], v[11]}};
    return p;
}

HK_INLINE void s8_add(const s8_req *r, const int32_t *v)
{
    const hk_s8_add_params p = s8_add_params(v + 1);
    hk_add_s8(&p, (const int8_t *)r->b[0], (const int8_t *)r->b[1], (int8_t *)r->y, v[0]);
}
S8_OP(add)

HK_INLINE void s8_add_bcast(const s8_req *r, const int32_t *v)
{
    const hk_s8_add_params p = s8_add_params(v + 12);
    hk_add_bcast_s8(&p, v, (const int8_t *)r->b[0], v + 4, (const int8_t *)r->b[1], v + 8, (int8_t *)r->y);
}
S8_OP(add_bcast)

HK_INLINE void s8_softmax(const s8_req *r, const int32_t *v)
{
    const hk_s8_softmax_params p = {v[2], v[3], v[4]};
    hk_softmax_s8(&p, v[0], v[1], (const int8_t *)r->b[0], (int8_t *)r->y);
}
S8_OP(softmax)

HK_INLINE void s8_logistic(const s8_req *r, const int32_t *v)
{
    const hk_s8_logistic_params p = {v[1], v[2], v[3], v[4]};
    hk_logistic_s8(&p, v[0], (const int8_t *)r->b[0], (int8_t *)r->y);
}
S8_OP(logistic)

HK_INLINE void s8_pad(const s8_req *r, const int32_t *v)
{
    const hk_s8_dims in = {v[0], v[1], v[2], v[3]};
    hk_pad_s8(&in, (const int8_t *)r->b[0], v + 4, (int8_t)v[12], (int8_t *)r->y);
}
S8_OP(pad)

HK_INLINE void s8_concat(const s8_req *r, const int32_t *v)
{
    const int8_t *xs[S8_MAX_BUFS];
    for (int32_t i = 0; i < v[0]; i++) {
        xs[i] = (const int8_t *)r->b[i];
    }
    hk_concat_s8(v[0], xs, v + 3, v[1], v[2], (int8_t *)r->y);
}
S8_OP(concat)

HK_INLINE void s8_quantize(const s8_req *r, const int32_t *v)
{
    float scale;
    memcpy(&scale, r->b[1], sizeof scale);
    hk_quantize_f32_s8((const float *)(void *)r->b[0], v[0], scale, v[1], (int8_t *)r->y);
}
S8_OP(quantize)

HK_INLINE void s8_dequantize(const s8_req *r, const int32_t *v)
{
    float scale;
    memcpy(&scale, r->b[1], sizeof scale);
    hk_dequantize_s8_f32((const int8_t *)r->b[0], v[0], scale, v[1], (float *)r->y);
}
S8_OP(dequantize)

HK_INLINE void s8_requant(const s8_req *r, const int32_t *v)
{
    hk_requantize_s8((const int8_t *)r->b[0], v[0], v[1], v[2], v[3], v[4], (int8_t *)r->y);
}
S8_OP(requant)

/* ops 1-4, the primitives, elementwise over int32 arrays (the length of buffer 0). */
S8_NOINLINE static void op_prim(const s8_req *r)
{
    const int32_t *a0 = S8_I32(0), *a1 = S8_I32(1), *a2 = S8_I32(2);
    const int32_t n = r->len[0] / 4;
    int32_t *o = (int32_t *)r->y;
    for (int32_t i = 0; i < n; i++) {
        switch (r->op) {
        case 1:
            o[i] = hk_srdhm(a0[i], a1[i]);
            break;
        case 2:
            o[i] = hk_rdbp(a0[i], (int)a1[i]);
            break;
        case 3:
            o[i] = hk_mbqm(a0[i], a1[i], a2[i]);
            break;
        default:
            ((int8_t *)r->y)[i] = hk_s8_requantize(a0[i], a1[i], a2[i], r->v[0], r->v[1], r->v[2]);
            break;
        }
    }
}

/* op 0: nothing, the empty span whose count the bench subtracts from every other. */
S8_NOINLINE static void op_none(const s8_req *r)
{
    (void)r;
    __asm__ volatile("" ::: "memory");
}

/* The function of op `op`, or NULL. */
static s8_fn s8_lookup(int op)
{
    switch (op) {
    case 0:
        return op_none;
    case 1:
    case 2:
    case 3:
    case 4:
        return op_prim;
    case 10:
        return op_conv;
    case 11:
        return op_dwconv;
    case 12:
        return op_fc;
    case 13:
        return op_fc_pc;
    case 20:
        return op_avgpool;
    case 21:
        return op_maxpool;
    case 22:
        return op_mean;
    case 30:
        return op_add;
    case 31:
        return op_add_bcast;
    case 40:
        return op_softmax;
    case 41:
        return op_logistic;
    case 50:
        return op_pad;
    case 51:
        return op_concat;
    case 52:
        return op_quantize;
    case 53:
        return op_dequantize;
    case 54:
        return op_requant;
    default:
        return op >= 100 && op - 100 < s8_case_count() ? s8_case_get(op - 100) : NULL;
    }
}

/* fn(r) alone between the markers. */
static void s8_run(s8_fn fn, const s8_req *r)
{
    s8_mark_begin();
    fn(r);
    s8_mark_end();
}

/* Read and serve one request; 0 at the end of the input. */
static int s8_serve(void)
{
    int eof = 0;
    int32_t v[S8_MAX_INTS] = {0}, len[S8_MAX_BUFS];
    uint8_t *bufs[S8_MAX_BUFS];
    const int32_t op = s8_i32(&eof);
    if (eof) {
        return 0;
    }
    const int32_t out_bytes = s8_i32(&eof), scratch_bytes = s8_i32(&eof), n_ints = s8_i32(&eof);
    int fits = n_ints >= 0 && n_ints <= S8_MAX_INTS && out_bytes >= 0 && scratch_bytes >= 0;
    for (int32_t i = 0; i < n_ints; i++) {
        const int32_t x = s8_i32(&eof);
        if (i < S8_MAX_INTS) {
            v[i] = x;
        }
    }
    const int32_t n_bufs = s8_i32(&eof);
    fits = fits && n_bufs >= 0 && n_bufs <= S8_MAX_BUFS;
    uint8_t *pool = (uint8_t *)g_pool;
    size_t used = 0;
    for (int32_t i = 0; i < n_bufs; i++) {
        const int32_t n = s8_i32(&eof);
        const size_t room = sizeof g_pool - used;
        const int ok = fits && n >= 0 && (size_t)n <= room;
        for (int32_t j = 0; j < n && !eof; j++) {
            const int c = s8_byte(&eof);
            if (ok) {
                pool[used + (size_t)j] = (uint8_t)c;
            }
        }
        if (!ok) {
            fits = 0;
            continue;
        }
        bufs[i] = pool + used;
        len[i] = n;
        used += ((size_t)n + 7u) & ~(size_t)7u;
    }
    if (eof) {
        return 0;
    }
    const size_t out_room = ((size_t)out_bytes + 7u) & ~(size_t)7u;
    if (!fits || out_room + (size_t)scratch_bytes > sizeof g_pool - used) {
        s8_put_u32(1u);
        return 1;
    }
    for (int32_t i = n_bufs; i < S8_MAX_BUFS; i++) {
        bufs[i] = pool; /* unused slots point somewhere valid */
        len[i] = 0;
    }
    uint8_t *y = pool + used, *scratch = y + out_room;
    memset(y, 0x5A, (size_t)out_bytes); /* a kernel that skips an output shows up as 0x5A */
    const s8_fn fn = s8_lookup(op);
    if (!fn) {
        s8_put_u32(2u);
        return 1;
    }
    const s8_req r = {op, v, bufs, len, y, scratch};
    s8_run(fn, &r);
    s8_put_u32(0u);
    s8_write(y, (size_t)out_bytes);
    return 1;
}

#ifndef S8_EMBEDDED
int main(void)
{
    while (s8_serve()) {
        fflush(stdout);
    }
    return 0;
}
#endif
