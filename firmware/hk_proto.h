/* The hilkit framed protocol, C side (the spec is docs/protocol.md; host/protocol.py is the twin).
 *
 *   frame = COBS(body) 0x00,  body = type:u8 | seq:u8 | payload | crc32:u32le
 *
 * Pure C99: no malloc, no stdio, no libc calls; every buffer is the caller's and every write is
 * bounds-checked against the capacity the caller passes. */
#ifndef HK_PROTO_H
#define HK_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define HK_PROTO_VERSION 1u

/* Sizes. A body is type + seq + payload + crc32; COBS adds one byte per 254 and one more. */
#define HK_MAX_PAYLOAD 2048u
#define HK_BODY_OVERHEAD 6u
#define HK_MAX_BODY (HK_MAX_PAYLOAD + HK_BODY_OVERHEAD)
#define HK_COBS_MAX(n) ((n) + (n) / 254u + 1u)
#define HK_MAX_ENCODED HK_COBS_MAX(HK_MAX_BODY) /* one frame without its 0x00 */
#define HK_MAX_FRAME (HK_MAX_ENCODED + 1u)      /* one frame with its 0x00 */

/* Message types. A reply has the request's type | HK_REPLY. */
#define HK_MSG_INFO 0x01u
#define HK_MSG_INFER 0x02u
#define HK_MSG_BENCH 0x03u
#define HK_MSG_INFER8 0x04u /* INFER with a lossless 8-bit input code: 4x fewer bytes */
/* HK_MSG_OFFLOAD: the reply to INFER/INFER8 when the model hands the input to the host (MEANet);
 * 0x05 is never a request type. */
#define HK_MSG_OFFLOAD 0x85u
#define HK_MSG_ERROR 0x7Fu
#define HK_REPLY 0x80u

/* ERROR codes (first payload byte of an ERROR reply). */
#define HK_ERR_BAD_FRAME 1u
#define HK_ERR_BAD_LENGTH 2u
#define HK_ERR_UNKNOWN_TYPE 3u
#define HK_ERR_MODEL 4u
#define HK_ERR_NOT_FINITE 5u

/* The sequence number of replies that answer no particular request (bad frames). */
#define HK_SEQ_NONE 0xFFu

/* Return codes of the decode/parse functions. */
#define HK_OK 0
#define HK_E_COBS (-1)  /* not valid COBS (a 0x00 inside, or a block running past the end) */
#define HK_E_SHORT (-2) /* body shorter than type + seq + crc */
#define HK_E_CRC (-3)   /* CRC mismatch */
#define HK_E_LONG (-4)  /* does not fit the output buffer or exceeds HK_MAX_BODY */

/* CRC-32/ISO-HDLC (zlib's crc32). Chain calls as zlib does: crc = hk_crc32_update(crc, p, n),
 * starting from 0. */
uint32_t hk_crc32_update(uint32_t crc, const uint8_t *p, size_t n);
uint32_t hk_crc32(const uint8_t *p, size_t n);

/* COBS-encode src[0..n) into dst (no trailing 0x00). Returns the encoded length (>= 1),
 * or 0 if it would exceed cap (HK_COBS_MAX(n) is always enough). */
size_t hk_cobs_encode(const uint8_t *src, size_t n, uint8_t *dst, size_t cap);

/* Decode one COBS frame src[0..n) (without its 0x00) into dst; *out_n gets the length.
 * dst may equal src (decoding in place is safe). Returns HK_OK, HK_E_COBS or HK_E_LONG. */
int hk_cobs_decode(const uint8_t *src, size_t n, uint8_t *dst, size_t cap, size_t *out_n);

/* A parsed message; payload points into the caller's body buffer. */
typedef struct {
    uint8_t type;
    uint8_t seq;
    const uint8_t *payload;
    size_t len;
    uint32_t crc; /* the frame's CRC, which identifies a request for duplicate detection */
} hk_msg;

/* Build a whole frame (COBS body plus the 0x00 delimiter) into out. payload may be NULL when
 * len is 0. Returns the frame length, or 0 if len > HK_MAX_PAYLOAD or the frame exceeds cap
 * (HK_MAX_FRAME is always enough). */
size_t hk_frame_build(uint8_t type, uint8_t seq, const uint8_t *payload, size_t len, uint8_t *out, size_t cap);

/* Parse one received frame enc[0..n) (without its 0x00): COBS-decode into body (may equal enc),
 * check length and CRC, fill *msg. Returns HK_OK or one of HK_E_*. */
int hk_frame_parse(const uint8_t *enc, size_t n, uint8_t *body, size_t cap, hk_msg *msg);

/* Receive-side framing: feed bytes one at a time; frames longer than HK_MAX_ENCODED are
 * dropped whole (up to their 0x00) without being decoded. Empty frames (0x00 0x00) are ignored,
 * so a sender may put a 0x00 in front of a frame to flush any half-received garbage. */
typedef struct {
    uint8_t buf[HK_MAX_ENCODED];
    size_t n;
    uint8_t overflow;
    uint8_t ready;
} hk_rx;

#define HK_RX_MORE 0    /* no complete frame yet */
#define HK_RX_FRAME 1   /* rx->buf[0..rx->n) holds one encoded frame (valid until the next push) */
#define HK_RX_DROPPED 2 /* an over-long frame ended and was discarded */

void hk_rx_init(hk_rx *rx);
int hk_rx_push(hk_rx *rx, uint8_t byte);

/* Little-endian field access (payloads are little-endian on every target). */
static inline void hk_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void hk_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static inline void hk_put_u64(uint8_t *p, uint64_t v)
{
    hk_put_u32(p, (uint32_t)v);
    hk_put_u32(p + 4, (uint32_t)(v >> 32));
}

static inline uint32_t hk_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* float <-> IEEE-754 bits; union punning is defined behaviour in C99 (TC3) and needs no libc. */
typedef union {
    float f;
    uint32_t u;
} hk_f32_bits;

static inline void hk_put_f32(uint8_t *p, float f)
{
    hk_f32_bits b;
    b.f = f;
    hk_put_u32(p, b.u);
}

static inline float hk_get_f32(const uint8_t *p)
{
    hk_f32_bits b;
    b.u = hk_get_u32(p);
    return b.f;
}

/* True if the float32 with these bits is finite (exponent not all ones); no math.h needed, and
 * immune to -ffast-math folding isfinite() to 1. */
static inline int hk_f32_bits_finite(uint32_t bits) { return (bits & 0x7F800000u) != 0x7F800000u; }

#endif
