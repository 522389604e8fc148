;; sleep.wat: sleeps for an hour in WASI poll_oneoff (one clock
;; subscription), then allows. Under the clock grant the sleep is real; it
;; must end at the call's deadline.
(module
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "{\"allow\":true}")
  (func (export "husk_hook_abi_v1"))
  (func (export "husk_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "husk_decide") (param i32 i32 i32 i32) (result i64)
    ;; The subscription at 0x100: userdata 0, tag 0 (clock), clock id 1
    ;; (monotonic), timeout 3600 s, precision 0, flags 0 (relative).
    (i32.store (i32.const 0x110) (i32.const 1))
    (i64.store (i32.const 0x118) (i64.const 3600000000000))
    (drop (call $poll (i32.const 0x100) (i32.const 0x200) (i32.const 1) (i32.const 0x300)))
    (i64.or (i64.shl (i64.const 16) (i64.const 32)) (i64.const 14)))
)
