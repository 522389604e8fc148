package builtin

import (
	"testing"

	"github.com/huskrt/husk/policies/internal/moduletest"
)

const resourceDefaults = "../resource-defaults"

func TestResourceDefaults(t *testing.T) {
	p := moduletest.MustLoad(t, resourceDefaults, `{"memory_limit":268435456,"pids_limit":512}`)
	for spec, want := range map[string]string{
		`{"process":{}}`: `{"allow":true,"patch":[{"op":"add","path":"/spec/linux","value":{"resources":{"memory":{"limit":268435456},"pids":{"limit":512}}}}]}`,
		`{"linux":{}}`:   `{"allow":true,"patch":[{"op":"add","path":"/spec/linux/resources","value":{"memory":{"limit":268435456},"pids":{"limit":512}}}]}`,
		`{"linux":null}`: `{"allow":true,"patch":[{"op":"add","path":"/spec/linux","value":{"resources":{"memory":{"limit":268435456},"pids":{"limit":512}}}}]}`,
		`{"linux":{"resources":{"memory":{"swap":1},"cpu":{"shares":2}}}}`: `{"allow":true,"patch":[{"op":"add","path":"/spec/linux/resources/memory/limit","value":268435456},` +
			`{"op":"add","path":"/spec/linux/resources/pids","value":{"limit":512}}]}`,
		`{"linux":{"resources":{"memory":{"limit":1},"pids":{"limit":2}}}}`: `{"allow":true}`,
		`{"linux":{"resources":{"memory":{"limit":1}}}}`:                    `{"allow":true,"patch":[{"op":"add","path":"/spec/linux/resources/pids","value":{"limit":512}}]}`,
		`null`: `{"allow":true}`,
	} {
		got, err := p.Raw("container.create", []byte(`{"version":1,"spec":`+spec+`}`))
		if err != nil || string(got) != want {
			t.Errorf("spec %s:\n got %s (%v)\nwant %s", spec, got, err, want)
		}
	}
	if got, err := p.Raw("container.start", []byte(`{"version":1,"spec":{}}`)); err != nil || string(got) != `{"allow":true}` {
		t.Errorf("another point: %s, %v", got, err)
	}

	only := moduletest.MustLoad(t, resourceDefaults, `{"pids_limit":9223372036854775807}`)
	if got, err := only.Raw("container.create", []byte(`{"version":1,"spec":{"linux":{"resources":{}}}}`)); err != nil ||
		string(got) != `{"allow":true,"patch":[{"op":"add","path":"/spec/linux/resources/pids","value":{"limit":9223372036854775807}}]}` {
		t.Errorf("pids only: %s, %v", got, err)
	}
	for cfg, msg := range map[string]string{
		`{}`:                                 "set memory_limit, pids_limit or both",
		`{"memory_limit":-1}`:                "memory_limit: want a positive whole number",
		`{"memory_limit":"1G"}`:              "memory_limit: want a positive whole number",
		`{"memory_limit":1.5}`:               "memory_limit: want a positive whole number",
		`{"memory_limit":1e9}`:               "memory_limit: want a positive whole number",
		`{"pids_limit":9223372036854775808}`: "pids_limit: want a positive whole number",
		`{"cpu":1}`:                          "unknown key cpu (want memory_limit, pids_limit)",
	} {
		if _, err := moduletest.Load(t, resourceDefaults, cfg); err == nil || !contains(err, msg) {
			t.Errorf("Load with %s = %v, want an error with %q", cfg, err, msg)
		}
	}
}
