package runner

import (
	"reflect"

	"github.com/tetratelabs/wazero/api"
)

// releaseStdio unmarks stdio descriptor fd (0, 1 or 2) of mod as
// preopened in wazero's descriptor table, so that wazero's fd_renumber
// moves it (it refuses to move anything so marked: stdio and preopened
// directories). restore marks it again, for a renumber that failed after
// all. ok is false when fd is not a preopened stdio stream or the table
// cannot be reached.
//
// wazero offers no API for this: the table is internal. The runner reaches
// it by reflection, through exported names only, which the wazero version
// in go.mod has (a host function's module is its *wasm.ModuleInstance,
// whose Sys is the *sys.Context; its FS() is the *sys.FSContext, whose
// LookupFile(int32) gives the table's *sys.FileEntry, whose IsPreopen is
// the mark). A wazero that renames any of them makes ok false (the
// renumber stays refused, ENOTSUP, as with wazero alone), and
// TestWASIFixes' renumber_from_stdout fails. Unmarking is all it changes:
// wazero treats an unmarked stdio entry moved to a higher number like any
// file it opened (the mark only makes it refuse the move, keep stdio's
// non-blocking mode and answer fd_prestat_get, which a stream fails
// either way).
func releaseStdio(mod api.Module, fd uint32) (restore func(), ok bool) {
	if fd > 2 {
		return nil, false
	}
	defer func() {
		if recover() != nil { // a wazero whose types differ
			restore, ok = nil, false
		}
	}()
	m := reflect.ValueOf(mod)
	if m.Kind() != reflect.Pointer || m.IsNil() || m.Elem().Kind() != reflect.Struct {
		return nil, false
	}
	sysCtx := m.Elem().FieldByName("Sys")
	if !sysCtx.IsValid() || sysCtx.Kind() != reflect.Pointer || sysCtx.IsNil() {
		return nil, false
	}
	fsFn := sysCtx.MethodByName("FS")
	if !fsFn.IsValid() || fsFn.Type().NumIn() != 0 || fsFn.Type().NumOut() != 1 {
		return nil, false
	}
	fsc := fsFn.Call(nil)[0]
	if fsc.Kind() != reflect.Pointer || fsc.IsNil() {
		return nil, false
	}
	lookup := fsc.MethodByName("LookupFile")
	if !lookup.IsValid() || lookup.Type().NumIn() != 1 || lookup.Type().In(0).Kind() != reflect.Int32 ||
		lookup.Type().NumOut() != 2 || lookup.Type().Out(1).Kind() != reflect.Bool {
		return nil, false
	}
	out := lookup.Call([]reflect.Value{reflect.ValueOf(int32(fd))})
	entry, found := out[0], out[1].Bool()
	if !found || entry.Kind() != reflect.Pointer || entry.IsNil() || entry.Elem().Kind() != reflect.Struct {
		return nil, false
	}
	// Stdio's entries are named so; nothing else preopened is put at 0..2.
	if name := entry.Elem().FieldByName("Name"); !name.IsValid() || name.Kind() != reflect.String ||
		name.String() != [...]string{"stdin", "stdout", "stderr"}[fd] {
		return nil, false
	}
	mark := entry.Elem().FieldByName("IsPreopen")
	if !mark.IsValid() || mark.Kind() != reflect.Bool || !mark.CanSet() || !mark.Bool() {
		return nil, false
	}
	mark.SetBool(false)
	return func() { mark.SetBool(true) }, true
}
