/* Forced include (-include) of the exp-less variants of bench/quake/model_bench.py: the libm
 * model with e^x replaced. math.h comes first, so its own declarations keep their names.
 *   stub (default): every expf call goes to hk_free_expf (model_bench.c), which returns 1: the call
 *                   stays, its body is 2 instructions on Arm;
 *   zero (HK_EXP_ZERO): e^x is the constant 1, no call, no work (not even its argument). */
#ifndef HK_FREE_EXP_H
#define HK_FREE_EXP_H
#include <math.h>
#ifdef HK_EXP_ZERO
#define expf(x) ((void)(x), 1.0f)
#else
float hk_free_expf(float x);
#define expf hk_free_expf
#endif
#endif
