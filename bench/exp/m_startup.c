/* Minimal bare-metal startup for the exp bench image on QEMU mps2-an386 / mps3-an547:
 * vector table, FPU/MVE enable, .bss clear, main(), then semihosting SYS_EXIT_EXTENDED.
 * Every fault exits with status 3 so a fault never hangs QEMU. */
#include <stdint.h>

extern uint32_t __bss_start, __bss_end, __stack_top;
int main(void);

void hk_semihost_exit(int code)
{
    /* SYS_EXIT_EXTENDED (0x20): r1 -> {ADP_Stopped_ApplicationExit, code} */
    static volatile uint32_t block[2];
    block[0] = 0x20026u;
    block[1] = (uint32_t)code;
    register uint32_t r0 __asm__("r0") = 0x20u;
    register volatile uint32_t *r1 __asm__("r1") = block;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    for (;;) {
    }
}

/* SYS_WRITE0: print a NUL-terminated string on the host's stdout. */
void hk_semihost_puts(const char *s)
{
    register uint32_t r0 __asm__("r0") = 0x04u;
    register const char *r1 __asm__("r1") = s;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
}

static void hk_fault(void) { hk_semihost_exit(3); }

void hk_reset(void)
{
#if defined(__ARM_FP) || defined(__ARM_FEATURE_MVE)
    /* CPACR: full access to CP10/CP11 (the FPU and, on v8.1-M, MVE). */
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    for (uint32_t *p = &__bss_start; p < &__bss_end; p++) {
        *p = 0;
    }
    hk_semihost_exit(main());
}

/* clang-format off */
__attribute__((section(".vectors"), used)) static void (*const hk_vectors[16])(void) = {
    (void (*)(void))(uintptr_t)&__stack_top, hk_reset, hk_fault, hk_fault, hk_fault, hk_fault,
    hk_fault, 0, 0, 0, 0, hk_fault, hk_fault, 0, hk_fault, hk_fault,
};
/* clang-format on */
