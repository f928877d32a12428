/* KVM or TCG. /dev/kvm existing, even KVM_CREATE_VM succeeding, does not
 * mean a guest boots under KVM (some hosts stop every guest right after the
 * boot loader). So KVM is chosen only after a probe boot reached userspace,
 * with a deadline; the answer is remembered per host in
 * <state>/vm-accel.json and found again as long as QEMU, the host kernel,
 * the CPU and the image's kernel are the same. */
#include "vm/vm.h"
#include "vm/qmp.h"
#include "vm/vm-internal.h"
#include "util/cleanup.h"
#include "util/err.h"
#include "util/fs.h"
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#define PROBE_MARKER "ISOLA-PROBE-OK"
#define CACHE_FILE "vm-accel.json"

static void file_id(char *buf, size_t len, const char *path)
{
	struct stat st;
	if (path && stat(path, &st) == 0)
		snprintf(buf, len, "%s:%lld:%lld", path, (long long)st.st_size, (long long)st.st_mtime);
	else
		snprintf(buf, len, "%s:none", path ? path : "");
}

static char *host_key(const struct vm_image *img, const char *qemu)
{
	struct utsname u;
	uname(&u);
	char cpu[256] = "unknown", line[512], q[512], k[512];
	_cleanup_fclose_ FILE *f = fopen("/proc/cpuinfo", "re");
	while (f && fgets(line, sizeof line, f))
		if (strncmp(line, "model name", 10) == 0) {
			char *c = strchr(line, ':');
			snprintf(cpu, sizeof cpu, "%.200s", c ? c + 2 : line);
			cpu[strcspn(cpu, "\n")] = '\0';
			break;
		}
	file_id(q, sizeof q, qemu);
	file_id(k, sizeof k, img->kernel);
	char *key = NULL;
	if (asprintf(&key, "qemu=%s host=%s %s cpu=%s kernel=%s", q, u.release, u.machine, cpu, k) < 0)
		return NULL;
	return key;
}

/* Boot the image's initramfs under KVM with "isola.probe": its init prints
 * the marker on the serial console and powers off. */
static int probe(const struct vm_image *img, int timeout_ms, char **why)
{
	struct vm_config c = { .name = "kvm-probe", .machine = VM_MACHINE_MICROVM, .accel = VM_ACCEL_KVM, .vcpus = 1,
			       .memory = 128ull << 20, .kernel = img->kernel, .initrd = img->initrd, .disk = img->base,
			       .cmdline_extra = "isola.probe" };
	int con[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, con) < 0)
		return err_set(errno, "KVM probe: socketpair");
	char **argv = NULL;
	/* No QMP, agent or disk: only the console. vm_qemu_argv wants the
	 * sockets, so the probe builds its own short command line. */
	_cleanup_free_ char *cmdline = vm_kernel_cmdline(&c);
	char con_opt[64];
	snprintf(con_opt, sizeof con_opt, "socket,id=console,fd=%d", 3);
	const char *qemu = getenv("ISOLA_QEMU");
	char *args[] = { (char *)(qemu && *qemu ? qemu : "/usr/bin/qemu-system-x86_64"), "-nodefaults", "-no-user-config",
			 "-display", "none", "-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
			 "-machine", "microvm,acpi=on", "-accel", "kvm", "-cpu", "host", "-m", "128M", "-smp", "1",
			 "-kernel", img->kernel, "-initrd", img->initrd, "-append", cmdline, "-chardev", con_opt,
			 "-serial", "chardev:console", "-no-reboot", NULL };
	argv = args;
	int from[1] = { con[1] }, to[1] = { 3 };
	int logp[2];
	if (pipe2(logp, O_CLOEXEC) < 0) {
		close(con[0]), close(con[1]);
		return err_set(errno, "KVM probe: pipe");
	}
	pid_t pid;
	int pidfd, r = vm_spawn(argv, from, to, 1, logp[1], &pid, &pidfd);
	close(con[1]);
	close(logp[1]);
	if (r < 0) {
		close(con[0]), close(logp[0]);
		return err_wrap(r, "KVM probe");
	}
	char out[4096] = "", err[1024] = "";
	size_t olen = 0, elen = 0;
	long long deadline = qmp_now_ms() + timeout_ms;
	bool ok = false, exited = false;
	while (!ok && !exited) {
		long long left = deadline - qmp_now_ms();
		if (left <= 0)
			break;
		struct pollfd p[3] = { { .fd = con[0], .events = POLLIN }, { .fd = logp[0], .events = POLLIN }, { .fd = pidfd, .events = POLLIN } };
		if (poll(p, 3, (int)left) < 0 && errno != EINTR)
			break;
		if (p[0].revents) {
			if (olen > sizeof out - 512) { /* keep the tail: the marker may straddle */
				memmove(out, out + olen - 256, 256);
				olen = 256;
			}
			ssize_t n = read(con[0], out + olen, sizeof out - 1 - olen);
			if (n > 0) {
				olen += (size_t)n;
				out[olen] = '\0';
				ok = memmem(out, olen, PROBE_MARKER, strlen(PROBE_MARKER)) != NULL;
			}
		}
		if (p[1].revents) {
			ssize_t n = read(logp[0], err + elen, sizeof err - 1 - elen);
			if (n > 0) {
				elen += (size_t)n;
				err[elen] = '\0';
			}
		}
		if (p[2].revents)
			exited = true;
	}
	vm_pidfd_kill(pidfd, SIGKILL);
	waitpid(pid, NULL, 0);
	ssize_t n = read(logp[0], err + elen, sizeof err - 1 - elen); /* what QEMU said while dying */
	if (n > 0)
		err[elen + (size_t)n] = '\0';
	close(pidfd), close(con[0]), close(logp[0]);
	if (ok) {
		*why = strdup("a probe boot under KVM reached userspace");
		return 1;
	}
	const char *line = vm_last_line(err);
	if (asprintf(why, "a probe boot under KVM %s%s%s", exited ? "failed" : "did not reach userspace in time",
		     *line ? ": " : "", line) < 0)
		*why = NULL;
	return 0;
}

