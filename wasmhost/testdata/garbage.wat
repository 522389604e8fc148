;; garbage.wat: returns bytes that are not a decision.
(module
  (memory (export "memory") 1)
  (data (i32.const 16) "this is not JSON {{{")
  (func (export "husk_hook_abi_v1"))
  (func (export "husk_alloc") (param $n i32) (result i32) (i32.const 1024))
  (func (export "husk_decide") (param i32 i32 i32 i32) (result i64)
    (i64.or (i64.shl (i64.const 16) (i64.const 32)) (i64.const 20)))
)
