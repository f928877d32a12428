/* QEMU's command line and the validation of a VM configuration: machine
 * names, memory and vCPU bounds, missing files, what each machine type and
 * accelerator puts on the command line (virtio-mmio vs PCI, the TSC hint
 * under TCG only, throttling, the tap fd, incoming migration). */
#include "unit.h"
#include "vm/vm.h"
#include "util/err.h"
#include <fcntl.h>
#include <stdarg.h>
#include <unistd.h>

static char dir[] = "/tmp/test-vm-qemu.XXXXXX";
static char kernel[256], disk[256];

static bool has(char **argv, const char *s)
{
	for (size_t i = 0; argv && argv[i]; i++)
		if (strstr(argv[i], s))
			return true;
	return false;
}

/* The argument that follows `opt` and contains `s`. */
static bool opt_has(char **argv, const char *opt, const char *s)
{
	for (size_t i = 0; argv && argv[i] && argv[i + 1]; i++)
		if (strcmp(argv[i], opt) == 0 && strstr(argv[i + 1], s))
			return true;
	return false;
}

static struct vm_config base(void)
{
	return (struct vm_config){ .name = "v1", .machine = VM_MACHINE_MICROVM, .accel = VM_ACCEL_TCG, .vcpus = 1,
				   .memory = 256ull << 20, .kernel = kernel, .disk = disk };
}

