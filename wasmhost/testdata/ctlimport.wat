;; ctlimport.wat: imports a function whose names carry a newline, a
;; terminal escape sequence and a bidirectional override, which error
;; messages must not print raw.
(module
  (import "env\1b[2J" "now\0alevel=ERROR msg=forged\e2\80\ae" (func))
  (memory (export "memory") 1)
  (func (export "husk_hook_abi_v1"))
  (func (export "husk_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "husk_decide") (param i32 i32 i32 i32) (result i64) (i64.const 0))
)
