/* chainrule.backend._speedups: the engine's bookkeeping in C (optional; pure-Python twins exist).
 *
 * What lives here is bookkeeping: creating the graph node and the result tensor of
 * an op (apply, apply1, apply2) and the reverse walk of backward() (walk); and array kernels
 * of bounded size (fused_grad, small_sigmoid, small_sum, small_spread, small_add_row,
 * small_cross_entropy and its _grad), each bit for bit the NumPy code that a rule otherwise
 * runs, in one call instead of several. Every op's forward
 * and local gradient stays a Python method of its Op class, called from here exactly as
 * the Python engine calls it, so the chain-rule code a reader studies is the code that
 * runs. chainrule/ops/base.py and chainrule/autograd/engine.py hold the Python versions; the tests
 * run the engine through both.
 *
 * The Tensor and Op classes keep their attributes in __slots__; configure_apply() looks up each
 * slot's offset once, so reads and writes here are one pointer access.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#define NPY_NO_DEPRECATED_API NPY_1_22_API_VERSION
#include <numpy/arrayobject.h>
#include <numpy/ufuncobject.h>
#include <fenv.h>
#include <math.h>

/* ------------------------------------------------------------------ configuration */

static PyTypeObject *TensorType, *OpType;
static PyObject *State;           /* chainrule.autograd.grad_mode.state (thread-local) */
static PyObject *PyApply, *PyApply1, *PyApply2; /* the Python twins: every unusual case goes there */
static PyObject *RaiseForwardError; /* (op, inputs, err) -> raises the named error */
static PyObject *Released;        /* engine.RELEASED */
static PyObject *Unbroadcast;     /* engine.unbroadcast(grad, shape) */
static PyObject *AccumulateLeaf;  /* engine._accumulate_leaf(leaf, grad, upstream) */
static PyObject *KeepRetained;    /* engine._keep_retained(tensor, grad) */
static PyObject *SecondBackward;  /* engine._second_backward(node) -> raises */
static PyObject *Asarray;         /* xp.asarray */
static PyObject *CheckVersions;   /* engine._check_versions(node) -> raises if an input changed in place */
static PyObject *Zero;            /* the int 0: a tensor's version until an in-place op changes it */
static PyObject *CheckedGrad;     /* tensor._checked_grad(tensor, value): `t.grad = value` for a value not None */
static PyObject *GradDoc;         /* the docstring of Tensor.grad (the Python property's), kept alive */
static PyObject *EmptyTuple, *NeedsT, *NeedsTT, *NeedsTF, *NeedsFT;
static PyObject *str_forward, *str_vjp, *str_mode, *str_shape;
static int configured_apply = 0, configured_walk = 0;

#define KEEP(var, value) do { Py_XSETREF(var, (value)); Py_INCREF(var); } while (0)

static Py_ssize_t off_data, off_grad, off_requires_grad, off_grad_fn, off_name, off_version, off_weaklist;
static Py_ssize_t off_inputs, off_needs, off_retained, off_saved, off_scope, off_trace, off_versions;

#define SLOT(obj, off) (*(PyObject **)((char *)(obj) + (off)))

/* Store a new reference to value (borrowed) in a slot. */
static inline void
set_slot(PyObject *obj, Py_ssize_t off, PyObject *value)
{
    PyObject *old = SLOT(obj, off);
    Py_INCREF(value);
    SLOT(obj, off) = value;
    Py_XDECREF(old);
}

/* Store value (a reference the caller gives away) in a slot. */
static inline void
give_slot(PyObject *obj, Py_ssize_t off, PyObject *value)
{
    PyObject *old = SLOT(obj, off);
    SLOT(obj, off) = value;
    Py_XDECREF(old);
}

static int
slot_offset(PyTypeObject *type, const char *name, Py_ssize_t *offset)
{
    PyObject *descr = PyDict_GetItemString(type->tp_dict, name);
    if (descr == NULL || !Py_IS_TYPE(descr, &PyMemberDescr_Type)) {
        PyErr_Format(PyExc_TypeError, "_speedups: %s.%s is not a __slots__ attribute", type->tp_name, name);
        return -1;
    }
    PyMemberDef *member = ((PyMemberDescrObject *)descr)->d_member;
    if (member->type != T_OBJECT_EX || (member->flags & READONLY)) {
        PyErr_Format(PyExc_TypeError, "_speedups: %s.%s is not a writable object slot", type->tp_name, name);
        return -1;
    }
    *offset = member->offset;
    return 0;
}

/* ------------------------------------------------------------------ .grad
 *
 * Tensor.grad is a tensor without history (as in PyTorch), kept in the slot `_grad`. Backward
 * makes one per leaf and step, and `zero_grad()` (or `p.grad = None`) lets it go, so a training
 * loop would allocate and free a tensor object per parameter per step: measurably slower on
 * small nets. The property below (installed over the Python one by configure_apply) reads and
 * writes the slot and, when the tensor it lets go of is held by nothing else (reference count 1,
 * no weak references), keeps the empty object on a short free list, where new_grad() takes it
 * back. Nothing can see the difference: no one else could reach the object.
 */
#define SPARE_GRADS 64
static PyObject *spare_grads[SPARE_GRADS]; /* emptied exact Tensors, untracked by the GC */
static int n_spare_grads = 0;

/* Let go of a gradient's tensor (a reference given away): freed, or emptied and kept. */
static void
drop_grad(PyObject *g)
{
    if (!Py_IS_TYPE(g, TensorType) || Py_REFCNT(g) != 1 || n_spare_grads >= SPARE_GRADS ||
        SLOT(g, off_weaklist) != NULL) {
        Py_DECREF(g);
        return;
    }
    PyObject_GC_UnTrack(g);
    const Py_ssize_t offsets[] = {off_data, off_grad, off_requires_grad, off_grad_fn, off_name, off_version};
    for (size_t i = 0; i < sizeof(offsets) / sizeof(offsets[0]); i++)
        Py_CLEAR(SLOT(g, offsets[i])); /* may run other code (a freed array's base): g is unreachable */
    if (n_spare_grads < SPARE_GRADS)
        spare_grads[n_spare_grads++] = g;
    else {
        PyObject_GC_Track(g);
        Py_DECREF(g);
    }
}

static PyObject *
grad_get(PyObject *t, void *Py_UNUSED(closure))
{
    PyObject *g = SLOT(t, off_grad);
    if (g == NULL) {
        PyErr_SetString(PyExc_AttributeError, "grad: this tensor was not initialized (Tensor.__init__ not run)");
        return NULL;
    }
    return Py_NewRef(g);
}

/* Store keep (a reference given away) as t's gradient and let the old one go. */
static void
replace_grad(PyObject *t, PyObject *keep)
{
    PyObject *old = SLOT(t, off_grad);
    SLOT(t, off_grad) = keep;
    if (old != NULL)
        drop_grad(old);
}

/* t.grad = value: None (or del) lets the old gradient go; anything else is checked in Python. */
static int
grad_set(PyObject *t, PyObject *value, void *Py_UNUSED(closure))
{
    PyObject *keep;
    if (value == NULL || value == Py_None)
        keep = Py_NewRef(Py_None);
    else if ((keep = PyObject_CallFunctionObjArgs(CheckedGrad, t, value, NULL)) == NULL)
        return -1;
    replace_grad(t, keep);
    return 0;
}

static PyGetSetDef grad_getset = {"grad", grad_get, grad_set, NULL, NULL};

/* Tensor.grad becomes the C property, with the Python property's docstring. */
static int
install_grad(PyTypeObject *tt)
{
    PyObject *python = PyDict_GetItemString(tt->tp_dict, "grad");
    if (python == NULL || !PyObject_TypeCheck(python, &PyProperty_Type)) {
        if (python != NULL && Py_IS_TYPE(python, &PyGetSetDescr_Type))
            return 0; /* installed already (configure_apply called again) */
        PyErr_SetString(PyExc_TypeError, "_speedups: Tensor.grad is not a property");
        return -1;
    }
    PyObject *doc = PyObject_GetAttrString(python, "__doc__");
    if (doc == NULL)
        return -1;
    /* NOTE: kept for good once set: a descriptor made earlier (a reloaded Tensor class) points at it */
    if (GradDoc == NULL && PyUnicode_Check(doc)) {
        GradDoc = doc;
        grad_getset.doc = PyUnicode_AsUTF8(GradDoc);
    }
    else
        Py_DECREF(doc);
    PyObject *descr = PyDescr_NewGetSet(tt, &grad_getset);
    if (descr == NULL)
        return -1;
    int r = PyObject_SetAttrString((PyObject *)tt, "grad", descr);
    Py_DECREF(descr);
    return r;
}

