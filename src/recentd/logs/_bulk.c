/* recentd.logs._bulk — the compiled twin of LogReplay._bulk_chunk (recentd/logs/replay.py).
 *
 * Why it exists (issue 12, measured by bench/logs.py on a 1M-line auth log): the Python
 * bulk path costs 5.3 µs a line in process (its regex alone ~1.5 µs), where sshguard's
 * flex parser reads the whole file in 2.2 s; this loop costs 1.55 µs a line, and
 * ``logs replay`` end to end went from 188k to 1.15M lines/s (2.5x sshg-parser, 52x
 * fail2ban-regex, same run).  It reads the same lines with the same steps: the loop, the
 * six common sshd forms, the connections (SshdParser's Session objects, moved as
 * feed_plain moves them), and a failure's write into plain ``failure = LIST`` tables with
 * the ban check after it (the twin of RecentTable.add and of the planner's drop_until, on
 * the table's own representation: RecentTable.representation()).
 *
 * Rules (each keeps it exact: tests/logs/test_bulk.py runs this, the Python bulk path and
 * the line-by-line path, the definition, on the same lines and compares everything):
 *
 * - A line is read here only when every character of its body (before the trailing
 *   blanks) is printable ASCII, so that \s is ' ' and \d is [0-9], and it is at most
 *   MAX_READ long; and only in the six forms below, each read deterministically as
 *   sshd_messages' first pattern for its first word reads it (a greedy user, as in
 *   "Invalid user" and the closes, is read from the right).  Any other line is
 *   *declined*: a gap line, skipped only when this file can show it harmless (a line
 *   bulk.GAP_LINE finds harmless, or an sshd "Received …" line after authentication,
 *   which no pattern reads); every other gap line goes to LogReplay._gap_line (GAP_LINE,
 *   DANGER and the usual parse), so declining is never wrong, only slower.
 * - Addresses: a dotted quad and a plain IPv6 text are read here as ipaddress reads them
 *   (parse_address's rules: ::ffff:a.b.c.d is the IPv4 address); any other text goes to
 *   LogReplay._address.
 * - Everything rare goes back to Python through the replay's own methods (a new
 *   minute's time, a line taken the usual way, an event that is not an inline failure,
 *   a new ban).  The counts kept here are handed to the replay's Counters before each.
 * - A chunk with characters over U+00FF is read as a copy where each is 0xff (so their
 *   lines are declined), at the same indices as the text the callbacks get.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>

#define NS 1000000000LL

/* ---- interned names and constants ---------------------------------------------------- */

static PyObject *s_address, *s_port, *s_user, *s_user_invalid, *s_counted, *s_authenticated,
    *s_pending, *s_banner, *s_popitem, *s_move_to_end, *s_until_ns, *s_extended,
    *s_created, *s_evictions;
static PyObject *w_invalid_user, *w_authenticating_user, *w_user;
static PyObject *p_names[4];

