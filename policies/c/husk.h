/*
 * husk.h: a small C SDK for husk hook modules (docs/hooks.md §5).
 *
 * A policy is one C file that includes this header once and defines
 *
 *     husk_decision husk_policy_decide(husk_point point);
 *     const char *husk_policy_init(husk_value config);  // unless HUSK_NO_INIT
 *
 * and is built freestanding, with no libc and no WASI:
 *
 *     clang --target=wasm32 -nostdlib -O2 -mbulk-memory \
 *           -Wl,--no-entry -Wl,--strip-all -I policies/c -o policy.wasm policy.c
 *
 * (`huskctl policy build DIR` does this for a directory of C files). The
 * module is a few kB: it has no runtime to start, and reads the event
 * through husk's host functions (json_get, json_match, set_new,
 * json_index), which husk runs natively.
 *
 * The header defines the ABI's exports (husk_hook_abi_v1, husk_alloc,
 * husk_decide, husk_init), imports husk's host functions, and gives:
 *
 *   - reading: husk_root, husk_at (a JSON Pointer), husk_kind, husk_bool,
 *     husk_int, husk_string (decoded, as encoding/json decodes), husk_is,
 *     husk_elem, husk_iter/husk_next (members and elements);
 *   - sets: husk_set (a JSON array literal), husk_set_of (an array of the
 *     input), husk_find, husk_in, husk_prefix_in;
 *   - text: husk_buf (a growing byte buffer), with JSON string escaping;
 *   - decisions: husk_allow, husk_deny, husk_patch;
 *   - husk_log.
 *
 * Memory is one arena: husk_alloc resets it at the start of every call,
 * so whatever a call allocates (decoded strings, buffers, its decision)
 * lives until the next call, as do the values and the strings read from
 * the event (a string without escapes points into the event itself). What husk_policy_init allocates (copies of
 * its configuration) is kept for the instance's life. An allocation that
 * cannot be satisfied traps: the call fails, and the hook's on_error
 * decides; a policy never answers from a half-built value.
 *
 * Every length and offset the host hands back is checked against the
 * input before it is used: a value outside the input reads as missing.
 * Include this header in exactly one C file of a module.
 */
#ifndef HUSK_H
#define HUSK_H

#include <stddef.h>
#include <stdint.h>

/* ---- The host's functions (module "husk", docs/hooks.md §4). ---- */

#define HUSK_IMPORT(name) __attribute__((import_module("husk"), import_name(name)))
HUSK_IMPORT("log") void husk__host_log(int32_t level, const char *ptr, int32_t len);
HUSK_IMPORT("json_get") int64_t husk__host_json_get(int32_t base, const char *ptr, int32_t len);
HUSK_IMPORT("set_new") int32_t husk__host_set_new(const char *ptr, int32_t len);
HUSK_IMPORT("json_match") int32_t husk__host_json_match(int32_t off, int32_t set, int32_t mode);
HUSK_IMPORT("json_index") int32_t husk__host_json_index(uint32_t *ptr, int32_t len);
/* HUSK_FN marks the SDK's functions: a policy uses some of them. */
#define HUSK_FN static __attribute__((unused))
#define HUSK_EXPORT(name) __attribute__((export_name(name), visibility("default")))

/* ---- What a freestanding module needs of libc (clang emits calls). ---- */

void *memcpy(void *dst, const void *src, size_t n) {
	unsigned char *d = dst;
	const unsigned char *s = src;
	while (n--)
		*d++ = *s++;
	return dst;
}

void *memmove(void *dst, const void *src, size_t n) {
	unsigned char *d = dst;
	const unsigned char *s = src;
	if (d < s) {
		while (n--)
			*d++ = *s++;
	} else {
		while (n--)
			d[n] = s[n];
	}
	return dst;
}

void *memset(void *dst, int c, size_t n) {
	unsigned char *d = dst;
	while (n--)
		*d++ = (unsigned char)c;
	return dst;
}

int memcmp(const void *a, const void *b, size_t n) {
	const unsigned char *x = a, *y = b;
	for (; n; n--, x++, y++)
		if (*x != *y)
			return *x < *y ? -1 : 1;
	return 0;
}

