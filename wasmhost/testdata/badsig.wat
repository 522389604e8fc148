;; badsig.wat: husk_decide returns an i32 instead of the packed i64.
(module
  (memory (export "memory") 1)
  (func (export "husk_hook_abi_v1"))
  (func (export "husk_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "husk_decide") (param i32 i32 i32 i32) (result i32) (i32.const 0))
)
