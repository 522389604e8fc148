/*
 * vm-sizing is a hook policy (built-in, see docs/hooks.md §6) that clamps
 * the size of VirtContainer VMs at sandbox.vm: vCPUs and memory above the
 * maximum are lowered to it, memory below the minimum raised. It never
 * denies.
 *
 * Configuration (at least one):
 *
 *	max_vcpus       the most vCPUs a VM gets
 *	max_memory_mib  the most memory, in MiB
 *	min_memory_mib  the least memory, in MiB
 */
#include "husk.h"

static int64_t max_vcpus, max_memory, min_memory;

const char *husk_policy_init(husk_value cfg) {
	husk_iter it = husk_iter_of(cfg);
	husk_value k, v;
	while (husk_next(&it, &k, &v)) {
		husk_str name;
		husk_buf msg = {0, 0, 0};
		int64_t n;
		husk_string(k, &name);
		if (!husk_int(v, &n) || n <= 0) {
			husk_buf_add_str(&msg, name);
			husk_buf_add(&msg, ": want a positive whole number");
			return msg.p;
		}
		if (husk_str_eq(name, husk_cstr("max_vcpus"))) {
			max_vcpus = n;
		} else if (husk_str_eq(name, husk_cstr("max_memory_mib"))) {
			max_memory = n;
		} else if (husk_str_eq(name, husk_cstr("min_memory_mib"))) {
			min_memory = n;
		} else {
			return husk_unknown_key_str(name, "max_vcpus, max_memory_mib, min_memory_mib");
		}
	}
	if (max_vcpus == 0 && max_memory == 0 && min_memory == 0)
		return "set max_vcpus, max_memory_mib or min_memory_mib";
	if (max_memory > 0 && min_memory > max_memory)
		return "min_memory_mib is above max_memory_mib";
	return 0;
}

/* number returns n as JSON text in the arena. */
static const char *number(int64_t n) {
	husk_buf b = {0, 0, 0};
	husk_buf_add_int(&b, n);
	return b.p;
}

husk_decision husk_policy_decide(husk_point point) {
	if (point != HUSK_SANDBOX_VM)
		return husk_allow();
	husk_op ops[2];
	int n = 0;
	int64_t vcpus, mem;
	if (husk_int(husk_at(husk_root(), "/vm/vcpus"), &vcpus) && max_vcpus > 0 && vcpus > max_vcpus)
		ops[n++] = (husk_op){"replace", "/vm/vcpus", number(max_vcpus), 0};
	if (husk_int(husk_at(husk_root(), "/vm/memory_mib"), &mem)) {
		if (max_memory > 0 && mem > max_memory)
			ops[n++] = (husk_op){"replace", "/vm/memory_mib", number(max_memory), 0};
		else if (min_memory > 0 && mem < min_memory)
			ops[n++] = (husk_op){"replace", "/vm/memory_mib", number(min_memory), 0};
	}
	if (n == 0)
		return husk_allow();
	return husk_patch(ops, n);
}
