/* MLPerf Tiny / EEMBC device protocol: the firmware variant that benchmark runners drive.
 *
 * Built instead of main.c when HK_PROTOCOL_MLPERF is defined (CMake: -DHK_PROTOCOL=mlperf), over
 * the same board layer (hk_board.h: UART or stdio) at the board's baud (115200 on every board).
 * Commands are ASCII ending in '%'; every command is answered by zero or more lines and then
 * "m-ready" (the structure of the MLPerf Tiny reference's api/internally_implemented.cpp):
 *
 *   name%            m-name-dut-[hilkit]
 *   profile%         m-profile-[hilkit <version>]  m-model-[<model name>-<model hash>]
 *   timestamp%       m-lap-us-<microseconds of the cycle counter>
 *   db load N%       m-[Expecting N bytes]           (the input: n_in float32, little-endian)
 *   db HEX..%        m-load-done once N bytes have arrived
 *   db print%        m-buffer-xx-xx-... (8 bytes a line)
 *   infer N W%       m-warmup-start-W  m-warmup-done  m-infer-start-N  m-lap-us-T0  m-lap-us-T1
 *                    m-infer-done  m-results-[...]  (N timed inferences after W warm-up ones)
 *   results%         m-results-[y0,y1,...] of the last inference
 *   errors           e-[...] lines
 *
 * Results are printed with 9 significant digits, correctly rounded (as C's "%.9g"): enough to
 * give back every float32 exactly, so the host can compare them bit for bit with the binary
 * protocol's. The same instruction markers as main.c bracket every inference (QEMU counts). */
#include "hk_board.h"

typedef int hk_mlperf_translation_unit_is_not_empty;

#ifdef HK_PROTOCOL_MLPERF
#include "hk_model.h"

#ifndef HK_FW_VERSION
#error "HK_FW_VERSION comes from the generated model.h (the hilkit version that generated it)"
#endif
#ifndef HK_MODEL_NAME
#define HK_MODEL_NAME "model"
#endif
/* Cycles of hk_board_cycles() per microsecond: the board's clock where it says so, else the UART
 * clock of CMSDK/PL011 boards (the CPU clock of the MPS2/MPS3 images), else 1000 (Linux boards
 * count nanoseconds). */
#ifndef HK_CYCLES_PER_US
#if defined(HK_CLOCK_HZ)
#define HK_CYCLES_PER_US ((HK_CLOCK_HZ) / 1000000u)
#elif defined(HK_UART_CLOCK_HZ)
#define HK_CYCLES_PER_US ((HK_UART_CLOCK_HZ) / 1000000u)
#else
#define HK_CYCLES_PER_US 1000u
#endif
#endif

#define HK_DB_BYTES (4u * (unsigned)HK_MODEL_N_IN)
#define HK_CMD_MAX (16u + 2u * 512u) /* "db " and 512 bytes of hex per command */

void hk_mark_begin(void);
void hk_mark_end(void);
volatile uint32_t hk_mark_state;

__attribute__((noinline, used)) void hk_mark_begin(void)
{
    hk_mark_state = 1u;
    __asm__ __volatile__("" ::: "memory");
}

__attribute__((noinline, used)) void hk_mark_end(void)
{
    hk_mark_state = 2u;
    __asm__ __volatile__("" ::: "memory");
}

static char g_cmd[HK_CMD_MAX + 1u];
static size_t g_cmd_len;
static int g_cmd_overflow;
static uint8_t g_db[HK_DB_BYTES];
static size_t g_db_size;
static size_t g_db_pos;
static float g_in[HK_MODEL_N_IN];
static float g_out[HK_MODEL_N_OUT];
static int g_have_out;

/* ------------------------------------------------------------------ output */
static void put(const char *s)
{
    size_t n = 0;
    while (s[n] != '\0') {
        n++;
    }
    hk_board_write((const uint8_t *)s, n);
}

static void put_u64(uint64_t v)
{
    char b[21];
    size_t i = sizeof b;
    b[--i] = '\0';
    do {
        b[--i] = (char)('0' + (int)(v % 10u));
        v /= 10u;
    } while (v != 0u);
    put(b + i);
}

static void put_line_u64(const char *prefix, uint64_t v)
{
    put(prefix);
    put_u64(v);
    put("\r\n");
}

static void put_hex8(uint8_t v)
{
    static const char hex[] = "0123456789abcdef";
    char b[3];
    b[0] = hex[v >> 4];
    b[1] = hex[v & 15u];
    b[2] = '\0';
    put(b);
}

