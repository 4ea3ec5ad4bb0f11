/* A tiny hand-written model for the protocol tests: 4 inputs, 3 outputs, 2 counters. */
#ifndef MODEL_H
#define MODEL_H
#define HK_FW_VERSION "0.1.0" /* a stub model: its own fixed version string */
#define HK_MODEL_NAME "proto-test"
#define HK_MODEL_HASH "0123456789abcdef"
#define HK_MODEL_N_IN 4
#define HK_MODEL_N_OUT 3
#define HK_MODEL_IN_RANK 2
/* clang-format off */
#define HK_MODEL_IN_DIMS {2, 2}
#define HK_MODEL_OUT_RANK 1
#define HK_MODEL_OUT_DIMS {3}
/* clang-format on */
#define HK_MODEL_N_EXTRA 2
#define MODEL_ARENA_BYTES 48
/* hk_model_infer fails (returns 1) when in[0] equals this value, to test ERROR 4. */
#define PROTO_MODEL_FAIL_INPUT (-12345.0f)
#endif