static const char *const MONTHS[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
/* sorted(SSH_PROGRAMS), as recentd.logs.records spells them */
static const char *const PROGRAMS[4] = {"dropbear", "sshd", "sshd-auth", "sshd-session"};

/* ---- the context the caller builds per chunk (LogReplay._compiled_context) ----------- */

typedef struct {
    PyObject *entries;  /* OrderedDict[int, list[int]] */
    PyObject *mask4, *mask6, *v6tag;
    Py_ssize_t ring, limit;
    PyObject *version;  /* list of one int */
    PyObject *changed;  /* set or None */
    PyObject *table;
    PyObject *move_to_end, *popitem; /* entries' bound methods */
    long long created, evictions;
} Table;

typedef struct {
    int table;  /* index in tables */
    long long hitcount, window;
    PyObject *rule, *rule_text, *key_mask;
} Target;

#define MAX_TABLES 16
#define MAX_TARGETS 16
#define MAX_KINDS 32

typedef struct {
    PyObject *kind;
    long long count;
} KindCount;

/* The addresses read lately, by their text: parse_address is a function of the text, so
 * this is only a cache in front of LogReplay._addresses (one connection's lines repeat
 * its address). */
#define ADDRESS_CACHE 1024
#define ADDRESS_MAX 64
typedef struct {
    char text[ADDRESS_MAX];
    Py_ssize_t len;
    PyObject *parsed; /* owned: (address, int, family) or None */
} CachedAddress;

/* The connections' keys lately built, by pid (a connection's lines come close together). */
#define KEY_CACHE 512
typedef struct {
    PyObject *host, *key; /* owned */
    long pid;
} CachedKey;

typedef struct {
    PyObject *text;
    const unsigned char *s;
    Py_ssize_t n;
    /* from the context */
    PyObject *sessions, *session_class, *held_bans, *addresses, *kinds, *minutes;
    PyObject *sessions_move_to_end, *sessions_popitem; /* owned: bound methods */
    PyObject *reader, *failures, *probes, *ipv4_class, *ipv6_class;
    PyObject *k_pam, *k_invalid_user, *k_disconnect, *k_preauth_close;
    PyObject *o_failure, *o_success, *o_probe;
    PyObject *f_stamp_time, *f_classic_time, *f_address, *f_kind, *f_gap_line,
        *f_slow_line, *f_event, *f_ban;
    Py_ssize_t session_limit;
    int inline_failures, take_probe, by_minute;
    long long hz;
    int n_tables, n_targets[2];
    Table tables[MAX_TABLES];
    Target targets[2][MAX_TARGETS]; /* [0]: IPv4, [1]: IPv6 */
    KindCount failure_counts[MAX_KINDS], probe_counts[MAX_KINDS];
    int n_failure_counts, n_probe_counts;
    /* the loop's state */
    PyObject *last_ns;     /* owned: int or None */
    PyObject *time;        /* owned: the current stamp's time, int or None */
    long long time_i;      /* its value when it is an int that fits */
    int time_fits;
    char last_stamp[32];   /* "" after a reset */
    Py_ssize_t last_stamp_len;
    char minute[32];       /* the minute cached here (one entry of ``minutes``) */
    Py_ssize_t minute_len;
    PyObject *minute_base; /* owned: int or None, or NULL when none cached */
    long long minute_base_i;
    PyObject *host;        /* owned: the last host's str */
    char host_text[256];
    Py_ssize_t host_len;
    long long tick_time, tick;
    int tick_known;
    Py_ssize_t known;
    CachedAddress address_cache[ADDRESS_CACHE];
    CachedKey key_cache[KEY_CACHE];
    unsigned char *shadow; /* owned: the text read as bytes, when it is not one byte each */
} Scan;

/* floor(a * m / d) as Python's (a * m) // d, for m, d > 0, without a wider type: with
 * a = q*d + r (0 <= r < d), it is q*m + (r*m) // d; r*m stays small here (time in ns
 * with hz, or ticks with ns per second), and q*m is the answer's own size. */
static inline long long floordiv(long long a, long long d) {
    long long q = a / d;
    return (a % d != 0 && (a < 0) != (d < 0)) ? q - 1 : q;
}

static inline long long muldiv_floor(long long a, long long m, long long d) {
    long long q = floordiv(a, d), r = a - q * d;
    return q * m + (r * m) / d;
}

static int count_kind(KindCount *counts, int *n, PyObject *kind) {
    for (int i = 0; i < *n; i++)
        if (counts[i].kind == kind) {
            counts[i].count++;
            return 0;
        }
    if (*n >= MAX_KINDS) {
        PyErr_SetString(PyExc_RuntimeError, "recentd.logs._bulk: too many kinds");
        return -1;
    }
    counts[*n].kind = kind;
    counts[*n].count = 1;
    (*n)++;
    return 0;
}

static int flush_kinds(PyObject *counter, KindCount *counts, int n) {
    for (int i = 0; i < n; i++) {
        PyObject *old = PyObject_GetItem(counter, counts[i].kind); /* Counter: 0 if missing */
        if (old == NULL) return -1;
        PyObject *add = PyLong_FromLongLong(counts[i].count);
        PyObject *sum = add ? PyNumber_Add(old, add) : NULL;
        Py_DECREF(old);
        Py_XDECREF(add);
        if (sum == NULL) return -1;
        int failed = PyObject_SetItem(counter, counts[i].kind, sum);
        Py_DECREF(sum);
        if (failed) return -1;
    }
    return 0;
}

/* The counts kept here into the replay's Counters, before Python may count too: a kind
 * first counted here then comes first there (the summary lists ties in that order). */
static int flush_counts(Scan *sc) {
    if (flush_kinds(sc->failures, sc->failure_counts, sc->n_failure_counts) ||
        flush_kinds(sc->probes, sc->probe_counts, sc->n_probe_counts))
        return -1;
    sc->n_failure_counts = sc->n_probe_counts = 0;
    return 0;
}

/* ---- reading a line ------------------------------------------------------------------ */

typedef struct {
    Py_ssize_t a, b; /* [a, b) */
} Span;

static inline int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static inline int is_alpha(unsigned char c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; }
/* \w on ASCII, as the str patterns read it (no locale) */
static inline int is_word(unsigned char c) { return is_alpha(c) || is_digit(c) || c == '_'; }

static inline int starts_n(const unsigned char *s, Py_ssize_t at, Py_ssize_t end,
                           const char *lit, Py_ssize_t len) {
    return len <= end - at && memcmp(s + at, lit, len) == 0;
}
/* Whether [at, end) starts with the string literal ``lit`` */
#define starts(s, at, end, lit) starts_n((s), (at), (end), (lit), (Py_ssize_t)sizeof(lit) - 1)

/* A maximal run of non-blank characters from ``at`` (the body is printable ASCII: the
 * only blank is ' '). */
static inline Py_ssize_t token_end(const unsigned char *s, Py_ssize_t at, Py_ssize_t end) {
    while (at < end && s[at] != ' ') at++;
    return at;
}

static inline Py_ssize_t digits_end(const unsigned char *s, Py_ssize_t at, Py_ssize_t end) {
    while (at < end && is_digit(s[at])) at++;
    return at;
}

/* The classic header ``MONTH [ \d]?\d \d\d:\d\d:\d\d HOST `` (HOST: [^\s\[\]]+); returns
 * the position after HOST's blank, or -1.  ``stamp`` is group 1 of BULK_LINE. */
static Py_ssize_t read_stamp_host(const unsigned char *s, Py_ssize_t at, Py_ssize_t end,
                                  Span *stamp, Span *host) {
    if (end - at < 16) return -1;
    int month_ok = 0;
    for (int i = 0; i < 12; i++)
        if (memcmp(s + at, MONTHS[i], 3) == 0) {
            month_ok = 1;
            break;
        }
    if (!month_ok || s[at + 3] != ' ') return -1;
    Py_ssize_t p = at + 4;
    if ((s[p] == ' ' || is_digit(s[p])) && is_digit(s[p + 1]) && s[p + 2] == ' ')
        p += 3;
    else if (is_digit(s[p]) && s[p + 1] == ' ')
        p += 2;
    else
        return -1;
    if (end - p < 9 || !is_digit(s[p]) || !is_digit(s[p + 1]) || s[p + 2] != ':' ||
        !is_digit(s[p + 3]) || !is_digit(s[p + 4]) || s[p + 5] != ':' || !is_digit(s[p + 6]) ||
        !is_digit(s[p + 7]) || s[p + 8] != ' ')
        return -1;
    stamp->a = at;
    stamp->b = p + 8;
    p += 9;
    Py_ssize_t h = p;
    while (p < end && s[p] != ' ' && s[p] != '[' && s[p] != ']') p++;
    if (p == h || p >= end || s[p] != ' ') return -1;
    host->a = h;
    host->b = p;
    return p + 1;
}

/* The index in PROGRAMS of [a, b), or -1. */
static int program_of(const unsigned char *s, Py_ssize_t a, Py_ssize_t b) {
    for (int i = 0; i < 4; i++) {
        size_t len = strlen(PROGRAMS[i]);
        if ((Py_ssize_t)len == b - a && memcmp(s + a, PROGRAMS[i], len) == 0) return i;
    }
    return -1;
}

/* ``PROG[PID]: `` from ``at``: the program's span and the pid's; returns the message's
 * start, or -1.  PROG: [^\s\[\]:]+ */
static Py_ssize_t read_program_pid(const unsigned char *s, Py_ssize_t at, Py_ssize_t end,
                                   Span *program, Span *pid) {
    Py_ssize_t p = at;
    while (p < end && s[p] != ' ' && s[p] != '[' && s[p] != ']' && s[p] != ':') p++;
    if (p == at || p >= end || s[p] != '[') return -1;
    program->a = at;
    program->b = p;
    Py_ssize_t d = p + 1, e = digits_end(s, d, end);
    if (e == d || end - e < 3 || s[e] != ']' || s[e + 1] != ':' || s[e + 2] != ' ') return -1;
    pid->a = d;
    pid->b = e;
    return e + 3;
}

enum { F_NONE, F_PAM, F_AUTH, F_INVALID, F_RECEIVED, F_DISCONNECTED, F_CONNECTION };

typedef struct {
    int form;
    Span verb, method, user, addr, port;
    int has_user, has_port, invalid_group, preauth;
    PyObject *who; /* borrowed: one of the w_* words, or NULL */
} Fields;

static const char PREAUTH[] = " [preauth]";
#define PREAUTH_LEN 10
/* A line longer than this is never read here: observe reads no message over
 * sshd_messages.MAX_MESSAGE (8192) characters, and the line holds its message. */
#define MAX_READ 8000

/* The end of the message is [at, end): "" or " [preauth]". 1: none, 2: preauth, 0: else. */
static inline int tail_of(const unsigned char *s, Py_ssize_t at, Py_ssize_t end) {
    if (at == end) return 1;
    if (end - at == PREAUTH_LEN && memcmp(s + at, PREAUTH, PREAUTH_LEN) == 0) return 2;
    return 0;
}

/* ``(\S+) port (\d+)`` ending [at, end) (the message without " [preauth]"), read from
 * the right as a greedy field before it reads it: PORT the digits after the last blank,
 * " port " before them, ADDR the run without blanks before that.  0 when it does not end
 * so. */
static int read_addr_port_end(const unsigned char *s, Py_ssize_t at, Py_ssize_t end,
                              Fields *f) {
    Py_ssize_t d = end;
    while (d > at && is_digit(s[d - 1])) d--;
    if (d == end || d - at < 7 || memcmp(s + d - 6, " port ", 6) != 0) return 0;
    Py_ssize_t ae = d - 6, a = ae;
    while (a > at && s[a - 1] != ' ') a--;
    if (a == ae) return 0;
    f->addr.a = a;
    f->addr.b = ae;
    f->port.a = d;
    f->port.b = end;
    f->has_port = 1;
    return 1;
}

/* Where the message [m, end) ends before a final " [preauth]" (noted in ``f``), as
 * sshd_messages.normalise cuts it. */
static Py_ssize_t cut_preauth(const unsigned char *s, Py_ssize_t m, Py_ssize_t end, Fields *f) {
    if (end - m >= PREAUTH_LEN && memcmp(s + end - PREAUTH_LEN, PREAUTH, PREAUTH_LEN) == 0) {
        f->preauth = 1;
        return end - PREAUTH_LEN;
    }
    return end;
}

/* The closes, from ``at`` (after "Disconnected from " or "Connection closed by "):
 * sshd_messages' ``(?:(invalid user|authenticating user|user) (.*) )?(\S+) port (\d+)``.
 * The user is greedy, so ADDR is the last run before " port "; the group is read when
 * what comes before ADDR is one of its words, a blank and the user; with nothing before
 * ADDR, no group; anything else is declined. */
static int read_close(const unsigned char *s, Py_ssize_t at, Py_ssize_t end, Fields *f) {
    static const char *const words[3] = {"invalid user ", "authenticating user ", "user "};
    PyObject *const *objects[3] = {&w_invalid_user, &w_authenticating_user, &w_user};
    end = cut_preauth(s, at, end, f);
    if (!read_addr_port_end(s, at, end, f)) return 0;
    Py_ssize_t a = f->addr.a;
    f->who = NULL;
    if (a == at) return 1;
    for (int i = 0; i < 3; i++) {
        Py_ssize_t len = (Py_ssize_t)strlen(words[i]);
        if (!starts_n(s, at, end, words[i], len)) continue;
        if (at + len > a - 1) return 0; /* (no room for the user and its blank) */
        f->user.a = at + len;
        f->user.b = a - 1;
        f->has_user = 1;
        f->who = *objects[i];
        return 1;
    }
    return 0;
}

/* The message [m, end) in one of the six forms, or F_NONE (declined). */
static int read_form(const unsigned char *s, Py_ssize_t m, Py_ssize_t end, Fields *f) {
    memset(f, 0, sizeof *f);
    if (m >= end) return F_NONE;
    switch (s[m]) {
    case 'p': { /* pam_unix(sshd:auth): authentication failure; … rhost=(\S+)(?:  user=(.*?))? */
        static const char head[] = "pam_unix(sshd:auth): authentication failure; logname=";
        if (!starts(s, m, end, head)) return F_NONE;
        Py_ssize_t p = token_end(s, m + (Py_ssize_t)strlen(head), end);
        if (!starts(s, p, end, " uid=")) return F_NONE;
        p = digits_end(s, p + 5, end);
        if (!starts(s, p, end, " euid=")) return F_NONE;
        p = digits_end(s, p + 6, end);
        if (!starts(s, p, end, " tty=")) return F_NONE;
        p = token_end(s, p + 5, end);
        if (!starts(s, p, end, " ruser=")) return F_NONE;
        p = token_end(s, p + 7, end);
        if (!starts(s, p, end, " rhost=")) return F_NONE;
        Py_ssize_t a = p + 7, ae = token_end(s, a, end);
        if (ae == a) return F_NONE;
        f->addr.a = a;
        f->addr.b = ae;
        if (starts(s, ae, end, "  user=")) {
            /* the lazy user: the shortest one after which only "( \[preauth\])?" and
             * blanks remain; read here only when it is a run without blanks */
            Py_ssize_t u = ae + 7, ue = token_end(s, u, end);
            int tail = tail_of(s, ue, end);
            if (!tail) return F_NONE;
            f->user.a = u;
            f->user.b = ue;
            f->has_user = 1;
            f->preauth = tail == 2;
            return f->form = F_PAM;
        }
        int tail = tail_of(s, ae, end);
        if (!tail) return F_NONE;
        f->preauth = tail == 2;
        return f->form = F_PAM;
    }
    case 'F':
    case 'A': { /* sshd_messages._AUTH_GREEDY, on a message that holds one " from ": (Failed|
                 * Accepted) (\S+) for (invalid user )?(.*) from (\S+) port (\d+) ssh[12]?(?::.*)?
                 * (with two, observe weighs other readings against it: declined) */
        Py_ssize_t p;
        if (starts(s, m, end, "Failed "))
            p = m + 7;
        else if (starts(s, m, end, "Accepted "))
            p = m + 9;
        else
            return F_NONE;
        f->verb.a = m;
        f->verb.b = p - 1;
        Py_ssize_t me = token_end(s, p, end);
        if (me == p || !starts(s, me, end, " for ")) return F_NONE;
        f->method.a = p;
        f->method.b = me;
        p = me + 5;
        Py_ssize_t cut = cut_preauth(s, m, end, f), from = -1;
        for (Py_ssize_t q = m; q + 6 <= cut; q++) /* (overlapping: at least str.count's) */
            if (s[q] == ' ' && memcmp(s + q, " from ", 6) == 0) {
                if (from >= 0) return F_NONE;
                from = q;
            }
        if (from < p) return F_NONE;
        if (starts(s, p, from, "invalid user ")) { /* the group, greedy: tried first */
            f->invalid_group = 1;
            p += 13;
        }
        f->user.a = p;
        f->user.b = from;
        f->has_user = 1;
        if (from - p == 18 && memcmp(s + p, "<invalid username>", 18) == 0) f->invalid_group = 1;
        Py_ssize_t a = from + 6, ae = token_end(s, a, cut);
        if (ae == a || !starts(s, ae, cut, " port ")) return F_NONE;
        f->addr.a = a;
        f->addr.b = ae;
        Py_ssize_t d = ae + 6, de = digits_end(s, d, cut);
        if (de == d || !starts(s, de, cut, " ssh")) return F_NONE;
        f->port.a = d;
        f->port.b = de;
        f->has_port = 1;
        p = de + 4;
        if (p < cut && (s[p] == '1' || s[p] == '2')) p++;
        if (p < cut && s[p] != ':') return F_NONE; /* (":" and anything: the trailer) */
        return f->form = F_AUTH;
    }
    case 'I': { /* Invalid user (.*) from (\S+) port (\d+): the user is greedy */
        if (!starts(s, m, end, "Invalid user ")) return F_NONE;
        Py_ssize_t cut = cut_preauth(s, m, end, f);
        if (!read_addr_port_end(s, m + 13, cut, f) || f->addr.a - 6 < m + 13 ||
            memcmp(s + f->addr.a - 6, " from ", 6) != 0)
            return F_NONE;
        f->user.a = m + 13;
        f->user.b = f->addr.a - 6;
        f->has_user = 1;
        return f->form = F_INVALID;
    }
    case 'R': { /* Received disconnect from (\S+) port (\d+):\d+: .*? \[preauth\] */
        if (!starts(s, m, end, "Received disconnect from ")) return F_NONE;
        Py_ssize_t a = m + 25, ae = token_end(s, a, end);
        if (ae == a || !starts(s, ae, end, " port ")) return F_NONE;
        Py_ssize_t d = ae + 6, de = digits_end(s, d, end);
        if (de == d || de >= end || s[de] != ':') return F_NONE;
        Py_ssize_t c = de + 1, ce = digits_end(s, c, end);
        if (ce == c || !starts(s, ce, end, ": ")) return F_NONE;
        /* ".*? \[preauth\]" then blanks: the body ends with " [preauth]" after ": " */
        if (end - (ce + 2) < PREAUTH_LEN || memcmp(s + end - PREAUTH_LEN, PREAUTH, PREAUTH_LEN))
            return F_NONE;
        f->addr.a = a;
        f->addr.b = ae;
        f->port.a = d;
        f->port.b = de;
        f->has_port = 1;
        f->preauth = 1;
        return f->form = F_RECEIVED;
    }
    case 'D':
        if (!starts(s, m, end, "Disconnected from ")) return F_NONE;
        return read_close(s, m + 18, end, f) ? (f->form = F_DISCONNECTED) : F_NONE;
    case 'C':
        if (starts(s, m, end, "Connection closed by "))
            return read_close(s, m + 21, end, f) ? (f->form = F_CONNECTION) : F_NONE;
        if (starts(s, m, end, "Connection reset by "))
            return read_close(s, m + 20, end, f) ? (f->form = F_CONNECTION) : F_NONE;
        return F_NONE;
    default:
        return F_NONE;
    }
}

/* Whether a line no form read moves nothing whatever its message says: a subset of the
 * lines bulk.GAP_LINE finds harmless (see there): another program's classic line with a
 * pid and a message; a classic line without a pid whose header names a program that is
 * not sshd's; an sshd line with PAM's own message. */
static int harmless(const unsigned char *s, Py_ssize_t p, Py_ssize_t m, int which, Span host,
                    Py_ssize_t end) {
    /* p: after the header's host; m: the message after ``PROG[PID]: `` (or -1); which:
     * PROG in PROGRAMS (or -1) */
    if (m >= 0) {
        if (which < 0) return m < end; /* (a) */
        if (starts(s, m, end, "pam_unix(sshd:auth): "))            /* (c) */
            return !starts(s, m + 21, end, "authentication failure");
        /* (d) every pattern of sshd_messages' "Received" builds nothing after authentication
         * (_received_disconnect): such a line moves nothing */
        if (starts(s, m, end, "Received "))
            return end - m < PREAUTH_LEN || memcmp(s + end - PREAUTH_LEN, PREAUTH, PREAUTH_LEN);
        return starts(s, m, end, "PAM ") || starts(s, m, end, "pam_unix(sshd:session): ");
    }
    /* (b): HOST [\w.-]+, PROGRAM [A-Za-z][\w-]*, then ": +" and a non-blank */
    for (Py_ssize_t i = host.a; i < host.b; i++) {
        unsigned char c = s[i];
        if (!(is_word(c) || c == '.' || c == '-')) return 0;
    }
    if (p >= end || !is_alpha(s[p])) return 0;
    Py_ssize_t e = p + 1;
    while (e < end && (is_word(s[e]) || s[e] == '-')) e++;
    if (e >= end || s[e] != ':' || program_of(s, p, e) >= 0) return 0;
    Py_ssize_t b = e + 1;
    while (b < end && s[b] == ' ') b++;
    return b > e + 1 && b < end;
}

/* The value of a dotted quad as ipaddress.IPv4Address reads one (four decimal octets of
 * one to three digits, none over 255, no leading zero), or -1 for any other text (which
 * then goes to LogReplay._address: parse_address). */
static long long ipv4_value(const unsigned char *s, Span text) {
    long long value = 0;
    Py_ssize_t at = text.a;
    for (int octet = 0; octet < 4; octet++) {
        if (octet && (at >= text.b || s[at++] != '.')) return -1;
        Py_ssize_t start = at;
        int number = 0;
        while (at < text.b && is_digit(s[at]) && at - start < 3) number = number * 10 + (s[at++] - '0');
        if (at == start || number > 255 || (s[start] == '0' && at - start > 1)) return -1;
        if (at < text.b && is_digit(s[at])) return -1; /* a fourth digit */
        value = value * 256 + number;
    }
    return at == text.b ? value : -1;
}

static inline int hex_value(unsigned char c) {
    if (is_digit(c)) return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The value of an IPv6 text of hextets and one "::" at most, as
 * ipaddress.IPv6Address._ip_int_from_string reads it (no embedded IPv4, no zone: those
 * go to LogReplay._address); 1 when read, 0 for any other text. */
static int ipv6_value(const unsigned char *s, Span text, uint64_t *hi, uint64_t *lo) {
    uint16_t parts[9];
    int lengths[9], n = 0;
    Py_ssize_t at = text.a;
    for (;;) { /* split on ':' */
        if (n == 9) return 0; /* more than 9 parts */
        Py_ssize_t start = at;
        unsigned value = 0;
        while (at < text.b && s[at] != ':') {
            int digit = hex_value(s[at]);
            if (digit < 0 || at - start >= 4) return 0;
            value = value * 16 + (unsigned)digit;
            at++;
        }
        lengths[n] = (int)(at - start);
        parts[n++] = (uint16_t)value;
        if (at == text.b) break;
        at++; /* the ':' */
    }
    if (n < 3) return 0;
    int skip = -1;
    for (int i = 1; i < n - 1; i++)
        if (!lengths[i]) {
            if (skip >= 0) return 0;
            skip = i;
        }
    int high, low, skipped;
    if (skip >= 0) {
        high = skip;
        low = n - skip - 1;
        if (!lengths[0] && --high) return 0;
        if (!lengths[n - 1] && --low) return 0;
        skipped = 8 - (high + low);
        if (skipped < 1) return 0;
    } else {
        if (n != 8 || !lengths[0] || !lengths[n - 1]) return 0;
        high = n;
        low = skipped = 0;
    }
    uint16_t hextets[8];
    int k = 0;
    for (int i = 0; i < high; i++) {
        if (!lengths[i]) return 0; /* (int('', 16)) */
        hextets[k++] = parts[i];
    }
    for (int i = 0; i < skipped; i++) hextets[k++] = 0;
    for (int i = n - low; i < n; i++) {
        if (!lengths[i]) return 0;
        hextets[k++] = parts[i];
    }
    *hi = *lo = 0;
    for (int i = 0; i < 4; i++) *hi = (*hi << 16) | hextets[i];
    for (int i = 4; i < 8; i++) *lo = (*lo << 16) | hextets[i];
    return 1;
}

/* Whether every byte of [s, s + n) is printable ASCII (0x20..0x7e): eight at a time
 * (the per-byte loop was a third of this file's own time, measured with perf). */
static int printable(const unsigned char *s, Py_ssize_t n) {
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x;
        memcpy(&x, s + i, 8);
        /* a byte under 0x20, or over 0x7e (0x7f..0xff) */
        if (((x - ones * 0x20) & ~x & highs) | (((x + ones * 0x01) | x) & highs)) return 0;
    }
    for (; i < n; i++)
        if (s[i] < 0x20 || s[i] > 0x7e) return 0;
    return 1;
}

/* ---- helpers on Python objects ------------------------------------------------------- */

static inline PyObject *text_of(Scan *sc, Span span) {
    return PyUnicode_FromKindAndData(PyUnicode_1BYTE_KIND, sc->s + span.a, span.b - span.a);
}

static int set_last_ns(Scan *sc, PyObject *value) {
    Py_INCREF(value);
    Py_SETREF(sc->last_ns, value);
    return 0;
}

static void reset_stamp(Scan *sc) { sc->last_stamp_len = 0; }

/* Python's time of the stamp [a, b): LogReplay._stamp_time with its one-entry cache here
 * (as the Python loop's ``minutes.get``), or records.classic_time when each stamp
 * decides its year.  Sets sc->time. */
static int stamp_time(Scan *sc, Py_ssize_t a, Py_ssize_t b) {
    Py_ssize_t len = b - a;
    if (len == sc->last_stamp_len && memcmp(sc->last_stamp, sc->s + a, len) == 0) return 0;
    memcpy(sc->last_stamp, sc->s + a, len);
    sc->last_stamp_len = len;
    const unsigned char *sec = sc->s + b - 2;
    int seconds = (sec[0] - '0') * 10 + (sec[1] - '0'); /* (both are digits) */
    PyObject *time = NULL;
    if (sc->by_minute && seconds <= 60 && sc->minute_base != NULL && len - 3 == sc->minute_len &&
        memcmp(sc->minute, sc->s + a, len - 3) == 0) {
        if (sc->minute_base == Py_None) {
            time = Py_NewRef(Py_None);
        } else {
            long long add = (long long)(seconds < 59 ? seconds : 59) * NS;
            time = PyLong_FromLongLong(sc->minute_base_i + add);
        }
    } else {
        PyObject *stamp = text_of(sc, (Span){a, b});
        if (stamp == NULL) return -1;
        if (sc->by_minute)
            time = PyObject_CallFunctionObjArgs(sc->f_stamp_time, stamp, sc->minutes, NULL);
        else
            time = PyObject_CallOneArg(sc->f_classic_time, stamp);
        if (time != NULL && sc->by_minute && seconds <= 60) {
            /* the minute's entry, as the Python loop would find it next time */
            PyObject *minute = PyUnicode_Substring(stamp, 0, len - 3);
            PyObject *base = minute ? PyDict_GetItemWithError(sc->minutes, minute) : NULL;
            if (base != NULL && (base == Py_None || PyLong_Check(base))) {
                int overflow = 0;
                long long value = base == Py_None ? 0 : PyLong_AsLongLongAndOverflow(base, &overflow);
                if (!overflow && !(value == -1 && PyErr_Occurred())) {
                    Py_XSETREF(sc->minute_base, Py_NewRef(base));
                    sc->minute_base_i = value;
                    memcpy(sc->minute, sc->s + a, len - 3);
                    sc->minute_len = len - 3;
                }
            }
            Py_XDECREF(minute);
            if (PyErr_Occurred()) {
                Py_DECREF(stamp);
                Py_DECREF(time);
                return -1;
            }
        }
        Py_DECREF(stamp);
    }
    if (time == NULL) return -1;
    Py_SETREF(sc->time, time);
    sc->time_fits = 0;
    if (PyLong_Check(time)) {
        int overflow = 0;
        long long value = PyLong_AsLongLongAndOverflow(time, &overflow);
        if (value == -1 && PyErr_Occurred()) return -1;
        if (!overflow) {
            sc->time_i = value;
            sc->time_fits = 1;
        }
    }
    return 0;
}

/* The host's str (the last one kept: one host writes most logs). */
static PyObject *host_of(Scan *sc, Span host) {
    Py_ssize_t len = host.b - host.a;
    if (sc->host != NULL && len == sc->host_len && memcmp(sc->host_text, sc->s + host.a, len) == 0)
        return sc->host;
    PyObject *made = text_of(sc, host);
    if (made == NULL) return NULL;
    Py_XSETREF(sc->host, made);
    if (len < (Py_ssize_t)sizeof sc->host_text) {
        memcpy(sc->host_text, sc->s + host.a, len);
        sc->host_len = len;
    } else {
        sc->host_len = -1;
    }
    return made;
}

/* dict.get(key) or fallback(key): a new reference */
static PyObject *cached(PyObject *cache, PyObject *key, PyObject *fallback) {
    PyObject *found = PyDict_GetItemWithError(cache, key);
    if (found != NULL) return Py_NewRef(found);
    if (PyErr_Occurred()) return NULL;
    return PyObject_CallOneArg(fallback, key);
}

static int set_attr(PyObject *object, PyObject *name, PyObject *value) {
    return PyObject_SetAttr(object, name, value);
}

/* A Session's fields.  Session is a slots dataclass: each field is a member descriptor,
 * read and written here at its offset (what PyMember_GetOne/SetOne do, without the
 * attribute lookup each time); any other class goes through getattr/setattr. */
enum { A_ADDRESS, A_PORT, A_USER, A_USER_INVALID, A_COUNTED, A_AUTHENTICATED, A_PENDING,
       A_BANNER, A_COUNT };
static PyObject **const session_names[A_COUNT] = {
    &s_address, &s_port, &s_user, &s_user_invalid, &s_counted, &s_authenticated, &s_pending,
    &s_banner};
static Py_ssize_t session_offsets[A_COUNT];
static PyTypeObject *session_type; /* NULL: the generic way */

static int load_session_slots(PyObject *cls) {
    session_type = NULL;
    if (!PyType_Check(cls)) return 0;
    for (int i = 0; i < A_COUNT; i++) {
        PyObject *descr = PyObject_GetAttr(cls, *session_names[i]);
        if (descr == NULL) return -1;
        int usable = Py_IS_TYPE(descr, &PyMemberDescr_Type) &&
                     ((PyMemberDescrObject *)descr)->d_member->type == T_OBJECT_EX &&
                     !(((PyMemberDescrObject *)descr)->d_member->flags & READONLY);
        if (usable) session_offsets[i] = ((PyMemberDescrObject *)descr)->d_member->offset;
        Py_DECREF(descr);
        if (!usable) return 0;
    }
    session_type = (PyTypeObject *)cls;
    return 0;
}

static int set_field(PyObject *session, int field, PyObject *value) {
    if (Py_TYPE(session) != session_type) return PyObject_SetAttr(session, *session_names[field], value);
    PyObject **slot = (PyObject **)((char *)session + session_offsets[field]);
    Py_XSETREF(*slot, Py_NewRef(value));
    return 0;
}

/* A new reference to the field's value (AttributeError when unset, as getattr) */
static PyObject *get_field(PyObject *session, int field) {
    if (Py_TYPE(session) == session_type) {
        PyObject *value = *(PyObject **)((char *)session + session_offsets[field]);
        if (value != NULL) return Py_NewRef(value);
    }
    return PyObject_GetAttr(session, *session_names[field]);
}

static int field_true(PyObject *session, int field) {
    PyObject *value = get_field(session, field);
    if (value == NULL) return -1;
    int truth = PyObject_IsTrue(value);
    Py_DECREF(value);
    return truth;
}

/* ---- the table's twin (RecentTable.add, then the check after it) ----------------------- */

/* RecentTable.key: addr & mask4, or (addr & mask6) | V6_TAG */
static PyObject *table_key(Table *t, int family, PyObject *addr) {
    if (family == 4) return PyNumber_And(addr, t->mask4);
    PyObject *masked = PyNumber_And(addr, t->mask6);
    if (masked == NULL) return NULL;
    PyObject *key = PyNumber_Or(masked, t->v6tag);
    Py_DECREF(masked);
    return key;
}

static int bump_version(Table *t) {
    PyObject *old = PyList_GET_ITEM(t->version, 0);
    PyObject *one = PyLong_FromLong(1);
    PyObject *next = one ? PyNumber_Add(old, one) : NULL;
    Py_XDECREF(one);
    if (next == NULL) return -1;
    return PyList_SetItem(t->version, 0, next); /* steals next */
}

static int mark_changed(Table *t, PyObject *key) {
    return t->changed == Py_None ? 0 : PySet_Add(t->changed, key);
}

/* RecentTable.add(family, addr, now), the /proc "+addr": _create or _stamp. */
static int table_add(Table *t, PyObject *key, PyObject *now) {
    PyObject *entry = PyDict_GetItemWithError(t->entries, key); /* (an OrderedDict is a dict) */
    if (entry == NULL) {
        if (PyErr_Occurred()) return -1;
        if (PyDict_GET_SIZE(t->entries) >= t->limit) { /* _evict_head */
            PyObject *pair = PyObject_CallOneArg(t->popitem, Py_False);
            if (pair == NULL) return -1;
            int failed = mark_changed(t, PyTuple_GET_ITEM(pair, 0));
            Py_DECREF(pair);
            if (failed) return -1;
            t->evictions++;
            if (bump_version(t)) return -1;
        }
        PyObject *made = PyList_New(3);
        if (made == NULL) return -1;
        PyList_SET_ITEM(made, 0, PyLong_FromLong(0));
        PyList_SET_ITEM(made, 1, PyLong_FromLong(1));
        PyList_SET_ITEM(made, 2, Py_NewRef(now));
        int failed = PyObject_SetItem(t->entries, key, made);
        Py_DECREF(made);
        if (failed) return -1;
        t->created++;
        if (bump_version(t)) return -1;
        return mark_changed(t, key);
    }
    /* _stamp */
    Py_INCREF(entry);
    long index = PyLong_AsLong(PyList_GET_ITEM(entry, 1));
    if (index == -1 && PyErr_Occurred()) goto fail;
    Py_ssize_t slot = index & (t->ring - 1);
    if (slot == PyList_GET_SIZE(entry) - 2) {
        if (PyList_Append(entry, now)) goto fail;
    } else if (PyList_SetItem(entry, 2 + slot, Py_NewRef(now))) {
        goto fail;
    }
    if (PyList_SetItem(entry, 1, PyLong_FromSsize_t(slot + 1))) goto fail;
    Py_DECREF(entry);
    PyObject *done = PyObject_CallOneArg(t->move_to_end, key);
    if (done == NULL) return -1;
    Py_DECREF(done);
    if (bump_version(t)) return -1;
    return mark_changed(t, key);
fail:
    Py_DECREF(entry);
    return -1;
}

/* A stamp's value: the ticks of a RecentTable entry (ints that fit 64 bits: epoch ticks). */
static inline int stamp_value(PyObject *item, long long *value) {
#if PY_VERSION_HEX < 0x030C0000
    /* 3.11's PyLong_AsLongLong goes through _PyLong_AsByteArray for any value over 2**30
     * (every tick here): read the two 30-bit digits of a positive int directly */
    if (PyLong_CheckExact(item) && Py_SIZE(item) == 2) {
        const digit *digits = ((PyLongObject *)item)->ob_digit;
        *value = ((long long)digits[1] << PyLong_SHIFT) | digits[0];
        return 0;
    }
#endif
    int overflow = 0;
    *value = PyLong_AsLongLongAndOverflow(item, &overflow);
    if (overflow) PyErr_SetString(PyExc_OverflowError, "a stamp beyond 64 bits");
    return (overflow || (*value == -1 && PyErr_Occurred())) ? -1 : 0;
}

/* sorted(stamps)[-hitcount] of the entry at ``key`` when it has that many (1), or 0:
 * the hitcount-th newest, kept in a small buffer of the newest seen so far (the ring is
 * in slot order, not time order). */
#define TOP_MAX 64
static int hit_stamp(Table *t, PyObject *key, long long hitcount, long long *found) {
    PyObject *entry = PyDict_GetItemWithError(t->entries, key);
    if (entry == NULL) return PyErr_Occurred() ? -1 : 0;
    Py_ssize_t count = PyList_GET_SIZE(entry) - 2;
    if (hitcount < 1 || count < hitcount) return 0; /* (hitcount is max(…, 1): never < 1) */
    if (hitcount > TOP_MAX) { /* (a rule with --hitcount over 64: sort them all) */
        PyObject *stamps = PyList_GetSlice(entry, 2, PyList_GET_SIZE(entry));
        if (stamps == NULL || PyList_Sort(stamps)) {
            Py_XDECREF(stamps);
            return -1;
        }
        int failed = stamp_value(PyList_GET_ITEM(stamps, count - hitcount), found);
        Py_DECREF(stamps);
        return failed ? -1 : 1;
    }
    long long top[TOP_MAX]; /* the newest so far, newest first */
    Py_ssize_t kept = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        long long value;
        if (stamp_value(PyList_GET_ITEM(entry, 2 + i), &value)) return -1;
        if (kept == hitcount && value <= top[kept - 1]) continue;
        Py_ssize_t j = kept < hitcount ? kept++ : kept - 1;
        for (; j > 0 && top[j - 1] < value; j--) top[j] = top[j - 1];
        top[j] = value;
    }
    *found = top[hitcount - 1];
    return 1;
}

