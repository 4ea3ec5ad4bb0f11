/* Test driver for a generated model on the host: reads float32 inputs (HK_MODEL_N_IN each) from
 * stdin until EOF; for each inference writes the float32 outputs, then the model's u32 counters
 * (HK_MODEL_N_EXTRA of them, none for plain models). Built with ASan/UBSan in the tests. */
#include <stdio.h>
#include "hk_model.h"
int main(void)
{
    static float in[HK_MODEL_N_IN];
    static float out[HK_MODEL_N_OUT];
    static uint32_t extra[HK_MODEL_N_EXTRA + 1];
    while (fread(in, sizeof in[0], HK_MODEL_N_IN, stdin) == HK_MODEL_N_IN) {
        int n;
        if (hk_model_infer(in, out) != 0) {
            return 3;
        }
        n = hk_model_extra(extra);
        if (fwrite(out, sizeof out[0], HK_MODEL_N_OUT, stdout) != HK_MODEL_N_OUT ||
            fwrite(extra, sizeof extra[0], (size_t)n, stdout) != (size_t)n) {
            return 4;
        }
    }
    return 0;
}