/* clear_grads(tensors): `t.grad = None` for each (zero_grad's loop in C). */
static PyObject *
clear_grads(PyObject *Py_UNUSED(module), PyObject *tensors)
{
    if (!configured_apply) {
        PyErr_SetString(PyExc_RuntimeError, "clear_grads() needs configure_apply() first");
        return NULL;
    }
    PyObject *seq = PySequence_Fast(tensors, "clear_grads(tensors): a sequence of tensors");
    if (seq == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
        PyObject *t = PySequence_Fast_GET_ITEM(seq, i);
        if (!PyObject_TypeCheck(t, TensorType)) {
            Py_DECREF(seq);
            PyErr_Format(PyExc_TypeError, "clear_grads(): item %zd is a %.100s, not a tensor", i, Py_TYPE(t)->tp_name);
            return NULL;
        }
        if (SLOT(t, off_grad) != Py_None)
            replace_grad(t, Py_NewRef(Py_None));
    }
    Py_DECREF(seq);
    Py_RETURN_NONE;
}

static PyObject *
configure_apply(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"tensor_type", "op_type", "state", "apply", "apply1", "apply2",
                            "raise_forward_error", "asarray", "checked_grad", NULL};
    PyObject *tensor_type, *op_type, *state, *apply, *apply1, *apply2, *raise_fe, *asarray, *checked_grad;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!O!OOOOOOO:configure_apply", names, &PyType_Type,
                                     &tensor_type, &PyType_Type, &op_type, &state, &apply, &apply1, &apply2,
                                     &raise_fe, &asarray, &checked_grad))
        return NULL;
    PyTypeObject *tt = (PyTypeObject *)tensor_type, *ot = (PyTypeObject *)op_type;
    if (slot_offset(tt, "data", &off_data) || slot_offset(tt, "_grad", &off_grad) ||
        slot_offset(tt, "_requires_grad", &off_requires_grad) || slot_offset(tt, "_grad_fn", &off_grad_fn) ||
        slot_offset(tt, "name", &off_name) || slot_offset(tt, "_version", &off_version) ||
        slot_offset(ot, "versions", &off_versions) || slot_offset(ot, "inputs", &off_inputs) ||
        slot_offset(ot, "needs_input_grad", &off_needs) || slot_offset(ot, "retained", &off_retained) ||
        slot_offset(ot, "saved", &off_saved) || slot_offset(ot, "scope", &off_scope) ||
        slot_offset(ot, "trace", &off_trace))
        return NULL;
    /* NOTE: recycling a gradient's tensor (drop_grad) clears these six slots and needs no weak
     * references; a Tensor with other slots or a __dict__ would keep stale values. */
    off_weaklist = tt->tp_weaklistoffset;
    if (tt->tp_basicsize != PyBaseObject_Type.tp_basicsize + 7 * (Py_ssize_t)sizeof(PyObject *) ||
        tt->tp_dictoffset != 0 || off_weaklist <= 0) {
        PyErr_SetString(PyExc_TypeError, "_speedups: Tensor's __slots__ changed: update drop_grad() and this check");
        return NULL;
    }
    KEEP(TensorType, tt);
    KEEP(OpType, ot);
    KEEP(State, state);
    KEEP(PyApply, apply);
    KEEP(PyApply1, apply1);
    KEEP(PyApply2, apply2);
    KEEP(RaiseForwardError, raise_fe);
    KEEP(Asarray, asarray);
    KEEP(CheckedGrad, checked_grad);
    if (install_grad(tt) < 0)
        return NULL;
    configured_apply = 1;
    Py_RETURN_NONE;
}

static PyObject *
configure_walk(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"released", "unbroadcast", "accumulate_leaf", "keep_retained", "second_backward",
                            "check_versions", NULL};
    PyObject *released, *unbroadcast, *accumulate, *keep, *second, *check;
    if (!configured_apply) {
        PyErr_SetString(PyExc_RuntimeError, "configure_walk() needs configure_apply() first");
        return NULL;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOOOO:configure_walk", names, &released, &unbroadcast,
                                     &accumulate, &keep, &second, &check))
        return NULL;
    KEEP(Released, released);
    KEEP(Unbroadcast, unbroadcast);
    KEEP(AccumulateLeaf, accumulate);
    KEEP(KeepRetained, keep);
    KEEP(SecondBackward, second);
    KEEP(CheckVersions, check);
    configured_walk = 1;
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------ apply */

/* The recording mode: 0 no graph (no_grad), 1 record, 2 the Python path must run (watchers). */
static long
current_mode(void)
{
    PyObject *mode = PyObject_GetAttr(State, str_mode);
    if (mode == NULL)
        return -1;
    long value = PyLong_AsLong(mode);
    Py_DECREF(mode);
    return value;
}

/* True if op is an Op subclass whose instances this module may build: no custom __new__. */
static inline int
plain_op(PyObject *op)
{
    return PyType_Check(op) && PyType_IsSubtype((PyTypeObject *)op, OpType) &&
           ((PyTypeObject *)op)->tp_new == PyBaseObject_Type.tp_new;
}

static inline int
plain_tensor(PyObject *x)
{
    return PyObject_TypeCheck(x, TensorType) && SLOT(x, off_data) != NULL && SLOT(x, off_requires_grad) != NULL &&
           SLOT(x, off_version) != NULL;
}

/* The forward failed: ValueError and IndexError are re-raised naming the op, the shapes
 * and the dtypes (by the Python helper, so both paths word it the same). */
static void
forward_failed(PyObject *op, PyObject *const *inputs, Py_ssize_t n)
{
    if (!PyErr_ExceptionMatches(PyExc_ValueError) && !PyErr_ExceptionMatches(PyExc_IndexError))
        return;
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL)
        PyException_SetTraceback(value, tb);
    PyObject *tuple = PyTuple_New(n);
    if (tuple == NULL) {
        PyErr_Restore(type, value, tb);
        return;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_INCREF(inputs[i]);
        PyTuple_SET_ITEM(tuple, i, inputs[i]);
    }
    PyObject *result = PyObject_CallFunctionObjArgs(RaiseForwardError, op, tuple, value, NULL);
    Py_XDECREF(result); /* the helper raises: result is NULL and its error is set */
    Py_DECREF(tuple);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
}

/* New tensor wrapping data (a reference given away), recording node if record. */
static PyObject *
make_result(PyObject *node, PyObject *data, int record)
{
    if (Py_TYPE(data) != &PyArray_Type) {
        PyObject *array = PyObject_CallOneArg(Asarray, data);
        Py_DECREF(data);
        if (array == NULL)
            return NULL;
        data = array;
    }
    PyObject *out = TensorType->tp_alloc(TensorType, 0);
    if (out == NULL) {
        Py_DECREF(data);
        return NULL;
    }
    give_slot(out, off_data, data);
    set_slot(out, off_grad, Py_None);
    set_slot(out, off_name, Py_None);
    set_slot(out, off_version, Zero);
    if (record) {
        set_slot(node, off_retained, Py_None);
        set_slot(node, off_trace, Py_None);
        set_slot(node, off_scope, Py_None);
        set_slot(out, off_requires_grad, Py_True);
        set_slot(out, off_grad_fn, node);
    }
    else {
        set_slot(out, off_requires_grad, Py_False);
        set_slot(out, off_grad_fn, Py_None);
    }
    return out;
}

/* A gradient's tensor: no history, around data (a reference given away); a kept one if any. */
static PyObject *
new_grad(PyObject *data)
{
    if (n_spare_grads == 0 || Py_TYPE(data) != &PyArray_Type)
        return make_result(NULL, data, 0);
    PyObject *t = spare_grads[--n_spare_grads];
    SLOT(t, off_data) = data;
    SLOT(t, off_grad) = Py_NewRef(Py_None);
    SLOT(t, off_name) = Py_NewRef(Py_None);
    SLOT(t, off_version) = Py_NewRef(Zero);
    SLOT(t, off_requires_grad) = Py_NewRef(Py_False);
    SLOT(t, off_grad_fn) = Py_NewRef(Py_None);
    PyObject_GC_Track(t);
    return t;
}

/* What apply, apply1 and apply2 share: args are (op, *inputs, *attribute values), the
 * attribute names in kwnames. fallback is the Python twin that takes every unusual case. */
#define MAX_ARGS 16

