/* QEMU's command line for a VM: names of machines and accelerators, the
 * built-in image's files, validation of a struct vm_config, and the argv
 * (never a shell string). */
#include "vm/vm.h"
#include "vm/vm-internal.h"
#include "util/cleanup.h"
#include "util/err.h"
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>

static const char *const machine_names[] = { [VM_MACHINE_MICROVM] = "microvm", [VM_MACHINE_Q35] = "q35" };
static const char *const accel_names[] = { [VM_ACCEL_AUTO] = "auto", [VM_ACCEL_KVM] = "kvm", [VM_ACCEL_TCG] = "tcg" };

int vm_machine_from_name(const char *name, enum vm_machine *ret)
{
	for (size_t i = 0; i < ARRAY_SIZE(machine_names); i++)
		if (name && strcmp(name, machine_names[i]) == 0) {
			*ret = (enum vm_machine)i;
			return 0;
		}
	return vm_refuse(EINVAL, "machine \"%s\": unknown (microvm or q35)", name ? name : "");
}

const char *vm_machine_name(enum vm_machine m) { return (unsigned)m < ARRAY_SIZE(machine_names) ? machine_names[m] : "?"; }

int vm_accel_from_name(const char *name, enum vm_accel *ret)
{
	for (size_t i = 0; i < ARRAY_SIZE(accel_names); i++)
		if (name && strcmp(name, accel_names[i]) == 0) {
			*ret = (enum vm_accel)i;
			return 0;
		}
	return vm_refuse(EINVAL, "accelerator \"%s\": unknown (auto, kvm or tcg)", name ? name : "");
}

const char *vm_accel_name(enum vm_accel a) { return (unsigned)a < ARRAY_SIZE(accel_names) ? accel_names[a] : "?"; }

static int regular_file(const char *what, const char *path)
{
	struct stat st;
	if (!path || !*path)
		return vm_refuse(EINVAL, "%s: no file given", what);
	/* QEMU reads "json:{...}" or "nbd:..." in a file name as a protocol;
	 * an absolute path is always a file. */
	if (path[0] != '/')
		return vm_refuse(EINVAL, "%s %s: not an absolute path", what, path);
	if (stat(path, &st) < 0)
		return err_set(errno, "%s %s", what, path);
	if (!S_ISREG(st.st_mode))
		return vm_refuse(EINVAL, "%s %s: not a regular file", what, path);
	return 0;
}

void vm_image_free(struct vm_image *img)
{
	if (!img)
		return;
	free(img->kernel);
	free(img->initrd);
	free(img->base);
	memset(img, 0, sizeof *img);
}

int vm_image_open(const char *dir, struct vm_image *ret)
{
	_cleanup_free_ char *abs = realpath(dir, NULL);
	if (!abs)
		return err_set(errno, "VM image %s (make vm builds the built-in one)", dir);
	struct vm_image img = { 0 };
	if (asprintf(&img.kernel, "%s/vmlinux", abs) < 0 || asprintf(&img.initrd, "%s/initrd.img", abs) < 0 ||
	    asprintf(&img.base, "%s/base.qcow2", abs) < 0) {
		vm_image_free(&img);
		return err_set(ENOMEM, "VM image %s", dir);
	}
	int r;
	if ((r = regular_file("VM image: kernel", img.kernel)) < 0 || (r = regular_file("VM image: initrd", img.initrd)) < 0 ||
	    (r = regular_file("VM image: disk", img.base)) < 0) {
		vm_image_free(&img);
		return r;
	}
	*ret = img;
	return 0;
}

static void fmt_size(char *buf, size_t len, uint64_t b)
{
	if (b >= (1ull << 30) && b % (1ull << 30) == 0)
		snprintf(buf, len, "%" PRIu64 " GiB", b >> 30);
	else if (b >= (1ull << 20) && b % (1ull << 20) == 0)
		snprintf(buf, len, "%" PRIu64 " MiB", b >> 20);
	else if (b >= 1024 && b % 1024 == 0)
		snprintf(buf, len, "%" PRIu64 " KiB", b >> 10);
	else
		snprintf(buf, len, "%" PRIu64 " B", b);
}

static bool mac_valid(const char *m)
{
	if (strlen(m) != 17)
		return false;
	for (int i = 0; i < 17; i++) {
		if (i % 3 == 2 ? m[i] != ':' : !strchr("0123456789abcdefABCDEF", m[i]))
			return false;
	}
	/* unicast: the low bit of the first octet is clear */
	return (strtoul(m, NULL, 16) & 1) == 0;
}

