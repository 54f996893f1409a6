/* emulator/_speedups.c: the compiled scheduler core of capsim's virtual loop, and its message path.
 *
 * It mirrors, line for line, the pure-Python reference in emulator/scheduler.py
 * (class Scheduler), which stays the reference: a change there is made here too,
 * and the tests run in both modes (CAPSIM_PURE_PYTHON=1 forces Python).
 *
 *   Core._loop(done, until_ns)          Scheduler._loop        (the run loop)
 *   Core.push_at / push_after / push_soon                     (the kernel's events)
 *   Core.call_soon(callback, *args, context=None)             (LeanHandle + run_handle)
 *   Core.call_later(delay, callback, *args, context=None)     (asyncio.sleep's SleepTimer path;
 *                                                              anything else: Scheduler._call_later)
 *   run_handle(handle)                  handles.run_handle and handles.report
 *   SleepTimer, SleepTimer.fire         handles.SleepTimer and wake_sleep (SleepTimer.fire)
 *   heap_push / heap_pop                heapq.heappush / heappop (the same algorithm, so the same heap)
 *   Core._heap_push / _heap_pop         Scheduler._heap_push / _heap_pop (the same, with the keys in C)
 *
 * and the common case of the message path, with the Python for everything else:
 *
 *   MessagePath.transmit / .deliver     network.Network.transmit / _deliver (a plain link; the fast path)
 *   Recorder, TraceBuffer               trace.Trace.recorder's record, and the lines not yet hashed
 *   UniformNs                           distributions.Uniform.ns_sampler's lambda
 *   copy_body                           message.copy_body (a flat, valid body; the reference raises)
 *   Dispatch                            node.Endpoint._deliver_here (a message its handler takes)
 *
 * Core is a base class of VirtualLoop (scheduler.Core = (Core, Scheduler)): its fields are
 * slots under the Python names (_now, _timers, ...), so Python code reads and writes them as
 * before. The Python objects it needs by identity (HANDLE_RUNNERS, owner_of, LeanHandle, ...)
 * are Scheduler._hooks, read once per instance. No global mutable state: the statics below
 * are interned names, set once at import.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stddef.h>

#if PY_VERSION_HEX < 0x030C0000
#include <structmember.h>
#define Py_T_OBJECT_EX T_OBJECT_EX
#define Py_T_BOOL T_BOOL
#define Py_T_PYSSIZET T_PYSSIZET
#define Py_READONLY READONLY
#endif

#define CAPSIM_ABI 6 /* emulator/speedups.py's ABI: bump both with any change of this contract */
#ifndef CAPSIM_C_SHA256
#define CAPSIM_C_SHA256 "" /* set by setup.py: the sources this was built from */
#endif
#ifndef CAPSIM_PY_SHA256
#define CAPSIM_PY_SHA256 ""
#endif

/* Scheduler._hooks, a NamedTuple: these are its fields' positions. */
enum {
    H_HANDLE_RUNNERS, H_TIMER_RUNNERS, H_OWNER_OF, H_LEAN_HANDLE, H_RUN_HANDLE,
    H_SLEEP_CALLBACK, H_OWNER, H_SLEEP_TIMER, H_WAKE_SLEEP, H_COUNT
};

static PyObject *s_popleft, *s_append, *s_cancelled, *s_pop_timer, *s_idle, *s_fifo_for, *s_call_soon_checked,
    *s_call_later, *s_hooks, *s_context, *s_loop, *s_callback, *s_args, *s_when_ns, *s_future, *s_result,
    *s_owner, *s_done, *s_stopped, *s_not_before, *s_call_exception_handler, *s_message, *s_exception,
    *s_handle, *s_ns, *s_one, *s_zero, *s_set_result, *s_timer_handle_cancelled, *s_type, *s_routes,
    *s_send, *s_done_attr, *s_suspend, *s_finish, *s_in_reply_to,
    *invalid_state_error;

typedef struct {
    PyObject_HEAD
    PyObject *now, *time, *ready, *timers, *fifos, *seq, *cancelled_timers, *paused, *stopping, *closed, *debug;
    PyObject *hooks; /* Scheduler._hooks, cached on first use */
    Py_ssize_t handle_slots[5]; /* where a LeanHandle keeps _context, _loop, _callback, _args, _cancelled */
    char handle_slots_known;    /* 0: not looked up yet; 1: at handle_slots; 2: not slots (set by name) */
    /* Each _timers entry's (when, seq) as C integers, index for index: the heap's comparisons read
     * this array, not the entries' tuples and ints spread over the process's memory. Valid while
     * keys_of is the _timers list and nkeys its length; anything else rebuilds it (keys_sync). */
    struct heap_key {
        long long when, seq;
    } *keys;
    Py_ssize_t nkeys, capacity;
    PyObject *keys_of; /* the list the keys mirror: compared by identity only, never used */
    /* Hints for the batches of ready callbacks (emulator/_speedups.c: run_ready): the addresses each callback
     * read, by its place in the batch, kept from the last batch of each of two kinds (a round of asyncio.sleep
     * loops runs two: the timers that fire, then the tasks they wake). Raw addresses, never read through. */
    struct hint_table {
        struct hint *hints;
        Py_ssize_t cap, len;
        const void *kind[2]; /* the classes of the batch's first callback and argument (compared only) */
    } tables[2];
    int table_last;          /* the table the last batch used (the other is the next to replace) */
    struct hint *recording;  /* where the callback running now adds what it reads, or NULL */
    PyTypeObject *callback_types[4]; /* the classes of callback arguments seen lately (held), and where they keep */
    Py_ssize_t callback_slots[4][3]; /* _callback, _context and _interval_ns (0: not a slot of that class) */
    int callback_next;               /* the entry the next class not among them replaces */
} Core;

/* a tick's send adds up to 14 (Path_transmit), a periodic tick 9, a handle that wakes a task 14 */
enum { HINTS = 28, HINT_DISTANCE = 3 };
struct hint {
    int n;
    const void *at[HINTS];
};

static inline void hint(Core *core, const void *at) { /* the callback running now reads at (NULL: nothing) */
    struct hint *h = core->recording;
    if (h->n < HINTS) h->at[h->n++] = at;
}

#define SLOT(obj, off) (*(PyObject **)((char *)(obj) + (off)))
static Py_ssize_t slot_offset(PyObject *type, const char *name);

/* -- helpers ------------------------------------------------------------------------------ */

static PyObject *field(PyObject *value, const char *name) { /* borrowed; NULL (AttributeError) if unset */
    if (value == NULL) PyErr_Format(PyExc_AttributeError, "the loop has no %s (Scheduler.__init__ not run?)", name);
    return value;
}
#define FIELD(self, member, name) field((self)->member, name)

static void set_field(PyObject **slot, PyObject *value) { /* steals value */
    PyObject *old = *slot;
    *slot = value;
    Py_XDECREF(old);
}

static PyObject *get_hooks(Core *self) { /* borrowed */
    if (self->hooks == NULL) {
        PyObject *hooks = PyObject_GetAttr((PyObject *)self, s_hooks);
        if (hooks == NULL) return NULL;
        if (!PyTuple_Check(hooks) || PyTuple_GET_SIZE(hooks) != H_COUNT) {
            Py_DECREF(hooks);
            PyErr_SetString(PyExc_TypeError, "Scheduler._hooks must be a Hooks tuple");
            return NULL;
        }
        self->hooks = hooks;
    }
    return self->hooks;
}
#define HOOK(hooks, i) PyTuple_GET_ITEM(hooks, i)

static PyObject *next_seq(Core *self) { /* next(self._seq) */
    PyObject *seq = FIELD(self, seq, "_seq");
    if (seq == NULL) return NULL;
    if (!PyIter_Check(seq)) return PyErr_Format(PyExc_TypeError, "_seq must be an iterator");
    PyObject *n = Py_TYPE(seq)->tp_iternext(seq);
    if (n == NULL && !PyErr_Occurred()) PyErr_SetNone(PyExc_StopIteration);
    return n;
}

static PyObject *entry(PyObject *item, Py_ssize_t i) { /* borrowed item i of a heap entry or a pair */
    if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) <= i) {
        PyErr_SetString(PyExc_TypeError, "a timer entry is a tuple (when_ns, seq, fn, arg[, fifo])");
        return NULL;
    }
    return PyTuple_GET_ITEM(item, i);
}

static PyObject *call_method0(PyObject *obj, PyObject *name) {
    return PyObject_VectorcallMethod(name, &obj, 1 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
}

static PyObject *call_method1(PyObject *obj, PyObject *name, PyObject *arg) {
    PyObject *args[2] = {obj, arg};
    return PyObject_VectorcallMethod(name, args, 2 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
}

static int discard(PyObject *result) { /* -1 if result is NULL (an error), else drop it */
    if (result == NULL) return -1;
    Py_DECREF(result);
    return 0;
}

/* -- the heap: heapq's algorithm on (when_ns, seq, ...) entries ---------------------------------- */

static int lt(PyObject *a, PyObject *b) { /* a < b as tuples compare, the common ints in C */
    if (PyTuple_CheckExact(a) && PyTuple_CheckExact(b) && PyTuple_GET_SIZE(a) >= 2 && PyTuple_GET_SIZE(b) >= 2) {
        for (Py_ssize_t i = 0; i < 2; i++) {
            PyObject *x = PyTuple_GET_ITEM(a, i), *y = PyTuple_GET_ITEM(b, i);
            if (!PyLong_CheckExact(x) || !PyLong_CheckExact(y)) break;
            int ox, oy;
            long long vx = PyLong_AsLongLongAndOverflow(x, &ox), vy = PyLong_AsLongLongAndOverflow(y, &oy);
            if (ox || oy) break;
            if (vx != vy) return vx < vy;
        }
    }
    return PyObject_RichCompareBool(a, b, Py_LT);
}

static int sift_down(PyObject *heap, Py_ssize_t start, Py_ssize_t pos) { /* heapq._siftdown */
    Py_ssize_t size = PyList_GET_SIZE(heap);
    while (pos > start) {
        Py_ssize_t parentpos = (pos - 1) >> 1;
        PyObject *item = PyList_GET_ITEM(heap, pos), *parent = PyList_GET_ITEM(heap, parentpos);
        Py_INCREF(item);
        Py_INCREF(parent);
        int less = lt(item, parent);
        Py_DECREF(item);
        Py_DECREF(parent);
        if (less < 0) return -1;
        if (size != PyList_GET_SIZE(heap)) {
            PyErr_SetString(PyExc_RuntimeError, "the timer heap changed size during a comparison");
            return -1;
        }
        if (!less) break;
        item = PyList_GET_ITEM(heap, pos); /* swap: the list keeps both references */
        PyList_SET_ITEM(heap, pos, PyList_GET_ITEM(heap, parentpos));
        PyList_SET_ITEM(heap, parentpos, item);
        pos = parentpos;
    }
    return 0;
}

static int sift_up(PyObject *heap, Py_ssize_t pos) { /* heapq._siftup: to a leaf, then back down */
    Py_ssize_t end = PyList_GET_SIZE(heap), start = pos, child = 2 * pos + 1;
    while (child < end) {
        if (child + 1 < end) {
            PyObject *a = PyList_GET_ITEM(heap, child), *b = PyList_GET_ITEM(heap, child + 1);
            Py_INCREF(a);
            Py_INCREF(b);
            int less = lt(a, b);
            Py_DECREF(a);
            Py_DECREF(b);
            if (less < 0) return -1;
            if (end != PyList_GET_SIZE(heap)) {
                PyErr_SetString(PyExc_RuntimeError, "the timer heap changed size during a comparison");
                return -1;
            }
            if (!less) child += 1;
        }
        PyObject *item = PyList_GET_ITEM(heap, pos);
        PyList_SET_ITEM(heap, pos, PyList_GET_ITEM(heap, child));
        PyList_SET_ITEM(heap, child, item);
        pos = child;
        child = 2 * pos + 1;
    }
    return sift_down(heap, start, pos);
}

static int heap_push(PyObject *heap, PyObject *item) {
    if (PyList_Append(heap, item) < 0) return -1;
    return sift_down(heap, 0, PyList_GET_SIZE(heap) - 1);
}

static PyObject *heap_pop(PyObject *heap) { /* new reference */
    Py_ssize_t n = PyList_GET_SIZE(heap);
    if (n == 0) {
        PyErr_SetString(PyExc_IndexError, "index out of range");
        return NULL;
    }
    PyObject *last = PyList_GET_ITEM(heap, n - 1); /* the list's reference becomes ours */
    Py_SET_SIZE(heap, n - 1);
    if (n == 1) return last;
    PyObject *first = PyList_GET_ITEM(heap, 0);
    PyList_SET_ITEM(heap, 0, last);
    if (sift_up(heap, 0) < 0) {
        Py_DECREF(first);
        return NULL;
    }
    return first;
}

static int timers_check(PyObject *timers) {
    if (timers != NULL && !PyList_Check(timers)) {
        PyErr_SetString(PyExc_TypeError, "_timers must be a list");
        return -1;
    }
    return timers == NULL ? -1 : 0;
}

#if PY_VERSION_HEX < 0x030D0000
static int PyUnicode_EqualToUTF8(PyObject *s, const char *c) { /* 3.13's, for 3.11 and 3.12 */
    const char *u = PyUnicode_AsUTF8(s);
    if (u == NULL) {
        PyErr_Clear();
        return 0;
    }
    return strcmp(u, c) == 0;
}
#endif

/* -- argument parsing: positional and keyword, as a Python signature would take them ----------- */

static int parse(const char *fname, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                 const char *const *names, Py_ssize_t required, Py_ssize_t total, PyObject **out) {
    if (nargs > total) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most %zd arguments (%zd given)", fname, total, nargs);
        return -1;
    }
    for (Py_ssize_t i = 0; i < total; i++) out[i] = i < nargs ? args[i] : NULL;
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t k = 0; k < nkw; k++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, k);
        Py_ssize_t i = 0;
        while (i < total && !PyUnicode_EqualToUTF8(key, names[i])) i++;
        if (i == total) {
            PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument %R", fname, key);
            return -1;
        }
        if (out[i] != NULL) {
            PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'", fname, names[i]);
            return -1;
        }
        out[i] = args[nargs + k];
    }
    for (Py_ssize_t i = 0; i < required; i++) {
        if (out[i] == NULL) {
            PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s'", fname, names[i]);
            return -1;
        }
    }
    return 0;
}

/* [delay,] callback, *args, context=None: the asyncio signatures of call_later (skip 1) and call_soon (skip 0).
 * head[0..skip] receive the leading arguments, given by position or by name. */
static int parse_callback(const char *fname, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                          Py_ssize_t skip, PyObject **head, PyObject **rest, PyObject **context) {
    static const char *const names[] = {"delay", "callback"};
    const char *const *leading = names + (skip ? 0 : 1);
    *context = Py_None;
    for (Py_ssize_t i = 0; i <= skip; i++) head[i] = i < nargs ? args[i] : NULL;
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t k = 0; k < nkw; k++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, k);
        Py_ssize_t i = 0;
        if (PyUnicode_EqualToUTF8(key, "context")) {
            *context = args[nargs + k];
            continue;
        }
        while (i <= skip && !PyUnicode_EqualToUTF8(key, leading[i])) i++;
        if (i > skip) {
            PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument %R", fname, key);
            return -1;
        }
        if (head[i] != NULL) {
            PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'", fname, leading[i]);
            return -1;
        }
        head[i] = args[nargs + k];
    }
    for (Py_ssize_t i = 0; i <= skip; i++) {
        if (head[i] == NULL) {
            PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s'", fname, leading[i]);
            return -1;
        }
    }
    Py_ssize_t first = nargs > skip + 1 ? skip + 1 : nargs;
    *rest = PyTuple_New(nargs - first);
    if (*rest == NULL) return -1;
    for (Py_ssize_t i = first; i < nargs; i++) PyTuple_SET_ITEM(*rest, i - first, Py_NewRef(args[i]));
    return 0;
}