size_t strlen(const char *s) {
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

/* husk_strlen is strlen, which clang computes while compiling for a string
 * literal: a loop in a module costs a deadline check per iteration (about
 * 30 ns under wazero), so the SDK avoids loops on its hot paths. */
#define husk_strlen(s) ((int32_t)__builtin_strlen(s))

/* husk__load8 reads 8 bytes at p (unaligned). */
HUSK_FN uint64_t husk__load8(const char *p) {
	uint64_t w;
	__builtin_memcpy(&w, p, 8);
	return w;
}

/* husk__eq_short reports whether the n bytes at a and b are equal, for
 * 8 <= n <= 24, without a loop. */
HUSK_FN int husk__eq_short(const char *a, const char *b, int32_t n) {
	uint64_t d = (husk__load8(a) ^ husk__load8(b)) | (husk__load8(a + n - 8) ^ husk__load8(b + n - 8));
	if (n > 16)
		d |= husk__load8(a + 8) ^ husk__load8(b + 8);
	return d == 0;
}

/* husk__plain returns how many of the n bytes at s are printable ASCII
 * other than '"' and '\\' (what a JSON string holds as it stands),
 * looking at 8 bytes per step. */
HUSK_FN int32_t husk__plain(const char *s, int32_t n) {
	const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
	int32_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t w = husk__load8(s + i), q = w ^ (ones * '"'), b = w ^ (ones * '\\');
		/* With no byte >= 0x80: (x - ones*k) & ~x & highs is nonzero iff
		 * a byte of x is below k (k = 1: a zero byte). */
		if ((w & highs) || ((w - ones * 0x20) & ~w & highs) || ((q - ones) & ~q & highs) || ((b - ones) & ~b & highs))
			break;
	}
	for (; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\')
			break;
	}
	return i;
}

/* ---- The arena. ---- */

extern unsigned char __heap_base;

static uintptr_t husk__top;   /* next free byte; 0 until first use */
static uintptr_t husk__floor; /* where each call's allocations start */

/* husk__mem_end is the end of linear memory. */
HUSK_FN uintptr_t husk__mem_end(void) { return (uintptr_t)__builtin_wasm_memory_size(0) * 65536; }

/* husk_alloc_raw returns n bytes (8-aligned) of the arena, growing memory
 * as needed, or NULL. */
HUSK_FN void *husk_alloc_raw(int32_t n) {
	if (husk__top == 0)
		husk__top = husk__floor = ((uintptr_t)&__heap_base + 7) & ~(uintptr_t)7;
	if (n < 0)
		return NULL;
	uintptr_t p = husk__top, end = p + (uintptr_t)n;
	if (end < p || end > 0xFFFFFFF0u)
		return NULL;
	if (end > husk__mem_end()) {
		uintptr_t pages = (end - husk__mem_end() + 65535) / 65536;
		if (__builtin_wasm_memory_grow(0, pages) == (size_t)-1)
			return NULL;
	}
	husk__top = (end + 7) & ~(uintptr_t)7;
	return (void *)p;
}

/* husk_alloc_or_trap is husk_alloc_raw that fails the call instead of
 * returning NULL. */
HUSK_FN void *husk_alloc_or_trap(int32_t n) {
	void *p = husk_alloc_raw(n);
	if (!p)
		__builtin_trap();
	return p;
}

/* ---- The input of the call: the event, or the config in husk_init. ---- */

static const char *husk__in;   /* NULL outside a call */
static int32_t husk__in_len;
static uint32_t *husk__index;  /* the structural index, once asked for */

/* husk_value is one JSON value of the input: bytes [off, end). off < 0:
 * missing (no such value). A value is valid only during its call. */
typedef struct {
	int32_t off, end;
} husk_value;

static const husk_value husk_missing = {-1, -1};

/* husk_root is the whole input. */
HUSK_FN husk_value husk_root(void) {
	husk_value v = {0, husk__in_len};
	if (!husk__in || husk__in_len <= 0)
		return husk_missing;
	if (husk__in[0] == '{' && husk__in[v.end - 1] == '}')
		return v; /* husk's encoding: no space around it */
	while (v.off < v.end && (husk__in[v.off] == ' ' || husk__in[v.off] == '\n' || husk__in[v.off] == '\t' || husk__in[v.off] == '\r'))
		v.off++;
	while (v.end > v.off && (husk__in[v.end - 1] == ' ' || husk__in[v.end - 1] == '\n' || husk__in[v.end - 1] == '\t' || husk__in[v.end - 1] == '\r'))
		v.end--;
	return v.off < v.end ? v : husk_missing;
}

HUSK_FN int husk_exists(husk_value v) { return v.off >= 0 && v.off < v.end && v.end <= husk__in_len; }

/* husk_at returns the value at JSON Pointer pointer (RFC 6901, NUL-
 * terminated, "/spec/process/args/0") below v, found by the host. */