int vm_config_check(const struct vm_config *c)
{
	const char *n = c->name ? c->name : "(unnamed)";
	char s[32], lim[32];
	if ((unsigned)c->machine >= ARRAY_SIZE(machine_names))
		return vm_refuse(EINVAL, "VM %s: machine %d: unknown (microvm or q35)", n, (int)c->machine);
	if (c->accel != VM_ACCEL_KVM && c->accel != VM_ACCEL_TCG)
		return vm_refuse(EINVAL, "VM %s: accelerator %s: choose kvm or tcg (vm_accel_choose)", n, vm_accel_name(c->accel));
	if (c->vcpus < 1 || c->vcpus > VM_MAX_VCPUS)
		return vm_refuse(EINVAL, "VM %s: %u vCPUs: must be 1 to %u", n, c->vcpus, VM_MAX_VCPUS);
	fmt_size(s, sizeof s, c->memory);
	if (c->memory < VM_MIN_MEMORY) {
		fmt_size(lim, sizeof lim, VM_MIN_MEMORY);
		return vm_refuse(EINVAL, "VM %s: memory %s is below the minimum of %s", n, s, lim);
	}
	if (c->memory > VM_MAX_MEMORY) {
		fmt_size(lim, sizeof lim, VM_MAX_MEMORY);
		return vm_refuse(EINVAL, "VM %s: memory %s is above the maximum of %s", n, s, lim);
	}
	if (c->memory % (1ull << 20))
		return vm_refuse(EINVAL, "VM %s: memory %s is not a whole number of MiB", n, s);
	int r;
	if ((r = regular_file("kernel", c->kernel)) < 0 || (c->initrd && (r = regular_file("initrd", c->initrd)) < 0) ||
	    (r = regular_file("disk", c->disk)) < 0)
		return err_wrap(r, "VM %s", n);
	if (strchr(c->disk, ',') || strchr(c->kernel, ',') || (c->initrd && strchr(c->initrd, ',')))
		return vm_refuse(EINVAL, "VM %s: file names with a comma are not supported by QEMU's options", n);
	if (c->mac && !mac_valid(c->mac))
		return vm_refuse(EINVAL, "VM %s: MAC address \"%s\": not a unicast xx:xx:xx:xx:xx:xx", n, c->mac);
	if (c->cmdline_extra && strlen(c->cmdline_extra) > 1024)
		return vm_refuse(EINVAL, "VM %s: kernel command line: longer than 1024 characters", n);
	return 0;
}

char *vm_kernel_cmdline(const struct vm_config *c)
{
	char *s = NULL;
	/* Under TCG, microvm (no HPET, no PM timer) hangs calibrating the TSC
	 * unless told its frequency; any plausible value does. panic=-1 with
	 * pvpanic: a crash ends QEMU with a failure instead of a silent reboot. */
	const char *tsc = c->machine == VM_MACHINE_MICROVM && c->accel == VM_ACCEL_TCG ? " tsc_early_khz=2000000" : "";
	if (asprintf(&s, "console=ttyS0 reboot=t panic=-1 quiet%s%s%s", tsc, c->cmdline_extra ? " " : "",
		     c->cmdline_extra ? c->cmdline_extra : "") < 0)
		return NULL;
	return s;
}

static char *qemu_binary(void)
{
	const char *env = getenv("ISOLA_QEMU");
	if (env && *env)
		return strdup(env);
	const char *path = getenv("PATH");
	_cleanup_free_ char *dup = strdup(path && *path ? path : "/usr/bin:/bin");
	char *save = NULL;
	for (char *d = dup ? strtok_r(dup, ":", &save) : NULL; d; d = strtok_r(NULL, ":", &save)) {
		char *p = NULL;
		if (asprintf(&p, "%s/qemu-system-x86_64", d) < 0)
			return NULL;
		if (access(p, X_OK) == 0)
			return p;
		free(p);
	}
	return strdup("/usr/bin/qemu-system-x86_64");
}

struct argv_buf {
	char **v;
	size_t n, cap;
	bool oom;
};

