/* RP2040 bring-up programme (Raspberry Pi Pico): 12 MHz crystal -> PLL_SYS 125 MHz -> clk_sys and
 * clk_peri; UART0 115200 8N1 on GP0 (TX) / GP1 (RX). Addresses, fields and sequences from the RP2040
 * datasheet: 2.14 Subsystem resets, 2.15 Clocks, 2.16 XOSC, 2.18 PLL, 2.19 GPIO, 4.2 UART. */
#include <stdint.h>
#include "rp2040_board.h"

#ifndef HK_UART_CLOCK_HZ
#error "HK_UART_CLOCK_HZ must be defined by the board (clk_peri)"
#endif

#define XOSC_HZ 12000000u /* the Pico's crystal */
#define PLL_FBDIV 125u    /* VCO = 12 MHz x 125 = 1500 MHz (750..1600 MHz allowed) */
#define PLL_POSTDIV1 6u
#define PLL_POSTDIV2 2u /* 1500 / 6 / 2 = 125 MHz, the datasheet's low-jitter choice */
#define SYS_HZ (XOSC_HZ / 1u * PLL_FBDIV / (PLL_POSTDIV1 * PLL_POSTDIV2))
typedef char hk_rp2040_clk_peri_is_clk_sys[(SYS_HZ == HK_UART_CLOCK_HZ) ? 1 : -1];

/* RESETS */
#define RESETS_RESET 0x4000c000u
#define RESETS_DONE 0x4000c008u
#define RESET_IO_BANK0 (1u << 5)
#define RESET_PADS_BANK0 (1u << 8)
#define RESET_PLL_SYS (1u << 12)
#define RESET_UART0 (1u << 22)

/* XOSC */
#define XOSC_CTRL 0x40024000u
#define XOSC_STATUS 0x40024004u
#define XOSC_STARTUP 0x4002400cu
#define XOSC_ENABLE (0xfabu << 12) /* CTRL.ENABLE magic */
#define XOSC_RANGE_1_15MHZ 0xaa0u  /* CTRL.FREQ_RANGE */
#define XOSC_STABLE (1u << 31)
#define XOSC_DELAY_1MS ((XOSC_HZ / 1000u + 255u) / 256u) /* STARTUP.DELAY counts 256 crystal cycles: 47 */

/* CLOCKS */
#define CLK_REF_CTRL 0x40008030u
#define CLK_REF_DIV 0x40008034u
#define CLK_REF_SELECTED 0x40008038u
#define CLK_SYS_CTRL 0x4000803cu
#define CLK_SYS_DIV 0x40008040u
#define CLK_SYS_SELECTED 0x40008044u
#define CLK_PERI_CTRL 0x40008048u
#define CLK_REF_SRC_XOSC 2u /* CTRL.SRC: 0 rosc, 1 aux, 2 xosc */
#define CLK_SYS_SRC_AUX 1u  /* CTRL.SRC: 0 clk_ref, 1 aux */
#define CLK_SYS_AUXSRC_PLL_SYS (0u << 5)
#define CLK_PERI_ENABLE (1u << 11)
#define CLK_PERI_AUXSRC_CLK_SYS (0u << 5)
#define CLK_DIV_1 (1u << 8) /* DIV.INT [31:8] = 1 */

/* PLL_SYS */
#define PLL_CS 0x40028000u
#define PLL_PWR 0x40028004u
#define PLL_FBDIV_INT 0x40028008u
#define PLL_PRIM 0x4002800cu
#define PLL_CS_LOCK (1u << 31)
#define PLL_PWR_PD (1u << 0)
#define PLL_PWR_POSTDIVPD (1u << 3)
#define PLL_PWR_VCOPD (1u << 5)

/* IO_BANK0, PADS_BANK0 */
#define IO_GPIO0_CTRL 0x40014004u
#define IO_GPIO1_CTRL 0x4001400cu
#define FUNCSEL_UART 2u /* F2: GP0 uart0_tx, GP1 uart0_rx */
#define PADS_GPIO0 0x4001c004u
#define PADS_GPIO1 0x4001c008u
#define PAD_IE (1u << 6)
#define PAD_DRIVE_4MA (1u << 4)
#define PAD_PUE (1u << 3)
#define PAD_SCHMITT (1u << 1)

/* UART0 (PL011) */
#define UART_IBRD 0x40034024u
#define UART_FBRD 0x40034028u
#define UART_LCR_H 0x4003402cu
#define UART_CR 0x40034030u
#define LCR_H_8N1_FIFO ((3u << 5) | (1u << 4))        /* WLEN 8 bits, FEN; no parity, 1 stop bit */
#define CR_ENABLE ((1u << 9) | (1u << 8) | (1u << 0)) /* RXE, TXE, UARTEN */

