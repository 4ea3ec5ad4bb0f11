/* The board-independent firmware: answer framed requests (docs/protocol.md) with the model.
 *
 * Everything is static: one receive buffer (frames are decoded in place), one reply payload, the
 * last reply frame (kept for duplicate requests), and the model's input/output vectors. */
#include "hk_board.h"
#include "hk_model.h"
#include "hk_proto.h"

#ifndef HK_FW_VERSION
#error "HK_FW_VERSION comes from the generated model.h (the hilkit version that generated it)"
#endif

/* Compile-time checks that every message of this model fits a frame. */
#define HK_STATIC_ASSERT(cond, name) typedef char hk_static_assert_##name[(cond) ? 1 : -1]
HK_STATIC_ASSERT(4u * HK_MODEL_N_IN <= HK_MAX_PAYLOAD, infer_request_fits);
HK_STATIC_ASSERT(9u + 4u * HK_MODEL_N_EXTRA + 4u * HK_MODEL_N_OUT <= HK_MAX_PAYLOAD, infer_reply_fits);
HK_STATIC_ASSERT(HK_MODEL_N_EXTRA <= 255, n_extra_fits_u8);
HK_STATIC_ASSERT(HK_MODEL_IN_RANK <= 32 && HK_MODEL_OUT_RANK <= 32, ranks_fit);
HK_STATIC_ASSERT(HK_MODEL_N_IN <= 65535 && HK_MODEL_N_OUT <= 65535, sizes_fit_u16);

/* Instruction markers. The QEMU plugin counts guest instructions between the entries of these
 * two functions, found by name in the ELF symbol table: they must stay global, out of line and
 * distinct (different bodies, so identical-code folding cannot merge them). */
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

static hk_rx g_rx;
static uint8_t g_payload[HK_MAX_PAYLOAD]; /* the reply payload being built */
static uint8_t g_last[HK_MAX_FRAME];      /* the last reply frame, resent for a duplicate */
static size_t g_last_len;
static uint8_t g_last_seq;
static uint32_t g_last_crc;
static uint8_t g_have_last;
static uint8_t g_err_frame[64]; /* replies to bad frames (never stored) */

static float g_in[HK_MODEL_N_IN]; /* the last accepted input; BENCH reuses it */
static float g_out[HK_MODEL_N_OUT];
static uint32_t g_extra[HK_MODEL_N_EXTRA + 1]; /* +1: no zero-length array for plain models */

static const uint16_t g_in_dims[HK_MODEL_IN_RANK] = HK_MODEL_IN_DIMS;
static const uint16_t g_out_dims[HK_MODEL_OUT_RANK] = HK_MODEL_OUT_DIMS;

static size_t str_len(const char *s)
{
    size_t n = 0;
    while (s[n] != '\0') {
        n++;
    }
    return n;
}

/* ERROR payload: code, then an ASCII message. Returns the payload length. */
static size_t put_error(uint8_t *p, size_t cap, uint8_t code, const char *msg)
{
    size_t n = 0;
    p[n++] = code;
    while (*msg != '\0' && n < cap) {
        p[n++] = (uint8_t)*msg++;
    }
    return n;
}

/* A length-prefixed string, cut at 255 bytes. */
static size_t put_str(uint8_t *p, const char *s)
{
    size_t n = str_len(s), i;
    if (n > 255u) {
        n = 255u;
    }
    p[0] = (uint8_t)n;
    for (i = 0; i < n; i++) {
        p[1 + i] = (uint8_t)s[i];
    }
    return 1u + n;
}

static void send_bad_frame(uint8_t code, const char *msg)
{
    uint8_t p[48];
    size_t n = put_error(p, sizeof p, code, msg);
    size_t f = hk_frame_build(HK_MSG_ERROR, HK_SEQ_NONE, p, n, g_err_frame, sizeof g_err_frame);
    if (f != 0u) {
        hk_board_write(g_err_frame, f);
    }
}

