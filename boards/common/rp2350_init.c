/* RP2350 bring-up programme (Raspberry Pi Pico 2, Arm Secure): 12 MHz crystal -> PLL_SYS 150 MHz ->
 * clk_sys and clk_peri; UART0 115200 8N1 on GP0 (TX) / GP1 (RX). Addresses, fields and sequences from
 * the RP2350 datasheet: 2.2 Address map, 7.5 Resets, 8.1 Clocks, 8.2 XOSC, 8.6 PLL, 9 GPIO, 12.1 UART.
 * Differences from the RP2040 (rp2040_init.c): other base addresses and reset bits, dividers with
 * the integer part at bit 16, clk_peri has a divider, and pads leave reset isolated (ISO). */
#include <stdint.h>
#include "rp2040_board.h"

#ifndef HK_UART_CLOCK_HZ
#error "HK_UART_CLOCK_HZ must be defined by the board (clk_peri)"
#endif

#define XOSC_HZ 12000000u /* the Pico 2's crystal */
#define PLL_FBDIV 125u    /* VCO = 12 MHz x 125 = 1500 MHz (750..1600 MHz allowed) */
#define PLL_POSTDIV1 5u
#define PLL_POSTDIV2 2u /* 1500 / 5 / 2 = 150 MHz, the RP2350's rated clk_sys */
#define SYS_HZ (XOSC_HZ / 1u * PLL_FBDIV / (PLL_POSTDIV1 * PLL_POSTDIV2))
typedef char hk_rp2350_clk_peri_is_clk_sys[(SYS_HZ == HK_UART_CLOCK_HZ) ? 1 : -1];

/* RESETS */
#define RESETS_RESET 0x40020000u
#define RESETS_DONE 0x40020008u
#define RESET_IO_BANK0 (1u << 6)
#define RESET_PADS_BANK0 (1u << 9)
#define RESET_PLL_SYS (1u << 14)
#define RESET_UART0 (1u << 26)

/* XOSC */
#define XOSC_CTRL 0x40048000u
#define XOSC_STATUS 0x40048004u
#define XOSC_STARTUP 0x4004800cu
#define XOSC_ENABLE (0xfabu << 12)
#define XOSC_RANGE_1_15MHZ 0xaa0u
#define XOSC_STABLE (1u << 31)
#define XOSC_DELAY_1MS ((XOSC_HZ / 1000u + 255u) / 256u) /* 47 */

/* CLOCKS */
#define CLK_REF_CTRL 0x40010030u
#define CLK_REF_DIV 0x40010034u
#define CLK_REF_SELECTED 0x40010038u
#define CLK_SYS_CTRL 0x4001003cu
#define CLK_SYS_DIV 0x40010040u
#define CLK_SYS_SELECTED 0x40010044u
#define CLK_PERI_CTRL 0x40010048u
#define CLK_PERI_DIV 0x4001004cu
#define CLK_REF_SRC_XOSC 2u /* CTRL.SRC: 0 rosc, 1 aux, 2 xosc, 3 lposc */
#define CLK_SYS_SRC_AUX 1u
#define CLK_SYS_AUXSRC_PLL_SYS (0u << 5)
#define CLK_PERI_ENABLE (1u << 11)
#define CLK_PERI_AUXSRC_CLK_SYS (0u << 5)
#define CLK_DIV_1 (1u << 16) /* DIV.INT starts at bit 16 on the RP2350 */

/* PLL_SYS */
#define PLL_CS 0x40050000u
#define PLL_PWR 0x40050004u
#define PLL_FBDIV_INT 0x40050008u
#define PLL_PRIM 0x4005000cu
#define PLL_CS_LOCK (1u << 31)
#define PLL_PWR_PD (1u << 0)
#define PLL_PWR_POSTDIVPD (1u << 3)
#define PLL_PWR_VCOPD (1u << 5)

/* IO_BANK0, PADS_BANK0 */
#define IO_GPIO0_CTRL 0x40028004u
#define IO_GPIO1_CTRL 0x4002800cu
#define FUNCSEL_UART 2u /* F2: GP0 uart0_tx, GP1 uart0_rx */
#define PADS_GPIO0 0x40038004u
#define PADS_GPIO1 0x40038008u
#define PAD_ISO (1u << 8) /* resets to 1: the pad keeps its state until this is cleared */
#define PAD_IE (1u << 6)  /* resets to 0 on the RP2350 */
#define PAD_DRIVE_4MA (1u << 4)
#define PAD_PUE (1u << 3)
#define PAD_SCHMITT (1u << 1)

