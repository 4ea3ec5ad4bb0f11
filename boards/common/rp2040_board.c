/* The board layer (firmware/hk_board.h) of the RP2040 / RP2350 hardware images: run the chip's
 * bring-up programme, then talk over UART0, an Arm PL011 on both chips (RP2040 at 0x40034000,
 * RP2350 at 0x40070000: HK_UART_BASE from board.toml). Cycles come from cortexm_cycles.c (SysTick
 * on the M0+, DWT CYCCNT on the M33); exits park the core (cortexm_startup.c, HK_NO_SEMIHOSTING). */
#include <stddef.h>
#include <stdint.h>
#include "hk_board.h"
#include "rp2040_board.h"

#ifndef HK_UART_BASE
#error "HK_UART_BASE must be defined by the board"
#endif

#define UART_DR (*(volatile uint32_t *)(HK_UART_BASE + 0x00u))
#define UART_FR (*(volatile uint32_t *)(HK_UART_BASE + 0x18u))
#define FR_TXFF (1u << 5) /* transmit FIFO full */
#define FR_RXFE (1u << 4) /* receive FIFO empty */

void hk_cycles_init(void);

static void run_programme(const hk_rp_step *step, uint32_t n)
{
    uint32_t i;
    for (i = 0; i < n; i++) {
        volatile uint32_t *reg = (volatile uint32_t *)(uintptr_t)step[i].addr;
        if (step[i].mask == 0u) {
            *reg = step[i].value;
        } else {
            while ((*reg & step[i].mask) != step[i].value) {
            }
        }
    }
}

void hk_board_init(void)
{
    run_programme(hk_rp_init, hk_rp_init_steps);
    hk_cycles_init();
}

int hk_board_getc(void)
{
    while (UART_FR & FR_RXFE) {
    }
    return (int)(UART_DR & 0xFFu); /* bits 11:8 are the byte's error flags */
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
