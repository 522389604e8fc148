/*
 * audit-log is a hook policy (built-in, see docs/hooks.md §6) that writes
 * one line to husk's log for every step it is asked about (the point and
 * the pod, container and exec it concerns) and allows it. List the points
 * to audit in its [[hook]] table.
 *
 * Configuration (optional):
 *
 *	level  "debug", "info" (default), "warn" or "error"
 */
#include "husk.h"

/* level is the level of the lines. */
static int level = HUSK_INFO;

const char *husk_policy_init(husk_value cfg) {
	static const char *const levels[] = {"debug", "info", "warn", "error"};
	husk_iter it = husk_iter_of(cfg);
	husk_value k, v;
	while (husk_next(&it, &k, &v)) {
		husk_str name;
		husk_string(k, &name);
		if (!husk_str_eq(name, husk_cstr("level")))
			return husk_unknown_key_str(name, "level");
		int found = -1;
		for (int i = 0; i < 4; i++)
			if (husk_is(v, levels[i]))
				found = i;
		if (found < 0)
			return "level: want debug, info, warn or error";
		level = HUSK_DEBUG + found;
	}
	return 0;
}

husk_decision husk_policy_decide(husk_point point) {
	static const struct {
		const char *name, *pointer;
	} fields[] = {
		{" sandbox=", "/sandbox/id"}, {" namespace=", "/sandbox/namespace"},
		{" container=", "/container/id"}, {" image=", "/container/image"}, {" exec=", "/exec_id"},
	};
	(void)point;
	husk_buf line = {0, 0, 0};
	husk_buf_add(&line, "audit ");
	husk_buf_add_str(&line, husk_point_name());
	for (int i = 0; i < 5; i++) {
		husk_str s;
		if (husk_string(husk_at(husk_root(), fields[i].pointer), &s) && s.len > 0) {
			husk_buf_add(&line, fields[i].name);
			husk_buf_add_str(&line, s);
		}
	}
	husk_log(level, (husk_str){line.p, line.len});
	return husk_allow();
}
