/* Bench firmware for the int8 kernels: the request driver of tests/c/s8_driver.c on the board layer
 * (hk_board.h), so the same program runs natively, under qemu-user and under qemu-system, driven over
 * the board's link by bench/int8/s8bench.py. Every kernel call sits alone between hk_mark_begin and
 * hk_mark_end, so the QEMU plugin counts exactly that call's instructions.
 *
 * Banner "HKS8 <board id>\n", then commands:
 *   'R' request     one s8_driver request -> its response (status u32, output); op 0 is the
 *                   empty span (the marker and call overhead, which s8bench.py subtracts)
 *   'X' status:u8   exit with that status
 * The end of the input exits with status 0. s8bench.py may generate a C file that defines compiled
 * cases (kernels called with literal shapes, as generated model code calls them), defines S8_CASES
 * and includes this file. */
#include <stdint.h>
#include <string.h>

#include "hk_board.h"

#ifndef S8_POOL_BYTES
#define S8_POOL_BYTES (160u * 1024u) /* fits the smallest board's RAM (pico: 264 KiB) */
#endif
#define S8_EMBEDDED 1

__attribute__((noinline, used)) void hk_mark_begin(void)
{
    __asm__ volatile("" ::: "memory");
}
__attribute__((noinline, used)) void hk_mark_end(void)
{
    __asm__ volatile("nop" ::: "memory");
}

static int s8_getc(void)
{
    return hk_board_getc();
}
static void s8_write(const void *p, size_t n)
{
    hk_board_write((const uint8_t *)p, n);
}
static void s8_mark_begin(void)
{
    hk_mark_begin();
}
static void s8_mark_end(void)
{
    hk_mark_end();
}

#include "../../tests/c/s8_driver.c"

int main(void)
{
    static const char banner[] = "HKS8 " HK_BOARD_ID "\n";
    hk_board_init();
    hk_board_write((const uint8_t *)banner, sizeof banner - 1);
    for (;;) {
        const int cmd = hk_board_getc();
        if (cmd < 0) {
            hk_board_exit(0);
        }
        switch (cmd) {
        case 'R':
            if (!s8_serve()) {
                hk_board_exit(0);
            }
            break;
        case 'X':
            hk_board_exit(hk_board_getc());
            break;
        default:
            hk_board_exit(98);
        }
    }
}