/* -- SleepTimer: the timer of one asyncio.sleep (handles.SleepTimer) --------------------------- */

typedef struct {
    PyObject_HEAD
    PyObject *loop, *when_ns, *future, *result, *owner;
    char cancelled;
} Sleep;

static PyTypeObject SleepType;
static PyTypeObject CoreType;

static Sleep *sleep_new(PyObject *loop, PyObject *when_ns, PyObject *future, PyObject *result, PyObject *owner) {
    Sleep *sleep = PyObject_GC_New(Sleep, &SleepType);
    if (sleep == NULL) return NULL;
    sleep->loop = Py_NewRef(loop);
    sleep->when_ns = Py_NewRef(when_ns);
    sleep->future = Py_NewRef(future);
    sleep->result = Py_NewRef(result);
    sleep->owner = Py_NewRef(owner);
    sleep->cancelled = 0;
    PyObject_GC_Track(sleep);
    return sleep;
}

static PyObject *owner_now(PyObject *var) { /* OWNER.get() */
    PyObject *owner;
    if (PyContextVar_Get(var, NULL, &owner) < 0) return NULL;
    if (owner == NULL) PyErr_SetObject(PyExc_LookupError, var);
    return owner;
}

static PyObject *Sleep_tp_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) { /* SleepTimer(loop, when_ns, future, result) */
    static char *names[] = {"loop", "when_ns", "future", "result", NULL};
    PyObject *loop, *when_ns, *future, *result;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOO:SleepTimer", names, &loop, &when_ns, &future, &result))
        return NULL;
    PyObject *hooks = PyObject_GetAttr(loop, s_hooks);
    if (hooks == NULL) return NULL;
    PyObject *owner = PyTuple_Check(hooks) && PyTuple_GET_SIZE(hooks) == H_COUNT ? owner_now(HOOK(hooks, H_OWNER))
                                                                                 : PyErr_Format(PyExc_TypeError, "loop._hooks is not a Hooks tuple");
    Py_DECREF(hooks);
    if (owner == NULL) return NULL;
    Sleep *sleep = sleep_new(loop, when_ns, future, result, owner);
    Py_DECREF(owner);
    return (PyObject *)sleep;
}

static PyObject *Sleep_cancel(Sleep *self, PyObject *unused) {
    if (!self->cancelled) {
        self->cancelled = 1;
        if (self->future != Py_None) { /* still in the heap: count it for compaction */
            Py_SETREF(self->future, Py_NewRef(Py_None));
            PyObject *r = call_method1(self->loop, s_timer_handle_cancelled, (PyObject *)self);
            if (r == NULL) return NULL;
            Py_DECREF(r);
        }
    }
    Py_RETURN_NONE;
}

static PyObject *Sleep_cancelled(Sleep *self, PyObject *unused) { return PyBool_FromLong(self->cancelled); }

static PyObject *Sleep_when(Sleep *self, PyObject *unused) { return PyNumber_TrueDivide(self->when_ns, s_ns); }

static PyObject *Sleep_repr(Sleep *self) {
    PyObject *when = Sleep_when(self, NULL);
    if (when == NULL) return NULL;
    const char *state = self->cancelled ? "cancelled" : self->future == Py_None ? "fired" : "pending";
    PyObject *text = PyUnicode_FromFormat("<sleep timer when=%S %s>", when, state);
    Py_DECREF(when);
    return text;
}

static PyObject *Sleep_fire(PyObject *unused, PyObject *arg) { /* SleepTimer.fire: what asyncio.sleep's callback does */
    if (!PyObject_TypeCheck(arg, &SleepType)) return PyErr_Format(PyExc_TypeError, "fire() takes a SleepTimer");
    Sleep *sleep = (Sleep *)arg;
    if (sleep->future == Py_None) Py_RETURN_NONE; /* cancelled (cancel clears it) or fired */
    PyObject *future = sleep->future;             /* our reference now */
    sleep->future = Py_NewRef(Py_None);           /* fired: cancelling it now does not count as a cancelled timer */
    PyObject *r = call_method1(future, s_set_result, sleep->result);
    Py_DECREF(future);
    if (r == NULL) {
        if (!PyErr_ExceptionMatches(invalid_state_error)) return NULL;
        PyErr_Clear(); /* the future was cancelled (its task is being cancelled): leave it */
        Py_RETURN_NONE;
    }
    Py_DECREF(r);
    Py_RETURN_NONE;
}

static int Sleep_traverse(Sleep *self, visitproc visit, void *arg) {
    Py_VISIT(self->loop);
    Py_VISIT(self->when_ns);
    Py_VISIT(self->future);
    Py_VISIT(self->result);
    Py_VISIT(self->owner);
    return 0;
}

static int Sleep_clear(Sleep *self) {
    Py_CLEAR(self->loop);
    Py_CLEAR(self->when_ns);
    Py_CLEAR(self->future);
    Py_CLEAR(self->result);
    Py_CLEAR(self->owner);
    return 0;
}

static void Sleep_dealloc(Sleep *self) {
    PyObject_GC_UnTrack(self);
    Sleep_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

#define SLEEP_MEMBER(name, type, field) {name, type, offsetof(Sleep, field), 0, NULL}
static PyMemberDef Sleep_members[] = {
    SLEEP_MEMBER("_loop", Py_T_OBJECT_EX, loop), SLEEP_MEMBER("_when_ns", Py_T_OBJECT_EX, when_ns),
    SLEEP_MEMBER("_future", Py_T_OBJECT_EX, future), SLEEP_MEMBER("_result", Py_T_OBJECT_EX, result),
    SLEEP_MEMBER("owner", Py_T_OBJECT_EX, owner), SLEEP_MEMBER("_cancelled", Py_T_BOOL, cancelled),
    {NULL, 0, 0, 0, NULL},
};

static PyMethodDef Sleep_methods[] = {
    {"cancel", (PyCFunction)Sleep_cancel, METH_NOARGS, "Cancel it: the sleeper is not woken by it."},
    {"cancelled", (PyCFunction)Sleep_cancelled, METH_NOARGS, "Whether it was cancelled."},
    {"when", (PyCFunction)Sleep_when, METH_NOARGS, "When it falls due, in virtual seconds."},
    {"fire", (PyCFunction)Sleep_fire, METH_O | METH_STATIC, "Set the sleeper's future (wake_sleep)."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject SleepType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "emulator._speedups.SleepTimer",
    .tp_doc = "The timer of one asyncio.sleep: sets its future when due (handles.SleepTimer, compiled).",
    .tp_basicsize = sizeof(Sleep),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = Sleep_tp_new,
    .tp_dealloc = (destructor)Sleep_dealloc,
    .tp_traverse = (traverseproc)Sleep_traverse,
    .tp_clear = (inquiry)Sleep_clear,
    .tp_repr = (reprfunc)Sleep_repr,
    .tp_members = Sleep_members,
    .tp_methods = Sleep_methods,
};

/* -- the timer heap with its keys in a C array ------------------------------------------------------
 * The same algorithm as heap_push/heap_pop (heapq's), on the _timers list and, in step, on the
 * array of its entries' (when, seq): the same comparisons, so the same heap. Timers are only ever
 * pushed and popped through these (Python code calls Core._heap_push and _heap_pop, and says
 * _timers_changed after anything else); a length that does not match rebuilds the keys. An entry
 * whose when or seq is not an int that fits in 64 bits turns the keys off until the next rebuild. */

typedef struct heap_key Key;

static int key_of(PyObject *item, Key *key) { /* 1: key set; 0: not a keyable entry; -1: error */
    if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) < 2) return 0;
    PyObject *when = PyTuple_GET_ITEM(item, 0), *seq = PyTuple_GET_ITEM(item, 1);
    if (!PyLong_CheckExact(when) || !PyLong_CheckExact(seq)) return 0;
    int over_when, over_seq;
    key->when = PyLong_AsLongLongAndOverflow(when, &over_when);
    key->seq = PyLong_AsLongLongAndOverflow(seq, &over_seq);
    if ((key->when == -1 || key->seq == -1) && PyErr_Occurred()) return -1;
    return !over_when && !over_seq;
}

static inline int key_lt(const Key *a, const Key *b) { return a->when < b->when || (a->when == b->when && a->seq < b->seq); }

static int keys_room(Core *self, Py_ssize_t n) {
    if (n <= self->capacity) return 0;
    Py_ssize_t capacity = self->capacity ? self->capacity : 64;
    while (capacity < n) capacity *= 2;
    Key *keys = PyMem_Realloc(self->keys, (size_t)capacity * sizeof(Key));
    if (keys == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->keys = keys;
    self->capacity = capacity;
    return 0;
}

#define UNKEYED (-2) /* nkeys while keys_of holds an entry with no key: tried again once it is empty */

static void unkeyed(Core *self, PyObject *heap) {
    self->keys_of = heap;
    self->nkeys = UNKEYED;
}

static int keys_sync(Core *self, PyObject *heap) { /* 1: the keys mirror heap; 0: not keyable now; -1: error */
    Py_ssize_t n = PyList_GET_SIZE(heap);
    if (self->keys_of == heap && (self->nkeys == n || (self->nkeys == UNKEYED && n))) return self->nkeys == n;
    self->keys_of = NULL;
    if (keys_room(self, n) < 0) return -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        int keyed = key_of(PyList_GET_ITEM(heap, i), &self->keys[i]);
        if (keyed < 0) return -1;
        if (keyed == 0) {
            unkeyed(self, heap);
            return 0;
        }
    }
    self->keys_of = heap;
    self->nkeys = n;
    return 1;
}

static void keyed_sift_down(Core *self, PyObject *heap, Py_ssize_t start, Py_ssize_t pos) { /* heapq._siftdown */
    PyObject **items = ((PyListObject *)heap)->ob_item, *item = items[pos];
    Key *keys = self->keys, key = keys[pos];
    while (pos > start) {
        Py_ssize_t parent = (pos - 1) >> 1;
        if (!key_lt(&key, &keys[parent])) break;
        items[pos] = items[parent]; /* moved, not copied: the list keeps one reference each */
        keys[pos] = keys[parent];
        pos = parent;
    }
    items[pos] = item;
    keys[pos] = key;
}

static void keyed_sift_up(Core *self, PyObject *heap, Py_ssize_t pos) { /* heapq._siftup: to a leaf, then back */
    PyObject **items = ((PyListObject *)heap)->ob_item, *item = items[pos];
    Key *keys = self->keys, key = keys[pos];
    Py_ssize_t end = PyList_GET_SIZE(heap), start = pos, child = 2 * pos + 1;
    while (child < end) {
        if (child + 1 < end && !key_lt(&keys[child], &keys[child + 1])) child += 1;
        items[pos] = items[child];
        keys[pos] = keys[child];
        pos = child;
        child = 2 * pos + 1;
    }
    items[pos] = item;
    keys[pos] = key;
    keyed_sift_down(self, heap, start, pos);
}

static int core_heap_push(Core *self, PyObject *heap, PyObject *item) {
    Key key;
    int keyed = keys_sync(self, heap);
    if (keyed > 0) keyed = key_of(item, &key);
    if (keyed < 0) return -1;
    if (!keyed) { /* off until the heap is empty (or _timers_changed); the tuples' own order */
        unkeyed(self, heap);
        return heap_push(heap, item);
    }
    Py_ssize_t n = PyList_GET_SIZE(heap);
    if (keys_room(self, n + 1) < 0 || PyList_Append(heap, item) < 0) return -1;
    self->keys[n] = key;
    self->nkeys = n + 1;
    keyed_sift_down(self, heap, 0, n);
    return 0;
}

static PyObject *core_heap_pop(Core *self, PyObject *heap) { /* new reference */
    int keyed = keys_sync(self, heap);
    if (keyed < 0) return NULL;
    Py_ssize_t n = PyList_GET_SIZE(heap);
    if (!keyed || n == 0) return heap_pop(heap);
    PyObject *last = PyList_GET_ITEM(heap, n - 1); /* the list's reference becomes ours */
    Py_SET_SIZE(heap, n - 1);
    self->nkeys = n - 1;
    if (n == 1) return last;
    PyObject *first = PyList_GET_ITEM(heap, 0);
    PyList_SET_ITEM(heap, 0, last);
    self->keys[0] = self->keys[n - 1];
    keyed_sift_up(self, heap, 0);
    return first;
}

static PyObject *Core_heap_push(Core *self, PyObject *item) { /* Scheduler._heap_push */
    if (timers_check(FIELD(self, timers, "_timers")) < 0) return NULL;
    PyObject *timers = Py_NewRef(self->timers);
    int err = core_heap_push(self, timers, item);
    Py_DECREF(timers);
    return err < 0 ? NULL : Py_NewRef(Py_None);
}

static PyObject *Core_heap_pop(Core *self, PyObject *unused) { /* Scheduler._heap_pop */
    if (timers_check(FIELD(self, timers, "_timers")) < 0) return NULL;
    PyObject *timers = Py_NewRef(self->timers), *item = core_heap_pop(self, timers);
    Py_DECREF(timers);
    return item;
}

static PyObject *Core_timers_changed(Core *self, PyObject *unused) { /* Scheduler._timers_changed */
    self->keys_of = NULL;
    Py_RETURN_NONE;
}

/* -- the kernel's events ------------------------------------------------------------------------ */

static PyObject *push(Core *self, PyObject *when, PyObject *fn, PyObject *arg) { /* heappush((when, seq, fn, arg)) */
    PyObject *timers = self->timers;
    if (timers_check(FIELD(self, timers, "_timers")) < 0) return NULL;
    PyObject *seq = next_seq(self);
    if (seq == NULL) return NULL;
    PyObject *item = PyTuple_Pack(4, when, seq, fn, arg);
    Py_DECREF(seq);
    if (item == NULL) return NULL;
    Py_INCREF(timers);
    int err = core_heap_push(self, timers, item);
    Py_DECREF(timers);
    Py_DECREF(item);
    return err < 0 ? NULL : Py_NewRef(when);
}

static PyObject *Core_push_at(Core *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    static const char *const names[] = {"when_ns", "fn", "arg"};
    PyObject *a[3];
    if (parse("push_at", args, nargs, kwnames, names, 3, 3, a) < 0) return NULL;
    PyObject *when = push(self, a[0], a[1], a[2]);
    if (when == NULL) return NULL;
    Py_DECREF(when);
    Py_RETURN_NONE;
}

static PyObject *Core_push_after(Core *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    static const char *const names[] = {"delay_ns", "fn", "arg", "not_before"};
    PyObject *a[4];
    if (parse("push_after", args, nargs, kwnames, names, 3, 4, a) < 0) return NULL;
    if (FIELD(self, now, "_now") == NULL) return NULL;
    PyObject *when = PyNumber_Add(self->now, a[0]);
    if (when == NULL) return NULL;
    PyObject *not_before = a[3] != NULL ? a[3] : s_zero;
    int before = PyObject_RichCompareBool(when, not_before, Py_LT);
    if (before < 0) {
        Py_DECREF(when);
        return NULL;
    }
    if (before) set_field(&when, Py_NewRef(not_before));
    PyObject *result = push(self, when, a[1], a[2]);
    Py_DECREF(when);
    return result;
}

static int ready_append(Core *self, PyObject *fn, PyObject *arg) { /* self._ready.append((fn, arg)) */
    PyObject *ready = FIELD(self, ready, "_ready");
    if (ready == NULL) return -1;
    PyObject *pair = PyTuple_Pack(2, fn, arg);
    if (pair == NULL) return -1;
    int err = discard(call_method1(ready, s_append, pair));
    Py_DECREF(pair);
    return err;
}

