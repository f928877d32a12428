/* vmctl: the VM layer's test driver (not part of isola). Shared bits of its
 * command side (vmctl.c) and its monitor (vmctl-monitor.c). */
#pragma once
#include "vm/vm.h"

/* The QEMU parent: start the VM, report "OK" or "E<message>" on report_fd,
 * relay the console (console.log, console.sock), record the exit in
 * exit.json, remove the sockets. Never returns. */
void vmctl_monitor(int dirfd, const struct vm_config *c, const struct vm_start_opts *o, int report_fd)
	__attribute__((noreturn));