static int check_targets(Scan *sc, PyObject *ip, PyObject *addr, int family, long long line_no,
                         PyObject **keys);

/* A failure into the inline tables, then the rules of its family (the Python loop's
 * "a failure" block). */
static int inline_failure(Scan *sc, PyObject *ip, PyObject *addr, int family,
                          long long line_no) {
    if (!sc->tick_known || sc->time_i != sc->tick_time) {
        sc->tick_time = sc->time_i;
        sc->tick = muldiv_floor(sc->time_i, sc->hz, NS); /* ns_to_ticks */
        sc->tick_known = 1;
    }
    PyObject *now = PyLong_FromLongLong(sc->tick);
    if (now == NULL) return -1;
    PyObject *keys[MAX_TABLES] = {NULL}; /* each table's key of the address */
    int result = -1;
    for (int i = 0; i < sc->n_tables; i++) {
        keys[i] = table_key(&sc->tables[i], family, addr);
        if (keys[i] == NULL || table_add(&sc->tables[i], keys[i], now)) goto done;
    }
    result = check_targets(sc, ip, addr, family, line_no, keys);
done:
    Py_DECREF(now);
    for (int i = 0; i < sc->n_tables; i++) Py_XDECREF(keys[i]);
    return result;
}

/* The rules of the family after a failure's writes (the Python loop's second loop). */
static int check_targets(Scan *sc, PyObject *ip, PyObject *addr, int family, long long line_no,
                         PyObject **keys) {
    int fam = family == 4 ? 0 : 1;
    for (int i = 0; i < sc->n_targets[fam]; i++) {
        Target *g = &sc->targets[fam][i];
        long long stamp = 0;
        int has = hit_stamp(&sc->tables[g->table], keys[g->table], g->hitcount, &stamp);
        if (has < 0) return -1;
        if (!has) continue;
        long long until = stamp + g->window;
        if (until <= sc->tick) continue;
        /* _ban, for a ban in force that moves on (most events of an attack) */
        PyObject *masked = PyNumber_And(addr, g->key_mask);
        PyObject *held_key = masked ? PyTuple_Pack(2, g->rule_text, masked) : NULL;
        Py_XDECREF(masked);
        if (held_key == NULL) return -1;
        PyObject *held = PyDict_GetItemWithError(sc->held_bans, held_key);
        Py_DECREF(held_key);
        if (held == NULL && PyErr_Occurred()) return -1;
        if (held != NULL) {
            Py_INCREF(held);
            PyObject *held_until = PyObject_GetAttr(held, s_until_ns);
            int overflow = 0;
            long long held_i = held_until ? PyLong_AsLongLongAndOverflow(held_until, &overflow) : -1;
            Py_XDECREF(held_until);
            if (held_i == -1 && PyErr_Occurred()) {
                Py_DECREF(held);
                return -1;
            }
            /* (a value beyond 64 bits, or an end whose ns would be: _ban decides) */
            int fits = !overflow && until <= (LLONG_MAX / NS) * sc->hz &&
                       until >= (LLONG_MIN / NS) * sc->hz;
            if (fits && held_i > sc->time_i) {
                long long until_ns = muldiv_floor(until, NS, sc->hz); /* ticks_to_ns */
                int failed = 0;
                if (until_ns != held_i) {
                    PyObject *value = PyLong_FromLongLong(until_ns > held_i ? until_ns : held_i);
                    PyObject *extended = PyObject_GetAttr(held, s_extended);
                    PyObject *one = PyLong_FromLong(1);
                    PyObject *more = extended && one ? PyNumber_Add(extended, one) : NULL;
                    failed = value == NULL || more == NULL ||
                             set_attr(held, s_until_ns, value) || set_attr(held, s_extended, more);
                    Py_XDECREF(value);
                    Py_XDECREF(extended);
                    Py_XDECREF(one);
                    Py_XDECREF(more);
                }
                Py_DECREF(held);
                if (failed) return -1;
                continue;
            }
            Py_DECREF(held);
        }
        PyObject *until_obj = PyLong_FromLongLong(until);
        PyObject *number = until_obj ? PyLong_FromLongLong(line_no) : NULL;
        if (number == NULL) {
            Py_XDECREF(until_obj);
            return -1;
        }
        PyObject *args[6] = {g->rule, ip, addr, sc->time, until_obj, number};
        PyObject *done = PyObject_Vectorcall(sc->f_ban, args, 6, NULL);
        Py_DECREF(until_obj);
        Py_DECREF(number);
        if (done == NULL) return -1;
        Py_DECREF(done);
    }
    return 0;
}

