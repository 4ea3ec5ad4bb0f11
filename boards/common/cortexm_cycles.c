/* Cycle counter for Cortex-M: DWT CYCCNT on M3 and up, SysTick on M0+ (and wherever CYCCNT does
 * not count, e.g. under QEMU, which does not model the DWT).
 * Both are extended to 64 bits in software, which is exact as long as hk_board_cycles() is called
 * at least once per counter period (2^32 cycles for CYCCNT, 2^24 for SysTick). No interrupt is
 * used, so the cycle counter never adds instructions to a measured span. */
#include <stdint.h>
#include "hk_board.h"

#define DEMCR (*(volatile uint32_t *)0xE000EDFCu)
#define DWT_CTRL (*(volatile uint32_t *)0xE0001000u)
#define DWT_CYCCNT (*(volatile uint32_t *)0xE0001004u)
#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)

static int g_use_dwt;
static uint32_t g_last;
static uint64_t g_high;

void hk_systick_handler(void);
void hk_systick_handler(void)
{
    /* The SysTick interrupt is never enabled; reaching here is a fault. */
    hk_board_exit(128 + 15);
}

void hk_cycles_init(void);
void hk_cycles_init(void)
{
#if __ARM_ARCH >= 7 || defined(__ARM_ARCH_8M_MAIN__) || defined(__ARM_ARCH_8_1M_MAIN__)
    DEMCR |= 1u << 24;                  /* TRCENA */
    if ((DWT_CTRL & (1u << 25)) == 0) { /* NOCYCCNT clear: the counter exists */
        uint32_t a;
        volatile int spin;
        DWT_CYCCNT = 0;
        DWT_CTRL |= 1u;
        a = DWT_CYCCNT;
        for (spin = 0; spin < 16; spin++) {
        }
        g_use_dwt = DWT_CYCCNT != a;
    }
#endif
    if (!g_use_dwt) {
        SYST_RVR = 0x00FFFFFFu;
        SYST_CVR = 0;
        SYST_CSR = 0x5u; /* enable, processor clock, no interrupt */
    }
    g_last = 0;
    g_high = 0;
}

uint64_t hk_board_cycles(void)
{
    uint32_t now;
    if (g_use_dwt) {
        now = DWT_CYCCNT;
        if (now < g_last) {
            g_high += 1ull << 32;
        }
    } else {
        now = 0x00FFFFFFu - (SYST_CVR & 0x00FFFFFFu); /* SysTick counts down */
        if (now < g_last) {
            g_high += 1ull << 24;
        }
    }
    g_last = now;
    return g_high + now;
}