static PyObject *Core_push_soon(Core *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    static const char *const names[] = {"fn", "arg"};
    PyObject *a[2];
    if (parse("push_soon", args, nargs, kwnames, names, 2, 2, a) < 0) return NULL;
    if (ready_append(self, a[0], a[1]) < 0) return NULL;
    Py_RETURN_NONE;
}

/* -- asyncio's call_soon and asyncio.sleep's call_later ------------------------------------------- */

static int closed_or_debug(Core *self) {
    if (FIELD(self, closed, "_closed") == NULL || FIELD(self, debug, "_debug") == NULL) return -1;
    int closed = PyObject_IsTrue(self->closed);
    return closed != 0 ? closed : PyObject_IsTrue(self->debug);
}

static PyObject *new_bare(PyObject *cls) { /* object.__new__(cls) */
    if (!PyType_Check(cls)) return PyErr_Format(PyExc_TypeError, "a hook is not a class: %R", cls);
    PyObject *empty = PyTuple_New(0);
    if (empty == NULL) return NULL;
    PyObject *obj = PyBaseObject_Type.tp_new((PyTypeObject *)cls, empty, NULL);
    Py_DECREF(empty);
    return obj;
}

static int set_attrs(PyObject *obj, PyObject *const *names, PyObject *const *values, int n) {
    for (int i = 0; i < n; i++)
        if (PyObject_SetAttr(obj, names[i], values[i]) < 0) return -1;
    return 0;
}

static PyObject *new_handle(Core *self, PyObject *cls, PyObject *const *values) { /* a LeanHandle, fields set */
    static const char *const names[] = {"_context", "_loop", "_callback", "_args", "_cancelled"};
    if (self->handle_slots_known == 0) { /* asyncio's Handle keeps them in __slots__: set them where they are */
        self->handle_slots_known = 1;
        for (int i = 0; i < 5 && self->handle_slots_known == 1; i++)
            if ((self->handle_slots[i] = PyType_Check(cls) ? slot_offset(cls, names[i]) : -1) < 0) {
                PyErr_Clear();
                self->handle_slots_known = 2;
            }
    }
    PyObject *handle = new_bare(cls);
    if (handle == NULL) return NULL;
    if (self->handle_slots_known == 1) {
        for (int i = 0; i < 5; i++) {
            PyObject **slot = &SLOT(handle, self->handle_slots[i]);
            Py_XSETREF(*slot, Py_NewRef(values[i]));
        }
        return handle;
    }
    PyObject *attrs[] = {s_context, s_loop, s_callback, s_args, s_cancelled};
    if (set_attrs(handle, attrs, values, 5) < 0) Py_CLEAR(handle);
    return handle;
}

static PyObject *Core_call_soon(Core *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    PyObject *callback, *rest, *context, *hooks = get_hooks(self);
    if (hooks == NULL || parse_callback("call_soon", args, nargs, kwnames, 0, &callback, &rest, &context) < 0)
        return NULL;
    PyObject *handle = NULL;
    int checked = closed_or_debug(self);
    if (checked < 0) goto done;
    if (checked) {
        PyObject *cargs[4] = {(PyObject *)self, callback, rest, context};
        handle = PyObject_VectorcallMethod(s_call_soon_checked, cargs, 4 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
        goto done;
    }
    PyObject *ctx = context != Py_None ? Py_NewRef(context) : PyContext_CopyCurrent();
    if (ctx == NULL) goto done;
    PyObject *values[] = {ctx, (PyObject *)self, callback, rest, Py_False};
    handle = new_handle(self, HOOK(hooks, H_LEAN_HANDLE), values);
    if (handle != NULL && ready_append(self, HOOK(hooks, H_RUN_HANDLE), handle) < 0) Py_CLEAR(handle);
    Py_DECREF(ctx);
done:
    Py_DECREF(rest);
    return handle;
}

/* handles.RANGE_END, where the clock's range ends: the least delay whose delay * 1e9 overflows a double. */
#define RANGE_END 0x1.12e0be826d695p+994

static PyObject *round_ns(double delay) { /* round(delay * NS): Python's round-half-even of a float */
    double x = delay * 1e9, r = round(x);
    if (fabs(x - r) == 0.5) r = 2.0 * round(x / 2.0);
    return PyLong_FromDouble(r);
}

static PyObject *sleep_timer(Core *self, PyObject *hooks, PyObject *when, PyObject *rest) { /* the SleepTimer */
    if (PyTuple_GET_SIZE(rest) != 2)
        return PyErr_Format(PyExc_ValueError, "asyncio.sleep's callback takes (future, result), got %zd values",
                            PyTuple_GET_SIZE(rest));
    PyObject *owner = owner_now(HOOK(hooks, H_OWNER)), *sleep;
    if (owner == NULL) return NULL;
    if (HOOK(hooks, H_SLEEP_TIMER) == (PyObject *)&SleepType) { /* the compiled SleepTimer: no attribute stores */
        sleep = (PyObject *)sleep_new((PyObject *)self, when, PyTuple_GET_ITEM(rest, 0), PyTuple_GET_ITEM(rest, 1), owner);
        Py_DECREF(owner);
        return sleep;
    }
    sleep = new_bare(HOOK(hooks, H_SLEEP_TIMER));
    PyObject *names[] = {s_loop, s_when_ns, s_future, s_result, s_owner, s_cancelled};
    PyObject *values[] = {(PyObject *)self, when, PyTuple_GET_ITEM(rest, 0), PyTuple_GET_ITEM(rest, 1), owner, Py_False};
    if (sleep != NULL && set_attrs(sleep, names, values, 6) < 0) Py_CLEAR(sleep);
    Py_DECREF(owner);
    return sleep;
}

static PyObject *sleep_later(Core *self, PyObject *hooks, double delay, PyObject *rest) { /* call_later's sleep path */
    PyObject *fifos = FIELD(self, fifos, "_fifos"), *timers = FIELD(self, timers, "_timers");
    if (fifos == NULL || timers_check(timers) < 0 || FIELD(self, now, "_now") == NULL) return NULL;
    if (!PyDict_Check(fifos)) return PyErr_Format(PyExc_TypeError, "_fifos must be a dict");
    PyObject *sleep = NULL, *fifo = NULL, *seq = NULL, *item = NULL, *delay_ns = round_ns(delay);
    PyObject *when = delay_ns == NULL ? NULL : PyNumber_Add(self->now, delay_ns);
    if (when == NULL || (sleep = sleep_timer(self, hooks, when, rest)) == NULL) goto fail;
    fifo = Py_XNewRef(PyDict_GetItemWithError(fifos, delay_ns));
    if (fifo == NULL) {
        if (PyErr_Occurred() || (fifo = call_method1((PyObject *)self, s_fifo_for, delay_ns)) == NULL) goto fail;
    }
    if ((seq = next_seq(self)) == NULL) goto fail;
    Py_INCREF(timers);
    if (fifo == Py_None) {
        item = PyTuple_Pack(4, when, seq, HOOK(hooks, H_WAKE_SLEEP), sleep);
        if (item == NULL || core_heap_push(self, timers, item) < 0) goto fail_timers;
    } else {
        item = PyTuple_Pack(5, when, seq, HOOK(hooks, H_WAKE_SLEEP), sleep, fifo);
        Py_ssize_t queued = item == NULL ? -1 : PyObject_Size(fifo);
        if (queued < 0 || (queued == 0 && core_heap_push(self, timers, item) < 0)) goto fail_timers;
        if (discard(call_method1(fifo, s_append, item)) < 0) goto fail_timers;
    }
    Py_DECREF(timers);
    goto done;
fail_timers:
    Py_DECREF(timers);
fail:
    Py_CLEAR(sleep);
done:
    Py_XDECREF(item);
    Py_XDECREF(seq);
    Py_XDECREF(fifo);
    Py_XDECREF(when);
    Py_XDECREF(delay_ns);
    return sleep;
}

static PyObject *Core_call_later(Core *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    PyObject *head[2], *rest, *context, *result = NULL, *hooks = get_hooks(self);
    if (hooks == NULL || parse_callback("call_later", args, nargs, kwnames, 1, head, &rest, &context) < 0)
        return NULL;
    PyObject *delay = head[0], *callback = head[1];
    if (callback == HOOK(hooks, H_SLEEP_CALLBACK) && context == Py_None && PyFloat_CheckExact(delay) &&
        PyFloat_AS_DOUBLE(delay) >= 0.0 && PyFloat_AS_DOUBLE(delay) < RANGE_END) { /* past it: _call_later's never */
        int checked = closed_or_debug(self);
        if (checked < 0) goto done;
        if (!checked) {
            result = sleep_later(self, hooks, PyFloat_AS_DOUBLE(delay), rest);
            goto done;
        }
    }
    PyObject *cargs[5] = {(PyObject *)self, delay, callback, rest, context};
    result = PyObject_VectorcallMethod(s_call_later, cargs, 5 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
done:
    Py_DECREF(rest);
    return result;
}

/* -- the run loop ----------------------------------------------------------------------------- */

typedef struct { /* what _loop binds to local names */
    Core *core;
    PyObject *ready, *timers, *paused, *pop, *append, *handle_runners, *timer_runners, *owner_of;
} Locals;

static int run_or_hold(Locals *l, PyObject *fn, PyObject *arg) { /* hold it if its owner is paused, else fn(arg) */
    if (PyDict_GET_SIZE(l->paused)) {
        int handle = PySet_Contains(l->handle_runners, fn);
        if (handle < 0) return -1;
        if (handle) {
            PyObject *owner = PyObject_CallFunctionObjArgs(l->owner_of, fn, arg, NULL);
            if (owner == NULL) return -1;
            PyObject *held = Py_XNewRef(PyDict_GetItemWithError(l->paused, owner));
            Py_DECREF(owner);
            if (held == NULL && PyErr_Occurred()) return -1;
            if (held != NULL) {
                PyObject *pair = PyTuple_Pack(2, fn, arg);
                int err = pair == NULL ? -1 : discard(call_method1(held, s_append, pair));
                Py_XDECREF(pair);
                Py_DECREF(held);
                return err;
            }
        }
    }
    return discard(PyObject_CallOneArg(fn, arg));
}

static int append_pair(Locals *l, PyObject *item) { /* ready.append((item[2], item[3])) */
    PyObject *fn = entry(item, 2), *arg = entry(item, 3);
    if (fn == NULL || arg == NULL) return -1;
    PyObject *pair = PyTuple_Pack(2, fn, arg);
    if (pair == NULL) return -1;
    int err = discard(PyObject_CallOneArg(l->append, pair));
    Py_DECREF(pair);
    return err;
}

static int pop_fifo(PyObject *fifo) { return discard(call_method0(fifo, s_popleft)); }

static int due_at(PyObject *timers, PyObject *when) { /* timers and timers[0][0] == when */
    if (PyList_GET_SIZE(timers) == 0) return 0;
    PyObject *head = PyList_GET_ITEM(timers, 0), *at = entry(head, 0);
    if (at == NULL) return -1;
    Py_INCREF(head);
    int same = PyObject_RichCompareBool(at, when, Py_EQ);
    Py_DECREF(head);
    return same;
}

static int take_fifo(Locals *l, PyObject *fifo, PyObject *when) { /* the rest of a FIFO due now, while ahead */
    if (pop_fifo(fifo) < 0) return -1;
    for (;;) {
        Py_ssize_t left = PyObject_Size(fifo);
        if (left <= 0) return (int)left;
        PyObject *next = PySequence_GetItem(fifo, 0), *at = next == NULL ? NULL : entry(next, 0);
        if (at == NULL) goto fail;
        int later = PyObject_RichCompareBool(at, when, Py_NE);
        if (later == 0 && PyList_GET_SIZE(l->timers)) {
            PyObject *head = Py_NewRef(PyList_GET_ITEM(l->timers, 0));
            later = lt(head, next);
            Py_DECREF(head);
        }
        if (later < 0) goto fail;
        if (later) {
            int err = core_heap_push(l->core, l->timers, next);
            Py_DECREF(next);
            return err;
        }
        if (pop_fifo(fifo) < 0 || append_pair(l, next) < 0) goto fail;
        Py_DECREF(next);
        continue;
    fail:
        Py_XDECREF(next);
        return -1;
    }
}

static int next_after(Locals *l, PyObject *popped) { /* a FIFO's head left the heap: its next takes its place */
    if (PyTuple_GET_SIZE(popped) != 5) return 0;
    PyObject *fifo = PyTuple_GET_ITEM(popped, 4);
    if (pop_fifo(fifo) < 0) return -1;
    Py_ssize_t left = PyObject_Size(fifo);
    if (left <= 0) return (int)left;
    PyObject *next = PySequence_GetItem(fifo, 0);
    int err = next == NULL ? -1 : core_heap_push(l->core, l->timers, next);
    Py_XDECREF(next);
    return err;
}

static int batch(Locals *l, PyObject *head, PyObject *when) { /* head and every timer due at its instant, ready */
    if (append_pair(l, head) < 0) return -1;
    for (;;) {
        int due = due_at(l->timers, when);
        if (due <= 0) return due;
        PyObject *item = core_heap_pop(l->core, l->timers);
        if (item == NULL) return -1;
        int err = append_pair(l, item);
        if (err == 0 && PyTuple_GET_SIZE(item) == 5) err = take_fifo(l, PyTuple_GET_ITEM(item, 4), when);
        Py_DECREF(item);
        if (err < 0) return -1;
    }
}

static PyObject *first_live(Core *self, Locals *l) { /* the heap's first timer not cancelled (new ref), or None */
    while (PyList_GET_SIZE(l->timers)) {
        PyObject *head = Py_NewRef(PyList_GET_ITEM(l->timers, 0));
        PyObject *fn = entry(head, 3) == NULL ? NULL : PyTuple_GET_ITEM(head, 2);
        int cancelled = fn == NULL ? -1 : PySet_Contains(l->timer_runners, fn);
        if (cancelled > 0) {
            PyObject *flag = PyObject_GetAttr(PyTuple_GET_ITEM(head, 3), s_cancelled);
            cancelled = flag == NULL ? -1 : PyObject_IsTrue(flag);
            Py_XDECREF(flag);
        }
        if (cancelled == 0) return head;
        Py_DECREF(head);
        if (cancelled < 0 || discard(call_method0((PyObject *)self, s_pop_timer)) < 0) return NULL;
        PyObject *count = FIELD(self, cancelled_timers, "_cancelled_timers");
        int some = count == NULL ? -1 : PyObject_IsTrue(count);
        if (some < 0) return NULL;
        if (some) {
            PyObject *less = PyNumber_Subtract(count, s_one);
            if (less == NULL) return NULL;
            set_field(&self->cancelled_timers, less);
        }
    }
    Py_RETURN_NONE;
}

static int step_timers(Core *self, Locals *l, PyObject *until, PyObject **why) {
    /* The clock jumps to the next timer; run it, or make every timer due then ready. *why: set when the loop ends. */
    PyObject *head = first_live(self, l);
    if (head == NULL) return -1;
    if (head != Py_None && until != Py_None) {
        int late = PyObject_RichCompareBool(PyTuple_GET_ITEM(head, 0), until, Py_GT);
        if (late) Py_SETREF(head, late < 0 ? NULL : Py_NewRef(Py_None));
        if (head == NULL) return -1;
    }
    if (head == Py_None) {
        Py_DECREF(head);
        *why = call_method1((PyObject *)self, s_idle, until);
        return *why == NULL ? -1 : 0;
    }
    PyObject *when = PyTuple_GET_ITEM(head, 0);
    int err = -1, moved = FIELD(self, now, "_now") == NULL ? -1 : PyObject_RichCompareBool(when, self->now, Py_NE);
    if (moved < 0) goto out;
    if (moved) {
        PyObject *seconds = PyNumber_TrueDivide(when, s_ns);
        if (seconds == NULL) goto out;
        set_field(&self->now, Py_NewRef(when));
        set_field(&self->time, seconds);
    }
    if (discard(core_heap_pop(self, l->timers)) < 0 || next_after(l, head) < 0) goto out;
    int more = due_at(l->timers, when);
    if (more < 0) goto out;
    if (!more) /* the common case: one event at this instant; run it without queueing */
        err = run_or_hold(l, PyTuple_GET_ITEM(head, 2), PyTuple_GET_ITEM(head, 3));
    else
        err = batch(l, head, when);
out:
    Py_DECREF(head);
    return err;
}

static const void *values_of(PyObject *obj) { /* where an instance keeps its attributes' values, or NULL (a hint) */
    if (!(Py_TYPE(obj)->tp_flags & Py_TPFLAGS_MANAGED_DICT)) return NULL; /* the words before it are not its own */
#if PY_VERSION_HEX < 0x030C0000
    return ((void **)obj)[-4]; /* 3.11: the values' pointer, four words before the object (the dict's is three) */
#elif PY_VERSION_HEX < 0x030D0000
    uintptr_t tagged = (uintptr_t)((void **)obj)[-3]; /* 3.12: the dict or, tagged with 1, the values */
    return tagged & 1 ? (void *)(tagged - 1) : NULL;
#else
    return (char *)obj + Py_TYPE(obj)->tp_basicsize; /* 3.13: inline, after the object */
#endif
}

/* asyncio's compiled Task and its get_coro (NULL without the _asyncio module): a task woken by a batch, and
 * where a Task keeps its coroutine (its subclasses too: a subclass adds to the base's layout, never moves it).
 * The offset is found once, on a live task, as the word that holds what get_coro returns; -1: not yet. */
static PyTypeObject *asyncio_task;
static PyObject *task_get_coro;
static Py_ssize_t coro_offset = -1;

static void hint_lines(Core *core, PyObject *obj, int most) { /* an object's first lines, from its GC header */
    PyTypeObject *type = Py_TYPE(obj);
    Py_ssize_t size = type->tp_basicsize + (type->tp_itemsize ? Py_ABS(Py_SIZE(obj)) * type->tp_itemsize : 0);
    const char *at = (const char *)obj - 16, *end = (const char *)obj + size;
    for (int k = 0; k < most && at < end; k++, at += 64) hint(core, at);
}

static PyObject *task_woken_by(PyObject *fn) { /* the asyncio task a wakeup callback resumes (borrowed), or NULL */
    PyObject *task = NULL;
    if (asyncio_task == NULL) return NULL;
    if (PyCFunction_Check(fn)) task = PyCFunction_GET_SELF(fn); /* the task's own task_wakeup, bound to it */
    return task != NULL && PyObject_TypeCheck(task, asyncio_task) ? task : NULL;
}

static void hint_task(Core *core, PyObject *task) { /* a task's lines, and its coroutine's (with its frame) */
    hint_lines(core, task, 4);
    if (coro_offset < 0) {
        PyObject *coro = PyObject_CallOneArg(task_get_coro, task); /* the base's get_coro: no code of a subclass runs */
        if (coro == NULL) {
            PyErr_Clear();
            return;
        }
        for (Py_ssize_t off = sizeof(PyObject); off + (Py_ssize_t)sizeof(PyObject *) <= asyncio_task->tp_basicsize &&
                                                coro != Py_None && coro_offset < 0;
             off += sizeof(PyObject *))
            if (SLOT(task, off) == coro) coro_offset = off;
        if (coro != Py_None && coro_offset < 0) coro_offset = 0; /* not in its words: no coroutine hints */
        Py_DECREF(coro);
    }
    PyObject *coro = coro_offset > 0 ? SLOT(task, coro_offset) : NULL;
    if (coro != NULL && PyCoro_CheckExact(coro)) hint_lines(core, coro, 5);
}

static void hint_callback(Core *core, PyObject *fn, PyObject *arg) { /* what a callback read, besides its sends:
    * its argument; the callback, context and interval it keeps if it is a periodic timer (or anything with
    * those slots, as a handle does); if that callback is a future's wakeup of a task, the task and its coroutine */
    hint(core, (char *)arg - 16);
    hint(core, (char *)arg + 48);
    hint(core, (char *)arg + 104);
    PyTypeObject *type = Py_TYPE(arg);
    int k = 0;
    while (k < 4 && core->callback_types[k] != type) k++;
    if (k == 4) { /* a class not seen lately: where it keeps these (0: not a slot of it), in place of the oldest */
        static const char *const names[] = {"_callback", "_context", "_interval_ns"};
        k = core->callback_next;
        core->callback_next = (k + 1) % 4;
        Py_XSETREF(core->callback_types[k], (PyTypeObject *)Py_NewRef(type)); /* held: no other class takes its address */
        for (int i = 0; i < 3; i++)
            if ((core->callback_slots[k][i] = slot_offset((PyObject *)type, names[i])) < 0) {
                PyErr_Clear();
                core->callback_slots[k][i] = 0;
            }
    }
    const Py_ssize_t *slots = core->callback_slots[k];
    if (slots[1]) hint(core, SLOT(arg, slots[1]));
    if (slots[2]) hint(core, SLOT(arg, slots[2]));
    PyObject *callback = slots[0] ? SLOT(arg, slots[0]) : NULL;
    if (callback != NULL) {
        hint(core, callback);
        if (PyMethod_Check(callback)) { /* a bound method: the object it is bound to (a node), and its attributes */
            PyObject *self = PyMethod_GET_SELF(callback);
            hint(core, (char *)self - 32);
            hint(core, (char *)self + 16);
            hint(core, values_of(self));
        } else {
            PyObject *task = task_woken_by(callback);
            if (task != NULL) hint_task(core, task);
        }
    }
}

static struct hint_table *hint_table_for(Core *core, Py_ssize_t n, PyObject *fn, PyObject *arg, int *replay) {
    /* the table a batch of n records in, the one of the last batch of its kind if there is one: its first
     * callback's and argument's classes (a heartbeat round's ticks; asyncio.sleep's timers, or the wakeups of
     * the tasks they woke); NULL if there is no room. replay: it holds a batch of that kind and size. */
    const void *kind[2] = {Py_TYPE(fn), Py_TYPE(arg)};
    struct hint_table *tables = core->tables;
    int k = tables[0].kind[0] == kind[0] && tables[0].kind[1] == kind[1]   ? 0
            : tables[1].kind[0] == kind[0] && tables[1].kind[1] == kind[1] ? 1
                                                                           : !core->table_last;
    struct hint_table *t = &tables[k];
    core->table_last = k;
    *replay = t->len == n && t->kind[0] == kind[0] && t->kind[1] == kind[1];
    t->kind[0] = kind[0];
    t->kind[1] = kind[1];
    t->len = 0; /* from here: the ones this batch records */
    if (n > t->cap) {
        struct hint *more = PyMem_Realloc(t->hints, (size_t)n * sizeof *more);
        if (more == NULL) { /* no room for hints: run without them (PyMem_Realloc sets no error) */
            *replay = 0;
            t->kind[0] = t->kind[1] = NULL;
            return NULL;
        }
        t->hints = more;
        t->cap = n;
    }
    return t;
}

static int run_ready(Locals *l) { /* the callbacks ready now, as one batch */
    /* A batch of periodic ticks (a heartbeat round) comes back an interval later with the same callbacks in the
     * same order; so do a round of asyncio.sleep loops' timers, and then the wakeups of their tasks. Each
     * callback's reads are recorded by its place in the batch, and when a batch of the same kind and size
     * runs, each callback hints the lines the one HINT_DISTANCE places later read last time, so their loads
     * overlap instead of each waiting for memory in turn. Hints are only hints (a prefetch cannot fault, and
     * changes nothing): a batch that changed costs some wasted lines. */
    Core *core = l->core;
    Py_ssize_t n = PyObject_Size(l->ready);
    if (n < 0) return -1;
    struct hint_table *t = NULL; /* where this batch records (NULL: nowhere; a batch of a few leaves them be) */
    int replay = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *pair = PyObject_CallNoArgs(l->pop);
        if (pair == NULL) return -1;
        PyObject *fn = entry(pair, 1) == NULL ? NULL : PyTuple_GET_ITEM(pair, 0), *arg = PyTuple_GET_ITEM(pair, 1);
        if (i == 0 && fn != NULL && n > HINT_DISTANCE) t = hint_table_for(core, n, fn, arg, &replay);
        if (fn != NULL && t != NULL) {
            if (replay && i + HINT_DISTANCE < n) {
                struct hint *h = &t->hints[i + HINT_DISTANCE];
                for (int j = 0; j < h->n; j++) __builtin_prefetch(h->at[j], 1, 3); /* NULL: a harmless hint */
                __asm__ __volatile__("");
            }
            core->recording = &t->hints[i];
            core->recording->n = 0;
        }
        int err = fn == NULL ? -1 : run_or_hold(l, fn, arg);
        if (core->recording != NULL) {
            if (err == 0) hint_callback(core, fn, arg);
            core->recording = NULL;
            t->len = i + 1;
        }
        Py_DECREF(pair);
        if (err < 0) return -1;
    }
    return 0;
}

static PyObject *Core_loop(Core *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) return PyErr_Format(PyExc_TypeError, "_loop() takes 2 arguments (%zd given)", nargs);
    PyObject *done = args[0], *until = args[1], *why = NULL, *hooks = get_hooks(self);
    Locals l = {self, self->ready, self->timers, self->paused, NULL, NULL, NULL, NULL, NULL};
    if (hooks == NULL || FIELD(self, ready, "_ready") == NULL || timers_check(FIELD(self, timers, "_timers")) < 0 ||
        FIELD(self, paused, "_paused") == NULL)
        return NULL;
    if (!PyDict_Check(l.paused)) return PyErr_Format(PyExc_TypeError, "_paused must be a dict");
    l.handle_runners = HOOK(hooks, H_HANDLE_RUNNERS);
    l.timer_runners = HOOK(hooks, H_TIMER_RUNNERS);
    l.owner_of = HOOK(hooks, H_OWNER_OF);
    if (!PyAnySet_Check(l.handle_runners) || !PyAnySet_Check(l.timer_runners))
        return PyErr_Format(PyExc_TypeError, "Scheduler._hooks: the runners must be sets");
    Py_INCREF(l.ready);
    Py_INCREF(l.timers);
    Py_INCREF(l.paused);
    if ((l.pop = PyObject_GetAttr(l.ready, s_popleft)) == NULL || (l.append = PyObject_GetAttr(l.ready, s_append)) == NULL)
        goto out;
    for (;;) {
        if (run_ready(&l) < 0) goto out;
        if (done != Py_None) {
            PyObject *r = PyObject_CallNoArgs(done);
            int finished = r == NULL ? -1 : PyObject_IsTrue(r);
            Py_XDECREF(r);
            if (finished < 0) goto out;
            if (finished) {
                why = Py_NewRef(s_done);
                goto out;
            }
        }
        int stopping = FIELD(self, stopping, "_stopping") == NULL ? -1 : PyObject_IsTrue(self->stopping);
        if (stopping < 0) goto out;
        if (stopping) {
            why = Py_NewRef(s_stopped);
            goto out;
        }
        Py_ssize_t waiting = PyObject_Size(l.ready);
        if (waiting < 0) goto out;
        if (waiting) continue;
        if (step_timers(self, &l, until, &why) < 0 || why != NULL) goto out;
    }
out:
    Py_XDECREF(l.pop);
    Py_XDECREF(l.append);
    Py_DECREF(l.ready);
    Py_DECREF(l.timers);
    Py_DECREF(l.paused);
    return why;
}