static PyObject *
apply_core(PyObject *fallback, PyObject *const *args, Py_ssize_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    PyObject *op = args[0];
    Py_ssize_t n = nargs - 1;
    long mode = current_mode();
    if (mode < 0 && PyErr_Occurred())
        return NULL;
    int plain = mode != 2 && n + nkw < MAX_ARGS && plain_op(op);
    for (Py_ssize_t i = 1; plain && i < nargs; i++)
        plain = plain_tensor(args[i]);
    if (!plain)
        return PyObject_Vectorcall(fallback, args, nargsf, kwnames);

    PyTypeObject *type = (PyTypeObject *)op;
    PyObject *node = type->tp_alloc(type, 0);
    if (node == NULL)
        return NULL;
    set_slot(node, off_saved, Py_None);
    /* NOTE: the input arrays are held for the call: another thread may rebind x.data meanwhile. */
    PyObject *call[MAX_ARGS + 2];
    call[0] = NULL;
    call[1] = node;
    int any = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        call[2 + i] = Py_NewRef(SLOT(args[1 + i], off_data));
        any |= SLOT(args[1 + i], off_requires_grad) == Py_True;
    }
    for (Py_ssize_t k = 0; k < nkw; k++)
        call[2 + n + k] = args[nargs + k];
    PyObject *data = PyObject_VectorcallMethod(str_forward, call + 1, (1 + n) | PY_VECTORCALL_ARGUMENTS_OFFSET,
                                               kwnames);
    for (Py_ssize_t i = 0; i < n; i++)
        Py_DECREF(call[2 + i]);
    if (data == NULL) {
        forward_failed(op, args + 1, n);
        Py_DECREF(node);
        return NULL;
    }
    int record = mode == 1 && any;
    if (record) {
        PyObject *inputs = PyTuple_New(n), *needs;
        if (n == 1)
            needs = Py_NewRef(NeedsT);
        else if (n == 2) {
            int need_a = SLOT(args[1], off_requires_grad) == Py_True, need_b = SLOT(args[2], off_requires_grad) == Py_True;
            needs = Py_NewRef(need_a ? (need_b ? NeedsTT : NeedsTF) : NeedsFT);
        }
        else
            needs = PyTuple_New(n);
        if (inputs == NULL || needs == NULL) {
            Py_XDECREF(inputs);
            Py_XDECREF(needs);
            Py_DECREF(data);
            Py_DECREF(node);
            return NULL;
        }
        int changed = 0;
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *t = args[1 + i];
            PyTuple_SET_ITEM(inputs, i, Py_NewRef(t));
            if (n > 2)
                PyTuple_SET_ITEM(needs, i, Py_NewRef(SLOT(t, off_requires_grad) == Py_True ? Py_True : Py_False));
            changed |= SLOT(t, off_version) != Zero;
        }
        /* NOTE: the inputs' versions as this node saw them, for backward to check that no input was
         * changed in place since; None (the common case) means every one was 0. */
        PyObject *versions = Py_None;
        if (changed) {
            versions = PyTuple_New(n);
            if (versions == NULL) {
                Py_DECREF(inputs);
                Py_DECREF(needs);
                Py_DECREF(data);
                Py_DECREF(node);
                return NULL;
            }
            for (Py_ssize_t i = 0; i < n; i++)
                PyTuple_SET_ITEM(versions, i, Py_NewRef(SLOT(args[1 + i], off_version)));
        }
        else
            Py_INCREF(versions);
        give_slot(node, off_inputs, inputs);
        give_slot(node, off_needs, needs);
        give_slot(node, off_versions, versions);
    }
    PyObject *out = make_result(node, data, record);
    Py_DECREF(node);
    return out;
}

static PyObject *
not_configured(const char *call)
{
    PyErr_Format(PyExc_TypeError, "_speedups.%s: wrong arguments, or called before configure_apply()", call);
    return NULL;
}

/* apply(op, *inputs, **attrs): the general case (any number of inputs, attributes by keyword). */
static PyObject *
apply(PyObject *self, PyObject *const *args, Py_ssize_t nargsf, PyObject *kwnames)
{
    if (PyVectorcall_NARGS(nargsf) < 1 || !configured_apply)
        return not_configured("apply(op, *inputs, **attrs)");
    return apply_core(PyApply, args, nargsf, kwnames);
}

/* apply1(op, x) and apply2(op, a, b): the operators' and unary functions' hot path. */
static PyObject *
apply1(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !configured_apply)
        return not_configured("apply1(op, x)");
    return apply_core(PyApply1, args, nargs, NULL);
}

static PyObject *
apply2(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !configured_apply)
        return not_configured("apply2(op, a, b)");
    return apply_core(PyApply2, args, nargs, NULL);
}

/* ------------------------------------------------------------------ backward walk */

/* A stack of owned references. */
typedef struct {
    PyObject **items;
    Py_ssize_t size, capacity;
} Stack;

static int
stack_push(Stack *s, PyObject *item)
{
    if (s->size == s->capacity) {
        Py_ssize_t capacity = s->capacity ? 2 * s->capacity : 64;
        PyObject **items = PyMem_Realloc(s->items, capacity * sizeof(PyObject *));
        if (items == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        s->items = items;
        s->capacity = capacity;
    }
    Py_INCREF(item);
    s->items[s->size++] = item;
    return 0;
}

static void
stack_free(Stack *s)
{
    while (s->size)
        Py_DECREF(s->items[--s->size]);
    PyMem_Free(s->items);
}

static inline PyObject *
node_of(PyObject *t)
{
    if (!PyObject_TypeCheck(t, TensorType) || SLOT(t, off_grad_fn) == NULL || SLOT(t, off_data) == NULL) {
        PyErr_SetString(PyExc_TypeError, "backward(): a graph node has an input that is not a Tensor");
        return NULL;
    }
    return SLOT(t, off_grad_fn);
}

/* Whether an input of node may have been changed in place since node used it: the node recorded
 * versions, or an input's version is not 0 (a node without the slot, or an input that is not
 * a plain tensor, goes to the Python check too). The Python check decides and raises. */
static int
versions_changed(PyObject *node)
{
    PyObject *versions = SLOT(node, off_versions);
    if (versions != Py_None)
        return 1;
    PyObject *inputs = SLOT(node, off_inputs);
    if (inputs == NULL || !PyTuple_Check(inputs))
        return 0; /* inputs_of() reports it */
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(inputs); i++) {
        PyObject *t = PyTuple_GET_ITEM(inputs, i);
        if (!PyObject_TypeCheck(t, TensorType) || SLOT(t, off_version) != Zero)
            return 1;
    }
    return 0;
}

static inline PyObject *
inputs_of(PyObject *node)
{
    PyObject *inputs = SLOT(node, off_inputs);
    if (inputs == NULL || !PyTuple_Check(inputs)) {
        PyErr_Format(PyExc_TypeError, "backward(): graph node %R has no inputs tuple", node);
        return NULL;
    }
    return inputs;
}

/* The walk's table: for every node reachable from the root, how many uses of its output
 * are still to come and the gradient summed so far. An open-addressing table keyed by the
 * node's address; it holds strong references, as a dict would, so a node released by its
 * last consumer stays alive until its own turn. Nothing is added once the walk starts, so
 * entry pointers stay valid during it. */
typedef struct {
    PyObject *node;    /* NULL: an empty slot */
    Py_ssize_t uses;   /* uses of the node's output still to come */
    PyObject *pending; /* the gradient summed so far, or NULL */
} Entry;

typedef struct {
    Entry *slots;
    size_t mask; /* capacity - 1, a power of two */
    size_t used;
} Graph;

static inline Entry *
graph_find(const Graph *graph, PyObject *node)
{
    uint64_t h = ((uint64_t)(uintptr_t)node >> 4) * 0x9E3779B97F4A7C15ull;
    size_t i = (size_t)(h >> 32) & graph->mask;
    while (graph->slots[i].node != NULL && graph->slots[i].node != node)
        i = (i + 1) & graph->mask;
    return &graph->slots[i];
}

