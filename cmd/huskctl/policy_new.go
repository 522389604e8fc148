package main

import (
	"bytes"
	"embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"text/template"

	"github.com/huskrt/husk"
	"github.com/huskrt/husk/version"
)

const policyNewUsage = `usage: huskctl policy new DIR

Writes a ready Go policy project into DIR (new, or empty), named after
DIR's last element: a policy with its config (main.go, config.json), its Go
tests (main_test.go), a suite of events with expected verdicts for
'huskctl policy test --suite' (tests.json), a README, and a go.mod that
builds against a copy of husk's policy SDK in third_party/husk (husk's
module is not on the Go proxy). Then:

  cd DIR && go test ./...
  huskctl policy build . -o NAME.wasm --config config.json
  huskctl policy test --module NAME.wasm --suite tests.json
`

//go:embed template/*.tmpl
var policyTemplate embed.FS

// policyNameRE is what a policy's name (its directory, Go module path and
// hook name) may be: a hook name's characters, starting with a letter.
var policyNameRE = regexp.MustCompile(`^[a-z][a-z0-9._-]{0,62}$`)

// policyNew runs "policy new".
func policyNew(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("policy new", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), policyNewUsage) }
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return errors.New("want one directory")
	}
	dir := filepath.Clean(pos[0])
	name := filepath.Base(dir)
	if !policyNameRE.MatchString(name) {
		return fmt.Errorf("policy name %q (the directory's last element): want lower-case letters, digits, '.', '_' or '-', starting with a letter", name)
	}
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return fmt.Errorf("%s is not empty: policy new writes a new project", dir)
	} else if err != nil && !errors.Is(err, errNotExist) {
		return err
	}
	if err := writePolicyProject(dir, name); err != nil {
		_ = os.RemoveAll(dir) // leave nothing half-written
		return err
	}
	_, err = fmt.Fprintf(stdout, "wrote %s: a policy project (see %s)\n", dir, filepath.Join(dir, "README.md"))
	return err
}

// errNotExist is fs.ErrNotExist (policyNew names its flag set fs).
var errNotExist = fs.ErrNotExist

// writePolicyProject writes the project's files into dir.
func writePolicyProject(dir, name string) error {
	data := struct{ Name, Version, SDKPackages string }{
		Name:        name,
		Version:     "huskctl " + version.Version + ", revision " + version.Revision,
		SDKPackages: strings.Join(husk.PolicySDKPackages, " and "),
	}
	files := map[string][]byte{
		"go.mod": fmt.Appendf(nil, "module %s\n\ngo 1.26\n\nrequire github.com/huskrt/husk v0.0.0\n\n"+
			"// husk's module is not on the Go proxy: build against the copy of its\n"+
			"// policy SDK that huskctl policy new wrote (README.md).\n"+
			"replace github.com/huskrt/husk => ./third_party/husk\n", name),
		"third_party/husk/go.mod": fmt.Appendf(nil, "// A copy of husk's policy SDK (%s), written by %s.\nmodule github.com/huskrt/husk\n\ngo 1.26\n",
			data.SDKPackages, data.Version),
	}
	ents, err := fs.Glob(policyTemplate, "template/*.tmpl")
	if err != nil {
		return err
	}
	for _, e := range ents {
		src, err := policyTemplate.ReadFile(e)
		if err != nil {
			return err
		}
		t, err := template.New(e).Parse(string(src))
		if err != nil {
			return err
		}
		var b bytes.Buffer
		if err := t.Execute(&b, data); err != nil {
			return err
		}
		files[strings.TrimSuffix(path.Base(e), ".tmpl")] = b.Bytes()
	}
	for _, pkg := range husk.PolicySDKPackages {
		srcs, err := fs.Glob(husk.PolicySDK, pkg+"/*.go")
		if err != nil {
			return err
		}
		for _, s := range srcs {
			if strings.HasSuffix(s, "_test.go") {
				continue
			}
			b, err := husk.PolicySDK.ReadFile(s)
			if err != nil {
				return err
			}
			files["third_party/husk/"+s] = b
		}
	}
	for rel, b := range files {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}
