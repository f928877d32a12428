/* The virtual-machine layer: a VM is a QEMU process (Debian's
 * qemu-system-x86_64) controlled over QMP (qmp.h) and a guest agent
 * (agent.h), never through QEMU's human monitor. This header is the API the
 * manager drives; it knows nothing of instances, names or the database.
 *
 * How the manager uses it (a VM is an instance like a container):
 *
 *   create    vm_image_open(build/vm or the image store) for kernel, initrd
 *             and base disk; vm_disk_check(base, NULL); vm_disk_overlay_create(base,
 *             instances/NAME/root.qcow2) — O(1), copy-on-write.
 *   start     vm_accel_choose(state dir) (KVM only when a probe boot worked on
 *             this host, remembered in <state>/vm-accel.json; TCG otherwise:
 *             show it in `isola info`); fill a struct vm_config from the
 *             limits (limits.cpu -> vcpus, limits.memory -> memory,
 *             limits.disk.read/write -> throttle) and vm_config_check() it;
 *             vm_sockets_create(instance dir) makes qmp.sock and agent.sock
 *             (listening before QEMU runs: a client may connect at once) and
 *             a socketpair for the serial console; vm_qemu_argv() gives the
 *             command line (an argv, never a shell), with the fds numbered as
 *             QEMU will see them (struct vm_fds). The per-instance monitor
 *             (static, no library of ours) is QEMU's parent: it places those
 *             fds (vm_exec_qemu() shows how), forks and execs the argv, keeps
 *             the console socket's other end (console.log, `isola console`),
 *             reaps QEMU and records its exit (vm_exit_classify()). The
 *             command then vm_open()s the VM by pid and vm_wait_ready()s for
 *             the agent.
 *   stop      vm_stop(): a clean power-off request (ACPI system_powerdown on
 *             q35; the agent's poweroff on microvm, ACPI as fallback), QMP
 *             quit after the timeout, SIGKILL after that; --force: vm_kill().
 *   pause     vm_pause() / vm_resume() (QMP stop / cont).
 *   exec      agent_connect_at(dir) + agent_exec() (stdio relayed, pty
 *             with window size, exit code or signal).
 *   limits    vm_set_memory() (virtio-balloon; guest RAM is fixed at start),
 *             vm_set_throttle() (block_set_io_throttle), vcpus at next start.
 *   info      vm_usage(): disk bytes of the overlay, balloon size, QEMU RSS.
 *   migrate   destination: vm_config.incoming = true, then
 *             vm_migrate_incoming(fd) and vm_migrate_wait(); source:
 *             vm_migrate_send(fd) -> total time and downtime. The stream is
 *             QEMU's own (fd: migration), so it can go over any pipe.
 *
 * Notes for that integration:
 *   - The console must be read all the time (QEMU stalls the guest's serial
 *     port, and with it the guest, when nobody reads): the monitor keeps
 *     console.log and drops an `isola console` client that does not keep up.
 *   - QMP and the agent's port serve one client at a time: a command
 *     connects, acts and disconnects (vm_qmp_release). The agent protocol
 *     already carries several sessions on one connection, so a monitor that
 *     keeps the agent connection could multiplex concurrent `isola exec`s;
 *     until then a second exec waits for the first (agent_connect_at retries
 *     until its timeout).
 *   - Exit and restart policy: QEMU exits 0 on a power-off, 1 on a guest
 *     kernel panic (on-failure restarts it), by a signal when killed; a
 *     reboot inside the guest resets it in place (QEMU goes on).
 *   - Resources: QEMU goes into the instance's cgroup (a fractional
 *     limits.cpu becomes a CPU quota there); its RSS is about the guest's
 *     RAM (230 MiB for an idle 256 MiB guest here), so a cgroup memory limit
 *     needs headroom above limits.memory.
 *   - QEMU runs as root with its seccomp sandbox; running it as an
 *     unprivileged user (-runas, files owned for it) is left to the manager.
 *   - Network: a tap fd from the networks layer (vm_start_opts.tap_fd /
 *     vm_fds.tap) becomes a virtio-net NIC.
 *   - Migration between stores: start the destination paused with the
 *     migration capability late-block-activate, stream the RAM, copy the
 *     overlay while the source is paused at the end, then `cont`.
 *
 * Every function returns 0 or a negative errno with err_msg() naming the
 * VM, the file or the setting (util/err.h). Every wait has a timeout. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

enum vm_machine { VM_MACHINE_MICROVM, VM_MACHINE_Q35 };
enum vm_accel { VM_ACCEL_AUTO, VM_ACCEL_KVM, VM_ACCEL_TCG };

#define VM_MIN_MEMORY (64ull << 20)
#define VM_MAX_MEMORY (1ull << 40)
#define VM_MAX_VCPUS 64u
#define VM_AGENT_SOCKET "agent.sock"
#define VM_QMP_SOCKET "qmp.sock"

/* "microvm" / "q35" -> enum; -EINVAL naming the machine and the choices. */
int vm_machine_from_name(const char *name, enum vm_machine *ret);
const char *vm_machine_name(enum vm_machine m);
int vm_accel_from_name(const char *name, enum vm_accel *ret);
const char *vm_accel_name(enum vm_accel a);