static int
graph_init(Graph *graph, size_t capacity)
{
    graph->slots = PyMem_Calloc(capacity, sizeof(Entry));
    graph->mask = capacity - 1;
    graph->used = 0;
    if (graph->slots == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static void
graph_free(Graph *graph)
{
    if (graph->slots == NULL)
        return;
    for (size_t i = 0; i <= graph->mask; i++) {
        Py_XDECREF(graph->slots[i].node);
        Py_XDECREF(graph->slots[i].pending);
    }
    PyMem_Free(graph->slots);
    graph->slots = NULL;
}

/* The node's entry, added (with no uses yet) if new; *fresh says which. */
static Entry *
graph_add(Graph *graph, PyObject *node, int *fresh)
{
    if (2 * (graph->used + 1) > graph->mask + 1) { /* keep the table at most half full */
        Graph bigger;
        if (graph_init(&bigger, 2 * (graph->mask + 1)) < 0)
            return NULL;
        for (size_t i = 0; i <= graph->mask; i++)
            if (graph->slots[i].node != NULL)
                *graph_find(&bigger, graph->slots[i].node) = graph->slots[i];
        bigger.used = graph->used;
        PyMem_Free(graph->slots);
        *graph = bigger;
    }
    Entry *entry = graph_find(graph, node);
    *fresh = entry->node == NULL;
    if (*fresh) {
        entry->node = Py_NewRef(node);
        entry->uses = 0;
        entry->pending = NULL;
        graph->used++;
    }
    return entry;
}

/* Count, for every node reachable from root, how many of its output's uses lie on the graph. */
static int
count_uses(Graph *graph, PyObject *root)
{
    int fresh;
    Stack stack = {NULL, 0, 0};
    if (graph_add(graph, root, &fresh) == NULL || stack_push(&stack, root) < 0)
        goto error;
    while (stack.size) {
        PyObject *node = stack.items[--stack.size];
        PyObject *inputs = inputs_of(node);
        if (inputs == NULL) {
            Py_DECREF(node);
            goto error;
        }
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(inputs); i++) {
            PyObject *parent = node_of(PyTuple_GET_ITEM(inputs, i));
            if (parent == NULL) {
                Py_DECREF(node);
                goto error;
            }
            if (parent == Py_None)
                continue;
            Entry *entry = graph_add(graph, parent, &fresh);
            if (entry == NULL || (fresh && stack_push(&stack, parent) < 0)) {
                Py_DECREF(node);
                goto error;
            }
            entry->uses++;
        }
        Py_DECREF(node);
    }
    stack_free(&stack);
    return 0;
error:
    stack_free(&stack);
    return -1;
}

/* The entry of a node the count reached. */
static inline Entry *
counted(const Graph *graph, PyObject *node)
{
    Entry *entry = graph_find(graph, node);
    if (entry->node == NULL) {
        PyErr_Format(PyExc_RuntimeError, "backward(): node %R was not counted", node);
        return NULL;
    }
    return entry;
}

static int
same_shape(PyObject *grad, PyObject *data)
{
    if (PyArray_CheckExact(grad) && PyArray_CheckExact(data)) {
        PyArrayObject *g = (PyArrayObject *)grad, *d = (PyArrayObject *)data;
        int ndim = PyArray_NDIM(g);
        if (ndim != PyArray_NDIM(d))
            return 0;
        return ndim == 0 || memcmp(PyArray_DIMS(g), PyArray_DIMS(d), ndim * sizeof(npy_intp)) == 0;
    }
    PyObject *a = PyObject_GetAttr(grad, str_shape);
    if (a == NULL)
        return -1;
    PyObject *b = PyObject_GetAttr(data, str_shape);
    if (b == NULL) {
        Py_DECREF(a);
        return -1;
    }
    int same = PyObject_RichCompareBool(a, b, Py_EQ);
    Py_DECREF(a);
    Py_DECREF(b);
    return same;
}

/* A leaf's gradient: the common first write is stored here (a tensor without history around the
 * array, as engine._accumulate_leaf makes it), everything else in Python. */
static int
accumulate_leaf(PyObject *leaf, PyObject *grad, PyObject *upstream)
{
    PyObject *data = SLOT(leaf, off_data);
    if (SLOT(leaf, off_grad) == Py_None && grad != upstream && PyArray_CheckExact(grad) &&
        PyArray_CheckExact(data) && PyArray_DESCR((PyArrayObject *)grad) == PyArray_DESCR((PyArrayObject *)data) &&
        PyArray_BASE((PyArrayObject *)grad) == NULL) {
        PyObject *wrapped = new_grad(Py_NewRef(grad));
        if (wrapped == NULL)
            return -1;
        give_slot(leaf, off_grad, wrapped);
        return 0;
    }
    PyObject *r = PyObject_CallFunctionObjArgs(AccumulateLeaf, leaf, grad, upstream, NULL);
    Py_XDECREF(r);
    return r == NULL ? -1 : 0;
}

/* accumulate_leaf(leaf, grad, upstream): engine._accumulate_leaf with the common case in C (for
 * the replay of chainrule.compile, which adds its parameters' gradients itself). */
static PyObject *
py_accumulate_leaf(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !configured_walk || !PyObject_TypeCheck(args[0], TensorType)) {
        PyErr_SetString(PyExc_TypeError, "accumulate_leaf(leaf, grad, upstream) after configure_walk()");
        return NULL;
    }
    if (accumulate_leaf(args[0], args[1], args[2]) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* grad_tensor(array): a gradient's tensor around an ndarray (engine._accumulate_leaf's, in C). */
static PyObject *
grad_tensor(PyObject *Py_UNUSED(module), PyObject *data)
{
    if (!configured_apply || !PyArray_CheckExact(data)) {
        PyErr_SetString(PyExc_TypeError, "grad_tensor(array): an ndarray, after configure_apply()");
        return NULL;
    }
    return new_grad(Py_NewRef(data));
}

/* Release what a node saved for backward, and its inputs. */
static inline void
release(PyObject *node)
{
    set_slot(node, off_saved, Released);
    set_slot(node, off_inputs, EmptyTuple);
    set_slot(node, off_scope, Py_None);
}

/* One input of a node that has run its rule: route its gradient dg (a new reference, or NULL for none). */
static int
route(PyObject *t, PyObject *dg, PyObject *upstream, Graph *graph, Stack *ready, int retain)
{
    /* NOTE: t's parent and array are held while Python code (unbroadcast, +) may run. */
    PyObject *parent = node_of(t), *data = NULL;
    int err = -1;
    if (parent == NULL) {
        Py_XDECREF(dg);
        return -1;
    }
    Py_INCREF(parent);
    Entry *entry = NULL;
    if (parent != Py_None && (entry = counted(graph, parent)) == NULL)
        goto done;
    if (dg != NULL) {
        data = Py_NewRef(SLOT(t, off_data));
        int same = same_shape(dg, data);
        if (same < 0)
            goto done;
        if (!same) {
            PyObject *shape = PyObject_GetAttr(data, str_shape);
            if (shape == NULL)
                goto done;
            PyObject *summed = PyObject_CallFunctionObjArgs(Unbroadcast, dg, shape, NULL);
            Py_DECREF(shape);
            Py_SETREF(dg, summed);
            if (dg == NULL)
                goto done;
        }
        if (entry == NULL) {
            err = SLOT(t, off_requires_grad) == Py_True ? accumulate_leaf(t, dg, upstream) : 0;
            goto done;
        }
        /* NOTE: gradients add at branches: a parent used twice gets the sum. */
        if (entry->pending == NULL)
            entry->pending = Py_NewRef(dg);
        else {
            PyObject *sum = PyNumber_Add(entry->pending, dg);
            if (sum == NULL)
                goto done;
            Py_SETREF(entry->pending, sum);
        }
        err = --entry->uses == 0 ? stack_push(ready, parent) : 0;
        goto done;
    }
    err = 0;
    if (entry != NULL && --entry->uses == 0) {
        if (entry->pending != NULL)
            err = stack_push(ready, parent);
        else if (!retain)
            release(parent);
    }
done:
    Py_XDECREF(dg);
    Py_XDECREF(data);
    Py_DECREF(parent);
    return err;
}

/* walk(root_node, upstream, retain_graph): engine.backward's loop (see autograd/engine.py for the steps). */
static PyObject *
walk(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !configured_walk) {
        PyErr_SetString(PyExc_TypeError, "walk(root_node, upstream, retain_graph) after configure_walk()");
        return NULL;
    }
    PyObject *root = args[0], *upstream = args[1];
    int retain = PyObject_IsTrue(args[2]);
    if (retain < 0)
        return NULL;
    if (!PyObject_TypeCheck(root, OpType)) {
        PyErr_SetString(PyExc_TypeError, "walk(): root_node must be a graph node");
        return NULL;
    }
    Graph graph;
    Stack ready = {NULL, 0, 0};
    if (graph_init(&graph, 64) < 0)
        return NULL;
    if (count_uses(&graph, root) < 0 || stack_push(&ready, root) < 0)
        goto error;
    graph_find(&graph, root)->pending = Py_NewRef(upstream);
    while (ready.size) {
        PyObject *node = ready.items[--ready.size]; /* owned */
        Entry *entry = counted(&graph, node);
        if (entry == NULL || entry->pending == NULL) {
            if (entry != NULL)
                PyErr_Format(PyExc_RuntimeError, "backward(): node %R has no gradient", node);
            Py_DECREF(node);
            goto error;
        }
        PyObject *g = entry->pending; /* taken over from the table */
        entry->pending = NULL;
        PyObject *inputs = NULL, *downstream = NULL;
        PyObject *kept = SLOT(node, off_retained);
        if (kept != NULL && kept != Py_None) {
            PyObject *r = PyObject_CallFunctionObjArgs(KeepRetained, kept, g, NULL);
            if (r == NULL)
                goto node_error;
            Py_DECREF(r);
        }
        if (SLOT(node, off_saved) == Released) {
            PyObject *r = PyObject_CallOneArg(SecondBackward, node);
            Py_XDECREF(r);
            goto node_error;
        }
        if (versions_changed(node)) {
            PyObject *r = PyObject_CallOneArg(CheckVersions, node);
            if (r == NULL)
                goto node_error;
            Py_DECREF(r);
        }
        PyObject *call[3] = {NULL, node, g};
        downstream = PyObject_VectorcallMethod(str_vjp, call + 1, 2 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
        if (downstream == NULL)
            goto node_error;
        inputs = inputs_of(node);
        if (inputs == NULL)
            goto node_error;
        Py_INCREF(inputs);
        if (!retain) {
            /* NOTE: the node lets go of its saved values and of its inputs (see autograd/engine.py). */
            release(node);
        }
        PyObject *grads = PySequence_Fast(downstream, "backward(): an op's local gradient must be a tuple");
        if (grads == NULL)
            goto node_error;
        Py_SETREF(downstream, grads);
        Py_ssize_t n = PyTuple_GET_SIZE(inputs);
        if (PySequence_Fast_GET_SIZE(grads) < n)
            n = PySequence_Fast_GET_SIZE(grads);
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *dg = PySequence_Fast_GET_ITEM(grads, i);
            if (dg == Py_None)
                dg = NULL;
            else
                Py_INCREF(dg);
            if (route(PyTuple_GET_ITEM(inputs, i), dg, g, &graph, &ready, retain) < 0)
                goto node_error;
        }
        Py_DECREF(downstream);
        Py_DECREF(inputs);
        Py_DECREF(g);
        Py_DECREF(node);
        continue;
    node_error:
        Py_XDECREF(downstream);
        Py_XDECREF(inputs);
        Py_DECREF(g);
        Py_DECREF(node);
        goto error;
    }
    stack_free(&ready);
    graph_free(&graph);
    Py_RETURN_NONE;
error:
    stack_free(&ready);
    graph_free(&graph);
    return NULL;
}