HUSK_FN husk_value husk_at_n(husk_value v, const char *pointer, int32_t n) {
	if (!husk_exists(v))
		return husk_missing;
	int64_t r = husk__host_json_get(v.off, pointer, n);
	if (r == -1)
		return husk_missing;
	uint32_t off = (uint32_t)((uint64_t)r >> 32), len = (uint32_t)r;
	if (len == 0 || off >= (uint32_t)husk__in_len || len > (uint32_t)husk__in_len - off)
		return husk_missing; /* outside the input: not something we read */
	husk_value out = {(int32_t)off, (int32_t)(off + len)};
	return out;
}

HUSK_FN husk_value husk_at(husk_value v, const char *pointer) { return husk_at_n(v, pointer, husk_strlen(pointer)); }

enum husk_kind { HUSK_MISSING, HUSK_NULL, HUSK_BOOL, HUSK_NUMBER, HUSK_STRING, HUSK_ARRAY, HUSK_OBJECT };

/* husk_kind returns v's JSON type, from its first byte. */
HUSK_FN int husk_kind(husk_value v) {
	if (!husk_exists(v))
		return HUSK_MISSING;
	switch (husk__in[v.off]) {
	case 'n': return HUSK_NULL;
	case 't': case 'f': return HUSK_BOOL;
	case '"': return HUSK_STRING;
	case '[': return HUSK_ARRAY;
	case '{': return HUSK_OBJECT;
	case '-': case '0': case '1': case '2': case '3': case '4':
	case '5': case '6': case '7': case '8': case '9': return HUSK_NUMBER;
	}
	return HUSK_MISSING;
}

HUSK_FN int husk_is_null(husk_value v) { return husk_kind(v) == HUSK_NULL; }

/* husk_bool sets *out to the boolean v holds; 0 if v is not a boolean. */
HUSK_FN int husk_bool(husk_value v, int *out) {
	*out = 0;
	if (!husk_exists(v))
		return 0;
	if (v.end - v.off == 4 && husk__in[v.off] == 't') {
		*out = 1;
		return 1;
	}
	return v.end - v.off == 5 && husk__in[v.off] == 'f';
}

/* husk_int sets *out to the integer v holds: 0 unless v is a number
 * written as an integer (no fraction, no exponent) that fits in int64. */
HUSK_FN int husk_int(husk_value v, int64_t *out) {
	*out = 0;
	if (husk_kind(v) != HUSK_NUMBER)
		return 0;
	const char *p = husk__in + v.off, *e = husk__in + v.end;
	int neg = *p == '-';
	if (neg)
		p++;
	if (p == e)
		return 0;
	uint64_t n = 0, limit = neg ? (uint64_t)1 << 63 : ((uint64_t)1 << 63) - 1;
	for (; p < e; p++) {
		if (*p < '0' || *p > '9')
			return 0;
		uint64_t d = (uint64_t)(*p - '0');
		if (n > (limit - d) / 10)
			return 0;
		n = n * 10 + d;
	}
	*out = neg ? (int64_t)(0 - n) : (int64_t)n;
	return 1;
}

/* husk_str is a byte string: not NUL-terminated, may hold NUL. */
typedef struct {
	const char *p;
	int32_t len;
} husk_str;

HUSK_FN husk_str husk_cstr(const char *s) {
	husk_str out = {s, husk_strlen(s)};
	return out;
}

HUSK_FN int husk_str_eq(husk_str a, husk_str b) { return a.len == b.len && memcmp(a.p, b.p, (size_t)a.len) == 0; }

HUSK_FN int husk_str_has_prefix(husk_str s, husk_str prefix) {
	return s.len >= prefix.len && memcmp(s.p, prefix.p, (size_t)prefix.len) == 0;
}

/* husk__hex reads the 4 hex digits at p; -1 if they are not. */
HUSK_FN int32_t husk__hex(const char *p) {
	int32_t r = 0;
	for (int i = 0; i < 4; i++) {
		char c = p[i];
		if (c >= '0' && c <= '9') r = r * 16 + (c - '0');
		else if (c >= 'a' && c <= 'f') r = r * 16 + (c - 'a' + 10);
		else if (c >= 'A' && c <= 'F') r = r * 16 + (c - 'A' + 10);
		else return -1;
	}
	return r;
}

HUSK_FN char *husk__put_rune(char *d, uint32_t r) {
	if (r < 0x80) {
		*d++ = (char)r;
	} else if (r < 0x800) {
		*d++ = (char)(0xC0 | r >> 6);
		*d++ = (char)(0x80 | (r & 0x3F));
	} else if (r < 0x10000) {
		*d++ = (char)(0xE0 | r >> 12);
		*d++ = (char)(0x80 | (r >> 6 & 0x3F));
		*d++ = (char)(0x80 | (r & 0x3F));
	} else {
		*d++ = (char)(0xF0 | r >> 18);
		*d++ = (char)(0x80 | (r >> 12 & 0x3F));
		*d++ = (char)(0x80 | (r >> 6 & 0x3F));
		*d++ = (char)(0x80 | (r & 0x3F));
	}
	return d;
}