/* LogReplay._event(reader, outcome, ip, time, kind, number, user, invalid, program, key) */
static int event(Scan *sc, PyObject *outcome, PyObject *ip, PyObject *kind, long long line_no,
                 PyObject *user, int invalid, PyObject *program, PyObject *key) {
    if (flush_counts(sc)) return -1;
    PyObject *number = PyLong_FromLongLong(line_no);
    if (number == NULL) return -1;
    PyObject *args[10] = {sc->reader, outcome, ip, sc->time, kind, number,
                          user ? user : Py_None, invalid ? Py_True : Py_False, program, key};
    PyObject *done = PyObject_Vectorcall(sc->f_event, args, 10, NULL);
    Py_DECREF(number);
    if (done == NULL) return -1;
    Py_DECREF(done);
    return 0;
}

/* ---- one line ------------------------------------------------------------------------ */

/* Hands the line between the '\n' at ``a`` and the one at ``b`` to LogReplay._gap_line. */
static int gap_line(Scan *sc, Py_ssize_t a, Py_ssize_t b, long long number) {
    if (flush_counts(sc)) return -1;
    PyObject *result = PyObject_CallFunction(sc->f_gap_line, "OnnLnO", sc->text, a, b, number,
                                             sc->known, sc->last_ns);
    if (result == NULL) return -1;
    Py_ssize_t known;
    PyObject *last_ns;
    if (!PyArg_ParseTuple(result, "nO", &known, &last_ns)) {
        Py_DECREF(result);
        return -1;
    }
    sc->known = known;
    set_last_ns(sc, last_ns);
    Py_DECREF(result);
    reset_stamp(sc);
    return 0;
}

