/* hilkit.host._kernels: the portable C kernels, callable from Python for tests and host benchmarks.
 * Each function takes and returns float32 data through the buffer protocol (bytes / numpy arrays). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdlib.h>
#include <string.h>

#include "hk_exp.h"

static PyObject *kernels_abi(PyObject *self, PyObject *args)
{
    (void)self;
    (void)args;
    return PyLong_FromLong(1);
}

/* ---- exp kernels (kernels_c/hk_exp.h) ---- */

typedef void (*hk_f32_kernel)(const float *x, float *y, int n);

typedef struct {
    const char *name;
    hk_f32_kernel fn;
} hk_named_kernel;

/* Names are the C names without "hk_" and "_f32"; "..._c" forces the portable C path. */
static const hk_named_kernel exp_kernels[] = {
    {"exp_libm", hk_exp_libm_f32},
    {"exp_quake1", hk_exp_quake1_f32},
    {"exp_quake2", hk_exp_quake2_f32},
    {"softmax_libm", hk_softmax_libm_f32},
    {"softmax_quake1", hk_softmax_quake1_f32},
    {"softmax_quake2", hk_softmax_quake2_f32},
    {"logistic_libm", hk_logistic_libm_f32},
    {"logistic_quake1", hk_logistic_quake1_f32},
    {"logistic_quake2", hk_logistic_quake2_f32},
    {"gelu_libm", hk_gelu_libm_f32},
    {"gelu_quake1", hk_gelu_quake1_f32},
    {"gelu_quake2", hk_gelu_quake2_f32},
    {"gelu_tanh_libm", hk_gelu_tanh_libm_f32},
    {"gelu_tanh_quake1", hk_gelu_tanh_quake1_f32},
    {"gelu_tanh_quake2", hk_gelu_tanh_quake2_f32},
    {"exp_quake1_c", hk_exp_quake1_f32_c},
    {"exp_quake2_c", hk_exp_quake2_f32_c},
    {"softmax_quake1_c", hk_softmax_quake1_f32_c},
    {"softmax_quake2_c", hk_softmax_quake2_f32_c},
    {"logistic_quake1_c", hk_logistic_quake1_f32_c},
    {"logistic_quake2_c", hk_logistic_quake2_f32_c},
    {"gelu_quake1_c", hk_gelu_quake1_f32_c},
    {"gelu_quake2_c", hk_gelu_quake2_f32_c},
    {"gelu_tanh_quake1_c", hk_gelu_tanh_quake1_f32_c},
    {"gelu_tanh_quake2_c", hk_gelu_tanh_quake2_f32_c},
    {NULL, NULL},
};

static PyObject *kernels_exp_kernel(PyObject *self, PyObject *args, PyObject *kwargs)
{
    (void)self;
    static char *kwlist[] = {"name", "x", "inplace", NULL};
    const char *name;
    Py_buffer in;
    int inplace = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "sy*|p", kwlist, &name, &in, &inplace)) {
        return NULL;
    }
    hk_f32_kernel fn = NULL;
    for (const hk_named_kernel *k = exp_kernels; k->name; k++) {
        if (strcmp(k->name, name) == 0) {
            fn = k->fn;
        }
    }
    if (!fn) {
        PyBuffer_Release(&in);
        return PyErr_Format(PyExc_ValueError, "unknown exp kernel %s: see exp_kernel_names()", name);
    }
    if (in.len % (Py_ssize_t)sizeof(float) != 0 || in.len / (Py_ssize_t)sizeof(float) > INT32_MAX) {
        PyBuffer_Release(&in);
        return PyErr_Format(PyExc_ValueError, "x must hold float32 values (%zd bytes given)", in.len);
    }
    int n = (int)(in.len / (Py_ssize_t)sizeof(float));
    PyObject *out = PyBytes_FromStringAndSize(NULL, in.len);
    float *xcopy = inplace ? NULL : (float *)PyMem_Malloc(in.len ? (size_t)in.len : 1u);
    if (!out || (!inplace && !xcopy)) {
        Py_XDECREF(out);
        PyBuffer_Release(&in);
        return PyErr_NoMemory();
    }
    float *y = (float *)(void *)PyBytes_AS_STRING(out); /* bytes data is 8-byte aligned */
    if (inplace) {
        memcpy(y, in.buf, (size_t)in.len);
        fn(y, y, n);
    } else {
        memcpy(xcopy, in.buf, (size_t)in.len);
        fn(xcopy, y, n);
        PyMem_Free(xcopy);
    }
    PyBuffer_Release(&in);
    return out;
}

static PyObject *kernels_exp_kernel_names(PyObject *self, PyObject *args)
{
    (void)self;
    (void)args;
    PyObject *list = PyList_New(0);
    for (const hk_named_kernel *k = exp_kernels; list && k->name; k++) {
        PyObject *s = PyUnicode_FromString(k->name);
        if (!s || PyList_Append(list, s) < 0) {
            Py_XDECREF(s);
            Py_DECREF(list);
            return NULL;
        }
        Py_DECREF(s);
    }
    return list;
}

static PyObject *kernels_quake_constants(PyObject *self, PyObject *args)
{
    (void)self;
    (void)args;
    return Py_BuildValue("{s:d,s:d,s:d,s:k,s:d,s:d,s:d,s:d,s:d}", "C1", (double)HK_QUAKE_C1, "QUAKE1_C0",
                         (double)HK_QUAKE1_C0, "QUAKE2_C0", (double)HK_QUAKE2_C0, "QUAKE2_K",
                         (unsigned long)HK_QUAKE2_K, "T_INF", (double)HK_QUAKE_T_INF, "SOFTMAX_FOLD_MAX",
                         (double)HK_SOFTMAX_FOLD_MAX, "GELU_K", (double)HK_GELU_K, "GELU_TANH_A",
                         (double)HK_GELU_TANH_A, "GELU_TANH_B", (double)HK_GELU_TANH_B);
}

static PyMethodDef kernels_methods[] = {
    {"abi", kernels_abi, METH_NOARGS, "ABI version of the kernel bindings."},
    {"exp_kernel", (PyCFunction)(void (*)(void))kernels_exp_kernel, METH_VARARGS | METH_KEYWORDS,
     "exp_kernel(name, x, inplace=False) -> bytes: run hk_<name>_f32 (e.g. 'softmax_quake1') over the "
     "float32 values of x; the result is float32 bytes."},
    {"exp_kernel_names", kernels_exp_kernel_names, METH_NOARGS, "Names accepted by exp_kernel()."},
    {"quake_constants", kernels_quake_constants, METH_NOARGS, "The QuAKE constants of hk_exp.h."},
    {NULL, NULL, 0, NULL},
};

/* clang-format off */
static struct PyModuleDef kernels_module = {
    PyModuleDef_HEAD_INIT, "_kernels", "hilkit portable C kernels (host build).", -1, kernels_methods,
    NULL, NULL, NULL, NULL,
};
/* clang-format on */

PyMODINIT_FUNC PyInit__kernels(void) { return PyModule_Create(&kernels_module); }
