/* RP2350 IMAGE_DEF: the metadata block the boot ROM looks for in the first 4 KiB of flash before
 * it runs a flash image (RP2350 datasheet 5.1.12 "Flash image boot", 5.9 "Metadata block details",
 * 5.9.5.1 "Minimum Arm IMAGE_DEF"). Without a VECTOR_TABLE or ENTRY_POINT item the ROM takes the
 * initial SP and reset handler from the vector table at the start of the image (0x10000000), so the
 * linker script puts this block right after the vector table. */
    .syntax unified

    .equ BLOCK_MARKER_START, 0xffffded3
    .equ BLOCK_MARKER_END,   0xab123579
    .equ ITEM_1BS_IMAGE_TYPE, 0x42   /* size_flag 0 (1-byte size), item type 0x42 */
    .equ ITEM_2BS_LAST,       0xff   /* size_flag 1 (2-byte size), item type 0x7f */
    /* image_type_flags (datasheet 5.9.3.1): [3:0] image type, [5:4] security, [10:8] CPU, [14:12] chip */
    .equ IMAGE_TYPE_EXE,  1
    .equ EXE_SECURITY_S,  2
    .equ EXE_CPU_ARM,     0
    .equ EXE_CHIP_RP2350, 1
    .equ IMAGE_TYPE_FLAGS, IMAGE_TYPE_EXE | (EXE_SECURITY_S << 4) | (EXE_CPU_ARM << 8) | (EXE_CHIP_RP2350 << 12)

    .section .rp2350_image_def, "a", %progbits
    .balign 4
    .global hk_image_def
hk_image_def:
    .word BLOCK_MARKER_START
    .word ITEM_1BS_IMAGE_TYPE | (1 << 8) | (IMAGE_TYPE_FLAGS << 16)  /* 1 word: EXE, Secure, Arm, RP2350 */
    .word ITEM_2BS_LAST | (1 << 8)   /* the items before it hold 1 word in all */
    .word 0                          /* link to the next block, relative: 0 = itself, a loop of one */
    .word BLOCK_MARKER_END
    .size hk_image_def, . - hk_image_def
