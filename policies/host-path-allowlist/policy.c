/*
 * host-path-allowlist is a hook policy (built-in, see docs/hooks.md §6)
 * that allows bind mounts only of host paths at or under the listed
 * directories, at container.mount.
 *
 * Configuration:
 *
 *	paths  list of absolute host directories; a bind mount's source must
 *	       be one of them or below one ("/srv/data" allows "/srv/data/x",
 *	       not "/srv/database")
 */
#include "husk.h"

/* allowed are the host directories, cleaned; kept from husk_policy_init. */
static husk_str *allowed;
static int32_t nallowed;

/* bind_options is the host's set of the options that mark a bind mount. */
static int32_t bind_options = -1;

/* clean returns the shortest path equivalent to p, as Go's path.Clean:
 * repeated slashes, "." elements and ".." elements (with what they
 * cancel) are removed; ".." at the root stays at the root. */
static husk_str clean(husk_str p) {
	if (p.len == 0)
		return husk_cstr(".");
	char *out = husk_alloc_or_trap(p.len + 2);
	int rooted = p.p[0] == '/';
	int32_t r = 0, w = 0, dotdot = 0;
	if (rooted) {
		out[w++] = '/';
		r = dotdot = 1;
	}
	while (r < p.len) {
		if (p.p[r] == '/') {
			r++;
		} else if (p.p[r] == '.' && (r + 1 == p.len || p.p[r + 1] == '/')) {
			r++;
		} else if (p.p[r] == '.' && p.p[r + 1] == '.' && (r + 2 == p.len || p.p[r + 2] == '/')) {
			r += 2;
			if (w > dotdot) {
				w--;
				while (w > dotdot && out[w] != '/')
					w--;
			} else if (!rooted) {
				if (w > 0)
					out[w++] = '/';
				out[w++] = '.';
				out[w++] = '.';
				dotdot = w;
			}
		} else {
			if ((rooted && w != 1) || (!rooted && w != 0))
				out[w++] = '/';
			for (; r < p.len && p.p[r] != '/'; r++)
				out[w++] = p.p[r];
		}
	}
	if (w == 0)
		out[w++] = '.';
	out[w] = 0;
	husk_str s = {out, w};
	return s;
}

const char *husk_policy_init(husk_value cfg) {
	if ((bind_options = husk_set("[\"bind\",\"rbind\"]")) < 0)
		return "cannot register the set of bind options";
	husk_iter it = husk_iter_of(cfg);
	husk_value k, v;
	while (husk_next(&it, &k, &v)) {
		husk_buf msg = {0, 0, 0};
		if (!husk_is(k, "paths"))
			return husk_unknown_key(k, "paths");
		int32_t n;
		if (!husk_all_strings(v, &n))
			return "paths: want a list of absolute directories";
		allowed = husk_alloc_or_trap(n * (int32_t)sizeof *allowed);
		nallowed = 0;
		husk_iter elems = husk_iter_of(v);
		husk_value ek, e;
		while (husk_next(&elems, &ek, &e) && nallowed < n) {
			husk_str p;
			husk_string(e, &p);
			if (p.len == 0 || p.p[0] != '/') {
				husk_buf_add(&msg, "paths: ");
				husk_buf_add_str(&msg, p);
				husk_buf_add(&msg, " is not absolute");
				return msg.p;
			}
			allowed[nallowed++] = clean(p);
		}
	}
	return 0;
}

/* under reports whether source, cleaned (so that ".." cannot climb out),
 * is an allowed directory or below one. */
static int under(husk_str source) {
	if (source.len == 0 || source.p[0] != '/')
		return 0;
	source = clean(source);
	for (int32_t i = 0; i < nallowed; i++) {
		husk_str dir = allowed[i];
		if (husk_str_eq(source, dir) || (dir.len == 1 && dir.p[0] == '/') ||
		    (husk_str_has_prefix(source, dir) && source.len > dir.len && source.p[dir.len] == '/'))
			return 1;
	}
	return 0;
}

husk_decision husk_policy_decide(husk_point point) {
	if (point != HUSK_CONTAINER_MOUNT)
		return husk_allow();
	husk_value mount = husk_at(husk_root(), "/mount");
	if (!husk_is(husk_at(mount, "/type"), "bind") && husk_find(husk_at(mount, "/options"), bind_options) < 0)
		return husk_allow();
	husk_str source;
	husk_string(husk_at(mount, "/source"), &source);
	if (under(source))
		return husk_allow();
	husk_buf reason = {0, 0, 0};
	husk_buf_add(&reason, "bind mount of host path ");
	husk_buf_add_str(&reason, source);
	husk_buf_add(&reason, " is not allowed");
	return husk_deny_str((husk_str){reason.p, reason.len});
}
