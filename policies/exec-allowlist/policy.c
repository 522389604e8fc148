/*
 * exec-allowlist is a hook policy (built-in, see docs/hooks.md §6) that
 * allows only the listed programs to be exec'd into running containers
 * (kubectl exec, ctr task exec), at process.exec.
 *
 * Configuration:
 *
 *	commands  list of allowed programs, compared with the process's
 *	          args[0] exactly (so list "/bin/ls" and "ls" if both are used)
 *
 * Without a list, or with an empty one, every exec is denied.
 */
#include "husk.h"

/* commands is the host's set of allowed programs; -1: none. */
static int32_t commands = -1;

const char *husk_policy_init(husk_value cfg) {
	husk_iter it = husk_iter_of(cfg);
	husk_value k, v;
	while (husk_next(&it, &k, &v)) {
		int32_t n;
		if (!husk_is(k, "commands")) {
			return husk_unknown_key(k, "commands");
		}
		if (!husk_all_strings(v, &n))
			return "commands: want a list of programs";
		if ((commands = husk_set_of(v)) < 0)
			return "commands: too many programs";
	}
	return 0;
}

husk_decision husk_policy_decide(husk_point point) {
	if (point != HUSK_PROCESS_EXEC)
		return husk_allow();
	husk_value arg0 = husk_at(husk_root(), "/process/args/0");
	if (commands >= 0 && husk_in(arg0, commands))
		return husk_allow();
	husk_str name;
	husk_string(arg0, &name);
	husk_buf reason = {0, 0, 0};
	husk_buf_add(&reason, "exec of \"");
	husk_buf_add_str(&reason, name);
	husk_buf_add(&reason, "\" is not on the allow-list");
	return husk_deny_str((husk_str){reason.p, reason.len});
}
