package builtin

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/huskrt/husk/policies/internal/moduletest"
	"github.com/huskrt/husk/policies/sdk"
	"github.com/huskrt/husk/wasmhost"
)

// FuzzStrings checks husk.h's string decoding (husk_string) and JSON
// escaping (husk_buf_add_json) against the Go SDK's: the body of a JSON
// string, as hostile as the fuzzer makes it, is decoded by audit-log
// (which logs it) and by exec-allowlist (which quotes it in its denial's
// JSON reason), and must read as the Go SDK reads it.
func FuzzStrings(f *testing.F) {
	for _, s := range []string{"plain", `a\"b`, `\\`, `\n\t\u0000`, `\ud83d\ude00`, `\ud800x`, `\udc00`, `\uD83D`, "\xff\xfe", "é\xc3", `\u00e9\u20ac`,
		`\x`, `\u12`, "tab\there", `\/`, "12345678901234567890\\u0041", "\xed\xa0\x80", "\xf4\x90\x80\x80"} {
		f.Add(s)
	}
	audit := moduletest.MustLoad(f, auditLog, "")
	exec := moduletest.MustLoad(f, execAllowlist, `{"commands":["x"]}`)
	f.Fuzz(func(t *testing.T, body string) {
		if len(body) > 256 || strings.ContainsAny(body, "\"") {
			return // one string member; husk.log keeps 1 KiB of a line
		}
		event := `{"version":1,"sandbox":{"id":"` + body + `"},"process":{"args":["` + body + `"]}}`
		if !json.Valid([]byte(event)) {
			return // husk hands modules only valid JSON
		}
		want, ok := sdk.ParseValue([]byte(event)).At("/sandbox/id").Str()
		if !ok {
			t.Fatalf("Go SDK could not read %q", body)
		}

		out, err := audit.Raw("container.create", []byte(event))
		if err != nil || string(out) != `{"allow":true}` {
			t.Fatalf("audit-log on %q: %s, %v", body, out, err)
		}
		line := "audit container.create"
		if want != "" {
			line += " sandbox=" + want
		}
		if logs := audit.Logs(); len(logs) != 1 || logs[0].Msg != wasmhost.EscapeText(line) {
			t.Fatalf("audit-log on %q logged %q, want %q", body, logs, wasmhost.EscapeText(line))
		}

		out, err = exec.Raw("process.exec", []byte(event))
		if err != nil {
			t.Fatalf("exec-allowlist on %q: %v", body, err)
		}
		var d struct {
			Allow  bool   `json:"allow"`
			Reason string `json:"reason"`
		}
		if err := json.Unmarshal(out, &d); err != nil || !utf8.Valid(out) {
			t.Fatalf("exec-allowlist on %q: decision %q: %v", body, out, err)
		}
		if wantReason := `exec of "` + want + `" is not on the allow-list`; want != "x" && (d.Allow || d.Reason != wantReason) {
			t.Fatalf("exec-allowlist on %q: %+v, want reason %q", body, d, wantReason)
		}
	})
}

// FuzzDecide asks every built-in about hostile events at every point: a
// module answers each with a decision husk can parse (or refuses the step),
// and never traps, whatever the event holds.
func FuzzDecide(f *testing.F) {
	for _, s := range []string{
		`{"version":1,"spec":{"process":{"capabilities":{"bounding":["CAP_SYS_ADMIN"]}},"linux":{"resources":{"devices":[{"allow":true}]}}}}`,
		`{"version":1,"mount":{"type":"bind","source":"/srv/../etc","options":["rbind"]},"container":{"image":"x"}}`,
		`{"version":1,"vm":{"vcpus":99999999999999999999,"memory_mib":-1},"readonly":"no"}`,
		`{"version":1,"spec":{"root":{"readonly":1},"linux":{"resources":{"memory":[]}}}}`,
		`{"version":1,"process":{"args":[{"a":1}]},"exec_id":"\u0000","sandbox":{"id":["x"]}}`,
		`[1,2,3]`, `"x"`, `null`, `{}`,
	} {
		f.Add(s)
	}
	policies := []*moduletest.Policy{
		moduletest.MustLoad(f, denyPrivileged, ""),
		moduletest.MustLoad(f, resourceDefaults, `{"memory_limit":1,"pids_limit":2}`),
		moduletest.MustLoad(f, readonlyRootfs, `{"exempt_images":["a"]}`),
		moduletest.MustLoad(f, hostPathAllowlist, `{"paths":["/srv"]}`),
		moduletest.MustLoad(f, auditLog, ""),
		moduletest.MustLoad(f, allowedImages, `{"images":["x"]}`),
		moduletest.MustLoad(f, execAllowlist, `{"commands":["x"]}`),
		moduletest.MustLoad(f, vmSizing, `{"max_vcpus":1,"min_memory_mib":64}`),
	}
	points := []string{"container.create", "container.rootfs", "container.mount", "process.exec", "sandbox.vm", "container.start", "nonsense"}
	f.Fuzz(func(t *testing.T, event string) {
		if !json.Valid([]byte(event)) {
			return // husk hands modules only valid JSON
		}
		for _, p := range policies {
			for _, point := range points {
				out, err := p.Raw(point, []byte(event))
				if err != nil {
					t.Fatalf("%s on %s %q: %v", "policy", point, event, err)
				}
				var d struct {
					Allow  *bool             `json:"allow"`
					Reason string            `json:"reason"`
					Patch  []json.RawMessage `json:"patch"`
				}
				if err := json.Unmarshal(out, &d); err != nil || d.Allow == nil || !utf8.Valid(out) {
					t.Fatalf("on %s %q: decision %q: %v", point, event, out, err)
				}
				p.Logs()
			}
		}
	})
}
