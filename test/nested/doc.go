// Package nested is the nested-KVM harness: it proves husk's VMM boots a
// stock Linux kernel on a machine whose own /dev/kvm cannot run one.
//
// QEMU, in TCG with an SVM-capable CPU (-cpu max,+svm), boots Debian's
// cloud kernel with an outer initrd built at test time. The outer init
// loads the kernel's own kvm and kvm-amd modules, which gives it a real
// /dev/kvm, and runs the static husk VMM (cmd/husk-vmm-test). That boots
// the same kernel with an inner initrd whose init marks the boot timer,
// reads a virtio-blk disk and powers off. The outer init checks what the
// inner guest printed, prints one verdict line and powers QEMU off; the
// test reads the verdict from QEMU's serial console.
//
// Nothing prebuilt is committed: hack/nested-assets.sh (make
// nested-assets) caches the kernel package under .tools/kernel, busybox
// comes from Debian's busybox-static, and the initrds are cpio archives
// this package writes with internal/cpio.
//
// The containerd run (containerd_initrd.go) puts a private containerd and
// husk's static shim in the outer guest and drives them with ctr, or, with
// the CRI plugin turned on (containerd_cri.go), with crictl and Debian's
// CNI bridge plugin: TestNestedContainerd, TestNestedPods.
package nested
