/* hk_callee: a QEMU TCG plugin that counts guest instructions between two marker addresses (as
 * host/qemu_plugin/hk_insn.c does) and attributes the ones executed outside one function's code
 * to the call that got there: where QuAKE's model measurement finds how much of an inference is
 * spent inside libm's expf.
 *
 * Arguments: begin=ADDR,end=ADDR,lo=ADDR,hi=ADDR,out=FILE (ADDR hex or decimal).
 * [lo, hi) is the code of the function under study (hk_model_infer, where every kernel is inlined).
 * A span runs from the block at `begin` to the block at `end` (the same instructions hk_insn counts).
 * Inside a span, every block that starts outside [lo, hi) right after a block inside it opens a
 * context keyed by its start address (a call from the function, or the return to its caller);
 * blocks outside [lo, hi) are charged to the open context until a block inside it runs again, so a
 * callee's own callees are charged to it. FILE gets one line per span, "S <instructions>", and at
 * exit one line per context, "E <start address> <entries> <instructions>", summed over all spans.
 * The caller maps start addresses to symbols (an entry at a function's first instruction is a
 * call; one in the middle of a function is a return). */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qemu_plugin_api.h" /* host/qemu_plugin/: the model bench passes -I */

#define MAX_CTX 256
#define CTX_INSIDE (-1)
#define CTX_NONE (-2)

struct block {
    uint64_t vaddr;
    uint64_t n;
    int kind; /* 0 plain, 1 begin, 2 end */
    int inside;
};

struct ctx {
    uint64_t addr, entries, insns;
};

static uint64_t g_begin, g_end, g_lo, g_hi;
static FILE *g_out;
static int g_in_span, g_cur = CTX_NONE;
static uint64_t g_span;
static struct ctx g_ctx[MAX_CTX];
static int g_n_ctx, g_overflow;

static int ctx_of(uint64_t addr)
{
    for (int i = 0; i < g_n_ctx; i++) {
        if (g_ctx[i].addr == addr) {
            return i;
        }
    }
    if (g_n_ctx == MAX_CTX) {
        g_overflow = 1;
        return CTX_NONE;
    }
    g_ctx[g_n_ctx].addr = addr;
    return g_n_ctx++;
}

/* Single-core targets only (the boards this bench runs on): one set of counters. */
static void on_exec(unsigned int vcpu, void *udata)
{
    const struct block *b = udata;
    (void)vcpu;
    if (b->kind == 1) {
        g_in_span = 1;
        g_span = 0;
        g_cur = CTX_NONE;
        return;
    }
    if (!g_in_span) {
        return;
    }
    g_span += b->n;
    if (b->inside) {
        g_cur = CTX_INSIDE;
    } else {
        if (g_cur == CTX_INSIDE) {
            g_cur = ctx_of(b->vaddr);
            if (g_cur >= 0) {
                g_ctx[g_cur].entries++;
            }
        }
        if (g_cur >= 0) {
            g_ctx[g_cur].insns += b->n;
        }
    }
    if (b->kind == 2) {
        g_in_span = 0;
        if (g_out) {
            fprintf(g_out, "S %" PRIu64 "\n", g_span);
        }
    }
}

static void on_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    struct block *b = calloc(1, sizeof *b); /* one per translation; blocks are retranslated rarely */
    if (b == NULL) {
        return;
    }
    b->vaddr = qemu_plugin_tb_vaddr(tb);
    b->n = qemu_plugin_tb_n_insns(tb);
    b->kind = b->vaddr == g_begin ? 1 : (b->vaddr == g_end ? 2 : 0);
    b->inside = b->vaddr >= g_lo && b->vaddr < g_hi;
    qemu_plugin_register_vcpu_tb_exec_cb(tb, on_exec, QEMU_PLUGIN_CB_NO_REGS, b);
}

static void on_exit_cb(qemu_plugin_id_t id, void *udata)
{
    (void)id;
    (void)udata;
    if (g_out) {
        for (int i = 0; i < g_n_ctx; i++) {
            fprintf(g_out, "E %#" PRIx64 " %" PRIu64 " %" PRIu64 "\n", g_ctx[i].addr, g_ctx[i].entries, g_ctx[i].insns);
        }
        if (g_overflow) {
            fprintf(g_out, "OVERFLOW\n");
        }
        fclose(g_out);
        g_out = NULL;
    }
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
                                                               char **argv)
{
    (void)info;
    int seen = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "begin=", 6) == 0) {
            g_begin = strtoull(a + 6, NULL, 0);
            seen |= 1;
        } else if (strncmp(a, "end=", 4) == 0) {
            g_end = strtoull(a + 4, NULL, 0);
            seen |= 2;
        } else if (strncmp(a, "lo=", 3) == 0) {
            g_lo = strtoull(a + 3, NULL, 0);
            seen |= 4;
        } else if (strncmp(a, "hi=", 3) == 0) {
            g_hi = strtoull(a + 3, NULL, 0);
            seen |= 8;
        } else if (strncmp(a, "out=", 4) == 0) {
            g_out = fopen(a + 4, "w");
            if (!g_out) {
                qemu_plugin_outs("hk_callee: cannot open the output file\n");
                return -1;
            }
            seen |= 16;
        } else {
            qemu_plugin_outs("hk_callee: unknown argument (use begin=,end=,lo=,hi=,out=)\n");
            return -1;
        }
    }
    if (seen != 31) {
        qemu_plugin_outs("hk_callee: give begin=,end=,lo=,hi=,out=\n");
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_trans);
    qemu_plugin_register_atexit_cb(id, on_exit_cb, NULL);
    return 0;
}