/* husk_utf8_len returns the length of the valid UTF-8 sequence starting at
 * s[0] (n bytes available), or 0 if it is not one (as Go's
 * utf8.DecodeRune: no overlong forms, no surrogates, nothing past
 * U+10FFFF). */
HUSK_FN int husk_utf8_len(const unsigned char *s, int32_t n) {
	unsigned char c = s[0];
	if (c < 0x80)
		return 1;
	int len;
	uint32_t lo = 0x80, hi = 0xBF;
	if (c >= 0xC2 && c <= 0xDF) len = 2;
	else if (c >= 0xE0 && c <= 0xEF) {
		len = 3;
		if (c == 0xE0) lo = 0xA0;
		if (c == 0xED) hi = 0x9F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4;
		if (c == 0xF0) lo = 0x90;
		if (c == 0xF4) hi = 0x8F;
	} else
		return 0;
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (int i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xBF)
			return 0;
	return len;
}

/* husk_string decodes the string v holds into the arena, as encoding/json
 * does (invalid UTF-8 and lone surrogates become U+FFFD); 0 if v is not a
 * string or is malformed. */
HUSK_FN int husk_string(husk_value v, husk_str *out) {
	out->p = "";
	out->len = 0;
	if (husk_kind(v) != HUSK_STRING || v.end - v.off < 2 || husk__in[v.end - 1] != '"')
		return 0;
	const char *s = husk__in + v.off + 1, *e = husk__in + v.end - 1;
	int32_t n = (int32_t)(e - s), plain = husk__plain(s, n);
	if (plain == n) { /* the common case: the string as it stands */
		out->p = s;
		out->len = n;
		return 1;
	}
	/* Each input byte gives at most 3 output bytes (an invalid byte
	 * becomes U+FFFD). */
	if (n > (INT32_MAX - 8) / 3)
		return 0;
	char *buf = husk_alloc_or_trap(3 * n + 1), *d = buf;
	while (s < e) {
		int32_t k = husk__plain(s, (int32_t)(e - s));
		memcpy(d, s, (size_t)k);
		d += k;
		s += k;
		if (s == e)
			break;
		unsigned char c = (unsigned char)*s;
		if (c < 0x20)
			return 0;
		if (c >= 0x80) {
			int l = husk_utf8_len((const unsigned char *)s, (int32_t)(e - s));
			if (l == 0) {
				d = husk__put_rune(d, 0xFFFD);
				s++;
			} else {
				memcpy(d, s, (size_t)l);
				d += l;
				s += l;
			}
			continue;
		}
		if (c != '\\') {
			*d++ = (char)c;
			s++;
			continue;
		}
		if (e - s < 2)
			return 0;
		switch (s[1]) {
		case '"': case '\\': case '/': *d++ = s[1]; break;
		case 'b': *d++ = '\b'; break;
		case 'f': *d++ = '\f'; break;
		case 'n': *d++ = '\n'; break;
		case 'r': *d++ = '\r'; break;
		case 't': *d++ = '\t'; break;
		case 'u': {
			if (e - s < 6)
				return 0;
			int32_t r = husk__hex(s + 2);
			if (r < 0)
				return 0;
			s += 4;
			if (r >= 0xD800 && r < 0xE000) {
				int32_t r2 = -1;
				if (r < 0xDC00 && e - s >= 8 && s[2] == '\\' && s[3] == 'u')
					r2 = husk__hex(s + 4);
				if (r2 >= 0xDC00 && r2 < 0xE000) {
					r = 0x10000 + ((r - 0xD800) << 10) + (r2 - 0xDC00);
					s += 6;
				} else {
					r = 0xFFFD;
				}
			}
			d = husk__put_rune(d, (uint32_t)r);
			break;
		}
		default:
			return 0;
		}
		s += 2;
	}
	*d = 0;
	out->p = buf;
	out->len = (int32_t)(d - buf);
	return 1;
}

/* husk_is reports whether v is the string s (NUL-terminated). */
HUSK_FN int husk_is(husk_value v, const char *s) {
	husk_str got;
	return husk_string(v, &got) && husk_str_eq(got, husk_cstr(s));
}

/* husk_elem returns element i of array v, or a missing value. */
HUSK_FN husk_value husk_elem(husk_value v, int32_t i) {
	char ptr[16], tmp[12];
	int n = 0, k = 0;
	if (i < 0 || husk_kind(v) != HUSK_ARRAY)
		return husk_missing;
	ptr[n++] = '/';
	if (i < 10) { /* the common case, without a loop */
		ptr[n++] = (char)('0' + i);
		return husk_at_n(v, ptr, n);
	}
	do {
		tmp[k++] = (char)('0' + i % 10);
		i /= 10;
	} while (i);
	while (k)
		ptr[n++] = tmp[--k];
	return husk_at_n(v, ptr, n);
}

