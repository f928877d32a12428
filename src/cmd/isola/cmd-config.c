/* isola config get | set | unset | show NAME ...: instance configuration. */
#include "manager/instance.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "cmd.h"
#include <string.h>

static void manager_closep(struct manager **m) { if (*m) manager_close(*m); }
#define _cleanup_manager_ _cleanup_(manager_closep)

int cmd_config(int argc, char **argv)
{
	static const char usage[] = "expected get NAME KEY | set NAME KEY VALUE | unset NAME KEY | show NAME";
	if (argc < 3)
		return usage_error("config", usage);
	const char *verb = argv[1], *name = argv[2];
	int want = !strcmp(verb, "get") || !strcmp(verb, "unset") ? 4 : !strcmp(verb, "set") ? 5
		   : !strcmp(verb, "show") ? 3 : 0;
	if (!want)
		return usage_error("config", "unknown subcommand \"%s\": %s", verb, usage);
	if (argc != want)
		return usage_error("config", "%s: %s", verb, usage);
	_cleanup_manager_ struct manager *m = NULL;
	int r = open_manager(&m);
	if (r < 0)
		return fail_cmd(r);
	if (!strcmp(verb, "set"))
		return (r = instance_config_set(m, name, argv[3], argv[4])) < 0 ? fail_cmd(r) : 0;
	if (!strcmp(verb, "unset"))
		return (r = instance_config_unset(m, name, argv[3])) < 0 ? fail_cmd(r) : 0;
	/* an unknown key is an error; a known one that is not set prints nothing */
	if (!strcmp(verb, "get") && (r = instance_config_key_check(argv[3])) < 0)
		return fail_cmd(r);
	struct instance in;
	if ((r = instance_get(m, name, &in)) < 0)
		return fail_cmd(r);
	if (!strcmp(verb, "get")) {
		const char *v = strmap_get(&in.config, argv[3]);
		if (v)
			printf("%s\n", v);
	} else {
		for (size_t i = 0; i < in.config.cap; i++)
			if (in.config.keys[i] && in.config.values[i])
				printf("%s: %s\n", in.config.keys[i], in.config.values[i]);
	}
	instance_clear(&in);
	return 0;
}
