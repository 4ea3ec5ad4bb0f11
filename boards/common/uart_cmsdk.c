/* CMSDK APB UART (mps2/mps3 boards) and the board-layer entry points that use it.
 * HK_UART_BASE and HK_UART_CLOCK_HZ come from the board's build defines. */
#include <stddef.h>
#include <stdint.h>
#include "hk_board.h"

#ifndef HK_UART_BASE
#error "HK_UART_BASE must be defined by the board"
#endif
#ifndef HK_UART_CLOCK_HZ
#define HK_UART_CLOCK_HZ 25000000u
#endif
#ifndef HK_UART_BAUD
#define HK_UART_BAUD 115200u
#endif

#define UART_DATA (*(volatile uint32_t *)(HK_UART_BASE + 0x00u))
#define UART_STATE (*(volatile uint32_t *)(HK_UART_BASE + 0x04u))
#define UART_CTRL (*(volatile uint32_t *)(HK_UART_BASE + 0x08u))
#define UART_BAUDDIV (*(volatile uint32_t *)(HK_UART_BASE + 0x10u))
#define STATE_TX_FULL 0x1u
#define STATE_RX_FULL 0x2u

void hk_cycles_init(void);

void hk_board_init(void)
{
    uint32_t div = HK_UART_CLOCK_HZ / HK_UART_BAUD;
    UART_BAUDDIV = div < 16u ? 16u : div; /* below 16 the UART (and QEMU's model) sends nothing */
    UART_CTRL = 0x3u;                     /* TX and RX enable, no interrupts */
    hk_cycles_init();
}

int hk_board_getc(void)
{
    while ((UART_STATE & STATE_RX_FULL) == 0) {
    }
    return (int)(UART_DATA & 0xFFu);
}

void hk_board_write(const uint8_t *buf, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        while (UART_STATE & STATE_TX_FULL) {
        }
        UART_DATA = buf[i];
    }
}
