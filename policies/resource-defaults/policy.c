/*
 * resource-defaults is a hook policy (built-in, see docs/hooks.md §6) that
 * gives containers without resource limits the configured defaults, by
 * patching their OCI spec at container.create. Limits a container sets are
 * kept. It never denies.
 *
 * Configuration (at least one):
 *
 *	memory_limit  bytes, for linux.resources.memory.limit
 *	pids_limit    number, for linux.resources.pids.limit
 */
#include "husk.h"

/* limit is the default limit of one resource kind; 0: none. */
struct limit {
	const char *kind;
	int64_t value;
};

static struct limit limits[2] = {{"memory", 0}, {"pids", 0}};

const char *husk_policy_init(husk_value cfg) {
	husk_iter it = husk_iter_of(cfg);
	husk_value k, v;
	while (husk_next(&it, &k, &v)) {
		husk_str name;
		husk_string(k, &name);
		int64_t n;
		husk_buf msg = {0, 0, 0};
		if (!husk_int(v, &n) || n <= 0) {
			husk_buf_add_str(&msg, name);
			husk_buf_add(&msg, ": want a positive whole number");
			return msg.p;
		}
		if (husk_is(k, "memory_limit")) {
			limits[0].value = n;
		} else if (husk_is(k, "pids_limit")) {
			limits[1].value = n;
		} else {
			return husk_unknown_key_str(name, "memory_limit, pids_limit");
		}
	}
	if (limits[0].value == 0 && limits[1].value == 0)
		return "set memory_limit, pids_limit or both";
	return 0;
}

/* add_object appends {"<kind>":{"limit":<value>},...} for the n limits. */
static void add_object(husk_buf *b, const struct limit *const *missing, int n) {
	husk_buf_add(b, "{");
	for (int i = 0; i < n; i++) {
		if (i > 0)
			husk_buf_add(b, ",");
		husk_buf_add(b, "\"");
		husk_buf_add(b, missing[i]->kind);
		husk_buf_add(b, "\":{\"limit\":");
		husk_buf_add_int(b, missing[i]->value);
		husk_buf_add(b, "}");
	}
	husk_buf_add(b, "}");
}

husk_decision husk_policy_decide(husk_point point) {
	husk_value root = husk_root();
	if (point != HUSK_CONTAINER_CREATE || husk_kind(husk_at(root, "/spec")) != HUSK_OBJECT)
		return husk_allow();
	husk_value resources = husk_at(root, "/spec/linux/resources");
	const struct limit *missing[2];
	int n = 0;
	static const char *const at_limit[2] = {"/memory/limit", "/pids/limit"};
	for (int i = 0; i < 2; i++)
		if (limits[i].value > 0 && !husk_exists(husk_at(resources, at_limit[i])))
			missing[n++] = &limits[i];
	if (n == 0)
		return husk_allow();
	husk_buf value = {0, 0, 0};
	if (husk_kind(husk_at(root, "/spec/linux")) != HUSK_OBJECT) {
		husk_buf_add(&value, "{\"resources\":");
		add_object(&value, missing, n);
		husk_buf_add(&value, "}");
		husk_op op = {"add", "/spec/linux", value.p, 0};
		return husk_patch(&op, 1);
	}
	if (husk_kind(resources) != HUSK_OBJECT) {
		add_object(&value, missing, n);
		husk_op op = {"add", "/spec/linux/resources", value.p, 0};
		return husk_patch(&op, 1);
	}
	husk_op ops[2];
	for (int i = 0; i < n; i++) {
		husk_buf path = {0, 0, 0}, v = {0, 0, 0};
		char kind[16] = "/";
		memcpy(kind + 1, missing[i]->kind, (size_t)husk_strlen(missing[i]->kind) + 1);
		husk_buf_add(&path, "/spec/linux/resources/");
		husk_buf_add(&path, missing[i]->kind);
		if (husk_kind(husk_at(resources, kind)) == HUSK_OBJECT) {
			husk_buf_add(&path, "/limit");
			husk_buf_add_int(&v, missing[i]->value);
		} else {
			husk_buf_add(&v, "{\"limit\":");
			husk_buf_add_int(&v, missing[i]->value);
			husk_buf_add(&v, "}");
		}
		ops[i] = (husk_op){"add", path.p, v.p, 0};
	}
	return husk_patch(ops, n);
}
