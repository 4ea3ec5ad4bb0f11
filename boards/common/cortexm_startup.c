/* Cortex-M reset, fault and exit handling shared by every M-profile board.
 * Reset: copy .data, zero .bss, enable the FPU/MVE where the core has one, enable the separate
 * fault handlers, then run main(). Every fault or unexpected exception exits through semihosting
 * with status 128 + exception number, so a crash under QEMU ends the run instead of hanging it. */
#include <stdint.h>
#include "hk_board.h"

extern uint32_t __data_load[], __data_start[], __data_end[], __bss_start[], __bss_end[];
extern int main(void);
void hk_reset_handler(void);
void hk_fault_handler(void);

#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)
#define SCB_SHCSR (*(volatile uint32_t *)0xE000ED24u)

#ifndef HK_NO_SEMIHOSTING
/* Semihosting call: `bkpt 0xAB` with the operation in r0 and its argument in r1. */
static int hk_semihost(int op, const void *arg)
{
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}
#endif

#define SYS_WRITE0 0x04
#define SYS_EXIT 0x18
#define SYS_EXIT_EXTENDED 0x20
#define ADP_STOPPED_APPLICATION_EXIT 0x20026u
#define ADP_STOPPED_RUNTIME_ERROR_UNKNOWN 0x20023u

void hk_board_exit(int status)
{
#ifndef HK_NO_SEMIHOSTING
    uint32_t block[2];
    block[0] = ADP_STOPPED_APPLICATION_EXIT;
    block[1] = (uint32_t)status;
    hk_semihost(SYS_EXIT_EXTENDED, block);
    /* A host without SYS_EXIT_EXTENDED: plain SYS_EXIT still tells success from failure. */
    hk_semihost(SYS_EXIT, (const void *)(uintptr_t)(status == 0 ? ADP_STOPPED_APPLICATION_EXIT
                                                                : ADP_STOPPED_RUNTIME_ERROR_UNKNOWN));
#else
    (void)status;
#endif
    for (;;) {
        __asm__ volatile("wfi");
    }
}

void hk_fault_handler(void)
{
    uint32_t ipsr;
    __asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));
#ifndef HK_NO_SEMIHOSTING
    hk_semihost(SYS_WRITE0, "hk: fault or unexpected exception, exiting\n");
#endif
    hk_board_exit(128 + (int)(ipsr & 0x7Fu));
}

void hk_reset_handler(void)
{
    uint32_t *src = __data_load;
    uint32_t *dst = __data_start;
    while (dst < __data_end) {
        *dst++ = *src++;
    }
    for (dst = __bss_start; dst < __bss_end; dst++) {
        *dst = 0;
    }
#if defined(__ARM_FP) || defined(__ARM_FEATURE_MVE)
    /* CP10 and CP11 full access: the FPU (and MVE on Cortex-M55) would fault on first use. */
    SCB_CPACR |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
#if __ARM_ARCH >= 7 || defined(__ARM_ARCH_8M_MAIN__) || defined(__ARM_ARCH_8_1M_MAIN__)
    /* MemManage, BusFault, UsageFault (and SecureFault on v8-M) get their own vector. */
    SCB_SHCSR |= (1u << 16) | (1u << 17) | (1u << 18) | (1u << 19);
#endif
    hk_board_exit(main());
}
