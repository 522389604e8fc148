package main

import (
	"testing"

	"github.com/huskrt/husk/policies/sdk"
)

func TestDecide(t *testing.T) {
	if err := sdk.Configure([]byte(`{"max_vcpus":4,"max_memory_mib":4096,"min_memory_mib":256}`)); err != nil {
		t.Fatal(err)
	}
	for vm, want := range map[string]string{
		`{"vcpus":2,"memory_mib":1024}`:  `{"allow":true}`,
		`{"vcpus":16,"memory_mib":1024}`: `{"allow":true,"patch":[{"op":"replace","path":"/vm/vcpus","value":4}]}`,
		`{"vcpus":8,"memory_mib":65536}`: `{"allow":true,"patch":[{"op":"replace","path":"/vm/vcpus","value":4},{"op":"replace","path":"/vm/memory_mib","value":4096}]}`,
		`{"vcpus":1,"memory_mib":64}`:    `{"allow":true,"patch":[{"op":"replace","path":"/vm/memory_mib","value":256}]}`,
	} {
		got := decide(sdk.NewEvent("sandbox.vm", []byte(`{"version":1,"vm":`+vm+`}`))).JSON()
		if string(got) != want {
			t.Errorf("vm %s:\n got %s\nwant %s", vm, got, want)
		}
	}
	maxVCPUs, maxMemory, minMemory = 0, 0, 0
	for _, cfg := range []string{`{}`, `{"max_vcpus":0}`, `{"min_memory_mib":512,"max_memory_mib":256}`, `{"vcpus":1}`} {
		maxVCPUs, maxMemory, minMemory = 0, 0, 0
		if err := sdk.Configure([]byte(cfg)); err == nil {
			t.Errorf("Configure(%s) accepted", cfg)
		}
	}
}