int vm_accel_choose(const char *state_dir, const struct vm_image *img, int timeout_ms, enum vm_accel *ret, char **ret_why)
{
	const char *env = getenv("ISOLA_VM_ACCEL");
	char *why = NULL;
	enum vm_accel forced;
	if (env && *env && vm_accel_from_name(env, &forced) == 0 && forced != VM_ACCEL_AUTO) {
		*ret = forced;
		if (ret_why)
			*ret_why = strdup("ISOLA_VM_ACCEL");
		return 0;
	}
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0) {
		int e = errno;
		*ret = VM_ACCEL_TCG;
		if (ret_why && asprintf(ret_why, "/dev/kvm: %s", strerror(e)) < 0)
			*ret_why = NULL;
		return 0;
	}
	close(kvm);
	const char *q = getenv("ISOLA_QEMU");
	_cleanup_free_ char *key = host_key(img, q && *q ? q : "/usr/bin/qemu-system-x86_64");
	_cleanup_free_ char *path = NULL;
	if (!key || asprintf(&path, "%s/%s", state_dir, CACHE_FILE) < 0)
		return err_set(ENOMEM, "accelerator choice");
	json_t *cached = json_load_file(path, 0, NULL);
	const char *ck = json_string_value(json_object_get(cached, "key"));
	const char *ca = json_string_value(json_object_get(cached, "accel"));
	enum vm_accel a;
	if (ck && ca && strcmp(ck, key) == 0 && vm_accel_from_name(ca, &a) == 0 && a != VM_ACCEL_AUTO) {
		*ret = a;
		const char *w = json_string_value(json_object_get(cached, "why"));
		if (ret_why && asprintf(ret_why, "%s (remembered in %s)", w ? w : "probe", path) < 0)
			*ret_why = NULL;
		json_decref(cached);
		return 0;
	}
	json_decref(cached);
	const char *t = getenv("ISOLA_VM_PROBE_TIMEOUT_MS");
	if (t && *t)
		timeout_ms = atoi(t);
	if (timeout_ms <= 0)
		timeout_ms = 8000;
	int r = probe(img, timeout_ms, &why);
	if (r < 0)
		return r;
	a = r == 1 ? VM_ACCEL_KVM : VM_ACCEL_TCG;
	json_t *o = json_pack("{s:s, s:s, s:s}", "key", key, "accel", vm_accel_name(a), "why", why ? why : "");
	_cleanup_free_ char *text = o ? json_dumps(o, JSON_INDENT(2)) : NULL;
	json_decref(o);
	int dfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (text && dfd >= 0)
		(void)write_file_atomic_at(dfd, CACHE_FILE, text, strlen(text), 0644); /* best effort: probe again next time */
	if (dfd >= 0)
		close(dfd);
	*ret = a;
	if (ret_why)
		*ret_why = why;
	else
		free(why);
	return 0;
}