static size_t do_info(uint8_t *p)
{
    size_t n = 0, i;
    hk_put_u16(p + n, (uint16_t)HK_PROTO_VERSION);
    n += 2;
    hk_put_u16(p + n, (uint16_t)HK_MODEL_N_IN);
    n += 2;
    hk_put_u16(p + n, (uint16_t)HK_MODEL_N_OUT);
    n += 2;
    hk_put_u32(p + n, (uint32_t)MODEL_ARENA_BYTES);
    n += 4;
    p[n++] = (uint8_t)HK_MODEL_IN_RANK;
    for (i = 0; i < (size_t)HK_MODEL_IN_RANK; i++) {
        hk_put_u16(p + n, g_in_dims[i]);
        n += 2;
    }
    p[n++] = (uint8_t)HK_MODEL_OUT_RANK;
    for (i = 0; i < (size_t)HK_MODEL_OUT_RANK; i++) {
        hk_put_u16(p + n, g_out_dims[i]);
        n += 2;
    }
    n += put_str(p + n, HK_BOARD_ID);
    n += put_str(p + n, HK_FW_VERSION);
    n += put_str(p + n, HK_MODEL_HASH);
    return n;
}

/* One inference between the markers; the cycle counter brackets the markers so that the
 * instruction count is the model's alone. */
static int run_model(uint64_t *cycles)
{
    uint64_t t0, t1;
    int rc;
    t0 = hk_board_cycles();
    hk_mark_begin();
    rc = hk_model_infer(g_in, g_out);
    hk_mark_end();
    t1 = hk_board_cycles();
    *cycles += t1 - t0;
    return rc;
}

/* Fill g_in from an INFER (n_in float32) or INFER8 (zero:f32, scale:f32, n_in u8: x = zero + scale*q)
 * payload. Returns 0, or an error code with *msg set. */
static int load_input(const hk_msg *m, const char **msg)
{
    size_t i;
    if (m->type == HK_MSG_INFER8) {
        float zero, scale;
        if (m->len != 8u + (size_t)HK_MODEL_N_IN) {
            *msg = "INFER8 payload must be zero:f32, scale:f32, n_in u8";
            return HK_ERR_BAD_LENGTH;
        }
        if (!hk_f32_bits_finite(hk_get_u32(m->payload)) || !hk_f32_bits_finite(hk_get_u32(m->payload + 4u))) {
            *msg = "input not finite (NaN or Inf)";
            return HK_ERR_NOT_FINITE;
        }
        zero = hk_get_f32(m->payload);
        scale = hk_get_f32(m->payload + 4u);
        for (i = 0; i < (size_t)HK_MODEL_N_IN; i++) {
            g_in[i] = zero + scale * (float)m->payload[8u + i];
        }
        return 0;
    }
    if (m->len != 4u * (size_t)HK_MODEL_N_IN) {
        *msg = "INFER payload must be n_in float32";
        return HK_ERR_BAD_LENGTH;
    }
    for (i = 0; i < (size_t)HK_MODEL_N_IN; i++) {
        if (!hk_f32_bits_finite(hk_get_u32(m->payload + 4u * i))) {
            *msg = "input not finite (NaN or Inf)";
            return HK_ERR_NOT_FINITE;
        }
    }
    for (i = 0; i < (size_t)HK_MODEL_N_IN; i++) {
        g_in[i] = hk_get_f32(m->payload + 4u * i);
    }
    return 0;
}

/* OFFLOAD (the model handed this input to the host): after the cycles and counters, the request's
 * type (its encoding: INFER or INFER8) and its payload as received, so the host gets exactly the
 * input the model saw, in as few bytes as it came. */
static size_t put_offload(const hk_msg *m, uint8_t *p, size_t n, uint8_t *type)
{
    size_t i;
    if (n + 1u + m->len > HK_MAX_PAYLOAD) {
        *type = HK_MSG_ERROR;
        return put_error(p, HK_MAX_PAYLOAD, HK_ERR_MODEL, "offload reply too long");
    }
    *type = HK_MSG_OFFLOAD;
    p[n++] = m->type;
    for (i = 0; i < m->len; i++) {
        p[n++] = m->payload[i];
    }
    return n;
}

