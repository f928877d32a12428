/* OCI mount option keywords -> MS_* flags, propagation and the remaining
 * filesystem data string. Pure table lookup. */
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>

#include "spec/spec.h"
#include "util/cleanup.h"
#include "util/err.h"

enum opt_kind {
	O_SET,   /* set `flag` in flags */
	O_CLEAR, /* clear `flag` (and record it in clear) */
	O_PROP,  /* propagation type */
	O_BIND,
	O_RBIND,
	O_RRO,
	O_RRW,
	O_IDMAP,
	O_RIDMAP,
	O_TMPCOPYUP,
	O_NOOP,
	O_UNSUPPORTED,
};

typedef struct {
	const char *name;
	enum opt_kind kind;
	unsigned long flag;
} mount_opt;

static const mount_opt mount_opts[] = {
	{ "defaults", O_NOOP, 0 },
	{ "ro", O_SET, MS_RDONLY },           { "rw", O_CLEAR, MS_RDONLY },
	{ "nosuid", O_SET, MS_NOSUID },       { "suid", O_CLEAR, MS_NOSUID },
	{ "nodev", O_SET, MS_NODEV },         { "dev", O_CLEAR, MS_NODEV },
	{ "noexec", O_SET, MS_NOEXEC },       { "exec", O_CLEAR, MS_NOEXEC },
	{ "sync", O_SET, MS_SYNCHRONOUS },    { "async", O_CLEAR, MS_SYNCHRONOUS },
	{ "dirsync", O_SET, MS_DIRSYNC },
	{ "remount", O_SET, MS_REMOUNT },
	{ "mand", O_SET, MS_MANDLOCK },       { "nomand", O_CLEAR, MS_MANDLOCK },
	{ "noatime", O_SET, MS_NOATIME },     { "atime", O_CLEAR, MS_NOATIME },
	{ "nodiratime", O_SET, MS_NODIRATIME }, { "diratime", O_CLEAR, MS_NODIRATIME },
	{ "relatime", O_SET, MS_RELATIME },   { "norelatime", O_CLEAR, MS_RELATIME },
	{ "strictatime", O_SET, MS_STRICTATIME }, { "nostrictatime", O_CLEAR, MS_STRICTATIME },
	{ "lazytime", O_SET, MS_LAZYTIME },   { "nolazytime", O_CLEAR, MS_LAZYTIME },
	{ "nosymfollow", O_SET, MS_NOSYMFOLLOW }, { "symfollow", O_CLEAR, MS_NOSYMFOLLOW },
	{ "silent", O_SET, MS_SILENT },       { "loud", O_CLEAR, MS_SILENT },
	{ "bind", O_BIND, MS_BIND },          { "rbind", O_RBIND, MS_BIND | MS_REC },
	{ "private", O_PROP, MS_PRIVATE },    { "rprivate", O_PROP, MS_PRIVATE | MS_REC },
	{ "shared", O_PROP, MS_SHARED },      { "rshared", O_PROP, MS_SHARED | MS_REC },
	{ "slave", O_PROP, MS_SLAVE },        { "rslave", O_PROP, MS_SLAVE | MS_REC },
	{ "unbindable", O_PROP, MS_UNBINDABLE }, { "runbindable", O_PROP, MS_UNBINDABLE | MS_REC },
	{ "rro", O_RRO, 0 },                  { "rrw", O_RRW, 0 },
	{ "idmap", O_IDMAP, 0 },              { "ridmap", O_RIDMAP, 0 },
	{ "tmpcopyup", O_TMPCOPYUP, 0 },
	/* Recognised by the runtime-spec or other runtimes, not implemented
	 * here: fail loudly rather than hand them to the filesystem. */
	{ "rnosuid", O_UNSUPPORTED, 0 },      { "rsuid", O_UNSUPPORTED, 0 },
	{ "rnodev", O_UNSUPPORTED, 0 },       { "rdev", O_UNSUPPORTED, 0 },
	{ "rnoexec", O_UNSUPPORTED, 0 },      { "rexec", O_UNSUPPORTED, 0 },
	{ "rnoatime", O_UNSUPPORTED, 0 },     { "ratime", O_UNSUPPORTED, 0 },
	{ "rnodiratime", O_UNSUPPORTED, 0 },  { "rdiratime", O_UNSUPPORTED, 0 },
	{ "rrelatime", O_UNSUPPORTED, 0 },    { "rnorelatime", O_UNSUPPORTED, 0 },
	{ "rstrictatime", O_UNSUPPORTED, 0 }, { "rnostrictatime", O_UNSUPPORTED, 0 },
	{ "rnosymfollow", O_UNSUPPORTED, 0 }, { "rsymfollow", O_UNSUPPORTED, 0 },
};

const char *spec_mount_option_name(size_t i)
{
	/* the keywords the runtime implements, in table order; idmap and
	 * ridmap are parsed only so that the refusal names the mount */
	for (size_t k = 0; k < ARRAY_SIZE(mount_opts); k++)
		if (mount_opts[k].kind != O_UNSUPPORTED && mount_opts[k].kind != O_IDMAP &&
		    mount_opts[k].kind != O_RIDMAP && i-- == 0)
			return mount_opts[k].name;
	return NULL;
}

static const mount_opt *lookup(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(mount_opts); i++)
		if (strcmp(mount_opts[i].name, name) == 0)
			return &mount_opts[i];
	return NULL;
}

unsigned long spec_propagation_from_name(const char *name)
{
	const mount_opt *o = lookup(name);
	return o && o->kind == O_PROP ? o->flag : 0;
}

/* Later options override earlier ones ("ro,rw" is rw), as with mount(8). */
int spec_mount_opts_parse(char *const *options, spec_mount_opts *out)
{
	spec_mount_opts r = { 0 };
	size_t datalen = 0;
	_cleanup_free_ char *data = NULL;

	for (char *const *p = options; p && *p; p++)
		datalen += strlen(*p) + 1;
	if (datalen && !(data = calloc(1, datalen)))
		return err_set(ENOMEM, "mount options");

	for (char *const *p = options; p && *p; p++) {
		const mount_opt *o = lookup(*p);
		if (!o) {
			if (**p) {
				if (*data)
					strcat(data, ",");
				strcat(data, *p);
			}
			continue;
		}
		switch (o->kind) {
		case O_SET:
			r.flags |= o->flag;
			r.clear &= ~o->flag;
			break;
		case O_CLEAR:
			r.flags &= ~o->flag;
			r.clear |= o->flag;
			break;
		case O_PROP:
			r.propagation = o->flag;
			break;
		case O_RBIND:
			r.rec = true;
			/* fall through */
		case O_BIND:
			r.bind = true;
			r.flags |= o->flag;
			break;
		case O_RRO:
			r.recursive_ro = true;
			break;
		case O_RRW:
			r.recursive_ro = false;
			break;
		case O_IDMAP:
			r.idmap = true;
			break;
		case O_RIDMAP:
			r.ridmap = true;
			break;
		case O_TMPCOPYUP:
			r.tmpcopyup = true;
			break;
		case O_NOOP:
			break;
		case O_UNSUPPORTED:
			return err_set(0, "mount option \"%s\" is not supported", *p);
		}
	}
	if (data && *data)
		r.data = TAKE_PTR(data);
	*out = r;
	return 0;
}
