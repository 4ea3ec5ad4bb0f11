/* Common definitions for the hilkit kernels: header-only, static inline, no malloc, no stdio. */
#ifndef HK_TYPES_H
#define HK_TYPES_H
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define HK_INLINE static inline __attribute__((always_inline))
#define HK_RESTRICT __restrict__
#else
#define HK_INLINE static inline
#define HK_RESTRICT
#endif

/* Shape of a channels-first feature map. */
typedef struct {
    int c;
    int h;
    int w;
} hk_dims;

/* Options of a 2-D convolution (square kernel). */
typedef struct {
    int kernel;
    int stride;
    int pad_top;  /* zero rows before the input; rows after it are implied by the output size */
    int pad_left; /* zero columns before the input */
} hk_conv_params;

#endif