/* ------------------------------------------------------------------ small-array kernels */

/* On the small arrays of a tiny network NumPy's fixed cost per call (argument parsing, dtype
 * resolution, the iterator, overlap checks: 0.4-1.3 us) is far above the arithmetic. The
 * kernels below each do the work of several NumPy calls in one, with the same result bit for
 * bit, and return None for anything they do not handle, where the rule runs its NumPy code:
 *
 *   fused_grad(kind, upstream, out)   a local gradient of ops/elementwise.py, one loop:
 *       FUSED_TANH     upstream * (1 - out * out)
 *       FUSED_SIGMOID  upstream * (out * (1 - out))
 *       FUSED_RELU     upstream * (out > 0)          (out: the saved relu output)
 *   small_sigmoid(x, safe)            1 / (1 + e^-x), only where every x > safe
 *   small_sum(x, rows, count)         the sum of all elements (rows false: a 0-d array) or of a
 *                                     2-D array's rows (rows true: axis 0), divided by count
 *   small_spread(value, count, shape) an array of shape filled with value / count
 *   small_add_row(out, row)           out += row (row broadcast over out's leading axes), in
 *                                     place; True when done
 *   small_cross_entropy(logits, targets, reduction)   the cross-entropy rule's forward:
 *                                     (loss, log_probs), ops/loss.py
 *   small_cross_entropy_grad(log_probs, targets, upstream, count)   and its backward
 *
 * How the bits stay NumPy's:
 * - +, -, *, / round to the dtype exactly as the ufuncs do (IEEE float and double, evaluated in
 *   that precision on x86-64 SSE, never contracted into an FMA: setup.py passes
 *   -ffp-contract=off), and each expression is evaluated in NumPy's order.
 * - e^x, ln x and sums call NumPy's own inner loops, looked up once in the exp, log and add
 *   ufuncs' loop tables, with the arguments NumPy's reduction gives them: a sum starts from
 *   add's identity, 0, and adds all elements in one call of the reduce loop (NumPy's pairwise
 *   summation); a sum over rows adds each row in turn with the binary loop; a sum along each
 *   row is one reduce call per row. A maximum is exact in any order.
 * - The floating-point exception flags are cleared before and read after: when any operation
 *   overflowed, underflowed, divided by zero or was invalid, the kernel drops its result and
 *   declines, so that NumPy computes it again and warns or raises as its errstate says.
 * The tests compare every kernel with the NumPy code over dtypes, shapes and special values.
 *
 * Only plain float32/float64 arrays qualify: exact ndarrays, C-contiguous, aligned, in native
 * byte order, with one dtype among the arguments and a bounded size (below). */

enum { FUSED_TANH = 0, FUSED_SIGMOID = 1, FUSED_RELU = 2 };

/* Size bounds, measured against the NumPy code (best of many runs, float32):
 * - One pass instead of two or three keeps fused_grad ahead at every size tried (relu at 262,144
 *   elements: 45 us against 89 us), and the sums, which are NumPy's loops, as well (rows of
 *   1024 x 256: 33 us against 56 us). The tests compare results bit for bit up to 262,144
 *   elements, the hidden layer of an MNIST MLP at batch 1,024: FUSED_MAX_SIZE.
 * - small_sigmoid's plain negation and division lose to NumPy's wider vector loops above a
 *   few thousand elements (8,192: 33 us against 27 us): SIGMOID_MAX_SIZE.
 * - small_add_row copies through a scratch buffer; it is even with NumPy at 32,768 elements:
 *   ADD_ROW_MAX_SIZE.
 * Larger arrays are left to NumPy. */
#define FUSED_MAX_SIZE (1 << 18)
#define SIGMOID_MAX_SIZE 1024
#define ADD_ROW_MAX_SIZE 16384
#define SCRATCH_ON_STACK 1024

/* The floating-point exception flags. Reading them is cheap (fetestexcept: two status-register
 * reads on x86-64, both SSE's and the x87's, which feraiseexcept, as NumPy uses it, sets);
 * clearing them saves and reloads the x87 environment (about 90 ns), so fp_clear() clears only
 * when some flag is set. */
#define FP_FLAGS (FE_DIVBYZERO | FE_INVALID | FE_OVERFLOW | FE_UNDERFLOW)

/* 1 when some flag is set (and clears them), else 0: after a kernel's arithmetic, whether it
 * raised an exception since fp_clear() */
static int
fp_raised(void)
{
    if (fetestexcept(FP_FLAGS)) {
        feclearexcept(FP_FLAGS);
        return 1;
    }
    return 0;
}

static inline void
fp_clear(void)
{
    (void)fp_raised();
}

/* NumPy's inner loops, [0] float32 and [1] float64; NULL where none was found (the kernels
 * needing it then decline). */
static PyUFuncGenericFunction ExpLoop[2], AddLoop[2], LogLoop[2];
static void *ExpData[2], *AddData[2], *LogData[2];

static void
find_loops(PyObject *numpy, const char *name, PyUFuncGenericFunction *loops, void **data)
{
    static const int types[2] = {NPY_FLOAT, NPY_DOUBLE};
    PyObject *obj = PyObject_GetAttrString(numpy, name); /* kept: the loop tables live as long */
    if (obj == NULL) {
        PyErr_Clear();
        return;
    }
    if (!PyObject_TypeCheck(obj, &PyUFunc_Type)) {
        return;
    }
    PyUFuncObject *uf = (PyUFuncObject *)obj;
    int nargs = uf->nin + uf->nout;
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < uf->ntypes && loops[k] == NULL; i++) {
            int all = 1;
            for (int j = 0; j < nargs; j++) {
                all &= uf->types[i * nargs + j] == types[k];
            }
            if (all && uf->functions[i] != NULL) {
                loops[k] = uf->functions[i];
                data[k] = uf->data == NULL ? NULL : uf->data[i];
            }
        }
    }
}

/* a plain float32/float64 array (exact ndarray, C-contiguous, aligned, native byte order) of at
 * most max_size elements: its type's index (0 float32, 1 float64), else -1 */
static int
plain_float(PyObject *a, npy_intp max_size)
{
    if (!PyArray_CheckExact(a)) {
        return -1;
    }
    PyArrayObject *arr = (PyArrayObject *)a;
    int type = PyArray_TYPE(arr);
    if ((type != NPY_FLOAT && type != NPY_DOUBLE) || !PyArray_ISCARRAY_RO(arr) || !PyArray_ISNOTSWAPPED(arr) ||
        PyArray_SIZE(arr) > max_size) {
        return -1;
    }
    return type == NPY_DOUBLE;
}

static int
fusable(PyObject *a)
{
    return plain_float(a, FUSED_MAX_SIZE) >= 0;
}

/* the result when the flags are clean, else None with the result dropped (the kernel declines) */
static PyObject *
checked(PyArrayObject *res)
{
    if (fp_raised()) {
        Py_DECREF(res);
        Py_RETURN_NONE;
    }
    return (PyObject *)res;
}

/* relu's mask (out > 0) compares bit patterns: a float compare vectorized by the compiler may
 * signal on NaN (raising the invalid flag, so the kernel would decline), where NumPy's is quiet.
 * As unsigned integers, bits - 1 < the bits of +inf holds exactly for +subnormals, +normals
 * and +inf: not for +-0, negatives (sign bit set) or NaN. */
#define FUSED_LOOP(T, U, ONE, POS_INF_BITS)                                                    \
    do {                                                                                       \
        const T *u = (const T *)PyArray_DATA(up), *o = (const T *)PyArray_DATA(out);           \
        T *r = (T *)PyArray_DATA(res);                                                         \
        if (kind == FUSED_TANH) {                                                              \
            for (npy_intp i = 0; i < n; i++) {                                                 \
                T sq = o[i] * o[i];                                                            \
                T d = ONE - sq;                                                                \
                r[i] = u[i] * d;                                                               \
            }                                                                                  \
        }                                                                                      \
        else if (kind == FUSED_SIGMOID) {                                                      \
            for (npy_intp i = 0; i < n; i++) {                                                 \
                T d = ONE - o[i];                                                              \
                T s = o[i] * d;                                                                \
                r[i] = u[i] * s;                                                               \
            }                                                                                  \
        }                                                                                      \
        else {                                                                                 \
            for (npy_intp i = 0; i < n; i++) {                                                 \
                U bits;                                                                        \
                memcpy(&bits, &o[i], sizeof bits);                                             \
                T mask = (T)((U)(bits - 1) < POS_INF_BITS);                                    \
                r[i] = u[i] * mask;                                                            \
            }                                                                                  \
        }                                                                                      \
    } while (0)