/* ------------------------------------------------------------------ float32 as "%.9g"
 * The exact decimal value of a float32 m * 2^e is an integer times a power of ten: m * 2^e for
 * e >= 0, or m * 5^-e / 10^-e. That integer (at most 113 digits) is built in base-1e9 limbs, its
 * digits are rounded half-to-even to 9 significant ones, and laid out as printf's %g does. */
#define LIMBS 14u

static void big_mul(uint32_t *x, size_t *n, uint32_t k)
{
    uint64_t carry = 0;
    size_t i;
    for (i = 0; i < *n; i++) {
        uint64_t t = (uint64_t)x[i] * k + carry;
        x[i] = (uint32_t)(t % 1000000000u);
        carry = t / 1000000000u;
    }
    while (carry != 0u && *n < LIMBS) {
        x[(*n)++] = (uint32_t)(carry % 1000000000u);
        carry /= 1000000000u;
    }
}

static size_t fmt_f32(float f, char *out)
{
    union {
        float f;
        uint32_t u;
    } v;
    uint32_t limb[LIMBS], mant;
    size_t nl = 1, nd = 0, i, o = 0;
    int e2, dexp, x, k;
    char d[LIMBS * 9u + 2u];
    v.f = f;
    if (v.u >> 31) {
        out[o++] = '-';
    }
    e2 = (int)((v.u >> 23) & 0xFFu);
    mant = v.u & 0x7FFFFFu;
    if (e2 == 0xFF) {
        const char *s = mant ? "nan" : "inf";
        if (mant) {
            o = 0; /* no sign on nan */
        }
        while (*s) {
            out[o++] = *s++;
        }
        out[o] = '\0';
        return o;
    }
    if (e2 == 0 && mant == 0u) {
        out[o++] = '0';
        out[o] = '\0';
        return o;
    }
    if (e2 != 0) {
        mant |= 0x800000u;
    } else {
        e2 = 1;
    }
    e2 -= 150; /* value = mant * 2^e2 */
    limb[0] = mant % 1000000000u;
    if (mant >= 1000000000u) {
        limb[nl++] = mant / 1000000000u;
    }
    dexp = 0;
    if (e2 >= 0) {
        for (k = e2; k > 0; k -= 29) {
            big_mul(limb, &nl, 1u << (k > 29 ? 29 : k));
        }
    } else {
        dexp = e2; /* mant * 2^e2 = mant * 5^-e2 * 10^e2 */
        for (k = -e2; k > 0; k -= 13) {
            uint32_t p = 1;
            int j;
            for (j = 0; j < (k > 13 ? 13 : k); j++) {
                p *= 5u;
            }
            big_mul(limb, &nl, p);
        }
    }
    /* digits, most significant first */
    for (i = nl; i-- > 0;) {
        uint32_t w = limb[i];
        char t[9];
        int j;
        for (j = 8; j >= 0; j--) {
            t[j] = (char)('0' + (int)(w % 10u));
            w /= 10u;
        }
        for (j = 0; j < 9; j++) {
            if (nd == 0 && t[j] == '0') {
                continue;
            }
            d[nd++] = t[j];
        }
    }
    x = (int)nd - 1 + dexp; /* decimal exponent of the first digit */
    if (nd > 9u) {
        int up = 0;
        if (d[9] > '5') {
            up = 1;
        } else if (d[9] == '5') {
            for (i = 10; i < nd && d[i] == '0'; i++) {
            }
            up = i < nd || ((d[8] - '0') & 1);
        }
        nd = 9;
        if (up) {
            for (i = 9; i-- > 0;) {
                if (d[i] != '9') {
                    d[i]++;
                    break;
                }
                d[i] = '0';
                if (i == 0) { /* 999999999 -> 1000000000 */
                    d[0] = '1';
                    x++;
                }
            }
        }
    }
    while (nd > 1u && d[nd - 1] == '0') {
        nd--;
    }
    if (x >= -4 && x < 9) { /* fixed notation */
        if (x < 0) {
            out[o++] = '0';
            out[o++] = '.';
            for (k = -1; k > x; k--) {
                out[o++] = '0';
            }
            for (i = 0; i < nd; i++) {
                out[o++] = d[i];
            }
        } else {
            for (i = 0; i < nd || (int)i <= x; i++) {
                if ((int)i == x + 1) {
                    out[o++] = '.';
                }
                out[o++] = i < nd ? d[i] : '0';
            }
        }
    } else {
        out[o++] = d[0];
        if (nd > 1u) {
            out[o++] = '.';
            for (i = 1; i < nd; i++) {
                out[o++] = d[i];
            }
        }
        out[o++] = 'e';
        out[o++] = x < 0 ? '-' : '+';
        if (x < 0) {
            x = -x;
        }
        if (x >= 100) {
            out[o++] = (char)('0' + x / 100);
        }
        out[o++] = (char)('0' + (x / 10) % 10);
        out[o++] = (char)('0' + x % 10);
    }
    out[o] = '\0';
    return o;
}

