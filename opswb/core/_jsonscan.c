/*
 * _jsonscan: find, among JSON Lines, those that may name an object member twice.
 *
 * RFC 7493 (I-JSON) forbids duplicate member names at any depth. Parsing every line
 * into Python objects to find the rare offender costs microseconds per line; this
 * scanner walks the bytes once, builds nothing, and answers "suspect" or "clean".
 *
 * Contract (false positives are fine, false negatives are bugs): a line is reported
 * SUSPECT when
 *   (a) some object holds two members whose names are byte-for-byte equal, or
 *   (b) some member name holds a backslash (escapes make raw bytes incomparable:
 *       "a" and "\u0061" are the same name), or
 *   (c) the line is not what the scanner's JSON grammar accepts: unterminated string,
 *       unbalanced or mismatched brackets, missing or stray ',' / ':', a scalar that is
 *       not a JSON number or true/false/null (NaN, Infinity, 01, 1.), bytes outside
 *       strings that JSON does not allow, more than one top-level value, nesting
 *       deeper than MAX_DEPTH, or
 *   (d) a string holds a raw control byte (below 0x20), which JSON forbids, or
 *   (e) a number a double would misread: an exponent of three digits or more, or a
 *       number token longer than MAX_NUMBER_BYTES, or
 *   (f) a string holds an escape JSON does not define, or a \uD800-\uDFFF escape
 *       that is not half of a high-low pair (a lone surrogate, which I-JSON forbids).
 * A line that is not suspect is therefore one JSON value (its strings' UTF-8 aside,
 * which is not validated here) whose member names, all escape-free, are pairwise
 * distinct within each object. Escape-free names decode to equal strings exactly when
 * their bytes are equal (UTF-8 is a unique encoding), so (a) is exact for them.
 *
 * Cost is linear in the bytes: a small object's names are compared pairwise when it
 * closes; a large one's are hashed and sorted (O(k log k)), so an object with
 * thousands of members is not quadratic. The GIL is released while scanning.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 128    /* strictjson.MAX_DEPTH: deeper nesting is invalid I-JSON */
#define SMALL_OBJECT 12  /* up to this many members: pairwise compare, no hashing */

/* One member name of an object still open: its bytes inside the quotes. */
typedef struct {
    uint64_t hash; /* filled in only when the object is large enough to be sorted */
    const unsigned char *name;
    size_t len;
} Name;

/* Names of every object still open on the current line, innermost last: an object's
 * names are contiguous because an inner object's names are dropped when it closes,
 * before the outer object's next name is pushed. Reused across lines. */
typedef struct {
    Name *items;
    size_t len, cap;
} Names;

/* What the grammar expects next at the current nesting level. */
enum {
    S_VALUE,       /* a value: at the start, after ':' or after ',' in an array */
    S_FIRST_VALUE, /* just after '[': a value or ']' */
    S_FIRST_KEY,   /* just after '{': a member name or '}' */
    S_KEY,         /* after ',' in an object: a member name */
    S_COLON,       /* after a member name: ':' */
    S_AFTER        /* after a value: ',' or the closing bracket (or the line's end) */
};

enum { R_CLEAN = 0, R_SUSPECT = 1, R_NOMEM = -1 };

/* The envelope's top-level members (SPEC §2) that scan_envelopes reports; "payload"
 * last (only its kind is needed). */
#define N_FIELDS 6
#define N_TEXT_FIELDS 5
static const char *const FIELD_NAMES[N_FIELDS] = {
    "tenant_id", "idempotency_key", "event_type", "source", "occurred_at", "payload"};

enum { K_ABSENT = 0, K_STRING, K_OBJECT, K_NULL, K_OTHER };

/* What one top-level member of the line holds: its kind and, for a string, its bytes
 * inside the quotes and whether they hold an escape. */
typedef struct {
    int kind;
    int escaped;
    const unsigned char *s;
    size_t len;
} Field;

/* The index in FIELD_NAMES of the (escape-free) name [s, s+len), or -1. */
static int
field_index(const unsigned char *s, size_t len)
{
    for (int f = 0; f < N_FIELDS; f++)
        if (strlen(FIELD_NAMES[f]) == len && memcmp(FIELD_NAMES[f], s, len) == 0)
            return f;
    return -1;
}

