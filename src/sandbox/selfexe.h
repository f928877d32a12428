/* Protection of the runtime binary against being overwritten from inside a
 * container (CVE-2019-5736): the container init is exec'd from a read-only
 * handle on this binary, never from the writable file on disk. */
#pragma once
/* An fd (O_CLOEXEC) to execveat() for the container init: a detached,
 * read-only bind mount of /proc/self/exe, or a sealed memfd copy where
 * mounts are not permitted (rootless). */
int selfexe_protected_fd(void);
/* The binary to run as the init instead of this one (the manager `isola`
 * hands the static isola-oci, which starts faster than itself); NULL:
 * /proc/self/exe. The string must outlive every container start. */
void selfexe_set_path(const char *path);
