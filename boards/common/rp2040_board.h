/* Board layer of the RP2040 and RP2350 hardware images (pico, pico2 [hardware] in board.toml).
 *
 * The chip bring-up (crystal, PLL, clocks, resets, pins, UART) is a programme held as data: a table
 * of register writes and waits, one per chip (rp2040_init.c, rp2350_init.c), run once by
 * hk_board_init. As data it can be read back from the linked image and checked against the
 * datasheets without the chip (tests/test_rp_images.py). */
#ifndef HK_RP2040_BOARD_H
#define HK_RP2040_BOARD_H

#include <stdint.h>

/* One step: mask == 0 writes `value` to `addr`; otherwise wait until (*addr & mask) == value. */
typedef struct {
    uint32_t addr;
    uint32_t mask;
    uint32_t value;
} hk_rp_step;

/* clang-format off */
#define HK_RP_WRITE(addr, value) {(addr), 0u, (value)}
#define HK_RP_WAIT(addr, mask, value) {(addr), (mask), (value)}
/* clang-format on */

/* Atomic aliases of every peripheral register (both datasheets, "Atomic register access"): a write
 * to +0x2000 sets the written bits, to +0x3000 clears them, leaving the others alone. */
#define HK_RP_SET(addr) ((addr) + 0x2000u)
#define HK_RP_CLR(addr) ((addr) + 0x3000u)

#ifndef HK_UART_BAUD
#define HK_UART_BAUD 115200u
#endif

/* PL011 baud divisor UARTCLK / (16 x baud) in 1/64 units, rounded (IBRD = div >> 6, FBRD = div & 63):
 * the datasheets' integer((fraction x 64) + 0.5). 4 x clock stays below 2^32 up to 1 GHz. */
#define HK_RP_BAUD_DIV64 ((4u * (HK_UART_CLOCK_HZ) + (HK_UART_BAUD) / 2u) / (HK_UART_BAUD))

/* The chip's programme and its length (rp2040_init.c or rp2350_init.c). */
extern const hk_rp_step hk_rp_init[];
extern const uint32_t hk_rp_init_steps;

#endif