/* -- run_handle: asyncio's Handle._run, one frame shorter (handles.run_handle and handles.report) -- */

static PyObject *report(PyObject *handle, PyObject *exc) { /* handles.report */
    PyObject *callback = NULL, *loop = NULL, *context = NULL, *message = NULL, *result = NULL;
    if ((callback = PyObject_GetAttr(handle, s_callback)) == NULL ||
        (message = PyUnicode_FromFormat("Exception in callback %R", callback)) == NULL ||
        (context = PyDict_New()) == NULL || PyDict_SetItem(context, s_message, message) < 0 ||
        PyDict_SetItem(context, s_exception, exc) < 0 || PyDict_SetItem(context, s_handle, handle) < 0 ||
        (loop = PyObject_GetAttr(handle, s_loop)) == NULL)
        goto out;
    result = call_method1(loop, s_call_exception_handler, context);
out:
    Py_XDECREF(callback);
    Py_XDECREF(message);
    Py_XDECREF(context);
    Py_XDECREF(loop);
    return result;
}

static PyObject *fetch_exception(void) { /* the exception being raised, normalized, with its traceback */
#if PY_VERSION_HEX >= 0x030C0000
    return PyErr_GetRaisedException();
#else
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    if (traceback != NULL) PyException_SetTraceback(value, traceback);
    Py_XDECREF(type);
    Py_XDECREF(traceback);
    return value;
#endif
}

static PyObject *run_handle(PyObject *module, PyObject *handle) {
    PyObject *flag = PyObject_GetAttr(handle, s_cancelled);
    int cancelled = flag == NULL ? -1 : PyObject_IsTrue(flag);
    Py_XDECREF(flag);
    if (cancelled) return cancelled < 0 ? NULL : Py_NewRef(Py_None);
    PyObject *context = PyObject_GetAttr(handle, s_context), *callback = NULL, *args = NULL, *result = NULL;
    if (context == NULL || (callback = PyObject_GetAttr(handle, s_callback)) == NULL ||
        (args = PyObject_GetAttr(handle, s_args)) == NULL)
        goto out;
    if (!PyContext_CheckExact(context)) { /* handle._context.run(...) on something else: as Python would */
        PyObject *run = PyObject_GetAttrString(context, "run"), *full = NULL;
        PyObject *head = run == NULL ? NULL : PyTuple_Pack(1, callback);
        PyObject *tail = head == NULL ? NULL : PySequence_Tuple(args);
        full = tail == NULL ? NULL : PySequence_Concat(head, tail);
        result = full == NULL ? NULL : PyObject_Call(run, full, NULL);
        Py_XDECREF(run);
        Py_XDECREF(head);
        Py_XDECREF(tail);
        Py_XDECREF(full);
    } else if (PyContext_Enter(context) == 0) {
        PyObject *tuple = PyTuple_Check(args) ? Py_NewRef(args) : PySequence_Tuple(args);
        result = tuple == NULL ? NULL : PyObject_Call(callback, tuple, NULL);
        Py_XDECREF(tuple);
        if (PyContext_Exit(context) < 0) Py_CLEAR(result);
    }
    if (result != NULL) {
        Py_SETREF(result, Py_NewRef(Py_None));
    } else if (!PyErr_ExceptionMatches(PyExc_SystemExit) && !PyErr_ExceptionMatches(PyExc_KeyboardInterrupt)) {
        PyObject *exc = fetch_exception(); /* except BaseException as exc: report(handle, exc) */
        PyObject *outer = PyErr_GetHandledException();
        PyErr_SetHandledException(exc); /* handled, as inside the except block */
        result = report(handle, exc);
        PyErr_SetHandledException(outer);
        Py_XDECREF(outer);
        Py_DECREF(exc);
        if (result != NULL) Py_SETREF(result, Py_NewRef(Py_None));
    }
out:
    Py_XDECREF(context);
    Py_XDECREF(callback);
    Py_XDECREF(args);
    return result;
}

/* -- the message path: network.Network.transmit and _deliver, trace.Trace.recorder, copy_body ------ *
 *
 * The fast paths only, for what nearly every message takes: a known link, up to date, that is
 * plain (transmit) or on its fast path (deliver), a message type already traced on it. Anything
 * else calls the Python reference (Network.transmit, Network._deliver), which stays the whole
 * behaviour. The Python objects stay as they are: their __slots__ are read and written at the
 * offsets their member descriptors give, found once, when a MessagePath is made.
 */