/* ---- Iteration over members and elements, through json_index. ---- */

#define HUSK__INDEX_END 0x7FFFFFFFu

/* husk__end returns the end of the value starting at i, or -1. */
HUSK_FN int32_t husk__end(int32_t i) {
	if (!husk__index) {
		if (!husk__in || husk__in_len <= 0 || husk__in_len > INT32_MAX / 4)
			return -1;
		uint32_t *idx = husk_alloc_or_trap(4 * husk__in_len);
		if (husk__host_json_index(idx, 4 * husk__in_len) != 0)
			return -1;
		husk__index = idx;
	}
	if (i < 0 || i >= husk__in_len)
		return -1;
	uint32_t e = husk__index[i] & HUSK__INDEX_END;
	if (e <= (uint32_t)i || e > (uint32_t)husk__in_len)
		return -1;
	return (int32_t)e;
}

HUSK_FN int32_t husk__space(int32_t i, int32_t end) {
	while (i < end && (husk__in[i] == ' ' || husk__in[i] == '\n' || husk__in[i] == '\t' || husk__in[i] == '\r'))
		i++;
	return i;
}

/* husk_iter walks the members of an object or the elements of an array:
 *
 *     husk_iter it = husk_iter_of(v);
 *     husk_value key, val;
 *     while (husk_next(&it, &key, &val)) { ... }
 *
 * key is missing for an array's elements. Malformed input ends the walk. */
typedef struct {
	int32_t pos, close; /* the next member's start; the closing bracket */
	int object;
	int32_t count; /* members or elements walked */
} husk_iter;

HUSK_FN husk_iter husk_iter_of(husk_value v) {
	husk_iter it = {0, 0, 0, 0};
	int k = husk_kind(v);
	if (k != HUSK_ARRAY && k != HUSK_OBJECT)
		return it;
	it.object = k == HUSK_OBJECT;
	it.close = v.end - 1;
	it.pos = husk__space(v.off + 1, it.close);
	return it;
}

HUSK_FN int husk_next(husk_iter *it, husk_value *key, husk_value *val) {
	*key = *val = husk_missing;
	if (it->pos >= it->close)
		return 0;
	int32_t p = it->pos;
	if (it->object) {
		int32_t ke = husk__end(p);
		if (husk__in[p] != '"' || ke < 0 || ke > it->close)
			goto bad;
		key->off = p;
		key->end = ke;
		p = husk__space(ke, it->close);
		if (p >= it->close || husk__in[p] != ':')
			goto bad;
		p = husk__space(p + 1, it->close);
	}
	int32_t ve = husk__end(p);
	if (p >= it->close || ve < 0 || ve > it->close)
		goto bad;
	val->off = p;
	val->end = ve;
	p = husk__space(ve, it->close);
	if (p < it->close) {
		if (husk__in[p] != ',')
			goto bad;
		p = husk__space(p + 1, it->close);
		if (p >= it->close)
			goto bad;
	}
	it->pos = p;
	it->count++;
	return 1;
bad:
	it->pos = it->close;
	*key = *val = husk_missing;
	return 0;
}

/* husk_all_strings reports whether array v holds only strings (and how
 * many, in *n). */
HUSK_FN int husk_all_strings(husk_value v, int32_t *n) {
	husk_str s;
	husk_value k, e;
	*n = 0;
	if (husk_kind(v) != HUSK_ARRAY)
		return 0;
	husk_iter it = husk_iter_of(v);
	while (husk_next(&it, &k, &e))
		if (!husk_string(e, &s))
			return 0;
	*n = it.count;
	return it.pos == it.close;
}

/* ---- Sets, matched by the host. ---- */

/* husk_set registers the JSON array of strings json (NUL-terminated) as a
 * set; -1 if the host refuses it. Make sets in husk_policy_init. */
HUSK_FN int32_t husk_set(const char *json) { return husk__host_set_new(json, husk_strlen(json)); }

/* husk_set_of registers array v of the input as a set; -1 if it cannot. */
HUSK_FN int32_t husk_set_of(husk_value v) {
	if (husk_kind(v) != HUSK_ARRAY)
		return -1;
	return husk__host_set_new(husk__in + v.off, v.end - v.off);
}

/* husk_find returns the index of the first element of array v that is a
 * member of set, or -1. */