static size_t do_infer(const hk_msg *m, uint8_t *p, uint8_t *type)
{
    size_t i, n = 0;
    uint64_t cycles = 0;
    int n_extra, err, rc;
    const char *msg = "";
    err = load_input(m, &msg);
    if (err != 0) {
        *type = HK_MSG_ERROR;
        return put_error(p, HK_MAX_PAYLOAD, (uint8_t)err, msg);
    }
    rc = run_model(&cycles);
    if (rc != 0 && rc != HK_MODEL_OFFLOAD) {
        *type = HK_MSG_ERROR;
        return put_error(p, HK_MAX_PAYLOAD, HK_ERR_MODEL, "model failed");
    }
    n_extra = hk_model_extra(g_extra);
    if (n_extra < 0) {
        n_extra = 0;
    }
    if (n_extra > HK_MODEL_N_EXTRA) {
        n_extra = HK_MODEL_N_EXTRA;
    }
    hk_put_u64(p + n, cycles);
    n += 8;
    p[n++] = (uint8_t)n_extra;
    for (i = 0; i < (size_t)n_extra; i++) {
        hk_put_u32(p + n, g_extra[i]);
        n += 4;
    }
    if (rc == HK_MODEL_OFFLOAD) {
        return put_offload(m, p, n, type);
    }
    for (i = 0; i < (size_t)HK_MODEL_N_OUT; i++) {
        hk_put_f32(p + n, g_out[i]);
        n += 4;
    }
    return n;
}

static size_t do_bench(const hk_msg *m, uint8_t *p, uint8_t *type)
{
    uint32_t reps, r;
    uint64_t cycles = 0;
    if (m->len != 4u) {
        *type = HK_MSG_ERROR;
        return put_error(p, HK_MAX_PAYLOAD, HK_ERR_BAD_LENGTH, "BENCH payload must be reps:u32");
    }
    reps = hk_get_u32(m->payload);
    for (r = 0; r < reps; r++) {
        const int rc = run_model(&cycles);
        if (rc != 0 && rc != HK_MODEL_OFFLOAD) { /* an offloaded inference ran to its exit */
            *type = HK_MSG_ERROR;
            return put_error(p, HK_MAX_PAYLOAD, HK_ERR_MODEL, "model failed");
        }
    }
    hk_put_u64(p, cycles);
    hk_put_u32(p + 8, reps);
    return 12u;
}

static void handle(const hk_msg *m)
{
    uint8_t type = (uint8_t)(m->type | HK_REPLY);
    size_t n, f;

    /* A retransmission (same seq and same CRC, so the same bytes) gets the stored reply:
     * recomputing would run the model twice and could answer differently (counters). */
    if (g_have_last && m->seq == g_last_seq && m->crc == g_last_crc) {
        hk_board_write(g_last, g_last_len);
        return;
    }
    switch (m->type) {
    case HK_MSG_INFO:
        if (m->len != 0u) {
            type = HK_MSG_ERROR;
            n = put_error(g_payload, sizeof g_payload, HK_ERR_BAD_LENGTH, "INFO takes no payload");
        } else {
            n = do_info(g_payload);
        }
        break;
    case HK_MSG_INFER:
    case HK_MSG_INFER8:
        n = do_infer(m, g_payload, &type);
        break;
    case HK_MSG_BENCH:
        n = do_bench(m, g_payload, &type);
        break;
    default:
        type = HK_MSG_ERROR;
        n = put_error(g_payload, sizeof g_payload, HK_ERR_UNKNOWN_TYPE, "unknown message type");
        break;
    }
    f = hk_frame_build(type, m->seq, g_payload, n, g_last, sizeof g_last);
    if (f == 0u) { /* cannot happen: the static asserts bound every payload */
        g_have_last = 0;
        send_bad_frame(HK_ERR_MODEL, "reply too long");
        return;
    }
    g_last_len = f;
    g_last_seq = m->seq;
    g_last_crc = m->crc;
    g_have_last = 1;
    hk_board_write(g_last, g_last_len);
}

int main(void)
{
    hk_board_init();
    hk_rx_init(&g_rx);
    for (;;) {
        hk_msg m;
        int c = hk_board_getc();
        int r;
        if (c < 0) {
            hk_board_exit(0);
            return 0;
        }
        r = hk_rx_push(&g_rx, (uint8_t)c);
        if (r == HK_RX_DROPPED) {
            send_bad_frame(HK_ERR_BAD_LENGTH, "frame too long");
        } else if (r == HK_RX_FRAME) {
            r = hk_frame_parse(g_rx.buf, g_rx.n, g_rx.buf, sizeof g_rx.buf, &m);
            if (r == HK_OK) {
                handle(&m);
            } else if (r == HK_E_LONG) {
                send_bad_frame(HK_ERR_BAD_LENGTH, "frame too long");
            } else {
                send_bad_frame(HK_ERR_BAD_FRAME, r == HK_E_CRC ? "bad CRC" : "bad frame");
            }
        }
    }
}
