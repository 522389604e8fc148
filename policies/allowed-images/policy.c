/*
 * allowed-images is a hook policy (built-in, see docs/hooks.md §6) that
 * allows only containers whose image name starts with one of the
 * configured prefixes, at container.create.
 *
 * Configuration:
 *
 *	images  list of image name prefixes, required, such as
 *	        "docker.io/library/" or "registry.example.com/team/app:"
 *	        (end a prefix with "/" or ":" so that "docker.io/library/nginx"
 *	        does not also allow "docker.io/library/nginx-evil")
 *
 * A container whose image husk does not know ("image": null) is denied.
 */
#include "husk.h"

/* allowed is the host's set of image name prefixes. */
static int32_t allowed = -1, allowed_count;

/* unknown is the reason given for a container whose image is null. */
static const char unknown[] = "image unknown: husk knows no image name for this container (as for ctr run --rootfs), and only listed images may run";

const char *husk_policy_init(husk_value cfg) {
	husk_iter it = husk_iter_of(cfg);
	husk_value k, v;
	while (husk_next(&it, &k, &v)) {
		if (!husk_is(k, "images")) {
			return husk_unknown_key(k, "images");
		}
		if (!husk_all_strings(v, &allowed_count) || allowed_count == 0)
			return "images: want a non-empty list of image name prefixes";
		if ((allowed = husk_set_of(v)) < 0)
			return "images: too many image name prefixes";
	}
	if (allowed_count == 0)
		return "images: required (a list of image name prefixes)";
	return 0;
}

husk_decision husk_policy_decide(husk_point point) {
	if (point != HUSK_CONTAINER_CREATE)
		return husk_allow();
	husk_value image = husk_at(husk_root(), "/container/image");
	if (husk_prefix_in(image, allowed))
		return husk_allow();
	/* husk sends null for an image it does not know: fail closed. */
	husk_str name;
	if (!husk_string(image, &name) || name.len == 0)
		return husk_deny(unknown);
	husk_buf reason = {0, 0, 0};
	husk_buf_add(&reason, "image ");
	husk_buf_add_str(&reason, name);
	husk_buf_add(&reason, " is not allowed");
	return husk_deny_str((husk_str){reason.p, reason.len});
}