static void slot_set(PyObject *obj, Py_ssize_t off, PyObject *value) { /* steals value */
    PyObject *old = SLOT(obj, off);
    SLOT(obj, off) = value;
    Py_XDECREF(old);
}

static Py_ssize_t slot_offset(PyObject *type, const char *name) { /* the offset of a __slots__ entry, or -1 */
    PyObject *descr = PyObject_GetAttrString(type, name);
    if (descr == NULL) return -1;
    Py_ssize_t offset = -1;
    if (!Py_IS_TYPE(descr, &PyMemberDescr_Type) || ((PyMemberDescrObject *)descr)->d_member->type != Py_T_OBJECT_EX ||
        !PyType_Check(type) || !PyType_IsSubtype((PyTypeObject *)type, PyDescr_TYPE(descr))) /* not another class's, borrowed */
        PyErr_Format(PyExc_TypeError, "%R.%s is not a __slots__ entry", type, name);
    else
        offset = ((PyMemberDescrObject *)descr)->d_member->offset;
    Py_DECREF(descr);
    return offset;
}

static int offsets(PyObject *type, const char *const *names, Py_ssize_t *out, int n) {
    if (!PyType_Check(type)) {
        PyErr_Format(PyExc_TypeError, "expected a class, got %R", type);
        return -1;
    }
    for (int i = 0; i < n; i++)
        if ((out[i] = slot_offset(type, names[i])) < 0) return -1;
    return 0;
}

static int same_int(PyObject *a, PyObject *b) { /* a == b for two ints (1), else 0; -1 on error */
    if (a == b) return 1;
    if (PyLong_CheckExact(a) && PyLong_CheckExact(b)) {
        int oa, ob;
        long long x = PyLong_AsLongLongAndOverflow(a, &oa), y = PyLong_AsLongLongAndOverflow(b, &ob);
        if (!oa && !ob) return x == y;
    }
    return PyObject_RichCompareBool(a, b, Py_EQ);
}

static PyObject *plus_one(PyObject *n) { /* n + 1 */
    if (PyLong_CheckExact(n)) {
        int overflow;
        long long x = PyLong_AsLongLongAndOverflow(n, &overflow);
        if (!overflow && x < LLONG_MAX) return PyLong_FromLongLong(x + 1);
    }
    return PyNumber_Add(n, s_one);
}

/* TraceBuffer: trace.Trace's lines not yet hashed, as the UTF-8 bytes the digest reads, each ended by a newline
 * (what "\n".join(lines + [""]).encode() gives, without a str per line). When it holds `limit` bytes or more it
 * calls `flush` (Trace._flush), which hashes take(). */

typedef struct {
    PyObject_HEAD
    char *data;
    Py_ssize_t len, cap, lines, limit;
    PyObject *flush;
} TraceBuffer;

static PyTypeObject TraceBufferType;

static char *buffer_room(TraceBuffer *self, Py_ssize_t n) { /* where n more bytes go (the caller adds n to len) */
    if (n > PY_SSIZE_T_MAX - self->len) return (char *)PyErr_NoMemory();
    if (self->len + n > self->cap) {
        Py_ssize_t cap = self->cap < 256 ? 256 : self->cap;
        while (cap < self->len + n) cap = cap > PY_SSIZE_T_MAX / 2 ? self->len + n : cap * 2;
        char *data = PyMem_Realloc(self->data, cap);
        if (data == NULL) return (char *)PyErr_NoMemory();
        self->data = data;
        self->cap = cap;
    }
    return self->data + self->len;
}

static int buffer_line_done(TraceBuffer *self) { /* one line more: flush if full */
    self->lines++;
    return self->len >= self->limit ? discard(PyObject_CallNoArgs(self->flush)) : 0;
}

static int buffer_add(TraceBuffer *self, const char *head, Py_ssize_t head_n, const char *tail, Py_ssize_t tail_n) {
    char *at = buffer_room(self, head_n + tail_n + 1);
    if (at == NULL) return -1;
    memcpy(at, head, head_n);
    memcpy(at + head_n, tail, tail_n);
    at[head_n + tail_n] = '\n';
    self->len += head_n + tail_n + 1;
    return buffer_line_done(self);
}

static PyObject *TraceBuffer_add(TraceBuffer *self, PyObject *line) { /* add(line): one record's line */
    Py_ssize_t n;
    const char *text = PyUnicode_Check(line) ? PyUnicode_AsUTF8AndSize(line, &n) : NULL;
    if (text == NULL) return PyErr_Occurred() ? NULL : PyErr_Format(PyExc_TypeError, "add() takes a str line");
    if (buffer_add(self, text, n, "", 0) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *TraceBuffer_take(TraceBuffer *self, PyObject *unused) { /* the bytes so far, and empty */
    PyObject *out = PyBytes_FromStringAndSize(self->data, self->len);
    if (out != NULL) self->len = self->lines = 0;
    return out;
}

static PyObject *TraceBuffer_clear(TraceBuffer *self, PyObject *unused) {
    self->len = self->lines = 0;
    Py_RETURN_NONE;
}

static PyObject *TraceBuffer_tp_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    static char *names[] = {"flush", "limit", NULL};
    PyObject *flush;
    Py_ssize_t limit;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "On:TraceBuffer", names, &flush, &limit)) return NULL;
    if (!PyCallable_Check(flush) || limit < 1)
        return PyErr_Format(PyExc_ValueError, "TraceBuffer(flush, limit) takes a callable and a limit >= 1");
    TraceBuffer *self = PyObject_GC_New(TraceBuffer, type);
    if (self == NULL) return NULL;
    self->data = NULL;
    self->len = self->cap = self->lines = 0;
    self->limit = limit;
    self->flush = Py_NewRef(flush);
    PyObject_GC_Track(self);
    return (PyObject *)self;
}

static int TraceBuffer_traverse(TraceBuffer *self, visitproc visit, void *arg) {
    Py_VISIT(self->flush);
    return 0;
}

static int TraceBuffer_clear_refs(TraceBuffer *self) {
    Py_CLEAR(self->flush);
    return 0;
}

static void TraceBuffer_dealloc(TraceBuffer *self) {
    PyObject_GC_UnTrack(self);
    TraceBuffer_clear_refs(self);
    PyMem_Free(self->data);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMemberDef TraceBuffer_members[] = {
    {"lines", Py_T_PYSSIZET, offsetof(TraceBuffer, lines), Py_READONLY, "lines added and not yet taken"},
    {"size", Py_T_PYSSIZET, offsetof(TraceBuffer, len), Py_READONLY, "bytes held: those lines, each with its newline"},
    {"limit", Py_T_PYSSIZET, offsetof(TraceBuffer, limit), Py_READONLY, "flush when this many bytes are held"},
    {NULL},
};

static PyMethodDef TraceBuffer_methods[] = {
    {"add", (PyCFunction)TraceBuffer_add, METH_O, "add(line): one line (a str, without its newline)"},
    {"take", (PyCFunction)TraceBuffer_take, METH_NOARGS, "take() -> bytes: every line held, each with its newline; empties it"},
    {"clear", (PyCFunction)TraceBuffer_clear, METH_NOARGS, "clear(): drop the lines held"},
    {NULL},
};

static PyTypeObject TraceBufferType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "emulator._speedups.TraceBuffer",
    .tp_doc = "TraceBuffer(flush, limit): trace.Trace's lines not yet hashed, as UTF-8 bytes.",
    .tp_basicsize = sizeof(TraceBuffer),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = TraceBuffer_tp_new,
    .tp_dealloc = (destructor)TraceBuffer_dealloc,
    .tp_traverse = (traverseproc)TraceBuffer_traverse,
    .tp_clear = (inquiry)TraceBuffer_clear_refs,
    .tp_members = TraceBuffer_members,
    .tp_methods = TraceBuffer_methods,
};

/* Recorder: trace.Trace.recorder's record(time_ns), compiled: "(" + str(time_ns) + tail into the trace's buffer. */

typedef struct {
    PyObject_HEAD
    TraceBuffer *buffer;
    PyObject *tail, *keep, *kind, *fields; /* tail: the rest of the line after the time, as UTF-8 bytes, no newline */
    vectorcallfunc vectorcall;
} Recorder;

static PyTypeObject RecorderType;
static PyTypeObject DispatchType;

static int recorder_append(Recorder *self, PyObject *time_ns) {
    const char *tail = PyBytes_AS_STRING(self->tail);
    Py_ssize_t tail_n = PyBytes_GET_SIZE(self->tail);
    long long t = 0;
    int overflow = 1, err;
    if (PyLong_CheckExact(time_ns) && (t = PyLong_AsLongLongAndOverflow(time_ns, &overflow)) == -1 && PyErr_Occurred())
        return -1;
    if (!overflow) { /* an int: "(" and its digits, as str() writes them (without printf's machinery) */
        char head[24], *at = head + sizeof head;
        unsigned long long u = t < 0 ? 0ULL - (unsigned long long)t : (unsigned long long)t;
        do {
            *--at = (char)('0' + u % 10);
            u /= 10;
        } while (u);
        if (t < 0) *--at = '-';
        *--at = '(';
        err = buffer_add(self->buffer, at, head + sizeof head - at, tail, tail_n);
    } else { /* an int subclass, a big int or anything else: as the f-string formats it */
        PyObject *text = PyObject_Format(time_ns, NULL), *head = text ? PyUnicode_FromFormat("(%U", text) : NULL;
        Py_ssize_t n;
        const char *bytes = head ? PyUnicode_AsUTF8AndSize(head, &n) : NULL;
        err = bytes == NULL ? -1 : buffer_add(self->buffer, bytes, n, tail, tail_n);
        Py_XDECREF(head);
        Py_XDECREF(text);
    }
    if (err < 0) return -1;
    if (self->keep != Py_None) {
        Py_ssize_t n = PyTuple_GET_SIZE(self->fields);
        PyObject *event = PyTuple_New(n + 2);
        if (event == NULL) return -1;
        PyTuple_SET_ITEM(event, 0, Py_NewRef(time_ns));
        PyTuple_SET_ITEM(event, 1, Py_NewRef(self->kind));
        for (Py_ssize_t i = 0; i < n; i++) PyTuple_SET_ITEM(event, i + 2, Py_NewRef(PyTuple_GET_ITEM(self->fields, i)));
        err = discard(PyObject_CallOneArg(self->keep, event));
        Py_DECREF(event);
    }
    return err;
}

static PyObject *Recorder_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    if (PyVectorcall_NARGS(nargsf) != 1 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames)))
        return PyErr_Format(PyExc_TypeError, "record() takes one argument, time_ns");
    if (recorder_append((Recorder *)self, args[0]) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *Recorder_tp_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    static char *names[] = {"buffer", "tail", "keep", "kind", "fields", NULL};
    PyObject *buffer, *tail, *keep, *kind, *fields;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!SOOO!:Recorder", names, &TraceBufferType, &buffer, &tail, &keep,
                                     &kind, &PyTuple_Type, &fields))
        return NULL;
    Recorder *self = PyObject_GC_New(Recorder, type);
    if (self == NULL) return NULL;
    self->buffer = (TraceBuffer *)Py_NewRef(buffer);
    self->tail = Py_NewRef(tail);
    self->keep = Py_NewRef(keep);
    self->kind = Py_NewRef(kind);
    self->fields = Py_NewRef(fields);
    self->vectorcall = Recorder_vectorcall;
    PyObject_GC_Track(self);
    return (PyObject *)self;
}

static int Recorder_traverse(Recorder *self, visitproc visit, void *arg) {
    Py_VISIT(self->buffer);
    Py_VISIT(self->tail);
    Py_VISIT(self->keep);
    Py_VISIT(self->kind);
    Py_VISIT(self->fields);
    return 0;
}

static int Recorder_clear(Recorder *self) {
    Py_CLEAR(self->buffer);
    Py_CLEAR(self->tail);
    Py_CLEAR(self->keep);
    Py_CLEAR(self->kind);
    Py_CLEAR(self->fields);
    return 0;
}

static void Recorder_dealloc(Recorder *self) {
    PyObject_GC_UnTrack(self);
    Recorder_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject RecorderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "emulator._speedups.Recorder",
    .tp_doc = "Recorder(buffer, tail, keep, kind, fields): trace.Trace.recorder's record, compiled.",
    .tp_basicsize = sizeof(Recorder),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_vectorcall_offset = offsetof(Recorder, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_new = Recorder_tp_new,
    .tp_dealloc = (destructor)Recorder_dealloc,
    .tp_traverse = (traverseproc)Recorder_traverse,
    .tp_clear = (inquiry)Recorder_clear,
};

/* UniformNs: distributions.Uniform.ns_sampler's lambda, round((low + span * draw()) * NS), compiled. */

typedef struct {
    PyObject_HEAD
    double low, span;
    PyObject *draw;
    PyCFunction method; /* draw's C function and its object when draw is a bound C method taking no arguments */
    PyObject *method_self; /* (random.Random.random): called directly, without loading the bound method */
    vectorcallfunc vectorcall;
} UniformNs;

static PyObject *uniform_draw(UniformNs *self) {
    PyObject *u = self->method != NULL ? self->method(self->method_self, NULL) : PyObject_CallNoArgs(self->draw);
    if (u == NULL) return NULL;
    double x = PyFloat_AsDouble(u);
    Py_DECREF(u);
    if (x == -1.0 && PyErr_Occurred()) return NULL;
    return round_ns(self->low + self->span * x);
}

static PyObject *UniformNs_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    if (PyVectorcall_NARGS(nargsf) != 0 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames)))
        return PyErr_Format(PyExc_TypeError, "a latency sampler takes no arguments");
    return uniform_draw((UniformNs *)self);
}

static PyObject *UniformNs_tp_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    static char *names[] = {"low", "span", "draw", NULL};
    double low, span;
    PyObject *draw;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "ddO:UniformNs", names, &low, &span, &draw)) return NULL;
    UniformNs *self = PyObject_GC_New(UniformNs, type);
    if (self == NULL) return NULL;
    self->low = low;
    self->span = span;
    self->draw = Py_NewRef(draw);
    self->method = NULL; /* a bound builtin method taking no arguments is called as its vectorcall would */
    self->method_self = NULL;
    if (PyCFunction_CheckExact(draw) &&
        (PyCFunction_GET_FLAGS(draw) & (METH_VARARGS | METH_FASTCALL | METH_NOARGS | METH_O | METH_KEYWORDS)) == METH_NOARGS && PyCFunction_GET_SELF(draw) != NULL) {
        self->method = PyCFunction_GET_FUNCTION(draw);
        self->method_self = PyCFunction_GET_SELF(draw); /* borrowed: draw holds it */
    }
    self->vectorcall = UniformNs_vectorcall;
    PyObject_GC_Track(self);
    return (PyObject *)self;
}

static int UniformNs_traverse(UniformNs *self, visitproc visit, void *arg) {
    Py_VISIT(self->draw);
    return 0;
}

static int UniformNs_clear(UniformNs *self) {
    self->method = NULL; /* method_self is draw's */
    self->method_self = NULL;
    Py_CLEAR(self->draw);
    return 0;
}

