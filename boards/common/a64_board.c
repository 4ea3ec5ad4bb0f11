/* rpi3-bm board layer: PL011 UART0, PMU cycle counter, semihosting exit (`hlt 0xf000`),
 * C runtime start (bss, TLS for picolibc's errno) and the exception exit path. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "hk_board.h"

#ifndef HK_UART_BASE
#define HK_UART_BASE 0x3F201000u
#endif
#ifndef HK_UART_CLOCK_HZ
#define HK_UART_CLOCK_HZ 48000000u
#endif
#ifndef HK_UART_BAUD
#define HK_UART_BAUD 115200u
#endif

#define REG(off) (*(volatile uint32_t *)(uintptr_t)(HK_UART_BASE + (off)))
#define UART_DR REG(0x00)
#define UART_FR REG(0x18)
#define UART_IBRD REG(0x24)
#define UART_FBRD REG(0x28)
#define UART_LCRH REG(0x2C)
#define UART_CR REG(0x30)
#define UART_IMSC REG(0x38)
#define FR_RXFE (1u << 4)
#define FR_TXFF (1u << 5)
#define FR_BUSY (1u << 3)

extern char __bss_start[], __bss_end[], __tdata_start[], __tdata_end[], __tls_block[];
extern char __tbss_size[];
extern int main(void);
void hk_a64_start(void);
void hk_a64_exception(uint64_t vector);

static uint64_t hk_semihost(uint64_t op, const void *arg)
{
    register uint64_t x0 __asm__("x0") = op;
    register const void *x1 __asm__("x1") = arg;
    __asm__ volatile("hlt 0xf000" : "+r"(x0) : "r"(x1) : "memory");
    return x0;
}

void hk_board_exit(int status)
{
#ifndef HK_NO_SEMIHOSTING
    uint64_t block[2];
    block[0] = 0x20026u; /* ADP_Stopped_ApplicationExit */
    block[1] = (uint64_t)(uint32_t)status;
    while (UART_FR & FR_BUSY) {
    }
    hk_semihost(0x18, block); /* SYS_EXIT: on AArch64 it takes {reason, status} */
#else
    (void)status;
#endif
    for (;;) {
        __asm__ volatile("wfe");
    }
}

void hk_a64_exception(uint64_t vector)
{
#ifndef HK_NO_SEMIHOSTING
    hk_semihost(0x04, "hk: exception, exiting\n"); /* SYS_WRITE0 */
#endif
    hk_board_exit(128 + (int)vector);
}

void hk_board_init(void)
{
    uint32_t div16 = (4u * HK_UART_CLOCK_HZ) / HK_UART_BAUD; /* baud divisor in 1/64 units */
    UART_CR = 0;
    UART_IMSC = 0;
    UART_IBRD = div16 >> 6;
    UART_FBRD = div16 & 0x3Fu;
    UART_LCRH = 0x70u; /* 8 bits, FIFOs on */
    UART_CR = 0x301u;  /* UART, TX, RX enable */
    /* PMU cycle counter: PMCR_EL0.E (enable) and .C (reset), PMCNTENSET_EL0 bit 31 (cycles). */
    __asm__ volatile("msr pmcr_el0, %0" ::"r"((uint64_t)0x5u));
    __asm__ volatile("msr pmcntenset_el0, %0" ::"r"((uint64_t)1u << 31));
    __asm__ volatile("isb");
}

int hk_board_getc(void)
{
    while (UART_FR & FR_RXFE) {
    }
    return (int)(UART_DR & 0xFFu);
}

void hk_board_write(const uint8_t *buf, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        while (UART_FR & FR_TXFF) {
        }
        UART_DR = buf[i];
    }
}

uint64_t hk_board_cycles(void)
{
    uint64_t c;
    __asm__ volatile("mrs %0, pmccntr_el0" : "=r"(c));
    return c;
}

void hk_a64_start(void)
{
    char *p;
    for (p = __bss_start; p < __bss_end; p++) {
        *p = 0;
    }
    /* picolibc keeps errno in thread-local storage (local-exec): give core 0 its TLS block. */
    memcpy(__tls_block, __tdata_start, (size_t)(__tdata_end - __tdata_start));
    memset(__tls_block + (__tdata_end - __tdata_start), 0, (size_t)(uintptr_t)__tbss_size);
    __asm__ volatile("msr tpidr_el0, %0" ::"r"((uintptr_t)__tls_block - 16u)); /* TCB: 16 bytes */
    hk_board_exit(main());
}
