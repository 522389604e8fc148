package power

import (
	"errors"
	"testing"
)

func TestGuestRequests(t *testing.T) {
	sleep := &SleepControl{S5: 5}
	reset := &ResetRegister{Value: 1}
	tests := []struct {
		name   string
		dev    interface{ Write(uint64, []byte) error }
		offset uint64
		data   []byte
		want   error
	}{
		{"S5 with SLP_EN: Linux's acpi_power_off", sleep, 0, []byte{5<<2 | 1<<5}, ErrPowerOff},
		{"clearing WAK_STS first", sleep, 0, []byte{0x80}, nil},
		{"S5 without SLP_EN", sleep, 0, []byte{5 << 2}, nil},
		{"S3 with SLP_EN", sleep, 0, []byte{3<<2 | 1<<5}, nil},
		{"16-bit write", sleep, 0, []byte{5<<2 | 1<<5, 0}, nil},
		{"reset value", reset, 0, []byte{1}, ErrReboot},
		{"other value to reset", reset, 0, []byte{2}, nil},
		{"i8042 reset command", I8042{}, 4, []byte{0xfe}, ErrReboot},
		{"i8042 other command", I8042{}, 4, []byte{0xad}, nil},
		{"0xfe to the i8042 data port", I8042{}, 0, []byte{0xfe}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.dev.Write(tt.offset, tt.data); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("Write = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestReadsSayIdle(t *testing.T) {
	for _, d := range []interface{ Read(uint64, []byte) }{&SleepControl{}, &ResetRegister{}, I8042{}} {
		b := []byte{0xff}
		d.Read(0, b)
		if b[0] != 0 {
			t.Errorf("%T read %#x, want 0", d, b[0])
		}
		b[0] = 0xff
		d.Read(4, b)
		if b[0]&2 != 0 {
			t.Errorf("%T: input buffer reported full", d)
		}
	}
}
