package main

/*
#define _GNU_SOURCE
#include <pthread.h>

// The threads of the VMM process (the Go runtime's, the vCPUs') get
// 256 KiB stacks instead of glibc's 8 MiB default (RLIMIT_STACK): they run
// Go's scheduler and runtime on them, and libseccomp once, never deep.
// The size is what matters, not the room: where transparent huge pages
// are always on (Debian's kernels), a first touch inside a 2 MiB-aligned
// range of an 8 MiB stack makes the kernel back it with a whole 2 MiB
// page, and the VMM beside its guest held 2 MiB more for each thread it
// happened to; a mapping smaller than 2 MiB never gets one. It runs before
// the Go runtime starts its first thread.
__attribute__((constructor)) static void husk_vmm_thread_stacks(void) {
	pthread_attr_t a;
	if (pthread_attr_init(&a) != 0) {
		return;
	}
	if (pthread_attr_setstacksize(&a, 256 << 10) == 0) {
		pthread_setattr_default_np(&a);
	}
	pthread_attr_destroy(&a);
}
*/
import "C"

// threadStackKiB is the stack size stacks.go gives each thread.
const threadStackKiB = 256