int main(void)
{
	CHECK(mkdtemp(dir) != NULL);
	snprintf(kernel, sizeof kernel, "%s/vmlinux", dir);
	snprintf(disk, sizeof disk, "%s/root.qcow2", dir);
	close(open(kernel, O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
	close(open(disk, O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
	struct vm_fds fds = { .qmp = 3, .agent = 4, .console = 5, .tap = -1 };

	enum vm_machine m;
	CHECK_INT(vm_machine_from_name("q35", &m), 0);
	CHECK_INT(m, VM_MACHINE_Q35);
	CHECK_INT(vm_machine_from_name("pdp11", &m), -EINVAL);
	CHECK_STR(err_msg(), "machine \"pdp11\": unknown (microvm or q35)");
	enum vm_accel a;
	CHECK_INT(vm_accel_from_name("hvf", &a), -EINVAL);
	CHECK_CONTAINS(err_msg(), "accelerator \"hvf\"");

	struct vm_config c = base();
	CHECK_INT(vm_config_check(&c), 0);
	c.memory = 1024;
	CHECK_INT(vm_config_check(&c), -EINVAL);
	CHECK_STR(err_msg(), "VM v1: memory 1 KiB is below the minimum of 64 MiB");
	c.memory = (256ull << 20) + 1;
	CHECK_INT(vm_config_check(&c), -EINVAL);
	CHECK_CONTAINS(err_msg(), "not a whole number of MiB");
	c = base();
	c.vcpus = 0;
	CHECK_INT(vm_config_check(&c), -EINVAL);
	CHECK_CONTAINS(err_msg(), "0 vCPUs: must be 1 to 64");
	c = base();
	c.kernel = "/nonexistent/vmlinux";
	CHECK_INT(vm_config_check(&c), -ENOENT);
	CHECK_STR(err_msg(), "VM v1: kernel /nonexistent/vmlinux: No such file or directory");
	c = base();
	c.disk = dir;
	CHECK_INT(vm_config_check(&c), -EINVAL);
	CHECK_CONTAINS(err_msg(), "not a regular file");
	/* QEMU would read these as protocols, not files */
	c = base();
	c.disk = "json:{\"driver\": \"file\", \"filename\": \"/etc/shadow\"}";
	CHECK_INT(vm_config_check(&c), -EINVAL);
	CHECK_CONTAINS(err_msg(), "not an absolute path");
	c = base();
	c.initrd = "nbd:localhost:10809";
	CHECK_INT(vm_config_check(&c), -EINVAL);
	CHECK_CONTAINS(err_msg(), "VM v1: initrd nbd:localhost:10809: not an absolute path");
	CHECK_INT(vm_disk_check("json:{}", NULL), -EINVAL);
	CHECK_INT(vm_disk_overlay_create("/base.qcow2", "relative.qcow2"), -EINVAL);
	c = base();
	c.accel = VM_ACCEL_AUTO;
	CHECK_INT(vm_config_check(&c), -EINVAL);
	c = base();
	c.mac = "01:00:5e:00:00:01"; /* multicast */
	CHECK_INT(vm_config_check(&c), -EINVAL);
	c = base();
	c.machine = (enum vm_machine)7;
	CHECK_INT(vm_config_check(&c), -EINVAL);

	/* microvm under TCG */
	c = base();
	char **argv = NULL;
	CHECK_INT(vm_qemu_argv(&c, &fds, &argv), 0);
	CHECK(opt_has(argv, "-machine", "microvm"));
	CHECK(opt_has(argv, "-accel", "tcg"));
	CHECK(opt_has(argv, "-append", "tsc_early_khz="));
	CHECK(opt_has(argv, "-device", "virtio-blk-device,drive=root"));
	CHECK(opt_has(argv, "-device", "virtio-serial-device"));
	CHECK(opt_has(argv, "-device", "virtserialport,bus=vser0.0,chardev=agent,name=org.isola.agent"));
	CHECK(opt_has(argv, "-device", "virtio-balloon-device"));
	CHECK(opt_has(argv, "-chardev", "socket,id=qmp,fd=3,server=on,wait=off"));
	CHECK(opt_has(argv, "-chardev", "socket,id=console,fd=5"));
	CHECK(opt_has(argv, "-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"));
	CHECK(opt_has(argv, "-m", "256M"));
	CHECK(opt_has(argv, "-smp", "1"));
	CHECK(has(argv, "-nodefaults"));
	CHECK(!has(argv, "-incoming"));
	CHECK(!has(argv, "-netdev"));
	CHECK(!opt_has(argv, "-cpu", "host"));
	vm_argv_free(argv);

	/* q35 under KVM, with limits, a NIC and an incoming migration */
	c = base();
	c.machine = VM_MACHINE_Q35;
	c.accel = VM_ACCEL_KVM;
	c.vcpus = 2;
	c.memory = 1ull << 30;
	c.throttle = (struct vm_throttle){ .bps_read = 10485760, .iops_write = 100 };
	c.incoming = true;
	struct vm_fds nfds = fds;
	nfds.tap = 6;
	CHECK_INT(vm_qemu_argv(&c, &nfds, &argv), 0);
	CHECK(opt_has(argv, "-machine", "q35"));
	CHECK(opt_has(argv, "-accel", "kvm"));
	CHECK(opt_has(argv, "-cpu", "host"));
	CHECK(!opt_has(argv, "-append", "tsc_early_khz"));
	CHECK(opt_has(argv, "-device", "virtio-blk-pci,drive=root"));
	CHECK(opt_has(argv, "-drive", "throttling.bps-read=10485760,"));
	CHECK(opt_has(argv, "-drive", "throttling.iops-write=100"));
	CHECK(opt_has(argv, "-netdev", "tap,id=net0,fd=6"));
	CHECK(opt_has(argv, "-device", "virtio-net-pci,netdev=net0,mac=52:54:00:"));
	CHECK(opt_has(argv, "-incoming", "defer"));
	CHECK(opt_has(argv, "-m", "1024M"));
	CHECK(opt_has(argv, "-smp", "2"));
	vm_argv_free(argv);

	/* no QMP or agent socket: refused */
	struct vm_fds none = { .qmp = -1, .agent = -1, .console = -1, .tap = -1 };
	c = base();
	CHECK_INT(vm_qemu_argv(&c, &none, &argv), -EINVAL);

	char cmd[512];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	CHECK_INT(system(cmd), 0);
	return unit_done("test-vm-qemu");
}