HUSK_FN int32_t husk_find(husk_value v, int32_t set) {
	if (husk_kind(v) != HUSK_ARRAY)
		return -1;
	int32_t r = husk__host_json_match(v.off, set, 0);
	return r < 0 ? -1 : r;
}

/* husk_in reports whether string v is a member of set; husk_prefix_in
 * whether it starts with one. (On an array, as the Go SDK's In: whether
 * its first element matches.) */
HUSK_FN int husk_in(husk_value v, int32_t set) {
	return husk_exists(v) && husk__host_json_match(v.off, set, 0) == 0;
}

HUSK_FN int husk_prefix_in(husk_value v, int32_t set) {
	return husk_exists(v) && husk__host_json_match(v.off, set, 1) == 0;
}

/* ---- Text. ---- */

/* husk_buf is a growing byte buffer in the arena: a reason, a patch
 * value, a configuration copy. It is always NUL-terminated. */
typedef struct {
	char *p;
	int32_t len, cap;
} husk_buf;

HUSK_FN void husk_buf_grow(husk_buf *b, int32_t more) {
	if (more < 0 || b->len > INT32_MAX - 1 - more)
		__builtin_trap();
	if (b->len + more + 1 <= b->cap)
		return;
	int32_t cap = b->cap < 64 ? 64 : b->cap;
	while (cap < b->len + more + 1)
		cap = cap > INT32_MAX / 2 ? INT32_MAX : cap * 2;
	char *p = husk_alloc_or_trap(cap);
	if (b->len)
		memcpy(p, b->p, (size_t)b->len);
	b->p = p;
	b->cap = cap;
	b->p[b->len] = 0;
}

HUSK_FN void husk_buf_addn(husk_buf *b, const char *s, int32_t n) {
	husk_buf_grow(b, n);
	memcpy(b->p + b->len, s, (size_t)n);
	b->len += n;
	b->p[b->len] = 0;
}

HUSK_FN void husk_buf_add(husk_buf *b, const char *s) { husk_buf_addn(b, s, husk_strlen(s)); }
HUSK_FN void husk_buf_add_str(husk_buf *b, husk_str s) { husk_buf_addn(b, s.p, s.len); }