static int matched_line(Scan *sc, Py_ssize_t start, Py_ssize_t pos, long long line_no,
                        Span stamp, Span host_span, int program, Span pid_span, Fields *f);

/* The line [ls, le) (text[le] == '\n', text[ls - 1] == '\n'): 1 read in bulk, 0 not. */
static int one_line(Scan *sc, Py_ssize_t ls, Py_ssize_t le, long long line_no) {
    const unsigned char *s = sc->s;
    Py_ssize_t be = le;
    while (be > ls && (s[be - 1] == ' ' || s[be - 1] == '\t' || s[be - 1] == '\r')) be--;
    int plain = le - ls <= MAX_READ && printable(s + ls, be - ls);
    if (plain) {
        Span stamp, host, program, pid;
        Py_ssize_t p = read_stamp_host(s, ls, be, &stamp, &host);
        Py_ssize_t m = p < 0 ? -1 : read_program_pid(s, p, be, &program, &pid);
        int which = m < 0 ? -1 : program_of(s, program.a, program.b);
        Fields f;
        if (which >= 0 && read_form(s, m, be, &f) != F_NONE) {
            if (matched_line(sc, ls - 1, le, line_no, stamp, host, which, pid, &f)) return -1;
            return 1;
        }
        if (p >= 0 && harmless(s, p, m, which, host, be)) return 0;
    }
    return gap_line(sc, ls - 1, le, line_no) ? -1 : 0;
}

