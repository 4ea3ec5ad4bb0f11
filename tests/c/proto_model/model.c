/* The protocol tests' model. Outputs (float32, same order of operations as the numpy twin in
 * tests/test_protocol.py, so results are bit-identical):
 *   out[0] = x0 + 2*x1,  out[1] = x2*x3 - x0,  out[2] = (x0 + x1 + x2 + x3) * 0.25
 * Counters: extra[0] = calls of hk_model_infer since start (proves a duplicate request is not
 * recomputed), extra[1] = number of positive inputs of the last call. */
#include "hk_model.h"

static uint32_t g_calls;
static uint32_t g_positive;

int hk_model_infer(const float *in, float *out)
{
    int i;
    g_calls++;
    if (in[0] == PROTO_MODEL_FAIL_INPUT) {
        return 1;
    }
    out[0] = in[0] + 2.0f * in[1];
    out[1] = in[2] * in[3] - in[0];
    out[2] = (((in[0] + in[1]) + in[2]) + in[3]) * 0.25f;
    g_positive = 0;
    for (i = 0; i < HK_MODEL_N_IN; i++) {
        g_positive += in[i] > 0.0f;
    }
    return 0;
}

int hk_model_extra(uint32_t *extra)
{
    extra[0] = g_calls;
    extra[1] = g_positive;
    return HK_MODEL_N_EXTRA;
}