static void UniformNs_dealloc(UniformNs *self) {
    PyObject_GC_UnTrack(self);
    UniformNs_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject UniformNsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "emulator._speedups.UniformNs",
    .tp_doc = "UniformNs(low, span, draw)(): round((low + span * draw()) * 1e9), Uniform.ns_sampler's, compiled.",
    .tp_basicsize = sizeof(UniformNs),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_vectorcall_offset = offsetof(UniformNs, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_new = UniformNs_tp_new,
    .tp_dealloc = (destructor)UniformNs_dealloc,
    .tp_traverse = (traverseproc)UniformNs_traverse,
    .tp_clear = (inquiry)UniformNs_clear,
};

/* copy_body(reference, copy_value, body): message.copy_body's common case; the reference for the rest. */

static PyObject *copy_body(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) return PyErr_Format(PyExc_TypeError, "copy_body(reference, copy_value, body)");
    PyObject *reference = args[0], *copy_value = args[1], *body = args[2];
    if (!PyDict_CheckExact(body)) return PyObject_CallOneArg(reference, body); /* it raises MessageError */
    PyObject *out = PyDict_Copy(body), *key, *value;
    if (out == NULL) return NULL;
    Py_ssize_t pos = 0;
    while (PyDict_Next(out, &pos, &key, &value)) {
        if (!PyUnicode_CheckExact(key)) goto reference;
        if (PyUnicode_CheckExact(value) || PyLong_CheckExact(value) || PyBool_Check(value) || value == Py_None) continue;
        PyObject *pair[2] = {value, key}, *copied = PyObject_Vectorcall(copy_value, pair, 2, NULL);
        if (copied == NULL) goto fail;
        /* replacing the value of a key being iterated keeps the dict's size and order */
        int err = PyDict_SetItem(out, key, copied);
        Py_DECREF(copied);
        if (err < 0) goto fail;
    }
    PyObject *kind = PyDict_GetItemWithError(out, s_type);
    if (kind != NULL && PyUnicode_CheckExact(kind) && PyUnicode_GET_LENGTH(kind) > 0) return out;
    if (PyErr_Occurred()) goto fail;
reference: /* not a valid body: the reference raises its error */
    Py_DECREF(out);
    return PyObject_CallOneArg(reference, body);
fail:
    Py_DECREF(out);
    return NULL;
}

/* MessagePath(network, loop, Link, Message, transmit, deliver): network.transmit and _deliver_cb, compiled. */

enum { N_VERSION, N_SENT, N_DELIVERED, N_TRACE_BODIES, N_COUNT };
enum { L_SRC, L_VERSION, L_PLAIN, L_FAST_PATH, L_ENDPOINT, L_CONSTANT_NS, L_DELAY_NS, L_LAST_NS, L_RECORDERS, L_DELIVER,
       L_DELIVER_KIND, L_DELIVER_RECORD, L_COUNT };
enum { M_SRC, M_DEST, M_BODY, M_LINK, M_TO, M_AT, M_COUNT };
static const char *const network_slots[] = {"_version", "sent", "delivered", "trace_bodies"};
static const char *const link_slots[] = {"src",      "_version",  "_plain",   "fast_path",    "_endpoint",     "_constant_ns",
                                         "_delay_ns", "_last_ns", "recorders", "deliver", "deliver_kind", "deliver_record"};
static const char *const message_slots[] = {"src", "dest", "body", "_link", "_to", "_at"};

typedef struct {
    PyObject_HEAD
    PyObject *network, *loop, *link_type, *message_type, *transmit, *deliver, *deliver_cb;
    Py_ssize_t n[N_COUNT], l[L_COUNT], m[M_COUNT];
    PyObject *route_types[2]; /* the senders' classes last seen, with the offset of their routes slot (0: none) */
    Py_ssize_t route_offsets[2];
    Py_ssize_t last_offsets[2][2]; /* and of their route_dest and route_link slots: the route used last (0: none) */
    Py_ssize_t name_offsets[2]; /* and of their name slot (0: none): a message's src, in a line the send loads anyway */
    Py_ssize_t message_size, link_size; /* their instances' sizes, for the hints of deliveries to come (ahead) */
} Path;

static PyTypeObject PathType;

#define NET(self, i) SLOT((self)->network, (self)->n[i])
#define LINK(self, link, i) SLOT(link, (self)->l[i])
#define MSG(self, msg, i) SLOT(msg, (self)->m[i])

static int path_current(Path *self, PyObject *link) { /* the link's cached state is current: 1, 0, -1 */
    PyObject *mine = LINK(self, link, L_VERSION), *now = NET(self, N_VERSION);
    return mine == NULL || now == NULL ? 0 : same_int(mine, now);
}

static int route_class(Path *self, PyObject *endpoint) { /* the index of endpoint's class in the cache, or -1 */
    PyObject *type = (PyObject *)Py_TYPE(endpoint);
    int i = type == self->route_types[0] ? 0 : type == self->route_types[1] ? 1 : -1;
    if (i < 0) { /* a class not seen lately: find its slots, in place of the older of the two */
        Py_ssize_t offset = slot_offset(type, "routes"), dest, link, name = slot_offset(type, "name");
        if (name < 0) {
            PyErr_Clear();
            name = 0;
        }
        if (offset < 0) {
            PyErr_Clear(); /* not a slot (a host's endpoint keeps it in its __dict__): look it up by name */
            offset = 0;
        }
        if ((dest = slot_offset(type, "route_dest")) < 0 || (link = slot_offset(type, "route_link")) < 0) {
            PyErr_Clear(); /* no slots for the route used last: the dict every time */
            dest = link = 0;
        }
        Py_XSETREF(self->route_types[1], self->route_types[0]);
        self->route_offsets[1] = self->route_offsets[0];
        self->last_offsets[1][0] = self->last_offsets[0][0];
        self->last_offsets[1][1] = self->last_offsets[0][1];
        self->name_offsets[1] = self->name_offsets[0];
        self->route_types[0] = Py_NewRef(type);
        self->route_offsets[0] = offset;
        self->last_offsets[0][0] = dest;
        self->last_offsets[0][1] = link;
        self->name_offsets[0] = name;
        i = 0;
    }
    return i;
}

static PyObject *route_of(Path *self, PyObject *endpoint, PyObject *dest, PyObject **name) {
    /* endpoint.routes.get(dest), borrowed; the route used last is kept beside routes, in the endpoint's own slots
     * (held, so a new string at the old one's address cannot match): a sender's next message most often goes where
     * its last went, and a slot it loads anyway costs no dict. NULL: none (or an error, set). *name: the endpoint's
     * name slot (borrowed; NULL: none), which is its links' src: the network makes its routes' links from it. */
    int i = route_class(self, endpoint);
    *name = self->name_offsets[i] ? SLOT(endpoint, self->name_offsets[i]) : NULL;
    if (*name != NULL && !PyUnicode_CheckExact(*name)) *name = NULL;
    Py_ssize_t last_dest = self->last_offsets[i][0], last_link = self->last_offsets[i][1];
    if (last_dest && SLOT(endpoint, last_dest) == dest && SLOT(endpoint, last_link) != NULL)
        return SLOT(endpoint, last_link);
    PyObject *routes = self->route_offsets[i] ? Py_XNewRef(SLOT(endpoint, self->route_offsets[i])) : NULL;
    if (routes == NULL && (routes = PyObject_GetAttr(endpoint, s_routes)) == NULL) return NULL;
    PyObject *link = PyDict_CheckExact(routes) ? PyDict_GetItemWithError(routes, dest) : NULL;
    Py_DECREF(routes); /* the endpoint holds it, and the link */
    if (link != NULL && last_dest) {
        slot_set(endpoint, last_dest, Py_NewRef(dest));
        slot_set(endpoint, last_link, Py_NewRef(link));
    }
    return link;
}

static PyObject *Path_transmit(Path *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) return PyErr_Format(PyExc_TypeError, "transmit(src_endpoint, dest, body)");
    PyObject *src_endpoint = args[0], *dest = args[1], *body = args[2], *src, *link = route_of(self, src_endpoint, dest, &src);
    if (link == NULL && PyErr_Occurred()) return NULL;
    int current = link != NULL && Py_IS_TYPE(link, (PyTypeObject *)self->link_type) ? path_current(self, link) : 0;
    if (current < 0) return NULL;
    PyObject *sent = NET(self, N_SENT), *constant = current ? LINK(self, link, L_CONSTANT_NS) : NULL;
    if (!current || LINK(self, link, L_PLAIN) != Py_True || sent == NULL || constant == NULL ||
        LINK(self, link, L_LAST_NS) == NULL || LINK(self, link, L_ENDPOINT) == NULL ||
        (src == NULL && (src = LINK(self, link, L_SRC)) == NULL)) {
        PyObject *call[4] = {self->network, src_endpoint, dest, body}; /* the reference, for all of it */
        return PyObject_Vectorcall(self->transmit, call, 4, NULL);
    }
    Core *loop = (Core *)self->loop;
    if ((sent = plus_one(sent)) == NULL) return NULL;
    Py_INCREF(link); /* held: a latency sampler is Python code, and an allocation may run a finalizer */
    Py_INCREF(src);
    slot_set(self->network, self->n[N_SENT], sent);
    PyTypeObject *message_type = (PyTypeObject *)self->message_type;
    PyObject *msg = message_type->tp_alloc(message_type, 0); /* Message(...) without an __init__ frame */
    if (msg == NULL) {
        Py_DECREF(src);
        Py_DECREF(link);
        return NULL;
    }
    slot_set(msg, self->m[M_SRC], src); /* the link's src, read from the sender's line */
    slot_set(msg, self->m[M_DEST], Py_NewRef(dest));
    slot_set(msg, self->m[M_BODY], Py_NewRef(body));
    slot_set(msg, self->m[M_LINK], Py_NewRef(link));
    slot_set(msg, self->m[M_TO], Py_NewRef(LINK(self, link, L_ENDPOINT)));
    PyObject *delay, *when = NULL, *sampler = LINK(self, link, L_DELAY_NS);
    if (constant != Py_None)
        delay = Py_NewRef(constant);
    else if (sampler != NULL && Py_IS_TYPE(sampler, &UniformNsType))
        delay = uniform_draw((UniformNs *)sampler);
    else
        delay = sampler == NULL ? PyErr_Format(PyExc_AttributeError, "the link has no delay_ns") : PyObject_CallNoArgs(sampler);
    if (delay == NULL || FIELD(loop, now, "_now") == NULL || (when = PyNumber_Add(loop->now, delay)) == NULL) goto fail;
    struct hint *h = loop->recording;
    if (h != NULL && h->n <= HINTS - 14) { /* a periodic tick's send: what it read, for its next tick (run_ready) */
        const void **at = &h->at[h->n];
        *at++ = (char *)src_endpoint - 16;
        *at++ = (char *)src_endpoint + 48;
        *at++ = (char *)src_endpoint + 88;
        *at++ = dest;
        *at++ = src; /* the sender's name, which the message holds */
        *at++ = (char *)link - 16;
        *at++ = (char *)link + 48;
        *at++ = (char *)link + 112;
        *at++ = (char *)link + 168;
        *at++ = sampler;
        if (sampler != NULL && Py_IS_TYPE(sampler, &UniformNsType) && ((UniformNs *)sampler)->method_self != NULL) {
            PyObject *random = ((UniformNs *)sampler)->method_self; /* random.Random: its index, and the state it reads next */
            *at++ = random;
            if (Py_TYPE(random)->tp_basicsize >= (Py_ssize_t)(sizeof(PyObject) + 4 + 624 * 4)) {
                int index = *(int *)((char *)random + sizeof(PyObject));
                if (index >= 0 && index < 624) *at++ = (char *)random + sizeof(PyObject) + 4 + 4 * index;
            }
        }
        h->n = (int)(at - h->at);
    }
    PyObject *last = LINK(self, link, L_LAST_NS); /* a Python sampler ran: check again */
    int before = last == NULL ? (PyErr_SetString(PyExc_AttributeError, "the link has no last_ns"), -1)
                              : PyObject_RichCompareBool(when, last, Py_LT); /* FIFO: never before the link's previous message */
    if (before < 0) goto fail;
    if (before) set_field(&when, Py_NewRef(last));
    PyObject *pushed = push(loop, when, self->deliver_cb, msg);
    if (pushed == NULL) goto fail;
    Py_DECREF(pushed);
    slot_set(msg, self->m[M_AT], Py_NewRef(when));
    if (loop->recording != NULL) hint(loop, when); /* the link's last time, which the next send on it compares */
    slot_set(link, self->l[L_LAST_NS], when);
    Py_DECREF(delay);
    Py_DECREF(msg);
    Py_DECREF(link);
    Py_RETURN_NONE;
fail:
    Py_XDECREF(when);
    Py_XDECREF(delay);
    Py_DECREF(msg);
    Py_DECREF(link);
    return NULL;
}

static void arrive(Path *self, PyObject *msg);
static void ahead(Path *self);

static PyObject *deliver_one(Path *self, PyObject *msg) {
    PyObject *link = Py_IS_TYPE(msg, (PyTypeObject *)self->message_type) ? MSG(self, msg, M_LINK) : NULL;
    int current = link != NULL && Py_IS_TYPE(link, (PyTypeObject *)self->link_type) ? path_current(self, link) : 0;
    if (current < 0) return NULL;
    PyObject *record = NULL, *endpoint = NULL, *deliver = NULL, *at = NULL, *delivered = NET(self, N_DELIVERED);
    if (current) {
        PyObject *body = MSG(self, msg, M_BODY), *recorders;
        endpoint = LINK(self, link, L_ENDPOINT);
        deliver = LINK(self, link, L_DELIVER);
        at = MSG(self, msg, M_AT);
        if (LINK(self, link, L_FAST_PATH) == Py_True && endpoint != NULL && MSG(self, msg, M_TO) == endpoint &&
            deliver != NULL && deliver != Py_None &&
            NET(self, N_TRACE_BODIES) == Py_False && delivered != NULL && at != NULL && body != NULL &&
            PyDict_CheckExact(body)) {
            PyObject *kind = PyDict_GetItemWithError(body, s_type), *last = LINK(self, link, L_DELIVER_RECORD);
            if (kind != NULL && kind == LINK(self, link, L_DELIVER_KIND) && last != NULL && last != Py_None) {
                record = last; /* the type delivered last on this link (held there, so no other object has its address) */
            } else if (kind != NULL && (recorders = LINK(self, link, L_RECORDERS)) != NULL && PyDict_CheckExact(recorders) &&
                       (record = PyDict_GetItemWithError(recorders, kind)) != NULL) {
                /* the link's recorders (in a line of their own, with the dict) only when the last type is not it */
                slot_set(link, self->l[L_DELIVER_KIND], Py_NewRef(kind)); /* kept in the line the delivery loads */
                slot_set(link, self->l[L_DELIVER_RECORD], Py_NewRef(record));
            }
            if (record == NULL && PyErr_Occurred()) return NULL;
        }
    }
    if (record == NULL) { /* anything but the common case (or the first of its type on this link): the reference */
        PyObject *call[2] = {self->network, msg};
        return PyObject_Vectorcall(self->deliver, call, 2, NULL);
    }
    if ((delivered = plus_one(delivered)) == NULL) return NULL;
    slot_set(self->network, self->n[N_DELIVERED], delivered);
    Py_INCREF(record);
    Py_INCREF(deliver); /* held: the record's flush may run code */
    Py_INCREF(at);
    int err = Py_IS_TYPE(record, &RecorderType) ? recorder_append((Recorder *)record, at)
                                                : discard(PyObject_CallOneArg(record, at));
    Py_DECREF(at);
    Py_DECREF(record);
    PyObject *result = err < 0 ? NULL : PyObject_CallOneArg(deliver, msg); /* the link's endpoint.deliver */
    Py_DECREF(deliver);
    if (result == NULL) return NULL;
    Py_DECREF(result);
    Py_RETURN_NONE;
}

static PyObject *Path_deliver(Path *self, PyObject *msg) { /* Network._deliver: this delivery, and hints for the next */
    arrive(self, msg);
    PyObject *result = deliver_one(self, msg);
    ahead(self);
    return result;
}