const hk_rp_step hk_rp_init[] = {
    /* Crystal on; wait until it is stable. */
    HK_RP_WRITE(XOSC_STARTUP, XOSC_DELAY_1MS),
    HK_RP_WRITE(XOSC_CTRL, XOSC_ENABLE | XOSC_RANGE_1_15MHZ),
    HK_RP_WAIT(XOSC_STATUS, XOSC_STABLE, XOSC_STABLE),
    /* clk_sys onto clk_ref, clk_ref onto the crystal (glitchless muxes: wait for SELECTED, one-hot). */
    HK_RP_WRITE(HK_RP_CLR(CLK_SYS_CTRL), CLK_SYS_SRC_AUX),
    HK_RP_WAIT(CLK_SYS_SELECTED, 1u << 0, 1u << 0),
    HK_RP_WRITE(CLK_REF_CTRL, CLK_REF_SRC_XOSC),
    HK_RP_WAIT(CLK_REF_SELECTED, 1u << CLK_REF_SRC_XOSC, 1u << CLK_REF_SRC_XOSC),
    HK_RP_WRITE(CLK_REF_DIV, CLK_DIV_1),
    /* PLL_SYS from reset: reference divider, feedback divider, power up, lock, post dividers. */
    HK_RP_WRITE(HK_RP_SET(RESETS_RESET), RESET_PLL_SYS),
    HK_RP_WRITE(HK_RP_CLR(RESETS_RESET), RESET_PLL_SYS),
    HK_RP_WAIT(RESETS_DONE, RESET_PLL_SYS, RESET_PLL_SYS),
    HK_RP_WRITE(PLL_CS, 1u),
    HK_RP_WRITE(PLL_FBDIV_INT, PLL_FBDIV),
    HK_RP_WRITE(HK_RP_CLR(PLL_PWR), PLL_PWR_PD | PLL_PWR_VCOPD),
    HK_RP_WAIT(PLL_CS, PLL_CS_LOCK, PLL_CS_LOCK),
    HK_RP_WRITE(PLL_PRIM, (PLL_POSTDIV1 << 16) | (PLL_POSTDIV2 << 12)),
    HK_RP_WRITE(HK_RP_CLR(PLL_PWR), PLL_PWR_POSTDIVPD),
    /* clk_sys = PLL_SYS: choose the aux source while clk_ref is selected, then switch to it. */
    HK_RP_WRITE(CLK_SYS_DIV, CLK_DIV_1),
    HK_RP_WRITE(CLK_SYS_CTRL, CLK_SYS_AUXSRC_PLL_SYS),
    HK_RP_WRITE(HK_RP_SET(CLK_SYS_CTRL), CLK_SYS_SRC_AUX),
    HK_RP_WAIT(CLK_SYS_SELECTED, 1u << 1, 1u << 1),
    /* clk_peri = clk_sys; it must run before UART0 leaves reset. */
    HK_RP_WRITE(CLK_PERI_CTRL, CLK_PERI_ENABLE | CLK_PERI_AUXSRC_CLK_SYS),
    HK_RP_WRITE(HK_RP_CLR(RESETS_RESET), RESET_IO_BANK0 | RESET_PADS_BANK0 | RESET_UART0),
    HK_RP_WAIT(RESETS_DONE, RESET_IO_BANK0 | RESET_PADS_BANK0 | RESET_UART0,
               RESET_IO_BANK0 | RESET_PADS_BANK0 | RESET_UART0),
    /* GP0/GP1 to UART0; RX pulled up so an unconnected line idles high (no break, no garbage). */
    HK_RP_WRITE(PADS_GPIO0, PAD_IE | PAD_DRIVE_4MA | PAD_SCHMITT),
    HK_RP_WRITE(PADS_GPIO1, PAD_IE | PAD_DRIVE_4MA | PAD_SCHMITT | PAD_PUE),
    HK_RP_WRITE(IO_GPIO0_CTRL, FUNCSEL_UART),
    HK_RP_WRITE(IO_GPIO1_CTRL, FUNCSEL_UART),
    /* UART0: the divisor is latched by the LCR_H write, so LCR_H comes after IBRD/FBRD. */
    HK_RP_WRITE(UART_IBRD, HK_RP_BAUD_DIV64 >> 6),
    HK_RP_WRITE(UART_FBRD, HK_RP_BAUD_DIV64 & 63u),
    HK_RP_WRITE(UART_LCR_H, LCR_H_8N1_FIFO),
    HK_RP_WRITE(UART_CR, CR_ENABLE),
};
const uint32_t hk_rp_init_steps = sizeof hk_rp_init / sizeof hk_rp_init[0];