HUSK_FN void husk_buf_add_int(husk_buf *b, int64_t v) {
	char tmp[24];
	int n = 0;
	uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
	do {
		tmp[sizeof tmp - 1 - n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		tmp[sizeof tmp - 1 - n++] = '-';
	husk_buf_addn(b, tmp + sizeof tmp - n, n);
}

/* husk_buf_add_json appends s as a JSON string literal: quoted, with '"',
 * '\' and control characters escaped and invalid UTF-8 as \ufffd. */
HUSK_FN void husk_buf_add_json(husk_buf *b, husk_str s) {
	static const char hex[] = "0123456789abcdef";
	husk_buf_grow(b, s.len + 2);
	husk_buf_addn(b, "\"", 1);
	for (int32_t i = 0; i < s.len;) {
		int32_t k = husk__plain(s.p + i, s.len - i);
		husk_buf_addn(b, s.p + i, k);
		i += k;
		if (i == s.len)
			break;
		unsigned char c = (unsigned char)s.p[i];
		if (c >= 0x80) {
			int l = husk_utf8_len((const unsigned char *)s.p + i, s.len - i);
			if (l == 0) {
				husk_buf_addn(b, "\\ufffd", 6);
				i++;
			} else {
				husk_buf_addn(b, s.p + i, l);
				i += l;
			}
			continue;
		}
		if (c == '"' || c == '\\') {
			char e[2] = {'\\', (char)c};
			husk_buf_addn(b, e, 2);
		} else {
			char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
			husk_buf_addn(b, e, 6);
		}
		i++;
	}
	husk_buf_addn(b, "\"", 1);
}

/* husk_keep copies s into the arena (in husk_policy_init: for the
 * instance's life). */
HUSK_FN husk_str husk_keep(husk_str s) {
	char *p = husk_alloc_or_trap(s.len + 1);
	memcpy(p, s.p, (size_t)s.len);
	p[s.len] = 0;
	husk_str out = {p, s.len};
	return out;
}

/* ---- Decisions. ---- */

/* husk_decision is a decision's JSON as the ABI returns it:
 * address << 32 | length. */
typedef uint64_t husk_decision;

HUSK_FN husk_decision husk__packed(const char *p, int32_t n) { return (uint64_t)(uintptr_t)p << 32 | (uint32_t)n; }

HUSK_FN husk_decision husk_allow(void) {
	static const char allow[] = "{\"allow\":true}";
	return husk__packed(allow, sizeof allow - 1);
}

/* husk_deny stops the step with reason (shown to the user; husk cuts it
 * at 1 KiB). */
/* husk_unknown_key_str is husk_policy_init's error for a configuration
 * key the policy does not know: "unknown key NAME (want WANT)". */
HUSK_FN const char *husk_unknown_key_str(husk_str name, const char *want) {
	husk_buf msg = {0, 0, 0};
	husk_buf_add(&msg, "unknown key ");
	husk_buf_add_str(&msg, name);
	husk_buf_add(&msg, " (want ");
	husk_buf_add(&msg, want);
	husk_buf_add(&msg, ")");
	return msg.p;
}

/* husk_unknown_key is husk_unknown_key_str for the key k of an object's
 * member (husk_next). */
HUSK_FN const char *husk_unknown_key(husk_value k, const char *want) {
	husk_str name;
	husk_string(k, &name);
	return husk_unknown_key_str(name, want);
}

/* HUSK_MAX_REASON is the longest reason husk keeps (it cuts the rest):
 * husk_deny_str cuts there itself, so that a reason quoting a long value
 * of the event (an image name, a path, an argument) never makes the
 * decision too large to return, which would turn a deny into an error
 * that on_error = "allow" lets through. */
#define HUSK_MAX_REASON 1024

HUSK_FN husk_decision husk_deny_str(husk_str reason) {
	husk_buf b = {0, 0, 0};
	husk_buf_add(&b, "{\"allow\":false");
	if (reason.len > 0) {
		int cut = reason.len > HUSK_MAX_REASON;
		if (cut) {
			/* Room for the three bytes of "…", at the start of a character. */
			reason.len = HUSK_MAX_REASON - 3;
			while (reason.len > 0 && (reason.p[reason.len] & 0xc0) == 0x80)
				reason.len--;
		}
		husk_buf_add(&b, ",\"reason\":");
		if (cut) {
			husk_buf_add_json(&b, reason);
			b.len--; /* reopen the string for the ellipsis */
			husk_buf_add(&b, "\xe2\x80\xa6\"");
		} else {
			husk_buf_add_json(&b, reason);
		}
	}
	husk_buf_add(&b, "}");
	return husk__packed(b.p, b.len);
}

HUSK_FN husk_decision husk_deny(const char *reason) { return husk_deny_str(husk_cstr(reason)); }

/* husk_op is one JSON Patch operation: op ("add", "replace", ...), path
 * (a JSON Pointer, escaped as RFC 6901 says), value (JSON text, or NULL
 * for an operation without one) and from (NULL unless move or copy). */
typedef struct {
	const char *op, *path, *value, *from;
} husk_op;

/* husk_patch allows the step with the n operations of ops. */
HUSK_FN husk_decision husk_patch(const husk_op *ops, int n) {
	husk_buf b = {0, 0, 0};
	husk_buf_add(&b, "{\"allow\":true,\"patch\":[");
	for (int i = 0; i < n; i++) {
		if (i > 0)
			husk_buf_add(&b, ",");
		husk_buf_add(&b, "{\"op\":");
		husk_buf_add_json(&b, husk_cstr(ops[i].op));
		if (ops[i].from) {
			husk_buf_add(&b, ",\"from\":");
			husk_buf_add_json(&b, husk_cstr(ops[i].from));
		}
		husk_buf_add(&b, ",\"path\":");
		husk_buf_add_json(&b, husk_cstr(ops[i].path));
		if (ops[i].value) {
			husk_buf_add(&b, ",\"value\":");
			husk_buf_add(&b, ops[i].value);
		}
		husk_buf_add(&b, "}");
	}
	husk_buf_add(&b, "]}");
	return husk__packed(b.p, b.len);
}

/* ---- Logging. ---- */

enum { HUSK_DEBUG = 0, HUSK_INFO = 1, HUSK_WARN = 2, HUSK_ERROR = 3 };

/* husk_log writes one line to husk's log (at most 16 lines of 1 KiB per
 * call). */
HUSK_FN void husk_log(int level, husk_str line) { husk__host_log(level, line.p, line.len); }

/* ---- Points. ---- */

typedef enum {
	HUSK_POINT_UNKNOWN,
	HUSK_SANDBOX_CREATE,
	HUSK_SANDBOX_VM,
	HUSK_SANDBOX_NETWORK,
	HUSK_CONTAINER_CREATE,
	HUSK_CONTAINER_ROOTFS,
	HUSK_CONTAINER_MOUNT,
	HUSK_CONTAINER_CGROUPS,
	HUSK_CONTAINER_START,
	HUSK_PROCESS_EXEC,
	HUSK_CONTAINER_UPDATE,
	HUSK_CONTAINER_DELETE,
	HUSK_SANDBOX_DELETE,
} husk_point;


static husk_str husk__point_name; /* the point as husk named it */

/* husk__point returns the point named name, without a loop: by its
 * length, then one comparison of at most three words. */
HUSK_FN husk_point husk__point(husk_str name) {
#define HUSK__IS(id) (name.len == (int32_t)sizeof husk__point_##id - 1 && husk__eq_short(name.p, husk__point_##id, name.len))
	static const char husk__point_sc[] = "sandbox.create", husk__point_svm[] = "sandbox.vm",
	                  husk__point_sn[] = "sandbox.network", husk__point_cc[] = "container.create",
	                  husk__point_cr[] = "container.rootfs", husk__point_cm[] = "container.mount",
	                  husk__point_cg[] = "container.cgroups", husk__point_cs[] = "container.start",
	                  husk__point_pe[] = "process.exec", husk__point_cu[] = "container.update",
	                  husk__point_cd[] = "container.delete", husk__point_sd[] = "sandbox.delete";
	switch (name.len) {
	case 10: return HUSK__IS(svm) ? HUSK_SANDBOX_VM : HUSK_POINT_UNKNOWN;
	case 12: return HUSK__IS(pe) ? HUSK_PROCESS_EXEC : HUSK_POINT_UNKNOWN;
	case 14: return HUSK__IS(sc) ? HUSK_SANDBOX_CREATE : HUSK__IS(sd) ? HUSK_SANDBOX_DELETE : HUSK_POINT_UNKNOWN;
	case 15: return HUSK__IS(sn) ? HUSK_SANDBOX_NETWORK : HUSK__IS(cm) ? HUSK_CONTAINER_MOUNT : HUSK__IS(cs) ? HUSK_CONTAINER_START : HUSK_POINT_UNKNOWN;
	case 16: return HUSK__IS(cc) ? HUSK_CONTAINER_CREATE : HUSK__IS(cr) ? HUSK_CONTAINER_ROOTFS : HUSK__IS(cu) ? HUSK_CONTAINER_UPDATE : HUSK__IS(cd) ? HUSK_CONTAINER_DELETE : HUSK_POINT_UNKNOWN;
	case 17: return HUSK__IS(cg) ? HUSK_CONTAINER_CGROUPS : HUSK_POINT_UNKNOWN;
	}
	return HUSK_POINT_UNKNOWN;
#undef HUSK__IS
}

/* husk_point_name is the name of the point asked, as husk sent it. */
HUSK_FN husk_str husk_point_name(void) { return husk__point_name; }

/* ---- The exports of the ABI. ---- */

husk_decision husk_policy_decide(husk_point point);
#ifndef HUSK_NO_INIT
const char *husk_policy_init(husk_value config);
#endif

HUSK_EXPORT("husk_hook_abi_v1") void husk_hook_abi_v1(void) {}

/* husk_alloc is where husk writes each call's input: a call starts here,
 * so the arena starts over. */
HUSK_EXPORT("husk_alloc") void *husk_alloc(int32_t n) {
	if (husk__top != 0)
		husk__top = husk__floor;
	husk__in = NULL;
	husk__in_len = 0;
	husk__index = NULL;
	return n < 0 ? NULL : husk_alloc_raw(n);
}

/* husk__inside reports whether [p, p+n) is inside memory. */
HUSK_FN int husk__inside(int32_t p, int32_t n) {
	return p >= 0 && n >= 0 && (uint64_t)(uint32_t)p + (uint32_t)n <= husk__mem_end();
}

HUSK_FN void husk__input(const char *p, int32_t n) {
	husk__in = p;
	husk__in_len = n;
	husk__index = NULL;
}

HUSK_EXPORT("husk_decide") husk_decision husk_decide(int32_t point, int32_t point_len, int32_t event, int32_t event_len) {
	if (!husk__inside(point, point_len) || !husk__inside(event, event_len))
		__builtin_trap();
	husk__input((const char *)(uintptr_t)event, event_len);
	husk_str name = {(const char *)(uintptr_t)point, point_len};
	husk__point_name = name;
	return husk_policy_decide(husk__point(name));
}

#ifndef HUSK_NO_INIT
HUSK_EXPORT("husk_init") uint64_t husk_init(int32_t config, int32_t config_len) {
	if (!husk__inside(config, config_len))
		__builtin_trap();
	husk__input((const char *)(uintptr_t)config, config_len);
	const char *err = husk_policy_init(husk_root());
	husk__input(NULL, 0);
	if (husk__top == 0)
		(void)husk_alloc_raw(0);
	husk__floor = husk__top; /* what init kept stays for the instance */
	if (err)
		return husk__packed(err, husk_strlen(err));
	return 0;
}
#endif

#endif /* HUSK_H */
