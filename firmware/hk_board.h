/* The board layer: the few things the firmware needs from a target.
 * One implementation per runtime kind lives under boards/ (Linux stdio, CMSDK UART, PL011 ...). */
#ifndef HK_BOARD_H
#define HK_BOARD_H

#include <stddef.h>
#include <stdint.h>

/* Bring up the byte link (UART or stdio) and the cycle counter. */
void hk_board_init(void);

/* Block until one byte arrives; return it (0..255), or -1 when the link has closed. */
int hk_board_getc(void);

/* Write n bytes to the link and return once they are handed to the hardware/OS. */
void hk_board_write(const uint8_t *buf, size_t n);

/* A free-running cycle counter (DWT CYCCNT, SysTick, PMU/CNTVCT, clock_gettime ns); 0 if none. */
uint64_t hk_board_cycles(void);

/* End the program with a status (semihosting exit, exit(), or a park loop on hardware). */
void hk_board_exit(int status);

/* The board id string, e.g. "mps2-an386" (defined by the build as HK_BOARD_ID). */
#ifndef HK_BOARD_ID
#define HK_BOARD_ID "unknown"
#endif

#endif
