/* The board layer for Linux user programs (host, qemu-user, Raspberry Pi Linux): the link is
 * stdin/stdout, read and written with read()/write() on fds 0/1 (no stdio buffering), and the
 * cycle counter is CLOCK_MONOTONIC in nanoseconds. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "hk_board.h"

/* read() returns whatever has arrived (up to the buffer), so this never waits for more bytes than
 * the host has sent; it only saves a system call per byte. */
static unsigned char g_ibuf[512];
static size_t g_ipos, g_ilen;

void hk_board_init(void)
{
    /* A host that has gone away must end the program (exit 0, as on link close), not kill it. */
    signal(SIGPIPE, SIG_IGN);
}

int hk_board_getc(void)
{
    if (g_ipos >= g_ilen) {
        ssize_t n;
        do {
            n = read(0, g_ibuf, sizeof g_ibuf);
        } while (n < 0 && errno == EINTR);
        if (n <= 0) {
            return -1;
        }
        g_ipos = 0;
        g_ilen = (size_t)n;
    }
    return g_ibuf[g_ipos++];
}

void hk_board_write(const uint8_t *buf, size_t n)
{
    while (n > 0u) {
        ssize_t w = write(1, buf, n);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            exit(0); /* the reader closed the link */
        }
        buf += (size_t)w;
        n -= (size_t)w;
    }
}

uint64_t hk_board_cycles(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) {
        return 0;
    }
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void hk_board_exit(int status) { exit(status); }