/* ------------------------------------------------------------------ commands */
static int streq(const char *a, const char *b)
{
    while (*a != '\0' && *a == *b) {
        a++;
        b++;
    }
    return *a == *b;
}

/* The next space-separated word of *p (NUL-terminated in place), or NULL. */
static char *next_word(char **p)
{
    char *s = *p, *w;
    while (*s == ' ') {
        s++;
    }
    if (*s == '\0') {
        *p = s;
        return 0;
    }
    w = s;
    while (*s != '\0' && *s != ' ') {
        s++;
    }
    if (*s == ' ') {
        *s++ = '\0';
    }
    *p = s;
    return w;
}

/* A decimal count; -1 if not a number or too large. */
static long parse_count(const char *s)
{
    long v = 0;
    if (*s == '\0') {
        return -1;
    }
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9' || v > 100000000L) {
            return -1;
        }
        v = v * 10 + (*s - '0');
    }
    return v;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

static void timestamp(void)
{
    uint64_t per_us = (uint64_t)(HK_CYCLES_PER_US);
    put_line_u64("m-lap-us-", hk_board_cycles() / (per_us ? per_us : 1u));
}

static void results(void)
{
    char b[24];
    size_t i;
    if (!g_have_out) {
        put("e-[No inference has run]\r\n");
        return;
    }
    put("m-results-[");
    for (i = 0; i < (size_t)HK_MODEL_N_OUT; i++) {
        fmt_f32(g_out[i], b);
        put(b);
        if (i + 1u < (size_t)HK_MODEL_N_OUT) {
            put(",");
        }
    }
    put("]\r\n");
}

static int infer_once(void)
{
    int rc;
    hk_mark_begin();
    rc = hk_model_infer(g_in, g_out);
    hk_mark_end();
    return rc;
}

static void model_failed(int rc)
{
#ifdef HK_MODEL_OFFLOAD
    if (rc == HK_MODEL_OFFLOAD) { /* a MEANet edge model passing this input to the cloud model */
        put("e-[Model offloads this input to the host: no result on the device]\r\n");
        return;
    }
#endif
    (void)rc;
    put("e-[Model failed]\r\n");
}

static void cmd_db(char *rest)
{
    char *w = next_word(&rest);
    if (w == 0) {
        put("e-[Command 'db' requires a subcommand]\r\n");
    } else if (streq(w, "load")) {
        long n;
        w = next_word(&rest);
        n = w ? parse_count(w) : -1;
        if (n <= 0) {
            put("e-[Command 'db load' requires the # of bytes, > 0]\r\n");
        } else if ((unsigned long)n > HK_DB_BYTES) {
            put("e-[Supplied buffer size ");
            put_u64((uint64_t)n);
            put(" exceeds maximum of ");
            put_u64(HK_DB_BYTES);
            put("]\r\n");
        } else {
            g_db_size = (size_t)n;
            g_db_pos = 0;
            put("m-[Expecting ");
            put_u64((uint64_t)n);
            put(" bytes]\r\n");
        }
    } else if (streq(w, "print")) {
        size_t i;
        for (i = 0; i < g_db_size; i++) {
            if (i % 8u == 0u) {
                put("m-buffer-");
            }
            put_hex8(g_db[i]);
            put((i + 1u) % 8u == 0u || i + 1u == g_db_size ? "\r\n" : "-");
        }
    } else {
        size_t i, n = 0;
        while (w[n] != '\0') {
            n++;
        }
        if (n % 2u != 0u) {
            put("e-[Insufficent number of hex digits]\r\n");
            return;
        }
        if (g_db_size == 0u || g_db_pos >= g_db_size) {
            put("e-[No 'db load' is waiting for bytes]\r\n");
            return;
        }
        for (i = 0; i < n; i += 2u) {
            int hi = hexval(w[i]), lo = hexval(w[i + 1u]);
            if (hi < 0 || lo < 0) {
                put("e-[Invalid hex digit]\r\n");
                return;
            }
            g_db[g_db_pos++] = (uint8_t)(hi * 16 + lo);
            if (g_db_pos == g_db_size) {
                put("m-load-done\r\n");
                return; /* the rest of the digits is ignored */
            }
        }
    }
}