static uint64_t
fnv1a(const unsigned char *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static int
name_cmp(const void *a, const void *b)
{
    const Name *x = a, *y = b;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    /* Full byte order, so equal names always end up adjacent after sorting. */
    return memcmp(x->name, y->name, x->len);
}

/* Whether any two of the k names at v are byte-for-byte equal. */
static int
has_duplicate(Name *v, size_t k)
{
    if (k < 2)
        return 0;
    if (k <= SMALL_OBJECT) {
        for (size_t i = 1; i < k; i++)
            for (size_t j = 0; j < i; j++)
                if (v[i].len == v[j].len && memcmp(v[i].name, v[j].name, v[i].len) == 0)
                    return 1;
        return 0;
    }
    for (size_t i = 0; i < k; i++)
        v[i].hash = fnv1a(v[i].name, v[i].len);
    qsort(v, k, sizeof(Name), name_cmp);
    for (size_t i = 1; i < k; i++)
        if (name_cmp(&v[i - 1], &v[i]) == 0)
            return 1;
    return 0;
}

/* Number tokens past this many bytes are suspect: a decimal such as 0.000…01 with some
 * 300 zeros underflows a double (orjson and DuckDB read it as 0.0). */
#define MAX_NUMBER_BYTES 300

/* Whether [p, e) is exactly a JSON number or true / false / null, and no number a double
 * misreads: an exponent of three digits or more (1e-400 reads as 0.0, 1e400 fails) or a
 * number past MAX_NUMBER_BYTES makes the line suspect, for the exact reader. */
static int
valid_scalar(const unsigned char *p, const unsigned char *e)
{
    size_t n = (size_t)(e - p);
    if (n > MAX_NUMBER_BYTES)
        return 0;
    if (n == 4 && memcmp(p, "true", 4) == 0)
        return 1;
    if (n == 5 && memcmp(p, "false", 5) == 0)
        return 1;
    if (n == 4 && memcmp(p, "null", 4) == 0)
        return 1;
    /* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
    if (p < e && *p == '-')
        p++;
    if (p >= e)
        return 0;
    if (*p == '0')
        p++;
    else if (*p >= '1' && *p <= '9')
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    else
        return 0;
    if (p < e && *p == '.') {
        p++;
        if (p >= e || *p < '0' || *p > '9')
            return 0;
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < e && (*p == '+' || *p == '-'))
            p++;
        if (p >= e || *p < '0' || *p > '9')
            return 0;
        const unsigned char *digits = p;
        while (p < e && *p >= '0' && *p <= '9')
            p++;
        if (p - digits >= 3)
            return 0;
    }
    return p == e;
}

/* Bytes that may appear in a number or literal token (a superset: the token is then
 * checked exactly by valid_scalar). */
static int
scalar_byte(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           c == '-' || c == '+' || c == '.';
}

/* Whether any byte of the 8 in x is '"', '\\' or a control byte below 0x20 (SWAR: a
 * zero byte of x ^ c*0x01.. sets its high bit in (v - 0x01..) & ~v & 0x80.., and a byte
 * below 0x20 sets it in (x - 0x20..) & ~x & 0x80..; exact for "any", whatever the byte
 * order). */
static inline int
quote_backslash_or_control(uint64_t x)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
    return (((q - ones) & ~q) | ((b - ones) & ~b) | ((x - ones * 0x20) & ~x)) & highs
               ? 1 : 0;
}

/* The closing quote of the string whose contents start at p, or NULL if the line ends
 * first or the string holds a raw control byte (below 0x20: not JSON, which DuckDB lets
 * through and orjson refuses); a backslash escapes the byte after it, and *escaped says
 * whether there was one. Eight bytes at a time while none of them is '"', '\\' or a
 * control byte (string scanning is most of the time spent), then byte by byte. */
static const unsigned char *
string_end(const unsigned char *p, const unsigned char *e, int *escaped)
{
    *escaped = 0;
    while (p < e) {
        uint64_t x;
        if (e - p >= 8) {
            memcpy(&x, p, 8); /* unaligned load, compiled to one instruction */
            if (!quote_backslash_or_control(x)) {
                p += 8;
                continue;
            }
        }
        if (*p == '"')
            return p;
        if (*p < 0x20)
            return NULL;
        if (*p == '\\') {
            *escaped = 1;
            if (e - p < 2)
                return NULL;
            p += 2;
        } else {
            p++;
        }
    }
    return NULL;
}

static int
hex4(const unsigned char *p, const unsigned char *e, unsigned *out)
{
    unsigned v = 0;
    if (e - p < 4)
        return 0;
    for (int i = 0; i < 4; i++) {
        unsigned char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
            v |= (unsigned)((c | 0x20) - 'a' + 10);
        else
            return 0;
    }
    *out = v;
    return 1;
}

/* Whether the escapes of the string contents [p, e) are JSON's (\" \\ \/ \b \f \n
 * \r \t \uXXXX) and every \uD800-\uDFFF escape is half of a high-low pair: I-JSON
 * forbids lone surrogates, and a reader that decodes the string refuses the rest. */
static int
valid_escapes(const unsigned char *p, const unsigned char *e)
{
    while ((p = memchr(p, '\\', (size_t)(e - p))) != NULL) {
        unsigned u, low;
        if (e - p < 2)
            return 0;
        switch (p[1]) {
        case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
            p += 2;
            continue;
        case 'u':
            if (!hex4(p + 2, e, &u))
                return 0;
            p += 6;
            if (u >= 0xDC00 && u <= 0xDFFF)
                return 0; /* a low half first */
            if (u >= 0xD800 && u <= 0xDBFF) {
                if (e - p < 6 || p[0] != '\\' || p[1] != 'u' || !hex4(p + 2, e, &low) ||
                    low < 0xDC00 || low > 0xDFFF)
                    return 0; /* a high half without its low half */
                p += 6;
            }
            continue;
        default:
            return 0;
        }
    }
    return 1;
}

static int
push_name(Names *names, const unsigned char *name, size_t len)
{
    if (names->len == names->cap) {
        size_t cap = names->cap ? names->cap * 2 : 256;
        /* PyMem_Raw* needs no GIL: this runs inside Py_BEGIN_ALLOW_THREADS. */
        Name *items = PyMem_RawRealloc(names->items, cap * sizeof(Name));
        if (items == NULL)
            return -1;
        names->items = items;
        names->cap = cap;
    }
    names->items[names->len++] = (Name){0, name, len};
    return 0;
}

/* R_CLEAN, R_SUSPECT, or R_NOMEM for the line [p, e). With ``env`` (N_FIELDS entries),
 * also what the top-level object's members named in FIELD_NAMES hold (filled in as
 * they are met: meaningful only for a clean line). */
static int
scan_line(const unsigned char *p, const unsigned char *e, Names *names, Field *env)
{
    unsigned char kind[MAX_DEPTH]; /* '{' or '[' per open container */
    size_t base[MAX_DEPTH];        /* where each open object's names start in names */
    int depth = 0;
    int state = S_VALUE;
    int field = -1; /* the envelope member whose value comes next, at depth 1 */

    names->len = 0;
    if (env != NULL)
        memset(env, 0, N_FIELDS * sizeof(Field));
    while (p < e) {
        unsigned char c = *p;
        switch (c) {
        case ' ':
        case '\t':
        case '\n':
        case '\r':
            p++;
            continue;
        case '{':
        case '[':
            if (state != S_VALUE && state != S_FIRST_VALUE)
                return R_SUSPECT;
            if (depth == MAX_DEPTH)
                return R_SUSPECT;
            if (field >= 0) {
                env[field].kind = c == '{' ? K_OBJECT : K_OTHER;
                field = -1;
            }
            kind[depth] = c;
            base[depth] = names->len;
            depth++;
            state = c == '{' ? S_FIRST_KEY : S_FIRST_VALUE;
            p++;
            continue;
        case '}':
            if (depth == 0 || kind[depth - 1] != '{' ||
                (state != S_AFTER && state != S_FIRST_KEY))
                return R_SUSPECT;
            depth--;
            if (has_duplicate(names->items + base[depth], names->len - base[depth]))
                return R_SUSPECT;
            names->len = base[depth];
            state = S_AFTER;
            p++;
            continue;
        case ']':
            if (depth == 0 || kind[depth - 1] != '[' ||
                (state != S_AFTER && state != S_FIRST_VALUE))
                return R_SUSPECT;
            depth--;
            state = S_AFTER;
            p++;
            continue;
        case ',':
            if (state != S_AFTER || depth == 0)
                return R_SUSPECT;
            state = kind[depth - 1] == '{' ? S_KEY : S_VALUE;
            p++;
            continue;
        case ':':
            if (state != S_COLON)
                return R_SUSPECT;
            state = S_VALUE;
            p++;
            continue;
        case '"': {
            const unsigned char *s = p + 1;
            int escaped;
            const unsigned char *q = string_end(s, e, &escaped);
            if (q == NULL)
                return R_SUSPECT; /* unterminated string */
            if (escaped && !valid_escapes(s, q))
                return R_SUSPECT; /* an unknown escape, or a lone surrogate */
            if (state == S_KEY || state == S_FIRST_KEY) {
                if (escaped)
                    return R_SUSPECT; /* escaped name: only an exact parse can compare */
                if (push_name(names, s, (size_t)(q - s)) < 0)
                    return R_NOMEM;
                if (env != NULL && depth == 1)
                    field = field_index(s, (size_t)(q - s));
                state = S_COLON;
            } else if (state == S_VALUE || state == S_FIRST_VALUE) {
                if (field >= 0) {
                    env[field] = (Field){K_STRING, escaped, s, (size_t)(q - s)};
                    field = -1;
                }
                state = S_AFTER;
            } else {
                return R_SUSPECT;
            }
            p = q + 1;
            continue;
        }
        default: {
            if (state != S_VALUE && state != S_FIRST_VALUE)
                return R_SUSPECT;
            const unsigned char *t = p;
            while (t < e && scalar_byte(*t))
                t++;
            if (t == p || !valid_scalar(p, t))
                return R_SUSPECT; /* a byte JSON does not allow here, or a bad token */
            if (field >= 0) {
                env[field].kind = t - p == 4 && memcmp(p, "null", 4) == 0 ? K_NULL : K_OTHER;
                field = -1;
            }
            state = S_AFTER;
            p = t;
            continue;
        }
        }
    }
    /* Exactly one complete top-level value, every bracket closed. */
    return depth == 0 && state == S_AFTER ? R_CLEAN : R_SUSPECT;
}

/* Borrow an int64 vector from a buffer: a C-contiguous buffer of signed 64-bit
 * integers in native order (numpy int64, array('q')), or raw bytes whose length is a
 * multiple of 8 (read as native int64). Sets *n to the element count. */
static int
get_int64_buffer(PyObject *obj, Py_buffer *view, Py_ssize_t *n, const char *what)
{
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return -1;
    const char *f = view->format ? view->format : "B";
    int ok;
    if (view->itemsize == 8) {
        if (*f == '@' || *f == '=')
            f++;
#if PY_LITTLE_ENDIAN
        else if (*f == '<')
            f++;
#else
        else if (*f == '>' || *f == '!')
            f++;
#endif
        ok = (f[0] == 'q' || f[0] == 'l') && f[1] == '\0';
    } else {
        ok = view->itemsize == 1 && strchr("Bbc", f[0]) != NULL && f[1] == '\0' &&
             view->len % 8 == 0;
    }
    if (!ok) {
        PyErr_Format(PyExc_TypeError,
                     "%s: expected a contiguous buffer of int64 (format '%s', itemsize %zd)",
                     what, view->format ? view->format : "B", view->itemsize);
        PyBuffer_Release(view);
        return -1;
    }
    *n = view->len / 8;
    return 0;
}

static inline int64_t
load_int64(const char *base, Py_ssize_t i)
{
    int64_t v;
    memcpy(&v, base + i * 8, 8); /* memoryview slices of bytes need not be aligned */
    return v;
}

PyDoc_STRVAR(suspect_lines_doc,
"suspect_lines(data, offsets, lines, /) -> list[int]\n\n"
"Of the line indexes ``lines`` (int64 buffer), those whose line\n"
"``data[offsets[i]:offsets[i+1]]`` (``offsets``: int64 buffer) may hold a duplicate\n"
"member name: a name repeated byte for byte in one object, an escaped name, or text\n"
"the scanner cannot follow. Returned in the order of ``lines``.");

static PyObject *
suspect_lines(PyObject *Py_UNUSED(self), PyObject *args)
{
    Py_buffer data, offs, idx;
    PyObject *offs_obj, *idx_obj;
    Py_ssize_t noffs, nidx;
    PyObject *result = NULL;

    if (!PyArg_ParseTuple(args, "y*OO:suspect_lines", &data, &offs_obj, &idx_obj))
        return NULL;
    if (get_int64_buffer(offs_obj, &offs, &noffs, "offsets") < 0) {
        PyBuffer_Release(&data);
        return NULL;
    }
    if (get_int64_buffer(idx_obj, &idx, &nidx, "lines") < 0) {
        PyBuffer_Release(&offs);
        PyBuffer_Release(&data);
        return NULL;
    }

    int64_t *found = PyMem_RawMalloc((size_t)(nidx ? nidx : 1) * sizeof(int64_t));
    if (found == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t nfound = 0;
    Py_ssize_t bad_at = -1; /* position in lines of an index or span out of range */
    int nomem = 0;
    Names names = {NULL, 0, 0};
    const unsigned char *bytes = data.buf;
    const Py_ssize_t size = data.len;

    /* Only raw buffers and PyMem_Raw* below: no Python objects while the GIL is
     * released (the buffers are pinned by their Py_buffer views until released). */
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t k = 0; k < nidx; k++) {
        int64_t i = load_int64(idx.buf, k);
        if (i < 0 || i >= (int64_t)noffs - 1) {
            bad_at = k;
            break;
        }
        int64_t start = load_int64(offs.buf, (Py_ssize_t)i);
        int64_t end = load_int64(offs.buf, (Py_ssize_t)i + 1);
        if (start < 0 || end < start || end > (int64_t)size) {
            bad_at = k;
            break;
        }
        int r = scan_line(bytes + start, bytes + end, &names, NULL);
        if (r == R_NOMEM) {
            nomem = 1;
            break;
        }
        if (r == R_SUSPECT)
            found[nfound++] = i;
    }
    Py_END_ALLOW_THREADS
    PyMem_RawFree(names.items);

    if (nomem) {
        PyErr_NoMemory();
    } else if (bad_at >= 0) {
        PyErr_Format(PyExc_ValueError,
                     "lines[%zd] = %lld: not a line index of offsets (%zd offsets) "
                     "or its span is outside data (%zd bytes)",
                     bad_at, (long long)load_int64(idx.buf, bad_at), noffs, size);
    } else {
        result = PyList_New(nfound);
        for (Py_ssize_t k = 0; result != NULL && k < nfound; k++) {
            PyObject *v = PyLong_FromLongLong(found[k]);
            if (v == NULL)
                Py_CLEAR(result);
            else
                PyList_SET_ITEM(result, k, v);
        }
    }
    PyMem_RawFree(found);
done:
    PyBuffer_Release(&idx);
    PyBuffer_Release(&offs);
    PyBuffer_Release(&data);
    return result;
}

/* A growing byte buffer (PyMem_Raw*: usable without the GIL). */
typedef struct {
    char *buf;
    size_t len, cap;
} Bytes;

static int
bytes_append(Bytes *b, const unsigned char *s, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 1 << 16;
        while (cap < b->len + n)
            cap *= 2;
        char *buf = PyMem_RawRealloc(b->buf, cap);
        if (buf == NULL)
            return -1;
        b->buf = buf;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    return 0;
}

/* A line the bulk reader may take as scanned (SPEC §2 "plain"): clean, an object from
 * its first byte, tenant_id / idempotency_key / event_type escape-free strings whose
 * first byte is printable ASCII other than a space, payload an object, source and
 * occurred_at absent, null or escape-free strings. Any other line takes the exact
 * per-line path. */
static int
plain_envelope(const unsigned char *p, const unsigned char *e, const Field *env)
{
    if (p >= e || *p != '{')
        return 0;
    for (int f = 0; f < 3; f++)
        if (env[f].kind != K_STRING || env[f].escaped || env[f].len == 0 ||
            env[f].s[0] < 33 || env[f].s[0] > 126)
            return 0;
    for (int f = 3; f < 5; f++)
        if (env[f].kind == K_OBJECT || env[f].kind == K_OTHER ||
            (env[f].kind == K_STRING && env[f].escaped))
            return 0;
    return env[5].kind == K_OBJECT;
}

PyDoc_STRVAR(scan_envelopes_doc,
"scan_envelopes(data, offsets, /) -> (plain, fields)\n\n"
"Every line ``data[offsets[i]:offsets[i+1]]`` scanned as suspect_lines does, and its\n"
"envelope read in the same pass. ``plain``: a byte per line, 1 when the line is clean\n"
"and a plain envelope (the bulk reader takes its fields from here), 0 when it must\n"
"take the exact per-line path. ``fields``: for tenant_id, idempotency_key, event_type,\n"
"source, occurred_at, a tuple (offsets, data, valid) of Arrow string buffers (int32\n"
"offsets, UTF-8 bytes, a validity byte per line): a plain line's string, else null.");

static PyObject *
scan_envelopes(PyObject *Py_UNUSED(self), PyObject *args)
{
    Py_buffer data, offs;
    PyObject *offs_obj;
    Py_ssize_t noffs;
    PyObject *result = NULL;

    if (!PyArg_ParseTuple(args, "y*O:scan_envelopes", &data, &offs_obj))
        return NULL;
    if (get_int64_buffer(offs_obj, &offs, &noffs, "offsets") < 0) {
        PyBuffer_Release(&data);
        return NULL;
    }
    const Py_ssize_t n = noffs > 0 ? noffs - 1 : 0;
    unsigned char *plain = PyMem_RawCalloc((size_t)n + 1, 1);
    unsigned char *valid = PyMem_RawCalloc((size_t)(n + 1) * N_TEXT_FIELDS, 1);
    int32_t *foffs = PyMem_RawMalloc((size_t)(n + 1) * N_TEXT_FIELDS * sizeof(int32_t));
    Bytes out[N_TEXT_FIELDS] = {{NULL, 0, 0}};
    Names names = {NULL, 0, 0};
    Py_ssize_t bad_at = -1;
    int nomem = plain == NULL || valid == NULL || foffs == NULL;
    const unsigned char *bytes = data.buf;
    const Py_ssize_t size = data.len;

    Py_BEGIN_ALLOW_THREADS
    for (int f = 0; !nomem && f < N_TEXT_FIELDS; f++)
        foffs[f * (n + 1)] = 0;
    for (Py_ssize_t i = 0; !nomem && i < n; i++) {
        int64_t start = load_int64(offs.buf, i), end = load_int64(offs.buf, i + 1);
        if (start < 0 || end < start || end > (int64_t)size) {
            bad_at = i;
            break;
        }
        Field env[N_FIELDS];
        int r = scan_line(bytes + start, bytes + end, &names, env);
        if (r == R_NOMEM) {
            nomem = 1;
            break;
        }
        plain[i] = r == R_CLEAN && plain_envelope(bytes + start, bytes + end, env);
        for (int f = 0; f < N_TEXT_FIELDS; f++) {
            if (plain[i] && env[f].kind == K_STRING) {
                valid[f * (n + 1) + i] = 1;
                if (out[f].len + env[f].len > INT32_MAX ||
                    bytes_append(&out[f], env[f].s, env[f].len) < 0) {
                    nomem = 1;
                    break;
                }
            }
            foffs[f * (n + 1) + i + 1] = (int32_t)out[f].len;
        }
    }
    Py_END_ALLOW_THREADS
    PyMem_RawFree(names.items);

    if (nomem) {
        PyErr_NoMemory();
    } else if (bad_at >= 0) {
        PyErr_Format(PyExc_ValueError, "line %zd: its span is outside data (%zd bytes)",
                     bad_at, size);
    } else {
        PyObject *fields = PyTuple_New(N_TEXT_FIELDS);
        for (int f = 0; fields != NULL && f < N_TEXT_FIELDS; f++) {
            PyObject *t = Py_BuildValue(
                "(y#y#y#)", (const char *)(foffs + f * (n + 1)),
                (Py_ssize_t)((n + 1) * sizeof(int32_t)),
                out[f].buf ? out[f].buf : "", (Py_ssize_t)out[f].len,
                (const char *)(valid + f * (n + 1)), n);
            if (t == NULL)
                Py_CLEAR(fields);
            else
                PyTuple_SET_ITEM(fields, f, t);
        }
        if (fields != NULL)
            result = Py_BuildValue("(y#N)", (const char *)plain, n, fields);
    }
    for (int f = 0; f < N_TEXT_FIELDS; f++)
        PyMem_RawFree(out[f].buf);
    PyMem_RawFree(foffs);
    PyMem_RawFree(valid);
    PyMem_RawFree(plain);
    PyBuffer_Release(&offs);
    PyBuffer_Release(&data);
    return result;
}

static PyMethodDef methods[] = {
    {"suspect_lines", suspect_lines, METH_VARARGS, suspect_lines_doc},
    {"scan_envelopes", scan_envelopes, METH_VARARGS, scan_envelopes_doc},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot slots[] = {
#ifdef Py_mod_multiple_interpreters
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
    {0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "opswb.core._jsonscan",
    .m_doc = "Byte scanner for duplicate JSON member names (see opswb.jsonscan).",
    .m_size = 0,
    .m_methods = methods,
    .m_slots = slots,
};

PyMODINIT_FUNC
PyInit__jsonscan(void)
{
    return PyModuleDef_Init(&module);
}
