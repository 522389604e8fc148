package vmm

// Tiny "kernels" for the VMM tests: 64-bit code in an ELF vmlinux without
// a PVH note, so package boot enters it through the 64-bit boot protocol.
// TestGuestEncodings reassembles the asm beside each one with GNU as.

type guest struct {
	name string
	asm  string
	code []byte
}

// powerOffGuest prints "hi" on COM1, marks the boot timer and powers off
// the way Linux's acpi_power_off does: SLP_TYP 5 with SLP_EN to the sleep
// control register.
var powerOffGuest = guest{
	name: "poweroff",
	asm: `	mov dx, 0x3f8
	mov al, 0x68
	out dx, al
	mov al, 0x69
	out dx, al
	mov edi, 0xc0000000
	mov byte ptr [rdi], 123
	mov dx, 0x600
	mov al, 0x34
	out dx, al
1:	hlt
	jmp 1b
`,
	code: []byte{
		0x66, 0xba, 0xf8, 0x03, // 00: mov dx,0x3f8
		0xb0, 0x68, // 04: mov al,'h'
		0xee,       // 06: out dx,al
		0xb0, 0x69, // 07: mov al,'i'
		0xee,                         // 09: out dx,al
		0xbf, 0x00, 0x00, 0x00, 0xc0, // 0a: mov edi,0xc0000000
		0xc6, 0x07, 0x7b, // 0f: mov byte ptr [rdi],123
		0x66, 0xba, 0x00, 0x06, // 12: mov dx,0x600
		0xb0, 0x34, // 16: mov al,0x34
		0xee,       // 18: out dx,al
		0xf4,       // 19: hlt
		0xeb, 0xfd, // 1a: jmp 19
	},
}

// i8042Guest reboots through the keyboard controller (Linux's reboot=k).
var i8042Guest = guest{
	name: "i8042",
	asm: `	mov al, 0xfe
	out 0x64, al
1:	hlt
	jmp 1b
`,
	code: []byte{
		0xb0, 0xfe, // 00: mov al,0xfe
		0xe6, 0x64, // 02: out 0x64,al
		0xf4,       // 04: hlt
		0xeb, 0xfd, // 05: jmp 04
	},
}

// acpiResetGuest reboots through the FADT's reset register.
var acpiResetGuest = guest{
	name: "acpireset",
	asm: `	mov dx, 0x601
	mov al, 1
	out dx, al
1:	hlt
	jmp 1b
`,
	code: []byte{
		0x66, 0xba, 0x01, 0x06, // 00: mov dx,0x601
		0xb0, 0x01, // 04: mov al,1
		0xee,       // 06: out dx,al
		0xf4,       // 07: hlt
		0xeb, 0xfd, // 08: jmp 07
	},
}

// spinGuest never stops by itself.
var spinGuest = guest{
	name: "spin",
	asm: `1:	jmp 1b
`,
	code: []byte{0xeb, 0xfe},
}
