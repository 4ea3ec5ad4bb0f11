/* A hand-written stand-in for a generated model (model.h/model.c per firmware/hk_model.h), used by
 * the board tests to build the real firmware without the code generator. */
#ifndef MODEL_H
#define MODEL_H
#define HK_MODEL_N_IN 8
#define HK_MODEL_N_OUT 3
#define HK_MODEL_IN_RANK 1
/* clang-format off */
#define HK_MODEL_IN_DIMS {8}
#define HK_MODEL_OUT_RANK 1
#define HK_MODEL_OUT_DIMS {3}
/* clang-format on */
#define HK_MODEL_N_EXTRA 1
#define MODEL_ARENA_BYTES 0
#define HK_MODEL_HASH "0123456789abcdef"
#define HK_FW_VERSION "0.1.0" /* a stand-in model: its own fixed version string */
#endif