static PyObject *
fused_grad(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "fused_grad(kind, upstream, out) takes 3 arguments");
        return NULL;
    }
    long kind = PyLong_AsLong(args[0]);
    if (kind == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (kind < FUSED_TANH || kind > FUSED_RELU) {
        PyErr_Format(PyExc_ValueError, "fused_grad: unknown kind %ld", kind);
        return NULL;
    }
    if (!fusable(args[1]) || !fusable(args[2])) {
        Py_RETURN_NONE;
    }
    PyArrayObject *up = (PyArrayObject *)args[1], *out = (PyArrayObject *)args[2];
    int type = PyArray_TYPE(up), nd = PyArray_NDIM(up);
    if (PyArray_TYPE(out) != type || PyArray_NDIM(out) != nd ||
        !PyArray_CompareLists(PyArray_DIMS(up), PyArray_DIMS(out), nd)) {
        Py_RETURN_NONE;
    }
    npy_intp n = PyArray_SIZE(up);
    PyArrayObject *res = (PyArrayObject *)PyArray_SimpleNew(nd, PyArray_DIMS(up), type);
    if (res == NULL) {
        return NULL;
    }
    fp_clear();
    if (type == NPY_FLOAT) {
        FUSED_LOOP(npy_float, npy_uint32, 1.0f, 0x7f800000u);
    }
    else {
        FUSED_LOOP(npy_double, npy_uint64, 1.0, 0x7ff0000000000000u);
    }
    return checked(res);
}

#define SIGMOID_LOOPS(T, ONE)                                                                  \
    do {                                                                                       \
        const T *x = (const T *)PyArray_DATA(xa);                                              \
        T *r = (T *)PyArray_DATA(res);                                                         \
        for (npy_intp i = 0; i < n; i++) {                                                     \
            if (!isgreater((double)x[i], safe)) { /* also NaN: the rule picks its form */     \
                Py_DECREF(res);                                                                \
                Py_RETURN_NONE;                                                                \
            }                                                                                  \
            r[i] = -x[i];                                                                      \
        }                                                                                      \
        char *io[2] = {(char *)r, (char *)r};                                                  \
        npy_intp steps[2] = {sizeof(T), sizeof(T)};                                            \
        ExpLoop[k](io, &n, steps, ExpData[k]);                                                 \
        for (npy_intp i = 0; i < n; i++) {                                                     \
            T d = ONE + r[i];                                                                  \
            r[i] = ONE / d;                                                                    \
        }                                                                                      \
    } while (0)

static PyObject *
small_sigmoid(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "small_sigmoid(x, safe) takes 2 arguments");
        return NULL;
    }
    double safe = PyFloat_AsDouble(args[1]);
    if (safe == -1.0 && PyErr_Occurred()) {
        return NULL;
    }
    if (!fusable(args[0])) {
        Py_RETURN_NONE;
    }
    PyArrayObject *xa = (PyArrayObject *)args[0];
    int type = PyArray_TYPE(xa), k = type == NPY_DOUBLE;
    npy_intp n = PyArray_SIZE(xa);
    if (n == 0 || n > SIGMOID_MAX_SIZE || ExpLoop[k] == NULL) {
        Py_RETURN_NONE;
    }
    PyArrayObject *res = (PyArrayObject *)PyArray_SimpleNew(PyArray_NDIM(xa), PyArray_DIMS(xa), type);
    if (res == NULL) {
        return NULL;
    }
    fp_clear();
    if (k == 0) {
        SIGMOID_LOOPS(npy_float, 1.0f);
    }
    else {
        SIGMOID_LOOPS(npy_double, 1.0);
    }
    return checked(res);
}

#define DIVIDE_BY_COUNT(T)                                                                     \
    do {                                                                                       \
        if (count != 1) {                                                                      \
            T *r = (T *)PyArray_DATA(res), c = (T)count;                                       \
            for (npy_intp i = 0; i < m; i++) {                                                 \
                r[i] = r[i] / c;                                                               \
            }                                                                                  \
        }                                                                                      \
    } while (0)

static PyObject *
small_sum(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "small_sum(x, rows, count) takes 3 arguments");
        return NULL;
    }
    int rows = PyObject_IsTrue(args[1]);
    Py_ssize_t count = PyLong_AsSsize_t(args[2]);
    if (rows < 0 || (count == -1 && PyErr_Occurred())) {
        return NULL;
    }
    if (!fusable(args[0]) || count < 1) {
        Py_RETURN_NONE;
    }
    PyArrayObject *xa = (PyArrayObject *)args[0];
    int type = PyArray_TYPE(xa), k = type == NPY_DOUBLE;
    npy_intp n = PyArray_SIZE(xa), isz = PyArray_ITEMSIZE(xa);
    if (n == 0 || AddLoop[k] == NULL || (rows && PyArray_NDIM(xa) != 2)) {
        Py_RETURN_NONE;
    }
    /* m outputs, each the sum of n / m elements */
    npy_intp m = rows ? PyArray_DIM(xa, 1) : 1;
    PyArrayObject *res = (PyArrayObject *)PyArray_ZEROS(rows, &m, type, 0);
    if (res == NULL) {
        return NULL;
    }
    char *x = PyArray_BYTES(xa), *r = PyArray_BYTES(res);
    fp_clear();
    if (m == 1) { /* one reduce call over all elements: NumPy's pairwise sum */
        char *io[3] = {r, x, r};
        npy_intp steps[3] = {0, isz, 0};
        AddLoop[k](io, &n, steps, AddData[k]);
    }
    else { /* row after row into the m sums, as NumPy's iterator orders a reduction over axis 0 */
        npy_intp steps[3] = {isz, isz, isz};
        for (npy_intp i = 0; i < n; i += m) {
            char *io[3] = {r, x + i * isz, r};
            AddLoop[k](io, &m, steps, AddData[k]);
        }
    }
    if (k == 0) {
        DIVIDE_BY_COUNT(npy_float);
    }
    else {
        DIVIDE_BY_COUNT(npy_double);
    }
    return checked(res);
}

#define SPREAD_LOOP(T)                                                                         \
    do {                                                                                       \
        T v = *(const T *)PyArray_DATA(va) / (T)count, *r = (T *)PyArray_DATA(res);            \
        for (npy_intp i = 0; i < n; i++) {                                                     \
            r[i] = v;                                                                          \
        }                                                                                      \
    } while (0)

static PyObject *
small_spread(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "small_spread(value, count, shape) takes 3 arguments");
        return NULL;
    }
    Py_ssize_t count = PyLong_AsSsize_t(args[1]);
    if (count == -1 && PyErr_Occurred()) {
        return NULL;
    }
    PyObject *shape = args[2];
    if (!fusable(args[0]) || PyArray_NDIM((PyArrayObject *)args[0]) != 0 || count < 1 || !PyTuple_Check(shape) ||
        PyTuple_GET_SIZE(shape) > NPY_MAXDIMS) {
        Py_RETURN_NONE;
    }
    npy_intp dims[NPY_MAXDIMS], n = 1;
    int nd = (int)PyTuple_GET_SIZE(shape);
    for (int i = 0; i < nd; i++) {
        PyObject *item = PyTuple_GET_ITEM(shape, i);
        Py_ssize_t d = PyLong_CheckExact(item) ? PyLong_AsSsize_t(item) : -1;
        if (d == -1 && PyErr_Occurred()) {
            PyErr_Clear(); /* too large for an index: not small */
        }
        if (d < 0 || d > FUSED_MAX_SIZE) {
            Py_RETURN_NONE;
        }
        dims[i] = d;
        n *= d;
        if (n > FUSED_MAX_SIZE) {
            Py_RETURN_NONE;
        }
    }
    PyArrayObject *va = (PyArrayObject *)args[0];
    int type = PyArray_TYPE(va);
    PyArrayObject *res = (PyArrayObject *)PyArray_SimpleNew(nd, dims, type);
    if (res == NULL) {
        return NULL;
    }
    fp_clear();
    if (type == NPY_FLOAT) {
        SPREAD_LOOP(npy_float);
    }
    else {
        SPREAD_LOOP(npy_double);
    }
    return checked(res);
}

/* the sums go to a scratch buffer first: on an exception out is left as it was */
#define ADD_ROW_LOOP(T)                                                                        \
    do {                                                                                       \
        T *o = (T *)PyArray_DATA(out), *buf = (T *)scratch;                                    \
        const T *b = (const T *)PyArray_DATA(row);                                             \
        for (npy_intp i = 0; i < n; i += m) {                                                  \
            for (npy_intp j = 0; j < m; j++) {                                                 \
                buf[i + j] = o[i + j] + b[j];                                                  \
            }                                                                                  \
        }                                                                                      \
        if (fp_raised()) {                                                                     \
            done = 0;                                                                          \
            break;                                                                             \
        }                                                                                      \
        memcpy(o, buf, n * sizeof(T));                                                         \
    } while (0)

