/* RP2040 second stage (boot2): the first 256 bytes of flash.
 *
 * RP2040 datasheet, "Flash Second Stage": the boot ROM copies these 256 bytes to SRAM (0x20041f00)
 * and runs them only if the last 4 bytes are the CRC-32/MPEG-2 of the first 252 ("Checksum").
 * Their one job is to set the SSI up for execute-in-place; then the program runs from the XIP window
 * at 0x10000000. The SSI cannot be reconfigured while enabled, hence the copy in SRAM.
 *
 * Mode: a plain 03h serial read for every XIP access, 8 command + 24 address + 32 data clocks, the
 * mode the boot ROM's own flash_enter_cmd_xip sets (datasheet, bootrom "CX"): every SPI flash
 * answers it. SCK = clk_sys / 4: 31.25 MHz once clk_sys runs at 125 MHz, under the 50 MHz the Pico's
 * W25Q16JV allows for 03h reads. Quad I/O would be faster but depends on the flash part.
 *
 * Position independent (linked at 0x10000000, run at 0x20041f00): literal loads are PC-relative.
 * The last word is a placeholder; boards/common/rp2040_boot2_crc.py writes the checksum into the
 * linked ELF (firmware/CMakeLists.txt HK_POST_LINK). */
    .syntax unified
    .cpu cortex-m0plus
    .thumb

    .equ SSI_BASE,       0x18000000  /* XIP_SSI */
    .equ SSI_CTRLR0,     0x00
    .equ SSI_CTRLR1,     0x04
    .equ SSI_SSIENR,     0x08
    .equ SSI_SER,        0x10
    .equ SSI_BAUDR,      0x14
    .equ SSI_SPI_CTRLR0, 0xf4
    /* CTRLR0: SPI_FRF [22:21] = 0 standard, DFS_32 [20:16] = 31 (32 clocks a frame),
     * TMOD [9:8] = 3 EEPROM read (send instruction + address, then receive). */
    .equ CTRLR0_XIP_03H, (31 << 16) | (3 << 8)
    /* SPI_CTRLR0: XIP_CMD [31:24] = 03h, INST_L [9:8] = 2 (8-bit instruction),
     * ADDR_L [5:2] = 6 (24-bit address, in 4-bit units), TRANS_TYPE [1:0] = 0 (both serial). */
    .equ SPI_CTRLR0_XIP_03H, (0x03 << 24) | (2 << 8) | (6 << 2)
    .equ SCK_DIV, 4
    .equ VECTORS, 0x10000100     /* the vector table right after boot2 */
    .equ PPB_VTOR, 0xe000ed08

    .section .boot2, "ax", %progbits
    .global hk_boot2
    .type hk_boot2, %function
    .thumb_func
hk_boot2:
    ldr r3, =SSI_BASE
    movs r0, #0
    str r0, [r3, #SSI_SSIENR]    /* disable: the SSI takes configuration only while disabled */
    movs r0, #SCK_DIV
    str r0, [r3, #SSI_BAUDR]
    ldr r0, =CTRLR0_XIP_03H
    str r0, [r3, #SSI_CTRLR0]
    movs r0, #0
    str r0, [r3, #SSI_CTRLR1]    /* NDF = 0: one data frame (32 bits) per XIP access */
    ldr r0, =SPI_CTRLR0_XIP_03H
    movs r1, #SSI_SPI_CTRLR0     /* 0xf4 is beyond a Thumb-1 store's immediate offset */
    str r0, [r3, r1]
    movs r0, #1
    str r0, [r3, #SSI_SER]       /* chip select 0 */
    str r0, [r3, #SSI_SSIENR]    /* enable: XIP reads now work */

    /* Enter the program as the core would out of reset: VTOR, then MSP and PC from the table. */
    ldr r0, =VECTORS
    ldr r1, =PPB_VTOR
    str r0, [r1]
    ldmia r0, {r0, r1}           /* r0 = initial SP, r1 = reset handler (Thumb bit set) */
    msr msp, r0
    bx r1

    .ltorg
    .org 252, 0                  /* zero padding up to the checksum */
    .global hk_boot2_crc
hk_boot2_crc:
    .word 0                      /* CRC-32/MPEG-2 of the 252 bytes above, written after linking */
    .size hk_boot2, . - hk_boot2