/* The built-in VM image (scripts/mkvmimage.sh): dir/vmlinux (uncompressed,
 * booted through PVH), dir/initrd.img, dir/base.qcow2. Paths are absolute. */
struct vm_image {
	char *kernel, *initrd, *base;
};
int vm_image_open(const char *dir, struct vm_image *ret);
void vm_image_free(struct vm_image *img);

/* Block throttling of the root disk; 0 = unlimited. */
struct vm_throttle {
	uint64_t bps_read, bps_write, iops_read, iops_write;
};

/* What the VM is. */
struct vm_config {
	const char *name;          /* for messages and QEMU's -name */
	enum vm_machine machine;
	enum vm_accel accel;       /* KVM or TCG (resolve AUTO with vm_accel_choose first) */
	unsigned vcpus;            /* 1 .. VM_MAX_VCPUS */
	uint64_t memory;           /* bytes, VM_MIN_MEMORY .. VM_MAX_MEMORY, a multiple of 1 MiB */
	const char *kernel, *initrd;
	const char *cmdline_extra; /* appended to the kernel command line, or NULL */
	const char *disk;          /* the root disk: a qcow2 file (an overlay on the base) */
	struct vm_throttle throttle;
	const char *mac;           /* "52:54:00:xx:xx:xx" for the NIC; NULL: derived from name */
	bool incoming;             /* wait for a migration stream (-incoming defer) */
	bool paused;               /* start with the CPUs stopped (-S) */
};

/* File descriptor numbers as QEMU will see them (>= 3), or -1. */
struct vm_fds {
	int qmp;     /* a listening unix socket: QMP (mandatory) */
	int agent;   /* a listening unix socket: the agent's virtio-serial port (mandatory) */
	int console; /* a connected stream socket: the serial console (-1: no console) */
	int tap;     /* an open tap device for a virtio-net NIC (-1: no network) */
};

/* Check a configuration: -EINVAL/-ENOENT naming the setting or the file
 * ("VM v1: machine \"pdp11\": unknown (microvm or q35)", "VM v1: memory 1 KiB
 * is below the minimum of 64 MiB", "VM v1: kernel /x: No such file"). The
 * disk's content is checked by vm_disk_check(). */
int vm_config_check(const struct vm_config *c);
/* QEMU's command line: a NULL-terminated argv (argv[0] = the QEMU binary:
 * $ISOLA_QEMU or qemu-system-x86_64 from PATH). Free with vm_argv_free(). */
int vm_qemu_argv(const struct vm_config *c, const struct vm_fds *fds, char ***ret);
void vm_argv_free(char **argv);
/* The kernel command line vm_qemu_argv() uses (malloc'd). */
char *vm_kernel_cmdline(const struct vm_config *c);

/* Accelerator: ISOLA_VM_ACCEL=kvm|tcg forces one. Otherwise TCG when
 * /dev/kvm cannot be opened; else the remembered result of a probe boot of
 * `img` under KVM (state_dir/vm-accel.json, keyed by the QEMU version, the
 * host kernel, the CPU and the image's kernel), or a new probe: a microvm
 * booting the image's initramfs with "isola.probe" must print its marker
 * within timeout_ms (ISOLA_VM_PROBE_TIMEOUT_MS, default 8000), else TCG.
 * *ret_why (may be NULL) explains the choice (malloc'd). */
int vm_accel_choose(const char *state_dir, const struct vm_image *img, int timeout_ms, enum vm_accel *ret,
		    char **ret_why);

/* Disks. */
struct vm_disk_info {
	char format[16];
	uint64_t virtual_size, actual_size;
	bool has_backing, corrupt;
};
/* `qemu-img info --output=json` (with -U: works on a disk a running QEMU
 * holds). */
int vm_disk_info(const char *path, struct vm_disk_info *ret);
/* A usable qcow2 file: qemu-img info (-f qcow2) says not corrupt, its
 * backing file is exactly `backing` (NULL: it has none), and `qemu-img
 * check` finds no corruption (leaked clusters are fine). -EINVAL "disk /x:
 * corrupt qcow2: ..." or naming the wrong backing file otherwise. */
int vm_disk_check(const char *path, const char *backing);
/* A qcow2 overlay at path backed by base (absolute path, qcow2): written to
 * a temporary name and renamed; -EEXIST if path exists. */
int vm_disk_overlay_create(const char *base, const char *path);

/* Sockets in a VM's runtime directory (dirfd): qmp.sock and agent.sock,
 * listening (mode 0600; stale ones replaced). Works with directories whose
 * path is longer than a socket address allows. */
int vm_sockets_create(int dirfd, int *ret_qmp, int *ret_agent);
/* Connect to a socket in dirfd. */
int vm_socket_connect(int dirfd, const char *name, int *ret_fd);

