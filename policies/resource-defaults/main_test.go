package main

import (
	"testing"

	"github.com/huskrt/husk/policies/sdk"
)

func TestDecide(t *testing.T) {
	if err := sdk.Configure([]byte(`{"memory_limit":268435456,"pids_limit":512}`)); err != nil {
		t.Fatal(err)
	}
	for spec, want := range map[string]string{
		`{"process":{}}`: `{"allow":true,"patch":[{"op":"add","path":"/spec/linux","value":{"resources":{"memory":{"limit":268435456},"pids":{"limit":512}}}}]}`,
		`{"linux":{}}`:   `{"allow":true,"patch":[{"op":"add","path":"/spec/linux/resources","value":{"memory":{"limit":268435456},"pids":{"limit":512}}}]}`,
		`{"linux":{"resources":{"memory":{"swap":1},"cpu":{"shares":2}}}}`: `{"allow":true,"patch":[{"op":"add","path":"/spec/linux/resources/memory/limit","value":268435456},` +
			`{"op":"add","path":"/spec/linux/resources/pids","value":{"limit":512}}]}`,
		`{"linux":{"resources":{"memory":{"limit":1},"pids":{"limit":2}}}}`: `{"allow":true}`,
		`{"linux":{"resources":{"memory":{"limit":1}}}}`:                    `{"allow":true,"patch":[{"op":"add","path":"/spec/linux/resources/pids","value":{"limit":512}}]}`,
	} {
		got := decide(sdk.NewEvent("container.create", []byte(`{"version":1,"spec":`+spec+`}`))).JSON()
		if string(got) != want {
			t.Errorf("spec %s:\n got %s\nwant %s", spec, got, want)
		}
	}
	for _, cfg := range []string{`{}`, `{"memory_limit":-1}`, `{"memory_limit":"1G"}`, `{"cpu":1}`} {
		memoryLimit, pidsLimit = 0, 0
		if err := sdk.Configure([]byte(cfg)); err == nil {
			t.Errorf("Configure(%s) accepted", cfg)
		}
	}
}
