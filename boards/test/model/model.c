/* out[0] = sum(in), out[1] = sum(i * in[i]), out[2] = max(in); extra[0] = number of inputs > 0. */
#include "hk_model.h"

static uint32_t g_positive;

int hk_model_infer(const float *in, float *out)
{
    int i;
    float s = 0.0f, w = 0.0f, m = in[0];
    g_positive = 0;
    for (i = 0; i < HK_MODEL_N_IN; i++) {
        s += in[i];
        w += (float)i * in[i];
        if (in[i] > m) {
            m = in[i];
        }
        if (in[i] > 0.0f) {
            g_positive++;
        }
    }
    out[0] = s;
    out[1] = w;
    out[2] = m;
    return 0;
}

int hk_model_extra(uint32_t *extra)
{
    extra[0] = g_positive;
    return HK_MODEL_N_EXTRA;
}
