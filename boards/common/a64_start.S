/* AArch64 bare-metal entry (rpi3-bm). QEMU starts every core of -M raspi3b at the ELF entry point
 * (a real Pi 3 with kernel_old=1 does the same): cores 1-3 park in wfe, core 0 sets its stack,
 * installs an exception vector table at whatever EL it runs in (EL3, EL2 or EL1), lets FP/SIMD run
 * without trapping, then enters C. */
    .section .text.boot, "ax"
    .global _start
_start:
    mrs     x0, mpidr_el1
    and     x0, x0, #0xff
    cbz     x0, 1f
0:  wfe
    b       0b
1:  ldr     x0, =__stack_top
    mov     sp, x0
    adr     x1, hk_a64_vectors
    mrs     x0, CurrentEL
    lsr     x0, x0, #2
    cmp     x0, #3
    b.eq    3f
    cmp     x0, #2
    b.eq    2f
    msr     vbar_el1, x1            /* EL1 */
    b       9f
2:  msr     vbar_el2, x1            /* EL2: CPTR_EL2 = RES1 bits only, TFP (bit 10) clear */
    mov     x2, #0x33ff
    msr     cptr_el2, x2
    b       9f
3:  msr     vbar_el3, x1            /* EL3: CPTR_EL3.TFP clear */
    msr     cptr_el3, xzr
9:  mov     x2, #(3 << 20)          /* CPACR_EL1.FPEN: no FP traps at EL1/EL0 either */
    msr     cpacr_el1, x2
    isb
    bl      hk_a64_start
    b       .

/* 16 vectors of 0x80 bytes: any exception is a fault; report its vector number and exit. */
    .macro hk_vec n
    .balign 0x80
    mov     x0, #\n
    b       hk_a64_exception
    .endm
    .section .text.vectors, "ax"
    .balign 0x800
    .global hk_a64_vectors
hk_a64_vectors:
    hk_vec 0
    hk_vec 1
    hk_vec 2
    hk_vec 3
    hk_vec 4
    hk_vec 5
    hk_vec 6
    hk_vec 7
    hk_vec 8
    hk_vec 9
    hk_vec 10
    hk_vec 11
    hk_vec 12
    hk_vec 13
    hk_vec 14
    hk_vec 15