static PyObject *
small_add_row(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "small_add_row(out, row) takes 2 arguments");
        return NULL;
    }
    if (!fusable(args[0]) || !fusable(args[1])) {
        Py_RETURN_FALSE;
    }
    PyArrayObject *out = (PyArrayObject *)args[0], *row = (PyArrayObject *)args[1];
    int type = PyArray_TYPE(out), nd = PyArray_NDIM(out);
    if (PyArray_TYPE(row) != type || !PyArray_ISWRITEABLE(out) || nd == 0 || PyArray_NDIM(row) != 1 ||
        PyArray_DIM(row, 0) != PyArray_DIM(out, nd - 1) || PyArray_SIZE(out) == 0 ||
        PyArray_SIZE(out) > ADD_ROW_MAX_SIZE ||
        PyArray_BASE(out) != NULL) {
        Py_RETURN_FALSE;
    }
    npy_intp n = PyArray_SIZE(out), m = PyArray_DIM(row, 0);
    npy_double small[SCRATCH_ON_STACK];
    void *scratch = n <= SCRATCH_ON_STACK ? small : PyMem_Malloc(n * sizeof(npy_double));
    if (scratch == NULL) {
        return PyErr_NoMemory();
    }
    int done = 1;
    fp_clear();
    if (type == NPY_FLOAT) {
        ADD_ROW_LOOP(npy_float);
    }
    else {
        ADD_ROW_LOOP(npy_double);
    }
    if (scratch != small) {
        PyMem_Free(scratch);
    }
    return PyBool_FromLong(done);
}

/* The cross-entropy kernels work on a whole (N, C) batch of logits: NumPy's row reductions of a
 * few classes each are the slow part of the NumPy code at every batch size (forward, 10 classes:
 * 1.6 us against 19 us at batch 32, 69 us against 157 us at 1,024, 175 us against 526 us at
 * 4,096); the tests compare results bit for bit up to 65,530 elements. */
#define CE_MAX_SIZE 65536

/* targets (N,) of any integer dtype, copied as indices; 0 (declined) unless every one lies in
 * [0, classes) */
#define READ_TARGETS(CT)                                                                       \
    do {                                                                                       \
        const CT *t = (const CT *)PyArray_DATA(ta);                                            \
        for (npy_intp i = 0; i < n; i++) {                                                     \
            if (t[i] < 0 || (npy_uint64)t[i] >= (npy_uint64)classes) {                         \
                return 0;                                                                      \
            }                                                                                  \
            out[i] = (npy_intp)t[i];                                                           \
        }                                                                                      \
    } while (0)

static int
read_targets(PyObject *targets, npy_intp n, npy_intp classes, npy_intp *out)
{
    if (!PyArray_CheckExact(targets)) {
        return 0;
    }
    PyArrayObject *ta = (PyArrayObject *)targets;
    if (PyArray_NDIM(ta) != 1 || PyArray_DIM(ta, 0) != n || !PyArray_ISCARRAY_RO(ta) || !PyArray_ISNOTSWAPPED(ta)) {
        return 0;
    }
    switch (PyArray_TYPE(ta)) {
    case NPY_BYTE: READ_TARGETS(npy_byte); break;
    case NPY_UBYTE: READ_TARGETS(npy_ubyte); break;
    case NPY_SHORT: READ_TARGETS(npy_short); break;
    case NPY_USHORT: READ_TARGETS(npy_ushort); break;
    case NPY_INT: READ_TARGETS(npy_int); break;
    case NPY_UINT: READ_TARGETS(npy_uint); break;
    case NPY_LONG: READ_TARGETS(npy_long); break;
    case NPY_ULONG: READ_TARGETS(npy_ulong); break;
    case NPY_LONGLONG: READ_TARGETS(npy_longlong); break;
    case NPY_ULONGLONG: READ_TARGETS(npy_ulonglong); break;
    default: return 0;
    }
    return 1;
}

/* logits or log-probabilities (N, C), N, C >= 1, a plain float array: the type's index, or -1 */
static int
ce_array(PyObject *a)
{
    int k = plain_float(a, CE_MAX_SIZE);
    return k >= 0 && PyArray_NDIM((PyArrayObject *)a) == 2 && PyArray_SIZE((PyArrayObject *)a) > 0 ? k : -1;
}

/* CrossEntropy.forward's NumPy code, step by step:
 *   m = the max of each row (declined unless every logit is finite)
 *   lse = m + ln(sum over each row of e^(z - m));  log_probs = z - lse
 *   losses = -log_probs[rows, targets];  then none, mean (sum / N) or sum */
#define CE_FORWARD(T)                                                                          \
    do {                                                                                       \
        const T *z = (const T *)PyArray_DATA(za);                                              \
        T *lp = (T *)PyArray_DATA(lpa), *m = (T *)scratch, *s = m + n;                         \
        for (npy_intp i = 0; i < n; i++) {                                                     \
            const T *row = z + i * c;                                                          \
            T best = row[0];                                                                   \
            for (npy_intp j = 0; j < c; j++) {                                                 \
                if (!isfinite(row[j])) {                                                       \
                    goto decline;                                                              \
                }                                                                              \
                best = row[j] > best ? row[j] : best;                                          \
            }                                                                                  \
            m[i] = best;                                                                       \
            for (npy_intp j = 0; j < c; j++) {                                                 \
                lp[i * c + j] = row[j] - best;                                                 \
            }                                                                                  \
        }                                                                                      \
        char *exp_io[2] = {(char *)lp, (char *)lp};                                            \
        npy_intp size = n * c, exp_steps[2] = {sizeof(T), sizeof(T)};                          \
        ExpLoop[k](exp_io, &size, exp_steps, ExpData[k]);                                      \
        npy_intp sum_steps[3] = {0, sizeof(T), 0};                                             \
        for (npy_intp i = 0; i < n; i++) {                                                     \
            s[i] = 0;                                                                          \
            char *sum_io[3] = {(char *)&s[i], (char *)(lp + i * c), (char *)&s[i]};            \
            npy_intp len = c;                                                                  \
            AddLoop[k](sum_io, &len, sum_steps, AddData[k]);                                   \
        }                                                                                      \
        char *log_io[2] = {(char *)s, (char *)s};                                              \
        npy_intp rows = n;                                                                     \
        LogLoop[k](log_io, &rows, exp_steps, LogData[k]);                                      \
        for (npy_intp i = 0; i < n; i++) {                                                     \
            T lse = m[i] + s[i];                                                               \
            for (npy_intp j = 0; j < c; j++) {                                                 \
                lp[i * c + j] = z[i * c + j] - lse;                                            \
            }                                                                                  \
        }                                                                                      \
        T *losses = reduction == 0 ? (T *)PyArray_DATA((PyArrayObject *)result) : s;           \
        for (npy_intp i = 0; i < n; i++) {                                                     \
            losses[i] = -lp[i * c + target[i]];                                                \
        }                                                                                      \
        if (reduction != 0) {                                                                  \
            T *total = (T *)PyArray_DATA((PyArrayObject *)result);                             \
            *total = 0;                                                                        \
            char *total_io[3] = {(char *)total, (char *)s, (char *)total};                     \
            AddLoop[k](total_io, &rows, sum_steps, AddData[k]);                                \
            if (reduction == 1) {                                                              \
                *total = *total / (T)n;                                                        \
            }                                                                                  \
        }                                                                                      \
    } while (0)

static PyObject *
small_cross_entropy(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "small_cross_entropy(logits, targets, reduction) takes 3 arguments");
        return NULL;
    }
    long reduction = PyLong_AsLong(args[2]);
    if (reduction == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (reduction < 0 || reduction > 2) {
        PyErr_Format(PyExc_ValueError, "small_cross_entropy: unknown reduction %ld (0 none, 1 mean, 2 sum)",
                     reduction);
        return NULL;
    }
    int k = ce_array(args[0]);
    if (k < 0 || ExpLoop[k] == NULL || AddLoop[k] == NULL || LogLoop[k] == NULL) {
        Py_RETURN_NONE;
    }
    PyArrayObject *za = (PyArrayObject *)args[0];
    npy_intp n = PyArray_DIM(za, 0), c = PyArray_DIM(za, 1);
    /* the targets as indices, then room for the row maxima and the row sums */
    npy_intp *target = PyMem_Malloc(n * (sizeof(npy_intp) + 2 * sizeof(npy_double)));
    if (target == NULL) {
        return PyErr_NoMemory();
    }
    void *scratch = target + n;
    PyArrayObject *lpa = NULL;
    PyObject *result = NULL;
    if (!read_targets(args[1], n, c, target)) {
        goto decline;
    }
    int type = PyArray_TYPE(za);
    lpa = (PyArrayObject *)PyArray_SimpleNew(2, PyArray_DIMS(za), type);
    result = reduction == 0 ? PyArray_SimpleNew(1, &n, type) : PyArray_SimpleNew(0, NULL, type);
    if (lpa == NULL || result == NULL) {
        Py_XDECREF(lpa);
        Py_XDECREF(result);
        PyMem_Free(target);
        return NULL;
    }
    fp_clear();
    if (k == 0) {
        CE_FORWARD(npy_float);
    }
    else {
        CE_FORWARD(npy_double);
    }
    if (fp_raised()) {
        goto decline;
    }
    PyMem_Free(target);
    PyObject *pair = PyTuple_Pack(2, result, (PyObject *)lpa);
    Py_DECREF(result);
    Py_DECREF(lpa);
    return pair;
decline:
    Py_XDECREF(lpa);
    Py_XDECREF(result);
    PyMem_Free(target);
    Py_RETURN_NONE;
}