/* In a child about to become QEMU: put each fds_from[i] at fds_to[i] (not
 * close-on-exec), stdin on /dev/null, stdout and stderr on log_fd, close
 * every other fd, exec argv. Returns only on failure (-errno). */
int vm_exec_qemu(char **argv, const int *fds_from, const int *fds_to, int nfds, int log_fd);

/* A running VM. */
struct vm;

struct vm_start_opts {
	int dirfd;        /* runtime directory: qmp.sock, agent.sock, qemu.log */
	int tap_fd;       /* -1: no network */
	bool check_disk;  /* vm_disk_check(disk, backing) first */
	const char *backing; /* the base the disk must be an overlay on (check_disk) */
};
/* Start QEMU as our child (for a monitor, a test driver, a benchmark):
 * check, sockets, console socketpair, fork + vm_exec_qemu. QEMU's stderr
 * goes to qemu.log in dirfd; a QEMU that exits at once is reported with the
 * log's last line. *console_out (NULL: no console) gets our end of the
 * console's socketpair; the caller must keep reading it (QEMU stalls the
 * guest when the console is not read). */
int vm_start(const struct vm_config *c, const struct vm_start_opts *o, int *console_out, struct vm **ret);
/* A VM started by another process (the monitor): by pid, whose start time
 * (field 22 of /proc/PID/stat) must be `starttime` (0: not checked). */
int vm_open(int dirfd, pid_t pid, unsigned long long starttime, enum vm_machine machine, const char *name,
	    struct vm **ret);
/* Close the handle (QMP connection, pidfd); QEMU keeps running. */
void vm_free(struct vm *v);
pid_t vm_pid(const struct vm *v);
/* A pidfd of QEMU: readable once it exited (for a caller's poll loop). */
int vm_pidfd(const struct vm *v);
/* The QMP connection (connected on first use; drop it with vm_qmp_release
 * so that another process can connect: QEMU serves one client at a time). */
struct qmp *vm_qmp(struct vm *v, int timeout_ms);
void vm_qmp_release(struct vm *v);

/* Wait until the guest agent answers (the VM booted to userspace), or QEMU
 * exits (-ECHILD with QEMU's exit in the message), or the timeout. */
int vm_wait_ready(struct vm *v, int timeout_ms);

enum vm_exit_kind { VM_EXIT_POWEROFF, VM_EXIT_CRASH, VM_EXIT_KILLED, VM_EXIT_FAILED };
struct vm_exit {
	enum vm_exit_kind kind; /* when QEMU was not our child: what was asked for
				 * (poweroff by vm_stop, killed by vm_kill); its
				 * parent, the monitor, knows the real one */
	int status;             /* the wait status; -1 when QEMU was not our child */
};
/* A QEMU wait status: exit 0 is a power-off (guest poweroff or quit),
 * exit 1 a guest crash (pvpanic with -action panic=exit-failure) or a QEMU
 * failure, a signal a kill. */
enum vm_exit_kind vm_exit_classify(int status);
const char *vm_exit_kind_name(enum vm_exit_kind k);

/* Wait for QEMU to exit (pidfd); -ETIMEDOUT when it is still running. */
int vm_wait_exit(struct vm *v, int timeout_ms, struct vm_exit *ret);
/* Clean power-off, QMP quit after timeout_ms, SIGKILL 2 s after that. */
int vm_stop(struct vm *v, int timeout_ms, struct vm_exit *ret);
/* SIGKILL through the pidfd, and wait for the exit (5 s). */
int vm_kill(struct vm *v, struct vm_exit *ret);
int vm_pause(struct vm *v);
int vm_resume(struct vm *v);
/* QEMU's run state into buf: "running", "paused", "inmigrate", "postmigrate", ... */
int vm_status(struct vm *v, char *buf, size_t len);
/* Balloon: the guest's memory becomes `bytes` (<= the configured memory). */
int vm_set_memory(struct vm *v, uint64_t bytes);
int vm_set_throttle(struct vm *v, const struct vm_throttle *t);
/* Throttle values as query-block reports them for the root disk. */
int vm_get_throttle(struct vm *v, struct vm_throttle *ret);

struct vm_usage {
	uint64_t disk_bytes;     /* allocated bytes of the root disk (overlay) */
	uint64_t balloon_bytes;  /* memory the guest has (query-balloon), 0 if unknown */
	uint64_t rss_bytes;      /* QEMU's resident memory on the host */
};
int vm_usage(struct vm *v, const char *disk, struct vm_usage *ret);

/* Live migration over a file descriptor (a pipe or a socket). */
struct vm_migration_stats {
	uint64_t total_ms, downtime_ms, setup_ms, transferred_bytes;
};
/* Source: stream the running VM into fd until done (the source is then
 * paused, "postmigrate"; the caller quits it). */
int vm_migrate_send(struct vm *v, int fd, int timeout_ms, struct vm_migration_stats *ret);
/* Destination (started with incoming = true): read the stream from fd. */
int vm_migrate_incoming(struct vm *v, int fd);
/* Destination: wait until the stream is loaded and the VM runs. */
int vm_migrate_wait(struct vm *v, int timeout_ms);
