/* The hilkit framed protocol, C side. See hk_proto.h and docs/protocol.md. */
#include "hk_proto.h"

/* CRC-32/ISO-HDLC, reflected polynomial 0xEDB88320, one nibble at a time: a 64-byte table is a
 * fair trade between the 1 KiB byte table and the 8-step bit loop on a Cortex-M0+. */
static const uint32_t crc_nibble[16] = {
    0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u, 0x4DB26158u, 0x5005713Cu,
    0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu, 0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu,
};

uint32_t hk_crc32_update(uint32_t crc, const uint8_t *p, size_t n)
{
    size_t i;
    crc = ~crc;
    for (i = 0; i < n; i++) {
        crc ^= p[i];
        crc = (crc >> 4) ^ crc_nibble[crc & 15u];
        crc = (crc >> 4) ^ crc_nibble[crc & 15u];
    }
    return ~crc;
}

uint32_t hk_crc32(const uint8_t *p, size_t n) { return hk_crc32_update(0u, p, n); }

/* A streaming COBS encoder, so a frame is encoded straight from its pieces (type, seq, payload,
 * crc) without first copying them into a body buffer. A block that reaches 254 data bytes is
 * closed lazily, when the next byte arrives: a body ending in a full block then gets no
 * trailing empty block, which is the canonical encoding (as in the reference implementation). */
typedef struct {
    uint8_t *dst;
    size_t cap;
    size_t pos;      /* next data byte goes here */
    size_t code_pos; /* the open block's code byte */
    uint8_t code;    /* 1 + data bytes in the open block */
    uint8_t err;
} cobs_enc;

static void enc_start(cobs_enc *e, uint8_t *dst, size_t cap)
{
    e->dst = dst;
    e->cap = cap;
    e->code_pos = 0;
    e->pos = 1;
    e->code = 1;
    e->err = (uint8_t)(cap < 1u);
}

static void enc_close_block(cobs_enc *e)
{
    e->dst[e->code_pos] = e->code;
    e->code_pos = e->pos;
    e->pos++;
    e->code = 1;
}

static void enc_byte(cobs_enc *e, uint8_t b)
{
    if (e->err) {
        return;
    }
    /* Each branch below writes at most one byte at pos and moves pos by one. */
    if (e->code == 0xFFu) {
        if (e->pos >= e->cap) {
            e->err = 1;
            return;
        }
        enc_close_block(e);
    }
    if (e->pos >= e->cap) {
        e->err = 1;
        return;
    }
    if (b == 0u) {
        enc_close_block(e);
    } else {
        e->dst[e->pos++] = b;
        e->code++;
    }
}

static size_t enc_end(cobs_enc *e)
{
    if (e->err) {
        return 0;
    }
    e->dst[e->code_pos] = e->code;
    return e->pos;
}

size_t hk_cobs_encode(const uint8_t *src, size_t n, uint8_t *dst, size_t cap)
{
    cobs_enc e;
    size_t i;
    enc_start(&e, dst, cap);
    for (i = 0; i < n && !e.err; i++) {
        enc_byte(&e, src[i]);
    }
    return enc_end(&e);
}

int hk_cobs_decode(const uint8_t *src, size_t n, uint8_t *dst, size_t cap, size_t *out_n)
{
    /* In place is safe: the write index never passes the read index. */
    size_t i = 0, o = 0;
    if (n == 0u) {
        return HK_E_COBS;
    }
    while (i < n) {
        uint8_t code = src[i++];
        size_t k, j;
        if (code == 0u) {
            return HK_E_COBS;
        }
        k = (size_t)code - 1u;
        if (k > n - i) {
            return HK_E_COBS;
        }
        if (k > cap - o) {
            return HK_E_LONG;
        }
        for (j = 0; j < k; j++) {
            uint8_t b = src[i++];
            if (b == 0u) {
                return HK_E_COBS;
            }
            dst[o++] = b;
        }
        if (code != 0xFFu && i < n) {
            if (o >= cap) {
                return HK_E_LONG;
            }
            dst[o++] = 0u;
        }
    }
    *out_n = o;
    return HK_OK;
}

size_t hk_frame_build(uint8_t type, uint8_t seq, const uint8_t *payload, size_t len, uint8_t *out, size_t cap)
{
    cobs_enc e;
    uint8_t head[2], tail[4];
    uint32_t crc;
    size_t i, n;
    if (len > HK_MAX_PAYLOAD || (payload == NULL && len != 0u) || cap < 2u) {
        return 0;
    }
    head[0] = type;
    head[1] = seq;
    crc = hk_crc32_update(hk_crc32(head, 2u), payload, len);
    hk_put_u32(tail, crc);

    enc_start(&e, out, cap - 1u); /* keep one byte for the delimiter */
    enc_byte(&e, head[0]);
    enc_byte(&e, head[1]);
    for (i = 0; i < len && !e.err; i++) {
        enc_byte(&e, payload[i]);
    }
    for (i = 0; i < 4u; i++) {
        enc_byte(&e, tail[i]);
    }
    n = enc_end(&e);
    if (n == 0u) {
        return 0;
    }
    out[n] = 0u;
    return n + 1u;
}

int hk_frame_parse(const uint8_t *enc, size_t n, uint8_t *body, size_t cap, hk_msg *msg)
{
    size_t len = 0;
    int rc;
    if (cap > HK_MAX_BODY) {
        cap = HK_MAX_BODY;
    }
    rc = hk_cobs_decode(enc, n, body, cap, &len);
    if (rc != HK_OK) {
        return rc;
    }
    if (len < HK_BODY_OVERHEAD) {
        return HK_E_SHORT;
    }
    if (hk_crc32(body, len - 4u) != hk_get_u32(body + len - 4u)) {
        return HK_E_CRC;
    }
    msg->type = body[0];
    msg->seq = body[1];
    msg->payload = body + 2;
    msg->len = len - HK_BODY_OVERHEAD;
    msg->crc = hk_get_u32(body + len - 4u);
    return HK_OK;
}

void hk_rx_init(hk_rx *rx)
{
    rx->n = 0;
    rx->overflow = 0;
    rx->ready = 0;
}

int hk_rx_push(hk_rx *rx, uint8_t byte)
{
    if (rx->ready) {
        rx->ready = 0;
        rx->n = 0;
    }
    if (byte != 0u) {
        if (rx->n < sizeof rx->buf) {
            rx->buf[rx->n++] = byte;
        } else {
            rx->overflow = 1;
        }
        return HK_RX_MORE;
    }
    if (rx->overflow) {
        rx->overflow = 0;
        rx->n = 0;
        return HK_RX_DROPPED;
    }
    if (rx->n == 0u) {
        return HK_RX_MORE;
    }
    rx->ready = 1;
    return HK_RX_FRAME;
}