static void add(struct argv_buf *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(struct argv_buf *a, const char *fmt, ...)
{
	if (a->oom)
		return;
	if (a->n + 2 > a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 64;
		char **nv = realloc(a->v, cap * sizeof *nv);
		if (!nv) {
			a->oom = true;
			return;
		}
		a->v = nv;
		a->cap = cap;
	}
	va_list ap;
	va_start(ap, fmt);
	int r = vasprintf(&a->v[a->n], fmt, ap);
	va_end(ap);
	if (r < 0) {
		a->oom = true;
		return;
	}
	a->v[++a->n] = NULL;
}

void vm_argv_free(char **argv)
{
	for (size_t i = 0; argv && argv[i]; i++)
		free(argv[i]);
	free(argv);
}

/* A locally administered MAC from the VM's name (FNV-1a). */
static void derive_mac(const char *name, char out[18])
{
	uint32_t h = 2166136261u;
	for (const char *p = name ? name : ""; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	snprintf(out, 18, "52:54:00:%02x:%02x:%02x", (h >> 16) & 0xff, (h >> 8) & 0xff, h & 0xff);
}

int vm_qemu_argv(const struct vm_config *c, const struct vm_fds *fds, char ***ret)
{
	int r = vm_config_check(c);
	if (r < 0)
		return r;
	const char *n = c->name ? c->name : "vm";
	if (fds->qmp < 3 || fds->agent < 3)
		return vm_refuse(EINVAL, "VM %s: QMP and agent sockets are needed", n);
	bool mmio = c->machine == VM_MACHINE_MICROVM;
	/* virtio devices: on the virtio-mmio bus of microvm, PCI on q35 */
	const char *bus = mmio ? "device" : "pci";
	_cleanup_free_ char *cmdline = vm_kernel_cmdline(c);
	_cleanup_free_ char *bin = qemu_binary();
	struct argv_buf a = { .oom = !bin || !cmdline };
	add(&a, "%s", bin);
	add(&a, "-name");
	add(&a, "guest=%s", n);
	add(&a, "-nodefaults");
	add(&a, "-no-user-config");
	add(&a, "-display");
	add(&a, "none");
	add(&a, "-msg");
	add(&a, "timestamp=off");
	/* QEMU's own seccomp filter: no obsolete calls, no privilege changes,
	 * no new processes, no scheduler/resource changes. */
	add(&a, "-sandbox");
	add(&a, "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny");
	add(&a, "-machine");
	add(&a, "%s", mmio ? "microvm,acpi=on" : "q35");
	add(&a, "-accel");
	add(&a, "%s", c->accel == VM_ACCEL_KVM ? "kvm" : "tcg");
	if (c->accel == VM_ACCEL_KVM) {
		add(&a, "-cpu");
		add(&a, "host");
	}
	add(&a, "-smp");
	add(&a, "%u", c->vcpus);
	add(&a, "-m");
	add(&a, "%" PRIu64 "M", c->memory >> 20);
	add(&a, "-kernel");
	add(&a, "%s", c->kernel);
	if (c->initrd) {
		add(&a, "-initrd");
		add(&a, "%s", c->initrd);
	}
	add(&a, "-append");
	add(&a, "%s", cmdline ? cmdline : "");
	/* QMP on a listening socket the caller made. */
	add(&a, "-chardev");
	add(&a, "socket,id=qmp,fd=%d,server=on,wait=off", fds->qmp);
	add(&a, "-mon");
	add(&a, "chardev=qmp,mode=control");
	if (fds->console >= 0) {
		add(&a, "-chardev");
		add(&a, "socket,id=console,fd=%d", fds->console);
		add(&a, "-serial");
		add(&a, "chardev:console");
	}
	/* The root disk, with its throttling. */
	const struct vm_throttle *t = &c->throttle;
	add(&a, "-drive");
	add(&a,
	    "if=none,id=root,file=%s,format=qcow2,cache=writeback,discard=unmap,"
	    "throttling.bps-read=%" PRIu64 ",throttling.bps-write=%" PRIu64 ","
	    "throttling.iops-read=%" PRIu64 ",throttling.iops-write=%" PRIu64,
	    c->disk, t->bps_read, t->bps_write, t->iops_read, t->iops_write);
	add(&a, "-device");
	add(&a, "virtio-blk-%s,drive=root,id=vda", bus);
	/* The agent's channel. */
	add(&a, "-chardev");
	add(&a, "socket,id=agent,fd=%d,server=on,wait=off", fds->agent);
	add(&a, "-device");
	add(&a, "virtio-serial-%s,id=vser0,max_ports=2", bus);
	add(&a, "-device");
	add(&a, "virtserialport,bus=vser0.0,chardev=agent,name=org.isola.agent");
	add(&a, "-device");
	add(&a, "virtio-balloon-%s,id=balloon0", bus);
	if (fds->tap >= 0) {
		char mac[18];
		if (c->mac)
			snprintf(mac, sizeof mac, "%s", c->mac);
		else
			derive_mac(c->name, mac);
		add(&a, "-netdev");
		add(&a, "tap,id=net0,fd=%d", fds->tap);
		add(&a, "-device");
		add(&a, "virtio-net-%s,netdev=net0,mac=%s", bus, mac);
	}
	/* A guest kernel panic ends QEMU with exit status 1. */
	add(&a, "-device");
	add(&a, "pvpanic");
	add(&a, "-action");
	add(&a, "panic=exit-failure");
	if (c->incoming) {
		add(&a, "-incoming");
		add(&a, "defer");
	}
	if (c->paused)
		add(&a, "-S");
	if (a.oom) {
		vm_argv_free(a.v);
		return err_set(ENOMEM, "VM %s: QEMU command line", n);
	}
	*ret = a.v;
	return 0;
}
