package boottimer

import (
	"testing"
	"time"
)

func TestMarks(t *testing.T) {
	var got []time.Duration
	tm := &Timer{OnMark: func(d time.Duration) { got = append(got, d) }}
	tm.Start(time.Now().Add(-time.Second))
	for _, w := range []struct {
		off  uint64
		data []byte
	}{
		{0, []byte{Magic}},
		{0, []byte{Magic - 1}},      // other values are ignored
		{1, []byte{Magic}},          // so are other offsets
		{0, []byte{Magic, 0, 0, 0}}, // and wider writes
		{0, []byte{Magic}},
	} {
		if err := tm.Write(w.off, w.data); err != nil {
			t.Fatal(err)
		}
	}
	marks := tm.Marks()
	if len(marks) != 2 || len(got) != 2 || marks[0] < time.Second || marks[1] < marks[0] {
		t.Errorf("marks %v, callbacks %v", marks, got)
	}
	for range 2 * maxMarks {
		tm.Write(0, []byte{Magic})
	}
	if n := len(tm.Marks()); n != maxMarks {
		t.Errorf("%d marks kept, want at most %d", n, maxMarks)
	}
}