/* CrossEntropy.backward's NumPy code: grad = e^log_probs; grad[rows, targets] -= 1; then
 * grad *= upstream / count for a 0-d upstream (mean: count N; sum: count 1, an exact division),
 * or grad *= upstream[:, None] for one upstream per row (none) */
#define CE_BACKWARD(T)                                                                         \
    do {                                                                                       \
        T *g = (T *)PyArray_DATA(res);                                                         \
        const T *u = (const T *)PyArray_DATA(ua);                                              \
        char *io[2] = {PyArray_BYTES(lpa), (char *)g};                                         \
        npy_intp size = n * c, steps[2] = {sizeof(T), sizeof(T)};                              \
        ExpLoop[k](io, &size, steps, ExpData[k]);                                              \
        for (npy_intp i = 0; i < n; i++) {                                                     \
            g[i * c + target[i]] = g[i * c + target[i]] - (T)1;                                \
        }                                                                                      \
        if (PyArray_NDIM(ua) == 0) {                                                           \
            T scale = u[0] / (T)count;                                                         \
            for (npy_intp i = 0; i < size; i++) {                                              \
                g[i] = g[i] * scale;                                                           \
            }                                                                                  \
        }                                                                                      \
        else {                                                                                 \
            for (npy_intp i = 0; i < n; i++) {                                                 \
                for (npy_intp j = 0; j < c; j++) {                                             \
                    g[i * c + j] = g[i * c + j] * u[i];                                        \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
    } while (0)

static PyObject *
small_cross_entropy_grad(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError,
                        "small_cross_entropy_grad(log_probs, targets, upstream, count) takes 4 arguments");
        return NULL;
    }
    Py_ssize_t count = PyLong_AsSsize_t(args[3]);
    if (count == -1 && PyErr_Occurred()) {
        return NULL;
    }
    int k = ce_array(args[0]);
    if (k < 0 || count < 1 || ExpLoop[k] == NULL || !PyArray_CheckExact(args[2])) {
        Py_RETURN_NONE;
    }
    PyArrayObject *lpa = (PyArrayObject *)args[0], *ua = (PyArrayObject *)args[2];
    npy_intp n = PyArray_DIM(lpa, 0), c = PyArray_DIM(lpa, 1);
    int type = PyArray_TYPE(lpa);
    if (PyArray_TYPE(ua) != type || !PyArray_ISCARRAY_RO(ua) || !PyArray_ISNOTSWAPPED(ua) ||
        !(PyArray_NDIM(ua) == 0 || (PyArray_NDIM(ua) == 1 && PyArray_DIM(ua, 0) == n))) {
        Py_RETURN_NONE;
    }
    npy_intp *target = PyMem_Malloc(n * sizeof(npy_intp));
    if (target == NULL) {
        return PyErr_NoMemory();
    }
    if (!read_targets(args[1], n, c, target)) {
        PyMem_Free(target);
        Py_RETURN_NONE;
    }
    PyArrayObject *res = (PyArrayObject *)PyArray_SimpleNew(2, PyArray_DIMS(lpa), type);
    if (res == NULL) {
        PyMem_Free(target);
        return NULL;
    }
    fp_clear();
    if (k == 0) {
        CE_BACKWARD(npy_float);
    }
    else {
        CE_BACKWARD(npy_double);
    }
    PyMem_Free(target);
    return checked(res);
}

/* ------------------------------------------------------------------ module */

static PyMethodDef methods[] = {
    {"configure_apply", (PyCFunction)(void (*)(void))configure_apply, METH_VARARGS | METH_KEYWORDS,
     "Hand over the classes, the thread-local state and apply's Python helpers (ops/base.py does this)."},
    {"configure_walk", (PyCFunction)(void (*)(void))configure_walk, METH_VARARGS | METH_KEYWORDS,
     "Hand over backward's Python helpers (autograd/engine.py does this)."},
    {"apply", (PyCFunction)(void (*)(void))apply, METH_FASTCALL | METH_KEYWORDS,
     "apply(op, *inputs, **attrs): ops.base.apply in C."},
    {"apply1", (PyCFunction)(void (*)(void))apply1, METH_FASTCALL,
     "apply1(op, x): ops.base.apply1 in C."},
    {"apply2", (PyCFunction)(void (*)(void))apply2, METH_FASTCALL,
     "apply2(op, a, b): ops.base.apply2 in C."},
    {"grad_tensor", (PyCFunction)grad_tensor, METH_O,
     "grad_tensor(array): a gradient's tensor (no history) around the array, reusing a kept one."},
    {"accumulate_leaf", (PyCFunction)(void (*)(void))py_accumulate_leaf, METH_FASTCALL,
     "accumulate_leaf(leaf, grad, upstream): add a gradient into leaf.grad (engine._accumulate_leaf)."},
    {"clear_grads", (PyCFunction)clear_grads, METH_O, "clear_grads(tensors): t.grad = None for each tensor."},
    {"walk", (PyCFunction)(void (*)(void))walk, METH_FASTCALL,
     "walk(root_node, upstream, retain_graph): the reverse walk of engine.backward in C."},
    {"fused_grad", (PyCFunction)(void (*)(void))fused_grad, METH_FASTCALL,
     "fused_grad(kind, upstream, out): a tanh (0), sigmoid (1) or relu (2) local gradient of a small "
     "array in one loop, bit for bit NumPy's; None when the arrays do not qualify."},
    {"small_sigmoid", (PyCFunction)(void (*)(void))small_sigmoid, METH_FASTCALL,
     "small_sigmoid(x, safe): 1 / (1 + exp(-x)) of a small array, bit for bit NumPy's; None unless every "
     "x > safe and the array qualifies."},
    {"small_sum", (PyCFunction)(void (*)(void))small_sum, METH_FASTCALL,
     "small_sum(x, rows, count): the sum of all elements (a 0-d array) or, rows true, of a 2-D array's "
     "rows, divided by count; bit for bit NumPy's add.reduce; None when x does not qualify."},
    {"small_spread", (PyCFunction)(void (*)(void))small_spread, METH_FASTCALL,
     "small_spread(value, count, shape): a new array of shape filled with value / count (value 0-d); "
     "None when it does not qualify."},
    {"small_add_row", (PyCFunction)(void (*)(void))small_add_row, METH_FASTCALL,
     "small_add_row(out, row): out += row in place for a small fresh array; True when done, False "
     "(out untouched) when NumPy should do it."},
    {"small_cross_entropy", (PyCFunction)(void (*)(void))small_cross_entropy, METH_FASTCALL,
     "small_cross_entropy(logits, targets, reduction): (loss, log_probs) of softmax cross-entropy "
     "(reduction 0 none, 1 mean, 2 sum), bit for bit ops/loss.py's NumPy code; None when it does not qualify."},
    {"small_cross_entropy_grad", (PyCFunction)(void (*)(void))small_cross_entropy_grad, METH_FASTCALL,
     "small_cross_entropy_grad(log_probs, targets, upstream, count): (e^log_probs - onehot) * upstream / count "
     "(upstream 0-d) or * upstream[:, None]; None when it does not qualify."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_speedups", "The engine's bookkeeping in C (see chainrule/backend/_speedups.c).", -1, methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    import_array();
    import_umath();
    PyObject *numpy = PyImport_ImportModule("numpy");
    if (numpy == NULL) {
        return NULL;
    }
    find_loops(numpy, "exp", ExpLoop, ExpData);
    find_loops(numpy, "add", AddLoop, AddData);
    find_loops(numpy, "log", LogLoop, LogData);
    Py_DECREF(numpy);
    EmptyTuple = PyTuple_New(0);
    Zero = PyLong_FromLong(0);
    NeedsT = PyTuple_Pack(1, Py_True);
    NeedsTT = PyTuple_Pack(2, Py_True, Py_True);
    NeedsTF = PyTuple_Pack(2, Py_True, Py_False);
    NeedsFT = PyTuple_Pack(2, Py_False, Py_True);
    str_forward = PyUnicode_InternFromString("forward");
    str_vjp = PyUnicode_InternFromString("_vjp");
    str_mode = PyUnicode_InternFromString("mode");
    str_shape = PyUnicode_InternFromString("shape");
    if (!EmptyTuple || !Zero || !NeedsT || !NeedsTT || !NeedsTF || !NeedsFT || !str_forward || !str_vjp || !str_mode ||
        !str_shape)
        return NULL;
    return PyModule_Create(&module);
}
