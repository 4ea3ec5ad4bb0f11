/* Test driver for a generated model on the host: reads float32 inputs (HK_MODEL_N_IN each) from
 * stdin until EOF and writes the float32 outputs to stdout. Built with ASan/UBSan in the tests. */
#include <stdio.h>
#include "hk_model.h"

int main(void)
{
    static float in[HK_MODEL_N_IN];
    static float out[HK_MODEL_N_OUT];
    while (fread(in, sizeof in[0], HK_MODEL_N_IN, stdin) == HK_MODEL_N_IN) {
        if (hk_model_infer(in, out) != 0) {
            return 3;
        }
        if (fwrite(out, sizeof out[0], HK_MODEL_N_OUT, stdout) != HK_MODEL_N_OUT) {
            return 4;
        }
    }
    return 0;
}
