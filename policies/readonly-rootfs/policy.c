/*
 * readonly-rootfs is a hook policy (built-in, see docs/hooks.md §6) that
 * makes containers' root filesystems read-only by patching the step: at
 * container.rootfs it sets readonly, at container.create it sets the OCI
 * spec's root.readonly. It never denies.
 *
 * Configuration (optional):
 *
 *	exempt_images  list of image name prefixes left writable, such as
 *	               "docker.io/library/postgres"
 */
#include "husk.h"

/* exempt is the host's set of image name prefixes left writable; it is
 * asked only when it has members. */
static int32_t exempt = -1, exempt_count;

const char *husk_policy_init(husk_value cfg) {
	husk_iter it = husk_iter_of(cfg);
	husk_value k, v;
	while (husk_next(&it, &k, &v)) {
		if (!husk_is(k, "exempt_images")) {
			return husk_unknown_key(k, "exempt_images");
		}
		if (!husk_all_strings(v, &exempt_count))
			return "exempt_images: want a list of image name prefixes";
		if ((exempt = husk_set_of(v)) < 0)
			return "exempt_images: too many image name prefixes";
	}
	return 0;
}

husk_decision husk_policy_decide(husk_point point) {
	husk_value root = husk_root();
	int ro;
	if (exempt_count > 0 && husk_prefix_in(husk_at(root, "/container/image"), exempt))
		return husk_allow();
	switch (point) {
	case HUSK_CONTAINER_ROOTFS:
		husk_bool(husk_at(root, "/readonly"), &ro);
		if (!ro) {
			husk_op op = {"replace", "/readonly", "true", 0};
			return husk_patch(&op, 1);
		}
		break;
	case HUSK_CONTAINER_CREATE: {
		husk_value spec_root = husk_at(root, "/spec/root");
		if (husk_kind(spec_root) != HUSK_OBJECT)
			return husk_allow(); /* no root filesystem (e.g. a Wasm module) */
		husk_bool(husk_at(spec_root, "/readonly"), &ro);
		if (!ro) {
			/* add also replaces an existing member. */
			husk_op op = {"add", "/spec/root/readonly", "true", 0};
			return husk_patch(&op, 1);
		}
		break;
	}
	default:
		break;
	}
	return husk_allow();
}
