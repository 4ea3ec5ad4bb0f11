/* What the firmware expects from a generated model (codegen writes model.h/model.c to match).
 * model.h defines:
 *   HK_MODEL_N_IN, HK_MODEL_N_OUT          number of float32 inputs/outputs
 *   HK_MODEL_IN_RANK,  HK_MODEL_IN_DIMS     e.g. 3 and {1, 8, 8}
 *   HK_MODEL_OUT_RANK, HK_MODEL_OUT_DIMS
 *   HK_MODEL_N_EXTRA                        number of u32 counters (0 for plain models)
 *   MODEL_ARENA_BYTES                       static activation arena size
 *   HK_MODEL_HASH                           string: first 16 hex digits of the model file's SHA-256
 *   HK_FW_VERSION                           string: the hilkit version that generated it
 * and model.c implements the two functions below. */
#ifndef HK_MODEL_IFACE_H
#define HK_MODEL_IFACE_H
#include <stdint.h>
#include "model.h"

/* Run one inference. Returns 0 on success, HK_MODEL_OFFLOAD when the model hands this input to
 * the host (a MEANet edge model whose exit is too uncertain: the firmware answers with an OFFLOAD
 * reply carrying the input, docs/protocol.md), anything else on failure. */
int hk_model_infer(const float *in, float *out);
#define HK_MODEL_OFFLOAD 0x4F46 /* "OF": distinct from the small failure codes models return */

/* Copy the counters of the last inference into extra[HK_MODEL_N_EXTRA]; returns HK_MODEL_N_EXTRA. */
int hk_model_extra(uint32_t *extra);

#endif
