// Package guestimage builds the guest image a VirtContainer boots: Debian's
// stock cloud kernel, unchanged, and an initramfs whose /init is the guest
// agent, husk-agent, with the kernel modules the agent loads.
//
// The input is an unpacked Debian kernel package (Fetch caches one; so does
// hack/nested-assets.sh, in the same layout):
//
//	<cache>/<package>_<version>/boot/vmlinuz-<release>
//	<cache>/<package>_<version>/lib/modules/<release>/{kernel/...,modules.builtin}
//
// Debian's package ships no modules.dep (its postinst runs depmod on the
// host, and nothing is installed here), so dependencies are read from each
// module's .modinfo section, which is what depmod reads too.
//
// # The image (the contract with husk-agent)
//
//	/init                        the agent, mode 0755
//	/lib/modules/husk/<name>.ko  each module to load, uncompressed; <name> is
//	                             the module's own name (underscores: virtio_rng)
//	/lib/modules/husk/load-order one file name per line (virtio_ring.ko),
//	                             dependencies before what needs them
//	/proc /sys /dev /run /tmp /mnt /etc   empty directories
//	/dev/console                 character device 5:1, so /init has stdio
//
// The agent loads the files of load-order, in order, with finit_module(2),
// and nothing else: modules built into the kernel are absent from the list,
// and soft dependencies are not followed (of the agent's modules only
// libcrc32c has one, "pre: crc32c", whose generic implementation is built
// into Debian's cloud kernel).
//
// The initramfs is an uncompressed cpio archive: the kernel unpacks it
// fastest that way, since no decompressor runs before /init; the price is
// a larger file on the host, read from a local disk.
//
// Build writes vmlinuz, initrd.img and manifest.json (what went in, with
// sha256 sums) into a directory; Load reads the manifest back and checks
// the sums.
package guestimage
