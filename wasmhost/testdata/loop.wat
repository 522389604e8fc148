;; loop.wat: never returns from husk_decide.
(module
  (memory (export "memory") 1)
  
  (func (export "husk_hook_abi_v1"))
  (func (export "husk_alloc") (param $n i32) (result i32) (i32.const 1024))
  (func (export "husk_decide") (param i32 i32 i32 i32) (result i64)
    (loop $forever (br $forever)) unreachable)
)
