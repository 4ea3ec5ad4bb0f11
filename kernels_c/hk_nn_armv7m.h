/* Building blocks of the NN kernels' Cortex-M FPU asm (hk_dense_armv7m.h, hk_conv_armv7m.h), under
 * HK_NN_VFP_ASM (hk_nn.h): FPv4/FPv5 single precision, Thumb-2, on M4F, M7, M33 and M55. */
#ifndef HK_NN_ARMV7M_H
#define HK_NN_ARMV7M_H

/* One asm line: acc += w * x, fused (VFMA), as HK_MAC_F32 on these cores; operands are register
 * names ("s0"). */
#define HK__VF(acc, w, x) "vfma.f32 " acc ", " w ", " x "\n\t"

#endif
