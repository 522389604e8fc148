package devenv

import (
	"fmt"
	"hash/crc32"
	"strings"
	"testing"
)

// TestName returns a name unique to the running test (and suffix) made of
// what both containerd ids and DNS labels accept: lower-case letters,
// digits and single dashes, at most 50 characters (a long name keeps its
// start and a checksum of the whole).
func TestName(tb testing.TB, suffix string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(tb.Name() + "-" + suffix) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	n := strings.TrimRight(b.String(), "-")
	if len(n) > 50 {
		n = fmt.Sprintf("%s-%08x", strings.TrimRight(n[:40], "-"), crc32.ChecksumIEEE([]byte(n)))
	}
	return n
}