static int matched_line(Scan *sc, Py_ssize_t start, Py_ssize_t pos, long long line_no,
                        Span stamp, Span host_span, int program, Span pid_span, Fields *f) {
    int result = -1;
    PyObject *address = NULL, *parsed = NULL, *pid = NULL, *key = NULL,
             *session = NULL, *user = NULL, *kind = NULL, *method = NULL,
             *port = NULL;
    if (stamp_time(sc, stamp.a, stamp.b)) return -1;
    Py_ssize_t address_len = f->addr.b - f->addr.a;
    CachedAddress *slot = NULL;
    if (address_len < ADDRESS_MAX) {
        /* (a slot by the text's length and its first and last eight bytes: the line
         * holds at least 16 bytes before the address) */
        uint64_t first, last;
        memcpy(&first, sc->s + f->addr.b - 8 - (address_len >= 8 ? address_len - 8 : 0), 8);
        memcpy(&last, sc->s + f->addr.b - 8, 8);
        uint64_t hash = (first * 0x9e3779b97f4a7c15ull) ^ (last * 0xc2b2ae3d27d4eb4full) ^
                        (uint64_t)address_len;
        slot = &sc->address_cache[(hash >> 40) & (ADDRESS_CACHE - 1)];
        if (slot->parsed != NULL && slot->len == address_len &&
            memcmp(slot->text, sc->s + f->addr.a, address_len) == 0)
            parsed = Py_NewRef(slot->parsed);
    }
    long long quad = parsed == NULL ? ipv4_value(sc->s, f->addr) : -1;
    uint64_t hi = 0, lo = 0;
    int six = parsed == NULL && quad < 0 && ipv6_value(sc->s, f->addr, &hi, &lo);
    if (six && hi == 0 && (lo >> 32) == 0xffff) { /* parse_address: ::ffff:a.b.c.d is IPv4 */
        six = 0;
        quad = (long long)(lo & 0xffffffffu);
    }
    if (quad >= 0 || six) {
        PyObject *value = NULL;
        if (six) {
            unsigned char bytes[16];
            for (int i = 0; i < 8; i++) {
                bytes[i] = (unsigned char)(hi >> (56 - 8 * i));
                bytes[8 + i] = (unsigned char)(lo >> (56 - 8 * i));
            }
            value = _PyLong_FromByteArray(bytes, 16, 0, 0);
        } else {
            value = PyLong_FromLongLong(quad);
        }
        PyObject *ip = value ? PyObject_CallOneArg(six ? sc->ipv6_class : sc->ipv4_class, value)
                             : NULL;
        parsed = ip ? Py_BuildValue("(OOi)", ip, value, six ? 6 : 4) : NULL;
        Py_XDECREF(value);
        Py_XDECREF(ip);
        if (parsed == NULL) goto done;
        if (slot != NULL) {
            Py_XSETREF(slot->parsed, Py_NewRef(parsed));
            memcpy(slot->text, sc->s + f->addr.a, address_len);
            slot->len = address_len;
        }
    }
    if (parsed == NULL) {
        address = text_of(sc, f->addr);
        if (address == NULL) goto done;
        parsed = cached(sc->addresses, address, sc->f_address);
        if (parsed == NULL) goto done;
        if (slot != NULL) {
            Py_XSETREF(slot->parsed, Py_NewRef(parsed));
            memcpy(slot->text, sc->s + f->addr.a, address_len);
            slot->len = address_len;
        }
    }
    if (parsed == Py_None) { /* no address (sshd_messages._obs: no event, nothing moved) */
        result = 0;
        goto done;
    }
    PyObject *host = host_of(sc, host_span); /* borrowed */
    if (host == NULL) goto done;
    long pid_value = 0; /* LogReplay._pid: int(text[:9]) */
    for (Py_ssize_t i = pid_span.a; i < pid_span.b && i < pid_span.a + 9; i++)
        pid_value = pid_value * 10 + (sc->s[i] - '0');
    /* the connection's key (host, pid), kept for its next lines */
    CachedKey *kept = &sc->key_cache[pid_value & (KEY_CACHE - 1)];
    if (kept->key != NULL && kept->host == host && kept->pid == pid_value) {
        key = Py_NewRef(kept->key);
    } else {
        pid = PyLong_FromLong(pid_value);
        if (pid == NULL) goto done;
        key = PyTuple_Pack(2, host, pid);
        if (key == NULL) goto done;
        Py_XSETREF(kept->key, Py_NewRef(key));
        Py_XSETREF(kept->host, Py_NewRef(host));
        kept->pid = pid_value;
    }
    session = PyDict_GetItemWithError(sc->sessions, key);
    if (session == NULL && PyErr_Occurred()) goto done;
    Py_XINCREF(session);
    int pending = session == NULL ? 0 : field_true(session, A_PENDING);
    if (pending < 0) goto done;
    if (sc->time == Py_None || !sc->time_fits || pending) {
        /* no time of its own, or a count waiting in the connection: the usual way */
        if (flush_counts(sc)) goto done;
        PyObject *got = PyObject_CallFunction(sc->f_slow_line, "OnnnLO", sc->text, sc->known,
                                              start, pos, line_no, sc->last_ns);
        if (got == NULL) goto done;
        set_last_ns(sc, got);
        Py_DECREF(got);
        reset_stamp(sc);
        sc->known = pos;
        result = 0;
        goto done;
    }
    set_last_ns(sc, sc->time);
    sc->known = pos;
    PyObject *ip = PyTuple_GET_ITEM(parsed, 0), *addr = PyTuple_GET_ITEM(parsed, 1);
    long family = PyLong_AsLong(PyTuple_GET_ITEM(parsed, 2));
    if (family == -1 && PyErr_Occurred()) goto done;
    /* SshdParser.feed_plain from here: the session, then the action */
    if (session == NULL) {
        session = PyObject_CallNoArgs(sc->session_class);
        if (session == NULL || PyObject_SetItem(sc->sessions, key, session)) goto done;
        if (PyDict_GET_SIZE(sc->sessions) > sc->session_limit) {
            PyObject *pair = PyObject_CallOneArg(sc->sessions_popitem, Py_False);
            if (pair == NULL) goto done;
            Py_DECREF(pair);
        }
    } else {
        PyObject *moved = PyObject_CallOneArg(sc->sessions_move_to_end, key);
        if (moved == NULL) goto done;
        Py_DECREF(moved);
    }
    if (set_field(session, A_ADDRESS, ip)) goto done;
    if (f->has_port && f->port.b - f->port.a <= 5) { /* sshd_messages._port */
        long value = 0;
        for (Py_ssize_t i = f->port.a; i < f->port.b; i++) value = value * 10 + (sc->s[i] - '0');
        if (value) { /* int(port) or session.port */
            port = PyLong_FromLong(value);
            if (port == NULL || set_field(session, A_PORT, port)) goto done;
        }
    }
    PyObject *program_name = p_names[program];
    int invalid = 0;
    if (f->has_user) {
        user = text_of(sc, f->user);
        if (user == NULL) goto done;
    }
    if (f->form == F_AUTH) {
        invalid = f->invalid_group;
        if (set_field(session, A_USER, user) ||
            set_field(session, A_USER_INVALID, invalid ? Py_True : Py_False))
            goto done;
        method = text_of(sc, f->method);
        if (method == NULL) goto done;
        kind = PyDict_GetItemWithError(sc->kinds, method); /* kinds.get(m) or self._kind(m) */
        if (kind != NULL && PyObject_IsTrue(kind) == 1)
            Py_INCREF(kind);
        else if (PyErr_Occurred() || (kind = PyObject_CallOneArg(sc->f_kind, method)) == NULL)
            goto done;
        if (sc->s[f->verb.a] == 'A') { /* Accepted */
            if (set_field(session, A_AUTHENTICATED, Py_True)) goto done;
            result = event(sc, sc->o_success, ip, kind, line_no, user, invalid, program_name, key);
            goto done;
        }
        if (set_field(session, A_COUNTED, Py_True)) goto done;
    } else if (f->form == F_DISCONNECTED || f->form == F_CONNECTION) { /* Action.CLOSE */
        if (PyObject_DelItem(sc->sessions, key)) goto done;
        if (user != NULL) {
            if (set_field(session, A_USER, user) ||
                set_field(session, A_USER_INVALID, f->who == w_invalid_user ? Py_True : Py_False))
                goto done;
        }
        int authenticated = field_true(session, A_AUTHENTICATED);
        int counted = authenticated ? 1 : field_true(session, A_COUNTED);
        if (authenticated < 0 || counted < 0) goto done;
        if (authenticated || f->who == w_user || counted) {
            result = 0;
            goto done;
        }
        PyObject *session_user = get_field(session, A_USER);
        if (session_user == NULL) goto done;
        int has_user = session_user != Py_None;
        if ((f->preauth || f->who != NULL) && has_user) {
            if (set_field(session, A_COUNTED, Py_True)) {
                Py_DECREF(session_user);
                goto done;
            }
            kind = Py_NewRef(sc->k_preauth_close);
            Py_XSETREF(user, session_user);
            int invalid_user = field_true(session, A_USER_INVALID);
            if (invalid_user < 0) goto done;
            invalid = invalid_user;
        } else {
            Py_DECREF(session_user);
            int banner = (f->preauth || f->who != NULL) ? 1 : field_true(session, A_BANNER);
            if (banner < 0) goto done;
            if (banner) {
                if (sc->take_probe) {
                    result = event(sc, sc->o_probe, ip, sc->k_preauth_close, line_no, NULL, 0,
                                   program_name, key);
                    goto done;
                }
                if (count_kind(sc->probe_counts, &sc->n_probe_counts, sc->k_preauth_close))
                    goto done;
            }
            result = 0;
            goto done;
        }
    } else { /* Action.CONTEXT */
        PyObject *context;
        if (f->form == F_PAM) {
            context = sc->k_pam;
            if (user != NULL && (set_field(session, A_USER, user) ||
                                 set_field(session, A_USER_INVALID, Py_False)))
                goto done;
        } else if (f->form == F_INVALID) {
            context = sc->k_invalid_user;
            invalid = 1;
            if (set_field(session, A_USER, user) || set_field(session, A_USER_INVALID, Py_True))
                goto done;
        } else {
            context = sc->k_disconnect;
        }
        if (sc->take_probe) {
            result = event(sc, sc->o_probe, ip, context, line_no, user, invalid, program_name, key);
            goto done;
        }
        result = count_kind(sc->probe_counts, &sc->n_probe_counts, context);
        goto done;
    }
    /* a failure (the line's own, or a close's count) */
    if (!sc->inline_failures) {
        result = event(sc, sc->o_failure, ip, kind, line_no, user, invalid, program_name, key);
        goto done;
    }
    if (count_kind(sc->failure_counts, &sc->n_failure_counts, kind)) goto done;
    result = inline_failure(sc, ip, addr, (int)family, line_no);
done:
    Py_XDECREF(address);
    Py_XDECREF(parsed);
    Py_XDECREF(pid);
    Py_XDECREF(key);
    Py_XDECREF(session);
    Py_XDECREF(user);
    Py_XDECREF(kind);
    Py_XDECREF(method);
    Py_XDECREF(port);
    return result;
}

