package wasmhost

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash/crc32"
	"os"
	"path/filepath"
)

// prepareVersion names what prepareModule makes of a module (the code of
// tables.go, sizes.go, code.go and stack.go, and MaxStackBytes): it is in
// the key of every prepared module a Host keeps under its CacheDir, so
// that a husk whose preparation differs never takes another's. Bump it
// with any change to that code; TestPrepareVersion fails until then.
const prepareVersion = "husk-prepared-v1"

// preparedDir is the directory under CacheDir of prepared modules.
const preparedDir = "husk-prepared"

// prepareModule bounds wasm's definitions and tables (boundModule) and
// adds the call-stack counter (instrumentStack): what Load hands wazero.
func prepareModule(wasm []byte) ([]byte, error) {
	wasm, err := boundModule(wasm)
	if err != nil {
		return nil, err
	}
	return instrumentStack(wasm)
}

// prepare returns prepareModule(wasm), from h's CacheDir when a process
// prepared the same bytes before: preparing a 2 MB Go module is about a
// sixth of its load from wazero's cache (#14 item 1), its sha256 and a
// file read much less. The file is trusted as wazero trusts its own
// compiled code beside it (the directory is root's, 0700), and checked
// only for a torn or cut write: it ends with the CRC-32C of what precedes
// it. A module that fails to prepare is not kept (its error is made
// again). Any failure to read or write the cache falls back to preparing.
func (h *Host) prepare(wasm []byte) ([]byte, error) {
	if h.cfg.CacheDir == "" {
		return prepareModule(wasm)
	}
	d := sha256.New()
	d.Write([]byte(prepareVersion))
	d.Write([]byte{0})
	d.Write(wasm)
	path := filepath.Join(h.cfg.CacheDir, preparedDir, hex.EncodeToString(d.Sum(nil)))
	if b, err := os.ReadFile(path); err == nil && len(b) >= 4 {
		body := b[:len(b)-4]
		if crc32.Checksum(body, castagnoli) == binary.LittleEndian.Uint32(b[len(b)-4:]) {
			return body, nil
		}
	}
	out, err := prepareModule(wasm)
	if err != nil {
		return nil, err
	}
	storePrepared(path, out)
	return out, nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// storePrepared writes out and its CRC to path, atomically (a reader sees
// the whole file or none); best effort.
func storePrepared(path string, out []byte) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return
	}
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return
	}
	var sum [4]byte
	binary.LittleEndian.PutUint32(sum[:], crc32.Checksum(out, castagnoli))
	_, err = f.Write(append(out[:len(out):len(out)], sum[:]...))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		_ = os.Remove(f.Name())
	}
}
