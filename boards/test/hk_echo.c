/* Board bring-up program: exercises the board layer (hk_board.h) without the protocol or a model.
 * Banner "HKT1 <board id>\n", then binary commands:
 *   'E' n:u8 data[n]  -> data[n]                 byte round trip through the link
 *   'W' n:u8          -> cycles:u64le result:u32le   n*64 steps of work between the markers
 *   'X' status:u8     -> exits with that status (semihosting / exit())
 *   'F' kind:u8       -> faults (0 undefined instruction, 1 bad memory access)
 * End of input exits with status 0. */
#include <stddef.h>
#include <stdint.h>
#include "hk_board.h"

/* Marker functions for the instruction-count plugin: never inlined, never merged (distinct asm). */
__attribute__((noinline, used)) void hk_mark_begin(void) { __asm__ volatile("" ::: "memory"); }
__attribute__((noinline, used)) void hk_mark_end(void) { __asm__ volatile("nop" ::: "memory"); }

static void put_u32(uint8_t *p, uint32_t v)
{
    int i;
    for (i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static int get_byte(void)
{
    int c = hk_board_getc();
    if (c < 0) {
        hk_board_exit(0);
    }
    return c;
}

static uint32_t work(int n)
{
    volatile float acc = 1.0f;
    uint32_t h = 2166136261u;
    int i;
    for (i = 0; i < n * 64; i++) {
        acc = acc * 0.999f + (float)(i & 15);
        h = (h ^ (uint32_t)i) * 16777619u;
    }
    return h ^ (uint32_t)(int32_t)acc;
}

static void fault(int kind)
{
    if (kind == 0) {
#if defined(__aarch64__)
        __asm__ volatile(".inst 0x00000000"); /* permanently undefined */
#elif defined(__arm__) || defined(__thumb__)
        __asm__ volatile("udf #0");
#else
        __asm__ volatile("ud2");
#endif
    } else {
        /* An address that is unmapped on every board here (and on Linux). */
        volatile uint32_t *bad = (volatile uint32_t *)(uintptr_t)0xFFFFFFF0u;
        *bad = 1;
    }
}

int main(void)
{
    static const char banner[] = "HKT1 " HK_BOARD_ID "\n";
    uint8_t buf[256];
    hk_board_init();
    hk_board_write((const uint8_t *)banner, sizeof banner - 1);
    for (;;) {
        int cmd = get_byte();
        int n = get_byte();
        int i;
        switch (cmd) {
        case 'E':
            for (i = 0; i < n; i++) {
                buf[i] = (uint8_t)get_byte();
            }
            hk_board_write(buf, (size_t)n);
            break;
        case 'W': {
            uint64_t t0, t1;
            uint32_t r;
            t0 = hk_board_cycles();
            hk_mark_begin();
            r = work(n);
            hk_mark_end();
            t1 = hk_board_cycles();
            put_u32(buf, (uint32_t)(t1 - t0));
            put_u32(buf + 4, (uint32_t)((t1 - t0) >> 32));
            put_u32(buf + 8, r);
            hk_board_write(buf, 12);
            break;
        }
        case 'X':
            hk_board_exit(n);
            break;
        case 'F':
            fault(n);
            hk_board_exit(99); /* the fault did not fault: still fail */
            break;
        default:
            hk_board_exit(98);
        }
    }
}
