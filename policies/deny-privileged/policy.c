/*
 * deny-privileged is a hook policy (built-in, see docs/hooks.md §6) that
 * denies privileged containers at container.create: a container whose
 * process holds a capability that amounts to root on the host, or whose
 * device cgroup allows every device (what `ctr run --privileged` and a
 * Kubernetes privileged: true give).
 *
 * Configuration (all optional):
 *
 *	capabilities       list of capabilities that make a container
 *	                   privileged; replaces the default list
 *	allow_all_devices  true: do not deny an allow-all device rule
 */
#include "husk.h"

/* denied is the host's set of the capabilities that make a container
 * privileged: each is enough to take over the host from inside one. */
static int32_t denied = -1;

/* allow_all_devices, when set, lets an allow-all device rule through. */
static int allow_all_devices;

/* The sets of an OCI process's capabilities: their pointers below
 * process.capabilities, and their names. */
static const struct {
	const char *pointer, *name;
} cap_sets[] = {
	{"/bounding", "bounding"}, {"/effective", "effective"}, {"/permitted", "permitted"},
	{"/inheritable", "inheritable"}, {"/ambient", "ambient"},
};

const char *husk_policy_init(husk_value cfg) {
	denied = husk_set("[\"CAP_SYS_ADMIN\",\"CAP_SYS_MODULE\",\"CAP_SYS_RAWIO\",\"CAP_SYS_PTRACE\","
	                  "\"CAP_SYS_BOOT\",\"CAP_MAC_ADMIN\",\"CAP_BPF\",\"CAP_DAC_READ_SEARCH\"]");
	if (denied < 0)
		return "cannot register the set of capabilities";
	husk_iter it = husk_iter_of(cfg);
	husk_value k, v;
	int32_t n;
	while (husk_next(&it, &k, &v)) {
		if (husk_is(k, "capabilities")) {
			if (!husk_all_strings(v, &n))
				return "capabilities: want a list of capability names";
			if ((denied = husk_set_of(v)) < 0)
				return "capabilities: too many capability names";
		} else if (husk_is(k, "allow_all_devices")) {
			if (!husk_bool(v, &allow_all_devices))
				return "allow_all_devices: want true or false";
		} else {
			return husk_unknown_key(k, "capabilities, allow_all_devices");
		}
	}
	return 0;
}

/* all_devices reports whether a device cgroup rule matches every device:
 * type "a" (or none) and no major or minor number (or -1, the wildcard). */
static int all_devices(husk_value rule) {
	husk_value t = husk_at(rule, "/type");
	if (husk_exists(t) && !husk_is_null(t) && !husk_is(t, "a") && !husk_is(t, ""))
		return 0;
	static const char *const numbers[] = {"/major", "/minor"};
	for (int i = 0; i < 2; i++) {
		husk_value v = husk_at(rule, numbers[i]);
		int64_t n;
		if (husk_exists(v) && !husk_is_null(v) && (!husk_int(v, &n) || n != -1))
			return 0;
	}
	return 1;
}

husk_decision husk_policy_decide(husk_point point) {
	if (point != HUSK_CONTAINER_CREATE)
		return husk_allow();
	husk_value caps = husk_at(husk_root(), "/spec/process/capabilities");
	for (int s = 0; s < 5; s++) {
		husk_value list = husk_at(caps, cap_sets[s].pointer);
		int32_t i = husk_find(list, denied);
		if (i >= 0) {
			husk_str name;
			husk_buf reason = {0, 0, 0};
			husk_string(husk_elem(list, i), &name);
			husk_buf_add(&reason, "privileged container: capability ");
			husk_buf_add_str(&reason, name);
			husk_buf_add(&reason, " in the ");
			husk_buf_add(&reason, cap_sets[s].name);
			husk_buf_add(&reason, " set");
			return husk_deny_str((husk_str){reason.p, reason.len});
		}
	}
	if (!allow_all_devices) {
		husk_value devices = husk_at(husk_root(), "/spec/linux/resources/devices");
		husk_iter it = husk_iter_of(devices);
		husk_value k, rule;
		while (husk_next(&it, &k, &rule)) {
			int allow;
			if (husk_bool(husk_at(rule, "/allow"), &allow) && allow && all_devices(rule))
				return husk_deny("privileged container: the device cgroup allows every device");
		}
	}
	return husk_allow();
}