static PyObject *Path_tp_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    static char *names[] = {"network", "loop", "link_type", "message_type", "transmit", "deliver", NULL};
    PyObject *network, *loop, *link_type, *message_type, *transmit, *deliver;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO!OOOO:MessagePath", names, &network, &CoreType, &loop, &link_type,
                                     &message_type, &transmit, &deliver))
        return NULL;
    Path *self = PyObject_GC_New(Path, type);
    if (self == NULL) return NULL;
    self->network = Py_NewRef(network);
    self->loop = Py_NewRef(loop);
    self->link_type = Py_NewRef(link_type);
    self->message_type = Py_NewRef(message_type);
    self->message_size = PyType_Check(message_type) ? ((PyTypeObject *)message_type)->tp_basicsize : 64;
    self->link_size = PyType_Check(link_type) ? ((PyTypeObject *)link_type)->tp_basicsize : 64;
    self->transmit = Py_NewRef(transmit);
    self->deliver = Py_NewRef(deliver);
    self->deliver_cb = NULL;
    self->route_types[0] = self->route_types[1] = NULL;
    self->route_offsets[0] = self->route_offsets[1] = 0;
    memset(self->last_offsets, 0, sizeof self->last_offsets);
    self->name_offsets[0] = self->name_offsets[1] = 0;
    PyObject_GC_Track(self);
    if (offsets((PyObject *)Py_TYPE(network), network_slots, self->n, N_COUNT) < 0 ||
        offsets(link_type, link_slots, self->l, L_COUNT) < 0 || offsets(message_type, message_slots, self->m, M_COUNT) < 0 ||
        (self->deliver_cb = PyObject_GetAttrString((PyObject *)self, "deliver")) == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static int Path_traverse(Path *self, visitproc visit, void *arg) {
    Py_VISIT(self->network);
    Py_VISIT(self->loop);
    Py_VISIT(self->link_type);
    Py_VISIT(self->message_type);
    Py_VISIT(self->transmit);
    Py_VISIT(self->deliver);
    Py_VISIT(self->deliver_cb);
    Py_VISIT(self->route_types[0]);
    Py_VISIT(self->route_types[1]);
    return 0;
}

static int Path_clear(Path *self) {
    Py_CLEAR(self->network);
    Py_CLEAR(self->loop);
    Py_CLEAR(self->link_type);
    Py_CLEAR(self->message_type);
    Py_CLEAR(self->transmit);
    Py_CLEAR(self->deliver);
    Py_CLEAR(self->deliver_cb);
    Py_CLEAR(self->route_types[0]);
    Py_CLEAR(self->route_types[1]);
    return 0;
}

static void Path_dealloc(Path *self) {
    PyObject_GC_UnTrack(self);
    Path_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef Path_methods[] = {
    {"transmit", (PyCFunction)(void (*)(void))Path_transmit, METH_FASTCALL, "Network.transmit, compiled."},
    {"deliver", (PyCFunction)Path_deliver, METH_O, "Network._deliver, compiled (the network's _deliver_cb)."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject PathType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "emulator._speedups.MessagePath",
    .tp_doc = "MessagePath(network, loop, link_type, message_type, transmit, deliver): a network's message path, compiled.",
    .tp_basicsize = sizeof(Path),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = Path_tp_new,
    .tp_dealloc = (destructor)Path_dealloc,
    .tp_traverse = (traverseproc)Path_traverse,
    .tp_clear = (inquiry)Path_clear,
    .tp_methods = Path_methods,
};

static void restore_exception(PyObject *value) { /* raise it again (steals it): fetch_exception's inverse */
#if PY_VERSION_HEX >= 0x030C0000
    PyErr_SetRaisedException(value);
#else
    PyErr_Restore(Py_NewRef((PyObject *)Py_TYPE(value)), value, PyException_GetTraceback(value));
#endif
}

/* Dispatch(endpoint, reference, message_type, task_type, enter_task, leave_task, context): node.Endpoint._deliver_here,
 * compiled, for a message its handler takes (reference: the bound method, for replies and unknown types). */

enum { E_HANDLERS, E_DONE_CB, E_LOOP, E_COUNT };
enum { T_HOST, T_CORO, T_NAME, T_ON_DONE, T_ARG, T_COUNT };
static const char *const endpoint_slots[] = {"_handlers", "_handler_done_cb", "loop"};
static const char *const task_slots[] = {"_host", "_coro", "_name", "_on_done", "_arg"};
static const char *const body_slot[] = {"body"};

/* What is the same for every endpoint of a class: the types, the task hooks and the slot offsets. Dispatches
 * share one (reference counted), so a message's dispatch loads a small Dispatch and a shape that stays hot. */
typedef struct Shape {
    Py_ssize_t refs;
    PyObject *endpoint_type, *message_type, *task_type, *enter, *leave; /* strong */
    Py_ssize_t e[E_COUNT], t[T_COUNT], body;
} Shape;

static Shape *last_shape = NULL; /* the shape made last (one reference): the next Dispatch most likely shares it */

static void shape_release(Shape *shape) {
    if (shape == NULL || --shape->refs > 0) return;
    Py_XDECREF(shape->endpoint_type);
    Py_XDECREF(shape->message_type);
    Py_XDECREF(shape->task_type);
    Py_XDECREF(shape->enter);
    Py_XDECREF(shape->leave);
    PyMem_Free(shape);
}

static Shape *shape_of(PyObject *endpoint_type, PyObject *message_type, PyObject *task_type, PyObject *enter,
                       PyObject *leave) { /* a new reference */
    Shape *shape = last_shape;
    if (shape != NULL && shape->endpoint_type == endpoint_type && shape->message_type == message_type &&
        shape->task_type == task_type && shape->enter == enter && shape->leave == leave) {
        shape->refs++;
        return shape;
    }
    if ((shape = PyMem_Calloc(1, sizeof(Shape))) == NULL) return (Shape *)PyErr_NoMemory();
    shape->refs = 1;
    shape->endpoint_type = Py_NewRef(endpoint_type);
    shape->message_type = Py_NewRef(message_type);
    shape->task_type = Py_NewRef(task_type);
    shape->enter = Py_NewRef(enter);
    shape->leave = Py_NewRef(leave);
    if (offsets(endpoint_type, endpoint_slots, shape->e, E_COUNT) < 0 || offsets(task_type, task_slots, shape->t, T_COUNT) < 0 ||
        offsets(message_type, body_slot, &shape->body, 1) < 0) {
        shape_release(shape);
        return NULL;
    }
    shape->refs++; /* the cache's */
    Shape *old = last_shape;
    last_shape = shape;
    shape_release(old);
    return shape;
}

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *endpoint, *context;
    /* The handler last looked up, for the kind and the handlers dict it came from (held, so neither can be a
     * new object at the same address): its function and self when it is a bound method, else itself and NULL. */
    PyObject *handlers, *kind, *function, *function_self;
    Shape *shape;
    PyObject *reference;
    PyObject *loop; /* the endpoint's loop, which it never changes: read here, not in another line of the endpoint */
} Dispatch;

static PyObject *first_step(Dispatch *self, PyObject *msg, PyObject *task) { /* coro.send(None) and what follows */
    PyObject *coro = SLOT(task, self->shape->t[T_CORO]), *result = NULL;
    PySendResult sent;
    if (PyCoro_CheckExact(coro)) {
        sent = PyIter_Send(coro, Py_None, &result);
    } else { /* anything else: coro.send(None), as Python calls it */
        result = call_method1(coro, s_send, Py_None);
        sent = result != NULL ? PYGEN_NEXT : PYGEN_ERROR;
        if (result == NULL && PyErr_ExceptionMatches(PyExc_StopIteration)) {
            PyObject *stop = fetch_exception();
            result = PyObject_GetAttrString(stop, "value");
            Py_DECREF(stop);
            if (result == NULL) return NULL;
            sent = PYGEN_RETURN;
        }
    }
    if (sent == PYGEN_RETURN) { /* done in its first step, as most handlers are */
        int err = PyObject_SetAttr(task, s_done_attr, Py_True);
        if (err == 0 && result != Py_None) { /* a None result needs no reply: skip the call */
            PyObject *args[3] = {msg, result, Py_None}, *done = SLOT(self->endpoint, self->shape->e[E_DONE_CB]);
            err = done == NULL ? (PyErr_SetString(PyExc_AttributeError, "the endpoint has no _handler_done_cb"), -1)
                               : discard(PyObject_Vectorcall(done, args, 3, NULL));
        }
        Py_DECREF(result);
        return err < 0 ? NULL : Py_NewRef(Py_None);
    }
    if (sent == PYGEN_NEXT) {
        PyObject *r = call_method1(task, s_suspend, result);
        Py_DECREF(result);
        return r;
    }
    PyObject *error = fetch_exception(), *args[3] = {task, Py_None, Py_None};
    int fatal = PyErr_GivenExceptionMatches(error, PyExc_KeyboardInterrupt) ||
                PyErr_GivenExceptionMatches(error, PyExc_SystemExit);
    if (!fatal) args[2] = error;
    PyObject *r = PyObject_VectorcallMethod(s_finish, args, 3 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    if (r == NULL || !fatal) {
        Py_DECREF(error);
        return r;
    }
    Py_DECREF(r);
    restore_exception(error); /* KeyboardInterrupt and SystemExit go on up */
    return NULL;
}

static void cache_handler(Dispatch *self, PyObject *handlers, PyObject *kind, PyObject *handler) {
    Py_INCREF(handler); /* borrowed from the dict, which the cache may be releasing */
    Py_XSETREF(self->handlers, Py_NewRef(handlers));
    Py_XSETREF(self->kind, Py_NewRef(kind));
    if (PyMethod_Check(handler)) { /* a bound method: called as its vectorcall calls it, not loaded per message */
        Py_XSETREF(self->function, Py_NewRef(PyMethod_GET_FUNCTION(handler)));
        Py_XSETREF(self->function_self, Py_NewRef(PyMethod_GET_SELF(handler)));
    } else {
        Py_XSETREF(self->function, Py_NewRef(handler));
        Py_CLEAR(self->function_self);
    }
    Py_DECREF(handler);
}

static PyObject *handler_call(Dispatch *self, PyObject *msg) { /* the cached handler(msg) */
    PyObject *function = Py_NewRef(self->function), *function_self = Py_XNewRef(self->function_self), *result;
    if (function_self != NULL) {
        PyObject *args[2] = {function_self, msg};
        result = PyObject_Vectorcall(function, args, 2, NULL);
    } else {
        result = PyObject_CallOneArg(function, msg);
    }
    Py_DECREF(function);
    Py_XDECREF(function_self);
    return result;
}

static PyObject *dispatch(Dispatch *self, PyObject *msg) {
    Shape *shape = self->shape;
    PyObject *endpoint = self->endpoint, *handlers = SLOT(endpoint, shape->e[E_HANDLERS]);
    PyObject *body = Py_IS_TYPE(msg, (PyTypeObject *)shape->message_type) ? SLOT(msg, shape->body) : NULL, *kind = NULL;
    if (body != NULL && PyDict_CheckExact(body) && handlers != NULL && PyDict_CheckExact(handlers) &&
        SLOT(endpoint, shape->e[E_DONE_CB]) != NULL && self->loop != NULL) {
        PyObject *in_reply_to = PyDict_GetItemWithError(body, s_in_reply_to);
        if (in_reply_to == NULL || !PyLong_CheckExact(in_reply_to)) /* not a reply (ids are ints) */
            kind = PyErr_Occurred() ? NULL : PyDict_GetItemWithError(body, s_type);
        if (PyErr_Occurred()) return NULL;
    }
    if (kind != NULL && (handlers != self->handlers || kind != self->kind || self->function == NULL)) {
        PyObject *handler = PyDict_GetItemWithError(handlers, kind); /* not the handler last looked up */
        if (handler == NULL && PyErr_Occurred()) return NULL;
        if (handler != NULL)
            cache_handler(self, handlers, kind, handler);
        else
            kind = NULL;
    }
    if (kind == NULL) return PyObject_CallOneArg(self->reference, msg); /* a reply, no handler, or odd */
    Py_INCREF(kind);
    PyObject *coro = handler_call(self, msg);
    if (coro == NULL) {
        Py_DECREF(kind);
        return NULL;
    }
    PyTypeObject *task_type = (PyTypeObject *)shape->task_type;
    PyObject *task = task_type->tp_alloc(task_type, 0); /* a HandlerTask, built without __init__ (HandlerTask.start) */
    if (task == NULL) {
        Py_DECREF(kind);
        Py_DECREF(coro);
        return NULL;
    }
    slot_set(task, shape->t[T_HOST], Py_NewRef(endpoint));
    slot_set(task, shape->t[T_CORO], coro);
    slot_set(task, shape->t[T_NAME], kind);
    slot_set(task, shape->t[T_ON_DONE], Py_NewRef(SLOT(endpoint, shape->e[E_DONE_CB])));
    slot_set(task, shape->t[T_ARG], Py_NewRef(msg));
    PyObject *loop = Py_NewRef(self->loop), *pair[2] = {loop, task}, *result = NULL;
    PyObject *entered = PyObject_Vectorcall(shape->enter, pair, 2, NULL);
    if (entered != NULL) {
        Py_DECREF(entered);
        result = first_step(self, msg, task);
        PyObject *pending = result == NULL ? fetch_exception() : NULL; /* finally: */
        PyObject *left = PyObject_Vectorcall(shape->leave, pair, 2, NULL);
        if (left == NULL) { /* an error in the finally replaces the one before, as in Python */
            Py_XDECREF(pending);
            Py_CLEAR(result);
        } else {
            Py_DECREF(left);
            if (pending != NULL) restore_exception(pending);
        }
    }
    Py_DECREF(loop);
    Py_DECREF(task);
    return result;
}

static PyObject *Dispatch_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    if (PyVectorcall_NARGS(nargsf) != 1 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames)))
        return PyErr_Format(PyExc_TypeError, "deliver() takes one argument, the message");
    PyObject *context = ((Dispatch *)self)->context; /* context.run(dispatch, msg), without a partial or a call */
    if (PyContext_Enter(context) < 0) return NULL;   /* RuntimeError if it is already entered, as context.run */
    Py_INCREF(context);
    PyObject *result = dispatch((Dispatch *)self, args[0]);
    if (PyContext_Exit(context) < 0) Py_CLEAR(result);
    Py_DECREF(context);
    return result;
}

/* -- hints for the deliveries to come ------------------------------------------------------------------
 * A delivery reads some fifteen objects (its heap entry, message, link, body, recorder, dispatch, the
 * receiver's endpoint, context and node), each found through the one before. With thousands of nodes
 * they are out of the caches, and each load waits for memory in turn. The heap says which deliveries
 * come next, so each delivery, when it is done, hints the lines the next five will read, one level of
 * pointers further for each: the fifth's entry, the fourth's message, the third's link, body and names, the
 * second's recorder and dispatch, the next's context, node and trace tail. A prefetch is only a hint:
 * it cannot fault and changes no state, so a run is the same with or without them; a guess that turns
 * out wrong (a push ahead of them) costs a few wasted lines. The reads here touch only lines hinted a
 * delivery earlier, so they wait for little. */

enum { AHEAD = 5 };

static inline void prefetch_span(const void *p, Py_ssize_t before, Py_ssize_t size) {
    if (p == NULL) return;
    const char *c = (const char *)p - before, *end = (const char *)p + size;
    for (; c < end; c += 64) __builtin_prefetch(c, 1, 3);
    __builtin_prefetch(end - 1, 1, 3);
    __asm__ __volatile__(""); /* GCC counts a prefetch as no effect, and drops a function of only prefetches */
}

static int next_entries(Core *core, PyObject *timers, PyObject **out) { /* the heap's AHEAD first entries, in order */
    Py_ssize_t n = PyList_GET_SIZE(timers), frontier[AHEAD + 2];
    if (core->keys_of != timers || core->nkeys != n || n == 0) return 0; /* not keyed: no order known cheaply */
    const Key *keys = core->keys; /* pop the heap without changing it: the least of a frontier, which its children join */
    PyObject **items = ((PyListObject *)timers)->ob_item;
    int found = 0, size = 1;
    frontier[0] = 0;
    for (;;) {
        int least = 0;
        for (int j = 1; j < size; j++) {
            const Key *a = &keys[frontier[j]], *b = &keys[frontier[least]];
            least = a->when < b->when || (a->when == b->when && a->seq < b->seq) ? j : least;
        }
        Py_ssize_t i = frontier[least], child = 2 * i + 1;
        out[found++] = items[i];
        if (found == AHEAD) return found;
        frontier[least] = frontier[--size];
        if (child < n) frontier[size++] = child;
        if (child + 1 < n) frontier[size++] = child + 1;
        if (size == 0) return found;
    }
}