/* ---- the entry point ----------------------------------------------------------------- */

static int load_table(Table *t, PyObject *parts) {
    /* (table, entries, mask4, mask6, v6tag, ring, limit, version, changed) */
    if (!PyArg_ParseTuple(parts, "OO!OOOnnO!O", &t->table, &PyDict_Type, &t->entries, &t->mask4,
                          &t->mask6, &t->v6tag, &t->ring, &t->limit, &PyList_Type, &t->version,
                          &t->changed))
        return -1;
    if (PyList_GET_SIZE(t->version) != 1 || t->ring < 1) {
        PyErr_SetString(PyExc_ValueError, "recentd.logs._bulk: a table's parts are not its own");
        return -1;
    }
    t->created = t->evictions = 0;
    t->move_to_end = PyObject_GetAttr(t->entries, s_move_to_end);
    t->popitem = t->move_to_end ? PyObject_GetAttr(t->entries, s_popitem) : NULL;
    return t->popitem == NULL ? -1 : 0;
}

static int load_targets(Scan *sc, int fam, PyObject *list) {
    if (!PyList_Check(list) || PyList_GET_SIZE(list) > MAX_TARGETS) {
        PyErr_SetString(PyExc_ValueError, "recentd.logs._bulk: targets");
        return -1;
    }
    sc->n_targets[fam] = (int)PyList_GET_SIZE(list);
    for (int i = 0; i < sc->n_targets[fam]; i++) {
        Target *g = &sc->targets[fam][i];
        if (!PyArg_ParseTuple(PyList_GET_ITEM(list, i), "iLLOOO", &g->table, &g->hitcount,
                              &g->window, &g->rule, &g->rule_text, &g->key_mask))
            return -1;
        if (g->table < 0 || g->table >= sc->n_tables) {
            PyErr_SetString(PyExc_ValueError, "recentd.logs._bulk: a target's table");
            return -1;
        }
    }
    return 0;
}

static int finish_tables(Scan *sc) {
    for (int i = 0; i < sc->n_tables; i++) {
        Table *t = &sc->tables[i];
        PyObject *names[2] = {s_created, s_evictions};
        long long deltas[2] = {t->created, t->evictions};
        for (int k = 0; k < 2; k++) {
            if (!deltas[k]) continue;
            PyObject *old = PyObject_GetAttr(t->table, names[k]);
            PyObject *add = PyLong_FromLongLong(deltas[k]);
            PyObject *sum = old && add ? PyNumber_Add(old, add) : NULL;
            Py_XDECREF(old);
            Py_XDECREF(add);
            if (sum == NULL) return -1;
            int failed = PyObject_SetAttr(t->table, names[k], sum);
            Py_DECREF(sum);
            if (failed) return -1;
        }
        t->created = t->evictions = 0;
    }
    return 0;
}

PyDoc_STRVAR(scan_doc,
"scan(text, first, context) -> (known, last_ns, matched, lines)\n\n"
"LogReplay._bulk_chunk's loop over ``text`` (it starts with '\\n', every line ends with\n"
"'\\n'), its first line numbered ``first``; ``context`` is\n"
"LogReplay._compiled_context(). Returns the end of the last line whose time is known\n"
"(``known``), the last time seen, the number of lines read in bulk and of all lines.");

