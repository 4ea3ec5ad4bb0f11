/* Cortex-M vector table: the initial stack pointer, the reset handler, and every other exception
 * routed to a handler that ends the program with a nonzero status (a fault must never hang QEMU).
 * Works for ARMv6-M, ARMv7-M and ARMv8-M (entries a core does not have are never used). */
    .syntax unified
    .section .isr_vector, "a", %progbits
    .align 7
    .global hk_vectors
hk_vectors:
    .word __stack_top
    .word hk_reset_handler
    .word hk_fault_handler      /* 2  NMI */
    .word hk_fault_handler      /* 3  HardFault */
    .word hk_fault_handler      /* 4  MemManage */
    .word hk_fault_handler      /* 5  BusFault */
    .word hk_fault_handler      /* 6  UsageFault */
    .word hk_fault_handler      /* 7  SecureFault (ARMv8-M) */
    .word hk_fault_handler      /* 8  reserved */
    .word hk_fault_handler      /* 9  reserved */
    .word hk_fault_handler      /* 10 reserved */
    .word hk_fault_handler      /* 11 SVCall */
    .word hk_fault_handler      /* 12 DebugMonitor */
    .word hk_fault_handler      /* 13 reserved */
    .word hk_fault_handler      /* 14 PendSV */
    .word hk_systick_handler    /* 15 SysTick */
    .rept 64                    /* external interrupts: none are enabled, so any is a fault */
    .word hk_fault_handler
    .endr
    .size hk_vectors, . - hk_vectors
