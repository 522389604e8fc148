;; slow.wat: a hook that takes its whole deadline. husk_decide logs the
;; point name (so a test knows the call has begun), then loops until the
;; host stops it; with on_error = "allow" the step then goes on.
(module
  (import "husk" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)

  (func (export "husk_hook_abi_v1"))
  (func (export "husk_alloc") (param $n i32) (result i32) (i32.const 1024))
  (func (export "husk_decide") (param $point i32) (param $pointlen i32) (param i32 i32) (result i64)
    (call $log (i32.const 1) (local.get $point) (local.get $pointlen))
    (loop $forever (br $forever))
    unreachable)
)
