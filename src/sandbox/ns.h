/* Namespaces (see ns.c). */
#pragma once
#include "spec/spec.h"
#include <stdbool.h>

/* Open every linux.namespaces path into fds[type] (-1: none), checking that
 * each is a namespace of its type. */
int ns_open_paths(const oci_spec *s, int fds[NS__MAX]);
/* setns() into every namespace in ns_fds (-1: none), the user namespace
 * first; the mount namespace too unless skip_mnt. */
int ns_join(const oci_spec *s, const int ns_fds[NS__MAX], bool skip_mnt);
/* After the namespaces are made: root of a user namespace, a new cgroup
 * namespace, a new time namespace with its offsets. */
int ns_create_late(const oci_spec *s);
