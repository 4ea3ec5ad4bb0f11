/* Forced include (-include) that sends a generated model's layer norms to hk__layernorm_x86
 * (kernels_c/hk_x86.h), which hk_norm.h does not dispatch to yet: to measure what that dispatch
 * would give (bench/host/flags_bench.py). A function-like macro does not expand inside itself, so
 * the inner hk_layernorm_f32 is the portable function (used when the x86 one declines). */
#ifndef HK_BENCH_LAYERNORM_X86_H
#define HK_BENCH_LAYERNORM_X86_H
#include "hk_norm.h"
#include "hk_attention.h"
#if defined(HK_X86_NORM_H)
#define hk_layernorm_f32(x, y, rows, d, w, b) \
    (hk__layernorm_x86((x), (y), (rows), (d), (w), (b)) ? (void)0 : hk_layernorm_f32((x), (y), (rows), (d), (w), (b)))
#endif
#endif