static PyObject *delivery_of(Path *self, PyObject *item) { /* the message a heap entry delivers (borrowed), or NULL */
    if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) < 4 || PyTuple_GET_ITEM(item, 2) != self->deliver_cb) return NULL;
    PyObject *msg = PyTuple_GET_ITEM(item, 3);
    return Py_IS_TYPE(msg, (PyTypeObject *)self->message_type) ? msg : NULL;
}

static PyObject *link_of(Path *self, PyObject *msg) { /* borrowed, or NULL */
    PyObject *link = MSG(self, msg, M_LINK);
    return link != NULL && Py_IS_TYPE(link, (PyTypeObject *)self->link_type) ? link : NULL;
}

static Dispatch *dispatch_of(Path *self, PyObject *link) { /* the link's compiled dispatch (borrowed), or NULL */
    PyObject *deliver = LINK(self, link, L_DELIVER);
    return deliver != NULL && Py_IS_TYPE(deliver, &DispatchType) ? (Dispatch *)deliver : NULL;
}

static void ahead(Path *self) {
    Core *core = (Core *)self->loop;
    PyObject *timers = core->timers, *next[AHEAD], *msg, *link, *body, *to, *record;
    Dispatch *d;
    if (timers == NULL || !PyList_CheckExact(timers)) return;
    int found = next_entries(core, timers, next);
    if (found > 4) prefetch_span(next[4], 16, 72); /* the fifth: its entry */
    if (found > 3 && (msg = delivery_of(self, next[3])) != NULL) { /* the fourth: its message, and its entry's seq */
        prefetch_span(msg, 16, self->message_size);
        prefetch_span(PyTuple_GET_ITEM(next[3], 1), 0, 32);
    }
    if (found > 2 && (msg = delivery_of(self, next[2])) != NULL) { /* the third: its link, body, receiver, time */
        if ((link = MSG(self, msg, M_LINK)) != NULL) prefetch_span(link, 16, self->link_size);
        if ((body = MSG(self, msg, M_BODY)) != NULL) prefetch_span(body, 16, sizeof(PyDictObject));
        if ((to = MSG(self, msg, M_TO)) != NULL) prefetch_span(to, 16, 112);
        if ((to = MSG(self, msg, M_AT)) != NULL) prefetch_span(to, 0, 32);
        if ((to = MSG(self, msg, M_SRC)) != NULL) prefetch_span(to, 0, 32); /* the names, which its freeing releases */
        if ((to = MSG(self, msg, M_DEST)) != NULL) prefetch_span(to, 0, 32);
    }
    if (found > 1 && (msg = delivery_of(self, next[1])) != NULL && (link = link_of(self, msg)) != NULL) { /* the second */
        if ((record = LINK(self, link, L_DELIVER_RECORD)) != NULL) prefetch_span(record, 16, sizeof(Recorder));
        if ((to = LINK(self, link, L_DELIVER)) != NULL) prefetch_span(to, 16, sizeof(Dispatch));
        if ((body = MSG(self, msg, M_BODY)) != NULL && PyDict_CheckExact(body))
            prefetch_span(((PyDictObject *)body)->ma_keys, 0, 96);
    }
    if (found > 0 && (msg = delivery_of(self, next[0])) != NULL && (link = link_of(self, msg)) != NULL) { /* the next */
        if ((record = LINK(self, link, L_DELIVER_RECORD)) != NULL && Py_IS_TYPE(record, &RecorderType))
            prefetch_span(((Recorder *)record)->tail, 0, 48);
        if ((d = dispatch_of(self, link)) != NULL) {
            if (d->context != NULL) prefetch_span(d->context, 16, 48);
            if (d->function_self != NULL) prefetch_span(d->function_self, 32, 48);
            if (d->handlers != NULL) prefetch_span(d->handlers, 16, sizeof(PyDictObject));
        }
    }
}

static void arrive(Path *self, PyObject *msg) { /* this delivery's last level: its node's attribute values */
    PyObject *link, *node;
    Dispatch *d;
    if (Py_IS_TYPE(msg, (PyTypeObject *)self->message_type) && (link = link_of(self, msg)) != NULL &&
        (d = dispatch_of(self, link)) != NULL && (node = d->function_self) != NULL)
        prefetch_span(values_of(node), 0, 64);
}

static PyObject *Dispatch_tp_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    static char *names[] = {"endpoint", "reference", "message_type", "task_type", "enter_task", "leave_task", "context",
                            NULL};
    PyObject *endpoint, *reference, *message_type, *task_type, *enter, *leave, *context;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOOOOO!:Dispatch", names, &endpoint, &reference, &message_type,
                                     &task_type, &enter, &leave, &PyContext_Type, &context))
        return NULL;
    Shape *shape = shape_of((PyObject *)Py_TYPE(endpoint), message_type, task_type, enter, leave);
    if (shape == NULL) return NULL;
    Dispatch *self = PyObject_GC_New(Dispatch, type);
    if (self == NULL) {
        shape_release(shape);
        return NULL;
    }
    self->vectorcall = Dispatch_vectorcall;
    self->endpoint = Py_NewRef(endpoint);
    self->context = Py_NewRef(context);
    self->handlers = self->kind = self->function = self->function_self = NULL;
    self->shape = shape;
    self->reference = Py_NewRef(reference);
    self->loop = Py_XNewRef(SLOT(endpoint, shape->e[E_LOOP])); /* NULL (not set yet): every message takes the reference */
    PyObject_GC_Track(self);
    return (PyObject *)self;
}

static int Dispatch_traverse(Dispatch *self, visitproc visit, void *arg) {
    Py_VISIT(self->endpoint);
    Py_VISIT(self->context);
    Py_VISIT(self->handlers);
    Py_VISIT(self->kind);
    Py_VISIT(self->function);
    Py_VISIT(self->function_self);
    Py_VISIT(self->reference);
    Py_VISIT(self->loop);
    return 0;
}

static int Dispatch_clear(Dispatch *self) {
    Py_CLEAR(self->endpoint);
    Py_CLEAR(self->context);
    Py_CLEAR(self->handlers);
    Py_CLEAR(self->kind);
    Py_CLEAR(self->function);
    Py_CLEAR(self->function_self);
    Py_CLEAR(self->reference);
    Py_CLEAR(self->loop);
    return 0;
}

static void Dispatch_dealloc(Dispatch *self) {
    PyObject_GC_UnTrack(self);
    Dispatch_clear(self);
    shape_release(self->shape);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject DispatchType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "emulator._speedups.Dispatch",
    .tp_doc = "Dispatch(endpoint, reference, message_type, task_type, enter_task, leave_task, context)(msg): "
              "Endpoint._deliver_here, compiled.",
    .tp_basicsize = sizeof(Dispatch),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_vectorcall_offset = offsetof(Dispatch, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_new = Dispatch_tp_new,
    .tp_dealloc = (destructor)Dispatch_dealloc,
    .tp_traverse = (traverseproc)Dispatch_traverse,
    .tp_clear = (inquiry)Dispatch_clear,
};

/* -- the type and the module ------------------------------------------------------------------- */

static int Core_traverse(Core *self, visitproc visit, void *arg) {
    for (int k = 0; k < 4; k++) Py_VISIT(self->callback_types[k]);
    Py_VISIT(self->now);
    Py_VISIT(self->time);
    Py_VISIT(self->ready);
    Py_VISIT(self->timers);
    Py_VISIT(self->fifos);
    Py_VISIT(self->seq);
    Py_VISIT(self->cancelled_timers);
    Py_VISIT(self->paused);
    Py_VISIT(self->stopping);
    Py_VISIT(self->closed);
    Py_VISIT(self->debug);
    Py_VISIT(self->hooks);
    return 0;
}

static int Core_clear(Core *self) {
    for (int k = 0; k < 4; k++) Py_CLEAR(self->callback_types[k]);
    Py_CLEAR(self->now);
    Py_CLEAR(self->time);
    Py_CLEAR(self->ready);
    Py_CLEAR(self->timers);
    Py_CLEAR(self->fifos);
    Py_CLEAR(self->seq);
    Py_CLEAR(self->cancelled_timers);
    Py_CLEAR(self->paused);
    Py_CLEAR(self->stopping);
    Py_CLEAR(self->closed);
    Py_CLEAR(self->debug);
    Py_CLEAR(self->hooks);
    return 0;
}

static void Core_dealloc(Core *self) {
    PyObject_GC_UnTrack(self);
    Core_clear(self);
    PyMem_Free(self->keys);
    PyMem_Free(self->tables[0].hints);
    PyMem_Free(self->tables[1].hints);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

#define MEMBER(name, field) {name, Py_T_OBJECT_EX, offsetof(Core, field), 0, NULL}
static PyMemberDef Core_members[] = {
    MEMBER("_now", now), MEMBER("_time", time), MEMBER("_ready", ready), MEMBER("_timers", timers),
    MEMBER("_fifos", fifos), MEMBER("_seq", seq), MEMBER("_cancelled_timers", cancelled_timers),
    MEMBER("_paused", paused), MEMBER("_stopping", stopping), MEMBER("_closed", closed), MEMBER("_debug", debug),
    {NULL, 0, 0, 0, NULL},
};

#define KW (METH_FASTCALL | METH_KEYWORDS)
static PyMethodDef Core_methods[] = {
    {"_loop", (PyCFunction)(void (*)(void))Core_loop, METH_FASTCALL, "Scheduler._loop, compiled."},
    {"push_at", (PyCFunction)(void (*)(void))Core_push_at, KW, "Scheduler.push_at, compiled."},
    {"push_after", (PyCFunction)(void (*)(void))Core_push_after, KW, "Scheduler.push_after, compiled."},
    {"push_soon", (PyCFunction)(void (*)(void))Core_push_soon, KW, "Scheduler.push_soon, compiled."},
    {"call_soon", (PyCFunction)(void (*)(void))Core_call_soon, KW, "Scheduler.call_soon, compiled."},
    {"call_later", (PyCFunction)(void (*)(void))Core_call_later, KW, "Scheduler.call_later, compiled."},
    {"_heap_push", (PyCFunction)Core_heap_push, METH_O, "Scheduler._heap_push, compiled (keeps the keys)."},
    {"_heap_pop", (PyCFunction)Core_heap_pop, METH_NOARGS, "Scheduler._heap_pop, compiled (keeps the keys)."},
    {"_timers_changed", (PyCFunction)Core_timers_changed, METH_NOARGS, "Scheduler._timers_changed, compiled."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject CoreType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "emulator._speedups.Core",
    .tp_doc = "The compiled methods and slots of emulator.scheduler.Scheduler (a base of VirtualLoop).",
    .tp_basicsize = sizeof(Core),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_dealloc = (destructor)Core_dealloc,
    .tp_traverse = (traverseproc)Core_traverse,
    .tp_clear = (inquiry)Core_clear,
    .tp_members = Core_members,
    .tp_methods = Core_methods,
};

static PyMethodDef module_methods[] = {
    {"run_handle", run_handle, METH_O, "handles.run_handle, compiled: run an asyncio handle, reporting its error."},
    {"copy_body", (PyCFunction)(void (*)(void))copy_body, METH_FASTCALL,
     "copy_body(reference, copy_value, body): message.copy_body, compiled (reference raises for a bad body)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "emulator._speedups", "The compiled scheduler core of capsim (see emulator/speedups.py).",
    -1, module_methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__speedups(void) {
    struct { PyObject **slot; const char *text; } names[] = {
        {&s_popleft, "popleft"}, {&s_append, "append"}, {&s_cancelled, "_cancelled"}, {&s_pop_timer, "_pop_timer"},
        {&s_idle, "_idle"}, {&s_fifo_for, "_fifo_for"}, {&s_call_soon_checked, "_call_soon_checked"},
        {&s_call_later, "_call_later"}, {&s_hooks, "_hooks"}, {&s_context, "_context"}, {&s_loop, "_loop"},
        {&s_callback, "_callback"}, {&s_args, "_args"}, {&s_when_ns, "_when_ns"}, {&s_future, "_future"},
        {&s_result, "_result"}, {&s_owner, "owner"}, {&s_done, "done"}, {&s_stopped, "stopped"},
        {&s_not_before, "not_before"}, {&s_call_exception_handler, "call_exception_handler"},
        {&s_message, "message"}, {&s_exception, "exception"}, {&s_handle, "handle"}, {&s_set_result, "set_result"},
        {&s_timer_handle_cancelled, "_timer_handle_cancelled"}, {&s_type, "type"}, {&s_routes, "routes"},
        {&s_send, "send"}, {&s_done_attr, "_done"}, {&s_suspend, "_suspend"},
        {&s_finish, "_finish"}, {&s_in_reply_to, "in_reply_to"},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (*names[i].slot == NULL && (*names[i].slot = PyUnicode_InternFromString(names[i].text)) == NULL) return NULL;
    if ((s_ns == NULL && (s_ns = PyLong_FromLong(1000000000L)) == NULL) ||
        (s_one == NULL && (s_one = PyLong_FromLong(1)) == NULL) || (s_zero == NULL && (s_zero = PyLong_FromLong(0)) == NULL))
        return NULL;
    if (invalid_state_error == NULL) {
        PyObject *exceptions = PyImport_ImportModule("asyncio.exceptions");
        if (exceptions == NULL) return NULL;
        invalid_state_error = PyObject_GetAttrString(exceptions, "InvalidStateError");
        Py_DECREF(exceptions);
        if (invalid_state_error == NULL) return NULL;
    }
    if (asyncio_task == NULL) { /* optional: without asyncio's compiled tasks, their wakeups get no hints */
        PyObject *compiled = PyImport_ImportModule("_asyncio");
        PyObject *task = compiled ? PyObject_GetAttrString(compiled, "Task") : NULL;
        PyObject *get_coro = task && PyType_Check(task) ? PyObject_GetAttrString(task, "get_coro") : NULL;
        Py_XDECREF(compiled);
        if (get_coro == NULL) {
            PyErr_Clear();
            Py_XDECREF(task);
        } else {
            asyncio_task = (PyTypeObject *)task;
            task_get_coro = get_coro;
        }
    }
    if (PyType_Ready(&CoreType) < 0 || PyType_Ready(&SleepType) < 0 || PyType_Ready(&RecorderType) < 0 ||
        PyType_Ready(&TraceBufferType) < 0 ||
        PyType_Ready(&UniformNsType) < 0 || PyType_Ready(&PathType) < 0 || PyType_Ready(&DispatchType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    if (PyModule_AddIntConstant(m, "ABI", CAPSIM_ABI) < 0 ||
        PyModule_AddStringConstant(m, "C_SHA256", CAPSIM_C_SHA256) < 0 ||
        PyModule_AddStringConstant(m, "PY_SHA256", CAPSIM_PY_SHA256) < 0 ||
        PyModule_AddObjectRef(m, "Core", (PyObject *)&CoreType) < 0 ||
        PyModule_AddObjectRef(m, "SleepTimer", (PyObject *)&SleepType) < 0 ||
        PyModule_AddObjectRef(m, "Recorder", (PyObject *)&RecorderType) < 0 ||
        PyModule_AddObjectRef(m, "TraceBuffer", (PyObject *)&TraceBufferType) < 0 ||
        PyModule_AddObjectRef(m, "UniformNs", (PyObject *)&UniformNsType) < 0 ||
        PyModule_AddObjectRef(m, "MessagePath", (PyObject *)&PathType) < 0 ||
        PyModule_AddObjectRef(m, "Dispatch", (PyObject *)&DispatchType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
