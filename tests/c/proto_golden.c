/* Golden-byte driver for firmware/hk_proto.c: one command per stdin line, one answer per line on
 * stdout. Hex strings are lower-case, "-" stands for no bytes.
 *   E hex            COBS encode          -> hex | ERR
 *   D hex            COBS decode          -> hex | ERR code
 *   C hex            CRC-32               -> 8 hex digits
 *   B type seq hex   build a frame        -> hex (with the 0x00) | ERR
 *   P hex            parse a frame        -> OK type seq crc payload-hex | ERR code
 *   R hex            feed bytes to hk_rx  -> events: F:hex (frame) or X (dropped), space-separated
 * tests/test_protocol.py checks every answer against host/protocol.py. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hk_proto.h"

#define BIG 70000

static char line[2 * BIG + 64];
static uint8_t a[BIG], b[BIG];

static size_t unhex(const char *s, uint8_t *out)
{
    size_t n = 0;
    if (s[0] == '-') {
        return 0;
    }
    while (s[0] && s[1] && s[0] != ' ' && s[0] != '\n') {
        unsigned v;
        sscanf(s, "%2x", &v);
        out[n++] = (uint8_t)v;
        s += 2;
    }
    return n;
}

static void puthex(const uint8_t *p, size_t n)
{
    size_t i;
    if (n == 0) {
        fputs("-", stdout);
    }
    for (i = 0; i < n; i++) {
        printf("%02x", p[i]);
    }
}

int main(void)
{
    static hk_rx rx;
    while (fgets(line, sizeof line, stdin)) {
        char *arg = line + 2;
        size_t n, m = 0;
        int rc;
        switch (line[0]) {
        case 'E':
            n = unhex(arg, a);
            m = hk_cobs_encode(a, n, b, HK_COBS_MAX(n));
            if (m == 0) {
                fputs("ERR", stdout);
            } else {
                puthex(b, m);
            }
            break;
        case 'D':
            n = unhex(arg, a);
            rc = hk_cobs_decode(a, n, b, sizeof b, &m);
            if (rc != HK_OK) {
                printf("ERR %d", rc);
            } else {
                puthex(b, m);
            }
            break;
        case 'C':
            n = unhex(arg, a);
            printf("%08lx", (unsigned long)hk_crc32(a, n));
            break;
        case 'B': {
            unsigned type, seq;
            char *p = arg;
            type = (unsigned)strtoul(p, &p, 10);
            seq = (unsigned)strtoul(p, &p, 10);
            n = unhex(p + 1, a);
            m = hk_frame_build((uint8_t)type, (uint8_t)seq, a, n, b, HK_MAX_FRAME);
            if (m == 0) {
                fputs("ERR", stdout);
            } else {
                puthex(b, m);
            }
            break;
        }
        case 'P': {
            hk_msg msg;
            n = unhex(arg, a);
            rc = hk_frame_parse(a, n, a, sizeof a, &msg); /* in place, as the firmware does */
            if (rc != HK_OK) {
                printf("ERR %d", rc);
            } else {
                printf("OK %u %u %08lx ", msg.type, msg.seq, (unsigned long)msg.crc);
                puthex(msg.payload, msg.len);
            }
            break;
        }
        case 'R': {
            size_t i;
            int first = 1;
            n = unhex(arg, a);
            hk_rx_init(&rx);
            for (i = 0; i < n; i++) {
                int ev = hk_rx_push(&rx, a[i]);
                if (ev == HK_RX_MORE) {
                    continue;
                }
                if (!first) {
                    fputs(" ", stdout);
                }
                first = 0;
                if (ev == HK_RX_FRAME) {
                    fputs("F:", stdout);
                    puthex(rx.buf, rx.n);
                } else {
                    fputs("X", stdout);
                }
            }
            if (first) {
                fputs("-", stdout);
            }
            break;
        }
        default:
            fputs("?", stdout);
        }
        fputs("\n", stdout);
    }
    return 0;
}