static void cmd_infer(char *rest)
{
    long n = 1, w = 10, r;
    char *t = next_word(&rest);
    size_t i;
    if (t != 0) {
        n = parse_count(t);
        if (n <= 0) {
            put("e-[Inference iterations must be >0]\r\n");
            return;
        }
        t = next_word(&rest);
        if (t != 0) {
            w = parse_count(t);
            if (w < 0) {
                put("e-[Inference warmup must be >=0]\r\n");
                return;
            }
        }
    }
    if (g_db_pos != HK_DB_BYTES || g_db_size != HK_DB_BYTES) {
        put("e-[Input db has ");
        put_u64(g_db_pos);
        put(" bytes, expected ");
        put_u64(HK_DB_BYTES);
        put(" (n_in float32)]\r\n");
        return;
    }
    for (i = 0; i < (size_t)HK_MODEL_N_IN; i++) {
        union {
            float f;
            uint32_t u;
        } v;
        const uint8_t *b = g_db + 4u * i;
        v.u = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
        if (((v.u >> 23) & 0xFFu) == 0xFFu) {
            put("e-[Input not finite (NaN or Inf)]\r\n");
            return;
        }
        g_in[i] = v.f;
    }
    g_have_out = 0;
    put_line_u64("m-warmup-start-", (uint64_t)w);
    for (r = 0; r < w; r++) {
        int rc = infer_once();
        if (rc != 0) {
            model_failed(rc);
            return;
        }
    }
    put("m-warmup-done\r\n");
    put_line_u64("m-infer-start-", (uint64_t)n);
    timestamp();
    for (r = 0; r < n; r++) {
        int rc = infer_once();
        if (rc != 0) {
            timestamp();
            model_failed(rc);
            return;
        }
    }
    timestamp();
    put("m-infer-done\r\n");
    g_have_out = 1;
    results();
}

static void command(char *line)
{
    char *rest = line;
    char *w = next_word(&rest);
    if (w == 0) {
        put("e-[Empty command]\r\n");
    } else if (streq(w, "name")) {
        put("m-name-dut-[hilkit]\r\n");
    } else if (streq(w, "profile")) {
        put("m-profile-[hilkit " HK_FW_VERSION "]\r\n");
        put("m-model-[" HK_MODEL_NAME "-" HK_MODEL_HASH "]\r\n");
    } else if (streq(w, "help")) {
        put("hilkit " HK_FW_VERSION " MLPerf Tiny mode (" HK_BOARD_ID ")\r\n");
        put("name, profile, timestamp, db load N, db HEX.., db print, infer N [W=10], results\r\n");
    } else if (streq(w, "timestamp")) {
        timestamp();
    } else if (streq(w, "db")) {
        cmd_db(rest);
    } else if (streq(w, "infer")) {
        cmd_infer(rest);
    } else if (streq(w, "results")) {
        results();
    } else {
        put("e-[Unknown command: ");
        put(w);
        put("]\r\n");
    }
    put("m-ready\r\n");
}

int main(void)
{
    hk_board_init();
    put("m-timestamp-mode-performance\r\n");
    timestamp();
    put("m-init-done\r\n");
    put("m-ready\r\n");
    for (;;) {
        int c = hk_board_getc();
        if (c < 0) {
            hk_board_exit(0);
            return 0;
        }
        if (c == '%') {
            g_cmd[g_cmd_len] = '\0';
            if (g_cmd_overflow) {
                put("e-[Command too long]\r\nm-ready\r\n");
            } else {
                command(g_cmd);
            }
            g_cmd_len = 0;
            g_cmd_overflow = 0;
        } else if (c == '\r' || c == '\n' || c == '\0') {
            /* line ends between commands (a terminal) are not part of a command */
        } else if (g_cmd_len < HK_CMD_MAX) {
            g_cmd[g_cmd_len++] = (char)c;
        } else {
            g_cmd_overflow = 1;
        }
    }
}
#endif /* HK_PROTOCOL_MLPERF */
