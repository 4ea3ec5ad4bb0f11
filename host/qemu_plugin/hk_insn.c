/* hk_insn: a QEMU TCG plugin that counts guest instructions between two marker addresses.
 *
 * The API declarations are in qemu_plugin_api.h (Debian's QEMU ships no qemu-plugin.h).
 *
 * Arguments: begin=ADDR,end=ADDR,out=FILE  (ADDR in hex or decimal).
 * Every execution of the translation block that starts at `begin` snapshots the instruction count
 * of that vCPU; every execution of the block at `end` writes the difference as one decimal line to
 * FILE (flushed at once, so the host can read it as soon as the reply arrives). Counting is per
 * vCPU, so parked secondary cores (raspi3b) do not disturb the count. Without markers the plugin
 * writes the total count of vCPU 0 at exit. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qemu_plugin_api.h"

#define MAX_VCPUS 16
static uint64_t g_count[MAX_VCPUS];
static uint64_t g_start[MAX_VCPUS];
static uint64_t g_begin, g_end;
static int g_have_markers;
static FILE *g_out;

static void on_tb(unsigned int vcpu, void *udata) { g_count[vcpu % MAX_VCPUS] += (uint64_t)(uintptr_t)udata; }

static void on_begin(unsigned int vcpu, void *udata)
{
    on_tb(vcpu, udata);
    g_start[vcpu % MAX_VCPUS] = g_count[vcpu % MAX_VCPUS];
}

static void on_end(unsigned int vcpu, void *udata)
{
    on_tb(vcpu, udata);
    if (g_out) {
        fprintf(g_out, "%" PRIu64 "\n", g_count[vcpu % MAX_VCPUS] - g_start[vcpu % MAX_VCPUS]);
        fflush(g_out);
    }
}

static void on_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    uint64_t pc = qemu_plugin_tb_vaddr(tb);
    void *n = (void *)(uintptr_t)qemu_plugin_tb_n_insns(tb);
    qemu_plugin_vcpu_udata_cb_t cb = on_tb;
    if (g_have_markers && pc == g_begin) {
        cb = on_begin;
    } else if (g_have_markers && pc == g_end) {
        cb = on_end;
    }
    qemu_plugin_register_vcpu_tb_exec_cb(tb, cb, QEMU_PLUGIN_CB_NO_REGS, n);
}

static void on_exit_cb(qemu_plugin_id_t id, void *udata)
{
    (void)id;
    (void)udata;
    if (g_out && !g_have_markers) {
        fprintf(g_out, "%" PRIu64 "\n", g_count[0]);
    }
    if (g_out) {
        fclose(g_out);
        g_out = NULL;
    }
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
                                                               char **argv)
{
    (void)info;
    int have_b = 0, have_e = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "begin=", 6) == 0) {
            g_begin = strtoull(a + 6, NULL, 0);
            have_b = 1;
        } else if (strncmp(a, "end=", 4) == 0) {
            g_end = strtoull(a + 4, NULL, 0);
            have_e = 1;
        } else if (strncmp(a, "out=", 4) == 0) {
            g_out = fopen(a + 4, "w");
            if (!g_out) {
                qemu_plugin_outs("hk_insn: cannot open the output file\n");
                return -1;
            }
        } else {
            qemu_plugin_outs("hk_insn: unknown argument (use begin=,end=,out=)\n");
            return -1;
        }
    }
    g_have_markers = have_b && have_e;
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_trans);
    qemu_plugin_register_atexit_cb(id, on_exit_cb, NULL);
    return 0;
}