/* UART0 (PL011) */
#define UART_IBRD 0x40070024u
#define UART_FBRD 0x40070028u
#define UART_LCR_H 0x4007002cu
#define UART_CR 0x40070030u
#define LCR_H_8N1_FIFO ((3u << 5) | (1u << 4))
#define CR_ENABLE ((1u << 9) | (1u << 8) | (1u << 0))

const hk_rp_step hk_rp_init[] = {
    HK_RP_WRITE(XOSC_STARTUP, XOSC_DELAY_1MS),
    HK_RP_WRITE(XOSC_CTRL, XOSC_ENABLE | XOSC_RANGE_1_15MHZ),
    HK_RP_WAIT(XOSC_STATUS, XOSC_STABLE, XOSC_STABLE),
    HK_RP_WRITE(HK_RP_CLR(CLK_SYS_CTRL), CLK_SYS_SRC_AUX),
    HK_RP_WAIT(CLK_SYS_SELECTED, 1u << 0, 1u << 0),
    HK_RP_WRITE(CLK_REF_CTRL, CLK_REF_SRC_XOSC),
    HK_RP_WAIT(CLK_REF_SELECTED, 1u << CLK_REF_SRC_XOSC, 1u << CLK_REF_SRC_XOSC),
    HK_RP_WRITE(CLK_REF_DIV, CLK_DIV_1),
    HK_RP_WRITE(HK_RP_SET(RESETS_RESET), RESET_PLL_SYS),
    HK_RP_WRITE(HK_RP_CLR(RESETS_RESET), RESET_PLL_SYS),
    HK_RP_WAIT(RESETS_DONE, RESET_PLL_SYS, RESET_PLL_SYS),
    HK_RP_WRITE(PLL_CS, 1u),
    HK_RP_WRITE(PLL_FBDIV_INT, PLL_FBDIV),
    HK_RP_WRITE(HK_RP_CLR(PLL_PWR), PLL_PWR_PD | PLL_PWR_VCOPD),
    HK_RP_WAIT(PLL_CS, PLL_CS_LOCK, PLL_CS_LOCK),
    HK_RP_WRITE(PLL_PRIM, (PLL_POSTDIV1 << 16) | (PLL_POSTDIV2 << 12)),
    HK_RP_WRITE(HK_RP_CLR(PLL_PWR), PLL_PWR_POSTDIVPD),
    HK_RP_WRITE(CLK_SYS_DIV, CLK_DIV_1),
    HK_RP_WRITE(CLK_SYS_CTRL, CLK_SYS_AUXSRC_PLL_SYS),
    HK_RP_WRITE(HK_RP_SET(CLK_SYS_CTRL), CLK_SYS_SRC_AUX),
    HK_RP_WAIT(CLK_SYS_SELECTED, 1u << 1, 1u << 1),
    HK_RP_WRITE(CLK_PERI_DIV, CLK_DIV_1),
    HK_RP_WRITE(CLK_PERI_CTRL, CLK_PERI_ENABLE | CLK_PERI_AUXSRC_CLK_SYS),
    HK_RP_WRITE(HK_RP_CLR(RESETS_RESET), RESET_IO_BANK0 | RESET_PADS_BANK0 | RESET_UART0),
    HK_RP_WAIT(RESETS_DONE, RESET_IO_BANK0 | RESET_PADS_BANK0 | RESET_UART0,
               RESET_IO_BANK0 | RESET_PADS_BANK0 | RESET_UART0),
    /* Datasheet 9.10.1 order: input on / output-disable off, then the function, then isolation off. */
    HK_RP_WRITE(PADS_GPIO0, PAD_ISO | PAD_IE | PAD_DRIVE_4MA | PAD_SCHMITT),
    HK_RP_WRITE(PADS_GPIO1, PAD_ISO | PAD_IE | PAD_DRIVE_4MA | PAD_SCHMITT | PAD_PUE),
    HK_RP_WRITE(IO_GPIO0_CTRL, FUNCSEL_UART),
    HK_RP_WRITE(IO_GPIO1_CTRL, FUNCSEL_UART),
    HK_RP_WRITE(HK_RP_CLR(PADS_GPIO0), PAD_ISO),
    HK_RP_WRITE(HK_RP_CLR(PADS_GPIO1), PAD_ISO),
    HK_RP_WRITE(UART_IBRD, HK_RP_BAUD_DIV64 >> 6),
    HK_RP_WRITE(UART_FBRD, HK_RP_BAUD_DIV64 & 63u),
    HK_RP_WRITE(UART_LCR_H, LCR_H_8N1_FIFO),
    HK_RP_WRITE(UART_CR, CR_ENABLE),
};
const uint32_t hk_rp_init_steps = sizeof hk_rp_init / sizeof hk_rp_init[0];
