package builtin

import (
	"testing"

	"github.com/huskrt/husk/policies/internal/moduletest"
)

const vmSizing = "../vm-sizing"

func TestVMSizing(t *testing.T) {
	p := moduletest.MustLoad(t, vmSizing, `{"max_vcpus":4,"max_memory_mib":4096,"min_memory_mib":256}`)
	for vm, want := range map[string]string{
		`{"vcpus":2,"memory_mib":1024}`:   `{"allow":true}`,
		`{"vcpus":16,"memory_mib":1024}`:  `{"allow":true,"patch":[{"op":"replace","path":"/vm/vcpus","value":4}]}`,
		`{"vcpus":8,"memory_mib":65536}`:  `{"allow":true,"patch":[{"op":"replace","path":"/vm/vcpus","value":4},{"op":"replace","path":"/vm/memory_mib","value":4096}]}`,
		`{"vcpus":1,"memory_mib":64}`:     `{"allow":true,"patch":[{"op":"replace","path":"/vm/memory_mib","value":256}]}`,
		`{"vcpus":"16","memory_mib":1.5}`: `{"allow":true}`,
	} {
		got, err := p.Raw("sandbox.vm", []byte(`{"version":1,"vm":`+vm+`}`))
		if err != nil || string(got) != want {
			t.Errorf("vm %s:\n got %s (%v)\nwant %s", vm, got, err, want)
		}
	}
	if got, err := p.Raw("sandbox.create", []byte(`{"version":1,"vm":{"vcpus":16}}`)); err != nil || string(got) != `{"allow":true}` {
		t.Errorf("another point: %s, %v", got, err)
	}
	for cfg, msg := range map[string]string{
		`{}`:              "set max_vcpus, max_memory_mib or min_memory_mib",
		`{"max_vcpus":0}`: "max_vcpus: want a positive whole number",
		`{"min_memory_mib":512,"max_memory_mib":256}`: "min_memory_mib is above max_memory_mib",
		`{"vcpus":1}`: "unknown key vcpus (want max_vcpus, max_memory_mib, min_memory_mib)",
	} {
		if _, err := moduletest.Load(t, vmSizing, cfg); !contains(err, msg) {
			t.Errorf("Load with %s = %v, want an error with %q", cfg, err, msg)
		}
	}
}
