package wasm

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
)

func TestPreopensAnnotation(t *testing.T) {
	if v, ok, err := preopensOf(nil); v != "" || ok || err != nil {
		t.Fatalf("no annotation: %q %v %v", v, ok, err)
	}
	for _, v := range []string{"", "/", "/suite/fs-tests.dir:/,/tmp:tmp"} {
		got, ok, err := preopensOf(map[string]string{AnnotationPreopens: v})
		if got != v || !ok || err != nil {
			t.Errorf("%q: %q %v %v", v, got, ok, err)
		}
	}
	_, _, err := preopensOf(map[string]string{AnnotationPreopens: "/a/../../etc"})
	if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), AnnotationPreopens) || !strings.Contains(err.Error(), "not a clean path") {
		t.Fatalf("bad annotation: %v", err)
	}
}

func TestRunnerArgsPreopens(t *testing.T) {
	mod := &module{path: "/m.wasm", args: []string{"m.wasm", "x"}}
	p := &program{privDir: privDirDev, pages: 16}
	if args := p.runnerArgs(mod, []string{"HOME=/root"}); slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "-preopens") }) {
		t.Fatalf("no annotation: %v has -preopens", args)
	}
	for _, v := range []string{"", "/d:/"} {
		p.preopens, p.preopensSet = v, true
		args := p.runnerArgs(mod, []string{"HOME=/root"})
		i, j := slices.Index(args, "-preopens="+v), slices.Index(args, "--")
		if i < 0 || j < i || !slices.Equal(args[j+1:], mod.args) {
			t.Fatalf("annotation %q: %v", v, args)
		}
	}
}

func TestRunnerArgsNoHome(t *testing.T) {
	mod := &module{path: "/m.wasm", args: []string{"m.wasm"}}
	p := &program{privDir: privDirDev, pages: 16}
	for _, tt := range []struct {
		env    []string
		nohome bool
	}{
		{nil, true},
		{[]string{"PATH=/bin"}, true},
		{[]string{"HOME="}, true},
		{[]string{"HOME=/home/u"}, false},
	} {
		args := p.runnerArgs(mod, tt.env)
		if got := slices.Contains(args[:slices.Index(args, "--")], "-nohome"); got != tt.nohome {
			t.Errorf("env %v: -nohome %v, want %v (%v)", tt.env, got, tt.nohome, args)
		}
	}
}
