package runtime

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
)

func TestParseSpec(t *testing.T) {
	tests := []struct {
		name, json, msg string
	}{
		{"valid", `{"ociVersion":"1.2.0","process":{"args":["sh"],"cwd":"/"},"root":{"path":"rootfs"}}`, ""},
		{"not json", `{"ociVersion":`, "unexpected end of JSON input"},
		{"wrong type", `{"ociVersion":"1.2.0","process":{"args":"sh"}}`, "cannot unmarshal string"},
		{"no version", `{"process":{"args":["sh"]},"root":{"path":"r"}}`, "ociVersion is missing"},
		{"no process", `{"ociVersion":"1.2.0","root":{"path":"r"}}`, "process is missing"},
		{"empty args", `{"ociVersion":"1.2.0","process":{"args":[]},"root":{"path":"r"}}`, "process.args is empty"},
		{"no root", `{"ociVersion":"1.2.0","process":{"args":["sh"]}}`, "root.path is missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseSpec("b/config.json", []byte(tt.json))
			if tt.msg == "" {
				if err != nil || s == nil {
					t.Fatalf("ParseSpec = %v, %v", s, err)
				}
				return
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tt.msg) || !strings.Contains(err.Error(), "b/config.json") {
				t.Fatalf("err = %v, want invalid argument naming b/config.json and %q", err, tt.msg)
			}
		})
	}
}

func TestLoadSpecMissing(t *testing.T) {
	_, err := LoadSpec(t.TempDir())
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("err = %v, want not found", err)
	}
}

func TestLoadSpecTooLarge(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.json"), make([]byte, maxSpecSize+1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSpec(dir); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("err = %v, want invalid argument", err)
	}
}

func TestLoadAnnotations(t *testing.T) {
	dir := t.TempDir()
	spec := `{"ociVersion":"1.2.0","process":{"args":["sh"]},"root":{"path":"rootfs"},` +
		`"annotations":{"io.kubernetes.cri.sandbox-id":"pod1","io.kubernetes.cri.container-type":"container"}}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(spec), 0o600); err != nil {
		t.Fatal(err)
	}
	ann, err := LoadAnnotations(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := PodOf("c1", ann); got.SandboxID != "pod1" || got.IsSandbox {
		t.Fatalf("PodOf(annotations) = %+v, want container of pod1", got)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"annotations":[1]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadAnnotations(dir); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("malformed annotations: err = %v, want invalid argument", err)
	}
	if _, err := LoadAnnotations(t.TempDir()); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("no config.json: err = %v, want not found", err)
	}
}