static PyObject *run_scan(Scan *sc, PyObject *args) {
    PyObject *text, *context;
    long long first;
    if (!PyArg_ParseTuple(args, "ULO!", &text, &first, &PyTuple_Type, &context)) return NULL;
    sc->text = text;
    sc->n = PyUnicode_GET_LENGTH(text);
    if (PyUnicode_KIND(text) == PyUnicode_1BYTE_KIND) {
        sc->s = PyUnicode_1BYTE_DATA(text);
    } else {
        /* A character over U+00FF (a U+FFFD where the file's bytes were not UTF-8, a
         * user name in any script): read a copy with each such character as 0xff, at
         * the same index.  Its line is not printable ASCII, so it is never read here
         * (declined: the usual way, from ``text`` itself). */
        unsigned char *shadow = PyMem_Malloc(sc->n ? sc->n : 1);
        if (shadow == NULL) return PyErr_NoMemory();
        int kind = PyUnicode_KIND(text);
        const void *data = PyUnicode_DATA(text);
        for (Py_ssize_t i = 0; i < sc->n; i++) {
            Py_UCS4 ch = PyUnicode_READ(kind, data, i);
            shadow[i] = ch > 0xff ? 0xff : (unsigned char)ch;
        }
        sc->s = sc->shadow = shadow;
    }
    PyObject *tables, *targets4, *targets6, *last_ns;
    int inline_failures, take_probe, by_minute;
    /* the order of replay._CompiledContext's fields */
    if (!PyArg_ParseTuple(context, "O!nOpO!O!O!pLO!O!O!pO!OOOOOOOOOOOOOOOOOOOOO",
                          &PyDict_Type, &sc->sessions, &sc->session_limit, &sc->session_class,
                          &inline_failures, &PyList_Type, &tables, &PyList_Type, &targets4,
                          &PyList_Type, &targets6, &take_probe, &sc->hz, &PyDict_Type,
                          &sc->held_bans, &PyDict_Type, &sc->addresses, &PyDict_Type, &sc->kinds,
                          &by_minute, &PyDict_Type, &sc->minutes,
                          &sc->reader, &sc->failures, &sc->probes, &sc->k_pam, &sc->k_invalid_user,
                          &sc->k_disconnect, &sc->k_preauth_close, &sc->o_failure, &sc->o_success,
                          &sc->o_probe, &sc->f_stamp_time, &sc->f_classic_time, &sc->f_address,
                          &sc->f_kind, &sc->f_gap_line, &sc->f_slow_line, &sc->f_event,
                          &sc->f_ban, &last_ns, &sc->ipv4_class, &sc->ipv6_class))
        return NULL;
    sc->inline_failures = inline_failures;
    sc->take_probe = take_probe;
    sc->by_minute = by_minute;
    if (sc->hz <= 0 || sc->hz > 100000 || PyList_GET_SIZE(tables) > MAX_TABLES) {
        PyErr_SetString(PyExc_ValueError, "recentd.logs._bulk.scan: hz or tables");
        return NULL;
    }
    sc->n_tables = (int)PyList_GET_SIZE(tables);
    sc->last_ns = Py_NewRef(last_ns);
    sc->time = Py_NewRef(Py_None);
    long long matched = 0, line = first;
    Py_ssize_t p = 0;
    int failed = 0;
    for (int i = 0; i < sc->n_tables && !failed; i++)
        failed = load_table(&sc->tables[i], PyList_GET_ITEM(tables, i)) != 0;
    if (!failed) failed = load_targets(sc, 0, targets4) || load_targets(sc, 1, targets6);
    if (!failed) failed = load_session_slots(sc->session_class) != 0;
    if (!failed) {
        sc->sessions_move_to_end = PyObject_GetAttr(sc->sessions, s_move_to_end);
        sc->sessions_popitem = sc->sessions_move_to_end ? PyObject_GetAttr(sc->sessions, s_popitem) : NULL;
        failed = sc->sessions_popitem == NULL;
    }
    if (failed) {
        /* (nothing read: no counts to flush) */
    } else if (sc->n < 1 || sc->s[0] != '\n' || sc->s[sc->n - 1] != '\n') {
        PyErr_SetString(PyExc_ValueError,
                        "recentd.logs._bulk.scan: a text that starts and ends with '\\n'");
        failed = 1;
    }
    while (!failed && p < sc->n - 1) { /* sc->s[p] == '\n' */
        const unsigned char *next = memchr(sc->s + p + 1, '\n', sc->n - p - 1);
        Py_ssize_t le = next - sc->s;
        int read = one_line(sc, p + 1, le, line);
        if (read < 0) {
            failed = 1;
            break;
        }
        matched += read;
        p = le;
        line++;
    }
    /* the counts and the tables' counters, also after an error (what was done is done) */
    PyObject *error_type, *error_value, *error_trace;
    PyErr_Fetch(&error_type, &error_value, &error_trace);
    if (flush_counts(sc) || finish_tables(sc)) {
        failed = 1;
        Py_XDECREF(error_type);
        Py_XDECREF(error_value);
        Py_XDECREF(error_trace);
    } else if (error_type != NULL) {
        PyErr_Restore(error_type, error_value, error_trace);
    }
    PyObject *result =
        failed ? NULL : Py_BuildValue("nOLL", sc->known, sc->last_ns, matched, line - first);
    Py_XDECREF(sc->last_ns);
    Py_XDECREF(sc->time);
    Py_XDECREF(sc->minute_base);
    Py_XDECREF(sc->host);
    Py_XDECREF(sc->sessions_move_to_end);
    Py_XDECREF(sc->sessions_popitem);
    for (int i = 0; i < sc->n_tables; i++) {
        Py_XDECREF(sc->tables[i].move_to_end);
        Py_XDECREF(sc->tables[i].popitem);
    }
    for (int i = 0; i < ADDRESS_CACHE; i++) Py_XDECREF(sc->address_cache[i].parsed);
    for (int i = 0; i < KEY_CACHE; i++) {
        Py_XDECREF(sc->key_cache[i].host);
        Py_XDECREF(sc->key_cache[i].key);
    }
    return result;
}

static PyObject *scan(PyObject *module, PyObject *args) {
    /* (on the heap: its caches are ~100 KB) */
    Scan *sc = PyMem_Calloc(1, sizeof *sc);
    if (sc == NULL) return PyErr_NoMemory();
    PyObject *result = run_scan(sc, args);
    PyMem_Free(sc->shadow);
    PyMem_Free(sc);
    return result;
}

PyDoc_STRVAR(count_lines_doc,
"count_lines(text, prefix) -> (lines, prefixed)\n\n"
"``text.count('\\n')`` and ``text.count('\\n' + prefix) + text.startswith(prefix)`` in one\n"
"pass (memchr: str.count's loop reads a 1 MB chunk in ~0.4 ms, this in ~0.05).");

static PyObject *count_lines(PyObject *module, PyObject *args) {
    PyObject *text, *prefix;
    if (!PyArg_ParseTuple(args, "UU", &text, &prefix)) return NULL;
    if (PyUnicode_KIND(text) != PyUnicode_1BYTE_KIND || PyUnicode_KIND(prefix) != PyUnicode_1BYTE_KIND) {
        PyErr_SetString(PyExc_ValueError, "recentd.logs._bulk.count_lines: one byte per character");
        return NULL;
    }
    const unsigned char *s = PyUnicode_1BYTE_DATA(text), *want = PyUnicode_1BYTE_DATA(prefix);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text), k = PyUnicode_GET_LENGTH(prefix);
    long long lines = 0, prefixed = (k <= n && memcmp(s, want, k) == 0);
    const unsigned char *at = s, *end = s + n;
    while ((at = memchr(at, '\n', end - at)) != NULL) {
        lines++;
        at++;
        if (k <= end - at && memcmp(at, want, k) == 0) prefixed++;
    }
    return Py_BuildValue("LL", lines, prefixed);
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_VARARGS, scan_doc},
    {"count_lines", count_lines, METH_VARARGS, count_lines_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "recentd.logs._bulk",
    "The compiled twin of LogReplay._bulk_chunk (see the comment at the top of _bulk.c).", -1,
    methods, NULL, NULL, NULL, NULL};

#define INTERN(var, text)                                  \
    do {                                                   \
        if ((var = PyUnicode_InternFromString(text)) == NULL) return NULL; \
    } while (0)

PyMODINIT_FUNC PyInit__bulk(void) {
    INTERN(s_address, "address");
    INTERN(s_port, "port");
    INTERN(s_user, "user");
    INTERN(s_user_invalid, "user_invalid");
    INTERN(s_counted, "counted");
    INTERN(s_authenticated, "authenticated");
    INTERN(s_pending, "pending");
    INTERN(s_banner, "banner");
    INTERN(s_popitem, "popitem");
    INTERN(s_move_to_end, "move_to_end");
    INTERN(s_until_ns, "until_ns");
    INTERN(s_extended, "extended");
    INTERN(s_created, "created");
    INTERN(s_evictions, "evictions");
    INTERN(w_invalid_user, "invalid user");
    INTERN(w_authenticating_user, "authenticating user");
    INTERN(w_user, "user");
    for (int i = 0; i < 4; i++) INTERN(p_names[i], PROGRAMS[i]);
    return PyModule_Create(&module_def);
}
